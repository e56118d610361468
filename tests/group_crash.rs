//! Consumer-group crash test (issue 5): after any crash of a consumer or of
//! the broker, processing resumes from the last committed offset —
//! at-least-once, with no gap, and with duplicates bounded by what was in
//! flight at each crash.
//!
//! Setup: a 4-partition topic holding 20,000 self-verifying messages
//! (`seq:<n>:<crc32 of n>`, message n in partition n % 4 at offset n / 4),
//! produced with acks=-1 over the raw wire before anyone consumes. Then, on a
//! broker with a fixed port (so clients reconnect to the same address):
//! 1. two consumer processes A and B (confluent-kafka, one group, manual
//!    synchronous commits; `tests/python/group_ledger_consumer.py`) start;
//!    each appends what it processed to its own ledger file and fsyncs it
//!    before committing, at most [`BATCH`] messages per batch;
//! 2. A is SIGKILLed mid-stream; B takes over A's partitions once A's
//!    session (6 s) expires;
//! 3. a replacement C starts and the group splits the partitions again;
//! 4. the broker is SIGKILLed and restarted on the same data dir and port;
//! 5. the run ends when the group's committed offsets reach the high
//!    watermarks (bounded wait), and B and C leave the group.
//!
//! Asserted at the end:
//! - every offset of every partition below its high watermark is in some
//!   ledger: nothing was committed without being processed first;
//! - every ledger entry's digest (CRC-32 of the value, computed by the
//!   consumer) matches the message the broker serves at that offset, and
//!   the log holds exactly the messages produced;
//! - the committed offsets (OffsetFetch over the raw wire) equal the high
//!   watermarks;
//! - duplicates (ledger entries beyond one per offset) number at most
//!   [`BATCH`] × the consumers a crash could catch mid-batch: one for A's
//!   kill, two (B and C) for the broker's.
//!
//! At the broker's crash librdkafka usually still lands the pending commit:
//! having lost its membership, it commits with generation -1, which the
//! restored group (Empty until members rejoin) accepts as Kafka accepts such
//! commits for an Empty group. So most runs see only A's batch duplicated;
//! the bound covers the worst case.
//!
//! Timing: consumers are paced at [`RATE`] messages/s each (the "processing"
//! sleep sits between the ledger fsync and the commit, so a kill usually
//! catches a batch processed but not committed — the worst case), which
//! keeps the stream running across all the crashes; the test takes about
//! 20–25 s.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::canary::{self, create_topic, fetch, latest_offset, now_ms};
use common::wire::WireClient;
use common::{python_with_confluent_kafka, BrokerProcess};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde_json::Value;

const TOPIC: &str = "ledgered";
const GROUP: &str = "ledgered-group";
const PARTITIONS: i32 = 4;
/// Messages produced, spread evenly over the partitions.
const MESSAGES: i64 = 20_000;
/// Records per produced batch (one Produce request each).
const RECORDS_PER_PRODUCE: i64 = 250;
/// Most messages a consumer processes between two commits: the in-flight
/// batch a crash can catch processed but not committed.
const BATCH: usize = 500;
/// Messages per second each consumer processes.
const RATE: u32 = 800;
/// Consumers a crash can catch mid-batch: A at its kill, B and C at the
/// broker's.
const CONSUMERS_CAUGHT_BY_CRASHES: usize = 3;
/// Upper bound on the whole run, from the first consumer's start.
const DEADLINE: Duration = Duration::from_secs(120);
/// Processed messages before A is killed.
const KILL_A_AFTER: usize = 2_000;

/// CRC-32 (IEEE, reflected, as Python's `zlib.crc32`), bit by bit: an
/// implementation independent of the consumer's.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The value of message `n`: it names its sequence number and checks it.
fn message_value(n: i64) -> String {
    format!("seq:{n}:{:08x}", crc32(n.to_string().as_bytes()))
}

/// Where message `n` lands: (partition, offset).
fn placement(n: i64) -> (i32, i64) {
    let partitions = i64::from(PARTITIONS);
    ((n % partitions) as i32, n / partitions)
}

fn record(n: i64) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms(),
        key: Some(Bytes::from(n.to_string())),
        value: Some(Bytes::from(message_value(n))),
        headers: Default::default(),
    }
}

