//! One open segment: a `.log` file of record batches, memory-mapped for
//! reads, with its offset and time indexes. A partition keeps only its
//! active segment open this way; sealed segments are described in memory and
//! mapped on demand (`storage::sealed`), sharing the read and lookup
//! functions at the end of this file.
//!
//! Invariants:
//! - Bytes below `readable_len` are whole, valid batches that are never
//!   rewritten while the segment is open: readers get zero-copy `Bytes` slices
//!   of the mapping and may keep them after the segment is deleted.
//! - Appends go through `pwrite` into space reserved with `fallocate`
//!   (`FALLOC_FL_KEEP_SIZE`, so the file length is always the written length
//!   and a crash leaves no run of preallocated zeros to interpret). On a full
//!   disk the reservation fails with ENOSPC before a byte is written.
//! - The mapping may extend past the end of the file; nothing reads past
//!   `readable_len`, which never exceeds the file length, so no SIGBUS.
//! - `last_append_ms` is the broker's clock at the segment's last append
//!   (never a record timestamp). It survives restarts as the `.log` file's
//!   modification time: every append's `pwrite` moves it, sealing stamps it
//!   explicitly, and opening reads it back. Time retention ages a segment
//!   from it (`storage::retention`).
#![allow(unsafe_code)] // memory-mapped segment files; each block says why it is sound

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use memmap2::{Mmap, MmapOptions};
use rustix::fs::FallocateFlags;

use crate::basics::{now_ms, read_lock, write_lock};
use crate::error::StorageError;
use crate::storage::batch::{patch_header, BatchHeader, BatchIter};
use crate::storage::index::{IndexCadence, OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};
use crate::storage::recovery::SegmentFiles;
use crate::storage::sealed::{LogSegment, SealedSegment, SegmentCache};

/// Maps `len` bytes of `file` read-only.
pub fn map_file(file: &File, len: usize) -> io::Result<Mmap> {
    // SAFETY: segment and index files are only modified by this process, by
    // appending past the bytes anyone reads; recovery truncation happens before
    // a segment is opened for reading. A mapping longer than the file is
    // allowed; callers only touch bytes below the file length.
    unsafe { MmapOptions::new().len(len).map(file) }
}

/// Batches found by [`Segment::read`]: whole batches, zero-copy.
#[derive(Debug, Clone)]
pub struct SegmentSlice {
    /// The batch bytes, exactly as stored.
    pub bytes: Bytes,
    /// Offset after the last batch in `bytes`.
    pub next_offset: i64,
}

/// A segment open for reading, and for appending while it is the active one.
pub struct Segment {
    files: SegmentFiles,
    log: File,
    map: RwLock<Bytes>,
    readable_len: AtomicU64,
    written_len: AtomicU64,
    next_offset: AtomicI64,
    max_timestamp: AtomicI64,
    last_append_ms: AtomicI64,
    index: RwLock<OffsetIndex>,
    time_index: RwLock<TimeIndex>,
}

impl Segment {
    /// Opens a segment whose files are valid (after recovery). `index_max_bytes`
    /// makes its indexes appendable with that much room (the active segment);
    /// their existing files must hold exactly their entries (sealed or rebuilt).
    pub(crate) fn open(
        files: SegmentFiles,
        log_len: u64,
        next_offset: i64,
        max_timestamp: i64,
        map_len: u64,
        index_max_bytes: Option<u64>,
    ) -> Result<Self, StorageError> {
        let (index, time_index) = match index_max_bytes {
            Some(max) => (
                OffsetIndex::open_writable(&files.index, max)
                    .map_err(|e| StorageError::io("open index", &files.index, e))?,
                TimeIndex::open_writable(&files.time_index, time_index_bytes(max))
                    .map_err(|e| StorageError::io("open index", &files.time_index, e))?,
            ),
            None => (
                OffsetIndex::open_read_only(&files.index)
                    .map_err(|e| StorageError::io("open index", &files.index, e))?,
                TimeIndex::open_read_only(&files.time_index)
                    .map_err(|e| StorageError::io("open index", &files.time_index, e))?,
            ),
        };
        Self::assemble(
            files,
            log_len,
            next_offset,
            max_timestamp,
            map_len,
            index,
            time_index,
        )
    }

