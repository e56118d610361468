//! Recovery of a partition directory: what is on disk, what can be trusted,
//! what must be cut and what must be fenced. Kafka's LogLoader is the model.
//!
//! This module only *reads*: [`plan_recovery`] lists the directory, maps each
//! segment read-only and decides. `PartitionLog::open` then carries the plan
//! out; `sediment log verify` prints it. One piece of code, so what verify
//! reports is exactly what a restart would do.
//!
//! What happens on a crash here, and why:
//! - A process or machine crash can leave the *last* segment with a torn or
//!   garbage tail: bytes that were written but never covered by a completed
//!   fdatasync, so never acknowledged under the default flush policy. Recovery
//!   validates every batch above the recovery point (length, magic 2, record
//!   count, CRC-32C, offset continuity) and cuts the last segment at the first
//!   invalid batch. Nothing acknowledged lies past that point.
//! - Sealed segments were fdatasync'ed before the next segment was created. A
//!   defect inside one is corruption at rest, not a torn write: cutting it would
//!   silently drop acknowledged data and renumber what follows, so the
//!   partition is fenced and the files are left for an operator.
//! - A hole between segments (a segment's base offset is not its predecessor's
//!   end) means a file went missing; it is fenced for the same reason.
//! - Batches wholly below the recovery point were covered by a completed
//!   fdatasync before the point was checkpointed, so no torn write can lie
//!   there: they are trusted, in the active segment too. A segment that ends
//!   at or before the point is trusted whole (its indexes checked, as after a
//!   clean shutdown); in the segment that holds the point, recovery walks the
//!   headers of the batches below it (length, magic, record count, offset
//!   continuity; cheap, one header per batch, no CRC work) and CRC-checks only
//!   the batches from the first one at or after the point. The walk starts at
//!   byte 0 rather than at an offset-index entry because the active
//!   segment's index is never synced before it is sealed: after a crash it
//!   may hold reserved zeros or miss entries, and the walk rebuilds it anyway.
//!   Kafka trusts data below the recovery point the same way, so a defect at
//!   rest below it goes unnoticed by a restart; `sediment log verify` scans
//!   every byte and reports it.
//! - Indexes are caches. Those of segments that were scanned are rebuilt from
//!   the scan; those of trusted segments are checked and rebuilt on any doubt.
//!   A rebuilt active-segment index is written without a sync: it is only
//!   trusted once the segment is sealed (which syncs it), and every unclean
//!   start rebuilds it again.
//! - Temp files (`*.tmp`, `*.deleted`) are leftovers of an interrupted atomic
//!   write or deletion, and index files without a `.log` are orphans of a
//!   deletion that crashed half-way: both are removed.
//! - Compacted data has offset gaps (the cleaner drops superseded records
//!   and keeps offsets), and its re-encoded batches hold fewer records than
//!   their offset span. Both are accepted only *below the partition's
//!   cleaner checkpoint* (`storage::cleaner_checkpoint`), the offset up to
//!   which the cleaner has rewritten the log: there a gap is the cleaner's
//!   work. At or above it the old strictness holds, so a segment missing from
//!   never-cleaned data is still a hole, and fenced. Offsets must still rise
//!   strictly everywhere. An accepted gap between segments makes the earlier
//!   segment end where the next one starts.
//! - The cleaner replaces segments with Kafka's `.cleaned` → `.swap` →
//!   rename protocol (`storage::cleaner` describes every step). Recovery
//!   decides from the files alone, keyed by the group's base offset `B`:
//!   `B.swap-end` (the group's end offset `E`, checksummed) with `B.log.swap`
//!   means the swap was committed: [`finish_interrupted_swaps`] deletes the
//!   sources with base offsets in `[B, E)`, renames the swap files to their
//!   final names, raises the cleaner checkpoint to `E` and removes the
//!   swap-end file. `B.swap-end` with `B.log.cleaned` (no `.log.swap`) means
//!   it was not: the cleaned files, index swaps and swap-end are removed and
//!   the sources stay. `B.swap-end` alone means the swap finished but the
//!   checkpoint may not have been raised: it is raised, then the file goes.
//!   Any other `*.cleaned` file is removed. [`plan_recovery`] (and so
//!   `sediment log verify`) reads a committed swap as if it were finished,
//!   without touching a file.

use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::StorageError;
use crate::storage::batch::{BatchDefect, BatchHeader, BatchIter};
use crate::storage::checkpoint::TEMP_SUFFIX;
use crate::storage::index::{
    IndexCadence, IndexFile, OffsetEntry, OffsetIndex, TimeEntry, TimeIndex,
};