/// Produces every message with acks=-1, asserting each lands where
/// [`placement`] says.
fn produce_all(broker: &BrokerProcess) {
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(
        create_topic(&mut client, TOPIC, PARTITIONS),
        0,
        "topic created"
    );
    let per_partition = MESSAGES / i64::from(PARTITIONS);
    for partition in 0..PARTITIONS {
        let mut offset = 0;
        while offset < per_partition {
            let count = RECORDS_PER_PRODUCE.min(per_partition - offset);
            let records: Vec<Record> = (offset..offset + count)
                .map(|o| {
                    let mut r = record(o * i64::from(PARTITIONS) + i64::from(partition));
                    r.offset = o - offset;
                    r
                })
                .collect();
            let mut buf = BytesMut::new();
            RecordBatchEncoder::encode(
                &mut buf,
                records.iter(),
                &RecordEncodeOptions {
                    version: 2,
                    compression: Compression::None,
                },
            )
            .unwrap();
            let (code, base) = client.produce(TOPIC, partition, buf.freeze()).unwrap();
            assert_eq!((code, base), (0, offset), "produce to {TOPIC}-{partition}");
            offset += count;
        }
    }
}

/// Every message of the topic as the broker serves it: (partition, offset) → value.
fn read_log(broker: &BrokerProcess) -> BTreeMap<(i32, i64), Bytes> {
    let mut client = WireClient::connect(broker.addr).unwrap();
    let mut log = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let (code, end) = latest_offset(&mut client, TOPIC, partition);
        assert_eq!(code, 0, "ListOffsets {TOPIC}-{partition}");
        let mut offset = 0;
        let mut fetches = 0;
        while offset < end {
            fetches += 1;
            assert!(
                fetches < 10_000,
                "reading {TOPIC}-{partition} makes no progress"
            );
            let fetched = fetch(&mut client, TOPIC, partition, offset, 1 << 20);
            assert_eq!(fetched.error_code, 0, "Fetch {TOPIC}-{partition}@{offset}");
            let mut records = fetched.records;
            for set in RecordBatchDecoder::decode_all(&mut records).unwrap() {
                for r in set.records {
                    if r.offset >= offset {
                        log.insert((partition, r.offset), r.value.unwrap_or_default());
                        offset = r.offset + 1;
                    }
                }
            }
        }
    }
    log
}

/// High watermark of each partition.
fn high_watermarks(broker: &BrokerProcess) -> Vec<i64> {
    let mut client = WireClient::connect(broker.addr).unwrap();
    (0..PARTITIONS)
        .map(|p| {
            let (code, end) = latest_offset(&mut client, TOPIC, p);
            assert_eq!(code, 0, "ListOffsets {TOPIC}-{p}");
            end
        })
        .collect()
}

/// The group's committed offsets, or None if the broker cannot answer right
/// now.
fn committed_offsets(broker: &BrokerProcess) -> Option<Vec<i64>> {
    canary::committed_offsets(broker, GROUP, TOPIC, PARTITIONS)
}

// ---- the consumer processes and their ledgers ----

/// One ledger line: what a consumer processed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    partition: i32,
    offset: i64,
    digest: u32,
}

/// A ledger's complete lines. A torn last line (a kill in the middle of the
/// append) is ignored: it was never fsynced, so never committed.
fn read_ledger(path: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 4, "ledger {} line {line:?}", path.display());
            assert_eq!(fields[0], TOPIC, "ledger {} line {line:?}", path.display());
            Entry {
                partition: fields[1].parse().unwrap(),
                offset: fields[2].parse().unwrap(),
                digest: u32::from_str_radix(fields[3], 16).unwrap(),
            }
        })
        .collect()
}

/// A `group_ledger_consumer.py` process.
struct Consumer {
    name: &'static str,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    ledger: PathBuf,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
}

