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
}

/// Lists a partition directory.
pub fn list_partition_dir(dir: &Path) -> io::Result<DirListing> {
    let mut listing = DirListing::default();
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(TEMP_SUFFIX) || name.ends_with(DELETED_SUFFIX) {
            listing.strays.push(path);
            continue;
        }
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let Ok(base_offset) = stem.parse::<i64>() else {
            continue;
        };
        match ext {
            LOG_EXT => logs.push(base_offset),
            INDEX_EXT | TIME_INDEX_EXT => indexes.push((base_offset, path)),
            _ => {}
        }
    }
    logs.sort_unstable();
    listing.segments = logs
        .iter()
        .map(|&base| SegmentFiles::new(dir, base))
        .collect();
    listing.orphan_indexes = indexes
        .into_iter()
        .filter(|(base, _)| logs.binary_search(base).is_err())
        .map(|(_, path)| path)
        .collect();
    listing.strays.sort();
    listing.orphan_indexes.sort();
    Ok(listing)
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
    scan_segment_above(bytes, base_offset, verify_from, index_interval)
}

/// [`scan_segment`] that checks the CRC-32C only of batches whose last offset
/// is at or above `verify_from` (the recovery point): the batches below it
/// were durable when the point was checkpointed and are trusted, so only
/// their headers are read (length, magic, record count, offset continuity).
pub fn scan_segment_above(
    bytes: &[u8],
    base_offset: i64,
    verify_from: i64,
    index_interval: u64,
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
            header.verify_counts().and_then(|()| header.verify_crc())
        } else {
            Ok(())
        };
        if let Err(defect) =
            checked.and_then(|()| check_continuity(&header, scan.next_offset, base_offset))
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
fn check_continuity(
    header: &BatchHeader<'_>,
    expected: i64,
    segment_base: i64,
) -> Result<(), BatchDefect> {
    header.verify_counts()?;
    if header.base_offset() != expected || header.last_offset() - segment_base > i64::from(u32::MAX)
    {
        return Err(BatchDefect::OffsetGap {
            expected,
            found: header.base_offset(),
        });
    }
    Ok(())
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
    let count = listing.segments.len();
    let mut expected_base: Option<i64> = None;
    for (i, files) in listing.segments.iter().enumerate() {
        let is_last = i + 1 == count;
        if let Some(expected) = expected_base {
            if files.base_offset != expected {
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
                let scan =
                    scan_segment_above(bytes, files.base_offset, verify_from, index_interval);
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