    /// Creates an empty segment with writable indexes.
    pub(crate) fn create(
        files: SegmentFiles,
        map_len: u64,
        index_max_bytes: u64,
    ) -> Result<Self, StorageError> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&files.log)
            .map_err(|e| StorageError::io("create", &files.log, e))?;
        let index = OffsetIndex::create_writable(&files.index, index_max_bytes, &[])
            .map_err(|e| StorageError::io("create index", &files.index, e))?;
        let time_index =
            TimeIndex::create_writable(&files.time_index, time_index_bytes(index_max_bytes), &[])
                .map_err(|e| StorageError::io("create index", &files.time_index, e))?;
        let base = files.base_offset;
        Self::assemble(files, 0, base, i64::MIN, map_len, index, time_index)
    }

    fn assemble(
        files: SegmentFiles,
        log_len: u64,
        next_offset: i64,
        max_timestamp: i64,
        map_len: u64,
        index: OffsetIndex,
        time_index: TimeIndex,
    ) -> Result<Self, StorageError> {
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&files.log)
            .map_err(|e| StorageError::io("open", &files.log, e))?;
        let map = map_bytes(&log, map_len.max(log_len))
            .map_err(|e| StorageError::io("map", &files.log, e))?;
        let last_append_ms = modified_ms(&log);
        Ok(Self {
            files,
            log,
            map: RwLock::new(map),
            readable_len: AtomicU64::new(log_len),
            written_len: AtomicU64::new(log_len),
            next_offset: AtomicI64::new(next_offset),
            max_timestamp: AtomicI64::new(max_timestamp),
            last_append_ms: AtomicI64::new(last_append_ms),
            index: RwLock::new(index),
            time_index: RwLock::new(time_index),
        })
    }

    /// Offset of the segment's first batch.
    pub fn base_offset(&self) -> i64 {
        self.files.base_offset
    }

    /// The segment's files.
    pub fn files(&self) -> &SegmentFiles {
        &self.files
    }

    /// Bytes written to the `.log`.
    pub fn size(&self) -> u64 {
        self.written_len.load(Ordering::Acquire)
    }

    /// Bytes readers may see.
    pub fn readable_len(&self) -> u64 {
        self.readable_len.load(Ordering::Acquire)
    }

    /// Offset after the last batch written.
    pub fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    /// Largest batch timestamp in the segment, `i64::MIN` when empty.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    /// The broker's clock, in ms since the epoch, at the segment's last
    /// append (at its creation while it has none). Record timestamps never
    /// affect it.
    pub fn last_append_ms(&self) -> i64 {
        self.last_append_ms.load(Ordering::Acquire)
    }

    /// Lets readers see the first `len` bytes (they are durable, or the flush
    /// policy acknowledges on append).
    pub(crate) fn publish(&self, len: u64) {
        self.readable_len.fetch_max(len, Ordering::AcqRel);
    }

    /// The `.log` file handle (for fdatasync).
    pub(crate) fn log_file(&self) -> &File {
        &self.log
    }

    /// Reads whole batches starting with the one that contains `offset` (or
    /// the first one after it, when `offset` is in a gap compaction left), at
    /// most `max_bytes` unless the first batch alone is larger (it is always
    /// returned whole). `None` when `offset` is past the readable batches.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Option<SegmentSlice> {
        let limit = self.readable_len() as usize;
        let map = read_lock(&self.map).clone();
        let index = read_lock(&self.index);
        read_batches(
            &map,
            limit,
            self.base_offset(),
            |relative| index.floor(relative),
            offset,
            max_bytes,
        )
    }

    /// The offset and timestamp of the first record with a timestamp at or
    /// after `timestamp` among the readable batches, or `None` if every record
    /// is older (see [`find_timestamp`]).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Option<(i64, i64)> {
        let limit = self.readable_len() as usize;
        let map = read_lock(&self.map).clone();
        let time_floor = read_lock(&self.time_index).floor(timestamp);
        let index = read_lock(&self.index);
        find_timestamp(
            map.get(..limit)?,
            time_floor,
            |relative| index.floor(relative),
            timestamp,
        )
    }

    /// Appends already-validated batches at byte `position`, stamping offsets
    /// from `base_offset` and the header fields `stamp` says (patched header
    /// prefixes, records untouched). Returns the offset after the last one and
    /// the new write position. The caller reserved the space.
    pub(crate) fn write_batches(
        &self,
        position: u64,
        batches: &[BatchHeader<'_>],
        base_offset: i64,
        stamp: AppendStamp,
        cadence: &mut IndexCadence,
    ) -> Result<(i64, u64), StorageError> {
        let log_append_time = stamp.log_append_time.then_some(stamp.now_ms);
        let mut next = base_offset;
        let mut prefixes = Vec::with_capacity(batches.len());
        for batch in batches {
            prefixes.push(patch_header(
                batch,
                next,
                stamp.leader_epoch,
                log_append_time,
            ));
            next += i64::from(batch.last_offset_delta()) + 1;
        }
        let mut slices = Vec::with_capacity(batches.len() * 2);
        for (batch, prefix) in batches.iter().zip(&prefixes) {
            let prefix = prefix.as_slice();
            slices.push(IoSlice::new(prefix));
            slices.push(IoSlice::new(&batch.bytes()[prefix.len()..]));
        }
        write_all_vectored_at(&self.log, &mut slices, position)
            .map_err(|e| StorageError::io("append to", &self.files.log, e))?;

        let mut at = position;
        let mut offset = base_offset;
        let mut index = write_lock(&self.index);
        let mut time_index = write_lock(&self.time_index);
        for batch in batches {
            let relative = (offset - self.base_offset()) as u32;
            let (offset_entry, time_entry) = cadence.on_batch(
                relative,
                at as u32,
                batch.total_len() as u64,
                log_append_time.unwrap_or_else(|| batch.max_timestamp()),
            );
            if let Some(entry) = offset_entry {
                index
                    .append(entry)
                    .map_err(|e| StorageError::io("grow index", &self.files.index, e))?;
            }
            if let Some(entry) = time_entry {
                time_index
                    .append(entry)
                    .map_err(|e| StorageError::io("grow index", &self.files.time_index, e))?;
            }
            at += batch.total_len() as u64;
            offset += i64::from(batch.last_offset_delta()) + 1;
        }
        drop((index, time_index));
        self.ensure_mapped(at)?;
        self.written_len.store(at, Ordering::Release);
        self.next_offset.store(next, Ordering::Release);
        self.max_timestamp
            .fetch_max(cadence.max_timestamp(), Ordering::AcqRel);
        // fetch_max: a wall clock stepping back never makes a segment look older.
        self.last_append_ms
            .fetch_max(stamp.now_ms, Ordering::AcqRel);
        Ok((next, at))
    }

    /// Reserves `[from, from + len)` of disk space without changing the file length.
    pub(crate) fn reserve(&self, from: u64, len: u64) -> Result<(), StorageError> {
        rustix::fs::fallocate(&self.log, FallocateFlags::KEEP_SIZE, from, len)
            .map_err(|e| StorageError::io("reserve space in", &self.files.log, e.into()))
    }

    /// Makes room in both indexes for `batches` more entries, so that an
    /// append of that many batches cannot fail on a full disk after its log
    /// bytes are written (see [`super::index::IndexFile::reserve_room`]).
    pub(crate) fn reserve_index_room(&self, batches: usize) -> Result<(), StorageError> {
        write_lock(&self.index)
            .reserve_room(batches)
            .map_err(|e| StorageError::io("reserve index space in", &self.files.index, e))?;
        write_lock(&self.time_index)
            .reserve_room(batches)
            .map_err(|e| StorageError::io("reserve index space in", &self.files.time_index, e))
    }

    /// True when the segment's indexes have no room for another entry.
    pub(crate) fn index_full(&self) -> bool {
        read_lock(&self.index).is_full() || read_lock(&self.time_index).is_full()
    }

    fn ensure_mapped(&self, len: u64) -> Result<(), StorageError> {
        if read_lock(&self.map).len() as u64 >= len {
            return Ok(());
        }
        let mut map = write_lock(&self.map);
        if map.len() as u64 >= len {
            return Ok(());
        }
        // Readers holding the old mapping keep it alive through their `Bytes`.
        *map = map_bytes(&self.log, len.next_power_of_two())
            .map_err(|e| StorageError::io("map", &self.files.log, e))?;
        Ok(())
    }

    /// Drops the page-cache pages of `[from, to)` of the log (they must be
    /// durable: dropping starts no write-back and loses nothing). A failure
    /// is only a missed hint and is ignored.
    pub(crate) fn drop_cached(&self, from: u64, to: u64) {
        if let Some(len) = to.checked_sub(from).and_then(std::num::NonZeroU64::new) {
            let _ = rustix::fs::fadvise(&self.log, from, Some(len), rustix::fs::Advice::DontNeed);
        }
    }

    /// Seals the segment: syncs the log, releases the space reserved past its
    /// end, trims and syncs its indexes, and remaps it at its exact length.
    pub(crate) fn seal(&self) -> Result<(), StorageError> {
        let len = self.size();
        self.log
            .sync_data()
            .map_err(|e| StorageError::io("fdatasync", &self.files.log, e))?;
        // Truncating to the current length frees the KEEP_SIZE reservation.
        self.log
            .set_len(len)
            .map_err(|e| StorageError::io("trim", &self.files.log, e))?;
        self.stamp_last_append();
        self.publish(len);
        write_lock(&self.index)
            .seal()
            .map_err(|e| StorageError::io("seal index", &self.files.index, e))?;
        write_lock(&self.time_index)
            .seal()
            .map_err(|e| StorageError::io("seal index", &self.files.time_index, e))?;
        if len > 0 {
            let exact = map_bytes(&self.log, len)
                .map_err(|e| StorageError::io("map", &self.files.log, e))?;
            *write_lock(&self.map) = exact;
        }
        Ok(())
    }

    /// The time entry and offset-index state a writer resumes from.
    pub(crate) fn last_time_entry(&self) -> Option<TimeEntry> {
        read_lock(&self.time_index).last()
    }

    /// The readable mapping (for resuming the index cadence on reopen).
    pub(crate) fn mapped(&self) -> Bytes {
        let limit = self.readable_len() as usize;
        let map = read_lock(&self.map).clone();
        map.slice(..limit.min(map.len()))
    }

    /// Deletes the segment's files. Readers holding slices keep their bytes.
    pub(crate) fn delete_files(&self) -> Result<(), StorageError> {
        for path in [&self.files.log, &self.files.index, &self.files.time_index] {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("delete", path, e)),
            }
        }
        Ok(())
    }
}

