//! Apache Kafka's own Java client (`kafka-clients` 4.3.1) and command-line
//! tools (`kafka-tools`, and `kafka.admin.ConfigCommand` from the core jar)
//! work against the real broker binary:
//! - the producer with its defaults (acks=all, enable.idempotence=true), for
//!   each codec none/gzip/snappy/lz4/zstd, gets an ack for every record, the
//!   batches are stored with that codec and a producer id, and an
//!   assign()-only consumer reads back byte-identical keys, values and
//!   headers in production order;
//! - classic consumer groups (group.protocol=classic) with the range and the
//!   cooperative-sticky assignors: two members share a 4-partition topic and
//!   commit, one leaves and the other takes over from its commits, and after
//!   a `kill -9` of the broker a new member resumes from the committed offsets;
//! - the AdminClient: topics, configs, partitions, records, offsets, groups,
//!   topic ids, and DescribeCluster / DescribeLogDirs / OffsetDelete;
//! - kafka-topics, kafka-configs, kafka-console-producer/-consumer,
//!   kafka-consumer-groups, kafka-delete-records and kafka-get-offsets, run
//!   as their main classes, print what they print against Kafka.
//!
//! The Java scenarios live in `tests/java/` (one main class each, printing one
//! JSON line); `scripts/test` builds them with Maven into `target/java/`, and
//! these tests run them with `java -cp`, no Maven involved. The assertions
//! are here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::java::{scenario, table, tool, tool_ok};
use common::BrokerProcess;
use serde::Deserialize;
use serde_json::Value;

// --- producer and consumer ----------------------------------------------------

/// One message as the scenarios print it: bytes as hex, null stays null.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Record {
    partition: i32,
    offset: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, Option<String>)>,
}

#[derive(Debug, Deserialize)]
struct Produced {
    seq: usize,
    #[serde(flatten)]
    record: Record,
}

/// What `ProduceConsume` prints.
#[derive(Debug, Deserialize)]
struct RoundTrip {
    producer_config: BTreeMap<String, Value>,
    produced: Vec<Produced>,
    consumed: Vec<Record>,
}

/// (codec id, producer id) of every batch stored for the topic, from
/// `sediment log dump` of its segments.
fn stored_batches(broker: &BrokerProcess, topic: &str, partitions: i32) -> Vec<(i64, i64)> {
    common::dumped_batches(broker, topic, partitions)
        .iter()
        .map(|batch| {
            let codec = batch["compression"]
                .as_i64()
                .unwrap_or_else(|| panic!("{topic} has a damaged batch: {batch}"));
            (codec, batch["producer_id"].as_i64().unwrap())
        })
        .collect()
}

