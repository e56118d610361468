//! Crash loop: SIGKILL the real broker while producers wait for acks=-1
//! (default `--flush always`), restart it on the same data directory, and
//! repeat. Holds the broker to DESIGN §1.1 and §3 ("an acknowledged message
//! survives kill -9"; "an acknowledged offset is never reused"):
//! - every acknowledged batch is in the log exactly once, at the offset its
//!   acknowledgement named, byte-identical to what was sent except the two
//!   fields the broker stamps (`baseOffset`, `partitionLeaderEpoch`);
//! - offsets are contiguous from 0 to the high watermark, and no offset was
//!   handed out twice;
//! - a batch that was sent but not acknowledged may be lost or kept, but if
//!   kept it is byte-identical to a batch that was sent;
//! - each restart after a kill goes through recovery and says so in its log.
//!
//! Payloads identify themselves: batch seed = producer id × 1 000 000 +
//! sequence, and the seed is in every record key, so a read-back tells lost,
//! corrupt and duplicate apart. The kill delays come from a seeded xorshift
//! (override with `SEDIMENT_CRASH_SEED`), printed so a failure can be re-run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::wire::WireClient;
use common::BrokerProcess;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sediment_broker::storage::batch::{BatchHeader, BatchIter};
use sediment_broker::storage::test_batches::batch_with_seed;

/// Kill/restart cycles.
const CYCLES: usize = 20;
/// The 1-partition topic (auto-created by the first produce).
const SINGLE: &str = "crash-single";
/// The 2-partition topic (created with CreateTopics).
const DOUBLE: &str = "crash-double";
/// Producer id → (topic, partition). Several producers share a partition so
/// that group commit covers batches from different connections.
const PRODUCERS: &[(&str, i32)] = &[
    (SINGLE, 0),
    (SINGLE, 0),
    (SINGLE, 0),
    (DOUBLE, 0),
    (DOUBLE, 1),
    (DOUBLE, 0),
];
/// Upper bound on one producer's run within a cycle, in case the kill never lands.
const PRODUCER_DEADLINE: Duration = Duration::from_secs(20);
/// Upper bound on batches one producer sends within a cycle.
const MAX_BATCHES_PER_CYCLE: u64 = 100_000;

/// A small xorshift64* generator: deterministic, no dependency.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// One batch a producer sent.
#[derive(Clone)]
struct Sent {
    producer: usize,
    seed: u64,
    partition: (String, i32),
    bytes: Vec<u8>,
    /// The base offset the broker acknowledged, if it did.
    acked: Option<i64>,
}

/// What one producer thread reports after the broker died under it.
struct ProducerRun {
    sent: Vec<Sent>,
    next_sequence: u64,
    /// Produce responses with a non-zero error code: (seed, code).
    errors: Vec<(u64, i16)>,
}

/// The bytes the broker must keep as sent: everything except `baseOffset`
/// (0..8) and `partitionLeaderEpoch` (12..16), which it stamps.
fn unstamped(batch: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.len() - 12);
    out.extend_from_slice(&batch[8..12]);
    out.extend_from_slice(&batch[16..]);
    out
}

/// Produces self-verifying batches to `partition` until the connection fails.
fn run_producer(
    addr: SocketAddr,
    producer: usize,
    partition: (String, i32),
    first_sequence: u64,
    rng_seed: u64,
) -> ProducerRun {
    let mut rng = XorShift::new(rng_seed);
    let mut run = ProducerRun {
        sent: Vec::new(),
        next_sequence: first_sequence,
        errors: Vec::new(),
    };
    let Ok(mut client) = WireClient::connect(addr) else {
        return run;
    };
    let deadline = Instant::now() + PRODUCER_DEADLINE;
    for _ in 0..MAX_BATCHES_PER_CYCLE {
        if Instant::now() > deadline {
            break;
        }
        let sequence = run.next_sequence;
        run.next_sequence += 1;
        let seed = producer as u64 * 1_000_000 + sequence;
        let count = rng.range(1, 5) as usize;
        let value_len = rng.range(8, 300) as usize;
        let bytes = batch_with_seed(count, value_len, 1_700_000_000_000 + seed as i64, seed);
        let result = client.produce(&partition.0, partition.1, Bytes::from(bytes.clone()));
        let acked = match result {
            Ok((0, base_offset)) => Some(base_offset),
            Ok((code, _)) => {
                run.errors.push((seed, code));
                None
            }
            Err(_) => None,
        };
        let connection_lost = result.is_err();
        run.sent.push(Sent {
            producer,
            seed,
            partition: partition.clone(),
            bytes,
            acked,
        });
        if connection_lost {
            break;
        }
    }
    run
}

