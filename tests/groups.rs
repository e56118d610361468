//! Consumer groups end to end, against the real broker binary:
//! - kcat's balanced consumer (`kcat -G`) reads every message of a
//!   4-partition topic exactly once and commits; the same group run again
//!   reads nothing, and OffsetFetch shows the end offsets;
//! - confluent-kafka consumers with manual commits join and leave one by one
//!   (1 → 2 → 3 → 2 → 1): after each rebalance every partition is owned by
//!   exactly one member, every message is consumed (no gap), and the group's
//!   committed offsets end at the high watermarks;
//! - offsets committed by a confluent-kafka group consumer survive a SIGKILL
//!   of the broker exactly, and a new consumer of the group resumes at them;
//! - over the raw wire: every advertised version of every group API answers;
//!   generations keep growing across a restart, so a member from before it
//!   gets ILLEGAL_GENERATION; and bad input (unknown partitions, stale
//!   generation, unknown member, no common protocol, oversized metadata, a
//!   group that is not empty) gets the right error codes while the group
//!   stays healthy.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::canary::{create_topic, latest_offset};
use common::python::{run_script, script_path};
use common::wire::WireClient;
use common::{
    python_with_confluent_kafka, require_tool, run_bounded, tail, BrokerProcess, Finished,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

/// Longest any external client run, or any awaited group state, may take.
const WAIT: Duration = Duration::from_secs(90);

const KCAT_HINT: &str = "install it with `apt-get install kcat` (or run scripts/test)";

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const INVALID_GROUP_ID: i16 = 24;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn group(id: &str) -> GroupId {
    GroupId(s(id))
}

// ---- external clients ----

/// Runs `program args…` with `stdin`, killing it after [`WAIT`]; panics with
/// its stderr and the broker's log unless it exits 0. Returns its stdout.
fn run(broker: &BrokerProcess, program: &PathBuf, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut command = Command::new(program);
    command.args(args);
    let Finished {
        status,
        stdout,
        stderr,
    } = run_bounded(command, Some(stdin.to_vec()), WAIT);
    match status {
        Some(status) if status.success() => stdout,
        status => panic!(
            "{} {args:?} {}\nstderr:\n{}\nbroker log:\n{}",
            program.display(),
            status.map_or("was killed after the timeout".to_string(), |s| format!(
                "failed ({s})"
            )),
            tail(&stderr, 4000),
            tail(&broker.logs(), 8000)
        ),
    }
}

fn kcat(broker: &BrokerProcess, args: &[&str], stdin: &[u8]) -> String {
    let kcat = require_tool("kcat", KCAT_HINT);
    let bootstrap = broker.bootstrap();
    let mut all = vec!["-b", bootstrap.as_str()];
    all.extend_from_slice(args);
    String::from_utf8(run(broker, &kcat, &all, stdin)).expect("utf-8 output")
}

/// Produces `count` messages `"<partition>-<i>"` to one partition with kcat.
fn produce(broker: &BrokerProcess, topic: &str, partition: i32, from: usize, count: usize) {
    let lines: String = (from..from + count)
        .map(|i| format!("{partition}-{i}\n"))
        .collect();
    kcat(
        broker,
        &["-P", "-t", topic, "-p", &partition.to_string()],
        lines.as_bytes(),
    );
}

fn end_offsets(broker: &BrokerProcess, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let mut client = WireClient::connect(broker.addr).unwrap();
    (0..partitions)
        .map(|p| {
            let (code, offset) = latest_offset(&mut client, topic, p);
            assert_eq!(code, NONE, "ListOffsets {topic}-{p}");
            (p, offset)
        })
        .collect()
}

fn new_topic(broker: &BrokerProcess, topic: &str, partitions: i32) {
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, topic, partitions), NONE);
}

// ---- raw wire requests ----

fn join_request(group_id: &str, member_id: &str, protocols: &[&str]) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(
            protocols
                .iter()
                .map(|p| {
                    JoinGroupRequestProtocol::default()
                        .with_name(s(p))
                        .with_metadata(Bytes::from(format!("{p}-metadata")))
                })
                .collect(),
        )
}

fn call_join(
    client: &mut WireClient,
    version: i16,
    request: &JoinGroupRequest,
) -> JoinGroupResponse {
    client.call(ApiKey::JoinGroup, version, request).unwrap()
}

