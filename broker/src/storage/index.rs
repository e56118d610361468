//! Sparse, memory-mapped indexes beside each segment: the offset index
//! (`.index`, 8-byte entries: relative offset u32, byte position u32) and the
//! time index (`.timeindex`, 12-byte entries: timestamp i64, relative offset
//! u32), big-endian as in Kafka.
//!
//! Invariants: entries are strictly increasing in offset (and, for the time
//! index, in timestamp); every entry names the start of a batch in its
//! segment. An index is only a cache of facts in the `.log`: on any doubt it is
//! rebuilt from the segment, never trusted over it.
//!
//! The active segment's index file is reserved with `fallocate` before it is
//! mapped writable, so a full disk surfaces as an error instead of a SIGBUS on
//! a later store. Nothing is reserved or mapped until the first entry: an
//! idle partition's indexes are empty files that cost no disk blocks, and
//! opening a writable index never needs free space (so a full disk cannot
//! stop a partition from opening). The reservation then starts at one page
//! and doubles as entries arrive, up to the configured maximum.
//!
//! On a crash the active index may hold reserved zeros past its entries;
//! recovery rebuilds it from the `.log` (an index is only a cache).
#![allow(unsafe_code)] // memory-mapped index files; each block says why it is sound

use std::fs::{File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapMut, MmapOptions};
use rustix::fs::FallocateFlags;

/// One fixed-size index entry kind.
pub trait IndexEntry: Copy + std::fmt::Debug {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Decodes from exactly `SIZE` bytes.
    fn decode(bytes: &[u8]) -> Self;
    /// Encodes into exactly `SIZE` bytes.
    fn encode(&self, out: &mut [u8]);
    /// The relative offset the entry points at.
    fn relative_offset(&self) -> u32;
    /// The key entries are sorted by (offset for `.index`, timestamp for `.timeindex`).
    fn key(&self) -> i64;
}

/// `.index` entry: where (byte position) the batch starting at `relative_offset` begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Batch base offset minus the segment base offset.
    pub relative_offset: u32,
    /// Byte position of that batch in the `.log`.
    pub position: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn decode(bytes: &[u8]) -> Self {
        Self {
            relative_offset: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            position: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
    fn key(&self) -> i64 {
        i64::from(self.relative_offset)
    }
}

/// `.timeindex` entry: the batches up to and including `relative_offset` have
/// timestamps up to `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest timestamp seen so far in the segment.
    pub timestamp: i64,
    /// Base offset (relative) of the batch that carried it.
    pub relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn decode(bytes: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&bytes[..8]);
        Self {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
    fn key(&self) -> i64 {
        self.timestamp
    }
}

enum Mapping {
    /// No bytes mapped (an empty index, sealed or not yet grown).
    None,
    ReadOnly(Mmap),
    Writable(MmapMut),
}

impl Mapping {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::None => &[],
            Self::ReadOnly(map) => map,
            Self::Writable(map) => map,
        }
    }
}

/// First reservation of a writable index (made with its first entry); it
/// doubles when full.
const INITIAL_RESERVATION: u64 = 4 * 1024;

/// A memory-mapped index file of entries `E`. It holds no file descriptor:
/// a mapping outlives its descriptor, so the file is opened only to create,
/// grow or seal it (rare), and an idle partition's indexes cost no
/// descriptor (DESIGN §3, "Resource model").
pub struct IndexFile<E: IndexEntry> {
    path: PathBuf,
    map: Mapping,
    /// True for the active segment's index, which grows by appends.
    writable: bool,
    entries: usize,
    /// Largest size the file may grow to (a whole number of entries).
    max_bytes: u64,
    _entry: PhantomData<E>,
}

/// The offset index of a segment.
pub type OffsetIndex = IndexFile<OffsetEntry>;
/// The time index of a segment.
pub type TimeIndex = IndexFile<TimeEntry>;

