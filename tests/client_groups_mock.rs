//! sediment-client's `GroupConsumer` against a third-party group
//! coordinator: librdkafka's mock cluster (started through ctypes by
//! `tests/python/mock_cluster_ctl.py`, which can also move coordinators and
//! inject error codes). The scenarios themselves live in `group_scenarios/`
//! and run against Sediment too (`client_groups.rs`).
//!
//! The mock elects a leader `session_timeout - 1 s` after a member joins a
//! stable group, so the 3 s session used here makes each rebalance take
//! about 2 s; the initial rebalance delay is set to 0.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod group_scenarios;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use group_scenarios::{Commits, Env, Fleet};
use sediment_client::ClientBuilder;

/// The mock cluster process; it exits when its stdin closes (on drop).
struct MockCluster {
    child: Child,
    stdin: Option<ChildStdin>,
    answers: mpsc::Receiver<String>,
    bootstrap: String,
}

impl MockCluster {
    fn start(brokers: u32) -> Self {
        let python = common::python_with_confluent_kafka();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/mock_cluster_ctl.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(brokers.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/python/mock_cluster_ctl.py");
        let stdout = child.stdout.take().expect("stdout piped");
        let stdin = child.stdin.take();
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let bootstrap = match answers.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with("bootstrap ") => {
                line["bootstrap ".len()..].trim().to_string()
            }
            other => {
                let _ = child.kill();
                panic!("mock_cluster_ctl.py did not print its bootstrap address: {other:?}");
            }
        };
        let mut mock = Self {
            child,
            stdin,
            answers,
            bootstrap,
        };
        mock.command("rebalance-delay 0");
        mock
    }

    /// Sends one control command and waits for its `ok`.
    fn command(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{command}").expect("write command");
        stdin.flush().expect("flush command");
        let answer = self.answers.recv_timeout(Duration::from_secs(10));
        assert_eq!(answer.as_deref(), Ok("ok"), "mock command `{command}`");
    }

    /// Creates `topic` with the scenarios' partition count.
    async fn env(&mut self, topic: &str) -> Env {
        self.command(&format!("topic {topic} {}", group_scenarios::PARTITIONS));
        Env {
            client: ClientBuilder::new(&self.bootstrap)
                .build()
                .await
                .expect("client"),
            topic: topic.to_string(),
            session_timeout: Duration::from_secs(3),
        }
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_mock_cluster_when_two_members_split_commit_and_one_restarts_then_it_resumes_at_committed_offsets(
) {
    let mut mock = MockCluster::start(1);
    group_scenarios::split_commit_and_resume(&mock.env("split").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_mock_cluster_when_members_go_one_three_one_then_every_partition_has_one_owner_after_each_rebalance(
) {
    let mut mock = MockCluster::start(1);
    group_scenarios::one_three_one(&mock.env("grow-shrink").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_mock_cluster_when_auto_committing_then_only_records_released_by_the_next_poll_are_committed(
) {
    let mut mock = MockCluster::start(1);
    group_scenarios::auto_commit_commits_only_released_records(&mock.env("auto").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_mock_cluster_when_streaming_then_each_item_is_released_when_the_next_is_asked_for() {
    let mut mock = MockCluster::start(1);
    group_scenarios::stream_releases_each_item_when_the_next_is_asked_for(
        &mock.env("stream").await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_mock_cluster_when_committing_by_hand_and_seeking_then_offsets_and_positions_follow()
{
    let mut mock = MockCluster::start(1);
    group_scenarios::manual_commits_and_seek(&mock.env("manual").await).await;
}

/// NOT_COORDINATOR from heartbeats and commits, a coordinator that moves to
/// another broker, and REBALANCE_IN_PROGRESS from a heartbeat: the member
/// finds the coordinator again, rejoins when told, and its commits land.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_coordinator_errors_and_a_moved_coordinator_then_member_rediscovers_rejoins_and_commits(
) {
    const HEARTBEAT: u16 = 12;
    const OFFSET_COMMIT: u16 = 8;
    const NOT_COORDINATOR: u16 = 16;
    const COORDINATOR_LOAD_IN_PROGRESS: u16 = 14;
    const REBALANCE_IN_PROGRESS: u16 = 27;
    let mut mock = MockCluster::start(3);
    let env = mock.env("coordinator-moves").await;
    let group = "coordinator-moves";
    let topic = env.topic.as_str();
    group_scenarios::produce(&env, 0..5).await;
    let fleet = Fleet::new(&env);
    let mut events = fleet
        .start_listening(
            "m",
            group_scenarios::group_config(&env, group),
            topic,
            Commits::AfterEachPoll,
        )
        .await;
    let first = fleet
        .wait_balanced(&["m"], topic, Duration::from_secs(20))
        .await;
    fleet
        .wait_records("the first records", Duration::from_secs(20), |r| {
            group_scenarios::covers(r, 0..5)
        })
        .await;
    let watcher = group_scenarios::observer(&env, group).await;
    group_scenarios::wait_committed(&watcher, topic, 5, Duration::from_secs(10)).await;

    // The heartbeat hears NOT_COORDINATOR (rediscover, same generation),
    // then REBALANCE_IN_PROGRESS (rejoin: a new generation).
    mock.command(&format!(
        "errors {HEARTBEAT} {NOT_COORDINATOR} {REBALANCE_IN_PROGRESS}"
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    let second = loop {
        let generation = fleet.latest("m").and_then(|s| s.generation);
        if generation.is_some_and(|g| g > first) {
            break generation.unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "no rejoin after REBALANCE_IN_PROGRESS"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    fleet
        .wait_balanced(&["m"], topic, Duration::from_secs(20))
        .await;

    // The coordinator moves to each other broker in turn; commits first meet
    // NOT_COORDINATOR and a loading coordinator, and are retried.
    for broker in [2, 3, 1] {
        mock.command(&format!("coordinator {group} {broker}"));
        mock.command(&format!(
            "errors {OFFSET_COMMIT} {NOT_COORDINATOR} {COORDINATOR_LOAD_IN_PROGRESS}"
        ));
    }
    group_scenarios::produce(&env, 5..10).await;
    fleet
        .wait_records("records after the moves", Duration::from_secs(20), |r| {
            group_scenarios::covers(r, 0..10)
        })
        .await;
    group_scenarios::wait_committed(&watcher, topic, 10, Duration::from_secs(10)).await;
    assert_eq!(
        fleet.latest("m").and_then(|s| s.generation),
        Some(second),
        "a moved coordinator is not a rebalance"
    );
    assert!(
        fleet.commit_failures().is_empty(),
        "{:?}",
        fleet.commit_failures()
    );
    fleet.stop("m").await.expect("close");
    let mut generations = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let sediment_client::group::RebalanceEvent::Assigned { generation, .. } = event {
            generations.push(generation);
        }
    }
    assert_eq!(generations, vec![first, second]);
}
