//! sediment-client against the real broker binary: produce/consume round
//! trips with every codec and acks setting, Kafka-compatible key placement,
//! topic administration, and retries across a broker restart.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::client::read_back;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::BrokerProcess;
use sediment_client::{
    Acks, ClientError, CompressionCodec, ConsumerConfig, ErrorCode, NewTopic, Offset, OffsetSpec,
    ProducerConfig, ProducerRecord, TopicPartition,
};

fn producer_config(acks: Acks, compression: CompressionCodec) -> ProducerConfig {
    ProducerConfig {
        acks,
        compression,
        // Idempotence (the default) needs acks=all.
        idempotence: acks == Acks::All,
        ..ProducerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_each_codec_and_acks_when_produced_then_consumed_byte_identical() {
    let broker = BrokerProcess::start(&[]);
    let client = common::client::connect(&broker).await;
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
            let producer = client.producer(producer_config(acks, codec)).unwrap();
            let mut futures = Vec::new();
            for i in 0..300u32 {
                let record = ProducerRecord::keyed(
                    topic.clone(),
                    format!("key-{i}"),
                    format!("value-{i}-{}", "x".repeat((i % 50) as usize)),
                )
                .with_header("seq", i.to_string())
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
                assert_eq!(record.offset, i as i64, "{topic}");
                assert_eq!(record.key, Some(Bytes::from(format!("key-{i}"))));
                assert_eq!(
                    record.value,
                    Some(Bytes::from(format!("value-{i}-{}", "x".repeat(i % 50))))
                );
                assert_eq!(record.timestamp, 1_700_000_000_000 + i as i64);
                assert_eq!(
                    record.headers,
                    vec![("seq".to_string(), Some(Bytes::from(i.to_string())))]
                );
            }
        }
    }
}

