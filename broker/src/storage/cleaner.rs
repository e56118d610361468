//! Log compaction for one partition, with Kafka's semantics: keep the latest
//! record of every key at its original offset.
//!
//! What is cleaned:
//! - Only **sealed** segments, never the active one, and of the dirty ones
//!   (at or above the partition's first dirty offset, the
//!   `cleaner-offset-checkpoint`) only a leading run whose **last append**
//!   (the broker's clock, the `.log` mtime; record timestamps are never
//!   trusted for age) is at least `min.compaction.lag.ms` ago.
//! - A partition is due when its cleanable dirty bytes over all sealed bytes
//!   reach `min.cleanable.dirty.ratio`, or when its oldest dirty cleanable
//!   segment was last appended to more than `max.compaction.lag.ms` ago.
//!
//! How:
//! 1. A map key → latest offset is built over the dirty cleanable segments,
//!    one segment at a time, while its keys fit [`Cleaner::map_memory_bytes`]
//!    (keys are copied; each entry is charged its key plus a fixed overhead).
//!    The range cleaned ends after the last segment that fit.
//! 2. Every sealed segment from the log start to the end of that range is
//!    rewritten. A record is kept iff no later record with the same key lies
//!    in the range, it has a key (Kafka drops keyless records on compacted
//!    topics), and it is not an expired tombstone. Control batches
//!    (transaction markers) are copied untouched; a batch whose records are
//!    all gone is dropped; a batch that loses some records is re-encoded with
//!    `encode_batch`, keeping its codec, timestamp type, producer id and
//!    epoch, partition leader epoch and transactional flag, its base
//!    sequence moved with its first kept record; an unchanged batch is copied
//!    byte for byte. **Offsets never change**: gaps appear, which recovery
//!    accepts below the checkpoint and reads step over.
//!
//!    Transactions: only segments wholly below the last stable offset are
//!    cleanable (an open transaction's records may still be aborted). The
//!    records of aborted transactions (the partition's `.txnindex`) are
//!    dropped and never count as a key's latest record, so an aborted write
//!    cannot hide the committed value before it; markers are kept, so a
//!    read_committed reader of the cleaned log still sees where every
//!    transaction ended.
//! 3. **Tombstones** (a key with a null value) are removed only once the
//!    segment holding them was last appended to more than
//!    `delete.retention.ms` before `now`. A consumer that reads the log from
//!    the start within that time after the delete was written therefore sees
//!    the tombstone and can drop the key from its own state; a tombstone in
//!    a segment still being appended to, or appended to recently, is kept.
//!    Cleaning stamps a cleaned segment with the newest last-append time of
//!    its sources, so merging segments can only keep a tombstone longer.
//! 4. Segments are grouped, consecutive from the log start, so a cleaned
//!    segment stays within `segment.bytes` (counted over its sources) and its
//!    relative offsets fit a u32. A group where nothing would change is left
//!    alone. A cleaned segment is named after its first source and ends,
//!    logically, where the next segment starts.
//!
//! The swap (Kafka's `.cleaned` → `.swap` → rename), for a group with base
//! offset `B` and end `E`, where each step is durable before the next:
//! 1. `B.log.cleaned`, `B.index.cleaned`, `B.timeindex.cleaned` written and
//!    fsynced.
//! 2. `B.swap-end` (checksummed `E`) written atomically: it names which
//!    sources the swap replaces (those with base offsets in `[B, E)`).
//! 3. Under the partition's segment write lock, after checking the sources
//!    are all still in the log (retention may have deleted one: the group is
//!    then abandoned): the sources are retired (no new mapping of them), the
//!    indexes renamed `*.cleaned` → `*.swap`, then the `.log`:
//!    **`B.log.cleaned` → `B.log.swap` is the commit point**; directory
//!    fsynced.
//! 4. Still under the lock: each source's files deleted (indexes first,
//!    `.log` last), the swap files renamed to their final names (indexes
//!    first, `.log` last), directory fsynced, and the sources replaced in the
//!    segment list by one sealed segment. Readers holding old mappings keep
//!    them (unlinked files stay mapped).
//! 5. The checkpoint raised to `E`, then `B.swap-end` removed.
//!
//! `storage::recovery` reads every intermediate state: before the commit
//! point the old set is kept, after it the new set is completed, so a
//! `kill -9` at any instant recovers to one or the other.
//!
//! Errors: damage found in a sealed segment (bad CRC, a record that does not
//! decode, offsets that do not rise) fences the partition, as recovery
//! would; an I/O error abandons the group. Either way the sources stay and
//! the cleaner's own files are deleted: the cleaner never deletes data on an
//! error.
//!
//! I/O is throttled to [`Cleaner::io_bytes_per_sec`] (bytes read from
//! segments), so a cleaning never starves producers of disk bandwidth.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use sediment_protocol::records::{decode_batch, encode_batch, BatchOptions, Record};

