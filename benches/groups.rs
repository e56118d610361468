//! Consumer groups in-process: requests are encoded as frames and run
//! through `handlers::dispatch` against a `Broker` in a temporary directory
//! (no sockets), with the group coordinator task on the same tokio runtime.
//!
//! - `groups/stable_after_join/delay_<D>ms/<N>`: time from N members sending
//!   their first JoinGroup (v5, all at once, each on its own task) until all
//!   N hold a SyncGroup (v3) assignment of one generation, i.e. the group is
//!   Stable with all of them. Each iteration uses a fresh group, so it
//!   starts from Empty and waits the coordinator's initial rebalance delay
//!   `D` (`GroupConfig::initial_rebalance_delay_ms`, 100 ms by default;
//!   lowered here to 0 and 10 ms). Members follow the protocol as a client
//!   would: MEMBER_ID_REQUIRED → rejoin with the id; the leader assigns;
//!   REBALANCE_IN_PROGRESS (from SyncGroup or a heartbeat while waiting for
//!   the others) → rejoin. With D = 0 the first members can complete a
//!   generation before the rest arrive, so the figure includes the extra
//!   rebalances that causes. Session and rebalance timeouts: 1 s. After
//!   each iteration (untimed) the members leave.
//! - `groups/offset_commit/...`: OffsetCommit (v7, 4 partitions per commit)
//!   throughput for members of a Stable group, one committer at a time and 8
//!   committers at once (8 members of one group, so their commits land in the
//!   same `__consumer_offsets` partition). Every commit is fsynced before it
//!   is answered, so the concurrent figure shows how well the store's group
//!   commit shares one fsync among commits.
//!
//! Run: `cargo bench --bench groups`. The data directory is under `$TMPDIR`.
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot set up should stop loudly

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sediment_broker::handlers::{dispatch, Reply};
use sediment_broker::protocol::codec::{decode_header, header_prefix};
use sediment_broker::{Broker, BrokerConfig, GroupConfig};
use sediment_protocol::messages::join_group::JoinGroupRequestProtocol;
use sediment_protocol::messages::leave_group::MemberIdentity;
use sediment_protocol::messages::offset_commit::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use sediment_protocol::messages::sync_group::SyncGroupRequestAssignment;
use sediment_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use sediment_protocol::{ApiKey, Message, Reader, RequestHeader, ResponseHeader, Writer};
use tokio::sync::watch;

const NONE: i16 = 0;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

/// Topic the commits name (it must exist).
const TOPIC: &str = "bench-commits";
/// Partitions per commit.
const PARTITIONS_PER_COMMIT: i32 = 4;
/// Concurrent committers in the concurrent case.
const COMMITTERS: usize = 8;
/// Commits each concurrent committer makes per iteration.
const COMMITS_PER_COMMITTER: u64 = 8;

fn s(text: &str) -> String {
    text.to_string()
}

/// Runs one request through the broker's dispatch and decodes the response.
async fn call<Req: Message, Resp: Message>(
    broker: &Arc<Broker>,
    api_key: ApiKey,
    version: i16,
    body: &Req,
) -> Resp {
    let mut w = Writer::new();
    RequestHeader {
        request_api_key: api_key as i16,
        request_api_version: version,
        correlation_id: 7,
        client_id: Some("bench".into()),
    }
    .encode(&mut w, api_key.request_header_version(version))
    .expect("header");
    body.encode(&mut w, version).expect("body");
    let frame = w.into_bytes();
    let prefix = header_prefix(&frame).expect("prefix");
    let request = decode_header(frame, api_key, prefix.api_version).expect("header");
    let Reply::Frame(chunks) = dispatch(broker, request, &in_process_session())
        .await
        .expect("dispatch")
    else {
        panic!("{api_key:?} got no response");
    };
    let response: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let mut r = Reader::new(Bytes::from(response).slice(4..));
    ResponseHeader::decode(&mut r, api_key.response_header_version(version))
        .expect("response header");
    Resp::decode(&mut r, version).expect("response body")
}

fn open_broker(dir: &tempfile::TempDir, initial_rebalance_delay_ms: u64) -> Arc<Broker> {
    let mut config = BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        ..BrokerConfig::default()
    };
    config.group = GroupConfig {
        initial_rebalance_delay_ms,
        ..GroupConfig::default()
    };
    Arc::new(Broker::open(config).expect("broker"))
}

/// Session and rebalance timeouts of a member, in ms.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    session_ms: i32,
    rebalance_ms: i32,
}

