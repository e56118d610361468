//! Valid RecordBatch v2 bytes for tests and benchmarks, encoded by the
//! `kafka-protocol` crate (an independent encoder, so our parser is checked
//! against someone else's writer).

use bytes::Bytes;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// A batch of `count` records, each with a key, a `value_len`-byte value whose
/// bytes derive from `seed` and the record index, and timestamps
/// `base_timestamp + i`.
pub fn batch_with_seed(count: usize, value_len: usize, base_timestamp: i64, seed: u64) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let value: Vec<u8> = (0..value_len)
                .map(|j| (seed.wrapping_mul(31).wrapping_add((i * 7 + j) as u64) % 251) as u8)
                .collect();
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder starts a new batch when offset - sequence changes.
                sequence: i as i32,
                timestamp: base_timestamp + i as i64,
                key: Some(Bytes::from(format!("key-{seed}-{i}"))),
                value: Some(Bytes::from(value)),
                headers: IndexMap::new(),
            }
        })
        .collect();
    encode(&records)
}

/// A batch of `count` records of `value_len` bytes with timestamps `base_timestamp + i`.
pub fn batch_with_records(count: usize, value_len: usize, base_timestamp: i64) -> Vec<u8> {
    batch_with_seed(count, value_len, base_timestamp, 0)
}

/// A batch of `count` records whose encoded size is close to `total_bytes`.
pub fn batch_of_size(count: usize, total_bytes: usize, base_timestamp: i64, seed: u64) -> Vec<u8> {
    // About 61 bytes of batch header and ~20 bytes of per-record framing and key.
    let per_record = total_bytes.saturating_sub(61) / count.max(1);
    batch_with_seed(
        count.max(1),
        per_record.saturating_sub(20),
        base_timestamp,
        seed,
    )
}

fn encode(records: &[Record]) -> Vec<u8> {
    let mut buf = Vec::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    // Encoding uncompressed records into a Vec cannot fail.
    if let Err(e) = RecordBatchEncoder::encode(&mut buf, records.iter(), &options) {
        panic!("encoding test records failed: {e}");
    }
    buf
}