use crate::error::StorageError;
use crate::storage::batch::BatchHeader;
use crate::storage::checkpoint::{sync_dir, write_checksummed};
use crate::storage::cleaner_checkpoint::{raise_first_dirty, read_first_dirty};
use crate::storage::index::{IndexCadence, OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};
use crate::storage::partition_log::PartitionLog;
use crate::storage::recovery::{
    self, remove_if_present, suffixed, swap_end_path, SegmentFiles, CLEANED_SUFFIX, INDEX_EXT,
    LOG_EXT, SWAP_SUFFIX, TIME_INDEX_EXT,
};
use crate::storage::sealed::SealedSegment;
use crate::storage::txn_index::AbortedTxn;

/// Default memory for the key → offset map: 128 MiB of keys and entries.
pub const MAP_MEMORY_BYTES: usize = 128 * 1024 * 1024;
/// Default I/O budget: 64 MiB/s of segment bytes read. A disk of this
/// machine kind writes fresh pages at 350–600 MB/s (DESIGN §3), so the
/// cleaner takes at most a small share of it and producers keep the rest.
pub const IO_BYTES_PER_SEC: u64 = 64 * 1024 * 1024;
/// Most bytes one batch may inflate to while it is cleaned.
pub const MAX_INFLATED: usize = 64 * 1024 * 1024;
/// What one map entry costs besides its key bytes (hash table slot, box, offset).
const ENTRY_OVERHEAD: usize = 64;
/// Attribute bit of a control batch.
const CONTROL_BIT: i16 = 0x20;

/// A cleaned segment as the swap leaves it on disk (under its final names).
#[derive(Debug, Clone)]
pub struct CleanedSegment {
    /// Its files, under their final names.
    pub files: SegmentFiles,
    /// Bytes in its `.log`.
    pub size: u64,
    /// Its logical end: the base offset of the segment that follows.
    pub next_offset: i64,
    /// Largest batch timestamp, `i64::MIN` when empty.
    pub max_timestamp: i64,
}

/// Why a swap did not complete, and whether it passed its commit point.
#[derive(Debug)]
pub struct SwapFailure {
    /// True once `B.log.swap` exists: the next open finishes the swap.
    pub committed: bool,
    /// What failed.
    pub error: StorageError,
}

/// What one cleaning did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanOutcome {
    /// Source segments replaced.
    pub segments_in: usize,
    /// Cleaned segments that replaced them.
    pub segments_out: usize,
    /// Bytes of the replaced sources.
    pub bytes_before: u64,
    /// Bytes of the cleaned segments.
    pub bytes_after: u64,
    /// Bytes read from segments (map build and rewrite).
    pub bytes_read: u64,
    /// Records removed.
    pub records_removed: u64,
    /// The first dirty offset afterwards (the checkpoint).
    pub first_dirty: i64,
    /// How long it took.
    pub elapsed: Duration,
}

/// The steps of a swap, in order; [`Cleaner::crash_after`] stops dead after
/// one of them (crash tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SwapStep {
    /// The `*.cleaned` files are written and synced.
    CleanedWritten,
    /// `B.swap-end` is written.
    SwapEndWritten,
    /// `B.index.cleaned` → `B.index.swap`.
    IndexSwapped,
    /// `B.timeindex.cleaned` → `B.timeindex.swap`.
    TimeIndexSwapped,
    /// `B.log.cleaned` → `B.log.swap` and the directory synced: committed.
    Committed,
    /// The first source's files are deleted (the others are not yet).
    FirstSourceDeleted,
    /// Every source's files are deleted.
    SourcesDeleted,
    /// `B.index.swap` → `B.index`.
    IndexRenamed,
    /// `B.log.swap` → `B.log` (after both indexes) and the directory synced.
    LogRenamed,
    /// The cleaner checkpoint is raised to the group's end.
    CheckpointRaised,
}

/// Settings of one cleaning pass.
#[derive(Debug, Clone)]
pub struct Cleaner {
    /// Memory for the key → offset map ([`MAP_MEMORY_BYTES`]).
    pub map_memory_bytes: usize,
    /// Segment bytes read per second at most; `None` is unthrottled.
    pub io_bytes_per_sec: Option<u64>,
    /// Clean even if the partition is not due (below the dirty ratio and
    /// within the maximum lag); the minimum lag still applies.
    pub force: bool,
    /// Checked between batches: once set, the pass stops, leaving the
    /// sources and removing its own files (broker shutdown).
    pub stop: Option<Arc<AtomicBool>>,
    /// Test hook: stop dead right after this step of the first swap, leaving
    /// every file as a `kill -9` there would (no clean-up, no rollback).
    pub crash_after: Option<SwapStep>,
}