/// Shared progress of one group forming: how many members hold an
/// assignment of each generation, and the generation all `size` hold.
struct Forming {
    size: usize,
    synced: Mutex<BTreeMap<i32, usize>>,
    stable: watch::Sender<Option<i32>>,
}

/// One member's part in forming a Stable group of `forming.size` members:
/// joins (answering MEMBER_ID_REQUIRED), syncs (assigning as the leader),
/// and rejoins whenever told the group is rebalancing, until every member
/// holds an assignment of one generation. Returns (member id, generation).
async fn member(
    broker: Arc<Broker>,
    group: String,
    timeouts: Timeouts,
    forming: Arc<Forming>,
) -> (String, i32) {
    let mut member_id = String::new();
    let mut stable = forming.stable.subscribe();
    for _attempt in 0..1000 {
        let join = JoinGroupRequest::default()
            .with_group_id(s(&group))
            .with_session_timeout_ms(timeouts.session_ms)
            .with_rebalance_timeout_ms(timeouts.rebalance_ms)
            .with_member_id(s(&member_id))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"subscription"))]);
        let joined: JoinGroupResponse = call(&broker, ApiKey::JoinGroup, 5, &join).await;
        match joined.error_code {
            NONE => {}
            MEMBER_ID_REQUIRED => {
                member_id = joined.member_id.to_string();
                continue;
            }
            REBALANCE_IN_PROGRESS => continue,
            UNKNOWN_MEMBER_ID => {
                member_id.clear();
                continue;
            }
            code => panic!("JoinGroup of {group}: error {code}"),
        }
        member_id = joined.member_id.to_string();
        let generation = joined.generation_id;
        let assignments = if joined.leader == joined.member_id {
            joined
                .members
                .iter()
                .map(|m| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(m.member_id.clone())
                        .with_assignment(Bytes::from(format!("assigned to {}", m.member_id)))
                })
                .collect()
        } else {
            Vec::new()
        };
        let sync = SyncGroupRequest::default()
            .with_group_id(s(&group))
            .with_generation_id(generation)
            .with_member_id(s(&member_id))
            .with_assignments(assignments);
        let synced: SyncGroupResponse = call(&broker, ApiKey::SyncGroup, 3, &sync).await;
        match synced.error_code {
            NONE => assert!(!synced.assignment.is_empty(), "empty assignment"),
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => continue,
            code => panic!("SyncGroup of {group}: error {code}"),
        }
        {
            let mut synced = forming.synced.lock().unwrap();
            let count = synced.entry(generation).or_default();
            *count += 1;
            if *count == forming.size {
                forming.stable.send_replace(Some(generation));
            }
        }
        // Wait for the others, heartbeating so that a rebalance started by
        // a later joiner is noticed (as a client's heartbeat thread would).
        loop {
            if *stable.borrow_and_update() == Some(generation) {
                return (member_id, generation);
            }
            let _ = tokio::time::timeout(Duration::from_millis(2), stable.changed()).await;
            if *stable.borrow() == Some(generation) {
                return (member_id, generation);
            }
            let heartbeat = HeartbeatRequest::default()
                .with_group_id(s(&group))
                .with_generation_id(generation)
                .with_member_id(s(&member_id));
            let answer: HeartbeatResponse = call(&broker, ApiKey::Heartbeat, 3, &heartbeat).await;
            match answer.error_code {
                NONE => {}
                REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => break,
                UNKNOWN_MEMBER_ID => {
                    member_id.clear();
                    break;
                }
                code => panic!("Heartbeat of {group}: error {code}"),
            }
        }
    }
    panic!("member of {group} did not settle within 1000 attempts");
}

/// Forms a Stable group of `size` members; returns their ids and generation.
async fn form_group(
    broker: &Arc<Broker>,
    group: &str,
    size: usize,
    timeouts: Timeouts,
) -> (Vec<String>, i32) {
    let forming = Arc::new(Forming {
        size,
        synced: Mutex::new(BTreeMap::new()),
        stable: watch::channel(None).0,
    });
    let tasks: Vec<_> = (0..size)
        .map(|_| {
            tokio::spawn(member(
                Arc::clone(broker),
                group.to_string(),
                timeouts,
                Arc::clone(&forming),
            ))
        })
        .collect();
    let mut ids = Vec::with_capacity(size);
    let mut generation = None;
    for task in tasks {
        let (id, g) = task.await.expect("member task");
        assert!(generation.is_none_or(|seen| seen == g), "one generation");
        generation = Some(g);
        ids.push(id);
    }
    (ids, generation.expect("at least one member"))
}

