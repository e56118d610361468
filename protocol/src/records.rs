//! Record batches (magic v2): building one from records, with any of Kafka's
//! codecs, and reading the records back out of one.
//!
//! Layout of a batch (all big-endian):
//! `baseOffset i64 · batchLength i32 · partitionLeaderEpoch i32 · magic i8 ·
//! crc u32 · attributes i16 · lastOffsetDelta i32 · baseTimestamp i64 ·
//! maxTimestamp i64 · producerId i64 · producerEpoch i16 · baseSequence i32 ·
//! recordCount i32 · records…`, where the CRC-32C covers everything from
//! `attributes` to the end and the records may be compressed as one block.
//!
//! Decoding is bounded: a batch's decompressed size is capped by the caller
//! (a decompression bomb is an error, not an allocation), record counts are
//! checked against the bytes left, and keys, values and header values of
//! uncompressed batches are zero-copy slices of the input.

use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::{DecodeError, Reader, Writer};

/// Bytes of a batch before its records.
pub const BATCH_HEADER_LEN: usize = 61;
/// Offset of the CRC-32C within a batch.
const CRC_AT: usize = 17;
/// Offset of `attributes` within a batch: the CRC covers from here.
const ATTRIBUTES_AT: usize = 21;
/// Bytes of `baseOffset` and `batchLength`, not counted by `batchLength`.
const LOG_OVERHEAD: usize = 12;

/// The compression codec of a batch (attribute bits 0–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Uncompressed.
    #[default]
    None,
    /// gzip (codec 1).
    Gzip,
    /// Snappy (codec 2), in the xerial framing Kafka's Java client writes.
    Snappy,
    /// LZ4 frames (codec 3).
    Lz4,
    /// Zstandard (codec 4).
    Zstd,
}

impl Compression {
    /// The codec's attribute bits.
    pub const fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with these attribute bits.
    pub const fn from_id(id: i16) -> Option<Self> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Whether a batch's timestamps were set by the producer or the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// Set by the producer (CreateTime).
    #[default]
    Create,
    /// Set by the broker at append (LogAppendTime).
    LogAppend,
}

/// One record of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The record's offset (base offset + delta).
    pub offset: i64,
    /// Its timestamp in ms.
    pub timestamp: i64,
    /// Its key; `None` when null.
    pub key: Option<Bytes>,
    /// Its value; `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Its headers, in order; a header value may be null.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Batch-level settings when building a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Offset of the first record (the broker rewrites it on append).
    pub base_offset: i64,
    /// Codec for the records.
    pub compression: Compression,
    /// Timestamp type.
    pub timestamp_type: TimestampType,
    /// Producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// Leader epoch, or -1.
    pub partition_leader_epoch: i32,
    /// Part of a transaction.
    pub transactional: bool,
    /// A control batch (transaction marker).
    pub control: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            base_offset: 0,
            compression: Compression::None,
            timestamp_type: TimestampType::Create,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            partition_leader_epoch: -1,
            transactional: false,
            control: false,
        }
    }
}

/// Why a batch could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchEncodeError {
    /// A batch needs at least one record.
    #[error("a record batch needs at least one record")]
    Empty,
    /// Offsets must rise from the first record, within 32-bit deltas.
    #[error("record offsets must rise from the base offset within 32-bit deltas")]
    BadOffsets,
    /// A key, value or header is longer than a varint length can say.
    #[error("a record field of {0} bytes is too long")]
    TooLong(usize),
    /// The codec failed.
    #[error("compression failed: {0}")]
    Compression(#[from] std::io::Error),
}

/// Builds one batch holding `records` (offsets as given; the first one is
/// the base offset, overriding `options.base_offset`).
pub fn encode_batch(records: &[Record], options: &BatchOptions) -> Result<Bytes, BatchEncodeError> {
    let mut builder = BatchBuilder::with_capacity(records.iter().map(estimated_record_len).sum());
    for r in records {
        builder.push(RecordParts {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &r.headers,
        })?;
    }
    builder.finish(options)
}

/// One record's fields as [`BatchBuilder::push`] takes them, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RecordParts<'a> {
    /// The record's offset (the first record's is the batch's base offset).
    pub offset: i64,
    /// Its timestamp in ms.
    pub timestamp: i64,
    /// Its key; `None` when null.
    pub key: Option<&'a [u8]>,
    /// Its value; `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Its headers, in order.
    pub headers: &'a [(String, Option<Bytes>)],
}