impl Default for Cleaner {
    fn default() -> Self {
        Self {
            map_memory_bytes: MAP_MEMORY_BYTES,
            io_bytes_per_sec: Some(IO_BYTES_PER_SEC),
            force: false,
            stop: None,
            crash_after: None,
        }
    }
}

/// Why a group was not swapped in.
enum GroupError {
    /// Damage in sealed data: fence.
    Corrupt(StorageError),
    /// Any other failure: abandon the group.
    Failed(StorageError),
    /// Stopped (shutdown) or a simulated crash: leave quietly.
    Stopped,
}

impl From<StorageError> for GroupError {
    fn from(error: StorageError) -> Self {
        Self::Failed(error)
    }
}

/// Reads segment bytes no faster than the budget allows.
struct Throttle {
    rate: Option<u64>,
    start: Instant,
    bytes: u64,
}

impl Throttle {
    fn new(rate: Option<u64>) -> Self {
        Self {
            rate,
            start: Instant::now(),
            bytes: 0,
        }
    }

    fn account(&mut self, bytes: u64) {
        self.bytes += bytes;
        if let Some(rate) = self.rate.filter(|&r| r > 0) {
            let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
            let elapsed = self.start.elapsed();
            if due > elapsed {
                // Pacing the cleaner's own reads, not waiting for another thread.
                std::thread::sleep(due - elapsed);
            }
        }
    }
}

/// The key → latest offset map over the dirty range.
struct OffsetMap {
    latest: HashMap<Box<[u8]>, i64>,
    memory: usize,
    /// The partition's aborted transactions when the pass began.
    aborted: Vec<AbortedTxn>,
}

impl OffsetMap {
    /// Whether `batch` holds data of an aborted transaction.
    fn is_aborted(&self, batch: &sediment_protocol::records::RecordBatch) -> bool {
        batch.transactional
            && !batch.control
            && self.aborted.iter().any(|a| {
                a.producer_id == batch.producer_id
                    && a.first_offset <= batch.base_offset
                    && batch.base_offset < a.last_offset
            })
    }
}

/// What the pass decided up front.
struct Plan {
    /// Sealed segments, oldest first.
    sealed: Vec<Arc<SealedSegment>>,
    /// Index in `sealed` of the first dirty segment.
    first_dirty: usize,
    /// Index after the last cleanable dirty segment.
    cleanable_end: usize,
}

