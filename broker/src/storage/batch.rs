//! A read-only view of a Kafka RecordBatch v2 header, and the checks every
//! stored batch must pass.
//!
//! Sediment stores batches exactly as producers sent them: records are never
//! re-encoded. The broker changes header fields only, by writing a patched
//! copy of the header's start in place of the producer's bytes
//! ([`patch_header`]):
//! - always `baseOffset` and `partitionLeaderEpoch`, both outside the CRC-32C
//!   (it covers `attributes` to the end), so the producer's checksum stays
//!   valid from its socket to the consumer's;
//! - on a LogAppendTime topic also the timestamp-type bit of `attributes` and
//!   `maxTimestamp`, which lie inside the CRC: the CRC is then recomputed over
//!   the patched header and the unchanged records.
//!
//! Layout (big-endian), from the Kafka protocol documentation:
//! ```text
//! 0  baseOffset i64        8  batchLength i32    12 partitionLeaderEpoch i32
//! 16 magic i8              17 crc u32            21 attributes i16
//! 23 lastOffsetDelta i32   27 baseTimestamp i64  35 maxTimestamp i64
//! 43 producerId i64        51 producerEpoch i16  53 baseSequence i32
//! 57 recordCount i32       61 records...
//! ```

use std::fmt;

/// Bytes before the first record of a v2 batch.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before `batchLength` counts: `baseOffset` and `batchLength` itself.
pub const LOG_OVERHEAD: usize = 12;
/// Where the CRC-covered region starts (`attributes`).
const CRC_START: usize = 21;
/// The only batch format Sediment stores.
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
/// Header bytes the broker may rewrite: everything up to the end of `maxTimestamp`.
const PATCHABLE_LEN: usize = MAX_TIMESTAMP_AT + 8;
/// Header bytes the broker rewrites when it keeps the producer's CRC.
const OUTSIDE_CRC_LEN: usize = CRC_AT;
/// The timestamp-type bit of `attributes`: set, the batch carries LogAppendTime.
pub const TIMESTAMP_TYPE_LOG_APPEND_TIME: i16 = 0x08;
/// The transactional bit of `attributes`: the batch belongs to a transaction.
pub const TRANSACTIONAL_FLAG: i16 = 0x10;
/// The control bit of `attributes`: the batch is a transaction marker.
pub const CONTROL_FLAG: i16 = 0x20;
/// Kafka's "no timestamp" (`RecordBatch.NO_TIMESTAMP`), accepted whatever the bounds.
pub const NO_TIMESTAMP: i64 = -1;
const RECORD_COUNT_AT: usize = 57;

/// Why a run of bytes is not a valid batch. Recovery, `log verify` and the
/// produce path all report these, so the wording is written for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchDefect {
    /// Fewer bytes remain than a batch header needs.
    ShortHeader {
        /// Bytes that remain.
        available: usize,
    },
    /// `batchLength` is smaller than a header or larger than the bytes that remain.
    BadLength {
        /// The batch size the header claims (`batchLength` + 12).
        claimed: i64,
        /// Bytes that remain.
        available: usize,
    },
    /// The magic byte is not 2.
    BadMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The stored CRC-32C does not match the bytes.
    BadCrc {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// `lastOffsetDelta` and the record count disagree, or are negative.
    BadRecordCount {
        /// `lastOffsetDelta` from the header.
        last_offset_delta: i32,
        /// `recordCount` from the header.
        record_count: i32,
    },
    /// The batch does not start at the offset that follows its predecessor.
    OffsetGap {
        /// The offset the batch should start at.
        expected: i64,
        /// The offset it starts at.
        found: i64,
    },
}

impl fmt::Display for BatchDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShortHeader { available } => {
                write!(
                    f,
                    "only {available} bytes left, a batch header needs {BATCH_HEADER_LEN}"
                )
            }
            Self::BadLength { claimed, available } => {
                write!(f, "batch claims {claimed} bytes but {available} remain")
            }
            Self::BadMagic { magic } => write!(f, "magic byte {magic}, only v2 batches are stored"),
            Self::BadCrc { stored, computed } => {
                write!(
                    f,
                    "CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            Self::BadRecordCount {
                last_offset_delta,
                record_count,
            } => write!(
                f,
                "record count {record_count} does not match lastOffsetDelta {last_offset_delta}"
            ),
            Self::OffsetGap { expected, found } => {
                write!(f, "batch starts at offset {found}, expected {expected}")
            }
        }
    }
}

