//! sediment-broker: the storage engine, Kafka protocol server and group
//! coordinator behind the `sediment` binary.
//!
//! Crate map:
//! - [`basics`]: what every layer shares (topic-partition names, the clock, lock helpers).
//! - [`config`]: log settings (segment size, retention, flush policy) with units and defaults.
//! - [`error`]: the storage layer's errors (no Kafka codes: `protocol::errors` maps them).
//! - [`storage`]: segmented, memory-mapped partition logs with group commit and crash recovery.
//! - [`topics`]: topic metadata and per-topic config overrides, persisted.
//! - [`group`]: consumer groups and their durable committed offsets.
//! - [`broker`]: the shared state handlers use (config, logs, topics).
//! - [`protocol`]: sans-IO framing, the advertised versions, codec glue over `sediment-protocol`,
//!   and the one mapping of domain errors to Kafka codes.
//! - [`handlers`]: one module per API family.
//! - [`lifecycle`]: start (open, bind, background work) and clean stop of a broker.
//! - [`server`]: the TCP listener and per-connection request pipeline.
//! - [`telemetry`]: the atomics hot paths count for the metrics (traffic per
//!   partition, latency per API, fsync latency, open connections).
//! - [`http`]: the read-only HTTP port: GET /metrics, built at scrape time.
//!
//! Request path: `server::listener` accepts → `server::connection` splits
//! frames (`protocol::frame`, size capped before allocation) → decodes the
//! header (`protocol::codec`) → `handlers::dispatch` runs the handler on its
//! own task → responses are written back in request order.
//!
//! Durability contract: under the default flush policy (`always`) an append
//! is acknowledged, and becomes readable, only once an `fdatasync` covering it
//! has completed; one sync covers every batch appended while the previous one
//! ran. Recovery after a crash never drops an acknowledged batch and never
//! reuses an offset.

pub mod basics;
pub mod broker;
pub mod config;
pub mod error;
pub mod group;
pub mod handlers;
pub mod http;
pub mod lifecycle;
pub mod producer_ids;
pub mod protocol;
pub mod security;
pub mod security_config;
pub mod server;
pub mod session;
pub mod storage;
pub mod telemetry;
pub mod topic_config;
pub mod topics;
pub mod txn;

pub use broker::Broker;
pub use config::{
    BrokerConfig, FlushPolicy, GroupConfig, HttpListen, LogConfig, TimestampType, DEFAULT_HTTP,
};
pub use error::StorageError;
pub use lifecycle::{LifecycleError, RunningBroker};