/// File extension of segment data.
pub const LOG_EXT: &str = "log";
/// File extension of the sparse offset index.
pub const INDEX_EXT: &str = "index";
/// File extension of the time index.
pub const TIME_INDEX_EXT: &str = "timeindex";
/// Suffix of segment files whose deletion was interrupted.
pub const DELETED_SUFFIX: &str = ".deleted";
/// Suffix of the cleaner's output before its swap is recorded.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of the cleaner's output once the swap is committed.
pub const SWAP_SUFFIX: &str = ".swap";
/// Extension of the file naming the end offset of a swap (`{base:020}.swap-end`).
pub const SWAP_END_EXT: &str = "swap-end";

/// How far an interrupted swap of cleaned segments got (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapStage {
    /// `.log.cleaned` still there: not committed, roll back.
    Uncommitted,
    /// `.log.swap` there: committed, finish it.
    Committed,
    /// Neither: the renames are done, only the checkpoint may lag.
    Finished,
}

/// A swap of cleaned segments a crash interrupted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptedSwap {
    /// Base offset of the cleaned segment (its first source's base).
    pub base_offset: i64,
    /// The `{base}.swap-end` file.
    pub end_file: PathBuf,
    /// The group's end offset, `None` when the file cannot be read.
    pub end_offset: Option<i64>,
    /// How far it got.
    pub stage: SwapStage,
}

/// A file of a segment under the cleaner's suffix: `{base:020}.{ext}{suffix}`.
pub fn suffixed(dir: &Path, base_offset: i64, ext: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}{suffix}"))
}

/// The `{base:020}.swap-end` file of a swap.
pub fn swap_end_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.{SWAP_END_EXT}"))
}

/// Reads a swap-end file's offset.
pub fn read_swap_end(path: &Path) -> Option<i64> {
    crate::storage::checkpoint::read_checksummed(path)
        .ok()
        .flatten()
        .and_then(|payload| String::from_utf8(payload).ok())
        .and_then(|text| text.trim().parse::<i64>().ok())
}

/// The three files of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFiles {
    /// Offset of the first batch of the segment (its file name).
    pub base_offset: i64,
    /// The `.log` file.
    pub log: PathBuf,
    /// The `.index` file.
    pub index: PathBuf,
    /// The `.timeindex` file.
    pub time_index: PathBuf,
}

impl SegmentFiles {
    /// The paths of segment `base_offset` inside `dir`, named as Kafka names them.
    pub fn new(dir: &Path, base_offset: i64) -> Self {
        let name = |ext: &str| dir.join(format!("{base_offset:020}.{ext}"));
        Self {
            base_offset,
            log: name(LOG_EXT),
            index: name(INDEX_EXT),
            time_index: name(TIME_INDEX_EXT),
        }
    }
}

/// What a partition directory holds.
#[derive(Debug, Default)]
pub struct DirListing {
    /// Segments in offset order.
    pub segments: Vec<SegmentFiles>,
    /// Temp and half-deleted files to remove.
    pub strays: Vec<PathBuf>,
    /// Index files whose `.log` is gone.
    pub orphan_indexes: Vec<PathBuf>,
    /// Swaps of cleaned segments a crash interrupted. A committed one is
    /// already reflected in `segments` (its sources replaced by the swap).
    pub swaps: Vec<InterruptedSwap>,
}

/// Files of a partition directory as named, before swaps are read.
#[derive(Default)]
struct RawListing {
    logs: Vec<i64>,
    indexes: Vec<(i64, PathBuf)>,
    strays: Vec<PathBuf>,
    /// `*.cleaned` and non-log `*.swap` files, by base offset.
    cleaner_files: Vec<(i64, PathBuf)>,
    log_swaps: Vec<i64>,
    log_cleaned: Vec<i64>,
    swap_ends: Vec<(i64, PathBuf)>,
}

fn list_raw(dir: &Path) -> io::Result<RawListing> {
    let mut raw = RawListing::default();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(TEMP_SUFFIX) || name.ends_with(DELETED_SUFFIX) {
            raw.strays.push(path);
            continue;
        }
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let Ok(base_offset) = stem.parse::<i64>() else {
            continue;
        };
        if let Some(inner) = ext.strip_suffix(CLEANED_SUFFIX) {
            if inner == LOG_EXT {
                raw.log_cleaned.push(base_offset);
            }
            raw.cleaner_files.push((base_offset, path));
            continue;
        }
        if let Some(inner) = ext.strip_suffix(SWAP_SUFFIX) {
            if inner == LOG_EXT {
                raw.log_swaps.push(base_offset);
            } else {
                raw.cleaner_files.push((base_offset, path));
            }
            continue;
        }
        match ext {
            LOG_EXT => raw.logs.push(base_offset),
            INDEX_EXT | TIME_INDEX_EXT => raw.indexes.push((base_offset, path)),
            SWAP_END_EXT => raw.swap_ends.push((base_offset, path)),
            _ => {}
        }
    }
    raw.logs.sort_unstable();
    Ok(raw)
}