/// Joins as a new member (answering MEMBER_ID_REQUIRED at v4+, which must
/// come exactly there) and returns the successful answer.
fn join_new(client: &mut WireClient, version: i16, group_id: &str) -> JoinGroupResponse {
    let first = call_join(client, version, &join_request(group_id, "", &["range"]));
    let answer = if version >= 4 {
        assert_eq!(first.error_code, MEMBER_ID_REQUIRED, "JoinGroup v{version}");
        assert!(!first.member_id.is_empty());
        call_join(
            client,
            version,
            &join_request(group_id, &first.member_id, &["range"]),
        )
    } else {
        first
    };
    assert_eq!(answer.error_code, NONE, "JoinGroup v{version}: {answer:?}");
    answer
}

fn sync(
    client: &mut WireClient,
    version: i16,
    group_id: &str,
    member_id: &str,
    generation: i32,
    assignment: &[u8],
) -> SyncGroupResponse {
    let request = SyncGroupRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id(generation)
        .with_member_id(s(member_id))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(member_id))
            .with_assignment(Bytes::copy_from_slice(assignment))]);
    client.call(ApiKey::SyncGroup, version, &request).unwrap()
}

/// A one-member Stable group; returns (member id, generation).
fn stable_group(client: &mut WireClient, group_id: &str) -> (String, i32) {
    let joined = join_new(client, 5, group_id);
    assert_eq!(joined.leader, joined.member_id);
    let member = joined.member_id.to_string();
    let synced = sync(client, 5, group_id, &member, joined.generation_id, b"all");
    assert_eq!(synced.error_code, NONE);
    (member, joined.generation_id)
}

fn heartbeat(
    client: &mut WireClient,
    version: i16,
    group_id: &str,
    member_id: &str,
    generation: i32,
) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id(generation)
        .with_member_id(s(member_id));
    let response: HeartbeatResponse = client.call(ApiKey::Heartbeat, version, &request).unwrap();
    response.error_code
}

/// Commits offsets per topic; returns the codes per topic, in request order.
fn commit(
    client: &mut WireClient,
    version: i16,
    group_id: &str,
    member_id: &str,
    generation: i32,
    offsets: &[(&str, &[(i32, i64)])],
    metadata: &str,
) -> Vec<Vec<i16>> {
    let request = OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member_id))
        .with_topics(
            offsets
                .iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|&(p, o)| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(o)
                                        .with_committed_metadata(Some(s(metadata)))
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let response: OffsetCommitResponse = client
        .call(ApiKey::OffsetCommit, version, &request)
        .unwrap();
    response
        .topics
        .iter()
        .map(|t| t.partitions.iter().map(|p| p.error_code).collect())
        .collect()
}

/// Committed offsets of `topic`'s `partitions` (OffsetFetch).
fn fetch(
    client: &mut WireClient,
    version: i16,
    group_id: &str,
    topic: &str,
    partitions: &[i32],
) -> Vec<i64> {
    let request = OffsetFetchRequest::default()
        .with_group_id(group(group_id))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(partitions.to_vec())]));
    let response: OffsetFetchResponse =
        client.call(ApiKey::OffsetFetch, version, &request).unwrap();
    assert_eq!(response.error_code, NONE, "OffsetFetch v{version}");
    let topic = &response.topics[0];
    topic
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, NONE);
            p.committed_offset
        })
        .collect()
}

fn leave(
    client: &mut WireClient,
    version: i16,
    group_id: &str,
    members: &[&str],
) -> LeaveGroupResponse {
    let mut request = LeaveGroupRequest::default().with_group_id(group(group_id));
    if version >= 3 {
        request.members = members
            .iter()
            .map(|m| MemberIdentity::default().with_member_id(s(m)))
            .collect();
    } else {
        request.member_id = s(members[0]);
    }
    client.call(ApiKey::LeaveGroup, version, &request).unwrap()
}

fn describe(client: &mut WireClient, version: i16, group_id: &str) -> DescribeGroupsResponse {
    let request = DescribeGroupsRequest::default().with_groups(vec![group(group_id)]);
    client
        .call(ApiKey::DescribeGroups, version, &request)
        .unwrap()
}

fn list(client: &mut WireClient, version: i16) -> ListGroupsResponse {
    client
        .call(ApiKey::ListGroups, version, &ListGroupsRequest::default())
        .unwrap()
}

