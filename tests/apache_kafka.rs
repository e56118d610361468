//! sediment-client (transactions included), the `sediment topic` CLI and a
//! `sediment window` job against a real Apache Kafka broker (4.x, KRaft
//! combined mode, started from the Maven jars in `target/java/lib/` by
//! `common::apache_kafka`): the scale-out target of DESIGN §1.3, used
//! unchanged. Any difference from what the same tests see on Sediment is a
//! bug in our client or job, or a documented Kafka difference (noted where
//! it applies).
//!
//! Each test starts its own cluster (one node, a few seconds; the last test
//! three nodes with replicated topics) so tests stay independent; the
//! cluster dies with the test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod group_scenarios;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::apache_kafka::ApacheKafka;
use common::client::read_back;
use common::run_bounded;
use common::wagg::{dedup, generate, reference, split, Expected, Kind};
use sediment_client::{
    partition_for_key, Acks, Client, ClientBuilder, CompressionCodec, ConfigChange, ConsumerConfig,
    ErrorCode, IsolationLevel, NewTopic, Offset, OffsetSpec, ProducerConfig, ProducerRecord,
    TopicPartition,
};
use serde_json::Value;

/// Nodes of the cluster of every test but the three-node one: one node
/// starts in about 5 s on two busy cores, three in about 9 s (and each
/// node's JVM holds ~400 MB), so the suite runs one three-node test and
/// keeps the rest on one node.
const NODES: usize = 1;

async fn client(kafka: &ApacheKafka) -> Client {
    ClientBuilder::new(kafka.bootstrap())
        .build()
        .await
        .expect("client")
}