impl RawListing {
    fn swaps(&self) -> Vec<InterruptedSwap> {
        let mut swaps: Vec<InterruptedSwap> = self
            .swap_ends
            .iter()
            .map(|(base, path)| {
                let stage = if self.log_swaps.contains(base) {
                    SwapStage::Committed
                } else if self.log_cleaned.contains(base) {
                    SwapStage::Uncommitted
                } else {
                    SwapStage::Finished
                };
                InterruptedSwap {
                    base_offset: *base,
                    end_file: path.clone(),
                    end_offset: read_swap_end(path),
                    stage,
                }
            })
            .collect();
        swaps.sort_by_key(|swap| swap.base_offset);
        swaps
    }
}

/// Lists a partition directory. A committed swap of cleaned segments is
/// listed as if it were finished (its `.swap` files stand for the segment,
/// its sources are left out); the files of an uncommitted one, and any
/// other `*.cleaned` file, are strays.
pub fn list_partition_dir(dir: &Path) -> io::Result<DirListing> {
    let raw = list_raw(dir)?;
    let swaps = raw.swaps();
    let mut listing = DirListing {
        strays: raw.strays.clone(),
        ..DirListing::default()
    };
    let mut logs = raw.logs.clone();
    let mut virtual_segments = Vec::new();
    for swap in &swaps {
        match (swap.stage, swap.end_offset) {
            (SwapStage::Committed, Some(end)) => {
                let base = swap.base_offset;
                logs.retain(|&log| log < base || log >= end);
                let swap_or_final = |ext: &str| {
                    let swap = suffixed(dir, base, ext, SWAP_SUFFIX);
                    if swap.exists() {
                        swap
                    } else {
                        dir.join(format!("{base:020}.{ext}"))
                    }
                };
                virtual_segments.push(SegmentFiles {
                    base_offset: base,
                    log: suffixed(dir, base, LOG_EXT, SWAP_SUFFIX),
                    index: swap_or_final(INDEX_EXT),
                    time_index: swap_or_final(TIME_INDEX_EXT),
                });
            }
            (SwapStage::Uncommitted, _) => listing.strays.push(swap.end_file.clone()),
            _ => {}
        }
    }
    // Cleaner files of a committed swap are its segment; the others are strays.
    let committed = |base: i64| {
        swaps
            .iter()
            .any(|s| s.base_offset == base && s.stage == SwapStage::Committed)
    };
    for (base, path) in &raw.cleaner_files {
        let is_swap = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(SWAP_SUFFIX));
        if !(is_swap && committed(*base)) {
            listing.strays.push(path.clone());
        }
    }
    let mut segments: Vec<SegmentFiles> = logs
        .iter()
        .map(|&base| SegmentFiles::new(dir, base))
        .chain(virtual_segments)
        .collect();
    segments.sort_by_key(|files| files.base_offset);
    let bases: Vec<i64> = segments.iter().map(|files| files.base_offset).collect();
    listing.segments = segments;
    listing.orphan_indexes = raw
        .indexes
        .into_iter()
        .filter(|(base, _)| !bases.contains(base))
        .map(|(_, path)| path)
        .collect();
    listing.strays.sort();
    listing.orphan_indexes.sort();
    listing.swaps = swaps;
    Ok(listing)
}