impl<E: IndexEntry> IndexFile<E> {
    /// Creates (or replaces) a writable index with room for `max_bytes`,
    /// pre-filled with `entries`. Space is reserved with `fallocate` as
    /// entries arrive, before it is mapped; an index without entries is an
    /// empty file.
    pub fn create_writable(path: &Path, max_bytes: u64, entries: &[E]) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let mut index = Self::map_writable(path, &file, max_bytes, 0)?;
        drop(file);
        for entry in entries {
            if !index.append(*entry)? {
                return Err(io::Error::other(format!(
                    "{} entries do not fit an index of {max_bytes} bytes",
                    entries.len()
                )));
            }
        }
        Ok(index)
    }

    /// Reopens an existing, trusted index (its length is a whole number of
    /// entries) as the active segment's writable index. Reserves nothing: the
    /// existing entries are mapped as they are, room for more is reserved by
    /// the next append that needs it.
    pub fn open_writable(path: &Path, max_bytes: u64) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        let entries = (len / E::SIZE as u64) as usize;
        Self::map_writable(path, &file, max_bytes.max(len), entries)
    }

    fn map_writable(path: &Path, file: &File, max_bytes: u64, entries: usize) -> io::Result<Self> {
        let max_bytes = max_bytes - max_bytes % E::SIZE as u64;
        if max_bytes == 0 {
            return Err(io::Error::other("index capacity smaller than one entry"));
        }
        let needed = (entries * E::SIZE) as u64;
        let map = if needed == 0 {
            Mapping::None
        } else {
            // SAFETY: the file is ours (opened read-write by this process) and
            // at least `needed` bytes long (its entries); those bytes are only
            // read, and stores go to space a later `reserve_and_map` reserved.
            // Nothing truncates the file while the map is alive (`seal` drops
            // it first).
            Mapping::Writable(unsafe { MmapOptions::new().len(needed as usize).map_mut(file)? })
        };
        Ok(Self {
            path: path.to_path_buf(),
            map,
            writable: true,
            entries,
            max_bytes: max_bytes.max(needed),
            _entry: PhantomData,
        })
    }

    /// Opens a sealed index read-only. A trailing partial entry is ignored
    /// here; [`IndexFile::check`] reports it.
    pub fn open_read_only(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let entries = (len / E::SIZE as u64) as usize;
        let map = if len == 0 {
            Mapping::None
        } else {
            // SAFETY: sealed index files are never written again while open;
            // only this process modifies the data directory.
            Mapping::ReadOnly(unsafe { MmapOptions::new().len(len as usize).map(&file)? })
        };
        Ok(Self {
            path: path.to_path_buf(),
            map,
            writable: false,
            entries,
            max_bytes: len,
            _entry: PhantomData,
        })
    }

    /// Writes a complete sealed index atomically (temp file, fdatasync, rename)
    /// and opens it read-only. Used when an index is rebuilt.
    pub fn write_sealed(path: &Path, entries: &[E]) -> io::Result<Self> {
        let mut bytes = vec![0u8; entries.len() * E::SIZE];
        for (entry, out) in entries.iter().zip(bytes.chunks_exact_mut(E::SIZE)) {
            entry.encode(out);
        }
        crate::storage::checkpoint::write_atomically(path, &bytes)?;
        Self::open_read_only(path)
    }

    /// Path of the index file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// True when the index holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Entry `i` (must be `< len()`).
    pub fn entry(&self, i: usize) -> E {
        E::decode(&self.map.bytes()[i * E::SIZE..(i + 1) * E::SIZE])
    }

    /// The last entry, if any.
    pub fn last(&self) -> Option<E> {
        self.entries.checked_sub(1).map(|i| self.entry(i))
    }

    /// Appends an entry; `Ok(false)` when the index is at its maximum size (the
    /// segment should roll) or read-only. Grows the reservation (fallocate,
    /// then remap) when the current one is full, starting with one page.
    pub fn append(&mut self, entry: E) -> io::Result<bool> {
        let at = self.entries * E::SIZE;
        if self.is_full() {
            return Ok(false);
        }
        self.reserve_room(1)?;
        let Mapping::Writable(map) = &mut self.map else {
            return Ok(false);
        };
        entry.encode(&mut map[at..at + E::SIZE]);
        self.entries += 1;
        Ok(true)
    }

    /// Makes sure `more` entries can be appended without growing the file
    /// (as far as the maximum size allows), so a full disk fails here, before
    /// the segment's log is written, and not half-way through an append.
    /// Grows the reservation (fallocate, then remap), doubling from one page.
    pub fn reserve_room(&mut self, more: usize) -> io::Result<()> {
        if !self.writable {
            return Ok(());
        }
        let wanted = ((self.entries + more) * E::SIZE) as u64;
        let wanted = wanted.min(self.max_bytes - self.max_bytes % E::SIZE as u64);
        let mapped = self.map.bytes().len() as u64;
        if wanted <= mapped {
            return Ok(());
        }
        let grown = (mapped * 2)
            .max(INITIAL_RESERVATION)
            .max(wanted)
            .min(self.max_bytes);
        let grown = grown - grown % E::SIZE as u64;
        // Readers hold the index lock while they read, so swapping the
        // mapping here is not observed half-way.
        let file = self.open_file()?;
        self.map = Mapping::Writable(reserve_and_map(&file, grown)?);
        Ok(())
    }

    /// True when another entry would exceed the maximum size (or the index is read-only).
    pub fn is_full(&self) -> bool {
        !self.writable || ((self.entries + 1) * E::SIZE) as u64 > self.max_bytes
    }

    /// The last entry whose key is `<= key`, if any (binary search).
    pub fn floor(&self, key: i64) -> Option<E> {
        floor_in(self.map.bytes(), self.entries, key)
    }

    /// Checks the structural invariants an index must hold to be trusted: a
    /// whole number of entries, strictly increasing keys and offsets, and
    /// offsets that fit `max_relative_offset`. Returns why it cannot be trusted.
    pub fn check(&self, max_relative_offset: u32) -> Result<(), String> {
        let len = std::fs::metadata(&self.path)
            .map_err(|e| e.to_string())?
            .len();
        if !self.writable && len % E::SIZE as u64 != 0 {
            return Err(format!(
                "length {len} is not a multiple of the {}-byte entry size",
                E::SIZE
            ));
        }
        let mut previous: Option<E> = None;
        for i in 0..self.entries {
            let entry = self.entry(i);
            if entry.relative_offset() > max_relative_offset {
                return Err(format!(
                    "entry {i} points at relative offset {} past the segment's last {max_relative_offset}",
                    entry.relative_offset()
                ));
            }
            if let Some(prev) = previous {
                if entry.key() <= prev.key() || entry.relative_offset() < prev.relative_offset() {
                    return Err(format!(
                        "entry {i} is not increasing ({prev:?} then {entry:?})"
                    ));
                }
            }
            previous = Some(entry);
        }
        Ok(())
    }

    /// Flushes the entries, trims the file to them and reopens it read-only:
    /// the index of a sealed segment. Syncs the file so a later recovery can
    /// trust it.
    pub fn seal(&mut self) -> io::Result<()> {
        if let Mapping::Writable(map) = &self.map {
            map.flush()?;
        }
        self.map = Mapping::None;
        self.writable = false;
        let len = (self.entries * E::SIZE) as u64;
        let file = self.open_file()?;
        file.set_len(len)?;
        file.sync_all()?;
        if len > 0 {
            // SAFETY: as in `open_read_only`: the file is sealed and only read from now on.
            self.map =
                Mapping::ReadOnly(unsafe { MmapOptions::new().len(len as usize).map(&file)? });
        }
        Ok(())
    }

    /// Opens the index file for the rare operations that need a descriptor
    /// (growing, sealing); it is closed again when the caller drops it.
    fn open_file(&self) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(&self.path)
    }

    /// Drops every entry at or after relative offset `relative_offset`
    /// (recovery truncation of the active segment).
    pub fn truncate_from(&mut self, relative_offset: u32) {
        while let Some(last) = self.last() {
            if last.relative_offset() < relative_offset {
                break;
            }
            self.entries -= 1;
        }
    }
}