fn delete(client: &mut WireClient, version: i16, groups: &[&str]) -> Vec<i16> {
    let request =
        DeleteGroupsRequest::default().with_groups_names(groups.iter().map(|g| group(g)).collect());
    let response: DeleteGroupsResponse = client
        .call(ApiKey::DeleteGroups, version, &request)
        .unwrap();
    response.results.iter().map(|r| r.error_code).collect()
}

// ---- kcat ----

#[test]
fn kcat_balanced_consumer_reads_every_message_once_and_commits_so_a_rerun_reads_nothing() {
    let broker = BrokerProcess::start(&[]);
    new_topic(&broker, "kcat-group", 4);
    for partition in 0..4 {
        produce(&broker, "kcat-group", partition, 0, 25);
    }
    let args = [
        "-G",
        "kcat-g",
        "-X",
        "auto.offset.reset=earliest",
        "-e",
        "-f",
        "%p %o %s\n",
        "kcat-group",
    ];
    let first = kcat(&broker, &args, b"");
    let mut seen: BTreeMap<(i32, i64), String> = BTreeMap::new();
    for line in first.lines() {
        let mut fields = line.splitn(3, ' ');
        let partition: i32 = fields.next().unwrap().parse().unwrap();
        let offset: i64 = fields.next().unwrap().parse().unwrap();
        let value = fields.next().unwrap().to_string();
        assert_eq!(value, format!("{partition}-{offset}"));
        assert!(
            seen.insert((partition, offset), value).is_none(),
            "{partition}/{offset} twice"
        );
    }
    assert_eq!(seen.len(), 100, "kcat output:\n{first}");
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(
        fetch(&mut client, 7, "kcat-g", "kcat-group", &[0, 1, 2, 3]),
        [25, 25, 25, 25]
    );
    let again = kcat(&broker, &args, b"");
    assert_eq!(again, "", "the group's committed offsets are at the end");
}

// ---- confluent-kafka members joining and leaving ----

#[derive(Debug, Default)]
struct MemberView {
    assigned: BTreeSet<i32>,
    consumed: Vec<(i32, i64)>,
    closed: bool,
    lines: Vec<String>,
}

/// A `group_member.py` process and what it has reported.
struct Member {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    view: Arc<Mutex<MemberView>>,
    stderr: Arc<Mutex<String>>,
}