impl Cleaner {
    /// Cleans `log` if it is due at `now_ms` (the broker's clock). `Ok(None)`
    /// when nothing was due or nothing could be cleaned. Damage found while
    /// cleaning fences the partition and is returned as
    /// [`StorageError::Fenced`].
    pub fn clean(
        &self,
        log: &PartitionLog,
        now_ms: i64,
    ) -> Result<Option<CleanOutcome>, StorageError> {
        let config = log.config();
        if !config.cleanup_policy.compact {
            return Ok(None);
        }
        let started = Instant::now();
        let dir = log.dir().to_path_buf();
        let checkpoint = read_first_dirty(&dir);
        let Some(plan) = self.plan(log, checkpoint, now_ms) else {
            return Ok(None);
        };
        let mut throttle = Throttle::new(self.io_bytes_per_sec);
        let gaps_below = checkpoint.max(plan.sealed[0].base_offset());
        let (map, map_end_idx) = match self.build_map(log, &plan, gaps_below, &mut throttle) {
            Ok(Some(built)) => built,
            Ok(None) => return Ok(None),
            Err(GroupError::Corrupt(error)) => return Err(log.fence_after_cleaning(error)),
            Err(GroupError::Failed(error)) => return Err(error),
            Err(GroupError::Stopped) => return Ok(None),
        };
        let range = &plan.sealed[..map_end_idx];
        let map_end = range.last().map_or(checkpoint, |s| s.next_offset());
        let tombstone_cutoff = now_ms.saturating_sub(
            i64::try_from(config.delete_retention_ms.as_millis()).unwrap_or(i64::MAX),
        );
        let mut outcome = CleanOutcome {
            segments_in: 0,
            segments_out: 0,
            bytes_before: 0,
            bytes_after: 0,
            bytes_read: 0,
            records_removed: 0,
            first_dirty: checkpoint,
            elapsed: Duration::ZERO,
        };
        let mut crash_armed = self.crash_after;
        for group in group_segments(range, config.segment_bytes) {
            let end = group.last().map_or(map_end, |s| s.next_offset());
            match self.clean_group(
                log,
                group,
                end,
                &map,
                tombstone_cutoff,
                gaps_below,
                &mut throttle,
                &mut crash_armed,
            ) {
                Ok(None) => {}
                Ok(Some((cleaned, removed))) => {
                    outcome.segments_in += group.len();
                    outcome.segments_out += 1;
                    outcome.bytes_before += group.iter().map(|s| s.size()).sum::<u64>();
                    outcome.bytes_after += cleaned.size;
                    outcome.records_removed += removed;
                }
                Err(GroupError::Stopped) => return Ok(None),
                Err(GroupError::Corrupt(error)) => return Err(log.fence_after_cleaning(error)),
                Err(GroupError::Failed(error)) => {
                    tracing::error!(partition = %log.name(), error = %error, "log cleaning failed; the original segments stay");
                    return Err(error);
                }
            }
        }
        outcome.first_dirty = raise_first_dirty(&dir, map_end).map_err(|e| {
            StorageError::io(
                "write",
                crate::storage::cleaner_checkpoint::checkpoint_path(&dir),
                e,
            )
        })?;
        outcome.bytes_read = throttle.bytes;
        outcome.elapsed = started.elapsed();
        let ms = outcome.elapsed.as_secs_f64() * 1000.0;
        let mb_per_s = throttle.bytes as f64 / 1e6 / outcome.elapsed.as_secs_f64().max(1e-9);
        tracing::info!(
            partition = %log.name(),
            segments_in = outcome.segments_in,
            segments_out = outcome.segments_out,
            bytes_before = outcome.bytes_before,
            bytes_after = outcome.bytes_after,
            records_removed = outcome.records_removed,
            first_dirty = outcome.first_dirty,
            bytes_read = outcome.bytes_read,
            ms = format!("{ms:.1}"),
            mb_per_s = format!("{mb_per_s:.1}"),
            "log cleaned"
        );
        Ok(Some(outcome))
    }

    /// Which segments are dirty and cleanable, and whether the partition is due.
    fn plan(&self, log: &PartitionLog, checkpoint: i64, now_ms: i64) -> Option<Plan> {
        let config = log.config();
        let sealed = log.sealed_segments();
        let first_dirty = sealed.iter().position(|s| s.next_offset() > checkpoint)?;
        let min_lag = i64::try_from(config.min_compaction_lag_ms.as_millis()).unwrap_or(i64::MAX);
        let last_stable = log.last_stable_offset();
        let cleanable_end = first_dirty
            + sealed[first_dirty..]
                .iter()
                .take_while(|s| {
                    s.last_append_ms() <= now_ms.saturating_sub(min_lag)
                        && s.next_offset() <= last_stable
                })
                .count();
        if cleanable_end == first_dirty {
            return None;
        }
        let sealed_bytes: u64 = sealed.iter().map(|s| s.size()).sum();
        let dirty_bytes: u64 = sealed[first_dirty..cleanable_end]
            .iter()
            .map(|s| s.size())
            .sum();
        let ratio = if sealed_bytes == 0 {
            0.0
        } else {
            dirty_bytes as f64 / sealed_bytes as f64
        };
        let overdue = config.max_compaction_lag_ms.is_some_and(|max| {
            let max = i64::try_from(max.as_millis()).unwrap_or(i64::MAX);
            sealed[first_dirty].last_append_ms() < now_ms.saturating_sub(max)
        });
        let due = self.force
            || (sealed_bytes > 0 && ratio >= config.min_cleanable_dirty_ratio)
            || overdue;
        due.then_some(Plan {
            sealed,
            first_dirty,
            cleanable_end,
        })
    }