/// Creates the 2-partition topic.
fn create_double_topic(addr: SocketAddr) {
    let mut client = WireClient::connect(addr).unwrap();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(DOUBLE)))
            .with_num_partitions(2)
            .with_replication_factor(1)]);
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &request).unwrap();
    let code = response.topics.first().map(|t| t.error_code);
    assert_eq!(code, Some(0), "CreateTopics {DOUBLE}: {response:?}");
}

/// Fetches a whole partition from offset 0; returns (high watermark, batches).
fn fetch_all(addr: SocketAddr, topic: &str, partition: i32) -> (i64, Vec<Vec<u8>>) {
    let mut client = WireClient::connect(addr).unwrap();
    let mut next = 0i64;
    let mut batches = Vec::new();
    for _ in 0..100_000 {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(8 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(next)
                    .with_partition_max_bytes(1 << 20)])]);
        let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request).unwrap();
        let data = response
            .responses
            .first()
            .and_then(|t| t.partitions.first())
            .expect("fetch response has the partition");
        assert_eq!(data.error_code, 0, "fetch {topic}-{partition} at {next}");
        let high_watermark = data.high_watermark;
        if next >= high_watermark {
            assert_eq!(next, high_watermark, "{topic}-{partition} read past the HW");
            return (high_watermark, batches);
        }
        let records = data.records.clone().unwrap_or_default();
        assert!(
            !records.is_empty(),
            "{topic}-{partition}: no records at {next} below HW {high_watermark}"
        );
        for item in BatchIter::verified(&records) {
            let (at, header) = item.unwrap_or_else(|(at, defect)| {
                panic!("{topic}-{partition}: invalid batch at byte {at} of a fetch from {next}: {defect}")
            });
            assert_eq!(
                header.base_offset(),
                next,
                "{topic}-{partition}: batch at byte {at} breaks offset continuity"
            );
            next = header.last_offset() + 1;
            batches.push(header.bytes().to_vec());
        }
    }
    panic!("{topic}-{partition}: fetch did not reach the high watermark");
}

/// Checks one partition's log against what was sent to it; returns
/// (acknowledged batches, unacknowledged batches found in the log).
fn verify_partition(
    addr: SocketAddr,
    topic: &str,
    partition: i32,
    sent: &[&Sent],
) -> (usize, usize) {
    let (high_watermark, batches) = fetch_all(addr, topic, partition);
    let mut by_bytes: HashMap<Vec<u8>, usize> = HashMap::new();
    for (i, s) in sent.iter().enumerate() {
        let previous = by_bytes.insert(unstamped(&s.bytes), i);
        assert!(previous.is_none(), "two sent batches are identical");
    }

    // No offset handed out twice, and every ack below the high watermark.
    let mut acked_at: BTreeMap<i64, u64> = BTreeMap::new();
    for s in sent {
        if let Some(offset) = s.acked {
            if let Some(other) = acked_at.insert(offset, s.seed) {
                panic!(
                    "{topic}-{partition}: offset {offset} acknowledged twice, to seeds {other} and {}",
                    s.seed
                );
            }
            assert!(
                offset < high_watermark,
                "{topic}-{partition}: acked offset {offset} (seed {}) is not below the HW {high_watermark}",
                s.seed
            );
        }
    }

    let mut seen = vec![false; sent.len()];
    let mut unacked_present = 0;
    for stored in &batches {
        let header = BatchHeader::parse(stored).unwrap();
        let Some(&i) = by_bytes.get(&unstamped(stored)) else {
            panic!(
                "{topic}-{partition}: batch at offset {} ({} bytes) matches nothing that was sent",
                header.base_offset(),
                stored.len()
            );
        };
        let s = sent[i];
        assert!(
            !seen[i],
            "{topic}-{partition}: batch seed {} (producer {}) stored twice, again at offset {}",
            s.seed,
            s.producer,
            header.base_offset()
        );
        seen[i] = true;
        match s.acked {
            Some(offset) => assert_eq!(
                header.base_offset(),
                offset,
                "{topic}-{partition}: seed {} was acknowledged at {offset}",
                s.seed
            ),
            None => unacked_present += 1,
        }
    }
    let mut acked = 0;
    for (i, s) in sent.iter().enumerate() {
        if let Some(offset) = s.acked {
            acked += 1;
            assert!(
                seen[i],
                "{topic}-{partition}: acknowledged batch seed {} (producer {}) at offset {offset} is lost",
                s.seed, s.producer
            );
        }
    }
    (acked, unacked_present)
}