/// A sealed index mapped read-only, holding no file descriptor: the mapping
/// outlives the file handle, which is closed as soon as the bytes are mapped.
/// This is how sealed segments' indexes are opened on demand
/// (`storage::sealed`); a missing file reads as an empty index (an index is
/// only a cache, and lookups then walk the segment from its start).
pub struct MappedIndex<E: IndexEntry> {
    map: Option<Mmap>,
    entries: usize,
    _entry: PhantomData<E>,
}

impl<E: IndexEntry> MappedIndex<E> {
    /// Maps the whole entries of the sealed index at `path` and closes the file.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::empty()),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        let entries = (len / E::SIZE as u64) as usize;
        let map = if entries == 0 {
            None
        } else {
            // SAFETY: sealed index files are never written again (only
            // recovery, before a partition opens, rewrites them, by rename);
            // only this process modifies the data directory. The mapping
            // covers whole entries within the file's length.
            Some(unsafe { MmapOptions::new().len(entries * E::SIZE).map(&file)? })
        };
        Ok(Self {
            map,
            entries,
            _entry: PhantomData,
        })
    }

    /// An index without entries.
    pub fn empty() -> Self {
        Self {
            map: None,
            entries: 0,
            _entry: PhantomData,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// True when the index holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The last entry whose key is `<= key`, if any (binary search).
    pub fn floor(&self, key: i64) -> Option<E> {
        let bytes: &[u8] = self.map.as_deref().unwrap_or(&[]);
        floor_in(bytes, self.entries, key)
    }
}

/// The last of the first `entries` entries encoded in `bytes` whose key is
/// `<= key` (binary search over entries sorted by key).
fn floor_in<E: IndexEntry>(bytes: &[u8], entries: usize, key: i64) -> Option<E> {
    let entry = |i: usize| E::decode(&bytes[i * E::SIZE..(i + 1) * E::SIZE]);
    // partition_point: number of entries with entry.key <= key.
    let (mut lo, mut hi) = (0usize, entries);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if entry(mid).key() <= key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo.checked_sub(1).map(entry)
}

/// When to add index entries: one rule shared by the append path, recovery's
/// rebuild and the reopen of a cleanly closed segment, so an index rebuilt
/// from the log is the index the appends would have written.
///
/// An offset entry is added for a batch once at least `interval` bytes of log
/// have gone by since the previous entry. The time entry added with it is
/// (largest timestamp so far, the batch that first reached it), as Kafka's time
/// index does, so a lookup by time starting from it never skips a match.
#[derive(Debug, Clone)]
pub struct IndexCadence {
    interval: u64,
    bytes_since_entry: u64,
    max_timestamp: i64,
    max_timestamp_relative_offset: u32,
    last_time_entry: i64,
}

impl IndexCadence {
    /// A cadence for an empty segment.
    pub fn new(interval: u64) -> Self {
        Self {
            interval,
            bytes_since_entry: 0,
            max_timestamp: i64::MIN,
            max_timestamp_relative_offset: 0,
            last_time_entry: i64::MIN,
        }
    }

    /// A cadence that continues after an index whose last time entry is `last_time`.
    pub fn resume(interval: u64, last_time: Option<TimeEntry>) -> Self {
        let mut cadence = Self::new(interval);
        if let Some(entry) = last_time {
            cadence.max_timestamp = entry.timestamp;
            cadence.max_timestamp_relative_offset = entry.relative_offset;
            cadence.last_time_entry = entry.timestamp;
        }
        cadence
    }

    /// Accounts for a batch that already has its entries (the one the last
    /// offset entry points at, when resuming).
    pub fn skip(&mut self, relative_offset: u32, len: u64, max_timestamp: i64) {
        self.observe(relative_offset, max_timestamp);
        self.bytes_since_entry = len;
    }

    /// Accounts for the next batch of the segment and returns the entries to add for it.
    pub fn on_batch(
        &mut self,
        relative_offset: u32,
        position: u32,
        len: u64,
        max_timestamp: i64,
    ) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        self.observe(relative_offset, max_timestamp);
        let mut entries = (None, None);
        if self.bytes_since_entry >= self.interval {
            entries.0 = Some(OffsetEntry {
                relative_offset,
                position,
            });
            if self.max_timestamp > self.last_time_entry {
                entries.1 = Some(TimeEntry {
                    timestamp: self.max_timestamp,
                    relative_offset: self.max_timestamp_relative_offset,
                });
                self.last_time_entry = self.max_timestamp;
            }
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += len;
        entries
    }

    /// Largest timestamp seen, `i64::MIN` before any batch.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    fn observe(&mut self, relative_offset: u32, max_timestamp: i64) {
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.max_timestamp_relative_offset = relative_offset;
        }
    }
}

