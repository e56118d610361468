//! Topic configs through the real binary: one validated table behind
//! CreateTopics, IncrementalAlterConfigs (the CLI's `topic alter --config`,
//! sediment-client, confluent-kafka's AdminClient) and DescribeConfigs.
//!
//! - An altered config takes effect at once on the running partitions and
//!   survives a restart: `message.timestamp.type` switched to LogAppendTime
//!   stamps the very next batch, and removing the override stores the
//!   producer's timestamps again.
//! - Unknown keys and bad values are refused with INVALID_CONFIG naming the
//!   key and what is allowed, and nothing changes.
//! - Configs that mean nothing on one node (`min.insync.replicas`) are
//!   accepted and described, with documentation saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::process::Command;

use common::client::read_back;
use common::BrokerProcess;
use sediment_client::{Client, ClientBuilder, ProducerConfig, ProducerRecord};
use serde_json::Value;

/// A CreateTime timestamp from long ago (within the default bounds).
const OLD_TIMESTAMP: i64 = 1_000_000;

fn described_configs(broker: &BrokerProcess, topic: &str) -> Value {
    let out = common::cli_stdout(&common::sediment_cli(
        broker,
        &["--output", "json", "topic", "describe", topic],
    ));
    let described: Value = serde_json::from_str(&out).unwrap();
    described["configs"].clone()
}

/// Produces one record with [`OLD_TIMESTAMP`] and returns the timestamp it
/// was stored with (read back from offset `offset`).
async fn stored_timestamp(client: &Client, topic: &str, offset: usize) -> i64 {
    let producer = client.producer(ProducerConfig::default()).unwrap();
    let meta = producer
        .enqueue(ProducerRecord::new(topic, &b"v"[..]).with_timestamp(OLD_TIMESTAMP))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(meta.offset, offset as i64);
    let records = read_back(client, topic, 0, offset + 1).await;
    records[offset].timestamp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_running_topic_when_its_timestamp_type_is_altered_then_the_next_batch_follows_and_it_survives_a_restart(
) {
    let mut broker = BrokerProcess::start(&[]);
    common::cli_stdout(&common::sediment_cli(
        &broker,
        &["topic", "create", "stamps"],
    ));
    let client = ClientBuilder::new(broker.bootstrap())
        .build()
        .await
        .unwrap();
    assert_eq!(stored_timestamp(&client, "stamps", 0).await, OLD_TIMESTAMP);

    let before_alter = common::canary::now_ms();
    let out = common::cli_stdout(&common::sediment_cli(
        &broker,
        &[
            "topic",
            "alter",
            "stamps",
            "--config",
            "message.timestamp.type=LogAppendTime",
        ],
    ));
    assert!(
        out.contains("message.timestamp.type=LogAppendTime"),
        "{out}"
    );
    let stamped = stored_timestamp(&client, "stamps", 1).await;
    assert!(
        stamped >= before_alter,
        "LogAppendTime at once: stored {stamped}, altered at {before_alter}"
    );
    assert_eq!(
        described_configs(&broker, "stamps")["message.timestamp.type"],
        "LogAppendTime"
    );

    broker.restart();
    let client = ClientBuilder::new(broker.bootstrap())
        .build()
        .await
        .unwrap();
    let after_restart = stored_timestamp(&client, "stamps", 2).await;
    assert!(after_restart >= before_alter, "kept across a restart");

    common::cli_stdout(&common::sediment_cli(
        &broker,
        &[
            "topic",
            "alter",
            "stamps",
            "--delete-config",
            "message.timestamp.type",
        ],
    ));
    assert_eq!(
        stored_timestamp(&client, "stamps", 3).await,
        OLD_TIMESTAMP,
        "back to CreateTime"
    );
    assert_eq!(
        described_configs(&broker, "stamps")["message.timestamp.type"],
        "CreateTime"
    );
}

#[test]
fn given_bad_or_unknown_configs_when_altering_then_refused_naming_the_key_and_nothing_changes() {
    let broker = BrokerProcess::start(&[]);
    common::cli_stdout(&common::sediment_cli(
        &broker,
        &[
            "topic",
            "create",
            "strict",
            "--config",
            "retention.ms=3600000",
        ],
    ));
    for (config, says) in [
        ("segment.bytes=1", "1048576"),
        ("min.cleanable.dirty.ratio=7", "from 0 to 1"),
        ("cleanup.policy=shred", "delete, compact or compact,delete"),
        ("no.such.config=1", "unknown topic config"),
        ("retention.ms=soon", "retention.ms"),
    ] {
        let out = common::sediment_cli(&broker, &["topic", "alter", "strict", "--config", config]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{config} was accepted");
        assert!(
            stderr.contains("InvalidConfig") || stderr.contains("INVALID_CONFIG"),
            "{config}: {stderr}"
        );
        assert!(stderr.contains(says), "{config}: {stderr}");
    }
    // A refused change in a batch of changes leaves the good ones undone too.
    let out = common::sediment_cli(
        &broker,
        &[
            "topic",
            "alter",
            "strict",
            "--config",
            "retention.ms=1000",
            "--config",
            "segment.bytes=1",
        ],
    );
    assert!(!out.status.success());
    let configs = described_configs(&broker, "strict");
    assert_eq!(configs["retention.ms"], "3600000", "{configs}");
    assert_eq!(configs["segment.bytes"], "1073741824", "{configs}");
}

#[test]
fn given_confluent_admin_client_when_altering_incrementally_then_answers_and_sources_match_kafka() {
    let broker = BrokerProcess::start(&[]);
    let python = common::python_with_confluent_kafka();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/alter_configs.py");
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg(broker.bootstrap())
        .arg("rdkafka-configs");
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
    assert_eq!(run["set"], Value::Null, "{run} {context}");
    assert_eq!(
        run["after_set"]["retention.ms"],
        serde_json::json!(["3600000", "DYNAMIC_TOPIC_CONFIG"]),
        "{run}"
    );
    assert_eq!(run["after_set"]["min.insync.replicas"][0], "1", "{run}");
    assert!(
        run["bad"]
            .as_str()
            .is_some_and(|e| e.starts_with("INVALID_CONFIG") && e.contains("segment.bytes")),
        "{run}"
    );
    assert_eq!(run["delete"], Value::Null, "{run}");
    assert_eq!(
        run["after_delete"]["retention.ms"][1], "DEFAULT_CONFIG",
        "{run}"
    );
    // Every Kafka topic config is described.
    for key in [
        "cleanup.policy",
        "compression.type",
        "delete.retention.ms",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "max.compaction.lag.ms",
        "min.insync.replicas",
        "segment.index.bytes",
        "unclean.leader.election.enable",
    ] {
        assert!(
            run["after_delete"].get(key).is_some(),
            "{key} not described: {run}"
        );
    }
}
