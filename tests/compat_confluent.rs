//! Python `confluent-kafka` (librdkafka 2.x) works against the real broker
//! binary:
//! - a Producer with acks=all, for each compression codec (none, gzip, snappy,
//!   lz4, zstd) and once idempotent on a 3-partition topic, gets a successful
//!   delivery report for every message, and the batches are stored with the
//!   codec asked for;
//! - a Consumer that only uses `assign()` from the beginning (no group
//!   membership, no commits; groups are tested in `groups.rs`) reads every message
//!   back byte-identical (key, value, headers, null and empty ones included),
//!   in production order within each partition, and never sends a group API;
//! - `offsets_for_times` finds the first offset at or after a timestamp;
//! - the AdminClient creates topics (with a `retention.ms` override that
//!   DescribeConfigs reports as topic-level), lists and deletes them, and gets
//!   clear errors for `cleanup.policy=compact` and replication factor 3.
//!
//! The clients run as Python scripts under `tests/python/` that print JSON;
//! the assertions are here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::python::run_script;
use common::wire::WireClient;
use common::BrokerProcess;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use serde::Deserialize;

/// Messages per produce/consume round trip.
const MESSAGES: usize = 2_000;

/// One message as the scripts print it: bytes as hex, null as `None`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Record {
    partition: i32,
    offset: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, Option<String>)>,
}

/// A produced message: its place in the producer's sequence, and where its
/// delivery report says it went.
#[derive(Debug, Deserialize)]
struct Produced {
    seq: usize,
    #[serde(flatten)]
    record: Record,
}

/// What `produce_consume.py` prints.
#[derive(Debug, Deserialize)]
struct RoundTrip {
    produced: Vec<Produced>,
    consumed: Vec<Record>,
    /// "ApiName vN" → requests sent, from librdkafka's protocol debug log.
    producer_requests: BTreeMap<String, u64>,
    consumer_requests: BTreeMap<String, u64>,
}

/// The broker advertises `key` in ApiVersions.
fn advertises(broker: &BrokerProcess, key: ApiKey) -> bool {
    let mut client = WireClient::connect(broker.addr).unwrap();
    let response: ApiVersionsResponse = client
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .unwrap();
    response.api_keys.iter().any(|k| k.api_key == key as i16)
}

/// Codec ids of every batch stored for the topic's partitions, from
/// `sediment log dump` of their segments.
fn stored_codecs(broker: &BrokerProcess, topic: &str, partitions: i32) -> BTreeSet<i64> {
    common::dumped_batches(broker, topic, partitions)
        .iter()
        .map(|batch| {
            batch["compression"]
                .as_i64()
                .unwrap_or_else(|| panic!("a damaged batch in {topic}: {batch}"))
        })
        .collect()
}