/// Produces with the Java producer's defaults and `codec`, reads back with
/// assign(), and checks the round trip and what was stored.
fn java_round_trip(codec: &str, codec_id: i64) {
    const MESSAGES: usize = 600;
    const PARTITIONS: i32 = 3;
    let broker = BrokerProcess::start(&[]);
    let topic = format!("java-{codec}");
    let run: RoundTrip = scenario(
        &broker,
        "ProduceConsume",
        &[
            &topic,
            codec,
            &MESSAGES.to_string(),
            &PARTITIONS.to_string(),
        ],
    );

    // The producer ran with Kafka's defaults.
    assert_eq!(
        run.producer_config["acks"], "-1",
        "{:?}",
        run.producer_config
    );
    assert_eq!(run.producer_config["enable.idempotence"], true);
    assert_eq!(run.producer_config["compression.type"], codec);

    // Every record was acked once, at offsets 0..n of its partition in the
    // order it was sent, and keys stay in one partition.
    assert_eq!(run.produced.len(), MESSAGES);
    let mut by_partition: BTreeMap<i32, Vec<&Produced>> = BTreeMap::new();
    let mut partition_of_key: BTreeMap<&str, i32> = BTreeMap::new();
    for produced in &run.produced {
        by_partition
            .entry(produced.record.partition)
            .or_default()
            .push(produced);
        if let Some(key) = produced.record.key.as_deref() {
            let first = *partition_of_key
                .entry(key)
                .or_insert(produced.record.partition);
            assert_eq!(
                first, produced.record.partition,
                "key {key} in two partitions"
            );
        }
    }
    assert!(
        by_partition.keys().all(|p| (0..PARTITIONS).contains(p)),
        "acks name partitions {:?}",
        by_partition.keys()
    );
    for (partition, records) in &mut by_partition {
        records.sort_by_key(|p| p.record.offset);
        let offsets: Vec<i64> = records.iter().map(|p| p.record.offset).collect();
        assert_eq!(
            offsets,
            (0..records.len() as i64).collect::<Vec<_>>(),
            "partition {partition}: acked offsets are not 0..n, each once"
        );
        assert!(
            records.windows(2).all(|w| w[0].seq < w[1].seq),
            "partition {partition}: records stored out of send order"
        );
    }

    // The consumer reads exactly what was produced, partition by partition.
    let mut consumed: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
    for record in &run.consumed {
        consumed.entry(record.partition).or_default().push(record);
    }
    for partition in 0..PARTITIONS {
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
    assert!(consumed.is_empty(), "consumed from {:?}", consumed.keys());

    // Stored with the codec asked for (the Java producer compresses every
    // batch when asked to), and with a producer id (idempotence).
    let batches = stored_batches(&broker, &topic, PARTITIONS);
    assert!(!batches.is_empty());
    let codecs: BTreeSet<i64> = batches.iter().map(|b| b.0).collect();
    assert_eq!(
        codecs,
        BTreeSet::from([codec_id]),
        "the producer asked for {codec} (codec {codec_id})"
    );
    assert!(
        batches.iter().all(|b| b.1 >= 0),
        "an idempotent producer's batches carry its producer id: {batches:?}"
    );
}

#[test]
fn given_java_producer_defaults_uncompressed_when_read_back_by_assign_then_byte_identical() {
    java_round_trip("none", 0);
}

#[test]
fn given_java_producer_defaults_gzip_when_read_back_by_assign_then_byte_identical() {
    java_round_trip("gzip", 1);
}

#[test]
fn given_java_producer_defaults_snappy_when_read_back_by_assign_then_byte_identical() {
    java_round_trip("snappy", 2);
}

#[test]
fn given_java_producer_defaults_lz4_when_read_back_by_assign_then_byte_identical() {
    java_round_trip("lz4", 3);
}

#[test]
fn given_java_producer_defaults_zstd_when_read_back_by_assign_then_byte_identical() {
    java_round_trip("zstd", 4);
}

// --- classic consumer groups ------------------------------------------------------

/// One record a group member read.
#[derive(Debug, Deserialize)]
struct Read {
    by: String,
    stage: String,
    partition: i32,
    offset: i64,
    value: String,
}

#[derive(Debug, Deserialize)]
struct Event {
    event: String,
    partitions: Vec<i32>,
}

#[derive(Debug, Deserialize)]
struct Described {
    state: String,
    #[serde(rename = "type")]
    kind: String,
    assignor: String,
    members: usize,
    member_assignments: BTreeMap<String, Vec<i32>>,
}

/// What `Groups … share` prints.
#[derive(Debug, Deserialize)]
struct Shared {
    consumed: Vec<Read>,
    shared_assignment: BTreeMap<String, Vec<i32>>,
    described: Described,
    committed_shared: BTreeMap<String, i64>,
    takeover_assignment: Vec<i32>,
    c1_events: Vec<Event>,
    c2_events: Vec<Event>,
    committed_after: BTreeMap<String, i64>,
}

/// What `Groups … resume` prints.
#[derive(Debug, Deserialize)]
struct Resumed {
    consumed: Vec<Read>,
    committed_before: BTreeMap<String, i64>,
    committed_after: BTreeMap<String, i64>,
}

/// Every partition of the 4 at `offset`.
fn all_at(offset: i64) -> BTreeMap<String, i64> {
    (0..4).map(|p| (p.to_string(), offset)).collect()
}

/// The reads of `stage`: each partition's offsets `from..to` exactly once, in
/// order, by the member the assignment says, with the value produced there.
fn assert_reads(reads: &[Read], stage: &str, from: i64, to: i64, owner: impl Fn(i32) -> String) {
    for partition in 0..4 {
        let got: Vec<&Read> = reads
            .iter()
            .filter(|r| r.stage == stage && r.partition == partition)
            .collect();
        let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
        assert_eq!(
            offsets,
            (from..to).collect::<Vec<_>>(),
            "{stage}: partition {partition} read at the wrong offsets"
        );
        for (i, read) in got.iter().enumerate() {
            assert_eq!(read.by, owner(partition), "{stage}: {read:?}");
            assert_eq!(read.value, format!("{stage}-{partition}-{i}"), "{read:?}");
        }
    }
    assert!(
        reads
            .iter()
            .filter(|r| r.stage == stage)
            .all(|r| (0..4).contains(&r.partition)),
        "{stage}: reads of unknown partitions"
    );
}

/// Two classic members with `assignor` share a topic, one leaves, the broker
/// is killed and restarted, and a new member resumes from the commits.
fn classic_group(assignor: &str) {
    let mut broker = BrokerProcess::start(&[]);
    let topic = format!("java-group-{assignor}");
    let group = format!("java-{assignor}");
    let shared: Shared = scenario(&broker, "Groups", &[&topic, &group, assignor, "share"]);

    // Two members, two partitions each, as describeConsumerGroups saw them too.
    let a1 = &shared.shared_assignment["c1"];
    let a2 = &shared.shared_assignment["c2"];
    assert_eq!(
        (a1.len(), a2.len()),
        (2, 2),
        "{:?}",
        shared.shared_assignment
    );
    let union: BTreeSet<i32> = a1.iter().chain(a2).copied().collect();
    assert_eq!(union, (0..4).collect(), "{:?}", shared.shared_assignment);
    let d = &shared.described;
    assert_eq!(
        (
            d.state.as_str(),
            d.kind.as_str(),
            d.assignor.as_str(),
            d.members
        ),
        ("Stable", "Classic", assignor, 2),
        "{d:?}"
    );
    assert_eq!(d.member_assignments, shared.shared_assignment);

    // Each read its own partitions, once; they committed 100 each.
    let owner = |p: i32| if a1.contains(&p) { "c1" } else { "c2" }.to_string();
    assert_reads(&shared.consumed, "shared", 0, 100, owner);
    assert_eq!(shared.committed_shared, all_at(100));

    // c2 left: c1 took over every partition, starting c2's from its commits.
    assert_eq!(shared.takeover_assignment, vec![0, 1, 2, 3]);
    assert_reads(&shared.consumed, "takeover", 100, 150, |_| "c1".into());
    assert_eq!(shared.committed_after, all_at(150));
    let all_events = shared.c1_events.iter().chain(&shared.c2_events);
    assert!(
        all_events.clone().all(|e| e.event != "lost"),
        "no member lost its partitions: {:?} {:?}",
        shared.c1_events,
        shared.c2_events
    );
    // Before closing, c1 gave up only what it lost under the cooperative
    // protocol (nothing, if c2 joined in its first generation), and
    // everything at each rebalance under the eager one (at least when c2 left).
    let before_close = &shared.c1_events[..shared.c1_events.len() - 1];
    let revoked: Vec<&Event> = before_close
        .iter()
        .filter(|e| e.event == "revoked")
        .collect();
    if assignor == "cooperative-sticky" {
        assert!(
            revoked
                .iter()
                .all(|e| e.partitions.iter().all(|p| !a1.contains(p))),
            "cooperative rebalancing revoked partitions c1 kept: {:?}",
            shared.c1_events
        );
    } else {
        assert!(
            revoked
                .iter()
                .any(|e| a1.iter().all(|p| e.partitions.contains(p))),
            "eager rebalancing revokes every partition: {:?}",
            shared.c1_events
        );
    }

    // kill -9 and restart: a new member resumes from the committed offsets.
    broker.restart();
    let resumed: Resumed = scenario(&broker, "Groups", &[&topic, &group, assignor, "resume"]);
    assert_eq!(resumed.committed_before, all_at(150));
    assert_reads(&resumed.consumed, "resume", 150, 175, |_| "c3".into());
    assert_eq!(resumed.committed_after, all_at(175));
}

#[test]
fn given_classic_group_with_range_assignor_when_member_leaves_and_broker_restarts_then_resumes_from_commits(
) {
    classic_group("range");
}

#[test]
fn given_classic_group_with_cooperative_sticky_assignor_when_member_leaves_and_broker_restarts_then_resumes_from_commits(
) {
    classic_group("cooperative-sticky");
}

// --- AdminClient ----------------------------------------------------------------

/// `[value, source]` of a config, as the scenarios print it.
fn config(doc: &Value, step: &str, name: &str) -> (String, String) {
    let entry = &doc[step][name];
    (
        entry[0].as_str().unwrap_or_default().to_string(),
        entry[1].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn given_java_admin_client_when_managing_topics_configs_records_and_groups_then_kafka_answers() {
    let broker = BrokerProcess::start(&[]);
    let doc: Value = scenario(&broker, "AdminOps", &["java-admin", "java-admin-group"]);
    let ctx = || serde_json::to_string_pretty(&doc).unwrap();

    // createTopics with configs; again → TopicExistsException.
    assert_eq!(doc["create"], "ok", "{}", ctx());
    assert_eq!(doc["create_result_partitions"], 3);
    assert_eq!(doc["create_again"], "TopicExistsException");
    assert_eq!(doc["list_topics_contains"], true);
    let described = &doc["describe_by_name"];
    assert_eq!(described["name"], "java-admin");
    assert_ne!(described["topic_id"], "AAAAAAAAAAAAAAAAAAAAAA", "{}", ctx());
    let partitions = described["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3, "{}", ctx());
    for (i, p) in partitions.iter().enumerate() {
        assert_eq!(p["partition"], i);
        assert_eq!(
            (&p["leader"], &p["replicas"], &p["isr"]),
            (&0.into(), &1.into(), &1.into())
        );
    }
    assert_eq!(
        doc["describe_unknown_name"],
        "UnknownTopicOrPartitionException"
    );

    // describeConfigs reports the creation configs as topic-level.
    let dynamic = |v: &str| (v.to_string(), "DYNAMIC_TOPIC_CONFIG".to_string());
    assert_eq!(
        config(&doc, "configs_created", "retention.ms"),
        dynamic("3600000")
    );
    assert_eq!(
        config(&doc, "configs_created", "segment.bytes"),
        dynamic("1048576")
    );

    // incrementalAlterConfigs: SET and DELETE; a bad value is refused and
    // validateOnly changes nothing.
    assert_eq!(doc["incremental_alter"], "ok", "{}", ctx());
    assert_eq!(
        config(&doc, "configs_altered", "retention.ms"),
        dynamic("7200000")
    );
    let (segment_bytes, source) = config(&doc, "configs_altered", "segment.bytes");
    assert_ne!(
        source,
        "DYNAMIC_TOPIC_CONFIG",
        "segment.bytes was deleted: {}",
        ctx()
    );
    assert_eq!(segment_bytes, "1073741824");
    assert_eq!(
        doc["incremental_alter_bad_value"],
        "InvalidConfigurationException"
    );
    assert_eq!(doc["incremental_alter_validate_only"], "ok");
    assert_eq!(
        doc["configs_after_bad_and_validate_only"],
        doc["configs_altered"]
    );

    // createPartitions grows; shrinking → InvalidPartitionsException.
    assert_eq!(doc["grow_partitions"], "ok");
    assert_eq!(doc["partitions_after_grow"], 5);
    assert_eq!(doc["shrink_partitions"], "InvalidPartitionsException");

    // listOffsets of 10 records with timestamps 1000..1009, then deleteRecords.
    let offsets = |earliest: i64| serde_json::json!({"earliest": earliest, "latest": 10, "max_timestamp": 9, "for_timestamp_1005": 5});
    assert_eq!(doc["offsets_before_delete"], offsets(0), "{}", ctx());
    assert_eq!(doc["delete_records_low_watermark"], 4);
    assert_eq!(doc["delete_records_beyond_hw"], "OffsetOutOfRangeException");
    assert_eq!(doc["offsets_after_delete"], offsets(4), "{}", ctx());

    // An empty group with a committed offset.
    assert_eq!(
        doc["list_consumer_groups"],
        serde_json::json!(["java-admin-group"])
    );
    assert!(
        doc["list_groups"][0]
            .as_str()
            .unwrap()
            .starts_with("java-admin-group:"),
        "{}",
        ctx()
    );
    assert_eq!(
        doc["describe_group"],
        serde_json::json!({"group_id": "java-admin-group", "state": "Empty", "members": 0, "coordinator": 0})
    );
    assert_eq!(
        doc["group_offsets"],
        serde_json::json!({"java-admin-0": [7, "admin-ops"]})
    );

    // deleteTopics: gone.
    assert_eq!(doc["delete_topic"], "ok");
    assert_eq!(doc["list_topics_contains_after_delete"], false);
    assert_eq!(
        doc["describe_after_delete"],
        "UnknownTopicOrPartitionException"
    );
    assert_eq!(doc["delete_again"], "UnknownTopicOrPartitionException");
}

/// The Java admin client's describeTopics by id sends Metadata topics with an
/// empty (not null) name beside the id; Kafka looks them up by the id.
#[test]
fn given_java_admin_client_when_describing_topics_by_id_then_found_by_id() {
    let broker = BrokerProcess::start(&[]);
    let doc: Value = scenario(&broker, "TopicIds", &["java-ids"]);
    assert_eq!(
        doc["by_id_outcome"], "ok",
        "describeTopics(TopicCollection.ofTopicIds(...)) failed: {doc}"
    );
    assert_eq!(doc["by_id"], doc["by_name"]);
    assert_eq!(doc["unknown_id"], "UnknownTopicIdException", "{doc}");
}

#[test]
fn given_java_admin_client_when_describe_cluster_log_dirs_and_delete_group_offsets_then_kafka_answers(
) {
    let broker = BrokerProcess::start(&[]);
    let doc: Value = scenario(&broker, "AdminNewApis", &["java-new", "java-new-group"]);
    let ctx = || serde_json::to_string_pretty(&doc).unwrap();

    let cluster = &doc["describe_cluster"];
    assert_eq!(cluster["cluster_id"], "sediment", "{}", ctx());
    assert_eq!(
        cluster["nodes"],
        serde_json::json!([format!("0@{}", broker.bootstrap())])
    );
    assert_eq!(cluster["controller"], 0);

    let dirs = doc["describe_log_dirs"].as_object().unwrap();
    assert_eq!(dirs.len(), 1, "{}", ctx());
    let (path, dir) = dirs.iter().next().unwrap();
    assert_eq!(
        Path::new(path).canonicalize().unwrap(),
        broker.data_dir.canonicalize().unwrap()
    );
    assert_eq!(dir["error"], Value::Null);
    assert_eq!(
        dir["replicas"],
        serde_json::json!({"java-new-0": 0, "java-new-1": 0})
    );

    assert_eq!(
        doc["delete_offsets_while_subscribed"],
        "GroupSubscribedToTopicException",
        "{}",
        ctx()
    );
    assert_eq!(doc["committed_before"], serde_json::json!({"0": 0, "1": 0}));
    assert_eq!(doc["delete_offsets"], "ok");
    assert_eq!(doc["committed_after"], serde_json::json!({"1": 0}));
    assert_eq!(
        doc["delete_offsets_unknown_group"],
        "GroupIdNotFoundException"
    );
}

// --- command-line tools -------------------------------------------------------------

const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
const CONFIGS: &str = "kafka.admin.ConfigCommand";
const PRODUCER: &str = "org.apache.kafka.tools.ConsoleProducer";
const CONSUMER: &str = "org.apache.kafka.tools.consumer.ConsoleConsumer";
const GROUPS: &str = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
const DELETE_RECORDS: &str = "org.apache.kafka.tools.DeleteRecordsCommand";
const GET_OFFSETS: &str = "org.apache.kafka.tools.GetOffsetShell";

/// `topic:partition:offset` lines of kafka-get-offsets, as partition → offset.
fn get_offsets(broker: &BrokerProcess, topic: &str, time: &str) -> BTreeMap<i32, i64> {
    let out = tool_ok(
        broker,
        GET_OFFSETS,
        &["--topic", topic, "--time", time],
        None,
    );
    out.lines()
        .map(|line| {
            let mut parts = line.rsplitn(3, ':');
            let offset = parts.next().unwrap().parse().unwrap();
            let partition = parts.next().unwrap().parse().unwrap();
            assert_eq!(parts.next(), Some(topic), "{out}");
            (partition, offset)
        })
        .collect()
}

/// partition → (column values) of a group table, for one topic.
fn by_partition(out: &str, columns: &[&str]) -> BTreeMap<i32, Vec<String>> {
    table(out)
        .into_iter()
        .map(|row| {
            (
                row["PARTITION"].parse().unwrap(),
                columns.iter().map(|c| row[*c].clone()).collect(),
            )
        })
        .collect()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

#[test]
fn given_kafka_command_line_tools_when_run_against_the_broker_then_they_work_as_on_kafka() {
    let broker = BrokerProcess::start(&[]);
    let topic = "tools-topic";

    // kafka-topics: create with a config, grow, refuse to shrink, describe.
    let out = tool_ok(
        &broker,
        TOPICS,
        &[
            "--create",
            "--topic",
            topic,
            "--partitions",
            "2",
            "--config",
            "retention.ms=3600000",
        ],
        None,
    );
    assert_eq!(out.trim(), format!("Created topic {topic}."));
    tool_ok(
        &broker,
        TOPICS,
        &["--alter", "--topic", topic, "--partitions", "3"],
        None,
    );
    let shrink = tool(
        &broker,
        TOPICS,
        &["--alter", "--topic", topic, "--partitions", "1"],
        None,
    );
    assert_ne!(shrink.code, 0, "shrinking must fail: {}", shrink.stdout);
    assert!(
        shrink
            .stdout
            .contains("Error while executing topic command"),
        "{}\n{}",
        shrink.stdout,
        shrink.stderr
    );
    let out = tool_ok(&broker, TOPICS, &["--describe", "--topic", topic], None);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with(&format!("Topic: {topic}\tTopicId: "))
            && lines[0].contains(
                "\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=3600000"
            ),
        "{out}"
    );
    for (partition, line) in lines[1..].iter().enumerate() {
        assert!(
            line.contains(&format!(
                "Topic: {topic}\tPartition: {partition}\tLeader: 0\tReplicas: 0\tIsr: 0"
            )),
            "{out}"
        );
    }
    let out = tool_ok(&broker, TOPICS, &["--list"], None);
    assert_eq!(out.lines().collect::<Vec<_>>(), vec![topic], "{out}");

    // kafka-configs: add, describe, delete, refuse a bad value.
    let entity = ["--entity-type", "topics", "--entity-name", topic];
    let alter = |extra: &[&str]| {
        let mut args = vec!["--alter"];
        args.extend_from_slice(&entity);
        args.extend_from_slice(extra);
        tool(&broker, CONFIGS, &args, None)
    };
    let describe = || {
        let mut args = vec!["--describe"];
        args.extend_from_slice(&entity);
        tool_ok(&broker, CONFIGS, &args, None)
    };
    let added = alter(&["--add-config", "retention.ms=7200000,segment.ms=600000"]);
    assert_eq!(added.code, 0, "{}\n{}", added.stdout, added.stderr);
    assert_eq!(
        added.stdout.trim(),
        format!("Completed updating config for topic {topic}.")
    );
    let out = describe();
    assert_eq!(
        out.lines().map(str::trim).collect::<Vec<_>>(),
        vec![
            format!("Dynamic configs for topic {topic} are:").as_str(),
            "retention.ms=7200000 sensitive=false synonyms={}",
            "segment.ms=600000 sensitive=false synonyms={}",
        ],
        "{out}"
    );
    let deleted = alter(&["--delete-config", "segment.ms"]);
    assert_eq!(deleted.code, 0, "{}\n{}", deleted.stdout, deleted.stderr);
    let out = describe();
    assert!(
        out.contains("retention.ms=7200000") && !out.contains("segment.ms"),
        "{out}"
    );
    let bad = alter(&["--add-config", "retention.ms=abc"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("InvalidConfigurationException"),
        "{}",
        bad.stderr
    );

    // kafka-console-producer with keys, then kafka-get-offsets.
    let input: String = (0..60).map(|i| format!("key-{i}:value-{i}\n")).collect();
    tool_ok(
        &broker,
        PRODUCER,
        &[
            "--topic",
            topic,
            "--reader-property",
            "parse.key=true",
            "--reader-property",
            "key.separator=:",
        ],
        Some(input.as_bytes()),
    );
    let latest = get_offsets(&broker, topic, "-1");
    assert_eq!(
        latest.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2],
        "{latest:?}"
    );
    assert_eq!(latest.values().sum::<i64>(), 60, "{latest:?}");
    assert!(
        latest.values().all(|&n| n > 0),
        "60 keys spread over 3 partitions: {latest:?}"
    );
    assert_eq!(
        get_offsets(&broker, topic, "-2"),
        BTreeMap::from([(0, 0), (1, 0), (2, 0)])
    );

    // kafka-console-consumer in a group reads all 60 and commits.
    let out = tool_ok(
        &broker,
        CONSUMER,
        &[
            "--topic",
            topic,
            "--group",
            "tools-group",
            "--from-beginning",
            "--max-messages",
            "60",
            "--timeout-ms",
            "60000",
        ],
        None,
    );
    assert_eq!(out.lines().count(), 60, "{out}");
    let values: BTreeSet<&str> = out.lines().collect();
    let want: Vec<String> = (0..60).map(|i| format!("value-{i}")).collect();
    assert_eq!(
        values,
        want.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "{out}"
    );

    // kafka-consumer-groups: list, describe (no lag), reset to earliest.
    let out = tool_ok(&broker, GROUPS, &["--list"], None);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["tools-group"],
        "{out}"
    );
    let describe_group = || {
        let run = tool(
            &broker,
            GROUPS,
            &["--describe", "--group", "tools-group"],
            None,
        );
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains("Consumer group 'tools-group' has no active members."),
            "{}",
            run.stderr
        );
        by_partition(
            &run.stdout,
            &["TOPIC", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"],
        )
    };
    let end = |p: i32| latest[&p].to_string();
    let described = describe_group();
    assert_eq!(
        described,
        (0..3)
            .map(|p| (p, vec![topic.to_string(), end(p), end(p), "0".to_string()]))
            .collect(),
        "every message consumed and committed"
    );
    let out = tool_ok(
        &broker,
        GROUPS,
        &[
            "--reset-offsets",
            "--group",
            "tools-group",
            "--topic",
            topic,
            "--to-earliest",
            "--execute",
        ],
        None,
    );
    assert_eq!(
        by_partition(&out, &["GROUP", "TOPIC", "NEW-OFFSET"]),
        (0..3)
            .map(|p| (p, strings(&["tools-group", topic, "0"])))
            .collect(),
        "{out}"
    );
    let out = tool_ok(
        &broker,
        GROUPS,
        &[
            "--reset-offsets",
            "--group",
            "tools-group",
            "--topic",
            &format!("{topic}:1"),
            "--to-offset",
            "1",
            "--dry-run",
        ],
        None,
    );
    assert_eq!(
        by_partition(&out, &["NEW-OFFSET"]),
        BTreeMap::from([(1, strings(&["1"]))]),
        "{out}"
    );
    assert_eq!(
        describe_group(),
        (0..3)
            .map(|p| (p, vec![topic.to_string(), "0".to_string(), end(p), end(p)]))
            .collect(),
        "reset to the earliest offsets (the dry run changed nothing)"
    );

    // kafka-delete-records: below the high watermark, then beyond it.
    let dir = tempfile::tempdir().unwrap();
    let delete = |offset: i64| {
        let file = dir.path().join(format!("delete-{offset}.json"));
        std::fs::write(
            &file,
            format!(r#"{{"partitions":[{{"topic":"{topic}","partition":0,"offset":{offset}}}],"version":1}}"#),
        )
        .unwrap();
        tool_ok(
            &broker,
            DELETE_RECORDS,
            &["--offset-json-file", file.to_str().unwrap()],
            None,
        )
    };
    let out = delete(1);
    assert!(
        out.contains(&format!("partition: {topic}-0\tlow_watermark: 1")),
        "{out}"
    );
    let out = delete(latest[&0] + 100);
    assert!(
        out.contains(&format!("partition: {topic}-0\terror: "))
            && out.contains("OffsetOutOfRangeException"),
        "{out}"
    );
    assert_eq!(
        get_offsets(&broker, topic, "-2"),
        BTreeMap::from([(0, 1), (1, 0), (2, 0)])
    );
    assert_eq!(get_offsets(&broker, topic, "-1"), latest);

    // kafka-topics --delete.
    tool_ok(&broker, TOPICS, &["--delete", "--topic", topic], None);
    let out = tool_ok(&broker, TOPICS, &["--list"], None);
    assert_eq!(out.trim(), "", "{out}");
}