/// Builds one batch a record at a time, encoding each as it is pushed (a
/// producer's open batch keeps these bytes, not the records). Offsets must
/// rise from the first record's within 32-bit deltas.
///
/// The buffer starts with room for the batch header, so an uncompressed
/// batch is finished in place, without copying its records.
#[derive(Debug)]
pub struct BatchBuilder {
    /// Header room (`BATCH_HEADER_LEN` bytes), then the encoded records.
    body: Writer,
    base_offset: i64,
    base_timestamp: i64,
    max_timestamp: i64,
    last_delta: i32,
    count: i32,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl BatchBuilder {
    /// An empty builder with room for `capacity` bytes of records.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut body = Writer::with_capacity(BATCH_HEADER_LEN + capacity);
        body.put_slice(&[0; BATCH_HEADER_LEN]);
        Self {
            body,
            base_offset: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            last_delta: 0,
            count: 0,
        }
    }

    /// Records pushed so far.
    pub fn count(&self) -> i32 {
        self.count
    }

    /// Encodes one record into the batch.
    pub fn push(&mut self, r: RecordParts<'_>) -> Result<(), BatchEncodeError> {
        let first = self.count == 0;
        if first {
            self.base_offset = r.offset;
            self.base_timestamp = r.timestamp;
            self.max_timestamp = r.timestamp;
        }
        let delta = r
            .offset
            .checked_sub(self.base_offset)
            .and_then(|d| i32::try_from(d).ok())
            .filter(|d| *d >= self.last_delta && (*d > self.last_delta || first))
            .ok_or(BatchEncodeError::BadOffsets)?;
        let timestamp_delta = r.timestamp.wrapping_sub(self.base_timestamp);
        // The length prefix comes first, so it is computed, not measured:
        // the record is then written once, in place.
        let len = record_body_len(&r, delta, timestamp_delta);
        self.body
            .put_varint(i32::try_from(len).map_err(|_| BatchEncodeError::TooLong(len))?);
        let before = self.body.len();
        record_body(&mut self.body, &r, delta, timestamp_delta)?;
        debug_assert_eq!(self.body.len() - before, len, "record_body_len disagrees");
        self.last_delta = delta;
        self.max_timestamp = self.max_timestamp.max(r.timestamp);
        self.count = self.count.saturating_add(1);
        Ok(())
    }

    /// The batch: header, then the records compressed per `options`.
    pub fn finish(self, options: &BatchOptions) -> Result<Bytes, BatchEncodeError> {
        if self.count == 0 {
            return Err(BatchEncodeError::Empty);
        }
        let Self {
            body,
            base_offset,
            base_timestamp,
            max_timestamp,
            last_delta,
            count,
            ..
        } = self;
        let header = HeaderFields {
            base_offset,
            last_delta,
            base_timestamp,
            max_timestamp,
            count,
        };
        let records = body.into_bytes_mut();
        let mut batch = match compress(options.compression, &records[BATCH_HEADER_LEN..])? {
            // Uncompressed: the header goes into the room left for it.
            None => records,
            // Compressed: a buffer of exactly the batch's size, so the
            // uncompressed records are not held while the batch waits.
            Some(payload) => {
                let mut batch = BytesMut::with_capacity(BATCH_HEADER_LEN + payload.len());
                batch.put_bytes(0, BATCH_HEADER_LEN);
                batch.put_slice(&payload);
                batch
            }
        };
        write_header(options, &header, &mut batch);
        Ok(batch.freeze())
    }
}

/// The header fields a batch's records determine.
struct HeaderFields {
    base_offset: i64,
    last_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
}