/// Produces [`MESSAGES`] messages with `compression` (and idempotence if
/// asked) to a topic auto-created (`partitions == 0`) or created with that
/// many partitions, reads them back with assign(), and checks the contract.
fn round_trip(compression: &str, codec_id: i64, idempotent: bool, partitions: i32) {
    let broker = BrokerProcess::start(&[]);
    let topic = format!("confluent-{compression}-{partitions}");
    let messages = MESSAGES.to_string();
    let created = partitions.to_string();
    let mut args = vec![
        topic.as_str(),
        "--compression",
        compression,
        "--messages",
        &messages,
        "--create-partitions",
        &created,
    ];
    if idempotent {
        args.push("--idempotence");
    }
    let run: RoundTrip = run_script(&broker, "produce_consume.py", &args);
    let partitions = partitions.max(1);

    // Every message has a successful delivery report (the script fails on an
    // error report), each offset once.
    assert_eq!(run.produced.len(), MESSAGES);
    let mut by_partition: BTreeMap<i32, Vec<&Produced>> = BTreeMap::new();
    for produced in &run.produced {
        by_partition
            .entry(produced.record.partition)
            .or_default()
            .push(produced);
    }
    assert!(
        by_partition.keys().all(|p| (0..partitions).contains(p)),
        "delivery reports name partitions {:?} of a {partitions}-partition topic",
        by_partition.keys()
    );
    if partitions > 1 {
        assert_eq!(
            by_partition.len(),
            partitions as usize,
            "the keys spread over every partition"
        );
        let mut partition_of_key: BTreeMap<&str, i32> = BTreeMap::new();
        for produced in run.produced.iter().filter(|p| p.record.key.is_some()) {
            let key = produced.record.key.as_deref().unwrap();
            let first = *partition_of_key
                .entry(key)
                .or_insert(produced.record.partition);
            assert_eq!(
                first, produced.record.partition,
                "key {key} in two partitions"
            );
        }
    }
    for (partition, records) in &mut by_partition {
        records.sort_by_key(|p| p.record.offset);
        let offsets: Vec<i64> = records.iter().map(|p| p.record.offset).collect();
        let expected: Vec<i64> = (0..records.len() as i64).collect();
        assert_eq!(
            offsets, expected,
            "partition {partition}: delivery offsets are not 0..n, each once"
        );
        let out_of_order = records.windows(2).find(|w| w[0].seq > w[1].seq);
        assert!(
            out_of_order.is_none(),
            "partition {partition}: message {} was stored after message {} although produced before it \
             (offsets {} and {})\nbroker log:\n{}",
            out_of_order.unwrap()[1].seq,
            out_of_order.unwrap()[0].seq,
            out_of_order.unwrap()[1].record.offset,
            out_of_order.unwrap()[0].record.offset,
            broker.logs()
        );
    }

    // The consumer reads exactly what was produced, partition by partition in
    // offset order.
    let mut consumed: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
    for record in &run.consumed {
        consumed.entry(record.partition).or_default().push(record);
    }
    for partition in 0..partitions {
        let want: Vec<&Record> = by_partition
            .get(&partition)
            .map(|r| r.iter().map(|p| &p.record).collect())
            .unwrap_or_default();
        let got = consumed.remove(&partition).unwrap_or_default();
        if let Some(i) = (0..want.len().max(got.len())).find(|&i| want.get(i) != got.get(i)) {
            panic!(
                "partition {partition}: consumed {} records for {} produced; first difference at #{i}:\n\
                 produced {:?}\nconsumed {:?}",
                got.len(),
                want.len(),
                want.get(i),
                got.get(i)
            );
        }
    }
    assert!(
        consumed.is_empty(),
        "consumed from unknown partitions {:?}",
        consumed.keys()
    );

    // The batches were really sent (and stored) with the codec asked for.
    // librdkafka sends a batch uncompressed when compressing would not make
    // it smaller (a lone small record under gzip, say), so codec 0 may
    // appear beside the one asked for, and nothing else may.
    let codecs = stored_codecs(&broker, &topic, partitions);
    assert!(
        codecs.contains(&codec_id) && codecs.is_subset(&BTreeSet::from([0, codec_id])),
        "the producer asked for {compression} (codec {codec_id}) but the stored batches use codecs {codecs:?}; \
         producer requests: {:?}",
        run.producer_requests
    );
    assert!(
        run.producer_requests
            .keys()
            .any(|k| k.starts_with("Produce ")),
        "{:?}",
        run.producer_requests
    );
    if idempotent {
        assert!(
            run.producer_requests
                .keys()
                .any(|k| k.starts_with("InitProducerId ")),
            "an idempotent producer asks for a producer id: {:?}",
            run.producer_requests
        );
    }

    // assign() without commits needs no group coordinator.
    let group_apis = [
        "JoinGroup",
        "SyncGroup",
        "Heartbeat",
        "LeaveGroup",
        "OffsetCommit",
        "OffsetFetch",
    ];
    let sent_group_api: Vec<&String> = run
        .consumer_requests
        .keys()
        .filter(|k| {
            group_apis
                .iter()
                .any(|api| k.starts_with(&format!("{api} ")))
        })
        .collect();
    assert!(
        sent_group_api.is_empty(),
        "an assign()-only consumer sent group requests {sent_group_api:?}"
    );
    if !advertises(&broker, ApiKey::FindCoordinator) {
        assert!(
            !run.consumer_requests
                .keys()
                .any(|k| k.starts_with("FindCoordinator ")),
            "the consumer sent FindCoordinator although the broker does not advertise it: {:?}",
            run.consumer_requests
        );
    }
    assert_no_trouble_logged(&broker);
}

