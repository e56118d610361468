//! sediment-client: an async Kafka client — producer, consumer, consumer
//! groups and admin — for Sediment and any Kafka-protocol broker (Kafka,
//! Redpanda, …), on Tokio.
//!
//! One [`ClientBuilder`] sets what every role shares (bootstrap servers,
//! client id, timeouts, reconnect back-off) and connects; the [`Client`] it
//! builds holds the one metadata cache and connection pool of the process
//! and hands out producers, consumers, group consumers and the admin, each
//! configured only with what is its own.
//!
//! # Quick start
//!
//! ```no_run
//! use sediment_client::{
//!     ClientBuilder, ConsumerConfig, NewTopic, Offset, ProducerConfig, ProducerRecord,
//!     TopicPartition,
//! };
//!
//! # async fn demo() -> sediment_client::Result<()> {
//! let client = ClientBuilder::new("127.0.0.1:9092")
//!     .client_id("orders-service")
//!     .build()
//!     .await?;
//! client.admin().create_topic(NewTopic::new("orders", 3)).await?;
//!
//! // Produce: `send` waits for the acknowledgement; `enqueue` returns a
//! // future for it, so many records can be in flight at once.
//! let producer = client.producer(ProducerConfig::default())?;
//! let stored = producer
//!     .send(ProducerRecord::keyed("orders", "customer-7", "{\"total\": 42}"))
//!     .await?;
//! println!("stored at {}-{} offset {}", stored.topic, stored.partition, stored.offset);
//! producer.flush().await?;
//!
//! // Consume the partition from its start.
//! let mut consumer = client.consumer(ConsumerConfig::default())?;
//! consumer.assign([TopicPartition::new("orders", stored.partition)]).await?;
//! consumer.seek("orders", stored.partition, Offset::Earliest).await?;
//! for record in consumer.poll().await? {
//!     println!("{} {:?}", record.offset, record.value);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Consumer groups ([`Client::group_consumer`]) are shown in [`group`].
//!
//! # Security
//!
//! [`ClientBuilder::security`] takes a [`SecurityConfig`]: TLS (rustls with
//! the ring provider; the broker's certificate is verified against a PEM CA
//! file or the system trust store, never skipped; a client certificate for
//! mutual TLS, [`SecurityConfig::client_certificate`]), SASL (PLAIN,
//! SCRAM-SHA-256, SCRAM-SHA-512) or both, as Kafka's `security.protocol`
//! names them. Every connection, reconnects included, completes the TLS
//! handshake and the SASL exchange before its first other request. Refused
//! credentials are [`ClientError::Authentication`], an untrusted
//! certificate (the broker's, or ours refused by the broker)
//! [`ClientError::Tls`]; neither is retried.
//!
//! # Map of the crate
//!
//! - `client` — [`ClientBuilder`] and [`Client`]: settings, connecting, and
//!   handing out the roles below over one shared `cluster`.
//! - `config` — the settings the builder collects and checks.
//! - `error` — [`ClientError`], the one error type, with Kafka error codes
//!   and the broker's messages.
//! - `versions` — the API versions this client speaks and the choice per
//!   connection (highest common version).
//! - `security` — [`SecurityConfig`]: TLS (rustls, verified against a CA
//!   file or the system store, with an optional [`ClientCertificate`]) and
//!   SASL credentials ([`Password`] never prints).
//! - `connection` — one TCP (or TLS) connection: ApiVersions negotiation,
//!   SASL authentication, pipelined requests matched by correlation id,
//!   per-request timeout.
//! - `sasl` — the SASL exchange of a new connection (SaslHandshake, then
//!   SaslAuthenticate rounds of PLAIN or SCRAM).
//! - `metadata`, `cluster` — the metadata cache and the connection pool
//!   (one shared connection per broker, plus each consumer's own fetch
//!   connections) with reconnect back-off; refreshed when leaders move.
//! - `offsets` — ListOffsets lookups grouped by leader.
//! - [`admin`] — [`Admin`]: create, delete, list, describe topics; offset
//!   lookups. [`group_admin`]: list, describe, reset and delete groups.
//!   [`acl_admin`]: ACL bindings and users' SCRAM credentials.
//! - [`producer`] — [`Producer`]: partitioning (Kafka's murmur2, sticky),
//!   batching with compression, pipelined sends, retries; idempotence
//!   (producer ids and sequence numbers) and transactions.
//! - [`consumer`] — [`Consumer`]: manual assignment, fetch, decode,
//!   read_committed filtering of aborted transactions.
//! - `find_coordinator` — which broker coordinates a group or a
//!   transactional id.
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
//! OffsetFetch 1–7, DescribeGroups 0–5, ListGroups 0–4, DeleteGroups 0–2,
//! InitProducerId 0–4, AddPartitionsToTxn 0–3, AddOffsetsToTxn 0–3, EndTxn
//! 0–3, TxnOffsetCommit 0–3, SaslHandshake 1, SaslAuthenticate 0–2,
//! DescribeAcls, CreateAcls and DeleteAcls 1–3, DescribeUserScramCredentials
//! and AlterUserScramCredentials 0 (see `versions` for why each stops where
//! it does). Records are written
//! and read as record batches v2 with none, gzip, snappy, lz4 or zstd
//! compression.
//!
//! # Delivery guarantees
//!
//! A record whose future resolved `Ok` is stored (with `Acks::All` on
//! Sediment: fsynced). The producer is idempotent by default: retries store
//! each record once and in order per partition (see [`producer`]); with
//! `idempotence: false` (needed for `Acks::Leader` and `Acks::None`) it is
//! at least once, and a retry after a lost connection may store a record
//! twice. With a `transactional_id` the producer writes records (and a
//! group's consumed offsets) in Kafka transactions: all of them become
//! visible to [`IsolationLevel::ReadCommitted`] consumers at the commit, or
//! none. [`ClientError::is_fatal`] tells an error that ends the producer
//! (it was fenced) from one after which the transaction is aborted and
//! tried again.