    /// Builds the key map over the cleanable dirty segments, one whole
    /// segment at a time while it fits. Returns the map and the index after
    /// the last segment it covers.
    fn build_map(
        &self,
        log: &PartitionLog,
        plan: &Plan,
        gaps_below: i64,
        throttle: &mut Throttle,
    ) -> Result<Option<(OffsetMap, usize)>, GroupError> {
        let mut map = OffsetMap {
            latest: HashMap::new(),
            memory: 0,
            aborted: log.aborted_txns(),
        };
        let mut covered = plan.first_dirty;
        for segment in &plan.sealed[plan.first_dirty..plan.cleanable_end] {
            let mut keys: HashMap<Box<[u8]>, i64> = HashMap::new();
            let mut memory = 0usize;
            self.for_each_batch(log, segment, gaps_below, throttle, |_, batch| {
                if let Some(decoded) = batch {
                    if !decoded.control && !map.is_aborted(&decoded) {
                        for record in &decoded.records {
                            if let Some(key) = &record.key {
                                if let Some(slot) = keys.get_mut(key.as_ref()) {
                                    *slot = record.offset;
                                } else {
                                    memory += key.len() + ENTRY_OVERHEAD;
                                    keys.insert(key.as_ref().into(), record.offset);
                                }
                            }
                        }
                    }
                }
                Ok(())
            })?;
            let added: usize = keys
                .keys()
                .filter(|k| !map.latest.contains_key(*k))
                .map(|k| k.len() + ENTRY_OVERHEAD)
                .sum();
            if map.memory + added > self.map_memory_bytes {
                if covered == plan.first_dirty {
                    tracing::warn!(partition = %log.name(), segment = %segment.files().log.display(), memory, limit = self.map_memory_bytes, "the keys of one segment do not fit the cleaner's map; the partition is not cleaned");
                    return Ok(None);
                }
                break;
            }
            map.memory += added;
            map.latest.extend(keys);
            covered += 1;
        }
        Ok(Some((map, covered)))
    }

    /// Walks one sealed segment's batches: checks each (CRC, counts, rising
    /// offsets) and hands `visit` its bytes and, for data batches, its
    /// decoded records (`None` for a control batch).
    fn for_each_batch(
        &self,
        log: &PartitionLog,
        segment: &SealedSegment,
        gaps_below: i64,
        throttle: &mut Throttle,
        mut visit: impl FnMut(
            Bytes,
            Option<sediment_protocol::records::RecordBatch>,
        ) -> Result<(), GroupError>,
    ) -> Result<(), GroupError> {
        let files = segment.files();
        let Some(map) = recovery::map_read_only(&files.log)? else {
            return Ok(());
        };
        let bytes = Bytes::from_owner(map);
        let len = (segment.size() as usize).min(bytes.len());
        let corrupt = |position: usize, reason: String| {
            GroupError::Corrupt(StorageError::Fenced {
                partition: log.name().to_string(),
                file: files.log.clone(),
                position: position as u64,
                reason: format!(
                    "the cleaner found an invalid batch inside a sealed segment: {reason}"
                ),
            })
        };
        let mut position = 0usize;
        let mut previous_last = i64::MIN;
        while position < len {
            if self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
            {
                return Err(GroupError::Stopped);
            }
            let header = BatchHeader::parse(&bytes[position..len])
                .map_err(|defect| corrupt(position, defect.to_string()))?;
            recovery::verify_counts(&header, gaps_below)
                .and_then(|()| header.verify_crc())
                .map_err(|defect| corrupt(position, defect.to_string()))?;
            if header.base_offset() <= previous_last {
                return Err(corrupt(
                    position,
                    format!(
                        "batch starts at offset {} after a batch ending at {previous_last}",
                        header.base_offset()
                    ),
                ));
            }
            previous_last = header.last_offset();
            let total = header.total_len();
            throttle.account(total as u64);
            let raw = bytes.slice(position..position + total);
            let decoded = if header.attributes() & CONTROL_BIT != 0 {
                None
            } else {
                Some(
                    decode_batch(raw.clone(), MAX_INFLATED)
                        .map_err(|e| corrupt(position, format!("records do not decode: {e}")))?,
                )
            };
            visit(raw, decoded)?;
            position += total;
        }
        Ok(())
    }