/// A borrowed, bounds-checked view of one v2 batch header.
///
/// Construct it with [`BatchHeader::parse`], which checks that the whole
/// batch lies inside the slice; the accessors then never fail.
#[derive(Clone, Copy)]
pub struct BatchHeader<'a> {
    bytes: &'a [u8],
}

impl<'a> BatchHeader<'a> {
    /// Reads the header at the start of `buf` and checks the length and magic
    /// byte (not the CRC: see [`BatchHeader::verify_crc`]). On success the
    /// batch occupies `buf[..header.total_len()]`.
    pub fn parse(buf: &'a [u8]) -> Result<Self, BatchDefect> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(BatchDefect::ShortHeader {
                available: buf.len(),
            });
        }
        let claimed = i64::from(read_i32(buf, BATCH_LENGTH_AT)) + LOG_OVERHEAD as i64;
        if claimed < BATCH_HEADER_LEN as i64 || claimed > buf.len() as i64 {
            return Err(BatchDefect::BadLength {
                claimed,
                available: buf.len(),
            });
        }
        let magic = buf[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchDefect::BadMagic { magic });
        }
        // `claimed` is within 61..=buf.len(), so the cast and slice are exact.
        Ok(Self {
            bytes: &buf[..claimed as usize],
        })
    }

    /// Parses and fully validates one batch: length, magic, record count and
    /// CRC-32C. This is the check every batch passes on produce and recovery.
    pub fn parse_verified(buf: &'a [u8]) -> Result<Self, BatchDefect> {
        let header = Self::parse(buf)?;
        header.verify_counts()?;
        header.verify_crc()?;
        Ok(header)
    }

    /// Checks that `lastOffsetDelta + 1 == recordCount`, as Kafka's log validator does.
    pub fn verify_counts(&self) -> Result<(), BatchDefect> {
        let last_offset_delta = self.last_offset_delta();
        let record_count = self.record_count();
        if last_offset_delta < 0 || i64::from(last_offset_delta) + 1 != i64::from(record_count) {
            return Err(BatchDefect::BadRecordCount {
                last_offset_delta,
                record_count,
            });
        }
        Ok(())
    }

    /// Checks the CRC-32C over `attributes..end`.
    pub fn verify_crc(&self) -> Result<(), BatchDefect> {
        let stored = self.crc();
        let computed = crc32c::crc32c(&self.bytes[CRC_START..]);
        if stored != computed {
            return Err(BatchDefect::BadCrc { stored, computed });
        }
        Ok(())
    }

    /// The whole batch, header included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Size of the whole batch in bytes (`batchLength` + 12).
    pub fn total_len(&self) -> usize {
        self.bytes.len()
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        read_i64(self.bytes, BASE_OFFSET_AT)
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + i64::from(self.last_offset_delta())
    }

    /// `lastOffsetDelta`: last record's offset minus the base offset.
    pub fn last_offset_delta(&self) -> i32 {
        read_i32(self.bytes, LAST_OFFSET_DELTA_AT)
    }

    /// Leader epoch the broker stamped on the batch.
    pub fn partition_leader_epoch(&self) -> i32 {
        read_i32(self.bytes, LEADER_EPOCH_AT)
    }

    /// The stored CRC-32C.
    pub fn crc(&self) -> u32 {
        u32::from_be_bytes(fixed(self.bytes, CRC_AT))
    }

    /// Batch attributes (compression in the low 3 bits, timestamp type, transactional, control).
    pub fn attributes(&self) -> i16 {
        i16::from_be_bytes(fixed(self.bytes, ATTRIBUTES_AT))
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> u8 {
        (self.attributes() & 0x07) as u8
    }

    /// Timestamp of the first record.
    pub fn base_timestamp(&self) -> i64 {
        read_i64(self.bytes, BASE_TIMESTAMP_AT)
    }

    /// Largest record timestamp in the batch.
    pub fn max_timestamp(&self) -> i64 {
        read_i64(self.bytes, MAX_TIMESTAMP_AT)
    }

    /// Idempotent producer id, or -1.
    pub fn producer_id(&self) -> i64 {
        read_i64(self.bytes, PRODUCER_ID_AT)
    }

    /// Idempotent producer epoch, or -1.
    pub fn producer_epoch(&self) -> i16 {
        i16::from_be_bytes(fixed(self.bytes, PRODUCER_EPOCH_AT))
    }

    /// Sequence number of the batch's first record, or -1 (not idempotent).
    pub fn base_sequence(&self) -> i32 {
        read_i32(self.bytes, BASE_SEQUENCE_AT)
    }

    /// Number of records in the batch.
    pub fn record_count(&self) -> i32 {
        read_i32(self.bytes, RECORD_COUNT_AT)
    }

    /// The records section (possibly compressed).
    pub fn records(&self) -> &'a [u8] {
        &self.bytes[BATCH_HEADER_LEN..]
    }

    /// Whether the batch belongs to a transaction (`attributes` bit 0x10).
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_FLAG != 0
    }

    /// Whether the batch is a control batch (`attributes` bit 0x20).
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_FLAG != 0
    }

    /// The outcome a transaction marker records: `Some(true)` for a commit,
    /// `Some(false)` for an abort, `None` when this is not a control batch
    /// whose first record's key is a marker (version i16, type i16: 0 abort,
    /// 1 commit). Markers are never compressed.
    pub fn marker_commits(&self) -> Option<bool> {
        if !self.is_control() || self.compression() != 0 {
            return None;
        }
        let mut records = self.records();
        let length = usize::try_from(read_varlong(&mut records)?).ok()?;
        let mut body = records.get(..length)?.get(1..)?; // attributes i8
        read_varlong(&mut body)?; // timestampDelta
        read_varlong(&mut body)?; // offsetDelta
        let key_len = usize::try_from(read_varlong(&mut body)?).ok()?;
        let key = body.get(..key_len)?;
        match key.get(2..4)? {
            [0, 0] => Some(false),
            [0, 1] => Some(true),
            _ => None,
        }
    }

    /// The timestamp type the batch declares (the `attributes` bit 0x08).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & TIMESTAMP_TYPE_LOG_APPEND_TIME != 0
    }

    /// The first timestamp in the batch outside `[earliest, latest]`, if any
    /// ([`NO_TIMESTAMP`] is never outside). Checks the header's
    /// `baseTimestamp` and `maxTimestamp` and, in an uncompressed batch, every
    /// record's `baseTimestamp + timestampDelta`, walking only the record
    /// length and timestamp varints.
    ///
    /// Compressed batches are not decompressed for this: only their header
    /// timestamps are checked. A producer can therefore hide an out-of-range
    /// timestamp inside a compressed batch whose header says otherwise; it
    /// affects no broker decision (retention and `segment.ms` run on the
    /// broker's clock), only what consumers read.
    pub fn timestamp_outside(&self, earliest: i64, latest: i64) -> Option<i64> {
        let outside = |ts: i64| ts != NO_TIMESTAMP && (ts < earliest || ts > latest);
        let base = self.base_timestamp();
        if let Some(ts) = [base, self.max_timestamp()]
            .into_iter()
            .find(|&ts| outside(ts))
        {
            return Some(ts);
        }
        if self.compression() != 0 {
            return None;
        }
        let mut records = self.records();
        for _ in 0..self.record_count() {
            // A malformed record section ends the walk: the CRC matched, so
            // these are the producer's bytes, stored opaquely as ever.
            let delta = next_record_timestamp_delta(&mut records)?;
            let ts = base.saturating_add(delta);
            if outside(ts) {
                return Some(ts);
            }
        }
        None
    }
}