/// Kafka's murmur2, written again here from the Java source so that the
/// client's copy is checked against an independent one.
fn java_murmur2(data: &[u8]) -> i32 {
    let length = data.len() as i32;
    let m: i32 = 0x5bd1e995;
    let mut h: i32 = 0x9747b28c_u32 as i32 ^ length;
    for i in 0..(length / 4) as usize {
        let i4 = i * 4;
        let mut k: i32 = (data[i4] as i32 & 0xff)
            + ((data[i4 + 1] as i32 & 0xff) << 8)
            + ((data[i4 + 2] as i32 & 0xff) << 16)
            + ((data[i4 + 3] as i32 & 0xff) << 24);
        k = k.wrapping_mul(m);
        k ^= ((k as u32) >> 24) as i32;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    let tail = (length & !3) as usize;
    let rest = length % 4;
    if rest == 3 {
        h ^= (data[tail + 2] as i32 & 0xff) << 16;
    }
    if rest >= 2 {
        h ^= (data[tail + 1] as i32 & 0xff) << 8;
    }
    if rest >= 1 {
        h ^= data[tail] as i32 & 0xff;
        h = h.wrapping_mul(m);
    }
    h ^= ((h as u32) >> 13) as i32;
    h = h.wrapping_mul(m);
    h ^= ((h as u32) >> 15) as i32;
    h
}

#[test]
fn independent_murmur2_matches_kafka_vectors() {
    assert_eq!(java_murmur2(b"21"), -973_932_308);
    assert_eq!(java_murmur2(b"foobar"), -790_332_482);
    assert_eq!(java_murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
    assert_eq!(java_murmur2(b"abc"), 479_470_107);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_keyed_records_when_produced_then_partition_is_kafka_murmur2_placement() {
    let broker = BrokerProcess::start(&[]);
    let client = common::client::connect(&broker).await;
    let partitions = 7;
    client
        .admin()
        .create_topic(NewTopic::new("keyed", partitions))
        .await
        .unwrap();
    let producer = client.producer(ProducerConfig::default()).unwrap();
    let mut expected: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut futures = Vec::new();
    for i in 0..500 {
        let key = format!("user-{i}");
        let partition = (java_murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions;
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
    assert!(expected.len() > 1, "keys spread over several partitions");
    for (partition, keys) in expected {
        let records = read_back(&client, "keyed", partition, keys.len()).await;
        let got: Vec<String> = records
            .iter()
            .map(|r| String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap())
            .collect();
        assert_eq!(got, keys, "partition {partition}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_unkeyed_records_then_sticky_partitioning_fills_whole_batches() {
    let broker = BrokerProcess::start(&[]);
    let client = common::client::connect(&broker).await;
    client
        .admin()
        .create_topic(NewTopic::new("sticky", 4))
        .await
        .unwrap();
    let producer = client
        .producer(ProducerConfig {
            batch_size: 4096,
            ..ProducerConfig::default()
        })
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..2000 {
        futures.push(
            producer
                .enqueue(ProducerRecord::new("sticky", format!("{i:0100}")))
                .await
                .unwrap(),
        );
    }
    let mut per_partition: HashMap<i32, usize> = HashMap::new();
    let mut runs = 0;
    let mut last = -1;
    for future in futures {
        let meta = future.await.unwrap();
        *per_partition.entry(meta.partition).or_default() += 1;
        if meta.partition != last {
            runs += 1;
            last = meta.partition;
        }
    }
    assert!(per_partition.len() > 1, "{per_partition:?}");
    // ~30 records of 136 estimated bytes fill a 4 KiB batch: long runs, not
    // a partition per record.
    assert!(runs < 2000 / 10, "{runs} runs: {per_partition:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_admin_when_topics_created_described_listed_deleted_then_broker_agrees() {
    let broker = BrokerProcess::start(&[]);
    let client = common::client::connect(&broker).await;
    let admin = client.admin();
    admin
        .create_topic(NewTopic::new("orders", 3).with_config("retention.ms", "3600000"))
        .await
        .unwrap();
    admin.create_topic(NewTopic::new("audit", 1)).await.unwrap();
    let again = admin.create_topic(NewTopic::new("orders", 3)).await;
    assert!(
        matches!(&again, Err(e) if e.kafka_error() == Some(ErrorCode::TopicAlreadyExists)),
        "{again:?}"
    );

    let topics = admin.list_topics().await.unwrap();
    let names: Vec<(&str, i32)> = topics
        .iter()
        .map(|t| (t.name.as_str(), t.partitions))
        .collect();
    assert_eq!(names, vec![("audit", 1), ("orders", 3)]);

    let producer = client.producer(ProducerConfig::default()).unwrap();
    let before = 1_600_000_000_000;
    for i in 0..10 {
        producer
            .send(
                ProducerRecord::new("orders", format!("o{i}"))
                    .with_partition(1)
                    .with_timestamp(before + i),
            )
            .await
            .unwrap();
    }
    let description = admin.describe_topic("orders").await.unwrap();
    assert_eq!(description.name, "orders");
    assert!(!description.id.is_nil(), "Metadata v10+ carries topic ids");
    assert_eq!(description.partitions.len(), 3);
    assert_eq!(description.partitions[1].end_offset, 10);
    assert_eq!(description.partitions[1].log_start_offset, 0);
    assert_eq!(description.partitions[0].end_offset, 0);
    assert!(description.partitions.iter().all(|p| p.leader == 0));
    assert_eq!(
        description.configs.get("retention.ms").map(String::as_str),
        Some("3600000"),
        "{:?}",
        description.configs
    );

    assert_eq!(
        admin
            .list_offsets("orders", 1, OffsetSpec::Earliest)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        admin
            .list_offsets("orders", 1, OffsetSpec::Latest)
            .await
            .unwrap(),
        10
    );
    assert_eq!(
        admin
            .list_offsets("orders", 1, OffsetSpec::Timestamp(before + 4))
            .await
            .unwrap(),
        4
    );

    admin.delete_topic("orders").await.unwrap();
    let names: Vec<String> = admin
        .list_topics()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["audit".to_string()]);
    assert!(matches!(
        admin.describe_topic("orders").await,
        Err(ClientError::UnknownTopic { .. })
    ));
    assert!(matches!(
        admin.delete_topic("orders").await,
        Err(ClientError::UnknownTopic { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_assigned_consumer_then_starts_at_latest_and_stream_follows_new_records() {
    use futures_util::StreamExt;

    let broker = BrokerProcess::start(&[]);
    let client = common::client::connect(&broker).await;
    client
        .admin()
        .create_topic(NewTopic::new("live", 1))
        .await
        .unwrap();
    // Producer and consumer share the client's metadata and connections;
    // the consumer's long polls must not hold the producer's sends.
    let producer = client.producer(ProducerConfig::default()).unwrap();
    producer
        .send(ProducerRecord::new("live", "old"))
        .await
        .unwrap();
    let mut consumer = client
        .consumer(ConsumerConfig {
            fetch_max_wait: Duration::from_millis(200),
            ..ConsumerConfig::default()
        })
        .unwrap();
    consumer
        .assign([TopicPartition::new("live", 0)])
        .await
        .unwrap();
    assert_eq!(consumer.assignment(), vec![TopicPartition::new("live", 0)]);
    assert_eq!(consumer.position("live", 0), Some(1), "Latest by default");
    let sender = tokio::spawn(async move {
        for i in 0..5 {
            producer
                .send(ProducerRecord::new("live", format!("new-{i}")))
                .await
                .unwrap();
        }
    });
    let values: Vec<Bytes> = tokio::time::timeout(
        Duration::from_secs(30),
        consumer
            .stream()
            .take(5)
            .map(|r| r.unwrap().value.unwrap())
            .collect::<Vec<_>>(),
    )
    .await
    .expect("five new records within 30 s");
    sender.await.unwrap();
    let expected: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("new-{i}"))).collect();
    assert_eq!(values, expected);
    assert_eq!(consumer.position("live", 0), Some(6));
    assert_eq!(consumer.high_watermark("live", 0), Some(6));
    assert!(matches!(
        consumer.seek("other", 0, Offset::Earliest).await,
        Err(ClientError::NotAssigned { .. })
    ));
}

/// Brokers answer a connection's requests in order, so a consumer's long
/// poll on the producer's connection would hold the acknowledgement behind
/// it. Roles of one client share metadata and connections, except that
/// each consumer fetches over its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_one_client_when_its_consumer_long_polls_then_its_producer_is_not_held_behind_it() {
    let broker = BrokerProcess::start(&[]);
    let client = common::client::connect(&broker).await;
    let admin = client.admin();
    admin.create_topic(NewTopic::new("quiet", 1)).await.unwrap();
    admin.create_topic(NewTopic::new("busy", 1)).await.unwrap();
    let producer = client.producer(ProducerConfig::default()).unwrap();
    // Connections open and leaders known before anything is timed.
    producer
        .send(ProducerRecord::new("busy", "warm-up"))
        .await
        .unwrap();
    // A long poll that nothing can end early: "quiet" gets no record.
    let mut consumer = client
        .consumer(ConsumerConfig {
            fetch_max_wait: Duration::from_secs(30),
            ..ConsumerConfig::default()
        })
        .unwrap();
    consumer
        .assign([TopicPartition::new("quiet", 0)])
        .await
        .unwrap();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let polling = tokio::spawn(async move {
        let _ = started_tx.send(());
        consumer.poll().await.unwrap()
    });
    started_rx.await.unwrap();
    // Ordering, not timing: had the send queued behind the long poll, it
    // could only complete once the poll had returned (after 30 s).
    producer
        .send(ProducerRecord::new("busy", "while polling"))
        .await
        .unwrap();
    assert!(
        !polling.is_finished(),
        "the send was acknowledged only after the long poll returned"
    );
    assert!(polling.await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_broker_restart_mid_stream_when_acks_all_then_every_acknowledged_record_survives() {
    let broker = BrokerProcess::start_on_fixed_port(&[]);
    let client = common::client::connect(&broker).await;
    client
        .admin()
        .create_topic(NewTopic::new("durable", 2))
        .await
        .unwrap();
    let producer = client
        .producer(ProducerConfig {
            acks: Acks::All,
            retries: 100,
            retry_backoff: Duration::from_millis(100),
            linger: Duration::from_millis(2),
            batch_size: 16 * 1024,
            ..ProducerConfig::default()
        })
        .unwrap();

    // Restart the broker (SIGKILL, same data dir and port) while records
    // flow: once the first thousand are enqueued.
    let (flowing_tx, flowing_rx) = std::sync::mpsc::channel::<()>();
    let restarter = std::thread::spawn(move || {
        let _ = flowing_rx.recv();
        let mut broker = broker;
        broker.restart();
        broker
    });
    // Produce before, during and after the restart: keep going until the
    // broker is back, then 2000 more.
    let mut futures = Vec::new();
    let mut after_restart: Option<usize> = None;
    let mut i = 0;
    while after_restart.is_none_or(|start| i < start + 2000) {
        let record =
            ProducerRecord::keyed("durable", format!("k{}", i % 97), format!("record-{i}"));
        futures.push(producer.enqueue(record).await.unwrap());
        if i == 1000 {
            let _ = flowing_tx.send(());
        }
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if after_restart.is_none() && restarter.is_finished() {
            after_restart = Some(i);
        }
        i += 1;
        assert!(i < 2_000_000, "the broker did not come back");
    }
    assert!(
        after_restart.unwrap() > 1000,
        "records flowed before the restart"
    );
    let broker = tokio::task::spawn_blocking(move || restarter.join().unwrap())
        .await
        .unwrap();
    producer.flush().await.unwrap();
    let mut acked: HashMap<(i32, i64), String> = HashMap::new();
    let mut failed = Vec::new();
    for (i, future) in futures.into_iter().enumerate() {
        match future.await {
            Ok(meta) => {
                acked.insert((meta.partition, meta.offset), format!("record-{i}"));
            }
            Err(e) => failed.push((i, e)),
        }
    }
    assert!(
        failed.is_empty(),
        "{} records failed despite retries, first: {:?}",
        failed.len(),
        failed.first()
    );
    assert!(
        broker.logs().contains("no clean-shutdown marker"),
        "the broker restarted after SIGKILL and recovered: {}",
        broker.logs()
    );
    // The same client, whose connections the restart broke, reads back.
    for partition in 0..2 {
        let end = client
            .admin()
            .list_offsets("durable", partition, OffsetSpec::Latest)
            .await
            .unwrap();
        let records = read_back(&client, "durable", partition, end as usize).await;
        let stored: HashMap<i64, Bytes> = records
            .into_iter()
            .map(|r| (r.offset, r.value.unwrap()))
            .collect();
        for ((p, offset), value) in acked.iter().filter(|((p, _), _)| *p == partition) {
            assert_eq!(
                stored.get(offset),
                Some(&Bytes::from(value.clone())),
                "acknowledged record at {p}-{offset} is missing or different"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_dropped_producer_then_buffered_records_are_still_delivered() {
    let broker = BrokerProcess::start(&[]);
    let client = common::client::connect(&broker).await;
    let producer = client
        .producer(ProducerConfig {
            linger: Duration::from_millis(200),
            ..ProducerConfig::default()
        })
        .unwrap();
    drop(client);
    let mut futures = Vec::new();
    for i in 0..100 {
        futures.push(
            producer
                .enqueue(ProducerRecord::new("orphans", format!("v{i}")).with_partition(0))
                .await
                .unwrap(),
        );
    }
    drop(producer);
    for (i, future) in futures.into_iter().enumerate() {
        assert_eq!(future.await.unwrap().offset, i as i64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_record_above_broker_limit_then_message_too_large_without_retries() {
    let broker = BrokerProcess::start(&["--message-max-bytes", "100000"]);
    let producer = common::client::connect(&broker)
        .await
        .producer(ProducerConfig::default())
        .unwrap();
    let started = Instant::now();
    let result = producer
        .send(ProducerRecord::new("big", vec![7u8; 200_000]))
        .await;
    let error = result.unwrap_err();
    assert_eq!(
        error.kafka_error(),
        Some(ErrorCode::MessageTooLarge),
        "{error}"
    );
    assert!(
        error.to_string().contains("exceeds max.message.bytes"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "not retried");
    // The connection stays usable.
    producer
        .send(ProducerRecord::new("big", "small"))
        .await
        .unwrap();
}