// ------------------------------------------------------------ (a) round trips

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_apache_kafka_when_each_codec_and_acks_produced_then_consumed_byte_identical() {
    let started = Instant::now();
    let kafka = ApacheKafka::start(NODES);
    let client = client(&kafka).await;
    let admin = client.admin();
    let codecs = [
        CompressionCodec::None,
        CompressionCodec::Gzip,
        CompressionCodec::Snappy,
        CompressionCodec::Lz4,
        CompressionCodec::Zstd,
    ];
    for codec in codecs {
        for acks in [Acks::None, Acks::Leader, Acks::All] {
            let topic = format!("rt-{codec:?}-{acks:?}").to_lowercase();
            admin.create_topic(NewTopic::new(&topic, 1)).await.unwrap();
            let producer = client
                .producer(ProducerConfig {
                    acks,
                    compression: codec,
                    // Idempotence (the default) needs acks=all.
                    idempotence: acks == Acks::All,
                    ..ProducerConfig::default()
                })
                .unwrap();
            let mut futures = Vec::new();
            for i in 0..300u32 {
                // Binary keys and header values (every byte value), and a
                // header without a value, must come back byte for byte.
                let key: Vec<u8> = (0..=(i % 256) as u8).rev().collect();
                let record = ProducerRecord::keyed(
                    topic.clone(),
                    key,
                    format!("value-{i}-{}", "x".repeat((i % 50) as usize)),
                )
                .with_header("seq", i.to_string())
                .with_header("bin", vec![0u8, 255, (i % 256) as u8])
                .with_timestamp(1_700_000_000_000 + i64::from(i));
                futures.push(producer.enqueue(record).await.unwrap());
            }
            producer.flush().await.unwrap();
            for (i, future) in futures.into_iter().enumerate() {
                let meta = future.await.unwrap();
                assert_eq!(meta.partition, 0);
                match acks {
                    Acks::None => assert_eq!(meta.offset, -1),
                    _ => assert_eq!(meta.offset, i as i64, "{topic}"),
                }
            }
            let mut records = read_back(&client, &topic, 0, 300).await;
            records.truncate(300);
            for (i, record) in records.iter().enumerate() {
                let key: Vec<u8> = (0..=(i % 256) as u8).rev().collect();
                assert_eq!(record.offset, i as i64, "{topic}");
                assert_eq!(record.key, Some(Bytes::from(key)), "{topic} key {i}");
                assert_eq!(
                    record.value,
                    Some(Bytes::from(format!("value-{i}-{}", "x".repeat(i % 50))))
                );
                assert_eq!(record.timestamp, 1_700_000_000_000 + i as i64);
                assert_eq!(
                    record.headers,
                    vec![
                        ("seq".to_string(), Some(Bytes::from(i.to_string()))),
                        (
                            "bin".to_string(),
                            Some(Bytes::from(vec![0u8, 255, i as u8]))
                        ),
                    ],
                    "{topic} headers of {i}"
                );
            }
        }
    }
    eprintln!(
        "round trips: 15 topics × 300 records in {:?} (Kafka startup {:?})",
        started.elapsed(),
        kafka.startup
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_apache_kafka_when_keyed_records_produced_then_placement_and_offsets_match() {
    let kafka = ApacheKafka::start(NODES);
    let client = client(&kafka).await;
    let partitions = 5;
    client
        .admin()
        .create_topic(NewTopic::new("keyed", partitions))
        .await
        .unwrap();
    let producer = client.producer(ProducerConfig::default()).unwrap();
    let mut expected: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut futures = Vec::new();
    for i in 0..200 {
        let key = format!("user-{i}");
        let partition = partition_for_key(key.as_bytes(), partitions);
        expected.entry(partition).or_default().push(key.clone());
        futures.push((
            partition,
            producer
                .enqueue(ProducerRecord::keyed("keyed", key, "v"))
                .await
                .unwrap(),
        ));
    }
    for (partition, future) in futures {
        assert_eq!(future.await.unwrap().partition, partition);
    }
    for (partition, keys) in expected {
        let records = read_back(&client, "keyed", partition, keys.len()).await;
        let got: Vec<String> = records
            .iter()
            .map(|r| String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap())
            .collect();
        assert_eq!(got, keys, "partition {partition}");
        assert_eq!(
            client
                .admin()
                .list_offsets("keyed", partition, OffsetSpec::Latest)
                .await
                .unwrap(),
            keys.len() as i64
        );
    }
}

// ------------------------------------------------------------------ (b) groups

async fn group_env(kafka: &ApacheKafka, topic: &str) -> group_scenarios::Env {
    let env = group_scenarios::Env {
        client: client(kafka).await,
        topic: topic.to_string(),
        // Needs group.min.session.timeout.ms below Kafka's default 6000,
        // which the helper sets.
        session_timeout: Duration::from_secs(3),
    };
    env.client
        .admin()
        .create_topic(NewTopic::new(topic, group_scenarios::PARTITIONS))
        .await
        .expect("create topic");
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_apache_kafka_when_two_members_split_commit_and_one_leaves_then_the_other_takes_over_and_a_newcomer_resumes_at_committed_offsets(
) {
    let started = Instant::now();
    let kafka = ApacheKafka::start(NODES);
    let env = group_env(&kafka, "split").await;
    group_scenarios::split_commit_and_resume(&env).await;
    eprintln!("split/leave/resume done in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_apache_kafka_when_members_go_one_three_one_then_every_partition_has_one_owner_after_each_rebalance(
) {
    let kafka = ApacheKafka::start(NODES);
    let env = group_env(&kafka, "grow-shrink").await;
    group_scenarios::one_three_one(&env).await;
}

// ------------------------------------------------------------------- (c) admin

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_apache_kafka_when_administered_through_admin_then_kafka_agrees() {
    let kafka = ApacheKafka::start(NODES);
    let client = client(&kafka).await;
    let admin = client.admin();

    // Create, with a config override; a second create is refused.
    admin
        .create_topic(NewTopic::new("orders", 3).with_config("retention.ms", "3600000"))
        .await
        .unwrap();
    let again = admin.create_topic(NewTopic::new("orders", 3)).await;
    assert_eq!(
        again.as_ref().err().and_then(|e| e.kafka_error()),
        Some(ErrorCode::TopicAlreadyExists),
        "{again:?}"
    );
    let names: Vec<(String, i32)> = admin
        .list_topics()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.partitions))
        .collect();
    assert_eq!(names, vec![("orders".to_string(), 3)]);

    // Describe: ids, leaders among the nodes, offsets, sizes, configs.
    let producer = client.producer(ProducerConfig::default()).unwrap();
    for i in 0..10 {
        producer
            .send(ProducerRecord::new("orders", format!("o{i}")).with_partition(1))
            .await
            .unwrap();
    }
    let described = admin.describe_topic("orders").await.unwrap();
    assert!(!described.id.is_nil(), "Kafka assigns topic ids");
    assert_eq!(described.partitions.len(), 3);
    for p in &described.partitions {
        assert!(
            kafka.node_ids().contains(&p.leader),
            "leader {} of partition {}",
            p.leader,
            p.partition
        );
        assert!(p.size_bytes.is_some(), "DescribeLogDirs reports sizes");
    }
    assert_eq!(described.partitions[1].end_offset, 10);
    assert_eq!(described.partitions[1].log_start_offset, 0);
    assert!(described.partitions[1].size_bytes.unwrap() > 0);
    assert_eq!(
        described.configs.get("retention.ms").map(String::as_str),
        Some("3600000")
    );
    // Kafka reports every config, defaults included.
    assert_eq!(
        described.configs.get("cleanup.policy").map(String::as_str),
        Some("delete")
    );

    // Alter configs: set one, remove the override of another.
    admin
        .alter_topic_configs(
            "orders",
            &[
                ConfigChange::Set("segment.bytes".into(), "1048576".into()),
                ConfigChange::Delete("retention.ms".into()),
            ],
        )
        .await
        .unwrap();
    let configs = admin.describe_topic("orders").await.unwrap().configs;
    assert_eq!(
        configs.get("segment.bytes").map(String::as_str),
        Some("1048576")
    );
    assert_eq!(
        configs.get("retention.ms").map(String::as_str),
        Some("604800000"),
        "back to Kafka's default (7 days)"
    );
    let bad = admin
        .alter_topic_configs(
            "orders",
            &[ConfigChange::Set("retention.ms".into(), "soon".into())],
        )
        .await;
    assert_eq!(
        bad.as_ref().err().and_then(|e| e.kafka_error()),
        Some(ErrorCode::InvalidConfig),
        "{bad:?}"
    );

    // Create partitions: grows, never shrinks.
    admin.create_partitions("orders", 5).await.unwrap();
    assert_eq!(
        admin
            .describe_topic("orders")
            .await
            .unwrap()
            .partitions
            .len(),
        5
    );
    let shrink = admin.create_partitions("orders", 2).await;
    assert_eq!(
        shrink.as_ref().err().and_then(|e| e.kafka_error()),
        Some(ErrorCode::InvalidPartitions),
        "{shrink:?}"
    );
    // The producer learns the new partitions.
    producer
        .send(ProducerRecord::new("orders", "late").with_partition(4))
        .await
        .unwrap();

    // Delete records: the log start moves; beyond the end is refused.
    let tp = TopicPartition::new("orders", 1);
    assert_eq!(admin.delete_records(&tp, 4).await.unwrap(), 4);
    assert_eq!(
        admin
            .list_offsets("orders", 1, OffsetSpec::Earliest)
            .await
            .unwrap(),
        4
    );
    let described = admin.describe_topic("orders").await.unwrap();
    assert_eq!(described.partitions[1].log_start_offset, 4);
    assert_eq!(described.partitions[4].end_offset, 1);
    let beyond = admin.delete_records(&tp, 11).await;
    assert_eq!(
        beyond.as_ref().err().and_then(|e| e.kafka_error()),
        Some(ErrorCode::OffsetOutOfRange),
        "{beyond:?}"
    );
    assert_eq!(admin.delete_records(&tp, -1).await.unwrap(), 10);
    assert_eq!(
        admin
            .list_offsets("orders", 1, OffsetSpec::Earliest)
            .await
            .unwrap(),
        10
    );

    admin.delete_topic("orders").await.unwrap();
    // Kafka deletes asynchronously: wait for Metadata to stop listing it.
    common::wait_until_async(
        Duration::from_secs(60),
        || async { admin.list_topics().await.unwrap().is_empty() },
        || "orders is still listed".to_string(),
    )
    .await;
}

fn sediment(bootstrap: &str, args: &[&str], stdin: Option<String>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sediment"));
    cmd.arg("--bootstrap").arg(bootstrap).args(args);
    let done = run_bounded(cmd, stdin.map(String::into_bytes), Duration::from_secs(60));
    assert!(
        done.status.is_some_and(|s| s.success()),
        "sediment {args:?}: {:?}\nstdout: {}\nstderr: {}",
        done.status,
        String::from_utf8_lossy(&done.stdout),
        done.stderr
    );
    String::from_utf8(done.stdout).unwrap()
}

fn sediment_json(bootstrap: &str, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = sediment(bootstrap, &all, None);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed {out:?}: {e}"))
}

#[test]
fn given_apache_kafka_when_administered_through_the_topic_cli_then_kafka_agrees() {
    let kafka = ApacheKafka::start(NODES);
    let b = kafka.bootstrap();
    sediment(
        &b,
        &[
            "topic",
            "create",
            "cli",
            "--partitions",
            "2",
            "--config",
            "retention.ms=3600000",
        ],
        None,
    );
    let listed = sediment_json(&b, &["topic", "list"]);
    assert_eq!(
        listed,
        serde_json::json!([{"name": "cli", "partitions": 2}])
    );
    let lines: String = (0..10).map(|i| format!("line-{i}\n")).collect();
    sediment(&b, &["produce", "cli", "--partition", "0"], Some(lines));

    let described = sediment_json(&b, &["topic", "describe", "cli"]);
    assert_eq!(described["name"], "cli");
    assert_eq!(described["partitions"][0]["end_offset"], 10);
    assert_eq!(described["partitions"][1]["end_offset"], 0);
    assert_eq!(described["configs"]["retention.ms"], "3600000");

    sediment(
        &b,
        &[
            "topic",
            "alter",
            "cli",
            "--partitions",
            "4",
            "--config",
            "max.message.bytes=200000",
            "--delete-config",
            "retention.ms",
        ],
        None,
    );
    let deleted = sediment_json(
        &b,
        &[
            "topic",
            "delete-records",
            "cli",
            "--partition",
            "0",
            "--before",
            "3",
        ],
    );
    assert_eq!(deleted["low_watermark"], 3);
    let described = sediment_json(&b, &["topic", "describe", "cli"]);
    assert_eq!(described["partitions"].as_array().unwrap().len(), 4);
    assert_eq!(described["partitions"][0]["log_start_offset"], 3);
    assert_eq!(described["configs"]["max.message.bytes"], "200000");
    assert_eq!(described["configs"]["retention.ms"], "604800000");

    // What's left reads back from the new log start.
    let out = sediment(
        &b,
        &[
            "consume",
            "cli",
            "--from-beginning",
            "--timeout-ms",
            "2000",
            "--max-messages",
            "7",
        ],
        None,
    );
    let values: Vec<&str> = out.lines().collect();
    let expected: Vec<String> = (3..10).map(|i| format!("line-{i}")).collect();
    assert_eq!(values, expected);

    sediment(&b, &["topic", "delete", "cli"], None);
    common::wait_until(
        Duration::from_secs(60),
        || sediment_json(&b, &["topic", "list"]) == serde_json::json!([]),
        || "cli is still listed".to_string(),
    );
}

// ---------------------------------------------------------------- (d) window

const GRACE: i64 = 200;
const SIZE: i64 = 1_000;

/// Every record of `topic`, values parsed as JSON.
fn read_all(bootstrap: &str, topic: &str) -> Vec<Value> {
    let out = sediment(
        bootstrap,
        &[
            "consume",
            topic,
            "--from-beginning",
            "--timeout-ms",
            "1000",
            "--format",
            "json",
        ],
        None,
    );
    out.lines()
        .map(|l| {
            let record: Value = serde_json::from_str(l).unwrap();
            let value = record["value"].as_str().expect("value is a string");
            serde_json::from_str(value).unwrap_or_else(|e| panic!("{value}: {e}"))
        })
        .collect()
}

struct Job {
    child: Child,
    log: std::path::PathBuf,
}

impl Job {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("window job exited early ({status}); log:\n{}", self.log());
        }
    }
    fn sigterm(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        match common::wait_for_exit(&mut self.child, Duration::from_secs(30)) {
            Some(status) => status.code(),
            None => panic!(
                "window job did not exit within 30 s of SIGTERM; log:\n{}",
                self.log()
            ),
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn given_apache_kafka_when_a_tumbling_window_job_runs_then_its_output_equals_the_wagg1_reference() {
    let started = Instant::now();
    let kafka = ApacheKafka::start(NODES);
    let b = kafka.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let parts = 3;
    let events = generate(0x5eed_0001, 2_000);
    // Each event goes to its key's partition (explicitly), so each
    // partition's order is produce order (the job's decisions depend only
    // on that order).
    let split = split(&events, parts);
    let Expected {
        windows: expected,
        late,
    } = reference(Kind::Tumbling(SIZE), GRACE, &split);
    assert!(expected.len() > 50 && late > 20, "a meaningful input");

    for (topic, n) in [("in", parts), ("out", 1), ("late", 1)] {
        sediment(
            &b,
            &["topic", "create", topic, "--partitions", &n.to_string()],
            None,
        );
    }
    for (p, events) in split.iter().enumerate() {
        let lines: String = events.iter().map(|e| e.json() + "\n").collect();
        sediment(
            &b,
            &["produce", "in", "--partition", &p.to_string()],
            Some(lines),
        );
    }

    let log = dir.path().join("job.log");
    let mut job = Job {
        child: Command::new(env!("CARGO_BIN_EXE_sediment"))
            .args(["--bootstrap", &b, "window", "--input", "in"])
            .args(["--output-topic", "out", "--late-topic", "late"])
            .args(["--group", "wagg", "--tumbling", &SIZE.to_string()])
            .args(["--grace", &GRACE.to_string(), "--checkpoint-ms", "200"])
            .env("SEDIMENT_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn sediment window"),
        log,
    };
    // The job commits input offsets only after the outputs (windows and
    // late events) of everything before them are acknowledged: once the
    // group's commits cover the whole input, every output is in.
    // 0 while Kafka has no coordinator for the group yet (it creates
    // __consumer_offsets on first use and answers COORDINATOR_NOT_AVAILABLE).
    let committed = || -> i64 {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sediment"));
        cmd.args([
            "--bootstrap",
            &b,
            "--output",
            "json",
            "group",
            "describe",
            "wagg",
        ]);
        let done = run_bounded(cmd, None, Duration::from_secs(60));
        if !done.status.is_some_and(|s| s.success()) {
            return 0;
        }
        let described: Value = serde_json::from_slice(&done.stdout).unwrap_or(Value::Null);
        described["offsets"].as_array().map_or(0, |offsets| {
            offsets
                .iter()
                .filter(|o| o["topic"] == "in")
                .filter_map(|o| o["committed"].as_i64())
                .sum()
        })
    };
    let log_path = job.log.clone();
    common::wait_until(
        Duration::from_secs(120),
        || {
            job.assert_running();
            committed() == events.len() as i64
        },
        || {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            format!(
                "the job committed {} of {} input records; job log:\n{log}",
                committed(),
                events.len()
            )
        },
    );
    let raw = read_all(&b, "out");
    let job_log = job.log();
    assert_eq!(
        job.sigterm(),
        Some(0),
        "exit code on SIGTERM; log:\n{job_log}"
    );
    let got = dedup(&raw);
    assert_eq!(got.len(), raw.len(), "no window is emitted twice");
    let missing: Vec<_> = expected
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .take(10)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|(k, v)| expected.get(*k) != Some(*v))
        .take(10)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "expected {} windows, got {}; missing or different: {missing:#?}; unexpected: {extra:#?}",
        expected.len(),
        got.len()
    );
    assert_eq!(read_all(&b, "late").len(), late, "late-output count");
    // The job's state topic on Kafka is compacted, as on Sediment.
    let state = sediment_json(&b, &["topic", "describe", "wagg.window-state"]);
    assert_eq!(state["configs"]["cleanup.policy"], "compact");
    eprintln!(
        "window on Kafka: {} windows, {late} late events; ok at {:?} (Kafka startup {:?})",
        got.len(),
        started.elapsed(),
        kafka.startup
    );
}

// ------------------------------------------------------------ (e) transactions

/// Every record `isolation` lets a consumer read of `topic`-0, up to where
/// such a consumer's `Offset::Latest` is (the last stable offset under
/// read_committed), as text.
async fn read_isolated(client: &Client, topic: &str, isolation: IsolationLevel) -> Vec<String> {
    let config = ConsumerConfig {
        isolation_level: isolation,
        fetch_max_wait: Duration::from_millis(100),
        ..ConsumerConfig::default()
    };
    let mut end_probe = client.consumer(config.clone()).unwrap();
    end_probe
        .assign([TopicPartition::new(topic, 0)])
        .await
        .unwrap();
    end_probe.seek(topic, 0, Offset::Latest).await.unwrap();
    let end = end_probe.position(topic, 0).unwrap();
    let mut consumer = client.consumer(config).unwrap();
    consumer
        .assign([TopicPartition::new(topic, 0)])
        .await
        .unwrap();
    consumer.seek(topic, 0, Offset::Earliest).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut values = Vec::new();
    while consumer.position(topic, 0).unwrap_or(-1) < end {
        assert!(Instant::now() < deadline, "{topic} read to {end}");
        for record in consumer.poll().await.unwrap() {
            values.push(String::from_utf8_lossy(&record.value.unwrap_or_default()).into_owned());
        }
    }
    values
}

/// The transactional producer and read_committed consumer on Kafka's own
/// transaction coordinator: commit and abort as Kafka shows them, offsets
/// committed with the transaction, fencing by a newer producer, and an
/// abortable failure after which the producer (with a bumped epoch) goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_apache_kafka_when_transactions_commit_abort_and_fence_then_read_committed_sees_only_committed_records(
) {
    let kafka = ApacheKafka::start(NODES);
    let client = client(&kafka).await;
    let admin = client.admin();
    admin
        .create_topic(NewTopic::new("txn-out", 1))
        .await
        .unwrap();
    admin
        .create_topic(NewTopic::new("txn-in", 1))
        .await
        .unwrap();
    let transactional = |id: &str| ProducerConfig {
        transactional_id: Some(id.to_string()),
        ..ProducerConfig::default()
    };
    let first = client.producer(transactional("kafka-txn")).unwrap();
    first.init_transactions().await.unwrap();

    first.begin_transaction().unwrap();
    for i in 0..3 {
        first
            .send(ProducerRecord::new("txn-out", format!("committed-{i}")))
            .await
            .unwrap();
    }
    first
        .send_offsets_to_transaction(&[("txn-in".to_string(), 0, 6)], "txn-group")
        .await
        .unwrap();
    assert!(admin
        .committed_offsets("txn-group")
        .await
        .unwrap()
        .is_empty());
    first.commit_transaction().await.unwrap();

    first.begin_transaction().unwrap();
    first
        .send(ProducerRecord::new("txn-out", "aborted"))
        .await
        .unwrap();
    first.abort_transaction().await.unwrap();

    // A newer producer with the same id fences the first, whose open
    // transaction Kafka aborts.
    first.begin_transaction().unwrap();
    first
        .send(ProducerRecord::new("txn-out", "zombie"))
        .await
        .unwrap();
    let second = client.producer(transactional("kafka-txn")).unwrap();
    second.init_transactions().await.unwrap();
    let fenced = first.commit_transaction().await.unwrap_err();
    assert!(fenced.is_fatal(), "{fenced}");

    // A record Kafka refuses makes the transaction abortable, not fatal.
    second.begin_transaction().unwrap();
    let too_large = second
        .enqueue(ProducerRecord::new("txn-out", vec![b'x'; 2_000_000]))
        .await
        .unwrap();
    assert_eq!(
        too_large.await.unwrap_err().kafka_error(),
        Some(ErrorCode::MessageTooLarge)
    );
    let abortable = second.commit_transaction().await.unwrap_err();
    assert!(!abortable.is_fatal(), "{abortable}");
    second.abort_transaction().await.unwrap();
    second.begin_transaction().unwrap();
    second
        .send(ProducerRecord::new("txn-out", "after-abort"))
        .await
        .unwrap();
    second.commit_transaction().await.unwrap();

    assert_eq!(
        read_isolated(&client, "txn-out", IsolationLevel::ReadCommitted).await,
        ["committed-0", "committed-1", "committed-2", "after-abort"]
    );
    assert_eq!(
        read_isolated(&client, "txn-out", IsolationLevel::ReadUncommitted).await,
        [
            "committed-0",
            "committed-1",
            "committed-2",
            "aborted",
            "zombie",
            "after-abort"
        ]
    );
    let expected: BTreeMap<TopicPartition, i64> = [(TopicPartition::new("txn-in", 0), 6)].into();
    common::wait_until_async(
        Duration::from_secs(60),
        || async { admin.committed_offsets("txn-group").await.ok().as_ref() == Some(&expected) },
        || "the offset committed with the transaction".to_string(),
    )
    .await;
}

