//! sediment-client, the `sediment topic` CLI and a `sediment window` job
//! against a real Apache Kafka broker (4.x, KRaft combined mode, started
//! from the Maven jars in `target/java/lib/` by `common::apache_kafka`): the
//! scale-out target of DESIGN §1.3, used unchanged. Any difference from
//! what the same tests see on Sediment is a bug in our client or job, or a
//! documented Kafka difference (noted where it applies).
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
use sediment_client::{
    partition_for_key, Acks, Client, ClientBuilder, CompressionCodec, ConfigChange, ErrorCode,
    NewTopic, OffsetSpec, ProducerConfig, ProducerRecord, TopicPartition,
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while !admin.list_topics().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "orders still listed after 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while sediment_json(&b, &["topic", "list"]) != serde_json::json!([]) {
        assert!(Instant::now() < deadline, "cli still listed after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------- (d) window

const GRACE: i64 = 200;
const SIZE: i64 = 1_000;

/// xorshift64: small, seeded, reproducible (as in tests/window.rs).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone)]
struct Ev {
    key: String,
    ts: i64,
    value: i64,
}

/// `n` events over 20 keys, timestamps mostly increasing with jitter and
/// some far later than the grace (tests/window.rs's generator).
fn generate(seed: u64, n: usize) -> Vec<Ev> {
    let mut rng = Rng(seed);
    let mut base: i64 = 1_000;
    (0..n)
        .map(|_| {
            base += 5 + rng.below(10) as i64;
            if rng.below(60) == 0 {
                base += 800 + rng.below(2_500) as i64;
            }
            let ts = match rng.below(100) {
                0..=5 => (base - 250 - rng.below(1_500) as i64).max(0),
                6..=25 => (base - rng.below(190) as i64).max(0),
                _ => base + rng.below(120) as i64,
            };
            let k = rng.below(20) * rng.below(20) / 19;
            Ev {
                key: format!("k{k:02}"),
                ts,
                value: rng.below(201) as i64 - 100,
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Agg {
    count: u64,
    sum: i64,
    min: i64,
    max: i64,
}

/// (key, start, end) of a tumbling window.
type WinId = (String, i64, i64);

/// The windows DESIGN §6 closes for tumbling(SIZE) with GRACE, one input
/// partition at a time (brute force, independent of the library), and the
/// number of late events.
fn tumbling_reference(partitions: &[Vec<Ev>]) -> (BTreeMap<WinId, Agg>, usize) {
    let mut closed = BTreeMap::new();
    let mut late = 0;
    for events in partitions {
        let mut max_ts = i64::MIN;
        let mut open: BTreeMap<(String, i64), Agg> = BTreeMap::new();
        for e in events {
            max_ts = max_ts.max(e.ts);
            let wm = max_ts - GRACE;
            let start = e.ts.div_euclid(SIZE) * SIZE;
            if start + SIZE > wm {
                let agg = open.entry((e.key.clone(), start)).or_insert(Agg {
                    count: 0,
                    sum: 0,
                    min: e.value,
                    max: e.value,
                });
                agg.count += 1;
                agg.sum += e.value;
                agg.min = agg.min.min(e.value);
                agg.max = agg.max.max(e.value);
            } else {
                late += 1;
            }
            let closing: Vec<(String, i64)> = open
                .keys()
                .filter(|(_, s)| s + SIZE <= wm)
                .cloned()
                .collect();
            for id in closing {
                let agg = open.remove(&id).unwrap();
                let previous = closed.insert((id.0, id.1, id.1 + SIZE), agg);
                assert!(previous.is_none(), "reference closed a window twice");
            }
        }
    }
    (closed, late)
}

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

fn int(w: &Value, field: &str) -> i64 {
    w[field]
        .as_i64()
        .unwrap_or_else(|| panic!("`{field}` is not an exact integer in {w}"))
}

fn parse_windows(raw: &[Value]) -> BTreeMap<WinId, Agg> {
    let mut out = BTreeMap::new();
    for w in raw {
        assert_eq!(w["kind"], "tumbling", "{w}");
        let id = (
            w["key"].as_str().unwrap().to_string(),
            int(w, "start"),
            int(w, "end"),
        );
        let agg = Agg {
            count: int(w, "count") as u64,
            sum: int(w, "sum"),
            min: int(w, "min"),
            max: int(w, "max"),
        };
        assert!(
            out.insert(id.clone(), agg).is_none(),
            "{id:?} emitted twice"
        );
    }
    out
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
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "window job did not exit within 30 s of SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
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
    // Partition = key's murmur2 placement, so each partition's order is
    // produce order (the job's decisions depend only on that order).
    let mut split = vec![Vec::new(); parts];
    for e in &events {
        split[partition_for_key(e.key.as_bytes(), parts as i32) as usize].push(e.clone());
    }
    let (expected, late) = tumbling_reference(&split);
    assert!(expected.len() > 50 && late > 20, "a meaningful input");

    for (topic, n) in [("in", parts), ("out", 1), ("late", 1)] {
        sediment(
            &b,
            &["topic", "create", topic, "--partitions", &n.to_string()],
            None,
        );
    }
    for (p, events) in split.iter().enumerate() {
        let lines: String = events
            .iter()
            .map(|e| {
                format!(
                    "{{\"key\": \"{}\", \"ts\": {}, \"value\": {}}}\n",
                    e.key, e.ts, e.value
                )
            })
            .collect();
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
    // Wait for every expected window and every late event, then a stable count.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = usize::MAX;
    let raw = loop {
        job.assert_running();
        let raw = read_all(&b, "out");
        let late_now = read_all(&b, "late").len();
        if raw.len() >= expected.len() && late_now >= late && raw.len() == last {
            break raw;
        }
        assert!(
            Instant::now() < deadline,
            "after 120 s: {} of {} windows, {late_now} of {late} late events; job log:\n{}",
            raw.len(),
            expected.len(),
            job.log()
        );
        last = raw.len();
        std::thread::sleep(Duration::from_millis(200));
    };
    let job_log = job.log();
    assert_eq!(
        job.sigterm(),
        Some(0),
        "exit code on SIGTERM; log:\n{job_log}"
    );
    let got = parse_windows(&raw);
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
