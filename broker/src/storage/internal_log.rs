//! What the broker's own compacted state topics share (`__consumer_offsets`,
//! `__transaction_state`): records whose keys and values are small JSON
//! documents in uncompressed batches, a compacted log configuration, a
//! durable write, and a replay of every record in order.
//!
//! Invariants: every record has a key, and a later record of a key replaces
//! an earlier one (a null value deletes it), so replaying a cleaned log gives
//! the same state as replaying its whole history. Writes are fdatasync'ed
//! whatever the broker's flush policy: what such a store acknowledges
//! survives any crash.

use std::sync::Arc;

use bytes::Bytes;
use sediment_protocol::records::{decode_batch, split_batches};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::basics::now_ms;
use crate::config::{CleanupPolicy, FlushPolicy, LogConfig};
use crate::error::StorageError;
use crate::storage::encode::{encode_plain_batch, PlainRecord};
use crate::storage::PartitionLog;

/// The largest batch these stores write is uncompressed; this bounds what a
/// damaged one could make the replay inflate.
const MAX_INFLATED_BATCH: usize = 256 << 20;

/// The log configuration of an internal partition: compacted, no time or
/// size retention, always flushed, segments of at most `segment_bytes`.
pub fn internal_log_config(base: &LogConfig, segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes: base.segment_bytes.min(segment_bytes),
        cleanup_policy: CleanupPolicy::COMPACT,
        segment_ms: None,
        retention_ms: None,
        retention_bytes: None,
        flush: FlushPolicy::Always,
        ..base.clone()
    }
}

/// Encodes `(key, value)` pairs as one uncompressed batch of JSON records
/// (`None` is a tombstone); `topic` names the store in errors.
pub fn encode_json_records<K: Serialize, V: Serialize>(
    topic: &str,
    records: &[(K, Option<V>)],
) -> Result<Vec<u8>, StorageError> {
    let failed = |reason: String| StorageError::io("encode", topic, std::io::Error::other(reason));
    let now = now_ms();
    let plain = records
        .iter()
        .map(|(key, value)| {
            Ok(PlainRecord {
                key: Some(Bytes::from(serde_json::to_vec(key)?)),
                value: value
                    .as_ref()
                    .map(serde_json::to_vec)
                    .transpose()?
                    .map(Bytes::from),
                timestamp: now,
            })
        })
        .collect::<Result<Vec<_>, serde_json::Error>>()
        .map_err(|e| failed(e.to_string()))?;
    encode_plain_batch(plain).map_err(failed)
}

/// Waits, off the runtime's threads, until `log` is durable up to `offset`.
pub async fn make_durable(log: &Arc<PartitionLog>, offset: i64) -> Result<(), StorageError> {
    let log = Arc::clone(log);
    let name = log.name().to_string();
    tokio::task::spawn_blocking(move || log.make_durable(offset))
        .await
        .map_err(|e| StorageError::io("fdatasync", name, std::io::Error::other(e.to_string())))?
}

/// Hands every record of `log`, in order, to `apply`: control batches are
/// skipped, and a record whose key or value is not the JSON `K`/`V` is
/// logged and skipped (`what` names the store in the log line).
pub fn replay_json<K: DeserializeOwned, V: DeserializeOwned>(
    log: &PartitionLog,
    what: &str,
    mut apply: impl FnMut(K, Option<V>),
) -> Result<(), StorageError> {
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let read = log.read(offset, 1 << 20)?;
        if read.bytes.is_empty() {
            break;
        }
        let bytes = read.bytes.clone();
        let sets = split_batches(&bytes)
            .map(|batch| decode_batch(batch, MAX_INFLATED_BATCH))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                StorageError::io(
                    "replay",
                    log.dir(),
                    std::io::Error::other(format!("undecodable batch at offset {offset}: {e}")),
                )
            })?;
        for set in sets.into_iter().filter(|set| !set.control) {
            for record in set.records {
                let Some(key) = record
                    .key
                    .as_ref()
                    .and_then(|k| serde_json::from_slice::<K>(k).ok())
                else {
                    tracing::warn!(partition = %log.name(), offset = record.offset, "skipping an unreadable {what} record");
                    continue;
                };
                let value = match &record.value {
                    None => None,
                    Some(bytes) => match serde_json::from_slice::<V>(bytes) {
                        Ok(value) => Some(value),
                        Err(_) => {
                            tracing::warn!(partition = %log.name(), offset = record.offset, "skipping an unreadable {what} value");
                            continue;
                        }
                    },
                };
                apply(key, value);
            }
        }
        offset = read.next_offset;
    }
    Ok(())
}
