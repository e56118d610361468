//! Sealed segments: metadata in memory, files opened and mapped on demand
//! through a bounded cache (DESIGN §3, "Resource model"; principle 7: open
//! files and mappings grow with active partitions and recently read
//! segments, not with segments on disk).
//!
//! A [`SealedSegment`] is what the log keeps for every segment but the active
//! one: its paths, size, offsets, largest timestamp and last-append time. It
//! holds no file descriptor and no mapping. A read or an index lookup asks the
//! [`SegmentCache`] (one per `LogManager`, shared by its partitions) for the
//! segment's [`OpenSealed`]: the `.log` mapped at its exact length and both
//! indexes mapped read-only. Opening maps each file and closes its descriptor
//! at once (a mapping outlives its descriptor), so a cached segment costs up
//! to three mappings and no descriptor.
//!
//! Invariants:
//! - The cache holds at most `capacity` open segments; opening one more
//!   evicts the least recently used. Eviction only drops the cache's
//!   reference: reads in flight hold an `Arc<OpenSealed>`, and `Bytes` slices
//!   handed to fetches hold the `.log` mapping (`Bytes::from_owner`), so
//!   nothing a reader holds is ever unmapped under it.
//! - A sealed segment's files are never written again, so a mapping made at
//!   any time sees exactly the bytes the segment was sealed with.
//! - The cleaner replaces sealed segments by new files under the first
//!   source's name. It retires the sources first ([`SealedSegment::retire`]),
//!   then changes files; an open that finds its segment retired *after*
//!   mapping returns [`StorageError::SegmentReplaced`] (the mapping may be of
//!   the new file, with the old length), so the reader looks the offset up
//!   again in the new segment list. One that finds it live mapped the old
//!   files, which stay valid after they are unlinked.
//! - Deleting a sealed segment (retention) evicts it first and works whether
//!   or not it is cached; dropping one (its partition closed or deleted)
//!   evicts it too, so the cache never holds a segment no log knows.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::basics::lock;
use crate::error::StorageError;
use crate::storage::index::{MappedIndex, OffsetEntry, TimeEntry};
use crate::storage::recovery::SegmentFiles;
use crate::storage::segment::{find_timestamp, map_bytes, read_batches, Segment, SegmentSlice};

/// Ids of sealed segments in every cache of the process (unique, never reused).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The files of a sealed segment, mapped read-only (no descriptor held).
pub struct OpenSealed {
    /// The `.log`, mapped at the segment's length (empty for an empty segment).
    log: Bytes,
    index: MappedIndex<OffsetEntry>,
    time_index: MappedIndex<TimeEntry>,
}

impl OpenSealed {
    /// Maps the first `len` bytes of the segment's `.log` and its indexes.
    fn open(files: &SegmentFiles, len: u64) -> Result<Self, StorageError> {
        let log = if len == 0 {
            Bytes::new()
        } else {
            let file =
                File::open(&files.log).map_err(|e| StorageError::io("open", &files.log, e))?;
            // The descriptor is closed when `file` drops; the mapping stays.
            map_bytes(&file, len).map_err(|e| StorageError::io("map", &files.log, e))?
        };
        let index = MappedIndex::open(&files.index)
            .map_err(|e| StorageError::io("open index", &files.index, e))?;
        let time_index = MappedIndex::open(&files.time_index)
            .map_err(|e| StorageError::io("open index", &files.time_index, e))?;
        Ok(Self {
            log,
            index,
            time_index,
        })
    }
}

/// A bounded LRU cache of open sealed segments, shared by every partition of
/// a `LogManager` (a partition opened on its own gets its own).
pub struct SegmentCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
    opens: AtomicU64,
}

#[derive(Default)]
struct CacheInner {
    /// Bumped on every use; the entry with the smallest tick is evicted first.
    tick: u64,
    entries: HashMap<u64, CachedSegment>,
    /// tick → segment id, oldest use first.
    order: BTreeMap<u64, u64>,
}

struct CachedSegment {
    open: Arc<OpenSealed>,
    tick: u64,
}