impl Segment {
    /// Persists `last_append_ms` as the `.log` modification time (the trim in
    /// [`Segment::seal`] may have moved it). Best effort: if the file system
    /// refuses, the segment ages from its last write instead, which is no
    /// earlier than its last append, so retention keeps it longer, never shorter.
    fn stamp_last_append(&self) {
        let last_append = u64::try_from(self.last_append_ms()).unwrap_or(0);
        let time = UNIX_EPOCH + Duration::from_millis(last_append);
        if let Err(error) = self.log.set_modified(time) {
            tracing::warn!(segment = %self.files.log.display(), %error, "could not record the last append time as the segment's modification time");
        }
    }
}

/// What the broker stamps on the batches of one append.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendStamp {
    /// Leader epoch written into every batch.
    pub leader_epoch: i32,
    /// The broker's clock at the append, ms since the epoch: the segment's
    /// last-append time, and the LogAppendTime if stamped.
    pub now_ms: i64,
    /// Stamp `now_ms` as every batch's LogAppendTime (`maxTimestamp`,
    /// timestamp-type bit, recomputed CRC).
    pub log_append_time: bool,
}

/// A file's modification time in ms since the epoch; the broker's clock now
/// if the file system cannot tell (a segment then counts as just written:
/// retention keeps it longer, never shorter).
fn modified_ms(file: &File) -> i64 {
    metadata_modified_ms(file.metadata())
}