/// Finishes or rolls back every swap of cleaned segments a crash
/// interrupted (see the module doc), before recovery plans: afterwards the
/// directory holds either the old segments or the new ones, and no swap
/// file. Returns how many swaps were finished. A committed swap whose end
/// offset cannot be read is fenced: its sources may be half deleted and
/// nothing says which the swap replaces.
pub fn finish_interrupted_swaps(dir: &Path, partition: &str) -> Result<usize, StorageError> {
    let raw = list_raw(dir).map_err(|e| StorageError::io("list", dir, e))?;
    let mut finished = 0;
    let mut changed = false;
    for base in &raw.log_swaps {
        if !raw.swap_ends.iter().any(|(b, _)| b == base) {
            return Err(StorageError::Fenced {
                partition: partition.to_string(),
                file: suffixed(dir, *base, LOG_EXT, SWAP_SUFFIX),
                position: 0,
                reason: "a committed swap of cleaned segments has no swap-end file: which segments it replaces is unknown".to_string(),
            });
        }
    }
    for swap in raw.swaps() {
        let base = swap.base_offset;
        match swap.stage {
            SwapStage::Uncommitted => {
                // The swap-end goes first: once it is gone, what is left is
                // plain `*.cleaned` / index `*.swap` strays, never a swap
                // that looks finished.
                remove_if_present(&swap.end_file)?;
                for (_, path) in raw.cleaner_files.iter().filter(|(b, _)| *b == base) {
                    remove_if_present(path)?;
                }
                tracing::warn!(partition, base_offset = base, "recovery rolled back an uncommitted swap of cleaned segments: the original segments stay");
                changed = true;
            }
            SwapStage::Committed => {
                let Some(end) = swap.end_offset else {
                    return Err(StorageError::Fenced {
                        partition: partition.to_string(),
                        file: swap.end_file.clone(),
                        position: 0,
                        reason:
                            "the swap-end file of a committed swap of cleaned segments is damaged"
                                .to_string(),
                    });
                };
                complete_swap(dir, &raw.logs, base, end)?;
                raise_cleaner_checkpoint(dir, end)?;
                remove_if_present(&swap.end_file)?;
                tracing::warn!(
                    partition,
                    base_offset = base,
                    end_offset = end,
                    "recovery finished a committed swap of cleaned segments"
                );
                finished += 1;
                changed = true;
            }
            SwapStage::Finished => {
                if let Some(end) = swap.end_offset {
                    raise_cleaner_checkpoint(dir, end)?;
                }
                remove_if_present(&swap.end_file)?;
                changed = true;
            }
        }
    }
    // `*.cleaned` files without a swap-end never got as far as a swap.
    for (base, path) in &raw.cleaner_files {
        if !raw.swap_ends.iter().any(|(b, _)| b == base) {
            remove_if_present(path)?;
            changed = true;
        }
    }
    if changed {
        crate::storage::checkpoint::sync_dir(dir)
            .map_err(|e| StorageError::io("fsync dir", dir, e))?;
    }
    Ok(finished)
}

/// Deletes the sources of the committed swap at `base` (those with base
/// offsets in `[base, end)`; indexes first, `.log` last) and renames its
/// swap files to their final names (indexes first, `.log` last). Every step
/// can be repeated after another crash: each looks at what is left.
pub(crate) fn complete_swap(
    dir: &Path,
    source_logs: &[i64],
    base: i64,
    end: i64,
) -> Result<(), StorageError> {
    let index_swap = suffixed(dir, base, INDEX_EXT, SWAP_SUFFIX);
    let time_swap = suffixed(dir, base, TIME_INDEX_EXT, SWAP_SUFFIX);
    for &source in source_logs.iter().filter(|&&b| b >= base && b < end) {
        let files = SegmentFiles::new(dir, source);
        // The first source's index names are the cleaned segment's: once its
        // swap index is renamed, the file under the final name is the new one.
        if source != base || index_swap.exists() {
            remove_if_present(&files.index)?;
        }
        if source != base || time_swap.exists() {
            remove_if_present(&files.time_index)?;
        }
        remove_if_present(&files.log)?;
    }
    let finals = SegmentFiles::new(dir, base);
    for (from, to) in [
        (index_swap, &finals.index),
        (time_swap, &finals.time_index),
        (suffixed(dir, base, LOG_EXT, SWAP_SUFFIX), &finals.log),
    ] {
        match fs::rename(&from, to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("rename", from, e)),
        }
    }
    crate::storage::checkpoint::sync_dir(dir).map_err(|e| StorageError::io("fsync dir", dir, e))
}

fn raise_cleaner_checkpoint(dir: &Path, end: i64) -> Result<(), StorageError> {
    crate::storage::cleaner_checkpoint::raise_first_dirty(dir, end)
        .map(|_| ())
        .map_err(|e| {
            StorageError::io(
                "write",
                crate::storage::cleaner_checkpoint::checkpoint_path(dir),
                e,
            )
        })
}

/// Removes a file; one already gone is fine.
pub(crate) fn remove_if_present(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", path, e)),
    }
}

/// The outcome of walking one segment's batches from its start.
#[derive(Debug, Clone)]
pub struct SegmentScan {
    /// Bytes from the start up to the end of the last valid batch.
    pub valid_len: u64,
    /// Offset after the last valid batch (the base offset when there is none).
    pub next_offset: i64,
    /// Largest batch timestamp, `i64::MIN` when empty.
    pub max_timestamp: i64,
    /// Number of valid batches.
    pub batches: u64,
    /// Offset index entries for the valid batches.
    pub offset_entries: Vec<OffsetEntry>,
    /// Time index entries for the valid batches.
    pub time_entries: Vec<TimeEntry>,
    /// The first invalid batch: its byte position and what is wrong.
    pub defect: Option<(u64, BatchDefect)>,
    /// Byte position of the first batch whose CRC-32C was checked (the end of
    /// the walk when none was): the batches before it lie below the recovery
    /// point and had their structure and continuity checked only.
    pub verified_from: u64,
}