// ---------------------------------------------------------- three-node cluster

/// The scale-out shape: three KRaft nodes, topics replicated three times
/// with min.insync.replicas=2. The client must route each partition to its
/// own leader (spread over the nodes) and get acks=all from the ISR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_three_node_apache_kafka_when_replicated_partitions_are_produced_with_acks_all_then_every_leader_serves_its_records(
) {
    let started = Instant::now();
    let kafka = ApacheKafka::start(3);
    let client = client(&kafka).await;
    let admin = client.admin();
    let partitions = 6;
    admin
        .create_topic(NewTopic::new("replicated", partitions))
        .await
        .unwrap();
    let described = admin.describe_topic("replicated").await.unwrap();
    let leaders: std::collections::BTreeSet<i32> =
        described.partitions.iter().map(|p| p.leader).collect();
    assert!(
        leaders.len() > 1 && leaders.iter().all(|l| kafka.node_ids().contains(l)),
        "leaders {leaders:?} spread over nodes {:?}",
        kafka.node_ids()
    );
    let producer = client
        .producer(ProducerConfig {
            acks: Acks::All,
            compression: CompressionCodec::Zstd,
            ..ProducerConfig::default()
        })
        .unwrap();
    let mut expected: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
    let mut futures = Vec::new();
    for i in 0..600 {
        let (key, value) = (format!("k{}", i % 37), format!("v{i}"));
        let partition = partition_for_key(key.as_bytes(), partitions);
        expected
            .entry(partition)
            .or_default()
            .push((key.clone(), value.clone()));
        futures.push(
            producer
                .enqueue(ProducerRecord::keyed("replicated", key, value))
                .await
                .unwrap(),
        );
    }
    producer.flush().await.unwrap();
    for future in futures {
        future.await.unwrap();
    }
    for (partition, sent) in expected {
        let records = read_back(&client, "replicated", partition, sent.len()).await;
        let got: Vec<(String, String)> = records
            .iter()
            .map(|r| {
                (
                    String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap(),
                    String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(got, sent, "partition {partition}");
    }
    eprintln!(
        "three nodes: 600 records over 6 replicated partitions ok at {:?} (Kafka startup {:?})",
        started.elapsed(),
        kafka.startup
    );
}
