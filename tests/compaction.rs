//! Log compaction through the real binary: a topic created with
//! `cleanup.policy=compact` is cleaned by the broker's background cleaner
//! while it runs, keeps the latest value of every key at its original
//! offset, refuses records without a key, survives kill -9, and passes
//! `sediment log verify` afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::BrokerProcess;
use sediment_client::{ClientBuilder, ErrorCode, ProducerConfig, ProducerRecord};

const TOPIC: &str = "latest";
const KEYS: usize = 500;
const ROUNDS: usize = 8;
const VALUE_BYTES: usize = 1000;

fn value(key: usize, round: usize) -> Vec<u8> {
    let mut value = format!("key-{key:04}-round-{round}-").into_bytes();
    value.resize(VALUE_BYTES, b'a' + (round % 26) as u8);
    value
}

fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|f| f.path().extension().is_some_and(|e| e == "log"))
        .map(|f| f.metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_compacted_topic_when_keys_are_overwritten_then_the_cleaner_keeps_the_latest_per_key_at_its_offset(
) {
    let mut broker = BrokerProcess::start(&["--log-cleaner-backoff-ms", "100"]);
    let created = Command::new(env!("CARGO_BIN_EXE_sediment"))
        .args(["--bootstrap", &broker.bootstrap(), "topic", "create", TOPIC])
        .args(["--config", "cleanup.policy=compact"])
        .args(["--config", "segment.bytes=1048576"])
        .args(["--config", "min.cleanable.dirty.ratio=0.01"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");

    let client = ClientBuilder::new(broker.bootstrap())
        .build()
        .await
        .unwrap();
    let producer = client.producer(ProducerConfig::default()).unwrap();
    // offset → (key, round), as acknowledged.
    let mut produced = BTreeMap::new();
    for round in 0..ROUNDS {
        let mut acks = Vec::new();
        for key in 0..KEYS {
            let record = ProducerRecord::keyed(TOPIC, format!("key-{key:04}"), value(key, round));
            acks.push((key, producer.enqueue(record).await.unwrap()));
        }
        for (key, ack) in acks {
            let meta = ack.await.unwrap();
            produced.insert(meta.offset, (key, round));
        }
    }
    let total = produced.len();
    let written = ROUNDS * KEYS * VALUE_BYTES;

    // A record without a key is refused, and nothing is appended.
    let keyless = producer
        .enqueue(ProducerRecord::new(TOPIC, value(0, 99)))
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert_eq!(
        keyless.kafka_error(),
        Some(ErrorCode::InvalidRecord),
        "{keyless}"
    );

    // The cleaner runs on its own; wait until it shrank the sealed data.
    let dir = broker.data_dir.join(format!("{TOPIC}-0"));
    common::wait_until(
        Duration::from_secs(120),
        || log_bytes(&dir) <= (written / 2) as u64,
        || {
            format!(
                "not cleaned: {} bytes of logs for {written} written\n{}",
                log_bytes(&dir),
                broker.logs()
            )
        },
    );
    let after = log_bytes(&dir);
    eprintln!("{written} bytes written, {after} bytes after cleaning");

    let check = |records: &[sediment_client::ConsumerRecord]| {
        let mut latest: BTreeMap<usize, (i64, Vec<u8>)> = BTreeMap::new();
        let mut previous = -1;
        for record in records {
            assert!(record.offset > previous, "offsets increase");
            previous = record.offset;
            let (key, round) = produced[&record.offset];
            let expected_key = format!("key-{key:04}");
            assert_eq!(record.key.as_deref(), Some(expected_key.as_bytes()));
            assert_eq!(
                record.value.as_deref(),
                Some(&value(key, round)[..]),
                "offset {} keeps its record",
                record.offset
            );
            latest.insert(key, (record.offset, record.value.clone().unwrap().to_vec()));
        }
        assert_eq!(latest.len(), KEYS, "every key is still there");
        for (key, (_, bytes)) in &latest {
            assert_eq!(
                bytes,
                &value(*key, ROUNDS - 1),
                "key {key}: the latest value"
            );
        }
        assert!(
            records.len() < total,
            "{} of {total} records left",
            records.len()
        );
    };
    let remaining = remaining_records(&client).await;
    check(&remaining);

    // kill -9, then the directory verifies and reads the same.
    broker.kill9();
    let verify = Command::new(env!("CARGO_BIN_EXE_sediment"))
        .args(["log", "verify"])
        .arg(&broker.data_dir)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "log verify: {}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    broker.restart();
    let client = ClientBuilder::new(broker.bootstrap())
        .build()
        .await
        .unwrap();
    let again = remaining_records(&client).await;
    assert_eq!(
        again.iter().map(|r| r.offset).collect::<Vec<_>>(),
        remaining.iter().map(|r| r.offset).collect::<Vec<_>>()
    );
}

/// Every record of the partition, from the earliest offset to the end.
async fn remaining_records(
    client: &sediment_client::Client,
) -> Vec<sediment_client::ConsumerRecord> {
    let end = client
        .admin()
        .list_offsets(TOPIC, 0, sediment_client::OffsetSpec::Latest)
        .await
        .unwrap();
    let mut consumer = client
        .consumer(sediment_client::ConsumerConfig {
            fetch_max_wait: Duration::from_millis(100),
            ..sediment_client::ConsumerConfig::default()
        })
        .unwrap();
    consumer
        .assign([sediment_client::TopicPartition::new(TOPIC, 0)])
        .await
        .unwrap();
    consumer
        .seek(TOPIC, 0, sediment_client::Offset::Earliest)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut records = Vec::new();
    while records
        .last()
        .is_none_or(|r: &sediment_client::ConsumerRecord| r.offset + 1 < end)
    {
        assert!(
            Instant::now() < deadline,
            "read {} records up to {end}",
            records.len()
        );
        records.extend(consumer.poll().await.unwrap());
    }
    records
}