/// [`modified_ms`] of the file at `path` (a `stat`: no descriptor is opened).
pub(crate) fn path_modified_ms(path: &std::path::Path) -> i64 {
    metadata_modified_ms(std::fs::metadata(path))
}

fn metadata_modified_ms(metadata: io::Result<std::fs::Metadata>) -> i64 {
    metadata
        .and_then(|m| m.modified())
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .and_then(|since| i64::try_from(since.as_millis()).ok())
        .unwrap_or_else(now_ms)
}

/// The time index gets room for as many entries as the offset index.
fn time_index_bytes(offset_index_bytes: u64) -> u64 {
    offset_index_bytes / 8 * 12
}

/// Maps `len` bytes of `file` (at least one page) as shared `Bytes`.
pub(crate) fn map_bytes(file: &File, len: u64) -> io::Result<Bytes> {
    let len = (len.max(1) as usize).next_multiple_of(page_size());
    Ok(Bytes::from_owner(map_file(file, len)?))
}

fn page_size() -> usize {
    rustix::param::page_size()
}

/// `pwritev` until every slice is written.
fn write_all_vectored_at(
    file: &File,
    mut slices: &mut [IoSlice<'_>],
    mut position: u64,
) -> io::Result<()> {
    // IOV_MAX on Linux.
    const MAX_IOVECS: usize = 1024;
    while !slices.is_empty() {
        let batch = slices.len().min(MAX_IOVECS);
        let written = rustix::io::pwritev(file, &slices[..batch], position)?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "pwritev wrote nothing",
            ));
        }
        position += written as u64;
        IoSlice::advance_slices(&mut slices, written);
    }
    Ok(())
}