/// Walks `bytes` (a whole segment whose first batch should have offset
/// `base_offset`), checking each batch's structure, offset continuity and, when
/// `verify_crc`, its CRC-32C. Builds the index entries on the way.
pub fn scan_segment(
    bytes: &[u8],
    base_offset: i64,
    verify_crc: bool,
    index_interval: u64,
) -> SegmentScan {
    let verify_from = if verify_crc { i64::MIN } else { i64::MAX };
    scan_segment_above(bytes, base_offset, verify_from, index_interval, i64::MIN)
}

/// [`scan_segment`] that checks the CRC-32C only of batches whose last offset
/// is at or above `verify_from` (the recovery point): the batches below it
/// were durable when the point was checkpointed and are trusted, so only
/// their headers are read (length, magic, record count, offset continuity).
/// Batches starting at or below `gaps_below` (the cleaner checkpoint) may
/// follow an offset gap and hold fewer records than their offset span.
pub fn scan_segment_above(
    bytes: &[u8],
    base_offset: i64,
    verify_from: i64,
    index_interval: u64,
    gaps_below: i64,
) -> SegmentScan {
    let mut cadence = IndexCadence::new(index_interval);
    let mut scan = SegmentScan {
        valid_len: 0,
        next_offset: base_offset,
        max_timestamp: i64::MIN,
        batches: 0,
        offset_entries: Vec::new(),
        time_entries: Vec::new(),
        defect: None,
        verified_from: 0,
    };
    let mut verifying = false;
    for item in BatchIter::headers(bytes) {
        let (position, header) = match item {
            Ok(found) => found,
            Err((position, defect)) => {
                scan.defect = Some((position as u64, defect));
                break;
            }
        };
        if !verifying && header.last_offset() >= verify_from {
            verifying = true;
            scan.verified_from = position as u64;
        }
        // Counts before CRC, as `BatchHeader::parse_verified` checks them.
        let checked = if verifying {
            verify_counts(&header, gaps_below).and_then(|()| header.verify_crc())
        } else {
            Ok(())
        };
        if let Err(defect) = checked
            .and_then(|()| check_continuity(&header, scan.next_offset, base_offset, gaps_below))
        {
            scan.defect = Some((position as u64, defect));
            break;
        }
        let relative = (header.base_offset() - base_offset) as u32;
        let (offset_entry, time_entry) = cadence.on_batch(
            relative,
            position as u32,
            header.total_len() as u64,
            header.max_timestamp(),
        );
        scan.offset_entries.extend(offset_entry);
        scan.time_entries.extend(time_entry);
        scan.valid_len = (position + header.total_len()) as u64;
        scan.next_offset = header.last_offset() + 1;
        scan.batches += 1;
    }
    if !verifying {
        scan.verified_from = scan
            .defect
            .as_ref()
            .map_or(scan.valid_len, |(position, _)| *position);
    }
    scan.max_timestamp = cadence.max_timestamp();
    scan
}

/// A batch must start where its predecessor ended, carry a count that matches
/// its offsets, and stay within the 32-bit relative offsets of the index.
/// Below the cleaner checkpoint (`gaps_below`) it may start after a gap.
fn check_continuity(
    header: &BatchHeader<'_>,
    expected: i64,
    segment_base: i64,
    gaps_below: i64,
) -> Result<(), BatchDefect> {
    verify_counts(header, gaps_below)?;
    let base = header.base_offset();
    let in_order = base == expected || (base > expected && base <= gaps_below);
    if !in_order || header.last_offset() - segment_base > i64::from(u32::MAX) {
        return Err(BatchDefect::OffsetGap {
            expected,
            found: header.base_offset(),
        });
    }
    Ok(())
}

/// The record-count check: exact above the cleaner checkpoint; below it a
/// compacted batch holds between one record and its offset span.
pub(crate) fn verify_counts(header: &BatchHeader<'_>, gaps_below: i64) -> Result<(), BatchDefect> {
    if header.last_offset() < gaps_below {
        let span = i64::from(header.last_offset_delta()) + 1;
        let count = i64::from(header.record_count());
        if header.last_offset_delta() >= 0 && count >= 1 && count <= span {
            return Ok(());
        }
    }
    header.verify_counts()
}

/// What the caller knows about how the partition was last closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryHint {
    /// The broker wrote its clean-shutdown marker: every file was synced and
    /// every index trimmed, so nothing needs scanning.
    pub clean_shutdown: bool,
    /// Offsets below this were durable and indexed when it was checkpointed;
    /// segments that end at or before it are trusted without a scan, and in
    /// the segment holding it only batches at or above it are CRC-checked.
    pub recovery_point: i64,
}

impl RecoveryHint {
    /// Trust nothing: scan and verify every segment (what `log verify` does).
    pub fn full_scan() -> Self {
        Self {
            clean_shutdown: false,
            recovery_point: 0,
        }
    }

