//! Encoding records the broker writes itself (committed offsets, test and
//! benchmark data) as one uncompressed RecordBatch v2, through the codec
//! crate's batch encoder.

use bytes::Bytes;
use sediment_protocol::records::{encode_batch, BatchOptions, Record};

/// A transaction marker to write: Kafka's control batch ending producer
/// `producer_id`'s transaction in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// Its epoch (the coordinator's, bumped when it fenced the producer).
    pub producer_epoch: i16,
    /// Commit (`true`) or abort.
    pub commit: bool,
    /// The transaction coordinator's epoch.
    pub coordinator_epoch: i32,
}

/// Encodes `marker` as a control batch of one record: key `version 0, type`
/// (0 abort, 1 commit), value `version 0, coordinator epoch`, as Kafka writes it.
pub fn encode_marker(marker: TxnMarker, timestamp: i64) -> Result<Vec<u8>, String> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&i16::from(marker.commit).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let record = Record {
        offset: 0,
        timestamp,
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(value)),
        headers: Vec::new(),
    };
    let options = BatchOptions {
        producer_id: marker.producer_id,
        producer_epoch: marker.producer_epoch,
        transactional: true,
        control: true,
        ..BatchOptions::default()
    };
    encode_batch(&[record], &options)
        .map(|batch| batch.to_vec())
        .map_err(|e| e.to_string())
}

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
