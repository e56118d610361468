//! The Kafka primitive encodings: fixed-width big-endian integers, varints,
//! strings, bytes, arrays and tagged fields, in their classic and compact
//! (flexible-version) forms.
//!
//! Invariants that make decoding safe against a hostile frame:
//! - every length or count read from the wire is checked against the bytes
//!   left before anything is allocated or sliced, and an array's count must
//!   not exceed the bytes left (every element takes at least one byte), so
//!   a decoded message stays within a small constant factor of its wire size;
//! - array pre-allocation is capped at [`MAX_PREALLOCATED_ELEMENTS`]; a
//!   longer array grows only as its elements are really decoded;
//! - `bytes` and `records` fields are zero-copy slices of the input;
//! - unknown tagged fields are skipped without being stored.
//!
//! The [`Writer`] keeps large `records` fields as shared [`Bytes`] instead of
//! copying them, so a Fetch response can be written with vectored I/O
//! straight from the log's memory-mapped segments.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// The most array elements reserved up front, whatever the wire says.
pub const MAX_PREALLOCATED_ELEMENTS: usize = 256;

/// `records` fields at least this long are kept as shared slices by the
/// [`Writer`] rather than copied into its buffer.
pub const SHARED_RECORDS_MIN_BYTES: usize = 1024;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("unexpected end of input: a value of {needed} bytes with {left} left")]
    Truncated {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        left: usize,
    },
    /// A length or count is negative (other than -1 for null) or larger than the input.
    #[error("invalid length {0}")]
    InvalidLength(i64),
    /// A varint runs past its maximal width.
    #[error("varint longer than {0} bytes")]
    VarintTooLong(usize),
    /// A string is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A field that is not nullable in this version was null.
    #[error("{0} is null but not nullable in this version")]
    UnexpectedNull(&'static str),
    /// The version is outside what the codec knows for this message.
    #[error("version {version} of {what} is not supported (codec knows {min}-{max})")]
    UnsupportedVersion {
        /// The message.
        what: &'static str,
        /// The version asked for.
        version: i16,
        /// Lowest known version.
        min: i16,
        /// Highest known version.
        max: i16,
    },
    /// Something else is wrong with the bytes.
    #[error("{0}")]
    Invalid(String),
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field holds null in a version where it cannot be null.
    #[error("{field} cannot be null in version {version}")]
    NullNotAllowed {
        /// The struct and field.
        field: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// A string, bytes or array is longer than its length prefix can say.
    #[error("value of {0} bytes or elements is too long for its length prefix")]
    TooLong(usize),
    /// The version is outside what the codec knows for this message.
    #[error("version {version} of {what} is not supported (codec knows {min}-{max})")]
    UnsupportedVersion {
        /// The message.
        what: &'static str,
        /// The version asked for.
        version: i16,
        /// Lowest known version.
        min: i16,
        /// Highest known version.
        max: i16,
    },
}

/// Reads Kafka primitives from the front of a [`Bytes`], zero-copy for byte fields.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

macro_rules! fixed_reads {
    ($($name:ident: $ty:ty = $get:ident;)*) => {$(
        /// Reads a big-endian value.
        pub fn $name(&mut self) -> Result<$ty, DecodeError> {
            self.need(std::mem::size_of::<$ty>())?;
            Ok(self.buf.$get())
        }
    )*};
}

impl Reader {
    /// A reader over `buf`.
    pub fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// What is left, consuming the reader.
    pub fn into_rest(self) -> Bytes {
        self.buf
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                needed: n,
                left: self.buf.len(),
            });
        }
        Ok(())
    }

    fixed_reads! {
        i8: i8 = get_i8;
        i16: i16 = get_i16;
        i32: i32 = get_i32;
        i64: i64 = get_i64;
        u16: u16 = get_u16;
        u32: u32 = get_u32;
        f64: f64 = get_f64;
    }

    /// A boolean: any non-zero byte is true, as Kafka reads it.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.i8()? != 0)
    }

    /// A 16-byte UUID.
    pub fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        self.need(16)?;
        let mut raw = [0u8; 16];
        self.buf.copy_to_slice(&mut raw);
        Ok(Uuid::from_bytes(raw))
    }

    /// An unsigned varint of at most 5 bytes (32 bits).
    pub fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for i in 0..5 {
            let byte = self.u8()?;
            let bits = u32::from(byte & 0x7f);
            if i == 4 && bits > 0x0f {
                return Err(DecodeError::VarintTooLong(5));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong(5))
    }

    /// A zig-zag signed varint (32 bits).
    pub fn varint(&mut self) -> Result<i32, DecodeError> {
        let raw = self.uvarint()?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zig-zag signed varlong (64 bits, at most 10 bytes).
    pub fn varlong(&mut self) -> Result<i64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 0x01 {
                return Err(DecodeError::VarintTooLong(10));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(DecodeError::VarintTooLong(10))
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    /// The next `n` bytes, zero-copy.
    pub fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// A length prefix: `None` for null, else a length that fits in what is left.
    fn length(&mut self, flexible: bool, short: bool) -> Result<Option<usize>, DecodeError> {
        let raw: i64 = if flexible {
            i64::from(self.uvarint()?) - 1
        } else if short {
            i64::from(self.i16()?)
        } else {
            i64::from(self.i32()?)
        };
        match raw {
            -1 => Ok(None),
            n if n < 0 || n as u64 > self.buf.len() as u64 => Err(DecodeError::InvalidLength(n)),
            n => Ok(Some(n as usize)),
        }
    }

    /// A (nullable) string: `None` for null.
    pub fn string(&mut self, flexible: bool) -> Result<Option<String>, DecodeError> {
        let Some(len) = self.length(flexible, true)? else {
            return Ok(None);
        };
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| DecodeError::InvalidUtf8)
    }

    /// (Nullable) bytes, zero-copy: `None` for null.
    pub fn bytes(&mut self, flexible: bool) -> Result<Option<Bytes>, DecodeError> {
        let Some(len) = self.length(flexible, false)? else {
            return Ok(None);
        };
        self.take(len).map(Some)
    }

    /// An array's element count: `None` for null. The count never exceeds
    /// the bytes left, since every element takes at least one byte.
    pub fn array_len(&mut self, flexible: bool) -> Result<Option<usize>, DecodeError> {
        self.length(flexible, false)
    }

    /// The body of one tagged field (its size prefix read and checked), as a
    /// reader of its own; the outer reader moves past it.
    pub fn sub_reader(&mut self) -> Result<Reader, DecodeError> {
        let size = self.uvarint()? as usize;
        Ok(Reader::new(self.take(size)?))
    }
}