/// A patched copy of the start of a batch header, written in place of the
/// producer's bytes: 17 bytes (up to the CRC) when the CRC is kept, 43 (up to
/// the end of `maxTimestamp`) when the broker stamped LogAppendTime.
#[derive(Debug, Clone, Copy)]
pub struct PatchedPrefix {
    bytes: [u8; PATCHABLE_LEN],
    len: usize,
}

impl PatchedPrefix {
    /// The patched bytes, which replace `batch[..len]`.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The header fields the broker sets on append: the batch's offset, the
/// leader epoch and, on a LogAppendTime topic, the append time. Records are
/// never touched.
///
/// With `log_append_time` set, the timestamp-type attribute bit is set,
/// `maxTimestamp` becomes the append time (Kafka's LogAppendTime: consumers
/// take every record's timestamp from it) and the CRC-32C is recomputed over
/// the patched header and the unchanged records.
pub fn patch_header(
    batch: &BatchHeader<'_>,
    base_offset: i64,
    leader_epoch: i32,
    log_append_time: Option<i64>,
) -> PatchedPrefix {
    let bytes = batch.bytes();
    let mut prefix = PatchedPrefix {
        bytes: [0u8; PATCHABLE_LEN],
        len: OUTSIDE_CRC_LEN,
    };
    // `parse` guaranteed at least BATCH_HEADER_LEN (> PATCHABLE_LEN) bytes.
    prefix.bytes.copy_from_slice(&bytes[..PATCHABLE_LEN]);
    let out = &mut prefix.bytes;
    out[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    out[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
    if let Some(append_time) = log_append_time {
        let attributes = batch.attributes() | TIMESTAMP_TYPE_LOG_APPEND_TIME;
        out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&append_time.to_be_bytes());
        let crc = crc32c::crc32c_append(
            crc32c::crc32c(&out[CRC_START..PATCHABLE_LEN]),
            &bytes[PATCHABLE_LEN..],
        );
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        prefix.len = PATCHABLE_LEN;
    }
    prefix
}

/// Reads one record's `length` and `timestampDelta` varints and advances
/// `records` past the record; `None` when the bytes do not hold a record.
fn next_record_timestamp_delta(records: &mut &[u8]) -> Option<i64> {
    let length = usize::try_from(read_varlong(records)?).ok()?;
    let body = records.get(..length)?;
    *records = &records[length..];
    let mut fields = body.get(1..)?; // attributes i8
    read_varlong(&mut fields)
}

/// Reads a zig-zag varint of up to 64 bits and advances `buf` past it.
fn read_varlong(buf: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

/// Walks a buffer of consecutive batches. Stops at the first invalid one
/// (returned as an `Err` item) or at the end of the buffer.
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    verify: bool,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    /// Iterates over batches, checking length and magic only (cheap: headers).
    pub fn headers(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            verify: false,
            failed: false,
        }
    }

    /// Iterates over batches, checking counts and CRC-32C as well.
    pub fn verified(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            verify: true,
            failed: false,
        }
    }