/// Reads whole batches of `map` (its first `limit` bytes readable, its first
/// batch at `base_offset`) starting with the one that contains `offset`, at
/// most `max_bytes` unless the first batch alone is larger (it is always
/// returned whole); `floor` is the offset index's lookup by relative offset.
/// `None` when `offset` is past the readable batches. The slice shares the
/// mapping (zero-copy) and keeps it alive.
pub(crate) fn read_batches(
    map: &Bytes,
    limit: usize,
    base_offset: i64,
    floor: impl FnOnce(i64) -> Option<OffsetEntry>,
    offset: i64,
    max_bytes: usize,
) -> Option<SegmentSlice> {
    let readable = map.get(..limit)?;
    let start = position_of(readable, base_offset, floor, offset)?;
    let mut end = start;
    let mut next_offset = offset;
    for item in BatchIter::headers(&readable[start..]) {
        let Ok((_, header)) = item else { break };
        let batch_end = end + header.total_len();
        if end > start && batch_end - start > max_bytes {
            break;
        }
        end = batch_end;
        next_offset = header.last_offset() + 1;
    }
    (end > start).then(|| SegmentSlice {
        bytes: map.slice(start..end),
        next_offset,
    })
}

/// Byte position of the batch containing `offset`, or of the first batch
/// after it when `offset` falls in a gap that compaction left: from the
/// index entry at or below it, walk headers. Falls back to the segment start
/// if the index points somewhere that does not make sense.
fn position_of(
    readable: &[u8],
    base_offset: i64,
    floor: impl FnOnce(i64) -> Option<OffsetEntry>,
    offset: i64,
) -> Option<usize> {
    let hint = floor(offset - base_offset).map_or(0, |entry| entry.position as usize);
    walk_to(readable, hint, offset).or_else(|| {
        if hint > 0 {
            walk_to(readable, 0, offset)
        } else {
            None
        }
    })
}

fn walk_to(readable: &[u8], from: usize, offset: i64) -> Option<usize> {
    for (n, item) in BatchIter::headers(readable.get(from..)?).enumerate() {
        let (position, header) = item.ok()?;
        if header.last_offset() >= offset {
            // A batch that starts after `offset` is the next one after a gap,
            // unless the walk started at an index entry (which names a batch
            // at or below `offset`): then the index is doubtful.
            if n == 0 && from > 0 && header.base_offset() > offset {
                return None;
            }
            return Some(from + position);
        }
    }
    None
}

/// The offset and timestamp of the first record with a timestamp at or after
/// `timestamp` in `readable`, or `None` if every record is older.
/// `time_floor` is the time index's entry at or below `timestamp`, and
/// `floor` the offset index's lookup by relative offset: together they skip
/// ahead. Within an uncompressed batch the records are walked to find the
/// exact offset; a compressed batch answers with its base offset and largest
/// timestamp (the first batch that can hold a match).
pub(crate) fn find_timestamp(
    readable: &[u8],
    time_floor: Option<TimeEntry>,
    floor: impl FnOnce(i64) -> Option<OffsetEntry>,
    timestamp: i64,
) -> Option<(i64, i64)> {
    let start_relative = time_floor.map_or(0, |entry| i64::from(entry.relative_offset));
    let start = floor(start_relative).map_or(0, |entry| entry.position as usize);
    for item in BatchIter::headers(readable.get(start..)?) {
        let (_, header) = item.ok()?;
        if header.max_timestamp() >= timestamp {
            return Some(first_offset_at_or_after(&header, timestamp));
        }
    }
    None
}