impl SegmentCache {
    /// A cache holding at most `capacity` (at least 1) open sealed segments.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(CacheInner::default()),
            opens: AtomicU64::new(0),
        }
    }

    /// Most sealed segments held open at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sealed segments open now.
    pub fn len(&self) -> usize {
        lock(&self.inner).entries.len()
    }

    /// True when no sealed segment is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times a sealed segment was opened (cache misses), since start.
    pub fn opens(&self) -> u64 {
        self.opens.load(Ordering::Relaxed)
    }

    /// The open segment `id`, opening it with `open` on a miss (outside the
    /// lock: opening maps files) and evicting the least recently used beyond
    /// the capacity.
    fn get_or_open(
        &self,
        id: u64,
        open: impl FnOnce() -> Result<OpenSealed, StorageError>,
    ) -> Result<Arc<OpenSealed>, StorageError> {
        if let Some(open) = lock(&self.inner).touch(id) {
            return Ok(open);
        }
        let opened = Arc::new(open()?);
        self.opens.fetch_add(1, Ordering::Relaxed);
        let mut evicted = Vec::new();
        let open = {
            let mut inner = lock(&self.inner);
            // Another reader may have opened it meanwhile: keep one copy.
            match inner.touch(id) {
                Some(theirs) => theirs,
                None => {
                    inner.tick += 1;
                    let tick = inner.tick;
                    inner.order.insert(tick, id);
                    inner.entries.insert(
                        id,
                        CachedSegment {
                            open: Arc::clone(&opened),
                            tick,
                        },
                    );
                    while inner.entries.len() > self.capacity {
                        let Some((_, oldest)) = inner.order.pop_first() else {
                            break;
                        };
                        if let Some(entry) = inner.entries.remove(&oldest) {
                            evicted.push(entry.open);
                        }
                    }
                    opened
                }
            }
        };
        // Unmapping happens here, outside the lock (unless a reader still holds it).
        drop(evicted);
        Ok(open)
    }

    /// Drops the cache's reference to segment `id`, if it holds one.
    fn evict(&self, id: u64) {
        let removed = {
            let mut inner = lock(&self.inner);
            let removed = inner.entries.remove(&id);
            if let Some(entry) = &removed {
                inner.order.remove(&entry.tick);
            }
            removed
        };
        drop(removed);
    }
}

impl CacheInner {
    /// The cached segment `id`, marked as just used.
    fn touch(&mut self, id: u64) -> Option<Arc<OpenSealed>> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.get_mut(&id)?;
        self.order.remove(&entry.tick);
        self.order.insert(tick, id);
        entry.tick = tick;
        Some(Arc::clone(&entry.open))
    }
}

/// A sealed segment: what the log knows of it in memory, its files opened
/// on demand through the [`SegmentCache`].
pub struct SealedSegment {
    id: u64,
    files: SegmentFiles,
    size: u64,
    next_offset: i64,
    max_timestamp: i64,
    last_append_ms: i64,
    cache: Arc<SegmentCache>,
    /// Set once the cleaner has replaced this segment's files.
    retired: AtomicBool,
}

impl SealedSegment {
    /// A sealed segment of `size` bytes whose files are valid (after
    /// recovery); its last-append time is read from the `.log`'s
    /// modification time (a `stat`, no descriptor).
    pub(crate) fn new(
        files: SegmentFiles,
        size: u64,
        next_offset: i64,
        max_timestamp: i64,
        cache: Arc<SegmentCache>,
    ) -> Self {
        let last_append_ms = crate::storage::segment::path_modified_ms(&files.log);
        Self::with_last_append(
            files,
            size,
            next_offset,
            max_timestamp,
            last_append_ms,
            cache,
        )
    }

    /// The sealed form of a segment that was just sealed (a roll).
    pub(crate) fn from_segment(segment: &Segment, cache: Arc<SegmentCache>) -> Self {
        Self::with_last_append(
            segment.files().clone(),
            segment.size(),
            segment.next_offset(),
            segment.max_timestamp(),
            segment.last_append_ms(),
            cache,
        )
    }

    fn with_last_append(
        files: SegmentFiles,
        size: u64,
        next_offset: i64,
        max_timestamp: i64,
        last_append_ms: i64,
        cache: Arc<SegmentCache>,
    ) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            files,
            size,
            next_offset,
            max_timestamp,
            last_append_ms,
            cache,
            retired: AtomicBool::new(false),
        }
    }

    /// Offset of the segment's first batch.
    pub fn base_offset(&self) -> i64 {
        self.files.base_offset
    }

    /// The segment's files.
    pub fn files(&self) -> &SegmentFiles {
        &self.files
    }

    /// Bytes in the `.log`.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Offset after the last batch.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Largest batch timestamp in the segment, `i64::MIN` when empty.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// The broker's clock at the segment's last append, ms since the epoch.
    pub fn last_append_ms(&self) -> i64 {
        self.last_append_ms
    }

    fn open(&self) -> Result<Arc<OpenSealed>, StorageError> {
        let replaced = || StorageError::SegmentReplaced {
            file: self.files.log.clone(),
        };
        if self.retired.load(Ordering::SeqCst) {
            return Err(replaced());
        }
        self.cache.get_or_open(self.id, || {
            let opened = OpenSealed::open(&self.files, self.size);
            // Checked after every file is mapped: still live means every
            // open happened before the cleaner touched a file.
            if self.retired.load(Ordering::SeqCst) {
                return Err(replaced());
            }
            opened
        })
    }

    /// Marks the segment as replaced by the cleaner and drops the cache's
    /// mapping, before any of its files change. Readers holding slices keep
    /// their bytes; later opens fail with [`StorageError::SegmentReplaced`].
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.cache.evict(self.id);
    }

    /// Undoes [`SealedSegment::retire`]: a swap failed before its commit
    /// point, so the segment's files are still the ones it describes.
    pub(crate) fn revive(&self) {
        self.retired.store(false, Ordering::SeqCst);
    }

    /// Reads whole batches starting with the one that contains `offset` (as
    /// [`Segment::read`]), opening the segment through the cache.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Option<SegmentSlice>, StorageError> {
        let open = self.open()?;
        Ok(read_batches(
            &open.log,
            open.log.len().min(self.size as usize),
            self.base_offset(),
            |relative| open.index.floor(relative),
            offset,
            max_bytes,
        ))
    }

    /// The first record at or after `timestamp` (as
    /// [`Segment::offset_for_timestamp`]), opening the segment through the cache.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let open = self.open()?;
        let readable = &open.log[..open.log.len().min(self.size as usize)];
        Ok(find_timestamp(
            readable,
            open.time_index.floor(timestamp),
            |relative| open.index.floor(relative),
            timestamp,
        ))
    }

    /// Deletes the segment's files, cached or not. Readers holding slices
    /// keep their bytes.
    pub(crate) fn delete_files(&self) -> Result<(), StorageError> {
        self.cache.evict(self.id);
        delete_segment_files(&self.files)
    }
}

