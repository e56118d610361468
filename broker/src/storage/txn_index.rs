//! The aborted-transaction index of one partition: for every transaction
//! that ended in an abort marker, its producer and offset span, so a
//! read_committed fetch can tell consumers which records to drop (Kafka's
//! `TransactionIndex` and `AbortedTxn`).
//!
//! Invariants and why:
//! - An entry is written when the abort marker is appended, into
//!   `<base>.txnindex` of the segment active at that moment (34-byte entries
//!   as Kafka lays them out: version i16, producer id i64, first offset i64,
//!   last offset i64, last stable offset i64), and fdatasync'ed: a producer
//!   snapshot taken later covers the marker, so the replay on open would not
//!   see it again, and the entry must already be on disk.
//! - The index is a cache of the log. On open every `*.txnindex` file is
//!   read, entries whose marker lies outside `[log_start, log_end)` are
//!   dropped (retention removed them, or recovery cut the marker), and the
//!   markers past the newest producer snapshot, replayed from the log, add
//!   whatever a crash kept from the files. Duplicates (same producer and
//!   marker offset) are one entry.
//! - An entry is synced before its marker is, so a crash can keep an entry
//!   whose marker recovery cut. Its offsets are handed out again, and once
//!   the log grows past them the entry would mark the new owner's batches
//!   aborted (hiding committed data from read_committed readers and from
//!   the cleaner). So a file holding such entries, damaged ones or a torn
//!   tail is rewritten on open without them (atomically); and an entry is
//!   always written at a whole-entry position, so a torn tail that could
//!   not be rewritten never misaligns the entries after it.
//! - Entries are kept in marker-offset order in memory; fetches look up the
//!   ones overlapping the range they return. Retention drops the entries
//!   below the new log start and deletes the files of deleted segments.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::StorageError;
use crate::storage::checkpoint::write_atomically;

/// File extension of aborted-transaction indexes.
pub const TXN_INDEX_EXT: &str = "txnindex";

/// Bytes of one entry on disk.
const ENTRY_LEN: usize = 34;

/// Entry format version.
const ENTRY_VERSION: i16 = 0;

/// One aborted transaction in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer whose transaction was aborted.
    pub producer_id: i64,
    /// Offset of its first batch in this partition.
    pub first_offset: i64,
    /// Offset of the abort marker.
    pub last_offset: i64,
    /// The partition's last stable offset once the abort completed.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[0..2].copy_from_slice(&ENTRY_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let i64_at = |at: usize| -> Option<i64> {
            Some(i64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let version = i16::from_be_bytes(bytes.get(0..2)?.try_into().ok()?);
        let entry = Self {
            producer_id: i64_at(2)?,
            first_offset: i64_at(10)?,
            last_offset: i64_at(18)?,
            last_stable_offset: i64_at(26)?,
        };
        (version == ENTRY_VERSION
            && entry.producer_id >= 0
            && entry.first_offset <= entry.last_offset)
            .then_some(entry)
    }
}

/// The aborted transactions of one partition. See the module docs.
#[derive(Debug, Default)]
pub struct AbortedIndex {
    /// Sorted by `last_offset`, then producer.
    entries: Vec<AbortedTxn>,
}

/// The index file of the segment based at `base`.
pub fn txn_index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.{TXN_INDEX_EXT}"))
}

impl AbortedIndex {
    /// Reads every index file in `dir`, keeping the entries whose marker lies
    /// in `[log_start, log_end)`. A torn last entry (a crash mid-write) or a
    /// damaged one is skipped with a warning: the replay of the log tail
    /// restores what the log still says.
    pub fn load(
        partition: &str,
        dir: &Path,
        log_start: i64,
        log_end: i64,
    ) -> Result<Self, StorageError> {
        let mut entries = Vec::new();
        for item in std::fs::read_dir(dir).map_err(|e| StorageError::io("list", dir, e))? {
            let path = item.map_err(|e| StorageError::io("list", dir, e))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(TXN_INDEX_EXT) {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| StorageError::io("read", &path, e))?;
            let torn = bytes.len() % ENTRY_LEN;
            let (mut skipped, mut past_end) = (0usize, 0usize);
            let mut kept = Vec::with_capacity(bytes.len());
            for chunk in bytes.chunks_exact(ENTRY_LEN) {
                match AbortedTxn::decode(chunk) {
                    // The marker is not in the log (see the module docs).
                    Some(entry) if entry.last_offset >= log_end => past_end += 1,
                    Some(entry) => {
                        kept.extend_from_slice(chunk);
                        if entry.last_offset >= log_start {
                            entries.push(entry);
                        }
                    }
                    None => skipped += 1,
                }
            }
            if torn > 0 || skipped > 0 || past_end > 0 {
                tracing::warn!(partition, file = %path.display(), torn_bytes = torn, skipped, past_end, "rewriting an aborted-transaction index without its damaged entries and those whose marker recovery cut; the log's markers restore what they can");
                if let Err(error) = write_atomically(&path, &kept) {
                    // Reads go by the entries kept in memory; appends write at
                    // whole-entry positions; the next open tries again.
                    tracing::warn!(partition, file = %path.display(), %error, "cannot rewrite the aborted-transaction index");
                }
            }
        }
        let mut index = Self { entries };
        index.normalise();
        Ok(index)
    }

