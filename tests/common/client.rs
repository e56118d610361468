//! Helpers for tests that drive `sediment-client` (against Sediment or the mock cluster).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use sediment_client::{
    Client, ClientBuilder, ConsumerConfig, ConsumerRecord, Offset, TopicPartition,
};

use super::BrokerProcess;

/// A client of `broker` with default settings.
pub async fn connect(broker: &BrokerProcess) -> Client {
    ClientBuilder::new(broker.bootstrap())
        .build()
        .await
        .expect("client")
}

/// Reads `topic`/`partition` from the start until `count` records arrived
/// (within 30 s; the mock cluster answers a Fetch with one batch at a time).
pub async fn read_back(
    client: &Client,
    topic: &str,
    partition: i32,
    count: usize,
) -> Vec<ConsumerRecord> {
    let mut consumer = client
        .consumer(ConsumerConfig {
            fetch_max_wait: Duration::from_millis(100),
            ..ConsumerConfig::default()
        })
        .expect("consumer");
    consumer
        .assign([TopicPartition::new(topic, partition)])
        .await
        .expect("assign");
    consumer
        .seek(topic, partition, Offset::Earliest)
        .await
        .expect("seek");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut records = Vec::new();
    while records.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} records of {topic}-{partition} came back",
            records.len()
        );
        records.extend(consumer.poll().await.expect("poll"));
    }
    records
}