impl Consumer {
    fn start(broker: &BrokerProcess, dir: &Path, name: &'static str) -> Self {
        let python = python_with_confluent_kafka();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/group_ledger_consumer.py");
        let ledger = dir.join(format!("ledger-{name}"));
        let mut child = Command::new(python)
            .arg(script)
            .arg(broker.bootstrap())
            .args([GROUP, TOPIC])
            .arg(&ledger)
            .arg(name)
            .args(["--batch", &BATCH.to_string(), "--rate", &RATE.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn group_ledger_consumer.py");
        let stdin = child.stdin.take();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let stdout = child.stdout.take().expect("stdout piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "event": "unparsed", "line": line }));
                sink.lock().unwrap().push(event);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut err_pipe = child.stderr.take().expect("stderr piped");
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            name,
            child: Some(child),
            stdin,
            ledger,
            events,
            stderr,
        }
    }

    fn entries(&self) -> Vec<Entry> {
        read_ledger(&self.ledger)
    }

    /// The partitions of the latest assignment (empty after a revoke).
    fn assignment(&self) -> Vec<i64> {
        let events = self.events.lock().unwrap();
        for event in events.iter().rev() {
            match event["event"].as_str() {
                Some("assigned") => {
                    return event["partitions"]
                        .as_array()
                        .map(|ps| ps.iter().filter_map(Value::as_i64).collect())
                        .unwrap_or_default()
                }
                Some("revoked") => return Vec::new(),
                _ => {}
            }
        }
        Vec::new()
    }

    /// How many pending (processed, uncommitted) batches its revokes dropped.
    fn dropped_at_revoke(&self) -> u64 {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "revoked")
            .filter_map(|e| e["dropped"].as_u64())
            .sum()
    }

    /// SIGKILL.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Closes stdin (the consumer commits, leaves the group and exits) and
    /// waits at most 30 s; panics unless it exits 0.
    fn stop(&mut self) {
        drop(self.stdin.take());
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.is_some_and(|s| s.success()),
            "consumer {} did not stop cleanly ({status:?})\n{}",
            self.name,
            self.report()
        );
    }