/// Writes Kafka primitives. Large `records` fields are kept as shared
/// slices; [`Writer::into_chunks`] hands the whole encoding back as a list of
/// buffers for vectored I/O, [`Writer::into_bytes`] as one buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: BytesMut,
    /// Finished chunks before `buf`, in order.
    chunks: Vec<Bytes>,
    /// Bytes in `chunks`.
    chunked: usize,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(capacity),
            ..Self::default()
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.chunked + self.buf.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoding as buffers in order; record slices are not copied.
    pub fn into_chunks(mut self) -> Vec<Bytes> {
        if !self.buf.is_empty() {
            self.chunks.push(self.buf.freeze());
        }
        self.chunks
    }

    /// The encoding as one buffer (copies shared record slices, if any).
    pub fn into_bytes(self) -> Bytes {
        self.into_bytes_mut().freeze()
    }

    /// The encoding as one mutable buffer (copies shared record slices, if
    /// any), for callers that patch it in place.
    pub fn into_bytes_mut(self) -> BytesMut {
        if self.chunks.is_empty() {
            return self.buf;
        }
        let mut all = BytesMut::with_capacity(self.len());
        for chunk in self.into_chunks() {
            all.put_slice(&chunk);
        }
        all
    }

    /// Appends raw bytes.
    pub fn put_slice(&mut self, bytes: &[u8]) {
        self.buf.put_slice(bytes);
    }

    /// Appends `bytes` without copying them when they are large.
    pub fn put_shared(&mut self, bytes: Bytes) {
        if bytes.len() < SHARED_RECORDS_MIN_BYTES {
            self.buf.put_slice(&bytes);
            return;
        }
        if !self.buf.is_empty() {
            let head = self.buf.split().freeze();
            self.chunked += head.len();
            self.chunks.push(head);
        }
        self.chunked += bytes.len();
        self.chunks.push(bytes);
    }

    /// A boolean as one byte.
    pub fn put_bool(&mut self, v: bool) {
        self.buf.put_u8(u8::from(v));
    }
    /// A big-endian i8.
    pub fn put_i8(&mut self, v: i8) {
        self.buf.put_i8(v);
    }
    /// A big-endian i16.
    pub fn put_i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }
    /// A big-endian i32.
    pub fn put_i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }
    /// A big-endian i64.
    pub fn put_i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }
    /// A big-endian u16.
    pub fn put_u16(&mut self, v: u16) {
        self.buf.put_u16(v);
    }
    /// A big-endian u32.
    pub fn put_u32(&mut self, v: u32) {
        self.buf.put_u32(v);
    }
    /// A big-endian f64.
    pub fn put_f64(&mut self, v: f64) {
        self.buf.put_f64(v);
    }
    /// A 16-byte UUID.
    pub fn put_uuid(&mut self, v: &Uuid) {
        self.buf.put_slice(v.as_bytes());
    }

    /// An unsigned varint.
    pub fn put_uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    /// A zig-zag signed varint.
    pub fn put_varint(&mut self, v: i32) {
        self.put_uvarint(((v << 1) ^ (v >> 31)) as u32);
    }

    /// A zig-zag signed varlong.
    pub fn put_varlong(&mut self, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            self.buf.put_u8((z as u8) | 0x80);
            z >>= 7;
        }
        self.buf.put_u8(z as u8);
    }

    fn put_length(
        &mut self,
        len: Option<usize>,
        flexible: bool,
        short: bool,
    ) -> Result<(), EncodeError> {
        match (len, flexible) {
            (None, true) => self.put_uvarint(0),
            (None, false) if short => self.put_i16(-1),
            (None, false) => self.put_i32(-1),
            (Some(n), true) => {
                let n1 = u32::try_from(n).ok().and_then(|n| n.checked_add(1));
                self.put_uvarint(n1.ok_or(EncodeError::TooLong(n))?);
            }
            (Some(n), false) if short => {
                self.put_i16(i16::try_from(n).map_err(|_| EncodeError::TooLong(n))?)
            }
            (Some(n), false) => {
                self.put_i32(i32::try_from(n).map_err(|_| EncodeError::TooLong(n))?)
            }
        }
        Ok(())
    }

    /// A non-null string.
    pub fn put_string(&mut self, s: &str, flexible: bool) -> Result<(), EncodeError> {
        self.put_length(Some(s.len()), flexible, true)?;
        self.buf.put_slice(s.as_bytes());
        Ok(())
    }

    /// A null string.
    pub fn put_null_string(&mut self, flexible: bool) {
        // A null length always fits.
        let _ = self.put_length(None, flexible, true);
    }

    /// Non-null bytes.
    pub fn put_bytes(&mut self, b: &[u8], flexible: bool) -> Result<(), EncodeError> {
        self.put_length(Some(b.len()), flexible, false)?;
        self.buf.put_slice(b);
        Ok(())
    }

    /// Null bytes.
    pub fn put_null_bytes(&mut self, flexible: bool) {
        let _ = self.put_length(None, flexible, false);
    }

    /// A `records` field: its length, then the batches, shared rather than
    /// copied when large.
    pub fn put_records(
        &mut self,
        records: Option<&Bytes>,
        flexible: bool,
    ) -> Result<(), EncodeError> {
        match records {
            None => self.put_length(None, flexible, false),
            Some(bytes) => {
                self.put_length(Some(bytes.len()), flexible, false)?;
                self.put_shared(bytes.clone());
                Ok(())
            }
        }
    }

    /// An array's element count (`None` for null).
    pub fn put_array_len(&mut self, len: Option<usize>, flexible: bool) -> Result<(), EncodeError> {
        self.put_length(len, flexible, false)
    }

    /// A tagged-fields section: the count, then each field's tag, size and
    /// body, in tag order (the caller passes them sorted).
    pub fn put_tagged_fields(&mut self, fields: Vec<(u32, Writer)>) -> Result<(), EncodeError> {
        let count = u32::try_from(fields.len()).map_err(|_| EncodeError::TooLong(fields.len()))?;
        self.put_uvarint(count);
        for (tag, body) in fields {
            self.put_uvarint(tag);
            let body = body.into_bytes();
            let size = u32::try_from(body.len()).map_err(|_| EncodeError::TooLong(body.len()))?;
            self.put_uvarint(size);
            self.buf.put_slice(&body);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_their_edges() {
        for v in [0i32, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut w = Writer::new();
            w.put_varint(v);
            assert_eq!(Reader::new(w.into_bytes()).varint(), Ok(v));
        }
        for v in [0i64, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut w = Writer::new();
            w.put_varlong(v);
            assert_eq!(Reader::new(w.into_bytes()).varlong(), Ok(v));
        }
        for v in [0u32, 127, 128, u32::MAX] {
            let mut w = Writer::new();
            w.put_uvarint(v);
            assert_eq!(Reader::new(w.into_bytes()).uvarint(), Ok(v));
        }
    }

    #[test]
    fn overlong_varints_are_refused() {
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
        assert_eq!(r.uvarint(), Err(DecodeError::VarintTooLong(5)));
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x1f]));
        assert_eq!(r.uvarint(), Err(DecodeError::VarintTooLong(5)));
    }

    #[test]
    fn counts_larger_than_the_input_are_refused_before_allocating() {
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]));
        assert_eq!(
            r.array_len(false),
            Err(DecodeError::InvalidLength(i32::MAX as i64))
        );
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]));
        assert!(r.array_len(true).is_err());
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xfe]));
        assert_eq!(r.string(false), Err(DecodeError::InvalidLength(-2)));
    }

    #[test]
    fn large_records_are_shared_not_copied() {
        let records = Bytes::from(vec![7u8; 4096]);
        let mut w = Writer::new();
        w.put_i32(1);
        w.put_records(Some(&records), false).unwrap_or_default();
        w.put_i16(2);
        let chunks = w.into_chunks();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].as_ptr(), records.as_ptr());
    }
}
