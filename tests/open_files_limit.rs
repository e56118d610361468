//! The real `sediment serve` opens and serves thousands of segments under a
//! lowered `RLIMIT_NOFILE` (DESIGN principle 7: descriptors grow with active
//! partitions and recently read segments, not with segments on disk).
//!
//! A broker with 1 KiB segments takes `RECORDS` single-record batches on two
//! partitions, so each batch lands in a segment of its own (thousands of
//! segments, three files each). It stops cleanly, this test process
//! lowers its own soft `RLIMIT_NOFILE` to `FD_LIMIT` (util-linux `prlimit`),
//! and the broker is started again, inheriting the limit: it must start,
//! answer, serve every record back in order, take new appends, and keep its
//! descriptors under the limit. Before the segment cache, every segment held
//! three descriptors from the start, so the restart could not open the log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::process::Command;

use common::client::read_back;
use common::BrokerProcess;
use sediment_client::{ClientBuilder, NewTopic, ProducerConfig, ProducerRecord};

const TOPIC: &str = "many-segments";
const PARTITIONS: i32 = 2;
/// Records (and so segments) in all: far more descriptors than `FD_LIMIT`
/// if each segment held its three files open.
const RECORDS: usize = 3000;
const VALUE_BYTES: usize = 600;
/// Soft `RLIMIT_NOFILE` of the restarted broker.
const FD_LIMIT: u64 = 256;

fn value(i: usize) -> Vec<u8> {
    let mut value = format!("record-{i:06}-").into_bytes();
    value.resize(VALUE_BYTES, b'a' + (i % 26) as u8);
    value
}

/// Lowers this process's soft `RLIMIT_NOFILE` (children inherit it).
fn lower_own_fd_limit(soft: u64) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={soft}:"))
        .status()
        .expect("this test needs prlimit: install util-linux");
    assert!(status.success(), "prlimit could not lower RLIMIT_NOFILE");
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let now: u64 = line["Max open files".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(now, soft, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_thousands_of_segments_when_restarted_under_a_low_fd_limit_then_every_record_is_served(
) {
    let mut broker = BrokerProcess::start(&["--segment-bytes", "1024", "--flush", "interval:1000"]);
    let client = ClientBuilder::new(broker.bootstrap())
        .build()
        .await
        .unwrap();
    client
        .admin()
        .create_topic(NewTopic::new(TOPIC, PARTITIONS))
        .await
        .unwrap();
    // One record per batch: no lingering, batches of one record's size.
    let producer = client
        .producer(ProducerConfig {
            batch_size: 1,
            ..ProducerConfig::default()
        })
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..RECORDS {
        let partition = (i % PARTITIONS as usize) as i32;
        let record = ProducerRecord::new(TOPIC, value(i)).with_partition(partition);
        futures.push(producer.enqueue(record).await.unwrap());
    }
    for future in futures {
        future.await.unwrap();
    }
    drop(producer);
    drop(client);
    let segments = std::fs::read_dir(&broker.data_dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|dir| dir.file_name().to_string_lossy().starts_with(TOPIC))
        .flat_map(|dir| std::fs::read_dir(dir.path()).unwrap())
        .filter(|file| {
            file.as_ref()
                .is_ok_and(|f| f.path().extension().is_some_and(|e| e == "log"))
        })
        .count();
    assert!(
        segments as u64 > 3 * FD_LIMIT,
        "only {segments} segments: the test needs far more files than the limit"
    );

    // A clean stop syncs everything (the flush policy is interval:1000).
    assert_eq!(broker.terminate(), Some(0), "the broker stops cleanly");
    lower_own_fd_limit(FD_LIMIT);
    broker.restart();

    let client = ClientBuilder::new(broker.bootstrap())
        .build()
        .await
        .unwrap();
    for partition in 0..PARTITIONS {
        let expected: Vec<Vec<u8>> = (0..RECORDS)
            .filter(|i| (i % PARTITIONS as usize) as i32 == partition)
            .map(value)
            .collect();
        let records = read_back(&client, TOPIC, partition, expected.len()).await;
        let values: Vec<Vec<u8>> = records
            .iter()
            .map(|r| r.value.as_deref().unwrap_or_default().to_vec())
            .collect();
        assert_eq!(values.len(), expected.len(), "partition {partition}");
        assert!(
            values == expected,
            "partition {partition}: records differ from what was produced"
        );
    }
    let producer = client.producer(ProducerConfig::default()).unwrap();
    let meta = producer
        .enqueue(ProducerRecord::new(TOPIC, value(RECORDS)).with_partition(0))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(meta.offset, (RECORDS / PARTITIONS as usize) as i64);

    let fds = std::fs::read_dir(format!("/proc/{}/fd", broker.pid()))
        .unwrap()
        .count();
    eprintln!("{segments} segments served with {fds} descriptors open (limit {FD_LIMIT})");
    assert!((fds as u64) < FD_LIMIT, "{fds} descriptors");
    assert!(broker.is_running(), "{}", broker.logs());
}
