//! Turns the `records` bytes of one fetched partition into
//! [`ConsumerRecord`]s. Pure.
//!
//! The bytes are a sequence of record batches (v2), possibly ending in a
//! partial batch cut off by the fetch size limits: each batch is framed here
//! from its length field and only complete batches are decoded. Uncompressed
//! batches (the common case) are checked (CRC-32C) and walked here, handing
//! out zero-copy slices of the fetched bytes; compressed ones go through
//! the codec's batch decoder (`sediment_protocol::records::decode_batch`),
//! which checks the CRC and decompresses, refusing batches that inflate
//! beyond [`MAX_INFLATED_BATCH_BYTES`]. Offsets are
//! always batch base offset + offset delta. A compressed batch is returned
//! whole even when the fetch offset is inside it, so records below the
//! position are skipped; control records (transaction markers) are never
//! returned, but the position still moves past them. Under read_committed,
//! an [`AbortedFilter`] drops the batches of aborted transactions the same
//! way (see `aborted`).

use std::sync::Arc;

use bytes::Bytes;
use sediment_protocol::records::decode_batch;

use crate::consumer::aborted::{AbortedFilter, BatchInfo};
use crate::consumer::ConsumerRecord;
use crate::error::{ClientError, Result};

/// Bytes before the records in a v2 batch header.
const BATCH_HEADER: usize = 61;
/// Where `magic` sits in a batch.
const MAGIC_AT: usize = 16;
/// Where `lastOffsetDelta` sits in a batch.
const LAST_OFFSET_DELTA_AT: usize = 23;
/// Where the CRC-32C sits; it covers `attributes` to the end.
const CRC_AT: usize = 17;
/// Where `attributes` sits.
const ATTRIBUTES_AT: usize = 21;
/// Where `baseTimestamp` sits.
const BASE_TIMESTAMP_AT: usize = 27;
/// Where `maxTimestamp` sits.
const MAX_TIMESTAMP_AT: usize = 35;
/// Where `producerId` sits.
const PRODUCER_ID_AT: usize = 43;
/// Where `recordCount` sits.
const RECORD_COUNT_AT: usize = 57;
/// Compression codec bits of `attributes`.
const COMPRESSION_MASK: i16 = 0x07;
/// Timestamp type bit: set for log-append time.
const LOG_APPEND_TIME_FLAG: i16 = 0x08;
/// Transactional-batch bit.
const TRANSACTIONAL_FLAG: i16 = 0x10;
/// Control-batch bit (transaction markers).
const CONTROL_FLAG: i16 = 0x20;
/// Most bytes a compressed batch may inflate to: a bound against
/// decompression bombs, far above any batch a broker accepts (Kafka's
/// `message.max.bytes` defaults to 1 MiB).
pub(crate) const MAX_INFLATED_BATCH_BYTES: usize = 256 << 20;

/// What one partition's fetched bytes held (the records go straight into
/// the caller's vector).
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// The position after the last complete batch, if any batch was complete.
    pub next_position: Option<i64>,
    /// The batch decoding stopped at: records before it were pushed, and
    /// `next_position` points at it, so the next fetch meets it again.
    pub error: Option<ClientError>,
}

/// Decodes the complete batches in `data` for `topic`/`partition`, pushing
/// records at or above `position` onto `out`, up to the first batch that
/// does not decode; with a `filter` (read_committed), batches of aborted
/// transactions are passed over.
pub(crate) fn decode_partition(
    topic: &Arc<str>,
    partition: i32,
    position: i64,
    data: Bytes,
    filter: Option<&mut AbortedFilter>,
    out: &mut Vec<ConsumerRecord>,
) -> Decoded {
    let mut decoded = Decoded::default();
    if let Err(e) = decode_into(topic, partition, position, data, filter, &mut decoded, out) {
        decoded.error = Some(e);
    }
    decoded
}