    /// Rewrites one group and swaps it in. `Ok(None)` when nothing in it
    /// changes (or retention took a source meanwhile); otherwise the cleaned
    /// segment and how many records it lost.
    #[allow(clippy::too_many_arguments)]
    fn clean_group(
        &self,
        log: &PartitionLog,
        group: &[Arc<SealedSegment>],
        end: i64,
        map: &OffsetMap,
        tombstone_cutoff: i64,
        gaps_below: i64,
        throttle: &mut Throttle,
        crash_after: &mut Option<SwapStep>,
    ) -> Result<Option<(CleanedSegment, u64)>, GroupError> {
        let dir = log.dir().to_path_buf();
        let base = group[0].base_offset();
        let mut out = Output::new(&dir, base, log.config().index_interval_bytes);
        let mut removed = 0u64;
        let result = (|| -> Result<(), GroupError> {
            for segment in group {
                let expired_tombstones = segment.last_append_ms() < tombstone_cutoff;
                self.for_each_batch(log, segment, gaps_below, throttle, |raw, decoded| {
                    let Some(decoded) = decoded else {
                        return out.emit(raw);
                    };
                    let total = decoded.records.len();
                    if map.is_aborted(&decoded) {
                        removed += total as u64;
                        return out.mark_changed();
                    }
                    let kept: Vec<Record> = decoded
                        .records
                        .iter()
                        .filter(|record| {
                            let Some(key) = &record.key else {
                                return false;
                            };
                            let superseded = map
                                .latest
                                .get(key.as_ref())
                                .is_some_and(|&latest| latest > record.offset);
                            let expired = record.value.is_none() && expired_tombstones;
                            !superseded && !expired
                        })
                        .cloned()
                        .collect();
                    removed += (total - kept.len()) as u64;
                    if kept.len() == total {
                        return out.emit(raw);
                    }
                    out.mark_changed()?;
                    if kept.is_empty() {
                        return Ok(());
                    }
                    let moved = kept[0].offset - decoded.base_offset;
                    let options = BatchOptions {
                        base_offset: kept[0].offset,
                        compression: decoded.compression,
                        timestamp_type: decoded.timestamp_type,
                        producer_id: decoded.producer_id,
                        producer_epoch: decoded.producer_epoch,
                        base_sequence: advance_sequence(decoded.base_sequence, moved),
                        partition_leader_epoch: decoded.partition_leader_epoch,
                        transactional: decoded.transactional,
                        control: false,
                    };
                    let encoded = encode_batch(&kept, &options).map_err(|e| {
                        StorageError::io(
                            "re-encode a batch of",
                            &segment.files().log,
                            std::io::Error::other(e),
                        )
                    })?;
                    out.emit(encoded)
                })?;
            }
            Ok(())
        })();
        if let Err(error) = result {
            out.discard();
            return Err(error);
        }
        if !out.changed {
            return Ok(None);
        }
        let last_append = group.iter().map(|s| s.last_append_ms()).max().unwrap_or(0);
        let cleaned = match out.finish(last_append, end) {
            Ok(cleaned) => cleaned,
            Err(error) => {
                out.discard();
                return Err(error.into());
            }
        };
        match self.swap(log, group, cleaned, crash_after) {
            Ok(Some(cleaned)) => Ok(Some((cleaned, removed))),
            Ok(None) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Steps 2–5 of the swap (module doc). The cleaned files exist.
    fn swap(
        &self,
        log: &PartitionLog,
        group: &[Arc<SealedSegment>],
        cleaned: CleanedSegment,
        crash_after: &mut Option<SwapStep>,
    ) -> Result<Option<CleanedSegment>, GroupError> {
        let dir = log.dir().to_path_buf();
        let base = cleaned.files.base_offset;
        let end = cleaned.next_offset;
        let crash = |step: SwapStep, armed: &mut Option<SwapStep>| {
            if *armed == Some(step) {
                *armed = None;
                true
            } else {
                false
            }
        };
        if crash(SwapStep::CleanedWritten, crash_after) {
            return Err(GroupError::Stopped);
        }
        let end_file = swap_end_path(&dir, base);
        let abandon = |dir: &Path| discard_cleaner_files(dir, base);
        if let Err(e) = write_checksummed(&end_file, format!("{end}\n").as_bytes()) {
            abandon(&dir);
            return Err(StorageError::io("write", &end_file, e).into());
        }
        if crash(SwapStep::SwapEndWritten, crash_after) {
            return Err(GroupError::Stopped);
        }
        let mut crashed = false;
        let mut committed = false;
        let sources: Vec<i64> = group.iter().map(|s| s.base_offset()).collect();
        let swapped = log.replace_sealed(group, || {
            let mut step = |s: SwapStep| {
                let hit = *crash_after == Some(s);
                if hit {
                    *crash_after = None;
                    crashed = true;
                }
                hit
            };
            let stop = |committed| SwapFailure {
                committed,
                error: StorageError::Config("the cleaner stopped (simulated crash)".to_string()),
            };
            let fail = |committed, error| SwapFailure { committed, error };
            for (ext, s) in [
                (INDEX_EXT, SwapStep::IndexSwapped),
                (TIME_INDEX_EXT, SwapStep::TimeIndexSwapped),
            ] {
                let from = suffixed(&dir, base, ext, CLEANED_SUFFIX);
                let to = suffixed(&dir, base, ext, SWAP_SUFFIX);
                std::fs::rename(&from, &to)
                    .map_err(|e| fail(false, StorageError::io("rename", &from, e)))?;
                if step(s) {
                    return Err(stop(false));
                }
            }
            let from = suffixed(&dir, base, LOG_EXT, CLEANED_SUFFIX);
            let to = suffixed(&dir, base, LOG_EXT, SWAP_SUFFIX);
            std::fs::rename(&from, &to)
                .map_err(|e| fail(false, StorageError::io("rename", &from, e)))?;
            // The commit point: from here the swap is finished, by us or by
            // the next open.
            committed = true;
            sync_dir(&dir).map_err(|e| fail(true, StorageError::io("fsync dir", &dir, e)))?;
            if step(SwapStep::Committed) {
                return Err(stop(true));
            }
            for (i, &source) in sources.iter().enumerate() {
                let files = SegmentFiles::new(&dir, source);
                for path in [&files.index, &files.time_index, &files.log] {
                    remove_if_present(path).map_err(|e| fail(true, e))?;
                }
                if i == 0 && sources.len() > 1 && step(SwapStep::FirstSourceDeleted) {
                    return Err(stop(true));
                }
            }
            if step(SwapStep::SourcesDeleted) {
                return Err(stop(true));
            }
            let finals = SegmentFiles::new(&dir, base);
            for (ext, to) in [
                (INDEX_EXT, &finals.index),
                (TIME_INDEX_EXT, &finals.time_index),
                (LOG_EXT, &finals.log),
            ] {
                let from = suffixed(&dir, base, ext, SWAP_SUFFIX);
                std::fs::rename(&from, to)
                    .map_err(|e| fail(true, StorageError::io("rename", &from, e)))?;
                if ext == INDEX_EXT && step(SwapStep::IndexRenamed) {
                    return Err(stop(true));
                }
            }
            sync_dir(&dir).map_err(|e| fail(true, StorageError::io("fsync dir", &dir, e)))?;
            if step(SwapStep::LogRenamed) {
                return Err(stop(true));
            }
            Ok(cleaned.clone())
        });
        match swapped {
            Ok(true) => {}
            Ok(false) => {
                // Retention took a source meanwhile: abandon this group.
                discard_cleaner_files(&dir, base);
                return Ok(None);
            }
            Err(_) if crashed => return Err(GroupError::Stopped),
            Err(error) => {
                // Before the commit point the sources are intact: remove our
                // files. After it the partition is poisoned and the next
                // open finishes the swap, so they stay.
                if !committed {
                    discard_cleaner_files(&dir, base);
                }
                return Err(error.into());
            }
        }
        raise_first_dirty(&dir, end).map_err(|e| {
            StorageError::io(
                "write",
                crate::storage::cleaner_checkpoint::checkpoint_path(&dir),
                e,
            )
        })?;
        if crash(SwapStep::CheckpointRaised, crash_after) {
            return Err(GroupError::Stopped);
        }
        remove_if_present(&end_file)?;
        Ok(Some(cleaned))
    }
}

/// Removes the cleaner's files of the group at `base` that never committed:
/// the swap-end first (so what remains never looks like a finished swap),
/// then the `*.cleaned` and index `*.swap` files. Best effort: recovery
/// removes whatever is left.
fn discard_cleaner_files(dir: &Path, base: i64) {
    let mut paths = vec![swap_end_path(dir, base)];
    for ext in [INDEX_EXT, TIME_INDEX_EXT, LOG_EXT] {
        paths.push(suffixed(dir, base, ext, CLEANED_SUFFIX));
        if ext != LOG_EXT {
            paths.push(suffixed(dir, base, ext, SWAP_SUFFIX));
        }
    }
    for path in paths {
        if let Err(error) = remove_if_present(&path) {
            tracing::warn!(file = %path.display(), %error, "cannot remove a file of an abandoned cleaning; recovery removes it");
        }
    }
}

/// A producer sequence moved forward by `by` records (sequences wrap at
/// `i32::MAX` to 0, as Kafka's do); -1 (no sequence) stays.
fn advance_sequence(base_sequence: i32, by: i64) -> i32 {
    if base_sequence < 0 {
        return base_sequence;
    }
    let wrapped = (i64::from(base_sequence) + by).rem_euclid(i64::from(i32::MAX) + 1);
    i32::try_from(wrapped).unwrap_or(0)
}

/// Groups consecutive segments so each group's sources total at most
/// `segment_bytes` (a single larger segment is a group of its own) and its
/// offsets stay within u32 of its base.
fn group_segments(
    segments: &[Arc<SealedSegment>],
    segment_bytes: u64,
) -> Vec<&[Arc<SealedSegment>]> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let base = segments[start].base_offset();
        let mut size = segments[start].size();
        let mut end = start + 1;
        while end < segments.len() {
            let next = &segments[end];
            let fits_bytes = size + next.size() <= segment_bytes;
            let fits_offsets = next.next_offset() - 1 - base <= i64::from(u32::MAX);
            if !(fits_bytes && fits_offsets) {
                break;
            }
            size += next.size();
            end += 1;
        }
        groups.push(&segments[start..end]);
        start = end;
    }
    groups
}

