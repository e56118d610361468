//! Consumer-group scenarios for sediment-client's `GroupConsumer`, run
//! against any Kafka-protocol broker with a group coordinator: librdkafka's
//! mock cluster (`client_groups_mock.rs`) and Sediment (`client_groups.rs`).
//!
//! Each member runs in its own task, polling in a loop and reporting what
//! it holds (generation, assignment) and every record it was handed; the
//! scenarios wait for the reports to settle and check them.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sediment_client::group::{RebalanceEvent, RebalanceListener, Revoked};
use sediment_client::{
    AutoOffsetReset, Client, ConsumerConfig, GroupConsumer, GroupConsumerConfig, ProducerConfig,
    ProducerRecord, TopicPartition,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Where the scenarios run.
#[derive(Debug, Clone)]
pub struct Env {
    /// A client of the cluster: every member, producer and observer of a
    /// scenario comes from it and shares its metadata and connections.
    pub client: Client,
    /// An empty topic with [`PARTITIONS`] partitions, created before the
    /// scenario starts (a leader assigns only partitions it knows of).
    pub topic: String,
    /// Session timeout for every member (brokers bound it).
    pub session_timeout: Duration,
}

/// Client logs on the test's output when `SEDIMENT_TEST_LOG` is set
/// (an `EnvFilter`, e.g. `sediment_client=debug`).
pub fn init_logging() {
    if let Ok(filter) = std::env::var("SEDIMENT_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Partitions of the scenarios' topic.
pub const PARTITIONS: i32 = 4;

/// Fast group settings: short session, 100 ms heartbeats, manual commits,
/// reading from the start when nothing is committed.
pub fn group_config(env: &Env, group: &str) -> GroupConsumerConfig {
    init_logging();
    GroupConsumerConfig {
        consumer: ConsumerConfig {
            fetch_max_wait: Duration::from_millis(100),
            auto_offset_reset: AutoOffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
        session_timeout: env.session_timeout,
        rebalance_timeout: Duration::from_secs(10),
        heartbeat_interval: Duration::from_millis(100),
        auto_commit: None,
        ..GroupConsumerConfig::new(group)
    }
}

/// Produces `value(partition, offset)` for `offsets` of every partition,
/// one acknowledged batch per record (so fetches may return them one by one).
pub async fn produce(env: &Env, offsets: std::ops::Range<i64>) {
    let producer = env
        .client
        .producer(ProducerConfig::default())
        .expect("producer");
    for offset in offsets {
        for partition in 0..PARTITIONS {
            let record = ProducerRecord::new(env.topic.clone(), value(partition, offset))
                .with_partition(partition);
            let stored = producer.send(record).await.expect("produce");
            assert_eq!(
                (stored.partition, stored.offset),
                (partition, offset),
                "the topic must start empty"
            );
        }
    }
}

/// The self-describing value of a produced record.
pub fn value(partition: i32, offset: i64) -> String {
    format!("p{partition}-o{offset}")
}

/// What one member reported after one `poll()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Its generation, if it holds one.
    pub generation: Option<i32>,
    /// Its partitions.
    pub assignment: Vec<TopicPartition>,
}

/// One record handed to one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The member.
    pub member: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// Whether members commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commits {
    /// `commit()` after every non-empty poll.
    AfterEachPoll,
    /// Only the consumer's own policy (auto-commit or nothing).
    None,
}

#[derive(Default)]
struct Observations {
    latest: BTreeMap<String, Snapshot>,
    history: Vec<(String, Snapshot)>,
    records: Vec<Seen>,
    commit_failures: Vec<String>,
}

struct Running {
    stop: Arc<AtomicBool>,
    task: JoinHandle<GroupConsumer>,
}

/// The members of one group, each polling in its own task.
pub struct Fleet {
    client: Client,
    observations: Arc<Mutex<Observations>>,
    running: Mutex<BTreeMap<String, Running>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fleet {
    /// No members yet; they will come from `env`'s client.
    pub fn new(env: &Env) -> Self {
        Self {
            client: env.client.clone(),
            observations: Arc::default(),
            running: Mutex::default(),
        }
    }

    /// Starts member `name` subscribed to `topic`.
    pub async fn start(
        &self,
        name: &str,
        config: GroupConsumerConfig,
        topic: &str,
        commits: Commits,
    ) {
        self.start_with(name, config, topic, commits, None).await;
    }

    /// Starts member `name`, reporting its rebalances on the returned channel.
    pub async fn start_listening(
        &self,
        name: &str,
        config: GroupConsumerConfig,
        topic: &str,
        commits: Commits,
    ) -> mpsc::UnboundedReceiver<RebalanceEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.start_with(name, config, topic, commits, Some(tx))
            .await;
        rx
    }

    async fn start_with(
        &self,
        name: &str,
        config: GroupConsumerConfig,
        topic: &str,
        commits: Commits,
        events: Option<mpsc::UnboundedSender<RebalanceEvent>>,
    ) {
        let mut consumer = self.client.group_consumer(config).expect("group consumer");
        consumer.subscribe([topic]).expect("subscribe");
        if let Some(events) = events {
            consumer.set_rebalance_listener(events);
        }
        self.start_consumer(name, consumer, commits);
    }

    /// Runs an already configured (subscribed) consumer as member `name`.
    pub fn start_consumer(&self, name: &str, consumer: GroupConsumer, commits: Commits) {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run_member(
            consumer,
            name.to_string(),
            Arc::clone(&stop),
            Arc::clone(&self.observations),
            commits,
        ));
        lock(&self.running).insert(name.to_string(), Running { stop, task });
    }

    /// Stops member `name` and closes it (LeaveGroup); returns its close result.
    pub async fn stop(&self, name: &str) -> sediment_client::Result<()> {
        let running = lock(&self.running).remove(name).expect("member is running");
        running.stop.store(true, Ordering::SeqCst);
        let consumer = match running.task.await {
            Ok(consumer) => consumer,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        lock(&self.observations).latest.remove(name);
        consumer.close().await
    }

    /// Fails at once if a member task died (its panic is re-raised).
    async fn check_alive(&self) {
        let dead = lock(&self.running)
            .iter()
            .find(|(_, r)| r.task.is_finished())
            .map(|(n, _)| n.clone());
        let Some(name) = dead else {
            return;
        };
        let running = lock(&self.running).remove(&name).expect("present");
        match running.task.await {
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            other => panic!("member {name} stopped by itself: {:?}", other.map(|_| ())),
        }
    }

    /// Waits until exactly the members `names` report one common generation
    /// whose assignments cover every partition of `topic` once; returns it.
    pub async fn wait_balanced(&self, names: &[&str], topic: &str, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        let all: BTreeSet<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(topic, p))
            .collect();
        loop {
            self.check_alive().await;
            let latest = lock(&self.observations).latest.clone();
            if let Some(generation) = balanced(&latest, names, &all) {
                self.check_generations_disjoint();
                return generation;
            }
            assert!(
                Instant::now() < deadline,
                "no balanced generation for {names:?} within {timeout:?}; latest reports: {latest:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `condition` holds over the records seen so far.
    pub async fn wait_records(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&[Seen]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive().await;
            if condition(&lock(&self.observations).records) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}; records: {:?}",
                lock(&self.observations).records
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every record handed out so far.
    pub fn records(&self) -> Vec<Seen> {
        lock(&self.observations).records.clone()
    }

    /// The latest report of `name`.
    pub fn latest(&self, name: &str) -> Option<Snapshot> {
        lock(&self.observations).latest.get(name).cloned()
    }

    /// Commits that failed (e.g. REBALANCE_IN_PROGRESS during a rebalance).
    pub fn commit_failures(&self) -> Vec<String> {
        lock(&self.observations).commit_failures.clone()
    }

    /// Within any one generation, no partition was reported by two members.
    pub fn check_generations_disjoint(&self) {
        let history = lock(&self.observations).history.clone();
        let mut owners: BTreeMap<(i32, TopicPartition), String> = BTreeMap::new();
        for (member, snapshot) in history {
            let Some(generation) = snapshot.generation else {
                continue;
            };
            for tp in snapshot.assignment {
                if let Some(other) = owners.insert((generation, tp.clone()), member.clone()) {
                    assert_eq!(
                        other, member,
                        "generation {generation}: {tp} owned by both {other} and {member}"
                    );
                }
            }
        }
    }
}

/// The common generation of `names` if their reports partition `all` exactly.
fn balanced(
    latest: &BTreeMap<String, Snapshot>,
    names: &[&str],
    all: &BTreeSet<TopicPartition>,
) -> Option<i32> {
    if latest.len() != names.len() {
        return None;
    }
    let mut generation = None;
    let mut owned = BTreeSet::new();
    for name in names {
        let snapshot = latest.get(*name)?;
        let g = snapshot.generation?;
        if *generation.get_or_insert(g) != g {
            return None;
        }
        for tp in &snapshot.assignment {
            if !owned.insert(tp.clone()) {
                return None;
            }
        }
    }
    (owned == *all).then_some(generation?)
}

async fn run_member(
    mut consumer: GroupConsumer,
    name: String,
    stop: Arc<AtomicBool>,
    observations: Arc<Mutex<Observations>>,
    commits: Commits,
) -> GroupConsumer {
    while !stop.load(Ordering::SeqCst) {
        let records = match consumer.poll().await {
            Ok(records) => records,
            Err(e) => panic!("member {name}: poll failed: {e}"),
        };
        {
            let snapshot = Snapshot {
                generation: consumer.generation(),
                assignment: consumer.assignment().to_vec(),
            };
            let mut o = lock(&observations);
            o.latest.insert(name.clone(), snapshot.clone());
            if snapshot.generation.is_some() {
                o.history.push((name.clone(), snapshot));
            }
            for record in &records {
                assert_eq!(
                    record.value.as_deref(),
                    Some(value(record.partition, record.offset).as_bytes()),
                    "member {name}: record content"
                );
                o.records.push(Seen {
                    member: name.clone(),
                    partition: record.partition,
                    offset: record.offset,
                });
            }
        }
        if commits == Commits::AfterEachPoll && !records.is_empty() {
            if let Err(e) = consumer.commit().await {
                lock(&observations)
                    .commit_failures
                    .push(format!("{name}: {e}"));
            }
        }
    }
    consumer
}

/// `(partition, offset)` → how many times it was handed out.
pub fn deliveries(records: &[Seen]) -> BTreeMap<(i32, i64), usize> {
    let mut counts = BTreeMap::new();
    for r in records {
        *counts.entry((r.partition, r.offset)).or_insert(0) += 1;
    }
    counts
}

/// True when every offset in `offsets` of every partition was handed out.
pub fn covers(records: &[Seen], offsets: std::ops::Range<i64>) -> bool {
    let seen = deliveries(records);
    (0..PARTITIONS).all(|p| offsets.clone().all(|o| seen.contains_key(&(p, o))))
}

/// A group consumer that never joins: it only reads committed offsets.
pub async fn observer(env: &Env, group: &str) -> GroupConsumer {
    env.client
        .group_consumer(group_config(env, group))
        .expect("observer")
}

/// Waits until the group's committed offset of every partition is `expected`.
pub async fn wait_committed(
    observer: &GroupConsumer,
    topic: &str,
    expected: i64,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut committed = Vec::new();
        for p in 0..PARTITIONS {
            committed.push(observer.committed(topic, p).await.expect("committed"));
        }
        if committed.iter().all(|c| *c == Some(expected)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "committed offsets {committed:?}, expected {expected} everywhere"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two members split the topic, consume and commit; one leaves and comes
/// back as a new consumer, which resumes at the committed offsets.
pub async fn split_commit_and_resume(env: &Env) {
    let group = "split-and-resume";
    let topic = env.topic.as_str();
    let rebalance = Duration::from_secs(20);
    let fleet = Fleet::new(env);
    fleet
        .start("a", group_config(env, group), topic, Commits::AfterEachPoll)
        .await;
    fleet
        .start("b", group_config(env, group), topic, Commits::AfterEachPoll)
        .await;
    let generation = fleet.wait_balanced(&["a", "b"], topic, rebalance).await;
    let owned_a = fleet.latest("a").expect("a reports").assignment;
    let owned_b = fleet.latest("b").expect("b reports").assignment;
    assert!(
        !owned_a.is_empty() && !owned_b.is_empty(),
        "a: {owned_a:?}, b: {owned_b:?}"
    );
    // Produced once the split is settled, so every record goes to its owner.
    produce(env, 0..10).await;
    fleet
        .wait_records("the first 40 records", Duration::from_secs(20), |r| {
            covers(r, 0..10)
        })
        .await;
    let watcher = observer(env, group).await;
    wait_committed(&watcher, topic, 10, Duration::from_secs(10)).await;
    // Both members stayed in the same generation: each partition was read
    // by its owner only.
    assert_eq!(
        fleet.latest("a").and_then(|s| s.generation),
        Some(generation)
    );
    for seen in fleet.records() {
        let owner = if owned_a.contains(&TopicPartition::new(topic, seen.partition)) {
            "a"
        } else {
            "b"
        };
        assert_eq!(seen.member, owner, "{seen:?}");
    }

    // b leaves: a takes everything over.
    fleet.stop("b").await.expect("close b");
    fleet.wait_balanced(&["a"], topic, rebalance).await;
    // b comes back as a new consumer (a new member id) and gets partitions
    // whose committed offset is 10: it must start there, not at 0.
    fleet
        .start(
            "b2",
            group_config(env, group),
            topic,
            Commits::AfterEachPoll,
        )
        .await;
    fleet.wait_balanced(&["a", "b2"], topic, rebalance).await;
    let owned_b2 = fleet.latest("b2").expect("b2 reports").assignment;
    assert!(!owned_b2.is_empty());
    produce(env, 10..15).await;
    fleet
        .wait_records("all 60 records", Duration::from_secs(20), |r| {
            covers(r, 0..15)
        })
        .await;
    wait_committed(&watcher, topic, 15, Duration::from_secs(10)).await;
    let records = fleet.records();
    for tp in &owned_b2 {
        let first = records
            .iter()
            .filter(|s| s.member == "b2" && s.partition == tp.partition)
            .map(|s| s.offset)
            .min();
        assert_eq!(first, Some(10), "b2 resumes {tp} at the committed offset");
    }
    let duplicates: Vec<_> = deliveries(&records)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(duplicates.is_empty(), "redelivered: {duplicates:?}");
    assert!(
        fleet.commit_failures().is_empty(),
        "{:?}",
        fleet.commit_failures()
    );
    fleet.stop("a").await.expect("close a");
    fleet.stop("b2").await.expect("close b2");
}

/// Members join one by one up to three, then leave one by one: after every
/// rebalance each partition has exactly one owner, and a member's revoke
/// and assign callbacks alternate.
pub async fn one_three_one(env: &Env) {
    let group = "one-three-one";
    let topic = env.topic.as_str();
    let rebalance = Duration::from_secs(20);
    let fleet = Fleet::new(env);
    let mut events = fleet
        .start_listening("m1", group_config(env, group), topic, Commits::None)
        .await;
    let g1 = fleet.wait_balanced(&["m1"], topic, rebalance).await;
    fleet
        .start("m2", group_config(env, group), topic, Commits::None)
        .await;
    let g2 = fleet.wait_balanced(&["m1", "m2"], topic, rebalance).await;
    fleet
        .start("m3", group_config(env, group), topic, Commits::None)
        .await;
    let g3 = fleet
        .wait_balanced(&["m1", "m2", "m3"], topic, rebalance)
        .await;
    for name in ["m1", "m2", "m3"] {
        let owned = fleet.latest(name).expect("report").assignment;
        assert!(
            !owned.is_empty(),
            "{name} owns nothing with 3 members and 4 partitions"
        );
    }
    fleet.stop("m3").await.expect("close m3");
    let g4 = fleet.wait_balanced(&["m1", "m2"], topic, rebalance).await;
    fleet.stop("m2").await.expect("close m2");
    let g5 = fleet.wait_balanced(&["m1"], topic, rebalance).await;
    assert!(
        g1 < g2 && g2 < g3 && g3 < g4 && g4 < g5,
        "generations {g1} {g2} {g3} {g4} {g5}"
    );
    fleet.check_generations_disjoint();
    fleet.stop("m1").await.expect("close m1");

    // m1's callbacks: assigned, revoked, assigned, … each revoke names what
    // the previous assignment gave, and the last revoke is the close.
    let mut held: Option<Vec<TopicPartition>> = None;
    let mut assignments = 0;
    while let Ok(event) = events.try_recv() {
        match event {
            RebalanceEvent::Assigned { partitions, .. } => {
                assert!(held.is_none(), "assigned twice without a revoke");
                held = Some(partitions);
                assignments += 1;
            }
            RebalanceEvent::Revoked { partitions, lost } => {
                assert!(!lost, "m1 never lost its generation");
                assert_eq!(Some(partitions), held.take(), "revoked what was assigned");
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(held.is_none(), "close revokes the last assignment");
    assert!(
        assignments >= 5,
        "m1 saw {assignments} assignments over 5 generations"
    );
}

/// Auto-commit commits only records whose processing the application
/// finished (it called `poll()` again), never those of the latest poll,
/// not even on close; a restarted consumer gets the unfinished one again.
pub async fn auto_commit_commits_only_released_records(env: &Env) {
    let group = "auto-commit";
    let topic = env.topic.as_str();
    let producer = env
        .client
        .producer(ProducerConfig::default())
        .expect("producer");
    let send = |offset: i64| {
        producer.send(ProducerRecord::new(env.topic.clone(), value(0, offset)).with_partition(0))
    };
    let config = GroupConsumerConfig {
        auto_commit: Some(Duration::ZERO), // at every poll
        ..group_config(env, group)
    };
    let watcher = observer(env, group).await;
    let committed = || watcher.committed(topic, 0);
    let mut consumer = env.client.group_consumer(config.clone()).expect("consumer");
    consumer.subscribe([topic]).expect("subscribe");

    send(0).await.expect("produce 0");
    let first = poll_until(&mut consumer, 0).await;
    assert_eq!(first, 0);
    // Record 0 is in the application's hands: nothing beyond the start
    // position (0) may be committed.
    let now = committed().await.expect("committed");
    assert!(
        matches!(now, None | Some(0)),
        "committed {now:?} while record 0 is processed"
    );

    send(1).await.expect("produce 1");
    let second = poll_until(&mut consumer, 1).await;
    assert_eq!(second, 1);
    // Calling poll() returned control for record 0: offset 1 gets committed
    // (in the background) — and not 2, record 1 is still being processed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while committed().await.expect("committed") != Some(1) {
        assert!(Instant::now() < deadline, "record 0 never auto-committed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(committed().await.expect("committed"), Some(1));

    // close() does not commit the last poll's records either.
    consumer.close().await.expect("close");
    assert_eq!(committed().await.expect("committed"), Some(1));

    // A new consumer of the group gets record 1 again: at least once.
    let mut again = env.client.group_consumer(config).expect("consumer");
    again.subscribe([topic]).expect("subscribe");
    assert_eq!(poll_until(&mut again, 1).await, 1);
    // Its next poll releases record 1.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        again.poll().await.expect("poll");
        if committed().await.expect("committed") == Some(2) {
            break;
        }
        assert!(Instant::now() < deadline, "record 1 never auto-committed");
    }
    again.close().await.expect("close");
}

/// Polls until a record of partition 0 arrives; returns its offset, and
/// checks it is the one expected and alone.
async fn poll_until(consumer: &mut GroupConsumer, expected: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let records = consumer.poll().await.expect("poll");
        if let Some(record) = records.iter().find(|r| r.partition == 0) {
            assert_eq!(records.len(), 1, "one record at a time: {records:?}");
            assert_eq!(record.offset, expected);
            return record.offset;
        }
        assert!(Instant::now() < deadline, "record {expected} never arrived");
    }
}

/// Commits, when partitions are revoked, everything handed out of them.
#[derive(Clone, Default)]
pub struct CommitOnRevoke {
    /// The outcome of every commit made.
    pub results: Arc<Mutex<Vec<Result<(), String>>>>,
}

impl RebalanceListener for CommitOnRevoke {
    async fn on_revoked(&mut self, revoked: &mut Revoked<'_>) {
        if revoked.is_lost() || revoked.partitions().is_empty() {
            return;
        }
        let result = revoked.commit().await.map_err(|e| e.to_string());
        lock(&self.results).push(result);
    }
}

/// A member that commits only in `on_revoked` hands its partitions over
/// when another joins: the newcomer starts where it stopped, nothing is
/// read twice. (Needs a coordinator that accepts commits from the current
/// generation while a rebalance waits for rejoins, as Kafka does;
/// librdkafka's mock refuses them with REBALANCE_IN_PROGRESS.)
pub async fn commit_on_revoke_hands_over_without_redelivery(env: &Env) {
    let group = "commit-on-revoke";
    let topic = env.topic.as_str();
    let rebalance = Duration::from_secs(20);
    let fleet = Fleet::new(env);
    let listener = CommitOnRevoke::default();
    let mut first = env
        .client
        .group_consumer(group_config(env, group))
        .expect("consumer");
    first.subscribe([topic]).expect("subscribe");
    first.set_rebalance_listener(listener.clone());
    fleet.start_consumer("a", first, Commits::None);
    fleet.wait_balanced(&["a"], topic, rebalance).await;
    produce(env, 0..10).await;
    fleet
        .wait_records("a reads everything", Duration::from_secs(20), |r| {
            covers(r, 0..10)
        })
        .await;
    let watcher = observer(env, group).await;
    assert_eq!(watcher.committed(topic, 0).await.expect("committed"), None);

    fleet
        .start("b", group_config(env, group), topic, Commits::AfterEachPoll)
        .await;
    fleet.wait_balanced(&["a", "b"], topic, rebalance).await;
    assert_eq!(
        lock(&listener.results).clone(),
        vec![Ok(())],
        "a's commit on revoke"
    );
    wait_committed(&watcher, topic, 10, Duration::from_secs(10)).await;
    produce(env, 10..15).await;
    fleet
        .wait_records("the rest", Duration::from_secs(20), |r| covers(r, 0..15))
        .await;
    let duplicates: Vec<_> = deliveries(&fleet.records())
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(duplicates.is_empty(), "redelivered: {duplicates:?}");
    fleet.stop("b").await.expect("close b");
    fleet.stop("a").await.expect("close a");
}

/// With `stream()`, asking for the next item returns control for the
/// previous one: auto-commit follows one item behind, and `close()` does
/// not commit the item still in hand.
pub async fn stream_releases_each_item_when_the_next_is_asked_for(env: &Env) {
    use futures_util::StreamExt;
    let group = "stream";
    let topic = env.topic.as_str();
    let producer = env
        .client
        .producer(ProducerConfig::default())
        .expect("producer");
    for offset in 0..3 {
        producer
            .send(ProducerRecord::new(env.topic.clone(), value(0, offset)).with_partition(0))
            .await
            .expect("produce");
    }
    let watcher = observer(env, group).await;
    let mut consumer = env
        .client
        .group_consumer(GroupConsumerConfig {
            auto_commit: Some(Duration::ZERO),
            ..group_config(env, group)
        })
        .expect("consumer");
    consumer.subscribe([topic]).expect("subscribe");
    {
        let mut stream = Box::pin(consumer.stream());
        let mut last = None;
        for expected in 0..3 {
            let record = loop {
                let record = stream.next().await.expect("endless").expect("record");
                if record.partition == 0 {
                    break record;
                }
            };
            assert_eq!(record.offset, expected);
            // Everything before this item is released; this one is not.
            if let Some(previous) = last {
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let committed = watcher.committed(topic, 0).await.expect("committed");
                    if committed == Some(previous + 1) {
                        break;
                    }
                    assert!(
                        committed.is_none_or(|c| c <= previous + 1),
                        "committed {committed:?} while record {expected} is in hand"
                    );
                    assert!(
                        Instant::now() < deadline,
                        "record {previous} never committed"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            last = Some(record.offset);
        }
    }
    consumer.close().await.expect("close");
    assert_eq!(
        watcher.committed(topic, 0).await.expect("committed"),
        Some(2)
    );
}

/// Manual commits: explicit offsets, `commit_async`, `committed`,
/// `position`, and a `seek` back that reads records again.
pub async fn manual_commits_and_seek(env: &Env) {
    let group = "manual";
    let topic = env.topic.as_str();
    produce(env, 0..3).await;
    let watcher = observer(env, group).await;
    let mut consumer = env
        .client
        .group_consumer(group_config(env, group))
        .expect("consumer");
    consumer.subscribe([topic]).expect("subscribe");
    let mut seen: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.values().map(Vec::len).sum::<usize>() < 12 {
        for record in consumer.poll().await.expect("poll") {
            seen.entry(record.partition)
                .or_default()
                .push(record.offset);
        }
        assert!(Instant::now() < deadline, "only {seen:?}");
    }
    assert!(
        seen.values().all(|offsets| offsets == &[0, 1, 2]),
        "{seen:?}"
    );
    assert_eq!(consumer.position(topic, 0), Some(3));
    assert_eq!(consumer.committed(topic, 0).await.expect("committed"), None);

    consumer
        .commit_offsets([(TopicPartition::new(topic, 0), 1)].into_iter().collect())
        .await
        .expect("commit_offsets");
    assert_eq!(
        watcher.committed(topic, 0).await.expect("committed"),
        Some(1)
    );
    assert_eq!(watcher.committed(topic, 1).await.expect("committed"), None);

    consumer.commit_async().await.expect("commit_async");
    wait_committed(&watcher, topic, 3, Duration::from_secs(10)).await;

    consumer
        .seek(topic, 2, sediment_client::Offset::At(1))
        .await
        .expect("seek");
    assert_eq!(consumer.position(topic, 2), Some(1));
    let deadline = Instant::now() + Duration::from_secs(20);
    let again = loop {
        let records = consumer.poll().await.expect("poll");
        if !records.is_empty() {
            break records;
        }
        assert!(Instant::now() < deadline, "nothing after the seek");
    };
    let offsets: Vec<(i32, i64)> = again.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(offsets.first(), Some(&(2, 1)), "{offsets:?}");
    assert!(matches!(
        consumer
            .seek("elsewhere", 0, sediment_client::Offset::Earliest)
            .await,
        Err(sediment_client::ClientError::NotAssigned { .. })
    ));
    consumer.close().await.expect("close");
}
