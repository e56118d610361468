//! CreatePartitions and DeleteRecords through the real binary: the CLI
//! (`topic alter`, `topic delete-records`), the Kafka wire (encoded by the
//! `kafka-protocol` oracle, not our codec), and confluent-kafka's
//! AdminClient. A grown topic takes produce on its new partitions and keeps
//! its count across restarts; a shrink is refused and changes nothing;
//! deleted records stay deleted after a clean restart and after kill -9.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::process::Command;

use common::canary::{create_topic, fetch, produce_batches};
use common::wire::WireClient;
use common::BrokerProcess;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, DeleteRecordsRequest,
    DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::Value;

const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn partition_count(broker: &BrokerProcess, topic: &str) -> usize {
    let described = common::cli_json(&common::sediment_cli(
        broker,
        &["--output", "json", "topic", "describe", topic],
    ));
    described["partitions"].as_array().unwrap().len()
}

/// CreatePartitions v3 for one topic: (error code, message).
fn create_partitions(
    client: &mut WireClient,
    topic: &str,
    count: i32,
    assignments: Option<Vec<Vec<i32>>>,
    validate_only: bool,
) -> (i16, Option<String>) {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsAssignment;
    let assignments = assignments.map(|all| {
        all.into_iter()
            .map(|ids| {
                CreatePartitionsAssignment::default()
                    .with_broker_ids(ids.into_iter().map(BrokerId).collect())
            })
            .collect()
    });
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(30_000)
        .with_validate_only(validate_only)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name(topic))
            .with_count(count)
            .with_assignments(assignments)]);
    let response: CreatePartitionsResponse =
        client.call(ApiKey::CreatePartitions, 3, &request).unwrap();
    let result = &response.results[0];
    assert_eq!(result.name.0.as_str(), topic);
    (
        result.error_code,
        result.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// DeleteRecords v2 for one partition: (error code, low watermark).
fn delete_records(client: &mut WireClient, topic: &str, partition: i32, offset: i64) -> (i16, i64) {
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(offset)])]);
    let response: DeleteRecordsResponse = client.call(ApiKey::DeleteRecords, 2, &request).unwrap();
    let result = &response.topics[0].partitions[0];
    assert_eq!(result.partition_index, partition);
    (result.error_code, result.low_watermark)
}

/// ListOffsets v7 for one partition: (error code, offset).
fn list_offset(client: &mut WireClient, topic: &str, partition: i32, timestamp: i64) -> (i16, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 7, &request).unwrap();
    let partition = &response.topics[0].partitions[0];
    (partition.error_code, partition.offset)
}

fn earliest(client: &mut WireClient, topic: &str, partition: i32) -> i64 {
    let (code, offset) = list_offset(client, topic, partition, -2);
    assert_eq!(code, 0, "ListOffsets earliest of {topic}-{partition}");
    offset
}

fn segment_files(broker: &BrokerProcess, topic: &str, partition: i32) -> usize {
    std::fs::read_dir(broker.data_dir.join(format!("{topic}-{partition}")))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
        })
        .count()
}

#[test]
fn given_topic_with_one_partition_when_altered_to_three_then_partition_2_takes_produce_and_describe_shows_three(
) {
    let mut broker = BrokerProcess::start(&[]);
    common::cli_json(&common::sediment_cli(
        &broker,
        &[
            "--output",
            "json",
            "topic",
            "create",
            "grow",
            "--partitions",
            "1",
        ],
    ));
    let altered = common::cli_json(&common::sediment_cli(
        &broker,
        &[
            "--output",
            "json",
            "topic",
            "alter",
            "grow",
            "--partitions",
            "3",
        ],
    ));
    assert_eq!(altered["topic"], "grow");
    assert_eq!(altered["partitions"], 3);
    assert_eq!(partition_count(&broker, "grow"), 3);

    let mut client = WireClient::connect(broker.addr).unwrap();
    produce_batches(&mut client, "grow", 2, 2);
    let fetched = fetch(&mut client, "grow", 2, 0, 1 << 20);
    assert_eq!(fetched.error_code, 0);
    assert_eq!(fetched.high_watermark, 10);

    // The table form prints one short line.
    let table = common::sediment_cli(&broker, &["topic", "alter", "grow", "--partitions", "4"]);
    assert!(table.status.success(), "{table:?}");
    assert_eq!(
        String::from_utf8_lossy(&table.stdout).trim(),
        "topic grow now has 4 partitions"
    );

    // The count is persisted: it holds after kill -9.
    broker.restart();
    assert_eq!(partition_count(&broker, "grow"), 4);
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(
        fetch(&mut client, "grow", 2, 0, 1 << 20).high_watermark,
        10,
        "records on a new partition survive a restart"
    );
}