    /// The partition was closed cleanly at `log_end`.
    pub fn clean(log_end: i64) -> Self {
        Self {
            clean_shutdown: true,
            recovery_point: log_end,
        }
    }
}

/// One repair or refusal recovery decides on. Each is logged once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The last segment has a torn or invalid tail: cut it at `position`.
    Truncate {
        /// The `.log` file.
        file: PathBuf,
        /// New length: the end of the last valid batch.
        position: u64,
        /// How many bytes are cut.
        bytes_cut: u64,
        /// Offset of the last valid record, or -1 when none remains in the log.
        last_valid_offset: i64,
        /// Why the bytes at `position` are invalid.
        reason: String,
    },
    /// Damage recovery must not repair: the partition is fenced, files untouched.
    Fence {
        /// The damaged file.
        file: PathBuf,
        /// Byte position of the damage.
        position: u64,
        /// What is wrong there.
        reason: String,
    },
    /// An index cannot be trusted and is rebuilt from its segment.
    RebuildIndex {
        /// The index file.
        file: PathBuf,
        /// Why.
        reason: String,
    },
    /// A temp file, half-deleted file or orphan index is removed.
    RemoveStray {
        /// The file.
        file: PathBuf,
    },
}

impl Finding {
    /// True for findings `log verify` fails on: data recovery would cut or fence.
    pub fn affects_data(&self) -> bool {
        matches!(self, Self::Truncate { .. } | Self::Fence { .. })
    }
}

/// What recovery knows about one segment after planning.
#[derive(Debug, Clone)]
pub struct PlannedSegment {
    /// Its files.
    pub files: SegmentFiles,
    /// Length the `.log` has after recovery.
    pub log_len: u64,
    /// Offset after its last batch.
    pub next_offset: i64,
    /// Largest batch timestamp, `i64::MIN` when empty.
    pub max_timestamp: i64,
    /// Index entries to write when its indexes are rebuilt; `None` keeps the files.
    pub rebuilt_index: Option<(Vec<OffsetEntry>, Vec<TimeEntry>)>,
    /// The valid bytes whose CRC-32C recovery checked: empty for a trusted
    /// segment; otherwise from the first batch at or above the recovery point
    /// (0 when the whole segment was verified) to `log_len`. Bytes before it
    /// were durable when the recovery point was checkpointed.
    pub verified: Range<u64>,
}

/// The decisions of recovery for one partition directory.
#[derive(Debug, Default)]
pub struct RecoveryPlan {
    /// Segments in offset order, as they will be after recovery.
    pub segments: Vec<PlannedSegment>,
    /// Every repair, rebuild and removal, in the order they were found.
    pub findings: Vec<Finding>,
    /// Set when the partition must be fenced (also listed in `findings`).
    pub fence: Option<Finding>,
}

