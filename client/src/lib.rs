//! sediment-client: an async Kafka client — producer, consumer and admin —
//! for Sediment and any Kafka-protocol broker (Kafka, Redpanda, …).
//!
//! # Quick start
//!
//! ```no_run
//! use sediment_client::{
//!     Admin, ClientConfig, Consumer, ConsumerConfig, NewTopic, Offset, Producer,
//!     ProducerConfig, ProducerRecord,
//! };
//!
//! # async fn demo() -> sediment_client::Result<()> {
//! let bootstrap = "127.0.0.1:9092";
//! Admin::connect(ClientConfig::new(bootstrap))
//!     .await?
//!     .create_topic(NewTopic::new("orders", 3))
//!     .await?;
//!
//! // Produce: `send` waits for the acknowledgement; `enqueue` returns a
//! // future for it, so many records can be in flight at once.
//! let producer = Producer::new(ProducerConfig::new(bootstrap)).await?;
//! let stored = producer
//!     .send(ProducerRecord::keyed("orders", "customer-7", "{\"total\": 42}"))
//!     .await?;
//! println!("stored at {}-{} offset {}", stored.topic, stored.partition, stored.offset);
//! producer.flush().await?;
//!
//! // Consume the partition from its start.
//! let mut consumer = Consumer::new(ConsumerConfig::new(bootstrap)).await?;
//! consumer.assign(vec![("orders".to_string(), stored.partition)]).await?;
//! consumer.seek("orders", stored.partition, Offset::Earliest).await?;
//! for record in consumer.poll().await? {
//!     println!("{} {:?}", record.offset, record.value);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Map of the crate
//!
//! - `config` — [`ClientConfig`], the settings every client shares.
//! - `error` — [`ClientError`], the one error type, with Kafka error codes
//!   and the broker's messages.
//! - `versions` — the API versions this client speaks and the choice per
//!   connection (highest common version).
//! - `connection` — one TCP connection: ApiVersions negotiation, pipelined
//!   requests matched by correlation id, per-request timeout.
//! - `metadata`, `cluster` — the metadata cache and one connection per
//!   broker with reconnect back-off; refreshed when leaders move.
//! - `offsets` — ListOffsets lookups grouped by leader.
//! - [`admin`] — [`Admin`]: create, delete, list, describe topics.
//! - [`producer`] — [`Producer`]: partitioning (Kafka's murmur2, sticky),
//!   batching with compression, pipelined sends, retries.
//! - [`consumer`] — [`Consumer`]: manual assignment, fetch, decode.
//! - [`group`] — [`GroupConsumer`]: consumer groups (classic protocol,
//!   range and round-robin assignors, heartbeats, rebalance callbacks,
//!   commits; auto-commit commits only what the application has returned
//!   control for).
//!
//! # Protocol versions
//!
//! The client negotiates each API with the broker and uses the highest
//! version both support, within: Produce 3–9, Fetch 4–12 (topics by name),
//! ListOffsets 1–7, Metadata 1–12, ApiVersions 0–3, CreateTopics 2–7,
//! DeleteTopics 1–6, DescribeConfigs 1–4, FindCoordinator 0–4, JoinGroup
//! 1–5, SyncGroup 0–3, Heartbeat 0–4, LeaveGroup 0–2, OffsetCommit 2–9,
//! OffsetFetch 1–7 (see `versions` for why each stops where it does).
//! Records are written and read as
//! record batches v2 with none, gzip, snappy, lz4 or zstd compression.
//!
//! # Delivery guarantees
//!
//! At least once: a record whose future resolved `Ok` is stored (with
//! `Acks::All` on Sediment: fsynced). A retry after a lost connection may
//! store a record twice; the client is not idempotent (no InitProducerId).

pub mod admin;
mod cluster;
mod config;
mod connection;
pub mod consumer;
mod error;
pub mod group;
pub mod group_admin;
mod metadata;
mod offsets;
pub mod producer;
mod versions;

pub use admin::{Admin, NewTopic, PartitionDescription, TopicDescription, TopicSummary};
pub use config::ClientConfig;
pub use consumer::{AutoOffsetReset, Consumer, ConsumerConfig, ConsumerRecord, Offset};
pub use error::{ClientError, Result};
pub use group::{AssignorKind, GroupConsumer, GroupConsumerConfig, RebalanceListener};
pub use group_admin::{GroupDescription, GroupListing, GroupMember, GroupPartitionOffset};
pub use offsets::OffsetSpec;
pub use producer::partitioner::{murmur2, partition_for_key};
pub use producer::{
    Acks, CompressionCodec, DeliveryFuture, Producer, ProducerConfig, ProducerRecord,
    RecordMetadata,
};
/// A Kafka error code, as [`ClientError::kafka_error`] reports it.
pub use sediment_protocol::ErrorCode;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn clients_and_their_futures_can_move_between_tasks() {
        assert_send_sync::<Producer>();
        assert_send_sync::<Admin>();
        assert_send_sync::<Consumer>();
        assert_send_sync::<DeliveryFuture>();
        assert_send_sync::<ClientError>();
        let _ = |p: Producer, mut c: Consumer, a: Admin| async move {
            assert_send(&p.send(ProducerRecord::new("t", "v")));
            assert_send(&p.flush());
            assert_send(&c.poll());
            assert_send(&a.list_topics());
        };
    }
}
