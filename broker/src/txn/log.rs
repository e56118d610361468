//! The transaction coordinator's persisted state: one record per
//! transactional id in the compacted internal topic `__transaction_state`
//! (key `{"txn": id}`, value the whole [`TxnMetadata`] as JSON), as Kafka
//! keeps it. Each id lives in one partition (a hash of it), so its records
//! are ordered; replaying the log gives each id's latest metadata.
//!
//! Writes are durable before they return (`storage::internal_log`): a
//! decision (Prepare*) is on disk before any marker is written, so a crash
//! at any instant leaves the coordinator able to finish it on restart. The
//! one exception is the Complete* record ([`TxnLog::write_unsynced`]): losing
//! it leaves the decision, which the coordinator finishes again (markers are
//! idempotent), and the next durable write of the partition covers it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::basics::TopicPartition;
use crate::config::LogConfig;
use crate::error::StorageError;
use crate::storage::internal_log::{
    encode_json_records, internal_log_config, make_durable, replay_json,
};
use crate::storage::log_manager::LogManager;
use crate::storage::PartitionLog;
use crate::txn::state::TxnMetadata;

/// Name of the internal topic.
pub const TXN_TOPIC: &str = "__transaction_state";
/// Partitions of the internal topic; transactional ids hash onto them.
pub const TXN_PARTITIONS: i32 = 4;
/// Largest segment of an internal partition.
const SEGMENT_BYTES: u64 = 16 << 20;

/// Record key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Key {
    txn: String,
}

/// The persisted transaction states.
pub struct TxnLog {
    partitions: Vec<Arc<PartitionLog>>,
}

impl TxnLog {
    /// The log configuration of the internal partitions.
    pub fn log_config(base: &LogConfig) -> LogConfig {
        internal_log_config(base, SEGMENT_BYTES)
    }

    /// Opens (creating if needed) the internal partitions and replays them:
    /// every transactional id's latest metadata.
    pub fn open(
        logs: &LogManager,
        base: &LogConfig,
    ) -> Result<(Self, BTreeMap<String, TxnMetadata>), StorageError> {
        let config = Self::log_config(base);
        let mut partitions = Vec::with_capacity(TXN_PARTITIONS as usize);
        for partition in 0..TXN_PARTITIONS {
            let tp = TopicPartition::new(TXN_TOPIC, partition);
            partitions.push(logs.get_or_create(&tp, config.clone())?);
        }
        let mut states = BTreeMap::new();
        for log in &partitions {
            replay_json(log, "transaction-state", |key: Key, value| match value {
                Some(value) => {
                    states.insert(key.txn, value);
                }
                None => {
                    states.remove(&key.txn);
                }
            })?;
        }
        Ok((Self { partitions }, states))
    }

    /// Records `meta` as the latest state of `transactional_id`; durable
    /// when it returns.
    pub async fn write(
        &self,
        transactional_id: &str,
        meta: &TxnMetadata,
    ) -> Result<(), StorageError> {
        let (log, next_offset) = self.append(transactional_id, meta)?;
        make_durable(log, next_offset).await
    }

    /// Records `meta` without waiting for an fdatasync: only for a state a
    /// crash may lose because the durable state before it leads to it again.
    pub fn write_unsynced(
        &self,
        transactional_id: &str,
        meta: &TxnMetadata,
    ) -> Result<(), StorageError> {
        self.append(transactional_id, meta).map(|_| ())
    }

    /// Appends `meta` to `transactional_id`'s partition: that log and the
    /// offset to make durable.
    fn append(
        &self,
        transactional_id: &str,
        meta: &TxnMetadata,
    ) -> Result<(&Arc<PartitionLog>, i64), StorageError> {
        let index = crc32fast::hash(transactional_id.as_bytes()) as usize % self.partitions.len();
        let log = &self.partitions[index];
        let key = Key {
            txn: transactional_id.to_string(),
        };
        let batch = encode_json_records(TXN_TOPIC, &[(key, Some(meta))])?;
        Ok((log, log.append(&batch)?.next_offset))
    }
}