    /// Byte position of the next batch within the buffer.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for BatchIter<'a> {
    /// The batch's byte position in the buffer and its header, or where and why it is invalid.
    type Item = Result<(usize, BatchHeader<'a>), (usize, BatchDefect)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let parsed = if self.verify {
            BatchHeader::parse_verified(rest)
        } else {
            BatchHeader::parse(rest)
        };
        match parsed {
            Ok(header) => {
                let at = self.pos;
                self.pos += header.total_len();
                Some(Ok((at, header)))
            }
            Err(defect) => {
                self.failed = true;
                Some(Err((self.pos, defect)))
            }
        }
    }
}

fn fixed<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(fixed(buf, at))
}

fn read_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(fixed(buf, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::encode::{encode_plain_batch, PlainRecord};
    use crate::storage::test_batches::batch_with_records;
    use sediment_protocol::records::{encode_batch, BatchOptions, Compression, Record};

    #[test]
    fn given_valid_batch_when_parsed_then_fields_match_what_was_encoded() {
        let bytes = batch_with_records(5, 100, 1_000);
        let header = BatchHeader::parse_verified(&bytes).unwrap();
        assert_eq!(header.total_len(), bytes.len());
        assert_eq!(header.record_count(), 5);
        assert_eq!(header.last_offset_delta(), 4);
        assert_eq!(header.base_timestamp(), 1_000);
        assert_eq!(header.max_timestamp(), 1_004);
        assert_eq!(header.compression(), 0);
    }

    #[test]
    fn given_flipped_bit_in_records_when_verified_then_crc_mismatch() {
        let mut bytes = batch_with_records(3, 50, 0);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        assert!(matches!(
            BatchHeader::parse_verified(&bytes),
            Err(BatchDefect::BadCrc { .. })
        ));
    }

    #[test]
    fn given_patched_offset_and_epoch_then_crc_still_valid() {
        let bytes = batch_with_records(2, 10, 0);
        let prefix = patch_header(&BatchHeader::parse(&bytes).unwrap(), 1234, 7, None);
        assert_eq!(prefix.as_slice().len(), 17, "CreateTime keeps the CRC");
        let mut patched = bytes.clone();
        patched[..17].copy_from_slice(prefix.as_slice());
        let header = BatchHeader::parse_verified(&patched).unwrap();
        assert_eq!(header.base_offset(), 1234);
        assert_eq!(header.last_offset(), 1235);
        assert_eq!(header.partition_leader_epoch(), 7);
        assert_eq!(header.crc(), BatchHeader::parse(&bytes).unwrap().crc());
    }

    #[test]
    fn given_log_append_time_when_patched_then_type_bit_and_max_timestamp_set_crc_valid_records_untouched(
    ) {
        let bytes = batch_with_records(3, 10, 1_000);
        let prefix = patch_header(&BatchHeader::parse(&bytes).unwrap(), 5, 0, Some(99_000));
        let mut patched = bytes.clone();
        patched[..prefix.as_slice().len()].copy_from_slice(prefix.as_slice());
        let header = BatchHeader::parse_verified(&patched).unwrap();
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp(), 99_000);
        assert_eq!(header.base_timestamp(), 1_000, "baseTimestamp is not ours");
        assert_eq!(header.base_offset(), 5);
        assert_eq!(header.compression(), 0, "other attribute bits are kept");
        assert_eq!(&patched[43..], &bytes[43..], "records are never re-encoded");
    }

    fn batch_at(timestamps: &[i64]) -> Vec<u8> {
        let records = timestamps
            .iter()
            .map(|&timestamp| PlainRecord {
                key: None,
                value: Some(bytes::Bytes::from_static(b"v")),
                timestamp,
            })
            .collect();
        encode_plain_batch(records).unwrap()
    }

    #[test]
    fn given_timestamps_within_bounds_when_checked_then_none_outside() {
        let bytes = batch_at(&[1_000, 1_500, 2_000]);
        let header = BatchHeader::parse(&bytes).unwrap();
        assert_eq!(header.timestamp_outside(1_000, 2_000), None);
        assert_eq!(header.timestamp_outside(1_001, 2_000), Some(1_000));
        assert_eq!(header.timestamp_outside(1_000, 1_999), Some(2_000));
    }

    #[test]
    fn given_no_timestamp_when_checked_then_never_outside() {
        let bytes = batch_at(&[NO_TIMESTAMP]);
        let header = BatchHeader::parse(&bytes).unwrap();
        assert_eq!(header.timestamp_outside(1_000, 2_000), None);
    }

    #[test]
    fn given_uncompressed_record_beyond_header_max_when_checked_then_record_walk_finds_it() {
        // A producer whose header understates a record's timestamp.
        let mut bytes = batch_at(&[1_000, 9_000_000, 1_001]);
        bytes[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&1_001i64.to_be_bytes());
        let header = BatchHeader::parse(&bytes).unwrap();
        assert_eq!(header.max_timestamp(), 1_001);
        assert_eq!(header.timestamp_outside(0, 2_000), Some(9_000_000));
    }

    #[test]
    fn given_compressed_batch_when_checked_then_only_header_timestamps_count() {
        let records: Vec<Record> = [1_000, 9_000_000, 1_001]
            .iter()
            .enumerate()
            .map(|(i, &timestamp)| Record {
                offset: i as i64,
                timestamp,
                key: None,
                value: Some(bytes::Bytes::from_static(b"v")),
                headers: Vec::new(),
            })
            .collect();
        let options = BatchOptions {
            compression: Compression::Gzip,
            ..BatchOptions::default()
        };
        let mut bytes = encode_batch(&records, &options).unwrap().to_vec();
        assert_eq!(
            BatchHeader::parse(&bytes)
                .unwrap()
                .timestamp_outside(0, 2_000),
            Some(9_000_000),
            "the header's max timestamp is checked"
        );
        bytes[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&1_001i64.to_be_bytes());
        assert_eq!(
            BatchHeader::parse(&bytes)
                .unwrap()
                .timestamp_outside(0, 2_000),
            None,
            "compressed records are not decompressed for the check"
        );
    }

    #[test]
    fn given_truncated_batch_then_bad_length() {
        let bytes = batch_with_records(2, 10, 0);
        assert!(matches!(
            BatchHeader::parse(&bytes[..bytes.len() - 1]),
            Err(BatchDefect::BadLength { .. })
        ));
        assert!(matches!(
            BatchHeader::parse(&bytes[..20]),
            Err(BatchDefect::ShortHeader { available: 20 })
        ));
    }

    #[test]
    fn given_zeroes_then_rejected_not_panicking() {
        let zeros = vec![0u8; 200];
        assert!(BatchHeader::parse(&zeros).is_err());
    }

    #[test]
    fn given_wrong_magic_then_bad_magic() {
        let mut bytes = batch_with_records(1, 10, 0);
        bytes[MAGIC_AT] = 1;
        assert_eq!(
            BatchHeader::parse(&bytes).err(),
            Some(BatchDefect::BadMagic { magic: 1 })
        );
    }

    #[test]
    fn given_two_batches_then_iterator_yields_both_then_stops_at_garbage() {
        let mut buf = batch_with_records(1, 10, 0);
        let first_len = buf.len();
        buf.extend(batch_with_records(2, 10, 0));
        buf.extend([0xff; 7]);
        let items: Vec<_> = BatchIter::verified(&buf).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].as_ref().map(|(pos, _)| *pos).ok(), Some(first_len));
        assert!(items[2].is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            for item in BatchIter::verified(&bytes) {
                let _ = item;
            }
        }
    }
}