    fn normalise(&mut self) {
        self.entries
            .sort_by_key(|e| (e.last_offset, e.producer_id, e.first_offset));
        self.entries
            .dedup_by_key(|e| (e.last_offset, e.producer_id));
    }

    /// Whether the index already holds the abort marked at `last_offset` by `producer_id`.
    pub fn contains(&self, producer_id: i64, last_offset: i64) -> bool {
        self.entries
            .iter()
            .any(|e| e.last_offset == last_offset && e.producer_id == producer_id)
    }

    /// Records `entry`, writing it durably to the index file of the segment
    /// based at `segment_base` first. An entry already held is not written again.
    pub fn record(
        &mut self,
        dir: &Path,
        segment_base: i64,
        entry: AbortedTxn,
    ) -> Result<(), StorageError> {
        if self.contains(entry.producer_id, entry.last_offset) {
            return Ok(());
        }
        let path = txn_index_path(dir, segment_base);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::io("open", &path, e))?;
        // Over a torn tail (a crash mid-write), never after it: an entry
        // at a misaligned position would be garbage to the next load.
        file.metadata()
            .map(|meta| meta.len() - meta.len() % ENTRY_LEN as u64)
            .and_then(|at| file.write_all_at(&entry.encode(), at))
            .and_then(|()| file.sync_data())
            .map_err(|e| StorageError::io("write", &path, e))?;
        self.entries.push(entry);
        self.normalise();
        Ok(())
    }

    /// The aborted transactions with data in `[from, to)`: their marker is
    /// at or after `from` and their first batch before `to` (Kafka's
    /// `collectAbortedTxns`), in marker order.
    pub fn overlapping(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = self.entries.partition_point(|e| e.last_offset < from);
        self.entries[start..]
            .iter()
            .filter(|e| e.first_offset < to)
            .copied()
            .collect()
    }

    /// Every entry, in marker order (the cleaner and `log dump` read them).
    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Forgets the entries whose marker lies below `log_start` and, when
    /// segments were deleted, deletes every index file of a segment based
    /// below `first_kept_base`: the deleted segments' own, and those the
    /// cleaner left under the names of the sources it merged into a deleted
    /// segment (a cleaned segment keeps its sources' index files, so they
    /// follow the segment's offset range, not its name).
    pub fn truncate_start(
        &mut self,
        dir: &Path,
        log_start: i64,
        first_kept_base: Option<i64>,
    ) -> Result<(), StorageError> {
        self.entries.retain(|e| e.last_offset >= log_start);
        let Some(first_kept_base) = first_kept_base else {
            return Ok(());
        };
        for item in std::fs::read_dir(dir).map_err(|e| StorageError::io("list", dir, e))? {
            let path = item.map_err(|e| StorageError::io("list", dir, e))?.path();
            let base = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(&format!(".{TXN_INDEX_EXT}")))
                .and_then(|stem| stem.parse::<i64>().ok());
            if base.is_none_or(|base| base >= first_kept_base) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("remove", &path, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(producer_id: i64, first_offset: i64, last_offset: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset,
            last_offset,
            last_stable_offset: last_offset + 1,
        }
    }

    #[test]
    fn given_entries_recorded_when_reloaded_then_same_entries_within_the_log_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut index = AbortedIndex::default();
        index.record(dir.path(), 0, entry(7, 0, 5)).expect("record");
        index
            .record(dir.path(), 10, entry(8, 12, 20))
            .expect("record");
        index
            .record(dir.path(), 10, entry(8, 12, 20))
            .expect("again");
        index
            .record(dir.path(), 10, entry(9, 15, 30))
            .expect("record");
        let loaded = AbortedIndex::load("t-0", dir.path(), 0, 40).expect("load");
        assert_eq!(loaded.entries(), index.entries());
        assert_eq!(loaded.entries().len(), 3);
        let cut = AbortedIndex::load("t-0", dir.path(), 6, 25).expect("load");
        assert_eq!(cut.entries(), &[entry(8, 12, 20)]);
    }

    #[test]
    fn given_fetch_range_when_looked_up_then_only_overlapping_aborts() {
        let index = AbortedIndex {
            entries: vec![entry(1, 0, 5), entry(2, 3, 9), entry(3, 10, 14)],
        };
        assert_eq!(index.overlapping(6, 10), vec![entry(2, 3, 9)]);
        assert_eq!(
            index.overlapping(0, 4),
            vec![entry(1, 0, 5), entry(2, 3, 9)]
        );
        assert_eq!(index.overlapping(15, 20), vec![]);
    }

    #[test]
    fn given_torn_file_when_loaded_then_whole_entries_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = entry(4, 1, 2).encode().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(txn_index_path(dir.path(), 0), bytes).expect("write");
        let loaded = AbortedIndex::load("t-0", dir.path(), 0, 10).expect("load");
        assert_eq!(loaded.entries(), &[entry(4, 1, 2)]);
    }
}
