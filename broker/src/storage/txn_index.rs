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
//! - Entries are kept in marker-offset order in memory; fetches look up the
//!   ones overlapping the range they return. Retention drops the entries
//!   below the new log start and deletes the files of deleted segments.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::StorageError;

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
            let mut skipped = bytes.len() % ENTRY_LEN;
            for chunk in bytes.chunks_exact(ENTRY_LEN) {
                match AbortedTxn::decode(chunk) {
                    Some(entry)
                        if entry.last_offset >= log_start && entry.last_offset < log_end =>
                    {
                        entries.push(entry)
                    }
                    Some(_) => {}
                    None => skipped += 1,
                }
            }
            if skipped > 0 {
                tracing::warn!(partition, file = %path.display(), skipped, "skipping damaged aborted-transaction index entries; the log's markers restore them");
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
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StorageError::io("open", &path, e))?;
        file.write_all(&entry.encode())
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

    /// Forgets the entries whose marker lies below `log_start` and deletes
    /// the index files of the segments `deleted_bases`.
    pub fn truncate_start(
        &mut self,
        dir: &Path,
        log_start: i64,
        deleted_bases: &[i64],
    ) -> Result<(), StorageError> {
        self.entries.retain(|e| e.last_offset >= log_start);
        for base in deleted_bases {
            let path = txn_index_path(dir, *base);
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