/// No warning or error in the broker's log, except a client resetting its
/// connection (librdkafka may close a socket with unread data in it).
fn assert_no_trouble_logged(broker: &BrokerProcess) {
    let logs = broker.logs();
    let trouble: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .filter(|l| !l.contains("Connection reset by peer"))
        .collect();
    assert!(
        trouble.is_empty(),
        "the broker logged trouble:\n{}\nwhole log:\n{logs}",
        trouble.join("\n")
    );
}

#[test]
fn given_uncompressed_batches_with_acks_all_when_read_back_by_assign_then_byte_identical() {
    round_trip("none", 0, false, 0);
}

#[test]
fn given_gzip_batches_with_acks_all_when_read_back_by_assign_then_byte_identical() {
    round_trip("gzip", 1, false, 0);
}

#[test]
fn given_snappy_batches_with_acks_all_when_read_back_by_assign_then_byte_identical() {
    round_trip("snappy", 2, false, 0);
}

#[test]
fn given_lz4_batches_with_acks_all_when_read_back_by_assign_then_byte_identical() {
    round_trip("lz4", 3, false, 0);
}

#[test]
fn given_zstd_batches_with_acks_all_when_read_back_by_assign_then_byte_identical() {
    round_trip("zstd", 4, false, 0);
}

#[test]
fn given_idempotent_producer_on_three_partitions_when_read_back_by_assign_then_identical_in_order()
{
    round_trip("zstd", 4, true, 3);
}