/// Reserves `capacity` bytes of `file` (extending it) and maps them writable.
fn reserve_and_map(file: &File, capacity: u64) -> io::Result<MmapMut> {
    // Reserve every byte the mapping may store into; ENOSPC comes back here.
    rustix::fs::fallocate(file, FallocateFlags::empty(), 0, capacity)?;
    // SAFETY: the file is ours (created or opened read-write by this process),
    // its length is at least `capacity` after the fallocate above, and nothing
    // in this process truncates it while the map is alive (`seal` drops the
    // mapping before trimming).
    unsafe { MmapOptions::new().len(capacity as usize).map_mut(file) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn offset_entry(relative_offset: u32, position: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset,
            position,
        }
    }

    #[test]
    fn given_entries_when_floor_then_largest_not_above_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let entries = [
            offset_entry(0, 0),
            offset_entry(10, 4096),
            offset_entry(25, 8200),
        ];
        let index = OffsetIndex::create_writable(&path, 1024, &entries).unwrap();
        assert_eq!(index.floor(-1), None);
        assert_eq!(index.floor(0), Some(entries[0]));
        assert_eq!(index.floor(9), Some(entries[0]));
        assert_eq!(index.floor(10), Some(entries[1]));
        assert_eq!(index.floor(24), Some(entries[1]));
        assert_eq!(index.floor(1000), Some(entries[2]));
    }

    #[test]
    fn given_full_index_when_append_then_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::create_writable(&path, 16, &[]).unwrap();
        assert!(index.append(offset_entry(0, 0)).unwrap());
        assert!(index.append(offset_entry(1, 100)).unwrap());
        assert!(index.is_full());
        assert!(!index.append(offset_entry(2, 200)).unwrap());
    }

    #[test]
    fn given_small_reservation_when_entries_arrive_then_grows_up_to_max_and_keeps_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let max = 10 << 20;
        let mut index = OffsetIndex::create_writable(&path, max, &[]).unwrap();
        assert!(
            std::fs::metadata(&path).unwrap().len() <= INITIAL_RESERVATION,
            "an empty index reserves little disk"
        );
        let count = 3 * INITIAL_RESERVATION as u32 / 8;
        for i in 0..count {
            assert!(index.append(offset_entry(i, i * 10)).unwrap());
        }
        assert_eq!(index.len(), count as usize);
        assert_eq!(
            index.floor(i64::from(count) - 1),
            Some(offset_entry(count - 1, (count - 1) * 10))
        );
        assert!(std::fs::metadata(&path).unwrap().len() < max);
    }

    #[test]
    fn given_writable_index_without_entries_then_file_is_empty_until_the_first_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::create_writable(&path, 10 << 20, &[]).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.len(), meta.blocks()),
            (0, 0),
            "an idle index costs no disk"
        );
        drop(index);
        index = OffsetIndex::open_writable(&path, 10 << 20).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().blocks(),
            0,
            "reopening reserves nothing"
        );
        assert!(index.append(offset_entry(0, 0)).unwrap());
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), INITIAL_RESERVATION);
        assert!(meta.blocks() * 512 <= INITIAL_RESERVATION + 4096);
        index.seal().unwrap();
        let reopened = OffsetIndex::open_writable(&path, 10 << 20).unwrap();
        assert_eq!(reopened.last(), Some(offset_entry(0, 0)));
    }

    #[test]
    fn given_sealed_index_when_reopened_then_same_entries_and_trimmed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let mut index = TimeIndex::create_writable(&path, 1200, &[]).unwrap();
        index
            .append(TimeEntry {
                timestamp: 5,
                relative_offset: 0,
            })
            .unwrap();
        index
            .append(TimeEntry {
                timestamp: 9,
                relative_offset: 3,
            })
            .unwrap();
        index.seal().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
        let reopened = TimeIndex::open_read_only(&path).unwrap();
        assert_eq!(reopened.len(), 2);
        assert_eq!(reopened.floor(8).map(|e| e.relative_offset), Some(0));
        assert_eq!(reopened.floor(9).map(|e| e.relative_offset), Some(3));
        assert!(reopened.check(3).is_ok());
        assert!(reopened.check(2).is_err());
    }

    #[test]
    fn given_partial_or_non_monotonic_index_then_check_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        std::fs::write(&path, [0u8; 12]).unwrap();
        assert!(OffsetIndex::open_read_only(&path)
            .unwrap()
            .check(100)
            .is_err());

        let mut bytes = Vec::new();
        for (rel, pos) in [(5u32, 100u32), (3, 200)] {
            bytes.extend(rel.to_be_bytes());
            bytes.extend(pos.to_be_bytes());
        }
        std::fs::write(&path, bytes).unwrap();
        assert!(OffsetIndex::open_read_only(&path)
            .unwrap()
            .check(100)
            .is_err());

        std::fs::write(&path, [0u8; 24]).unwrap();
        assert!(
            OffsetIndex::open_read_only(&path)
                .unwrap()
                .check(100)
                .is_err(),
            "a zeroed index repeats offset 0 and must not be trusted"
        );
    }

    #[test]
    fn given_cadence_then_entries_every_interval_and_time_entry_points_at_first_max() {
        let mut cadence = IndexCadence::new(100);
        // (relative offset, position, len, max ts)
        let batches = [
            (0u32, 0u32, 60u64, 50i64),
            (1, 60, 60, 90),
            (2, 120, 60, 70),
            (3, 180, 60, 80),
        ];
        let entries: Vec<_> = batches
            .iter()
            .map(|&(rel, pos, len, ts)| cadence.on_batch(rel, pos, len, ts))
            .collect();
        assert_eq!(entries[0], (None, None));
        assert_eq!(entries[1], (None, None));
        assert_eq!(
            entries[2],
            (
                Some(OffsetEntry {
                    relative_offset: 2,
                    position: 120
                }),
                Some(TimeEntry {
                    timestamp: 90,
                    relative_offset: 1
                })
            )
        );
        assert_eq!(entries[3], (None, None));
        assert_eq!(cadence.max_timestamp(), 90);
    }

    #[test]
    fn given_truncate_from_then_later_entries_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let entries = [
            offset_entry(0, 0),
            offset_entry(10, 4096),
            offset_entry(25, 8200),
        ];
        let mut index = OffsetIndex::create_writable(&path, 1024, &entries).unwrap();
        index.truncate_from(10);
        assert_eq!(index.len(), 1);
    }
}