/// Fills the v2 header at the front of `batch` (its first
/// `BATCH_HEADER_LEN` bytes, reserved; the records follow), CRC-32C last.
fn write_header(options: &BatchOptions, fields: &HeaderFields, batch: &mut [u8]) {
    let mut attributes = options.compression.id();
    if options.timestamp_type == TimestampType::LogAppend {
        attributes |= 0x08;
    }
    if options.transactional {
        attributes |= 0x10;
    }
    if options.control {
        attributes |= 0x20;
    }
    let total = batch.len();
    let mut out = &mut batch[..BATCH_HEADER_LEN];
    out.put_i64(fields.base_offset);
    out.put_i32((total - LOG_OVERHEAD) as i32);
    out.put_i32(options.partition_leader_epoch);
    out.put_i8(2);
    out.put_u32(0); // CRC, filled below
    out.put_i16(attributes);
    out.put_i32(fields.last_delta);
    out.put_i64(fields.base_timestamp);
    out.put_i64(fields.max_timestamp);
    out.put_i64(options.producer_id);
    out.put_i16(options.producer_epoch);
    out.put_i32(options.base_sequence);
    out.put_i32(fields.count);
    debug_assert!(out.is_empty(), "the header fills its reserved room");
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// An upper bound of one record's encoded length (its varints at their
/// widest), so a batch's buffer is allocated once.
fn estimated_record_len(r: &Record) -> usize {
    const FIXED: usize = 5 + 1 + 10 + 5 + 5 + 5 + 5;
    let field = |b: Option<&[u8]>| b.map_or(0, <[u8]>::len);
    FIXED
        + field(r.key.as_deref())
        + field(r.value.as_deref())
        + r.headers
            .iter()
            .map(|(k, v)| 10 + k.len() + field(v.as_deref()))
            .sum::<usize>()
}

fn put_varint_bytes(w: &mut Writer, b: Option<&[u8]>) -> Result<(), BatchEncodeError> {
    match b {
        None => w.put_varint(-1),
        Some(b) => {
            w.put_varint(i32::try_from(b.len()).map_err(|_| BatchEncodeError::TooLong(b.len()))?);
            w.put_slice(b);
        }
    }
    Ok(())
}

/// Bytes of a zig-zag varint holding `v`.
fn varint_len(v: i64) -> usize {
    let mut zigzag = ((v << 1) ^ (v >> 63)) as u64;
    let mut len = 1;
    while zigzag >= 0x80 {
        zigzag >>= 7;
        len += 1;
    }
    len
}

/// Bytes of a varint-length-prefixed field (`-1` when null).
fn varint_bytes_len(b: Option<&[u8]>) -> usize {
    b.map_or(1, |b| varint_len(b.len() as i64) + b.len())
}

/// What [`record_body`] writes for `r`, in bytes.
fn record_body_len(r: &RecordParts<'_>, offset_delta: i32, timestamp_delta: i64) -> usize {
    1 + varint_len(timestamp_delta)
        + varint_len(i64::from(offset_delta))
        + varint_bytes_len(r.key)
        + varint_bytes_len(r.value)
        + varint_len(r.headers.len() as i64)
        + r.headers
            .iter()
            .map(|(k, v)| varint_bytes_len(Some(k.as_bytes())) + varint_bytes_len(v.as_deref()))
            .sum::<usize>()
}

fn record_body(
    w: &mut Writer,
    r: &RecordParts<'_>,
    offset_delta: i32,
    timestamp_delta: i64,
) -> Result<(), BatchEncodeError> {
    w.put_i8(0);
    w.put_varlong(timestamp_delta);
    w.put_varint(offset_delta);
    put_varint_bytes(w, r.key)?;
    put_varint_bytes(w, r.value)?;
    w.put_varint(
        i32::try_from(r.headers.len()).map_err(|_| BatchEncodeError::TooLong(r.headers.len()))?,
    );
    for (key, value) in r.headers {
        put_varint_bytes(w, Some(key.as_bytes()))?;
        put_varint_bytes(w, value.as_deref())?;
    }
    Ok(())
}

/// Snappy's xerial framing: magic, version 1, compatible version 1.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// Uncompressed bytes per xerial block.
const XERIAL_BLOCK: usize = 32 * 1024;

/// `body` compressed with `codec`; `None` for [`Compression::None`].
fn compress(codec: Compression, body: &[u8]) -> Result<Option<Vec<u8>>, std::io::Error> {
    Ok(Some(match codec {
        Compression::None => return Ok(None),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(body)?;
            enc.finish()?
        }
        Compression::Snappy => {
            let mut out = Vec::with_capacity(body.len() / 2 + 32);
            out.extend_from_slice(XERIAL_HEADER);
            let mut encoder = snap::raw::Encoder::new();
            for block in body.chunks(XERIAL_BLOCK) {
                let compressed = encoder.compress_vec(block).map_err(std::io::Error::other)?;
                out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            out
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(body)?;
            enc.finish().map_err(std::io::Error::other)?
        }
        Compression::Zstd => zstd::bulk::compress(body, 3)?,
    }))
}

/// Inflates `payload` with `codec`, refusing to produce more than `limit` bytes.
fn decompress(codec: Compression, payload: Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    let too_big = || DecodeError::Invalid(format!("batch inflates to more than {limit} bytes"));
    let bad = |e: std::io::Error| DecodeError::Invalid(format!("cannot decompress batch: {e}"));
    let read_limited = |mut reader: Box<dyn Read + '_>| -> Result<Bytes, DecodeError> {
        let mut out = Vec::new();
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        reader
            .by_ref()
            .take(cap)
            .read_to_end(&mut out)
            .map_err(bad)?;
        if out.len() > limit {
            return Err(too_big());
        }
        Ok(Bytes::from(out))
    };
    match codec {
        Compression::None => Ok(payload),
        Compression::Gzip => read_limited(Box::new(flate2::read::GzDecoder::new(&payload[..]))),
        Compression::Lz4 => {
            read_limited(Box::new(lz4_flex::frame::FrameDecoder::new(&payload[..])))
        }
        Compression::Zstd => read_limited(Box::new(
            zstd::stream::read::Decoder::new(&payload[..]).map_err(bad)?,
        )),
        Compression::Snappy => {
            let mut decoder = snap::raw::Decoder::new();
            let mut block = |raw: &[u8], out: &mut Vec<u8>| -> Result<(), DecodeError> {
                let len =
                    snap::raw::decompress_len(raw).map_err(|e| bad(std::io::Error::other(e)))?;
                if out.len().saturating_add(len) > limit {
                    return Err(too_big());
                }
                let start = out.len();
                out.resize(start + len, 0);
                decoder
                    .decompress(raw, &mut out[start..])
                    .map_err(|e| bad(std::io::Error::other(e)))?;
                Ok(())
            };
            let mut out = Vec::new();
            if payload.starts_with(XERIAL_HEADER) {
                let mut r = Reader::new(payload.slice(XERIAL_HEADER.len()..));
                while r.remaining() > 0 {
                    let len = r.u32()? as usize;
                    let raw = r.take(len)?;
                    block(&raw, &mut out)?;
                }
            } else {
                block(&payload, &mut out)?;
            }
            Ok(Bytes::from(out))
        }
    }
}