/// What `offsets_for_times.py` prints.
#[derive(Debug, Deserialize)]
struct TimeLookup {
    produced: Vec<Stamped>,
    consumed: Vec<Stamped>,
    answers: Vec<Answer>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
struct Stamped {
    offset: i64,
    timestamp: i64,
    #[serde(default)]
    timestamp_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    query: i64,
    offset: i64,
}

#[test]
fn given_messages_with_explicit_timestamps_when_offsets_for_times_then_first_offset_at_or_after() {
    const BASE: i64 = 1_700_000_000_000;
    const STEP: i64 = 1_000;
    const COUNT: i64 = 100;
    let broker = BrokerProcess::start(&[]);
    // (timestamp asked, offset expected): message i has timestamp BASE + i * STEP,
    // and is flushed in batches of 25 (offsets 0–24, 25–49, …).
    let cases: [(i64, i64); 9] = [
        (BASE - 5 * STEP, 0),         // before the first message
        (BASE, 0),                    // exactly the first
        (BASE + 37 * STEP, 37),       // exactly a middle one
        (BASE + 37 * STEP + 1, 38),   // just after one: the next
        (BASE + 24 * STEP + 500, 25), // between two batches: the next batch's first
        (BASE + 50 * STEP - 1, 50),   // just before a batch's first
        (BASE + 99 * STEP, 99),       // exactly the last
        (BASE + 99 * STEP + 1, -1),   // after the last: none (end)
        (BASE + 1_000_000 * STEP, -1),
    ];
    let mut args: Vec<String> = [
        "compat-times",
        "--base-ts",
        &BASE.to_string(),
        "--step-ms",
        &STEP.to_string(),
        "--messages",
        &COUNT.to_string(),
        "--batch",
        "25",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (query, _) in cases {
        args.extend(["--query".to_string(), query.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run: TimeLookup = run_script(&broker, "offsets_for_times.py", &args);

    let expected: Vec<Stamped> = (0..COUNT)
        .map(|i| Stamped {
            offset: i,
            timestamp: BASE + i * STEP,
            timestamp_type: None,
        })
        .collect();
    assert_eq!(run.produced, expected, "delivery reports");
    let consumed: Vec<(i64, i64, &str)> = run
        .consumed
        .iter()
        .map(|s| {
            (
                s.offset,
                s.timestamp,
                s.timestamp_type.as_deref().unwrap_or(""),
            )
        })
        .collect();
    let expected: Vec<(i64, i64, &str)> =
        (0..COUNT).map(|i| (i, BASE + i * STEP, "create")).collect();
    assert_eq!(
        consumed, expected,
        "stored timestamps are the producer's CreateTime"
    );

    let answers: Vec<(i64, i64)> = run.answers.iter().map(|a| (a.query, a.offset)).collect();
    assert_eq!(
        answers,
        cases.to_vec(),
        "offsets_for_times (timestamp, offset); broker log:\n{}",
        broker.logs()
    );
    assert_no_trouble_logged(&broker);
}

/// A config entry as `admin.py` prints it.
#[derive(Debug, Deserialize)]
struct ConfigEntry {
    value: Option<String>,
    source: String,
    is_default: bool,
}

/// What `admin.py lifecycle` prints.
#[derive(Debug, Deserialize)]
struct Lifecycle {
    created: BTreeMap<String, Option<String>>,
    listed_after_create: BTreeMap<String, usize>,
    configs: BTreeMap<String, BTreeMap<String, ConfigEntry>>,
    deleted: BTreeMap<String, Option<String>>,
    listed_after_delete: BTreeMap<String, usize>,
}

#[test]
fn given_admin_client_when_topics_created_described_and_deleted_then_broker_reflects_each_step() {
    let broker = BrokerProcess::start(&[]);
    let run: Lifecycle = run_script(&broker, "admin.py", &["lifecycle", "admin"]);
    let (plain, retention) = ("admin-plain", "admin-retention");

    assert_eq!(
        run.created,
        BTreeMap::from([(plain.to_string(), None), (retention.to_string(), None)]),
        "create_topics answers"
    );
    assert_eq!(run.listed_after_create.get(plain), Some(&2), "{run:?}");
    assert_eq!(run.listed_after_create.get(retention), Some(&1), "{run:?}");

    let configs = &run.configs[retention];
    let entry = &configs["retention.ms"];
    assert_eq!(entry.value.as_deref(), Some("3600000"), "{configs:?}");
    assert_eq!(
        entry.source, "DYNAMIC_TOPIC_CONFIG",
        "set on the topic: {configs:?}"
    );
    assert!(!entry.is_default, "{configs:?}");
    assert_eq!(
        configs["cleanup.policy"].value.as_deref(),
        Some("delete"),
        "{configs:?}"
    );
    assert_eq!(configs["cleanup.policy"].source, "DEFAULT_CONFIG");
    for key in [
        "cleanup.policy",
        "max.message.bytes",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.ms",
    ] {
        assert!(configs.contains_key(key), "{key} missing: {configs:?}");
    }
    let plain_retention = &run.configs[plain]["retention.ms"];
    assert_eq!(
        plain_retention.source, "DEFAULT_CONFIG",
        "a topic without an override reports the default: {plain_retention:?}"
    );
    assert_ne!(plain_retention.value.as_deref(), Some("3600000"));

    assert_eq!(
        run.deleted,
        BTreeMap::from([(retention.to_string(), None)]),
        "delete_topics answers"
    );
    assert!(
        !run.listed_after_delete.contains_key(retention),
        "metadata still lists the deleted topic: {:?}",
        run.listed_after_delete
    );
    assert_eq!(run.listed_after_delete.get(plain), Some(&2));
    assert!(
        !broker.data_dir.join(format!("{retention}-0")).exists(),
        "the deleted topic's partition directory is still there"
    );
    assert_no_trouble_logged(&broker);
}

/// What `admin.py refusals` prints.
#[derive(Debug, Deserialize)]
struct Refusals {
    created: BTreeMap<String, Option<String>>,
    listed: BTreeMap<String, usize>,
}

#[test]
fn given_bad_cleanup_policy_or_replication_factor_3_when_creating_topic_then_refused_with_clear_error_and_compact_is_accepted(
) {
    let broker = BrokerProcess::start(&[]);
    let run: Refusals = run_script(&broker, "admin.py", &["refusals", "refused"]);

    let shred = run.created["refused-shred"]
        .as_deref()
        .expect("cleanup.policy=shred is refused");
    assert!(
        shred.starts_with("INVALID_CONFIG:")
            && shred.contains("cleanup.policy")
            && shred.contains("delete, compact or compact,delete"),
        "the refusal names the error, the config and what is allowed: {shred}"
    );
    assert_eq!(
        run.created["refused-compact"], None,
        "cleanup.policy=compact is accepted"
    );
    assert_eq!(run.listed.get("refused-compact"), Some(&1));
    let rf3 = run.created["refused-rf3"]
        .as_deref()
        .expect("replication factor 3 is refused");
    assert!(
        rf3.starts_with("INVALID_REPLICATION_FACTOR:") && rf3.contains("replication factor 3"),
        "the refusal names the error and the factor: {rf3}"
    );
    assert!(
        !run.listed.contains_key("refused-shred") && !run.listed.contains_key("refused-rf3"),
        "a refused topic exists anyway: {:?}",
        run.listed
    );
}