pub mod acl_admin;
pub mod admin;
mod client;
mod cluster;
pub mod cluster_admin;
mod config;
mod connection;
pub mod consumer;
mod error;
mod find_coordinator;
pub mod group;
pub mod group_admin;
mod metadata;
mod offsets;
pub mod producer;
mod sasl;
mod security;
mod versions;

pub use acl_admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternType, ResourceType,
    ScramCredentialInfo, ScramDeletion, ScramUpsertion, UserScramCredentials,
};
pub use admin::{
    Admin, ConfigChange, NewTopic, PartitionDescription, TopicDescription, TopicId, TopicSummary,
};
pub use client::{Client, ClientBuilder};
pub use cluster_admin::{BrokerDescription, ClusterDescription};
pub use consumer::{
    AutoOffsetReset, Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel, Offset,
};
pub use error::{ClientError, Result};
pub use group::{
    AssignorKind, ConsumerGroupMetadata, GroupConsumer, GroupConsumerConfig, RebalanceListener,
};
pub use group_admin::{GroupDescription, GroupListing, GroupMember, GroupPartitionOffset};
pub use offsets::OffsetSpec;
pub use producer::partitioner::{murmur2, partition_for_key};
pub use producer::{
    Acks, CompressionCodec, DeliveryFuture, Producer, ProducerConfig, ProducerRecord,
    RecordMetadata,
};
pub use security::{
    ClientCertificate, Password, SaslConfig, SaslMechanism, SecurityConfig, SecurityProtocol,
};
/// A SCRAM mechanism, as [`ScramUpsertion`] and [`ScramCredentialInfo`] name it.
pub use sediment_protocol::sasl::ScramMechanism;
/// A Kafka error code, as [`ClientError::kafka_error`] reports it.
pub use sediment_protocol::ErrorCode;
/// The name of one partition of one topic (shared with the broker).
pub use sediment_protocol::TopicPartition;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn clients_and_their_futures_can_move_between_tasks() {
        assert_send_sync::<Client>();
        assert_send_sync::<ClientBuilder>();
        assert_send_sync::<Producer>();
        assert_send_sync::<Admin>();
        assert_send_sync::<Consumer>();
        assert_send_sync::<DeliveryFuture>();
        assert_send_sync::<ClientError>();
        let _ = |b: ClientBuilder| async move {
            assert_send(&b.build());
        };
        let _ = |p: Producer, mut c: Consumer, a: Admin| async move {
            assert_send(&p.send(ProducerRecord::new("t", "v")));
            assert_send(&p.flush());
            assert_send(&p.init_transactions());
            assert_send(&p.send_offsets_to_transaction(&[], "g"));
            assert_send(&p.commit_transaction());
            assert_send(&p.abort_transaction());
            assert_send(&c.poll());
            assert_send(&a.list_topics());
        };
    }
}