/// Decides how to recover the partition in `dir`, reading only.
pub fn plan_recovery(
    dir: &Path,
    hint: RecoveryHint,
    index_interval: u64,
) -> Result<RecoveryPlan, StorageError> {
    let listing = list_partition_dir(dir).map_err(|e| StorageError::io("list", dir, e))?;
    let mut plan = RecoveryPlan::default();
    for file in listing.strays.iter().chain(&listing.orphan_indexes) {
        plan.findings
            .push(Finding::RemoveStray { file: file.clone() });
    }
    // Gaps are the cleaner's work below its checkpoint; a swap that is
    // committed or finished (but not yet checkpointed) raises it to its end.
    let mut gaps_below = crate::storage::cleaner_checkpoint::read_first_dirty(dir);
    for swap in &listing.swaps {
        match (swap.stage, swap.end_offset) {
            (SwapStage::Uncommitted, _) => {}
            (_, Some(end)) => gaps_below = gaps_below.max(end),
            (SwapStage::Committed, None) => {
                let fence = Finding::Fence {
                    file: swap.end_file.clone(),
                    position: 0,
                    reason: "the swap-end file of a committed swap of cleaned segments is damaged"
                        .to_string(),
                };
                plan.findings.push(fence.clone());
                plan.fence = Some(fence);
                return Ok(plan);
            }
            (SwapStage::Finished, None) => {}
        }
    }
    let count = listing.segments.len();
    let mut expected_base: Option<i64> = None;
    for (i, files) in listing.segments.iter().enumerate() {
        let is_last = i + 1 == count;
        if let Some(expected) = expected_base {
            let cleaned_gap = files.base_offset > expected && files.base_offset <= gaps_below;
            if cleaned_gap {
                // The cleaner dropped the tail of the previous segment: it
                // ends where this one starts.
                if let Some(previous) = plan.segments.last_mut() {
                    previous.next_offset = files.base_offset;
                }
            } else if files.base_offset != expected {
                let fence = Finding::Fence {
                    file: files.log.clone(),
                    position: 0,
                    reason: format!(
                        "hole between segments: this segment starts at offset {} but the previous one ends before {expected}",
                        files.base_offset
                    ),
                };
                plan.findings.push(fence.clone());
                plan.fence = Some(fence);
                return Ok(plan);
            }
        }
        // A segment ends at or before the next one's base offset.
        let trusted = if is_last {
            hint.clean_shutdown
        } else {
            listing.segments[i + 1].base_offset <= hint.recovery_point
        };
        let log_map = map_read_only(&files.log)?;
        let bytes: &[u8] = log_map.as_deref().unwrap_or(&[]);
        let mut planned = None;
        if trusted {
            match trusted_tail(files, bytes, index_interval) {
                Ok((next_offset, max_timestamp)) => {
                    planned = Some(PlannedSegment {
                        files: files.clone(),
                        log_len: bytes.len() as u64,
                        next_offset,
                        max_timestamp,
                        rebuilt_index: None,
                        verified: bytes.len() as u64..bytes.len() as u64,
                    })
                }
                // Doubt about an index is doubt about the segment: verify it fully.
                Err((file, reason)) => plan.findings.push(Finding::RebuildIndex { file, reason }),
            }
        }
        // Batches below the recovery point were durable when it was written:
        // only those at or above it are CRC-checked, unless doubt about a
        // trusted segment's index sent it here.
        let verify_from = if trusted {
            i64::MIN
        } else {
            hint.recovery_point
        };
        let planned = match planned {
            Some(planned) => planned,
            None => {
                let scan = scan_segment_above(
                    bytes,
                    files.base_offset,
                    verify_from,
                    index_interval,
                    gaps_below,
                );
                if let Some((position, defect)) = &scan.defect {
                    if !is_last {
                        let fence = Finding::Fence {
                            file: files.log.clone(),
                            position: *position,
                            reason: format!("invalid batch inside a sealed segment: {defect}"),
                        };
                        plan.findings.push(fence.clone());
                        plan.fence = Some(fence);
                        return Ok(plan);
                    }
                    plan.findings.push(Finding::Truncate {
                        file: files.log.clone(),
                        position: scan.valid_len,
                        bytes_cut: bytes.len() as u64 - scan.valid_len,
                        last_valid_offset: scan.next_offset - 1,
                        reason: defect.to_string(),
                    });
                }
                PlannedSegment {
                    files: files.clone(),
                    log_len: scan.valid_len,
                    next_offset: scan.next_offset,
                    max_timestamp: scan.max_timestamp,
                    rebuilt_index: Some((scan.offset_entries, scan.time_entries)),
                    verified: scan.verified_from.min(scan.valid_len)..scan.valid_len,
                }
            }
        };
        expected_base = Some(planned.next_offset);
        plan.segments.push(planned);
    }
    // Offsets below the recovery point were durable when it was written: a log
    // that now ends before it lost a segment or its tail, and reusing those
    // offsets would hand out acknowledged offsets twice.
    let log_end = plan.segments.last().map_or(0, |s| s.next_offset);
    if log_end < hint.recovery_point {
        let file = plan
            .segments
            .last()
            .map_or_else(|| dir.to_path_buf(), |s| s.files.log.clone());
        let position = plan.segments.last().map_or(0, |s| s.log_len);
        let fence = Finding::Fence {
            file,
            position,
            reason: format!(
                "the log ends at offset {log_end} but offsets up to {} were durable: a segment or its tail is missing",
                hint.recovery_point
            ),
        };
        plan.findings.push(fence.clone());
        plan.fence = Some(fence);
    }
    Ok(plan)
}

/// Checks a trusted segment's indexes and walks headers after the last offset
/// entry. Returns (next offset, max timestamp), or which index is doubtful and why.
fn trusted_tail(
    files: &SegmentFiles,
    bytes: &[u8],
    index_interval: u64,
) -> Result<(i64, i64), (PathBuf, String)> {
    let index = open_checked::<OffsetEntry>(&files.index)?;
    let time_index = open_checked::<TimeEntry>(&files.time_index)?;
    let start = index.last().map_or(0, |entry| entry.position as usize);
    let mut cadence = IndexCadence::resume(index_interval, time_index.last());
    let mut next_offset = files.base_offset;
    let tail = bytes.get(start..).unwrap_or(&[]);
    for (n, item) in BatchIter::headers(tail).enumerate() {
        let (_, header) = item.map_err(|(position, defect)| {
            (
                files.index.clone(),
                format!(
                    "log does not walk from the last index entry (byte {}): {defect}",
                    start + position
                ),
            )
        })?;
        let relative = header.base_offset() - files.base_offset;
        if n == 0 {
            if let Some(last) = index.last() {
                if relative != i64::from(last.relative_offset) {
                    return Err((
                        files.index.clone(),
                        format!(
                            "last entry names offset {} but the batch there starts at {}",
                            files.base_offset + i64::from(last.relative_offset),
                            header.base_offset()
                        ),
                    ));
                }
            }
        }
        cadence.skip(
            relative as u32,
            header.total_len() as u64,
            header.max_timestamp(),
        );
        next_offset = header.last_offset() + 1;
    }
    if start > bytes.len() {
        return Err((
            files.index.clone(),
            format!(
                "last entry points at byte {start}, past the log's {} bytes",
                bytes.len()
            ),
        ));
    }
    if let Some(last) = time_index.last() {
        if files.base_offset + i64::from(last.relative_offset) >= next_offset {
            return Err((
                files.time_index.clone(),
                "last entry points past the segment's last offset".to_string(),
            ));
        }
    }
    Ok((next_offset, cadence.max_timestamp()))
}