fn decode_into(
    topic: &Arc<str>,
    partition: i32,
    position: i64,
    mut data: Bytes,
    mut filter: Option<&mut AbortedFilter>,
    decoded: &mut Decoded,
    out: &mut Vec<ConsumerRecord>,
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
        let batch = data.split_to(total);
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
        let attributes = i16::from_be_bytes(fixed(&batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2]));
        let last_offset = base_offset.saturating_add(i64::from(last_offset_delta));
        let keep = match filter.as_deref_mut() {
            Some(filter) => filter.keep(&batch_info(&batch, last_offset, attributes)),
            None => true,
        };
        if !keep {
            // An aborted transaction's data or a marker: nothing to return.
        } else if attributes & COMPRESSION_MASK == 0 {
            // The common case, decoded here without intermediate records.
            plain_batch(topic, partition, position, &batch, out)
                .map_err(|reason| corrupt(base_offset, reason))?;
        } else {
            // Compressed: the codec checks the CRC and decompresses.
            let set = decode_batch(batch, MAX_INFLATED_BATCH_BYTES)
                .map_err(|e| corrupt(base_offset, e.to_string()))?;
            // A control batch (transaction markers) returns nothing; the
            // position still moves past it.
            let records = if set.control { Vec::new() } else { set.records };
            for record in records {
                if record.offset < position {
                    continue;
                }
                out.push(ConsumerRecord {
                    topic: Arc::clone(topic),
                    partition,
                    offset: record.offset,
                    timestamp: record.timestamp,
                    key: record.key,
                    value: record.value,
                    headers: record.headers,
                });
            }
        }
        let after = last_offset.saturating_add(1);
        decoded.next_position = Some(decoded.next_position.unwrap_or(position).max(after));
    }
    Ok(())
}

/// The header fields the read_committed filter needs, and for a control
/// batch the type of its marker (from its first record's key: version i16,
/// type i16). `batch` is at least a whole header long.
fn batch_info(batch: &Bytes, last_offset: i64, attributes: i16) -> BatchInfo {
    let control = attributes & CONTROL_FLAG != 0;
    BatchInfo {
        last_offset,
        producer_id: i64::from_be_bytes(fixed(&batch[PRODUCER_ID_AT..PRODUCER_ID_AT + 8])),
        transactional: attributes & TRANSACTIONAL_FLAG != 0,
        control,
        marker: if control {
            control_marker(batch, attributes)
        } else {
            None
        },
    }
}

/// The control record type of a control batch, if it can be read.
fn control_marker(batch: &Bytes, attributes: i16) -> Option<i16> {
    let key = if attributes & COMPRESSION_MASK == 0 {
        let mut reader = Reader {
            bytes: batch,
            at: BATCH_HEADER,
        };
        reader.varint().ok()?; // record length
        reader.at += 1; // record attributes
        reader.varint().ok()?; // timestamp delta
        reader.varint().ok()?; // offset delta
        reader.optional_bytes().ok()??
    } else {
        decode_batch(batch.clone(), MAX_INFLATED_BATCH_BYTES)
            .ok()?
            .records
            .into_iter()
            .next()?
            .key?
    };
    key.get(2..4).map(|t| i16::from_be_bytes([t[0], t[1]]))
}

