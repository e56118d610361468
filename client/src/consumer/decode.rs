//! Turns the `records` bytes of one fetched partition into
//! [`ConsumerRecord`]s. Pure.
//!
//! The bytes are a sequence of record batches (v2), possibly ending in a
//! partial batch cut off by the fetch size limits: each batch is framed here
//! from its length field and only complete batches reach the decoder
//! (`kafka-protocol`'s, which checks the CRC and decompresses). Offsets are
//! always batch base offset + offset delta. A compressed batch is returned
//! whole even when the fetch offset is inside it, so records below the
//! position are skipped; control records (transaction markers) are never
//! returned, but the position still moves past them.

use bytes::{Buf, Bytes};
use kafka_protocol::records::RecordBatchDecoder;

use crate::consumer::ConsumerRecord;
use crate::error::{ClientError, Result};

/// Bytes before the records in a v2 batch header.
const BATCH_HEADER: usize = 61;
/// Where `magic` sits in a batch.
const MAGIC_AT: usize = 16;
/// Where `lastOffsetDelta` sits in a batch.
const LAST_OFFSET_DELTA_AT: usize = 23;

/// What one partition's fetched bytes held.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// Records at or above the position, in offset order.
    pub records: Vec<ConsumerRecord>,
    /// The position after the last complete batch, if any batch was complete.
    pub next_position: Option<i64>,
    /// The batch decoding stopped at: records before it are in `records`,
    /// and `next_position` points at it, so the next fetch meets it again.
    pub error: Option<ClientError>,
}

/// Decodes the complete batches in `data` for `topic`/`partition`,
/// returning records at or above `position`, up to the first batch that
/// does not decode.
pub(crate) fn decode_partition(topic: &str, partition: i32, position: i64, data: Bytes) -> Decoded {
    let mut decoded = Decoded::default();
    if let Err(e) = decode_into(topic, partition, position, data, &mut decoded) {
        decoded.error = Some(e);
    }
    decoded
}

fn decode_into(
    topic: &str,
    partition: i32,
    position: i64,
    mut data: Bytes,
    decoded: &mut Decoded,
) -> Result<()> {
    let corrupt = |offset: i64, reason: String| ClientError::CorruptRecords {
        topic: topic.to_string(),
        partition,
        offset,
        reason,
    };
    while data.len() >= 12 {
        let base_offset = i64::from_be_bytes(fixed(&data[0..8]));
        let length = i32::from_be_bytes(fixed(&data[8..12]));
        let length = usize::try_from(length)
            .map_err(|_| corrupt(base_offset, format!("negative batch length {length}")))?;
        let total = 12 + length;
        if data.len() < total {
            break; // the partial batch at the end of a size-limited fetch
        }
        let mut batch = data.split_to(total);
        if total <= MAGIC_AT {
            return Err(corrupt(
                base_offset,
                format!("batch of {total} bytes is too short"),
            ));
        }
        let magic = batch[MAGIC_AT];
        if magic != 2 {
            return Err(corrupt(
                base_offset,
                format!("message format v{magic} is not supported (only record batches v2)"),
            ));
        }
        if total < BATCH_HEADER {
            return Err(corrupt(
                base_offset,
                format!("batch of {total} bytes is too short"),
            ));
        }
        let last_offset_delta = i32::from_be_bytes(fixed(
            &batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4],
        ));
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| corrupt(base_offset, e.to_string()))?;
        debug_assert!(!batch.has_remaining());
        for record in set.records {
            if record.control || record.offset < position {
                continue;
            }
            decoded.records.push(ConsumerRecord {
                topic: topic.to_string(),
                partition,
                offset: record.offset,
                timestamp: record.timestamp,
                key: record.key,
                value: record.value,
                headers: record
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
        let after = base_offset.saturating_add(i64::from(last_offset_delta)) + 1;
        decoded.next_position = Some(decoded.next_position.unwrap_or(position).max(after));
    }
    Ok(())
}

/// Copies a slice whose length the caller has checked into an array.
fn fixed<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn batch(base: i64, values: &[&'static str], compression: Compression) -> Bytes {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: 1000 + i as i64,
                key: None,
                value: Some(Bytes::from_static(v.as_bytes())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap_or_default();
        // The broker assigns the base offset.
        buf[..8].copy_from_slice(&base.to_be_bytes());
        buf.freeze()
    }

    #[test]
    fn given_batches_then_offsets_are_base_plus_delta_and_below_position_skipped() {
        let mut data = BytesMut::new();
        data.extend_from_slice(&batch(10, &["a", "b", "c"], Compression::Gzip));
        data.extend_from_slice(&batch(13, &["d"], Compression::Zstd));
        let decoded = decode_partition("t", 0, 11, data.freeze());
        let got: Vec<(i64, Option<Bytes>)> = decoded
            .records
            .iter()
            .map(|r| (r.offset, r.value.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (11, Some(Bytes::from_static(b"b"))),
                (12, Some(Bytes::from_static(b"c"))),
                (13, Some(Bytes::from_static(b"d"))),
            ]
        );
        assert_eq!(decoded.next_position, Some(14));
        assert_eq!(decoded.records[0].timestamp, 1001);
    }

    #[test]
    fn given_partial_trailing_batch_then_it_is_left_for_the_next_fetch() {
        let whole = batch(0, &["a"], Compression::None);
        let second = batch(1, &["bbbbbbbb"], Compression::Snappy);
        let mut data = BytesMut::new();
        data.extend_from_slice(&whole);
        data.extend_from_slice(&second[..second.len() - 3]);
        let decoded = decode_partition("t", 0, 0, data.freeze());
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.next_position, Some(1));
    }

    #[test]
    fn given_flipped_bit_then_corrupt_records_error() {
        let mut data = BytesMut::from(&batch(1, &["hello"], Compression::Lz4)[..]);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        let mut both = BytesMut::from(&batch(0, &["fine"], Compression::None)[..]);
        both.extend_from_slice(&data);
        let decoded = decode_partition("t", 3, 0, both.freeze());
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.next_position, Some(1));
        assert!(matches!(
            decoded.error,
            Some(ClientError::CorruptRecords { partition: 3, .. })
        ));
    }
}
