//! sediment-client against a third-party broker: librdkafka's built-in mock
//! Kafka cluster, started through confluent-kafka by
//! `tests/python/mock_cluster.py`. It negotiates its own API versions, so
//! this checks that the client's version negotiation, request encoding and
//! record batches work with a Kafka implementation other than Sediment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::client::read_back;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use std::collections::BTreeMap;

use sediment_client::{
    partition_for_key, Acks, Client, ClientBuilder, ClientError, CompressionCodec, ConsumerConfig,
    NewTopic, OffsetSpec, ProducerConfig, ProducerRecord, TopicPartition,
};

/// The mock cluster process; it exits when its stdin closes (on drop).
struct MockCluster {
    child: Child,
    bootstrap: String,
}

impl MockCluster {
    fn start() -> Self {
        let python = common::python_with_confluent_kafka();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/mock_cluster.py");
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/python/mock_cluster.py");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("bootstrap ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let bootstrap = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("mock_cluster.py printed no bootstrap address within 30 s");
            }
        };
        Self { child, bootstrap }
    }

    async fn client(&self) -> Client {
        ClientBuilder::new(&self.bootstrap)
            .build()
            .await
            .expect("client")
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_mock_cluster_when_admin_connects_then_topic_changes_are_refused_as_unsupported() {
    let mock = MockCluster::start();
    let admin = mock.client().await.admin();
    assert_eq!(admin.list_topics().await.unwrap(), vec![]);
    // The mock serves no CreateTopics/DeleteTopics: a clear error, no retry loop.
    let started = Instant::now();
    assert!(matches!(
        admin.create_topic(NewTopic::new("t", 2)).await,
        Err(ClientError::UnsupportedApi {
            api: "CreateTopics",
            ..
        })
    ));
    assert!(matches!(
        admin.delete_topic("t").await,
        Err(ClientError::UnsupportedApi {
            api: "DeleteTopics",
            ..
        })
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(
        admin.describe_topic("absent").await,
        Err(ClientError::UnknownTopic { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_mock_cluster_when_round_tripping_every_codec_and_acks_then_records_match() {
    let mock = MockCluster::start();
    let client = mock.client().await;
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
            // The mock auto-creates topics on the producer's Metadata request.
            let topic = format!("mock-{codec:?}-{acks:?}").to_lowercase();
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
            for i in 0..60 {
                let record =
                    ProducerRecord::keyed(topic.clone(), format!("key-{i}"), format!("value-{i}"))
                        .with_header("n", i.to_string())
                        .with_timestamp(1_700_000_000_000 + i);
                futures.push(producer.enqueue(record).await.unwrap());
            }
            producer.flush().await.unwrap();
            let partitions = admin.describe_topic(&topic).await.unwrap().partitions.len() as i32;
            assert!(
                partitions > 1,
                "{topic}: auto-created with {partitions} partitions"
            );
            let mut expected: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
            for (i, future) in futures.into_iter().enumerate() {
                let meta = future.await.unwrap();
                let key = format!("key-{i}");
                assert_eq!(
                    meta.partition,
                    partition_for_key(key.as_bytes(), partitions),
                    "{topic}"
                );
                if acks == Acks::None {
                    assert_eq!(meta.offset, -1);
                }
                expected.entry(meta.partition).or_default().push(i as i64);
            }
            for (partition, indexes) in expected {
                let records = read_back(&client, &topic, partition, indexes.len()).await;
                assert_eq!(records.len(), indexes.len(), "{topic}-{partition}");
                for (offset, (record, i)) in records.iter().zip(&indexes).enumerate() {
                    assert_eq!(record.offset, offset as i64, "{topic}-{partition}");
                    assert_eq!(record.key, Some(Bytes::from(format!("key-{i}"))));
                    assert_eq!(record.value, Some(Bytes::from(format!("value-{i}"))));
                    assert_eq!(record.timestamp, 1_700_000_000_000 + i);
                    assert_eq!(
                        record.headers,
                        vec![("n".to_string(), Some(Bytes::from(i.to_string())))]
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_mock_cluster_then_describe_list_offsets_and_latest_start_work() {
    let mock = MockCluster::start();
    let client = mock.client().await;
    let producer = client.producer(ProducerConfig::default()).unwrap();
    for i in 0..5 {
        producer
            .send(
                ProducerRecord::new("described", format!("v{i}"))
                    .with_partition(2)
                    .with_timestamp(1000 + i),
            )
            .await
            .unwrap();
    }
    let admin = client.admin();
    let description = admin.describe_topic("described").await.unwrap();
    assert_eq!(description.partitions[2].end_offset, 5);
    assert_eq!(description.partitions[2].log_start_offset, 0);
    assert!(description.partitions.iter().all(|p| p.leader >= 1));
    // The mock serves no DescribeConfigs: configs are reported empty.
    assert!(description.configs.is_empty());
    let names: Vec<String> = admin
        .list_topics()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["described".to_string()]);
    assert_eq!(
        admin
            .list_offsets("described", 2, OffsetSpec::Earliest)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        admin
            .list_offsets("described", 2, OffsetSpec::Latest)
            .await
            .unwrap(),
        5
    );

    let mut consumer = client.consumer(ConsumerConfig::default()).unwrap();
    consumer
        .assign([TopicPartition::new("described", 2)])
        .await
        .unwrap();
    assert_eq!(consumer.position("described", 2), Some(5));
    producer
        .send(ProducerRecord::new("described", "after").with_partition(2))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.is_empty() {
        assert!(Instant::now() < deadline, "no record after assign");
        got = consumer.poll().await.unwrap();
    }
    assert_eq!(got[0].offset, 5);
    assert_eq!(got[0].value, Some(Bytes::from_static(b"after")));
    assert_eq!(consumer.high_watermark("described", 2), Some(6));
}
