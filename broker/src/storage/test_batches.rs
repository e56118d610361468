//! Valid RecordBatch v2 bytes for tests and benchmarks, encoded by the
//! `kafka-protocol` crate (an independent encoder, so our parser is checked
//! against someone else's writer).

use bytes::Bytes;

use crate::storage::encode::{encode_plain_batch, PlainRecord};

/// A batch of `count` records, each with a key, a `value_len`-byte value whose
/// bytes derive from `seed` and the record index, and timestamps
/// `base_timestamp + i`.
pub fn batch_with_seed(count: usize, value_len: usize, base_timestamp: i64, seed: u64) -> Vec<u8> {
    let records = (0..count)
        .map(|i| {
            let value: Vec<u8> = (0..value_len)
                .map(|j| (seed.wrapping_mul(31).wrapping_add((i * 7 + j) as u64) % 251) as u8)
                .collect();
            PlainRecord {
                key: Some(Bytes::from(format!("key-{seed}-{i}"))),
                value: Some(Bytes::from(value)),
                timestamp: base_timestamp + i as i64,
            }
        })
        .collect();
    // Encoding uncompressed records cannot fail; this is test support code.
    encode_plain_batch(records).unwrap_or_else(|e| panic!("encoding test records failed: {e}"))
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

/// [`batch_with_seed`] as an idempotent producer sends it: `producer_id`,
/// `epoch` and `base_sequence` set in the header, CRC-32C recomputed.
pub fn idempotent_batch(
    count: usize,
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    seed: u64,
) -> Vec<u8> {
    let mut batch = batch_with_seed(count, 16, 1_000, seed);
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// [`idempotent_batch`] as a transactional producer sends it inside a
/// transaction: the `attributes` transactional bit (0x10) set too, CRC-32C
/// recomputed. Only the coordinator's marker ends the transaction.
pub fn transactional_batch(
    count: usize,
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    seed: u64,
) -> Vec<u8> {
    let mut batch = idempotent_batch(count, producer_id, epoch, base_sequence, seed);
    let attributes =
        i16::from_be_bytes([batch[21], batch[22]]) | crate::storage::batch::TRANSACTIONAL_FLAG;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}