    /// Its rebalance and commit history and stderr, for failure messages.
    fn report(&self) -> String {
        let events = self.events.lock().unwrap();
        let notable: Vec<String> = events
            .iter()
            .filter(|e| e["event"] != "processed" && e["event"] != "committed")
            .map(|e| e.to_string())
            .collect();
        let committed = events.iter().filter(|e| e["event"] == "committed").count();
        format!(
            "consumer {}: {} ledger entries, {committed} commits, events: {}\nstderr: {}",
            self.name,
            self.entries().len(),
            tail_lines(&notable, 30),
            tail(&self.stderr.lock().unwrap(), 2000)
        )
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn tail_lines(lines: &[String], max: usize) -> String {
    lines[lines.len().saturating_sub(max)..].join("\n  ")
}

/// Distinct (partition, offset) pairs processed by anyone so far.
fn processed(consumers: &[&Consumer]) -> BTreeSet<(i32, i64)> {
    consumers
        .iter()
        .flat_map(|c| c.entries())
        .map(|e| (e.partition, e.offset))
        .collect()
}

fn report(broker: &BrokerProcess, consumers: &[&Consumer]) -> String {
    let reports: Vec<String> = consumers.iter().map(|c| c.report()).collect();
    format!(
        "{}\nbroker log:\n{}",
        reports.join("\n"),
        tail(&broker.logs(), 6000)
    )
}

/// Polls `done` every 50 ms until it holds; panics with `what` and the
/// state of everything past `deadline`.
fn wait_until(
    what: &str,
    deadline: Instant,
    broker: &BrokerProcess,
    consumers: &[&Consumer],
    mut done: impl FnMut() -> bool,
) {
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            report(broker, consumers)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn given_consumer_and_broker_sigkills_mid_stream_when_the_group_finishes_then_every_offset_is_processed_with_bounded_duplicates(
) {
    let started = Instant::now();
    let at = || format!("{:.1} s", started.elapsed().as_secs_f64());
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start_on_fixed_port(&[]);
    produce_all(&broker);
    let ends = high_watermarks(&broker);
    assert_eq!(ends.iter().sum::<i64>(), MESSAGES, "everything produced");
    eprintln!("[{}] produced {MESSAGES} messages: {ends:?}", at());

    let deadline = Instant::now() + DEADLINE;
    let mut a = Consumer::start(&broker, dir.path(), "a");
    let mut b = Consumer::start(&broker, dir.path(), "b");

    // 1. Both consume; A dies mid-stream.
    wait_until("A and B to process", deadline, &broker, &[&a, &b], || {
        !a.entries().is_empty()
            && !b.entries().is_empty()
            && processed(&[&a, &b]).len() >= KILL_A_AFTER
    });
    let a_partitions: Vec<i64> = a.assignment();
    a.kill9();
    let killed_a = Instant::now();
    let done = processed(&[&a, &b]).len();
    assert!(
        (done as i64) < MESSAGES,
        "A must die mid-stream, but everything was processed: lower RATE"
    );
    eprintln!(
        "[{}] SIGKILLed A (owned {a_partitions:?}, {} ledger entries) with {done} processed",
        at(),
        a.entries().len()
    );

    // 2. B takes over A's partitions once A's session expires.
    wait_until(
        "B to take over every partition",
        deadline,
        &broker,
        &[&a, &b],
        || b.assignment() == (0..i64::from(PARTITIONS)).collect::<Vec<_>>(),
    );
    eprintln!(
        "[{}] B owns every partition, {:.1} s after A's kill (session timeout 6 s)",
        at(),
        killed_a.elapsed().as_secs_f64()
    );

    // 3. A replacement joins and processes its share.
    let mut c = Consumer::start(&broker, dir.path(), "c");
    wait_until("C to process", deadline, &broker, &[&a, &b, &c], || {
        !c.entries().is_empty()
    });
    let done = processed(&[&a, &b, &c]).len();
    assert!(
        (done as i64) < MESSAGES,
        "the broker must die mid-stream, but everything was processed: lower RATE"
    );

    // 4. The broker dies and comes back on the same address.
    broker.kill9();
    eprintln!(
        "[{}] SIGKILLed the broker with {done} processed (B owns {:?}, C owns {:?})",
        at(),
        b.assignment(),
        c.assignment()
    );
    broker.restart();
    eprintln!("[{}] broker restarted on {}", at(), broker.bootstrap());

    // 5. Run until the group has committed everything.
    wait_until(
        "the committed offsets to reach the high watermarks",
        deadline,
        &broker,
        &[&a, &b, &c],
        || committed_offsets(&broker).is_some_and(|committed| committed == ends),
    );
    eprintln!("[{}] committed offsets reached {ends:?}", at());
    b.stop();
    c.stop();

    // Every offset is in some ledger, every digest matches the message.
    let log = read_log(&broker);
    let produced: BTreeMap<(i32, i64), Bytes> = (0..MESSAGES)
        .map(|n| (placement(n), Bytes::from(message_value(n))))
        .collect();
    assert!(
        log == produced,
        "the log holds exactly the produced messages"
    );
    let consumers = [&a, &b, &c];
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for consumer in consumers {
        for entry in consumer.entries() {
            let key = (entry.partition, entry.offset);
            let value = log.get(&key).unwrap_or_else(|| {
                panic!(
                    "consumer {} processed {key:?}, which is not in the log",
                    consumer.name
                )
            });
            assert_eq!(
                entry.digest,
                crc32(value),
                "consumer {} ledger digest of {key:?} ({:?})",
                consumer.name,
                String::from_utf8_lossy(value)
            );
            *seen.entry(key).or_default() += 1;
        }
    }
    let missing: Vec<&(i32, i64)> = log.keys().filter(|k| !seen.contains_key(k)).collect();
    assert!(
        missing.is_empty(),
        "{} committed offsets were never processed (first: {:?})\n{}",
        missing.len(),
        &missing[..missing.len().min(20)],
        report(&broker, &consumers)
    );

    // The committed offsets are the high watermarks, after B and C left.
    assert_eq!(
        committed_offsets(&broker),
        Some(ends.clone()),
        "committed offsets equal the high watermarks"
    );

    // Duplicates are bounded by the batches in flight at the crashes.
    let entries: usize = seen.values().sum();
    let duplicates = entries - seen.len();
    let bound = BATCH * CONSUMERS_CAUGHT_BY_CRASHES;
    eprintln!(
        "[{}] {} ledger entries for {} offsets: {duplicates} duplicates (bound {bound}); \
         pending batches dropped at revokes: b {}, c {}",
        at(),
        entries,
        seen.len(),
        b.dropped_at_revoke(),
        c.dropped_at_revoke()
    );
    assert!(
        duplicates <= bound,
        "{duplicates} duplicates exceed {BATCH} per consumer caught by a crash × \
         {CONSUMERS_CAUGHT_BY_CRASHES}\n{}",
        report(&broker, &consumers)
    );
}