/// The cleaned `.log` being written, opened only once something changes
/// (until then the kept batches are slices of the sources' mappings).
struct Output {
    dir: PathBuf,
    base: i64,
    file: Option<BufWriter<File>>,
    pending: Vec<Bytes>,
    changed: bool,
    position: u64,
    cadence: IndexCadence,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
}

impl Output {
    fn new(dir: &Path, base: i64, index_interval: u64) -> Self {
        Self {
            dir: dir.to_path_buf(),
            base,
            file: None,
            pending: Vec::new(),
            changed: false,
            position: 0,
            cadence: IndexCadence::new(index_interval),
            offsets: Vec::new(),
            times: Vec::new(),
        }
    }

    fn path(&self, ext: &str) -> PathBuf {
        suffixed(&self.dir, self.base, ext, CLEANED_SUFFIX)
    }

    /// Appends one batch to the cleaned segment.
    fn emit(&mut self, batch: Bytes) -> Result<(), GroupError> {
        let header = BatchHeader::parse(&batch).map_err(|defect| {
            StorageError::io(
                "write",
                self.path(LOG_EXT),
                std::io::Error::other(format!("the cleaner built an invalid batch: {defect}")),
            )
        })?;
        let relative = u32::try_from(header.base_offset() - self.base).map_err(|_| {
            StorageError::io(
                "write",
                self.path(LOG_EXT),
                std::io::Error::other(
                    "a batch's offset does not fit the segment's relative offsets",
                ),
            )
        })?;
        let (offset_entry, time_entry) = self.cadence.on_batch(
            relative,
            self.position as u32,
            batch.len() as u64,
            header.max_timestamp(),
        );
        self.offsets.extend(offset_entry);
        self.times.extend(time_entry);
        self.position += batch.len() as u64;
        match &mut self.file {
            Some(file) => file
                .write_all(&batch)
                .map_err(|e| StorageError::io("write", self.path(LOG_EXT), e))?,
            None => self.pending.push(batch),
        }
        Ok(())
    }

