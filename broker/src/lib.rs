//! sediment-broker: the storage engine, Kafka protocol server and group
//! coordinator behind the `sediment` binary.
//!
//! Crate map:
//! - [`config`]: log settings (segment size, retention, flush policy) with units and defaults.
//! - [`error`]: one error enum per layer, and the one place that maps errors to Kafka codes.
//! - [`storage`]: segmented, memory-mapped partition logs with group commit and crash recovery.
//!
//! Durability contract: under the default flush policy (`always`) an append
//! is acknowledged, and becomes readable, only once an `fdatasync` covering it
//! has completed; one sync covers every batch appended while the previous one
//! ran. Recovery after a crash never drops an acknowledged batch and never
//! reuses an offset.

pub mod config;
pub mod error;
pub mod storage;

pub use config::{FlushPolicy, LogConfig};
pub use error::StorageError;