async fn leave(broker: &Arc<Broker>, group: &str, members: &[String]) {
    let request = LeaveGroupRequest::default()
        .with_group_id(s(group))
        .with_members(
            members
                .iter()
                .map(|m| MemberIdentity::default().with_member_id(s(m)))
                .collect(),
        );
    let response: LeaveGroupResponse = call(broker, ApiKey::LeaveGroup, 3, &request).await;
    assert_eq!(response.error_code, NONE, "LeaveGroup of {group}");
}

fn stable_after_join(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let timeouts = Timeouts {
        session_ms: 1000,
        rebalance_ms: 1000,
    };
    let mut bench = c.benchmark_group("groups/stable_after_join");
    bench
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for delay_ms in [0, 10] {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open_broker(&dir, delay_ms);
        let next_group = AtomicU64::new(0);
        for size in [1usize, 10, 100] {
            bench.bench_with_input(
                BenchmarkId::new(format!("delay_{delay_ms}ms"), size),
                &size,
                |b, &size| {
                    b.iter_custom(|iters| {
                        runtime.block_on(async {
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                let group = format!(
                                    "stable-{size}-{}",
                                    next_group.fetch_add(1, Ordering::Relaxed)
                                );
                                let started = Instant::now();
                                let (members, _) =
                                    form_group(&broker, &group, size, timeouts).await;
                                total += started.elapsed();
                                leave(&broker, &group, &members).await;
                            }
                            total
                        })
                    })
                },
            );
        }
    }
    bench.finish();
}

fn commit_request(
    group: &str,
    member: &str,
    generation: i32,
    first: i32,
    offset: i64,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(s(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(s(TOPIC))
            .with_partitions(
                (first..first + PARTITIONS_PER_COMMIT)
                    .map(|p| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(-1)
                            .with_committed_metadata(Some(String::new()))
                    })
                    .collect(),
            )])
}

async fn commit(broker: &Arc<Broker>, request: &OffsetCommitRequest) {
    let response: OffsetCommitResponse = call(broker, ApiKey::OffsetCommit, 7, request).await;
    for topic in &response.topics {
        for partition in &topic.partitions {
            assert_eq!(partition.error_code, NONE, "OffsetCommit");
        }
    }
}

fn offset_commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open_broker(&dir, 0);
    broker
        .create_topic(
            TOPIC,
            PARTITIONS_PER_COMMIT * COMMITTERS as i32,
            &BTreeMap::new(),
            false,
        )
        .expect("topic");
    // Long sessions: the members must outlive the measurement without
    // heartbeats (each commit also counts as one).
    let timeouts = Timeouts {
        session_ms: 600_000,
        rebalance_ms: 10_000,
    };
    let (single, single_generation) =
        runtime.block_on(form_group(&broker, "commit-single", 1, timeouts));
    let (many, many_generation) =
        runtime.block_on(form_group(&broker, "commit-many", COMMITTERS, timeouts));

    let mut bench = c.benchmark_group("groups/offset_commit");
    bench
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    let offset = AtomicU64::new(0);
    bench.throughput(Throughput::Elements(1));
    bench.bench_function("sequential_4_partitions", |b| {
        b.iter(|| {
            let next = offset.fetch_add(1, Ordering::Relaxed) as i64;
            let request = commit_request("commit-single", &single[0], single_generation, 0, next);
            runtime.block_on(commit(&broker, &request))
        })
    });
    bench.throughput(Throughput::Elements(
        COMMITTERS as u64 * COMMITS_PER_COMMITTER,
    ));
    bench.bench_function(
        format!("concurrent_{COMMITTERS}_committers_4_partitions"),
        |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let base =
                            offset.fetch_add(COMMITS_PER_COMMITTER, Ordering::Relaxed) as i64;
                        let tasks: Vec<_> = many
                            .iter()
                            .enumerate()
                            .map(|(i, member)| {
                                let broker = Arc::clone(&broker);
                                let member = member.clone();
                                tokio::spawn(async move {
                                    for k in 0..COMMITS_PER_COMMITTER as i64 {
                                        let request = commit_request(
                                            "commit-many",
                                            &member,
                                            many_generation,
                                            i as i32 * PARTITIONS_PER_COMMIT,
                                            base + k,
                                        );
                                        commit(&broker, &request).await;
                                    }
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await.expect("committer");
                        }
                    }
                    started.elapsed()
                })
            })
        },
    );
    bench.finish();
}

criterion_group!(benches, stable_after_join, offset_commit);
criterion_main!(benches);

/// The session of an in-process caller: anonymous, on the plaintext listener.
fn in_process_session() -> sediment_broker::session::Session {
    sediment_broker::session::Session::anonymous(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
}