/// A decoded batch: its header fields and its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Leader epoch stamped by the broker.
    pub partition_leader_epoch: i32,
    /// Codec of the records.
    pub compression: Compression,
    /// Timestamp type.
    pub timestamp_type: TimestampType,
    /// Part of a transaction.
    pub transactional: bool,
    /// A control batch (transaction marker).
    pub control: bool,
    /// Offset of the last record minus the base offset.
    pub last_offset_delta: i32,
    /// The batch's max timestamp.
    pub max_timestamp: i64,
    /// Producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// The records, with absolute offsets and timestamps (LogAppendTime
    /// batches report the batch's max timestamp for every record, as Kafka does).
    pub records: Vec<Record>,
}

/// Decodes one whole batch, checking its magic, length and CRC-32C;
/// `max_inflated` bounds the decompressed size of its records.
pub fn decode_batch(batch: Bytes, max_inflated: usize) -> Result<RecordBatch, DecodeError> {
    let mut r = Reader::new(batch.clone());
    let base_offset = r.i64()?;
    let length = r.i32()?;
    if length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32
        || length as usize + LOG_OVERHEAD != batch.len()
    {
        return Err(DecodeError::InvalidLength(i64::from(length)));
    }
    let partition_leader_epoch = r.i32()?;
    let magic = r.i8()?;
    if magic != 2 {
        return Err(DecodeError::Invalid(format!(
            "record batch magic {magic}, expected 2"
        )));
    }
    let crc = r.u32()?;
    let computed = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    if crc != computed {
        return Err(DecodeError::Invalid(format!(
            "record batch CRC-32C mismatch: stored {crc:#010x}, computed {computed:#010x}"
        )));
    }
    let attributes = r.i16()?;
    let last_offset_delta = r.i32()?;
    let base_timestamp = r.i64()?;
    let max_timestamp = r.i64()?;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let base_sequence = r.i32()?;
    let count = r.i32()?;
    let compression = Compression::from_id(attributes & 0x07).ok_or_else(|| {
        DecodeError::Invalid(format!("unknown compression codec {}", attributes & 0x07))
    })?;
    let timestamp_type = if attributes & 0x08 != 0 {
        TimestampType::LogAppend
    } else {
        TimestampType::Create
    };
    let payload = decompress(compression, r.into_rest(), max_inflated)?;
    let mut r = Reader::new(payload);
    // Every record takes at least 7 bytes (length, attributes, 2 deltas, key, value, headers).
    if count < 0 || count as usize > r.remaining() / 7 + 1 {
        return Err(DecodeError::InvalidLength(i64::from(count)));
    }
    let mut records =
        Vec::with_capacity((count as usize).min(crate::wire::MAX_PREALLOCATED_ELEMENTS));
    for _ in 0..count {
        let len = r.varint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::InvalidLength(i64::from(len)))?;
        let mut rec = Reader::new(r.take(len)?);
        let _attributes = rec.i8()?;
        let timestamp_delta = rec.varlong()?;
        let offset_delta = rec.varint()?;
        let key = varint_bytes(&mut rec)?;
        let value = varint_bytes(&mut rec)?;
        let header_count = rec.varint()?;
        if header_count < 0 || header_count as usize > rec.remaining() / 2 {
            return Err(DecodeError::InvalidLength(i64::from(header_count)));
        }
        let mut headers = Vec::with_capacity(header_count as usize);
        for _ in 0..header_count {
            let key = varint_bytes(&mut rec)?.ok_or(DecodeError::UnexpectedNull("header key"))?;
            let key = String::from_utf8(key.to_vec()).map_err(|_| DecodeError::InvalidUtf8)?;
            headers.push((key, varint_bytes(&mut rec)?));
        }
        records.push(Record {
            offset: base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: match timestamp_type {
                TimestampType::Create => base_timestamp.wrapping_add(timestamp_delta),
                TimestampType::LogAppend => max_timestamp,
            },
            key,
            value,
            headers,
        });
    }
    Ok(RecordBatch {
        base_offset,
        partition_leader_epoch,
        compression,
        timestamp_type,
        transactional: attributes & 0x10 != 0,
        control: attributes & 0x20 != 0,
        last_offset_delta,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        records,
    })
}