impl Member {
    fn start(broker: &BrokerProcess, group_id: &str, topic: &str, name: &str) -> Self {
        let python = python_with_confluent_kafka();
        let mut child = Command::new(python)
            .arg(script_path("group_member.py"))
            .arg(broker.bootstrap())
            .args([group_id, topic, name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn group_member.py");
        let view = Arc::new(Mutex::new(MemberView::default()));
        let stdout = child.stdout.take().expect("stdout piped");
        let sink = Arc::clone(&view);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event: serde_json::Value = match serde_json::from_str(&line) {
                    Ok(event) => event,
                    Err(_) => continue,
                };
                let mut view = sink.lock().unwrap();
                let partitions = || -> BTreeSet<i32> {
                    event["partitions"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|p| p.as_i64())
                                .map(|p| p as i32)
                                .collect()
                        })
                        .unwrap_or_default()
                };
                match event["event"].as_str() {
                    Some("assigned") => view.assigned = partitions(),
                    Some("revoked") => {
                        let revoked = partitions();
                        view.assigned.retain(|p| !revoked.contains(p));
                    }
                    Some("consumed") => {
                        let partition = event["partition"].as_i64().unwrap_or(-1) as i32;
                        let offset = event["offset"].as_i64().unwrap_or(-1);
                        view.consumed.push((partition, offset));
                        continue;
                    }
                    Some("closed") => view.closed = true,
                    _ => {}
                }
                view.lines.push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = String::new();
            let _ = err_pipe.read_to_string(&mut buf);
            sink.lock().unwrap().push_str(&buf);
        });
        let stdin = child.stdin.take();
        Self {
            name: name.to_string(),
            child,
            stdin,
            view,
            stderr,
        }
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.view.lock().unwrap().assigned.clone()
    }

    fn report(&self) -> String {
        let view = self.view.lock().unwrap();
        format!(
            "member {}: assigned {:?}, consumed {}, events:\n  {}\n  stderr: {}",
            self.name,
            view.assigned,
            view.consumed.len(),
            view.lines.join("\n  "),
            tail(&self.stderr.lock().unwrap(), 2000)
        )
    }

    /// Closes stdin: the member commits, leaves the group and exits.
    fn stop(&mut self, broker: &BrokerProcess) {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{} exited {status}\n{}",
                    self.name,
                    self.report()
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit\n{}\nbroker log:\n{}",
                self.name,
                self.report(),
                tail(&broker.logs(), 8000)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The reader thread may still be draining the last lines.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.view.lock().unwrap().closed && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(self.view.lock().unwrap().closed, "{}", self.report());
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when every partition in `0..partitions` is owned by exactly one of
/// `members` and each member owns at least one.
fn owned_exactly_once(members: &[&Member], partitions: i32) -> bool {
    let mut owners: BTreeMap<i32, usize> = BTreeMap::new();
    for member in members {
        let assigned = member.assignment();
        if assigned.is_empty() {
            return false;
        }
        for p in assigned {
            *owners.entry(p).or_default() += 1;
        }
    }
    owners.keys().copied().eq(0..partitions) && owners.values().all(|&n| n == 1)
}

/// Waits until `members` split the partitions exactly, and still do a moment
/// later (no rebalance in flight).
fn wait_for_split(broker: &BrokerProcess, members: &[&Member], partitions: i32, step: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if owned_exactly_once(members, partitions) {
            std::thread::sleep(Duration::from_millis(1500));
            if owned_exactly_once(members, partitions) {
                return;
            }
        }
        if Instant::now() > deadline {
            let reports: Vec<String> = members.iter().map(|m| m.report()).collect();
            panic!(
                "{step}: partitions not split exactly once among {} members\n{}\nbroker log:\n{}",
                members.len(),
                reports.join("\n"),
                tail(&broker.logs(), 8000)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn confluent_members_joining_and_leaving_one_by_one_always_own_each_partition_exactly_once() {
    const TOPIC: &str = "rebalanced";
    const GROUP: &str = "one-three-one";
    const PARTITIONS: i32 = 4;
    let broker = BrokerProcess::start(&[]);
    new_topic(&broker, TOPIC, PARTITIONS);
    let mut produced = 0;
    let mut produce_round = |count: usize| {
        for p in 0..PARTITIONS {
            produce(&broker, TOPIC, p, produced, count);
        }
        produced += count;
    };
    produce_round(50);

    let mut a = Member::start(&broker, GROUP, TOPIC, "a");
    wait_for_split(&broker, &[&a], PARTITIONS, "a alone");
    let mut b = Member::start(&broker, GROUP, TOPIC, "b");
    wait_for_split(&broker, &[&a, &b], PARTITIONS, "a and b");
    let mut c = Member::start(&broker, GROUP, TOPIC, "c");
    wait_for_split(&broker, &[&a, &b, &c], PARTITIONS, "a, b and c");
    produce_round(50);
    c.stop(&broker);
    wait_for_split(&broker, &[&a, &b], PARTITIONS, "c left");
    b.stop(&broker);
    wait_for_split(&broker, &[&a], PARTITIONS, "b left");
    produce_round(50);

    // Everything produced is consumed by someone: no gap.
    let ends = end_offsets(&broker, TOPIC, PARTITIONS);
    let members = [&a, &b, &c];
    let deadline = Instant::now() + WAIT;
    loop {
        let mut consumed: BTreeSet<(i32, i64)> = BTreeSet::new();
        for m in members {
            consumed.extend(m.view.lock().unwrap().consumed.iter().copied());
        }
        let expected: BTreeSet<(i32, i64)> = ends
            .iter()
            .flat_map(|(&p, &end)| (0..end).map(move |o| (p, o)))
            .collect();
        if consumed == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing {:?}\n{}",
            expected.difference(&consumed).take(20).collect::<Vec<_>>(),
            members.map(|m| m.report()).join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    a.stop(&broker);
    let mut client = WireClient::connect(broker.addr).unwrap();
    let committed = fetch(&mut client, 7, GROUP, TOPIC, &[0, 1, 2, 3]);
    assert_eq!(
        committed,
        ends.values().copied().collect::<Vec<_>>(),
        "committed offsets end at the high watermarks"
    );
    let described = describe(&mut client, 5, GROUP);
    assert_eq!(described.groups[0].group_state.as_str(), "Empty");
}

// ---- committed offsets across a broker restart ----

#[derive(Debug, serde::Deserialize)]
struct Committed {
    committed: BTreeMap<String, i64>,
}

#[derive(Debug, serde::Deserialize)]
struct Resumed {
    first: BTreeMap<String, i64>,
}

#[test]
fn offsets_committed_by_a_group_consumer_survive_broker_kill_and_a_new_consumer_resumes_there() {
    const TOPIC: &str = "resumable";
    let mut broker = BrokerProcess::start(&[]);
    new_topic(&broker, TOPIC, 3);
    for p in 0..3 {
        produce(&broker, TOPIC, p, 0, 20);
    }
    let before: Committed = run_script(
        &broker,
        "group_offsets.py",
        &["consume-commit", "g", TOPIC, "30"],
    );
    let total: i64 = before.committed.values().filter(|&&o| o >= 0).sum();
    assert_eq!(total, 30, "{before:?}");
    let mut client = WireClient::connect(broker.addr).unwrap();
    let wire_before = fetch(&mut client, 7, "g", TOPIC, &[0, 1, 2]);

    broker.kill9();
    broker.restart();

    let after: Committed = run_script(&broker, "group_offsets.py", &["committed", "g", TOPIC, "3"]);
    assert_eq!(
        after.committed, before.committed,
        "committed offsets survive exactly"
    );
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(fetch(&mut client, 7, "g", TOPIC, &[0, 1, 2]), wire_before);

    let resumed: Resumed = run_script(&broker, "group_offsets.py", &["resume", "g", TOPIC, "3"]);
    for (partition, &committed) in &before.committed {
        let expected = if committed < 0 { 0 } else { committed };
        if expected < 20 {
            assert_eq!(
                resumed.first.get(partition),
                Some(&expected),
                "partition {partition} resumes at its committed offset: {resumed:?}"
            );
        } else {
            assert_eq!(resumed.first.get(partition), None, "{resumed:?}");
        }
    }
}

// ---- the raw wire ----

#[test]
fn every_advertised_version_of_each_group_api_answers() {
    let broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "versions", 1), NONE);

    for version in 0..=7 {
        let group_id = format!("join-v{version}");
        let joined = join_new(&mut client, version, &group_id);
        assert!(joined.generation_id >= 1);
        assert_eq!(joined.leader, joined.member_id);
        assert_eq!(joined.protocol_name.as_deref(), Some("range"));
        assert_eq!(joined.members.len(), 1);
        assert_eq!(joined.members[0].metadata, Bytes::from("range-metadata"));
    }

    for version in 0..=5 {
        let group_id = format!("sync-v{version}");
        let joined = join_new(&mut client, 5, &group_id);
        let member = joined.member_id.to_string();
        let synced = sync(
            &mut client,
            version,
            &group_id,
            &member,
            joined.generation_id,
            b"mine",
        );
        assert_eq!(synced.error_code, NONE, "SyncGroup v{version}");
        assert_eq!(synced.assignment, Bytes::from_static(b"mine"));
    }

    let (member, generation) = stable_group(&mut client, "shared");
    for version in 0..=4 {
        assert_eq!(
            heartbeat(&mut client, version, "shared", &member, generation),
            NONE,
            "Heartbeat v{version}"
        );
    }
    for version in 2..=9 {
        let offset = i64::from(version) * 10;
        let codes = commit(
            &mut client,
            version,
            "shared",
            &member,
            generation,
            &[("versions", &[(0, offset)])],
            "meta",
        );
        assert_eq!(codes, [[NONE]], "OffsetCommit v{version}");
        for fetch_version in [1, 7] {
            assert_eq!(
                fetch(&mut client, fetch_version, "shared", "versions", &[0]),
                [offset]
            );
        }
    }
    for version in 1..=7 {
        assert_eq!(
            fetch(&mut client, version, "shared", "versions", &[0]),
            [90]
        );
    }
    for version in 0..=5 {
        let described = describe(&mut client, version, "shared");
        let g = &described.groups[0];
        assert_eq!(g.error_code, NONE, "DescribeGroups v{version}");
        assert_eq!(g.group_state.as_str(), "Stable");
        assert_eq!(g.protocol_type.as_str(), "consumer");
        assert_eq!(g.protocol_data.as_str(), "range");
        assert_eq!(g.members.len(), 1);
        assert_eq!(g.members[0].member_id.as_str(), member);
        assert_eq!(g.members[0].member_assignment, Bytes::from_static(b"all"));
    }
    for version in 0..=4 {
        let listed = list(&mut client, version);
        assert_eq!(listed.error_code, NONE, "ListGroups v{version}");
        let shared = listed
            .groups
            .iter()
            .find(|g| g.group_id.as_str() == "shared")
            .expect("shared is listed");
        assert_eq!(shared.protocol_type.as_str(), "consumer");
        if version >= 4 {
            assert_eq!(shared.group_state.as_str(), "Stable");
        }
    }
    for version in 0..=5 {
        let group_id = format!("leave-v{version}");
        let joined = join_new(&mut client, 5, &group_id);
        let response = leave(&mut client, version, &group_id, &[&joined.member_id]);
        assert_eq!(response.error_code, NONE, "LeaveGroup v{version}");
        if version >= 3 {
            assert_eq!(response.members.len(), 1);
            assert_eq!(response.members[0].error_code, NONE);
        }
        let described = describe(&mut client, 5, &group_id);
        assert_eq!(described.groups[0].group_state.as_str(), "Empty");
    }
    for version in 0..=2 {
        let group_id = format!("delete-v{version}");
        let codes = commit(
            &mut client,
            7,
            &group_id,
            "",
            -1,
            &[("versions", &[(0, 1)])],
            "",
        );
        assert_eq!(codes, [[NONE]]);
        assert_eq!(delete(&mut client, version, &[&group_id]), [NONE]);
        assert_eq!(fetch(&mut client, 7, &group_id, "versions", &[0]), [-1]);
    }
}

#[test]
fn generations_keep_growing_across_a_restart_so_members_from_before_get_illegal_generation() {
    let mut broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "gens", 1), NONE);
    let (member, generation) = stable_group(&mut client, "survivor");
    let codes = commit(
        &mut client,
        8,
        "survivor",
        &member,
        generation,
        &[("gens", &[(0, 7)])],
        "",
    );
    assert_eq!(codes, [[NONE]]);

    broker.kill9();
    broker.restart();
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(
        heartbeat(&mut client, 4, "survivor", &member, generation),
        ILLEGAL_GENERATION
    );
    let codes = commit(
        &mut client,
        8,
        "survivor",
        &member,
        generation,
        &[("gens", &[(0, 99)])],
        "",
    );
    assert_eq!(codes, [[ILLEGAL_GENERATION]]);
    let synced = sync(&mut client, 5, "survivor", &member, generation, b"");
    assert_eq!(synced.error_code, ILLEGAL_GENERATION);
    assert_eq!(
        fetch(&mut client, 7, "survivor", "gens", &[0]),
        [7],
        "the stale commit was refused"
    );
    let rejoined = join_new(&mut client, 5, "survivor");
    assert!(
        rejoined.generation_id > generation,
        "generation {} after the restart, {generation} before",
        rejoined.generation_id
    );
}

#[test]
fn bad_group_requests_get_the_right_errors_and_the_group_stays_healthy() {
    let broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "known", 2), NONE);
    let (member, generation) = stable_group(&mut client, "healthy");
    let healthy = |client: &mut WireClient| {
        assert_eq!(heartbeat(client, 4, "healthy", &member, generation), NONE);
        let described = describe(client, 5, "healthy");
        let g = &described.groups[0];
        assert_eq!(g.group_state.as_str(), "Stable");
        assert_eq!(g.members.len(), 1);
        assert_eq!(g.members[0].member_id.as_str(), member);
    };

    // Unknown topics and partitions: refused each, the rest committed.
    let codes = commit(
        &mut client,
        8,
        "healthy",
        &member,
        generation,
        &[
            ("known", &[(0, 10), (7, 1), (-1, 1)]),
            ("missing", &[(0, 1)]),
        ],
        "",
    );
    assert_eq!(
        codes,
        [
            vec![NONE, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_OR_PARTITION],
            vec![UNKNOWN_TOPIC_OR_PARTITION]
        ]
    );
    assert_eq!(
        fetch(&mut client, 7, "healthy", "known", &[0, 1, 7]),
        [10, -1, -1]
    );
    assert_eq!(fetch(&mut client, 7, "healthy", "missing", &[0]), [-1]);
    let too_long = "m".repeat(4097);
    let codes = commit(
        &mut client,
        8,
        "healthy",
        &member,
        generation,
        &[("known", &[(1, 5)])],
        &too_long,
    );
    assert_eq!(codes, [[OFFSET_METADATA_TOO_LARGE]]);
    healthy(&mut client);

    // Stale or future generations, unknown members.
    for wrong in [generation - 1, generation + 1] {
        let codes = commit(
            &mut client,
            8,
            "healthy",
            &member,
            wrong,
            &[("known", &[(0, 99)])],
            "",
        );
        assert_eq!(
            codes,
            [[ILLEGAL_GENERATION]],
            "commit at generation {wrong}"
        );
        assert_eq!(
            heartbeat(&mut client, 4, "healthy", &member, wrong),
            ILLEGAL_GENERATION
        );
        assert_eq!(
            sync(&mut client, 5, "healthy", &member, wrong, b"").error_code,
            ILLEGAL_GENERATION
        );
    }
    let codes = commit(
        &mut client,
        8,
        "healthy",
        "ghost",
        generation,
        &[("known", &[(0, 99)])],
        "",
    );
    assert_eq!(codes, [[UNKNOWN_MEMBER_ID]]);
    let codes = commit(
        &mut client,
        8,
        "healthy",
        "",
        -1,
        &[("known", &[(0, 99)])],
        "",
    );
    assert_eq!(
        codes,
        [[UNKNOWN_MEMBER_ID]],
        "simple commits only while the group is empty"
    );
    assert_eq!(
        heartbeat(&mut client, 4, "healthy", "ghost", generation),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        sync(&mut client, 5, "healthy", "ghost", generation, b"").error_code,
        UNKNOWN_MEMBER_ID
    );
    let rejoin_unknown = call_join(
        &mut client,
        5,
        &join_request("healthy", "ghost", &["range"]),
    );
    assert_eq!(rejoin_unknown.error_code, UNKNOWN_MEMBER_ID);
    assert_eq!(
        fetch(&mut client, 7, "healthy", "known", &[0]),
        [10],
        "nothing refused was stored"
    );
    healthy(&mut client);

    // No protocol in common, another protocol type, bad ids and timeouts.
    let other = call_join(&mut client, 5, &join_request("healthy", "", &["sticky"]));
    assert_eq!(other.error_code, INCONSISTENT_GROUP_PROTOCOL);
    let mut connect = join_request("healthy", "", &["range"]);
    connect.protocol_type = s("connect");
    assert_eq!(
        call_join(&mut client, 5, &connect).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    let none = call_join(&mut client, 5, &join_request("healthy", "", &[]));
    assert_eq!(none.error_code, INCONSISTENT_GROUP_PROTOCOL);
    assert_eq!(
        call_join(&mut client, 5, &join_request("", "", &["range"])).error_code,
        INVALID_GROUP_ID
    );
    let mut hasty = join_request("healthy", "", &["range"]);
    hasty.session_timeout_ms = 10;
    assert_eq!(
        call_join(&mut client, 5, &hasty).error_code,
        INVALID_SESSION_TIMEOUT
    );
    healthy(&mut client);

    // Deleting: refused while the group has members, then allowed.
    assert_eq!(
        delete(&mut client, 2, &["healthy", "never-existed", ""]),
        [NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, INVALID_GROUP_ID]
    );
    healthy(&mut client);
    let left = leave(&mut client, 5, "healthy", &[&member, "ghost"]);
    assert_eq!(left.error_code, NONE);
    let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, [NONE, UNKNOWN_MEMBER_ID]);
    assert_eq!(
        describe(&mut client, 5, "healthy").groups[0]
            .group_state
            .as_str(),
        "Empty"
    );
    assert_eq!(delete(&mut client, 2, &["healthy"]), [NONE]);
    assert_eq!(fetch(&mut client, 7, "healthy", "known", &[0]), [-1]);
    assert_eq!(
        describe(&mut client, 5, "healthy").groups[0]
            .group_state
            .as_str(),
        "Dead"
    );
    let listed = list(&mut client, 4);
    assert!(listed
        .groups
        .iter()
        .all(|g| g.group_id.as_str() != "healthy"));
}
