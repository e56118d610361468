//! Encoding records the broker writes itself (committed offsets, test and
//! benchmark data) as one uncompressed RecordBatch v2, through the codec
//! crate's batch encoder.

use bytes::Bytes;
use sediment_protocol::records::{encode_batch, BatchOptions, Record};

/// One record to encode: offsets are assigned in order from 0.
#[derive(Debug, Clone)]
pub struct PlainRecord {
    /// Record key.
    pub key: Option<Bytes>,
    /// Record value (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Create time in ms.
    pub timestamp: i64,
}

/// Encodes `records` as one uncompressed v2 batch (no producer id, base offset 0).
pub fn encode_plain_batch(records: Vec<PlainRecord>) -> Result<Vec<u8>, String> {
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| Record {
            offset: i as i64,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: Vec::new(),
        })
        .collect();
    encode_batch(&records, &BatchOptions::default())
        .map(|batch| batch.to_vec())
        .map_err(|e| e.to_string())
}