fn varint_bytes(r: &mut Reader) -> Result<Option<Bytes>, DecodeError> {
    match r.varint()? {
        -1 => Ok(None),
        n if n < 0 => Err(DecodeError::InvalidLength(i64::from(n))),
        n => r.take(n as usize).map(Some),
    }
}

/// Splits `bytes` into whole batches by their length fields; a partial
/// batch at the end (as a Fetch may return) is left out.
pub fn split_batches(bytes: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let header = bytes.get(at..at + LOG_OVERHEAD)?;
        let len = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        let end = at
            .checked_add(LOG_OVERHEAD)?
            .checked_add(usize::try_from(len).ok()?)?;
        if end > bytes.len() {
            return None;
        }
        let batch = bytes.slice(at..end);
        at = end;
        Some(batch)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        (0..50)
            .map(|i| Record {
                offset: 100 + i,
                timestamp: 1_700_000_000_000 + i * 3,
                key: (i % 3 != 0).then(|| Bytes::from(format!("key-{i}"))),
                value: (i % 7 != 0).then(|| Bytes::from(vec![b'v'; i as usize * 10])),
                headers: vec![
                    ("h".into(), Some(Bytes::from_static(b"x"))),
                    ("n".into(), None),
                ],
            })
            .collect()
    }

    #[test]
    fn batches_round_trip_with_every_codec() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let options = BatchOptions {
                compression: codec,
                producer_id: 7,
                producer_epoch: 1,
                base_sequence: 3,
                ..BatchOptions::default()
            };
            let batch = encode_batch(&records(), &options).unwrap();
            let decoded = decode_batch(batch.clone(), 1 << 20).unwrap();
            assert_eq!(decoded.records, records(), "{codec:?}");
            assert_eq!(decoded.compression, codec);
            assert_eq!(decoded.producer_id, 7);
            assert_eq!(decoded.last_offset_delta, 49);
            assert_eq!(split_batches(&batch).count(), 1);
        }
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let big = vec![Record {
            value: Some(Bytes::from(vec![0u8; 1 << 20])),
            ..Record::default()
        }];
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let options = BatchOptions {
                compression: codec,
                ..BatchOptions::default()
            };
            let batch = encode_batch(&big, &options).unwrap();
            assert!(batch.len() < 64 * 1024, "{codec:?} {}", batch.len());
            assert!(decode_batch(batch, 64 * 1024).is_err(), "{codec:?}");
        }
    }

    #[test]
    fn a_flipped_bit_fails_the_crc() {
        let batch = encode_batch(&records(), &BatchOptions::default()).unwrap();
        let mut bad = batch.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode_batch(Bytes::from(bad), 1 << 20).is_err());
    }
}