/// The segment of a reopened log: the active one (`active` gives its mapping
/// length and index capacity) opened writable, a sealed one only described
/// (its files are opened on demand through `cache`).
pub(crate) fn open_planned(
    files: SegmentFiles,
    log_len: u64,
    next_offset: i64,
    max_timestamp: i64,
    active: Option<(u64, u64)>,
    cache: &Arc<SegmentCache>,
) -> Result<LogSegment, StorageError> {
    let Some((map_len, index_max)) = active else {
        return Ok(LogSegment::Sealed(Arc::new(SealedSegment::new(
            files,
            log_len,
            next_offset,
            max_timestamp,
            Arc::clone(cache),
        ))));
    };
    Segment::open(
        files,
        log_len,
        next_offset,
        max_timestamp,
        map_len,
        Some(index_max),
    )
    .map(|segment| LogSegment::Active(Arc::new(segment)))
}

/// Walks the records of an uncompressed batch to find the first whose
/// timestamp is at or after `timestamp`; otherwise the batch's base offset.
/// In a LogAppendTime batch every record's timestamp is the batch's
/// `maxTimestamp` (as Kafka reads it), so the batch answers as a whole.
fn first_offset_at_or_after(header: &BatchHeader<'_>, timestamp: i64) -> (i64, i64) {
    let whole_batch = (header.base_offset(), header.max_timestamp());
    if header.compression() != 0 || header.is_log_append_time() {
        return whole_batch;
    }
    let mut records = header.records();
    for _ in 0..header.record_count() {
        let Some(record) = RecordPrefix::parse(&mut records) else {
            break;
        };
        let record_timestamp = header.base_timestamp() + record.timestamp_delta;
        if record_timestamp >= timestamp {
            return (header.base_offset() + record.offset_delta, record_timestamp);
        }
    }
    whole_batch
}

/// The fields of a v2 record needed for time lookups.
struct RecordPrefix {
    timestamp_delta: i64,
    offset_delta: i64,
}

impl RecordPrefix {
    /// Reads one record (`length varint, attributes i8, timestampDelta varlong,
    /// offsetDelta varint, ...`) and advances `buf` past it.
    fn parse(buf: &mut &[u8]) -> Option<Self> {
        let length = read_varint(buf)?;
        let length = usize::try_from(length).ok()?;
        let body = buf.get(..length)?;
        *buf = &buf[length..];
        let mut body = body.get(1..)?; // attributes
        let timestamp_delta = read_varint(&mut body)?;
        let offset_delta = read_varint(&mut body)?;
        Some(Self {
            timestamp_delta,
            offset_delta,
        })
    }
}

/// Reads a zig-zag varint (up to 64 bits).
fn read_varint(buf: &mut &[u8]) -> Option<i64> {
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

/// Reopens the index cadence of a cleanly closed active segment: walk the
/// headers after its last index entry, adding any entry the index lacks.
pub(crate) fn resume_cadence(segment: &Segment, index_interval: u64) -> IndexCadence {
    let mut cadence = IndexCadence::resume(index_interval, segment.last_time_entry());
    let bytes = segment.mapped();
    let last_entry = read_lock(&segment.index).last();
    let start = last_entry.map_or(0, |entry| entry.position as usize);
    let mut index = write_lock(&segment.index);
    let mut time_index = write_lock(&segment.time_index);
    for (n, item) in BatchIter::headers(bytes.get(start..).unwrap_or(&[])).enumerate() {
        let Ok((position, header)) = item else { break };
        let relative = (header.base_offset() - segment.base_offset()) as u32;
        let len = header.total_len() as u64;
        if n == 0 && last_entry.is_some() {
            cadence.skip(relative, len, header.max_timestamp());
            continue;
        }
        let (offset_entry, time_entry) = cadence.on_batch(
            relative,
            (start + position) as u32,
            len,
            header.max_timestamp(),
        );
        // A failed growth leaves the entry out: the index is only a cache,
        // and a lookup walks from the previous entry.
        if let Some(entry) = offset_entry {
            let _ = index.append(entry);
        }
        if let Some(entry) = time_entry {
            let _ = time_index.append(entry);
        }
    }
    cadence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_varints_decode() {
        let mut buf: &[u8] = &[0x00, 0x01, 0x02, 0xac, 0x02];
        assert_eq!(read_varint(&mut buf), Some(0));
        assert_eq!(read_varint(&mut buf), Some(-1));
        assert_eq!(read_varint(&mut buf), Some(1));
        assert_eq!(read_varint(&mut buf), Some(150));
        assert_eq!(read_varint(&mut buf), None);
    }

    #[test]
    fn unterminated_varint_is_none() {
        let mut buf: &[u8] = &[0xff; 12];
        assert_eq!(read_varint(&mut buf), None);
    }
}
