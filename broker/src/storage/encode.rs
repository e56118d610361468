//! Encoding records the broker writes itself (committed offsets, test and
//! benchmark data) as one uncompressed RecordBatch v2, through the
//! `kafka-protocol` encoder.

use bytes::Bytes;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

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
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever offset - sequence changes.
            sequence: i as i32,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = Vec::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).map_err(|e| e.to_string())?;
    Ok(buf)
}