#[test]
fn given_sigkill_during_acked_produce_when_restarted_repeatedly_then_every_acked_batch_survives_once_at_its_offset(
) {
    let rng_seed = std::env::var("SEDIMENT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5ed1_3e47_c0ff_ee01u64);
    eprintln!("crash loop seed {rng_seed} (set SEDIMENT_CRASH_SEED to replay)");
    let mut rng = XorShift::new(rng_seed);
    let started = Instant::now();

    let mut broker = BrokerProcess::start(&[]);
    create_double_topic(broker.addr);

    let mut sequences = vec![0u64; PRODUCERS.len()];
    let mut sent: Vec<Sent> = Vec::new();
    let mut errors: Vec<(u64, i16)> = Vec::new();
    let mut recovery_logs = 0;
    let mut truncation_logs = 0;

    for cycle in 0..CYCLES {
        let addr = broker.addr;
        let handles: Vec<_> = PRODUCERS
            .iter()
            .enumerate()
            .map(|(id, &(topic, partition))| {
                let first = sequences[id];
                let producer_rng = rng.next();
                thread::spawn(move || {
                    run_producer(
                        addr,
                        id,
                        (topic.to_string(), partition),
                        first,
                        producer_rng,
                    )
                })
            })
            .collect();

        let delay = rng.range(50, 400);
        thread::sleep(Duration::from_millis(delay));
        // Read the log before the kill: by now the stderr reader has caught up
        // with the startup lines.
        let logs = broker.logs();
        if cycle > 0 {
            assert!(
                logs.contains("no clean-shutdown marker"),
                "cycle {cycle}: the restart after SIGKILL did not log recovery:\n{logs}"
            );
            recovery_logs += 1;
            truncation_logs += logs.matches("truncated").count();
        }
        broker.kill9();

        let mut cycle_acked = 0;
        let mut cycle_sent = 0;
        for (id, handle) in handles.into_iter().enumerate() {
            let run = handle.join().expect("producer thread");
            sequences[id] = run.next_sequence;
            cycle_sent += run.sent.len();
            cycle_acked += run.sent.iter().filter(|s| s.acked.is_some()).count();
            sent.extend(run.sent);
            errors.extend(run.errors);
        }
        eprintln!(
            "cycle {cycle}: killed after {delay} ms; {cycle_sent} batches sent, {cycle_acked} acknowledged"
        );
        broker.restart();
    }

    // The final broker has recovered from the last kill too.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !broker.logs().contains("no clean-shutdown marker") && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let logs = broker.logs();
    assert!(
        logs.contains("no clean-shutdown marker"),
        "the final restart after SIGKILL did not log recovery:\n{logs}"
    );
    recovery_logs += 1;
    truncation_logs += logs.matches("truncated").count();
    for line in logs.lines().filter(|l| l.contains("recover")) {
        eprintln!("final restart: {line}");
    }

    assert!(
        errors.is_empty(),
        "a live broker answered produce with errors (seed, code): {errors:?}"
    );

    let mut total_acked = 0;
    let mut total_unacked_present = 0;
    for (topic, partition) in [(SINGLE, 0), (DOUBLE, 0), (DOUBLE, 1)] {
        let to_partition: Vec<&Sent> = sent
            .iter()
            .filter(|s| s.partition.0 == topic && s.partition.1 == partition)
            .collect();
        let (acked, unacked_present) =
            verify_partition(broker.addr, topic, partition, &to_partition);
        assert!(
            acked > 0,
            "{topic}-{partition}: no batch was acknowledged in {CYCLES} cycles"
        );
        eprintln!(
            "{topic}-{partition}: {} sent, {acked} acknowledged and present, {unacked_present} unacknowledged but present",
            to_partition.len()
        );
        total_acked += acked;
        total_unacked_present += unacked_present;
    }
    eprintln!(
        "{CYCLES} cycles in {:.1} s: {} batches sent, {total_acked} acknowledged, {total_unacked_present} unacknowledged kept; {recovery_logs} recoveries logged, {truncation_logs} truncation lines",
        started.elapsed().as_secs_f64(),
        sent.len()
    );
}