    /// Something differs from the sources: start writing the file.
    fn mark_changed(&mut self) -> Result<(), GroupError> {
        self.changed = true;
        if self.file.is_some() {
            return Ok(());
        }
        let path = self.path(LOG_EXT);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| StorageError::io("create", &path, e))?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        for batch in std::mem::take(&mut self.pending) {
            file.write_all(&batch)
                .map_err(|e| StorageError::io("write", &path, e))?;
        }
        self.file = Some(file);
        Ok(())
    }

    /// Syncs the `.log.cleaned`, stamps its last-append time and writes
    /// both indexes (`*.cleaned`, synced).
    fn finish(&mut self, last_append_ms: i64, end: i64) -> Result<CleanedSegment, StorageError> {
        let path = self.path(LOG_EXT);
        let file = match self.file.take() {
            Some(file) => file
                .into_inner()
                .map_err(|e| StorageError::io("write", &path, e.into_error()))?,
            // Every batch was dropped: an empty segment keeps the base offset.
            None => OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| StorageError::io("create", &path, e))?,
        };
        let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(last_append_ms).unwrap_or(0));
        file.set_modified(time)
            .map_err(|e| StorageError::io("set the modification time of", &path, e))?;
        file.sync_all()
            .map_err(|e| StorageError::io("fsync", &path, e))?;
        OffsetIndex::write_sealed(&self.path(INDEX_EXT), &self.offsets)
            .map_err(|e| StorageError::io("write index", self.path(INDEX_EXT), e))?;
        TimeIndex::write_sealed(&self.path(TIME_INDEX_EXT), &self.times)
            .map_err(|e| StorageError::io("write index", self.path(TIME_INDEX_EXT), e))?;
        Ok(CleanedSegment {
            files: SegmentFiles::new(&self.dir, self.base),
            size: self.position,
            next_offset: end,
            max_timestamp: self.cadence.max_timestamp(),
        })
    }

    /// Removes whatever this output wrote.
    fn discard(&mut self) {
        self.file = None;
        discard_cleaner_files(&self.dir, self.base);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_sequences_when_advanced_then_wrap_like_kafka() {
        assert_eq!(advance_sequence(-1, 5), -1);
        assert_eq!(advance_sequence(10, 5), 15);
        assert_eq!(advance_sequence(i32::MAX, 1), 0);
        assert_eq!(advance_sequence(i32::MAX - 1, 3), 1);
    }
}