/// Decodes an uncompressed batch: checks its CRC-32C, then walks the records
/// (`length, attributes, timestampDelta, offsetDelta, key, value, headers`),
/// slicing keys, values and header values out of `batch` without copying.
/// Control batches (transaction markers) yield nothing.
fn plain_batch(
    topic: &Arc<str>,
    partition: i32,
    position: i64,
    batch: &Bytes,
    out: &mut Vec<ConsumerRecord>,
) -> std::result::Result<(), String> {
    let stored = u32::from_be_bytes(fixed(&batch[CRC_AT..CRC_AT + 4]));
    let computed = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    if stored != computed {
        return Err(format!(
            "CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let attributes = i16::from_be_bytes(fixed(&batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2]));
    if attributes & CONTROL_FLAG != 0 {
        return Ok(());
    }
    let base_offset = i64::from_be_bytes(fixed(&batch[0..8]));
    let base_timestamp =
        i64::from_be_bytes(fixed(&batch[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8]));
    let max_timestamp = i64::from_be_bytes(fixed(&batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8]));
    let log_append_time = attributes & LOG_APPEND_TIME_FLAG != 0;
    let count = i32::from_be_bytes(fixed(&batch[RECORD_COUNT_AT..RECORD_COUNT_AT + 4]));
    let mut reader = Reader {
        bytes: batch,
        at: BATCH_HEADER,
    };
    out.reserve(usize::try_from(count).unwrap_or(0).min(batch.len() / 8));
    for _ in 0..count.max(0) {
        let length = reader.varint()?;
        let end = reader
            .at
            .checked_add(usize::try_from(length).map_err(|_| "negative record length".to_string())?)
            .filter(|&end| end <= batch.len())
            .ok_or_else(|| "record runs past its batch".to_string())?;
        reader.at += 1; // record attributes
        let timestamp_delta = reader.varint()?;
        let offset_delta = reader.varint()?;
        let key = reader.optional_bytes()?;
        let value = reader.optional_bytes()?;
        let header_count = reader.varint()?;
        let mut headers = Vec::new();
        for _ in 0..header_count.max(0) {
            let name = reader
                .optional_bytes()?
                .ok_or_else(|| "null header name".to_string())?;
            let name = String::from_utf8_lossy(&name).into_owned();
            headers.push((name, reader.optional_bytes()?));
        }
        if reader.at != end {
            return Err("record length does not match its fields".to_string());
        }
        let offset = base_offset + offset_delta;
        if offset < position {
            continue;
        }
        out.push(ConsumerRecord {
            topic: Arc::clone(topic),
            partition,
            offset,
            timestamp: if log_append_time {
                max_timestamp
            } else {
                base_timestamp + timestamp_delta
            },
            key,
            value,
            headers,
        });
    }
    Ok(())
}

/// A cursor over a batch's records.
struct Reader<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    /// A zig-zag varint (up to 64 bits).
    fn varint(&mut self) -> std::result::Result<i64, String> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or_else(|| "varint runs past its batch".to_string())?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err("varint longer than 10 bytes".to_string())
    }

    /// A varint length then that many bytes (-1 = null), as a zero-copy slice.
    fn optional_bytes(&mut self) -> std::result::Result<Option<Bytes>, String> {
        let length = self.varint()?;
        if length < 0 {
            return Ok(None);
        }
        let end = self
            .at
            .checked_add(length as usize)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| "field runs past its batch".to_string())?;
        let slice = self.bytes.slice(self.at..end);
        self.at = end;
        Ok(Some(slice))
    }
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

    /// What one partition's bytes decode to, records included.
    struct Out {
        records: Vec<ConsumerRecord>,
        next_position: Option<i64>,
        error: Option<ClientError>,
    }

    fn decode_partition(topic: &str, partition: i32, position: i64, data: Bytes) -> Out {
        let mut records = Vec::new();
        let decoded = super::decode_partition(
            &Arc::from(topic),
            partition,
            position,
            data,
            None,
            &mut records,
        );
        Out {
            records,
            next_position: decoded.next_position,
            error: decoded.error,
        }
    }
    use bytes::BytesMut;
    use sediment_protocol::records::{
        encode_batch, BatchOptions, Compression, Record, TimestampType,
    };

    fn encode(records: &[Record], options: BatchOptions) -> Bytes {
        encode_batch(records, &options).unwrap_or_default()
    }

    fn batch(base: i64, values: &[&'static str], compression: Compression) -> Bytes {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                offset: base + i as i64,
                timestamp: 1000 + i as i64,
                key: None,
                value: Some(Bytes::from_static(v.as_bytes())),
                headers: Vec::new(),
            })
            .collect();
        encode(
            &records,
            BatchOptions {
                compression,
                ..BatchOptions::default()
            },
        )
    }

    /// Records with keys, null values and (duplicate) headers.
    fn rich_records(base: i64) -> Vec<Record> {
        (0..5)
            .map(|i| Record {
                offset: base + i,
                timestamp: 5000 + i * 3,
                key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
                value: (i != 3).then(|| Bytes::from(format!("value-{i}"))),
                headers: vec![
                    (format!("h{i}"), Some(Bytes::from_static(b"hv"))),
                    ("dup".to_string(), None),
                    ("dup".to_string(), Some(Bytes::from_static(b"2"))),
                ],
            })
            .collect()
    }

    type Seen = (
        i64,
        i64,
        Option<Bytes>,
        Option<Bytes>,
        Vec<(String, Option<Bytes>)>,
    );

    fn seen(records: &[ConsumerRecord]) -> Vec<Seen> {
        records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    r.timestamp,
                    r.key.clone(),
                    r.value.clone(),
                    r.headers.clone(),
                )
            })
            .collect()
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

    #[test]
    fn given_uncompressed_batch_with_keys_and_headers_then_fast_path_matches_the_codec() {
        let records = rich_records(100);
        let bytes = encode(&records, BatchOptions::default());
        let oracle = decode_batch(bytes.clone(), MAX_INFLATED_BATCH_BYTES).unwrap();
        assert_eq!(oracle.records, records);
        let out = decode_partition("t", 3, 101, bytes);
        assert!(out.error.is_none());
        assert_eq!(out.next_position, Some(105));
        let expected: Vec<Seen> = oracle.records[1..]
            .iter()
            .map(|r| {
                (
                    r.offset,
                    r.timestamp,
                    r.key.clone(),
                    r.value.clone(),
                    r.headers.clone(),
                )
            })
            .collect();
        assert_eq!(seen(&out.records), expected);
        assert_eq!(out.records[0].headers, records[1].headers);
        assert_eq!(&*out.records[0].topic, "t");
    }

    #[test]
    fn given_the_same_records_then_compressed_and_plain_batches_decode_alike() {
        for timestamp_type in [TimestampType::Create, TimestampType::LogAppend] {
            let plain = decode_partition(
                "t",
                0,
                0,
                encode(
                    &rich_records(7),
                    BatchOptions {
                        timestamp_type,
                        ..BatchOptions::default()
                    },
                ),
            );
            let zstd = decode_partition(
                "t",
                0,
                0,
                encode(
                    &rich_records(7),
                    BatchOptions {
                        timestamp_type,
                        compression: Compression::Zstd,
                        ..BatchOptions::default()
                    },
                ),
            );
            assert!(plain.error.is_none() && zstd.error.is_none());
            assert_eq!(plain.records.len(), 5);
            assert_eq!(seen(&plain.records), seen(&zstd.records));
            assert_eq!(plain.next_position, Some(12));
            assert_eq!(zstd.next_position, Some(12));
        }
    }

    #[test]
    fn given_control_batches_then_no_records_but_the_position_moves_past_them() {
        for compression in [Compression::None, Compression::Gzip] {
            let options = BatchOptions {
                compression,
                control: true,
                transactional: true,
                ..BatchOptions::default()
            };
            let out = decode_partition("t", 0, 0, encode(&rich_records(3), options));
            assert!(out.error.is_none());
            assert!(out.records.is_empty());
            assert_eq!(out.next_position, Some(8));
        }
    }

    /// A transactional data batch of `producer_id` at `base`, or its marker.
    fn txn_batch(base: i64, producer_id: i64, values: &[&str], marker: Option<bool>) -> Bytes {
        let records: Vec<Record> = match marker {
            // Control record key: version 0, type (0 abort, 1 commit).
            Some(commit) => vec![Record {
                offset: base,
                timestamp: 1,
                key: Some(Bytes::from(vec![0, 0, 0, u8::from(commit)])),
                value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
                headers: Vec::new(),
            }],
            None => values
                .iter()
                .enumerate()
                .map(|(i, v)| Record {
                    offset: base + i as i64,
                    timestamp: 1,
                    key: None,
                    value: Some(Bytes::from(v.to_string())),
                    headers: Vec::new(),
                })
                .collect(),
        };
        encode(
            &records,
            BatchOptions {
                producer_id,
                producer_epoch: 0,
                base_sequence: 0,
                transactional: true,
                control: marker.is_some(),
                // Markers compressed too, to read their type either way.
                compression: if base % 2 == 0 {
                    Compression::None
                } else {
                    Compression::Lz4
                },
                ..BatchOptions::default()
            },
        )
    }

    #[test]
    fn given_read_committed_then_aborted_transactions_and_markers_are_skipped_and_passed() {
        // Producer 1 aborts [0, 1] (marker 2); producer 2 commits [3] (marker 5);
        // producer 1 writes [4] in a transaction that commits (marker 6).
        let mut data = BytesMut::new();
        data.extend_from_slice(&txn_batch(0, 1, &["a0", "a1"], None));
        data.extend_from_slice(&txn_batch(2, 1, &[], Some(false)));
        data.extend_from_slice(&txn_batch(3, 2, &["c3"], None));
        data.extend_from_slice(&txn_batch(4, 1, &["c4"], None));
        data.extend_from_slice(&txn_batch(5, 2, &[], Some(true)));
        data.extend_from_slice(&txn_batch(6, 1, &[], Some(true)));
        let data = data.freeze();
        let values = |records: &[ConsumerRecord]| -> Vec<(i64, Bytes)> {
            records
                .iter()
                .map(|r| (r.offset, r.value.clone().unwrap_or_default()))
                .collect()
        };

        let mut records = Vec::new();
        let mut filter = AbortedFilter::new([(1, 0)]);
        let decoded = super::decode_partition(
            &Arc::from("t"),
            0,
            0,
            data.clone(),
            Some(&mut filter),
            &mut records,
        );
        assert!(decoded.error.is_none());
        assert_eq!(
            values(&records),
            vec![(3, Bytes::from("c3")), (4, Bytes::from("c4"))]
        );
        assert_eq!(decoded.next_position, Some(7), "past every marker");

        // read_uncommitted: the aborted records too, never the markers.
        let plain = decode_partition("t", 0, 0, data);
        assert_eq!(
            values(&plain.records),
            vec![
                (0, Bytes::from("a0")),
                (1, Bytes::from("a1")),
                (3, Bytes::from("c3")),
                (4, Bytes::from("c4")),
            ]
        );
        assert_eq!(plain.next_position, Some(7));
    }

    #[test]
    fn given_only_an_aborted_transaction_then_nothing_is_returned_and_the_position_moves() {
        let mut data = BytesMut::new();
        data.extend_from_slice(&txn_batch(10, 9, &["x", "y", "z"], None));
        data.extend_from_slice(&txn_batch(13, 9, &[], Some(false)));
        let mut records = Vec::new();
        let mut filter = AbortedFilter::new([(9, 10)]);
        let decoded = super::decode_partition(
            &Arc::from("t"),
            0,
            10,
            data.freeze(),
            Some(&mut filter),
            &mut records,
        );
        assert!(records.is_empty());
        assert_eq!(decoded.next_position, Some(14));
    }

    #[test]
    fn given_flipped_bit_in_uncompressed_batch_then_corrupt_records_error() {
        let mut data = BytesMut::from(&batch(0, &["a", "b"], Compression::None)[..]);
        let last = data.len() - 1;
        data[last] ^= 1;
        let out = decode_partition("t", 0, 0, data.freeze());
        assert!(out.records.is_empty());
        assert!(matches!(
            out.error,
            Some(ClientError::CorruptRecords { .. })
        ));
    }
}