#[test]
fn given_three_partitions_when_shrunk_kept_or_pushed_past_the_limit_then_invalid_partitions_and_nothing_changes(
) {
    let broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "fixed", 3), 0);

    let shrink = common::sediment_cli(&broker, &["topic", "alter", "fixed", "--partitions", "2"]);
    assert!(!shrink.status.success());
    let stderr = String::from_utf8_lossy(&shrink.stderr);
    assert!(stderr.contains("InvalidPartitions (code 37)"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");

    let (code, message) = create_partitions(&mut client, "fixed", 3, None, false);
    assert_eq!(code, INVALID_PARTITIONS, "equal count: {message:?}");
    let (code, message) = create_partitions(&mut client, "fixed", 1001, None, false);
    assert_eq!(code, INVALID_PARTITIONS, "above the limit: {message:?}");
    assert!(
        message.unwrap().contains("max_partitions_per_topic"),
        "the message names the limit"
    );
    let (code, _) = create_partitions(&mut client, "absent", 4, None, false);
    assert_eq!(code, UNKNOWN_TOPIC_OR_PARTITION);
    let (code, _) = create_partitions(&mut client, "fixed", 5, Some(vec![vec![0]]), false);
    assert_eq!(
        code, INVALID_REPLICA_ASSIGNMENT,
        "one assignment for two new partitions"
    );
    let (code, _) = create_partitions(&mut client, "fixed", 5, None, true);
    assert_eq!(code, 0, "validate_only accepts a valid grow");

    assert_eq!(partition_count(&broker, "fixed"), 3, "nothing changed");
    assert!(
        !broker.data_dir.join("fixed-3").exists(),
        "no partition created"
    );

    // A well-formed assignment (this broker, id 0) is accepted.
    let (code, message) =
        create_partitions(&mut client, "fixed", 5, Some(vec![vec![0], vec![0]]), false);
    assert_eq!(code, 0, "{message:?}");
    assert_eq!(partition_count(&broker, "fixed"), 5);
}

#[test]
fn given_records_when_deleted_before_an_offset_then_fetch_below_is_out_of_range_earliest_is_the_new_start_and_both_survive_restarts(
) {
    // 1 KiB segments (a broker setting: topic overrides have a higher floor).
    let mut broker = BrokerProcess::start(&["--segment-bytes", "1024"]);
    common::cli_json(&common::sediment_cli(
        &broker,
        &[
            "--output",
            "json",
            "topic",
            "create",
            "trim",
            "--partitions",
            "1",
        ],
    ));
    let mut client = WireClient::connect(broker.addr).unwrap();
    // 5 records (~600 bytes) per batch and 1 KiB segments: one batch per segment.
    produce_batches(&mut client, "trim", 0, 8);
    let segments_before = segment_files(&broker, "trim", 0);
    assert!(segments_before >= 4, "{segments_before} segments");

    // 17 is inside the batch [15, 20): the start moves there, mid-segment.
    let deleted = common::cli_json(&common::sediment_cli(
        &broker,
        &[
            "--output",
            "json",
            "topic",
            "delete-records",
            "trim",
            "--partition",
            "0",
            "--before",
            "17",
        ],
    ));
    assert_eq!(deleted["low_watermark"], 17, "{deleted}");
    assert!(
        segment_files(&broker, "trim", 0) < segments_before,
        "segments wholly below the new start are deleted"
    );

    let check = |client: &mut WireClient, when: &str| {
        assert_eq!(earliest(client, "trim", 0), 17, "earliest {when}");
        let below = fetch(client, "trim", 0, 16, 1 << 20);
        assert_eq!(below.error_code, OFFSET_OUT_OF_RANGE, "fetch below {when}");
        let zero = fetch(client, "trim", 0, 0, 1 << 20);
        assert_eq!(zero.error_code, OFFSET_OUT_OF_RANGE, "fetch at 0 {when}");
        let at = fetch(client, "trim", 0, 17, 1 << 20);
        assert_eq!(at.error_code, 0, "fetch at the start {when}");
        assert!(!at.records.is_empty(), "records at the start {when}");
        assert_eq!(at.high_watermark, 40, "{when}");
    };
    check(&mut client, "after the deletion");

    // A smaller offset than the start changes nothing.
    assert_eq!(delete_records(&mut client, "trim", 0, 3), (0, 17));

    broker.restart(); // kill -9
    let mut client = WireClient::connect(broker.addr).unwrap();
    check(&mut client, "after kill -9");

    assert_eq!(broker.terminate(), Some(0), "clean stop");
    broker.restart();
    let mut client = WireClient::connect(broker.addr).unwrap();
    check(&mut client, "after a clean restart");

    // The table form prints one short line.
    let table = common::sediment_cli(
        &broker,
        &[
            "topic",
            "delete-records",
            "trim",
            "--partition",
            "0",
            "--before",
            "25",
        ],
    );
    assert!(table.status.success(), "{table:?}");
    assert_eq!(
        String::from_utf8_lossy(&table.stdout).trim(),
        "deleted records of trim-0: log start offset is now 25"
    );
    assert_eq!(earliest(&mut client, "trim", 0), 25);
}

#[test]
fn given_offset_beyond_the_high_watermark_when_deleting_records_then_offset_out_of_range_and_minus_one_means_the_high_watermark(
) {
    let broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "edge", 1), 0);
    produce_batches(&mut client, "edge", 0, 2);

    assert_eq!(
        delete_records(&mut client, "edge", 0, 11).0,
        OFFSET_OUT_OF_RANGE
    );
    assert_eq!(earliest(&mut client, "edge", 0), 0, "start unchanged");
    let cli = common::sediment_cli(
        &broker,
        &[
            "topic",
            "delete-records",
            "edge",
            "--partition",
            "0",
            "--before",
            "99",
        ],
    );
    assert!(!cli.status.success());
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(stderr.contains("OffsetOutOfRange (code 1)"), "{stderr}");

    assert_eq!(
        delete_records(&mut client, "absent", 0, 1).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        delete_records(&mut client, "edge", 7, 1).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );

    assert_eq!(delete_records(&mut client, "edge", 0, -1), (0, 10));
    assert_eq!(earliest(&mut client, "edge", 0), 10);
    // The log keeps its end: the next record gets offset 10.
    produce_batches(&mut client, "edge", 0, 1);
    assert_eq!(list_offset(&mut client, "edge", 0, -1), (0, 15));
    let fetched = fetch(&mut client, "edge", 0, 10, 1 << 20);
    assert_eq!(fetched.error_code, 0);
    assert!(!fetched.records.is_empty());
}

#[test]
fn given_confluent_admin_client_when_growing_shrinking_and_deleting_records_then_answers_match_kafka(
) {
    let broker = BrokerProcess::start(&[]);
    let python = common::python_with_confluent_kafka();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/admin_partitions.py");
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg(broker.bootstrap())
        .arg("rdkafka-admin");
    let finished = common::run_bounded(command, None, std::time::Duration::from_secs(90));
    let context = format!(
        "stderr:\n{}\nbroker log:\n{}",
        common::tail(&finished.stderr, 4000),
        broker.logs()
    );
    assert!(
        finished.status.is_some_and(|s| s.success()),
        "script failed: {context}"
    );
    let run: Value = serde_json::from_slice(&finished.stdout).unwrap();
    assert_eq!(run["grow"], Value::Null, "{run} {context}");
    assert!(
        run["shrink"]
            .as_str()
            .is_some_and(|e| e.starts_with("INVALID_PARTITIONS")),
        "{run}"
    );
    assert_eq!(run["partitions"], 3, "{run}");
    assert_eq!(run["low_watermark"], 4, "{run}");
    assert!(
        run["beyond"]
            .as_str()
            .is_some_and(|e| e.starts_with("OFFSET_OUT_OF_RANGE")),
        "{run}"
    );
}