/// Checks a segment's indexes the way recovery checks a trusted segment's
/// (used by `log verify`): `Err` names the index recovery would rebuild and why.
pub fn check_segment_indexes(
    files: &SegmentFiles,
    index_interval: u64,
) -> Result<(), (PathBuf, String)> {
    let log_map = map_read_only(&files.log).map_err(|e| (files.log.clone(), e.to_string()))?;
    let bytes: &[u8] = log_map.as_deref().unwrap_or(&[]);
    trusted_tail(files, bytes, index_interval).map(|_| ())
}

fn open_checked<E: crate::storage::index::IndexEntry>(
    path: &Path,
) -> Result<IndexFile<E>, (PathBuf, String)> {
    let index = IndexFile::<E>::open_read_only(path)
        .map_err(|e| (path.to_path_buf(), format!("cannot open: {e}")))?;
    index
        .check(u32::MAX)
        .map_err(|reason| (path.to_path_buf(), reason))?;
    Ok(index)
}

/// Maps a file read-only for scanning; `None` for an empty file.
pub fn map_read_only(path: &Path) -> Result<Option<Mmap>, StorageError> {
    let file = fs::File::open(path).map_err(|e| StorageError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| StorageError::io("stat", path, e))?
        .len();
    if len == 0 {
        return Ok(None);
    }
    crate::storage::segment::map_file(&file, len as usize)
        .map(Some)
        .map_err(|e| StorageError::io("map", path, e))
}

/// Empties a segment's indexes when their rebuild could not be written (a
/// full disk): an empty index is valid, lookups walk the segment from its
/// start. Truncating needs no free space; the rebuild's leftover temp files
/// are removed so they hold no blocks either.
pub fn empty_indexes(files: &SegmentFiles) -> Result<(), StorageError> {
    for path in [&files.index, &files.time_index] {
        let mut temp = path.clone().into_os_string();
        temp.push(TEMP_SUFFIX);
        match fs::remove_file(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("remove", PathBuf::from(temp), e)),
        }
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StorageError::io("open index", path, e))?;
        file.set_len(0)
            .map_err(|e| StorageError::io("empty index", path, e))?;
        file.sync_all()
            .map_err(|e| StorageError::io("fsync", path, e))?;
    }
    Ok(())
}

/// Writes the rebuilt indexes of the active segment in place, without a
/// sync, and leaves a file alone that already holds exactly these entries.
/// Safe because the active segment's indexes are never trusted before the
/// segment is sealed (which syncs them): every unclean start rebuilds them.
pub fn write_active_indexes(
    files: &SegmentFiles,
    offsets: &[OffsetEntry],
    times: &[TimeEntry],
) -> Result<(), StorageError> {
    write_unsynced(&files.index, offsets)?;
    write_unsynced(&files.time_index, times)
}

fn write_unsynced<E: crate::storage::index::IndexEntry>(
    path: &Path,
    entries: &[E],
) -> Result<(), StorageError> {
    let mut bytes = vec![0u8; entries.len() * E::SIZE];
    for (entry, out) in entries.iter().zip(bytes.chunks_exact_mut(E::SIZE)) {
        entry.encode(out);
    }
    match fs::read(path) {
        Ok(existing) if existing == bytes => return Ok(()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io("read index", path, e)),
    }
    fs::write(path, &bytes).map_err(|e| StorageError::io("rebuild index", path, e))
}

/// Writes the rebuilt indexes of a sealed segment.
pub fn write_sealed_indexes(
    files: &SegmentFiles,
    offsets: &[OffsetEntry],
    times: &[TimeEntry],
) -> Result<(), StorageError> {
    OffsetIndex::write_sealed(&files.index, offsets)
        .map_err(|e| StorageError::io("rebuild index", &files.index, e))?;
    TimeIndex::write_sealed(&files.time_index, times)
        .map_err(|e| StorageError::io("rebuild index", &files.time_index, e))?;
    Ok(())
}