impl Drop for SealedSegment {
    fn drop(&mut self) {
        self.cache.evict(self.id);
    }
}

/// Removes a segment's three files; a file already gone is fine.
pub(crate) fn delete_segment_files(files: &SegmentFiles) -> Result<(), StorageError> {
    for path in [&files.log, &files.index, &files.time_index] {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("delete", path, e)),
        }
    }
    Ok(())
}

/// One segment of a partition log: the active one (open, appendable) or a
/// sealed one (opened on demand).
#[derive(Clone)]
pub(crate) enum LogSegment {
    /// The segment appends go to; its files stay open.
    Active(Arc<Segment>),
    /// A sealed segment, opened through the cache when read.
    Sealed(Arc<SealedSegment>),
}

impl LogSegment {
    /// Offset of the segment's first batch.
    pub(crate) fn base_offset(&self) -> i64 {
        match self {
            Self::Active(s) => s.base_offset(),
            Self::Sealed(s) => s.base_offset(),
        }
    }

    /// Bytes in the `.log`.
    pub(crate) fn size(&self) -> u64 {
        match self {
            Self::Active(s) => s.size(),
            Self::Sealed(s) => s.size(),
        }
    }

    /// Offset after the last batch.
    pub(crate) fn next_offset(&self) -> i64 {
        match self {
            Self::Active(s) => s.next_offset(),
            Self::Sealed(s) => s.next_offset(),
        }
    }

    /// Largest batch timestamp, `i64::MIN` when empty.
    pub(crate) fn max_timestamp(&self) -> i64 {
        match self {
            Self::Active(s) => s.max_timestamp(),
            Self::Sealed(s) => s.max_timestamp(),
        }
    }

    /// The broker's clock at the last append.
    pub(crate) fn last_append_ms(&self) -> i64 {
        match self {
            Self::Active(s) => s.last_append_ms(),
            Self::Sealed(s) => s.last_append_ms(),
        }
    }

    /// The active segment, if this is it.
    pub(crate) fn as_active(&self) -> Option<&Arc<Segment>> {
        match self {
            Self::Active(s) => Some(s),
            Self::Sealed(_) => None,
        }
    }

    /// Whole batches from the one containing `offset`.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Option<SegmentSlice>, StorageError> {
        match self {
            Self::Active(s) => Ok(s.read(offset, max_bytes)),
            Self::Sealed(s) => s.read(offset, max_bytes),
        }
    }

    /// The first record at or after `timestamp`.
    pub(crate) fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        match self {
            Self::Active(s) => Ok(s.offset_for_timestamp(timestamp)),
            Self::Sealed(s) => s.offset_for_timestamp(timestamp),
        }
    }

    /// Deletes the segment's files.
    pub(crate) fn delete_files(&self) -> Result<(), StorageError> {
        match self {
            Self::Active(s) => s.delete_files(),
            Self::Sealed(s) => s.delete_files(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_open() -> Result<OpenSealed, StorageError> {
        Ok(OpenSealed {
            log: Bytes::new(),
            index: MappedIndex::empty(),
            time_index: MappedIndex::empty(),
        })
    }

    #[test]
    fn given_full_cache_when_another_segment_opens_then_least_recently_used_is_evicted() {
        let cache = SegmentCache::new(2);
        let first = cache.get_or_open(1, empty_open).unwrap();
        cache.get_or_open(2, empty_open).unwrap();
        // Use 1 again: 2 is now the least recently used.
        cache.get_or_open(1, || panic!("1 is cached")).unwrap();
        cache.get_or_open(3, empty_open).unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.opens(), 3);
        cache.get_or_open(1, || panic!("1 stays cached")).unwrap();
        let mut reopened = false;
        cache
            .get_or_open(2, || {
                reopened = true;
                empty_open()
            })
            .unwrap();
        assert!(reopened, "2 was evicted");
        assert_eq!(cache.len(), 2);
        // An evicted segment a reader still holds stays usable.
        assert!(first.log.is_empty());
    }

    #[test]
    fn given_cached_segment_when_evicted_then_cache_forgets_it() {
        let cache = SegmentCache::new(4);
        cache.get_or_open(7, empty_open).unwrap();
        cache.evict(7);
        cache.evict(8);
        assert!(cache.is_empty());
    }
}
