//! The log of one partition: its segments, appends, reads, rolls, the high
//! watermark, group commit and poisoning.
//!
//! Invariants:
//! - Offsets are contiguous from `log_start` to `log_end`; an offset handed out
//!   once is never handed out again, even after a crash and recovery.
//! - Under [`FlushPolicy::Always`] the high watermark is the durable end of
//!   the log: it moves only after an `fdatasync` that covers it completed.
//!   Readers never see bytes past it.
//! - Group commit: [`PartitionLog::make_durable`] waits for a sync covering the
//!   caller's offset; if none is running it starts one covering *everything*
//!   appended so far, so one fdatasync serves every batch that arrived while
//!   the previous one ran.
//! - Timestamps: a CreateTime append whose timestamps lie outside the topic's
//!   `message.timestamp.before.max.ms` / `after.max.ms` of the broker's clock
//!   is refused whole; on a LogAppendTime topic every batch is stamped with
//!   the broker's clock at append. Rolls (`segment.ms`) and time retention
//!   run on the broker's clock only, never on record timestamps.
//! - Space for an append (log bytes and index entries) is reserved before
//!   anything is written. A failed reservation refuses that append and
//!   nothing else: the next append tries again, so space freed on a full
//!   disk is picked up without a restart.
//! - After any write or sync error the partition is poisoned: appends and
//!   waits fail, reads of what was readable continue, and only a reopen
//!   (which runs recovery) clears it. An fsync is never retried, since after
//!   a failed fsync the kernel may have dropped the dirty pages.
//!
//! - Disk follows the data (DESIGN §3, "Resource model"): segment space is
//!   reserved ahead of appends in steps that start at [`MIN_RESERVATION`] and
//!   double while appends use each reservation up within [`FAST_REFILL`], up
//!   to `preallocate_bytes`; a slower partition starts over at the minimum.
//!   What is reserved past the written length is returned when the segment
//!   rolls, when the partition closes, when it has been idle (see
//!   [`PartitionLog::release_reservation`]) and when it is reopened after a
//!   crash (truncating to the data length frees `FALLOC_FL_KEEP_SIZE`
//!   blocks). Mappings start at the data and grow with it.
//! - Open files follow the work (principle 7): only the active segment
//!   keeps its files open and mapped; sealed segments are described in
//!   memory and opened on demand through a bounded, shared
//!   [`SegmentCache`] (`storage::sealed`), so descriptors and mappings grow
//!   with active partitions and recently read segments, not with segments on
//!   disk.
//! - A full disk is not damage: opening never needs free space (indexes grow
//!   lazily; an index recovery cannot rewrite is emptied, and lookups walk
//!   the segment instead), so the partition opens and serves reads, and
//!   appends fail with the I/O error until space exists.
//!
//! - The log start offset only moves forward. Retention moves it to the first
//!   segment kept; DeleteRecords ([`PartitionLog::delete_records_before`])
//!   may move it into the middle of a segment, so it is persisted in
//!   [`LOG_START_FILE`] in the partition directory (checksummed, written
//!   atomically) *before* it moves in memory or any segment is deleted: a
//!   crash at any point leaves either the old start or the new one, never
//!   records that were acknowledged as deleted coming back. On open, the
//!   start is the larger of the first segment's base offset and that file's
//!   value (capped at the log end).
//!
//! - Idempotent producers (`storage::producer_state`): an append's batches
//!   are checked against the producer state and the state updated under the
//!   writer lock, atomically with the write. A retried batch is not written
//!   again: the append answers with its original offsets. The state is
//!   snapshotted at rolls and at close (`<offset>.snapshot`) and rebuilt on
//!   open from the newest snapshot plus the batches after it, so it survives
//!   a kill -9; snapshots below the oldest segment kept are deleted.
//!
//! - Transactions (`storage::txn_index`): the coordinator ends a
//!   transaction with [`PartitionLog::append_marker`], a control batch
//!   appended under the writer lock like any batch. The first unstable
//!   offset (the first batch of the oldest open transaction) is kept in an
//!   atomic: an append that opens a transaction lowers it at once, a marker
//!   raises it only when the high watermark passes the marker (Kafka's
//!   rule: an undurable marker does not make its transaction stable). The
//!   last stable offset is the smaller of it and the high watermark, and
//!   read_committed reads
//!   ([`PartitionLog::read_committed`]) stop there and carry the aborted
//!   transactions overlapping what they return.
//!
//! Lock order: `writer` before `segments`, `writer` before `sync`, and
//! `sync` before `producers` (the high watermark releases stable
//! transactions); the
//! syncing thread never holds `sync` while taking `writer`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use crate::basics::{lock, now_ms, read_lock, write_lock};
use crate::config::{FlushPolicy, LogConfig, TimestampType};
use crate::error::StorageError;
use crate::storage::batch::{BatchHeader, BatchIter};
use crate::storage::checkpoint::{read_checksummed, sync_dir, write_checksummed};
use crate::storage::encode::{encode_marker, TxnMarker};
use crate::storage::flusher::{FlushSlot, Flushable};
use crate::storage::index::IndexCadence;
use crate::storage::producer_state::{self, Checked, ProducerStateTable};
use crate::storage::recovery::{self, Finding, RecoveryHint, SegmentFiles};
use crate::storage::retention::{segments_to_delete, SegmentStats};
use crate::storage::sealed::{LogSegment, SealedSegment, SegmentCache};
use crate::storage::segment::{self, resume_cadence, AppendStamp, Segment};
use crate::storage::txn_index::{AbortedIndex, AbortedTxn};
use crate::telemetry::{PartitionTraffic, FSYNC_SECONDS};

/// No open transaction: the first unstable offset is unbounded.
const NO_UNSTABLE_OFFSET: i64 = i64::MAX;

/// What an append assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Offset the next append will get; pass it to [`PartitionLog::make_durable`].
    pub next_offset: i64,
    /// The broker time stamped on the batches of a LogAppendTime topic, in ms
    /// since the epoch; -1 on a CreateTime topic (Produce's `log_append_time_ms`).
    pub log_append_time_ms: i64,
}

/// What a read returned.
#[derive(Debug, Clone)]
pub struct ReadOutcome {
    /// Whole batches exactly as stored; empty at the high watermark.
    pub bytes: Bytes,
    /// Offset after the last batch returned (the requested offset if none).
    pub next_offset: i64,
    /// The high watermark when the read started.
    pub high_watermark: i64,
    /// The log start offset when the read started.
    pub log_start: i64,
}

/// What a read_committed read returned.
#[derive(Debug, Clone)]
pub struct CommittedRead {
    /// The read, cut before the first batch at or past the last stable offset.
    pub read: ReadOutcome,
    /// The last stable offset when the read started.
    pub last_stable_offset: i64,
    /// Aborted transactions with data in what was returned.
    pub aborted: Vec<AbortedTxn>,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes freed.
    pub bytes_deleted: u64,
    /// The log start offset afterwards.
    pub log_start: i64,
}

/// Where the durable part of the log ends (for diagnostics and crash tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurablePosition {
    /// The active segment's `.log`.
    pub file: PathBuf,
    /// Bytes of it covered by a completed fdatasync.
    pub len: u64,
    /// Offset after the last durable record.
    pub offset: i64,
}

/// File in the partition directory holding the log start offset set by
/// DeleteRecords (a checksummed decimal offset). Absent until the first
/// DeleteRecords; recovery ignores it (it is not a segment file).
pub const LOG_START_FILE: &str = "log-start-offset";

/// First (and smallest) segment reservation step; capped by `preallocate_bytes`.
pub const MIN_RESERVATION: u64 = 64 * 1024;
/// A reservation used up within this time doubles the next step; a slower one
/// resets it to the minimum, so the step follows the partition's write rate.
pub const FAST_REFILL: Duration = Duration::from_secs(1);

struct Writer {
    active: Arc<Segment>,
    position: u64,
    /// End of the space reserved in the active `.log` (at least `position`).
    reserved: u64,
    /// Size of the last reservation step.
    step: u64,
    /// When the last reservation was made (`None` before the first one).
    reserved_at: Option<Instant>,
    /// True from a failed reservation until the next one succeeds (logging).
    reservation_failing: bool,
    next_offset: i64,
    cadence: IndexCadence,
    created: Instant,
}

impl Writer {
    /// A writer appending at `position` of `active`, with nothing reserved.
    fn new(active: Arc<Segment>, position: u64, next_offset: i64, cadence: IndexCadence) -> Self {
        Self {
            active,
            position,
            reserved: position,
            step: 0,
            reserved_at: None,
            reservation_failing: false,
            next_offset,
            cadence,
            created: Instant::now(),
        }
    }
}

struct SyncState {
    syncing: bool,
    durable_offset: i64,
    durable_len: u64,
    durable_segment: i64,
    /// Bytes of the durable segment whose page cache was dropped
    /// ([`LogConfig::page_cache_window`]).
    cache_dropped: u64,
}

/// Page size for page-cache drops (smaller than any page the kernel uses).
const PAGE: u64 = 4096;

/// One partition's append-only log.
pub struct PartitionLog {
    name: String,
    dir: PathBuf,
    /// Swapped whole by [`PartitionLog::reconfigure`]; readers take a snapshot.
    config: RwLock<Arc<LogConfig>>,
    /// Oldest first; the last is the active segment, every other one sealed.
    segments: RwLock<Vec<LogSegment>>,
    /// Where sealed segments are opened on demand (shared per `LogManager`).
    cache: Arc<SegmentCache>,
    writer: Mutex<Writer>,
    sync: Mutex<SyncState>,
    sync_done: Condvar,
    log_end: AtomicI64,
    high_watermark: AtomicI64,
    log_start: AtomicI64,
    /// Serialises DeleteRecords on this partition, so [`LOG_START_FILE`]
    /// is written by one caller at a time and only ever grows.
    log_start_update: Mutex<()>,
    poison: Mutex<Option<String>>,
    high_watermark_tx: watch::Sender<i64>,
    /// Idempotent producers' state (`storage::producer_state`). Changed only
    /// under `writer` (appends, rolls, close) or alone (expiry); lock order
    /// `writer` before `producers`.
    producers: Mutex<ProducerStateTable>,
    /// [`ProducerStateTable::first_unstable_offset`], or
    /// [`NO_UNSTABLE_OFFSET`], counting also the transactions in
    /// `closing`: lowered at once when a transaction opens, raised only once
    /// a closing marker is below the high watermark. Written under
    /// `producers`.
    first_unstable: AtomicI64,
    /// Transactions whose marker is written but not yet below the high
    /// watermark, as (offset after the marker, first offset of the
    /// transaction): as in Kafka, a transaction stops holding the last
    /// stable offset only once its marker is durable. Lock order
    /// `producers` before `closing`.
    closing: Mutex<Vec<(i64, i64)>>,
    /// Aborted transactions; lock order `writer` before `producers` before `aborted`.
    aborted: Mutex<AbortedIndex>,
    /// This partition's place in the flusher's queue (`storage::flusher`).
    flush_slot: FlushSlot,
    /// Records and bytes in and out, counted by the Produce and Fetch
    /// handlers for the metrics endpoint.
    traffic: PartitionTraffic,
}

impl Flushable for PartitionLog {
    fn flush_slot(&self) -> &FlushSlot {
        &self.flush_slot
    }

    fn sync_appended(&self) {
        // A failure poisons the partition, which logs it and fails waiters.
        let _ = self.flush();
    }
}

impl PartitionLog {
    /// Opens (creating if needed) the partition in `dir`, running recovery as
    /// `hint` allows. A fenced partition is an error whose files are untouched.
    ///
    /// Sealed segments are opened on demand through a cache of this log's
    /// own, of `config.max_open_segments`; a `LogManager` shares one cache
    /// among its partitions ([`PartitionLog::open_with_cache`]).
    pub fn open(dir: &Path, config: LogConfig, hint: RecoveryHint) -> Result<Self, StorageError> {
        let cache = Arc::new(SegmentCache::new(config.max_open_segments));
        Self::open_with_cache(dir, config, hint, cache)
    }

    /// [`PartitionLog::open`], opening sealed segments through `cache`.
    pub fn open_with_cache(
        dir: &Path,
        config: LogConfig,
        hint: RecoveryHint,
        cache: Arc<SegmentCache>,
    ) -> Result<Self, StorageError> {
        config.validate().map_err(StorageError::Config)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io("create", dir, e))?;
        // A swap of cleaned segments a crash interrupted is finished or
        // rolled back first, so the plan sees one consistent set of segments.
        if let Err(error) = recovery::finish_interrupted_swaps(dir, &name) {
            tracing::error!(partition = %name, error = %error, "partition fenced: an interrupted swap of cleaned segments cannot be completed");
            return Err(error);
        }
        let plan = recovery::plan_recovery(dir, hint, config.index_interval_bytes)?;
        if let Some(Finding::Fence {
            file,
            position,
            reason,
        }) = plan.fence
        {
            tracing::error!(partition = %name, file = %file.display(), position, %reason, "partition fenced: recovery will not repair damage inside sealed data");
            return Err(StorageError::Fenced {
                partition: name,
                file,
                position,
                reason,
            });
        }
        let mut dir_changed = false;
        for finding in &plan.findings {
            apply_finding(&name, finding)?;
            dir_changed |= matches!(finding, Finding::RemoveStray { .. });
        }

        let planned = plan.segments;
        let mut segments = Vec::with_capacity(planned.len().max(1));
        if planned.is_empty() {
            let files = SegmentFiles::new(dir, 0);
            // The mapping starts at one page and grows with the data.
            segments.push(LogSegment::Active(Arc::new(Segment::create(
                files,
                0,
                config.index_max_bytes,
            )?)));
            dir_changed = true;
        }
        let last = planned.len().saturating_sub(1);
        // Bytes of the active segment above the recovery point survived the
        // crash but may sit only in the page cache; those below it are durable.
        let active_unsynced = planned.last().is_some_and(|s| !s.verified.is_empty());
        for (i, planned) in planned.into_iter().enumerate() {
            if let (Some((offsets, times)), true) = (&planned.rebuilt_index, i == last) {
                // Only sealing makes an active index trusted: no sync needed.
                if let Err(error) = recovery::write_active_indexes(&planned.files, offsets, times) {
                    tracing::warn!(partition = %name, error = %error, "cannot rebuild the indexes (is the disk full?): they are emptied and lookups walk the segment");
                    recovery::empty_indexes(&planned.files)?;
                }
            } else if let Some((offsets, times)) = &planned.rebuilt_index {
                if let Err(error) = recovery::write_sealed_indexes(&planned.files, offsets, times) {
                    // An index is only a cache and failing to rewrite it (a full
                    // disk, typically) is no damage: empty it, and lookups walk
                    // the segment from its start until a later recovery rebuilds it.
                    tracing::warn!(partition = %name, error = %error, "cannot rebuild the indexes (is the disk full?): they are emptied and lookups walk the segment");
                    recovery::empty_indexes(&planned.files)?;
                }
                dir_changed = true;
            }
            // The active segment is mapped as far as its data and grows from there.
            let active = (i == last).then_some((0, config.index_max_bytes));
            segments.push(segment::open_planned(
                planned.files,
                planned.log_len,
                planned.next_offset,
                planned.max_timestamp,
                active,
                &cache,
            )?);
        }
        let last = segments.len() - 1;
        let Some(active) = segments[last].as_active().cloned() else {
            return Err(StorageError::Config(format!(
                "partition {name}: its last segment is not the active one"
            )));
        };
        // After a crash the active `.log` may still hold the space reserved
        // past its data (FALLOC_FL_KEEP_SIZE blocks beyond the end of the
        // file); truncating to its length returns it. After a clean close this
        // is a no-op. It needs no free space; if it fails anyway, the blocks
        // stay reserved until the segment rolls, which costs disk, not data.
        if let Err(e) = active.log_file().set_len(active.size()) {
            tracing::warn!(partition = %name, segment = %active.files().log.display(), error = %e, "cannot return the space reserved past the active segment's data");
        }
        if !hint.clean_shutdown && active_unsynced {
            // What survived the crash above the recovery point may sit only in
            // the page cache: make it durable before it becomes readable below
            // the high watermark.
            active
                .log_file()
                .sync_data()
                .map_err(|e| StorageError::io("fdatasync", &active.files().log, e))?;
        }
        if dir_changed {
            sync_dir(dir).map_err(|e| StorageError::io("fsync dir", dir, e))?;
        }
        let cadence = resume_cadence(&active, config.index_interval_bytes);
        let next_offset = active.next_offset();
        let position = active.size();
        let log_start = segments[0].base_offset().max(
            read_log_start(&name, dir)
                .unwrap_or(i64::MIN)
                .min(next_offset),
        );
        // Producer state: the newest snapshot plus the batches after it.
        // Snapshots past the log end (recovery cut what they describe) or
        // below the first segment (the batches after them are gone) go.
        let first_base = segments[0].base_offset();
        if producer_state::delete_snapshots_outside(dir, first_base, next_offset)? > 0 {
            sync_dir(dir).map_err(|e| StorageError::io("fsync dir", dir, e))?;
        }
        let segment_logs: Vec<(i64, PathBuf)> = segments
            .iter()
            .map(|s| (s.base_offset(), SegmentFiles::new(dir, s.base_offset()).log))
            .collect();
        let (producers, replayed_aborts) =
            producer_state::rebuild(&name, dir, &segment_logs, next_offset, now_ms())?;
        let mut aborted = AbortedIndex::load(&name, dir, log_start, next_offset)?;
        for entry in replayed_aborts {
            aborted.record(dir, active.base_offset(), entry)?;
        }
        let first_unstable = producers
            .first_unstable_offset()
            .unwrap_or(NO_UNSTABLE_OFFSET);
        let (high_watermark_tx, _) = watch::channel(next_offset);
        Ok(Self {
            producers: Mutex::new(producers),
            first_unstable: AtomicI64::new(first_unstable),
            closing: Mutex::new(Vec::new()),
            aborted: Mutex::new(aborted),
            flush_slot: FlushSlot::default(),
            traffic: PartitionTraffic::default(),
            name,
            dir: dir.to_path_buf(),
            writer: Mutex::new(Writer::new(
                Arc::clone(&active),
                position,
                next_offset,
                cadence,
            )),
            sync: Mutex::new(SyncState {
                syncing: false,
                durable_offset: next_offset,
                durable_len: position,
                durable_segment: active.base_offset(),
                cache_dropped: 0,
            }),
            sync_done: Condvar::new(),
            segments: RwLock::new(segments),
            cache,
            log_end: AtomicI64::new(next_offset),
            high_watermark: AtomicI64::new(next_offset),
            log_start: AtomicI64::new(log_start),
            log_start_update: Mutex::new(()),
            poison: Mutex::new(None),
            high_watermark_tx,
            config: RwLock::new(Arc::new(config)),
        })
    }

    /// Traffic counters of this partition (the metrics endpoint sums them
    /// per topic).
    pub fn traffic(&self) -> &PartitionTraffic {
        &self.traffic
    }

    /// The partition's directory name (`topic-partition`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration the log runs with now (a snapshot: a concurrent
    /// [`PartitionLog::reconfigure`] does not change what the caller holds).
    pub fn config(&self) -> Arc<LogConfig> {
        Arc::clone(&read_lock(&self.config))
    }

    /// Replaces the configuration (a topic's configs were altered). It takes
    /// effect at once for what is checked per append (timestamps, rolls by
    /// size and age, retention, reservations); sizes fixed when a segment is
    /// created (`index_max_bytes`) apply from the next segment on.
    pub fn reconfigure(&self, config: LogConfig) {
        *write_lock(&self.config) = Arc::new(config);
    }

    /// Validates and appends one or more consecutive batches (a produce
    /// request's record set), assigning offsets. Under `FlushPolicy::Always`
    /// the batches become readable, and may be acknowledged, only after
    /// [`PartitionLog::make_durable`] for `next_offset` returns.
    ///
    /// Nothing is appended if any batch is invalid, or, on a CreateTime topic,
    /// carries a timestamp outside the configured bounds of the broker's clock
    /// ([`StorageError::TimestampOutOfRange`]), or, on a compacted topic,
    /// holds a record without a key ([`StorageError::InvalidRecord`]), or an
    /// idempotent batch breaks its producer's sequence or epoch
    /// ([`StorageError::OutOfOrderSequence`],
    /// [`StorageError::InvalidProducerEpoch`]). A record set retrying a batch
    /// already stored appends nothing and answers with the stored batch's
    /// offsets (as Kafka does).
    pub fn append(&self, records: &[u8]) -> Result<AppendOutcome, StorageError> {
        let batches = validate_record_set(records)?;
        let config = self.config();
        if config.cleanup_policy.compact {
            crate::storage::keys::require_keys(&batches)?;
        }
        if config.timestamp_type == TimestampType::CreateTime {
            check_timestamps(&batches, &config, now_ms())?;
        }
        self.check_poison()?;
        let total: u64 = batches.iter().map(|b| b.total_len() as u64).sum();
        let records_in_set: i64 = batches
            .iter()
            .map(|b| i64::from(b.last_offset_delta()) + 1)
            .sum();

        let mut writer = lock(&self.writer);
        self.check_poison()?;
        // Read under the writer lock, so LogAppendTime follows offset order
        // as long as the wall clock does not step back.
        let now = now_ms();
        let log_append_time = config.timestamp_type == TimestampType::LogAppendTime;
        // Idempotence is decided under the writer lock, against the offsets
        // this append gets, so the check and its update are atomic with it.
        let producer_update = match lock(&self.producers).check(
            &batches,
            writer.next_offset,
            log_append_time.then_some(now),
            now,
        )? {
            Checked::Append(update) => update,
            Checked::Duplicate(original) => {
                return Ok(AppendOutcome {
                    base_offset: original.base_offset,
                    last_offset: original.last_offset,
                    next_offset: original.last_offset + 1,
                    log_append_time_ms: if log_append_time {
                        original.timestamp
                    } else {
                        -1
                    },
                })
            }
        };
        let (base_offset, next_offset) =
            self.write_locked(&mut writer, &config, &batches, total, records_in_set, now)?;
        let mut producers = lock(&self.producers);
        producers.commit(producer_update);
        // A transaction this append opened holds the LSO at once; one a
        // pending marker closed must not be released early: only lower.
        self.first_unstable.fetch_min(
            producers
                .first_unstable_offset()
                .unwrap_or(NO_UNSTABLE_OFFSET),
            Ordering::AcqRel,
        );
        drop(producers);
        self.publish_append(&mut writer, &config, next_offset);
        Ok(AppendOutcome {
            base_offset,
            last_offset: next_offset - 1,
            next_offset,
            log_append_time_ms: if log_append_time { now } else { -1 },
        })
    }

    /// Appends a transaction marker (a control batch) for the coordinator,
    /// closing `marker.producer_id`'s open transaction here; an abort is
    /// recorded in the aborted-transaction index. Call
    /// [`PartitionLog::make_durable`] with the outcome's `next_offset`
    /// before reporting the marker written. A marker whose epoch is older
    /// than the producer's is [`StorageError::InvalidProducerEpoch`].
    pub fn append_marker(&self, marker: TxnMarker) -> Result<AppendOutcome, StorageError> {
        self.check_poison()?;
        let config = self.config();
        let mut writer = lock(&self.writer);
        self.check_poison()?;
        let now = now_ms();
        lock(&self.producers).check_marker(&marker)?;
        let bytes = encode_marker(marker, now).map_err(StorageError::Config)?;
        let batches = validate_record_set(&bytes)?;
        let total = bytes.len() as u64;
        let (base_offset, next_offset) =
            self.write_locked(&mut writer, &config, &batches, total, 1, now)?;
        let mut producers = lock(&self.producers);
        let closing_first = producers.open_txns().get(&marker.producer_id).copied();
        let aborted = producers.complete_txn(&marker, base_offset, now);
        // The entry is indexed before the last stable offset moves past the
        // aborted data: a read_committed read or a cleaning that sees the
        // new LSO must also see the entry, or it would take the aborted
        // batches for committed ones. (On failure the LSO stays put.)
        if let Some(entry) = aborted {
            let segment_base = writer.active.base_offset();
            if let Err(error) = lock(&self.aborted).record(&self.dir, segment_base, entry) {
                return Err(self.poison_with(error));
            }
        }
        // The LSO moves past this transaction once the marker is below the
        // high watermark (`advance_high_watermark`).
        if let Some(first) = closing_first {
            lock(&self.closing).push((next_offset, first));
        }
        drop(producers);
        self.publish_append(&mut writer, &config, next_offset);
        Ok(AppendOutcome {
            base_offset,
            last_offset: next_offset - 1,
            next_offset,
            log_append_time_ms: -1,
        })
    }

    /// Stops counting the transactions whose markers are below the high
    /// watermark `high_watermark` in the first unstable offset.
    fn release_stable_transactions(&self, high_watermark: i64) {
        // The common case, no transaction closing: one uncontended lock.
        if lock(&self.closing).is_empty() {
            return;
        }
        let producers = lock(&self.producers);
        let mut closing = lock(&self.closing);
        if !closing.iter().any(|&(end, _)| end <= high_watermark) {
            return;
        }
        closing.retain(|&(end, _)| end > high_watermark);
        let still_closing = closing.iter().map(|&(_, first)| first).min();
        let open = producers.first_unstable_offset();
        self.first_unstable.store(
            open.into_iter()
                .chain(still_closing)
                .min()
                .unwrap_or(NO_UNSTABLE_OFFSET),
            Ordering::Release,
        );
    }

    /// Makes an append written under `writer` visible: the log end, and
    /// under an interval flush the high watermark.
    fn publish_append(&self, writer: &mut Writer, config: &LogConfig, next_offset: i64) {
        self.log_end.store(next_offset, Ordering::Release);
        if let FlushPolicy::Interval(_) = config.flush {
            writer.active.publish(writer.position);
            self.advance_high_watermark(next_offset);
        }
    }

    /// Writes validated `batches` (`total` bytes, `records_in_set` records)
    /// at the log end under the writer lock, rolling first if due. Returns
    /// the first offset written and the next offset.
    fn write_locked(
        &self,
        writer: &mut Writer,
        config: &LogConfig,
        batches: &[BatchHeader<'_>],
        total: u64,
        records_in_set: i64,
        now: i64,
    ) -> Result<(i64, i64), StorageError> {
        if should_roll(config, writer, total, records_in_set) {
            self.roll(writer).map_err(|e| self.poison_with(e))?;
        }
        let end = writer.position + total;
        // Nothing is written yet: a failed reservation refuses this append
        // and leaves the partition writable, so space freed later is used
        // by the next append without a restart.
        let reserved = self
            .reserve_for(writer, end)
            .and_then(|()| writer.active.reserve_index_room(batches.len()));
        self.note_reservation(writer, reserved)?;
        let base_offset = writer.next_offset;
        let stamp = AppendStamp {
            leader_epoch: config.leader_epoch,
            now_ms: now,
            log_append_time: config.timestamp_type == TimestampType::LogAppendTime,
        };
        let Writer {
            active,
            position,
            cadence,
            ..
        } = &mut *writer;
        let (next_offset, new_position) = active
            .write_batches(*position, batches, base_offset, stamp, cadence)
            .map_err(|e| self.poison_with(e))?;
        writer.position = new_position;
        writer.next_offset = next_offset;
        Ok((base_offset, next_offset))
    }

    /// Blocks until everything before `offset` (capped at the log end) is
    /// covered by a completed fdatasync. Concurrent callers share syncs (group
    /// commit). Under `Always` this also advances the high watermark.
    pub fn make_durable(&self, offset: i64) -> Result<(), StorageError> {
        let target = offset.min(self.log_end.load(Ordering::Acquire));
        let mut state = lock(&self.sync);
        loop {
            self.check_poison()?;
            if state.durable_offset >= target {
                return Ok(());
            }
            if state.syncing {
                state = self
                    .sync_done
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            state.syncing = true;
            drop(state);

            let (segment, position, next_offset) = {
                let writer = lock(&self.writer);
                (
                    Arc::clone(&writer.active),
                    writer.position,
                    writer.next_offset,
                )
            };
            let began = Instant::now();
            let result = segment.log_file().sync_data();
            FSYNC_SECONDS.observe(began.elapsed());

            state = lock(&self.sync);
            state.syncing = false;
            let mut drop_cached = None;
            match result {
                Ok(()) => {
                    if next_offset > state.durable_offset {
                        state.durable_offset = next_offset;
                        state.durable_len = position;
                        state.durable_segment = segment.base_offset();
                    }
                    segment.publish(position);
                    self.advance_high_watermark(next_offset);
                    if let Some(window) = self.config().page_cache_window {
                        let keep_from = position.saturating_sub(window) / PAGE * PAGE;
                        if state.durable_segment == segment.base_offset()
                            && keep_from > state.cache_dropped
                        {
                            drop_cached = Some((state.cache_dropped, keep_from));
                            state.cache_dropped = keep_from;
                        }
                    }
                }
                Err(e) => {
                    let error = StorageError::io("fdatasync", &segment.files().log, e);
                    self.sync_done.notify_all();
                    drop(state);
                    return Err(self.poison_with(error));
                }
            }
            self.sync_done.notify_all();
            if let Some((from, to)) = drop_cached {
                // After the waiters are woken: the drop is for later appends.
                drop(state);
                segment.drop_cached(from, to);
                state = lock(&self.sync);
            }
        }
    }

    /// Waits, without holding a thread, until everything before `offset`
    /// (capped at the log end) is covered by a completed fdatasync. It runs
    /// no sync itself: ask the flusher for one first
    /// ([`Flusher::request`](crate::storage::flusher::Flusher::request)).
    /// Fails once the partition is poisoned.
    pub async fn durable(&self, offset: i64) -> Result<(), StorageError> {
        let target = offset.min(self.log_end.load(Ordering::Acquire));
        // Subscribed before checking: a sync completing in between still
        // wakes this waiter (every durable advance and every poisoning
        // notifies the high-watermark channel).
        let mut changes = self.high_watermark_tx.subscribe();
        loop {
            if self.durable_offset() >= target {
                return Ok(());
            }
            self.check_poison()?;
            if changes.changed().await.is_err() {
                // The sender lives as long as `self`, so this cannot happen;
                // if it did, durability is unknown: never report it.
                return Err(StorageError::Offline {
                    partition: self.name.clone(),
                    reason: "closed while a produce waited for its sync".to_string(),
                });
            }
        }
    }

    /// Makes everything appended so far durable (the interval flusher and
    /// shutdown call this).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.make_durable(self.log_end.load(Ordering::Acquire))
    }

    /// Reads whole batches from the one containing `offset`, up to `max_bytes`
    /// (but always at least one whole batch), never past the high watermark
    /// and never across a segment boundary. An offset in a gap that
    /// compaction left reads from the next batch after it.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadOutcome, StorageError> {
        let high_watermark = self.high_watermark();
        let log_start = self.log_start_offset();
        if offset < log_start || offset > high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start,
                high_watermark,
            });
        }
        let empty = ReadOutcome {
            bytes: Bytes::new(),
            next_offset: offset,
            high_watermark,
            log_start,
        };
        if offset == high_watermark {
            return Ok(empty);
        }
        // The cleaner may replace a segment between the lookup and the
        // open: look again in the new list (it retires before it swaps).
        let mut attempts = 0;
        loop {
            match self.read_segments(offset, max_bytes) {
                Ok(Some(slice)) => {
                    return Ok(ReadOutcome {
                        bytes: slice.bytes,
                        next_offset: slice.next_offset,
                        high_watermark,
                        log_start,
                    })
                }
                Ok(None) => return Ok(empty),
                Err(StorageError::SegmentReplaced { .. }) if attempts < 8 => attempts += 1,
                Err(error) => return Err(error),
            }
        }
    }

    /// The last stable offset: the high watermark, or the first batch of
    /// the oldest open transaction if that is lower.
    pub fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark();
        // Retention may delete the first batches of a transaction still
        // open: the LSO never falls below the log start (as in Kafka).
        let first_unstable = self
            .first_unstable
            .load(Ordering::Acquire)
            .max(self.log_start_offset());
        high_watermark.min(first_unstable)
    }

    /// A read_committed read: [`PartitionLog::read`] cut before the first
    /// batch reaching the last stable offset, with the aborted
    /// transactions that have data in what it returns.
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<CommittedRead, StorageError> {
        let last_stable_offset = self.last_stable_offset();
        let mut read = self.read(offset, max_bytes)?;
        let mut kept = 0;
        if !read.bytes.is_empty() {
            let mut next_offset = offset;
            for item in BatchIter::headers(&read.bytes) {
                let Ok((_, header)) = item else { break };
                // Whole batches below the LSO only. The LSO is a batch
                // boundary except when it is the log start moved into an
                // open transaction's batch: that batch is unstable too.
                if header.last_offset() >= last_stable_offset {
                    break;
                }
                kept += header.total_len();
                next_offset = header.last_offset() + 1;
            }
            read.bytes = read.bytes.slice(..kept);
            read.next_offset = next_offset.max(offset);
        }
        let aborted = if kept == 0 {
            Vec::new()
        } else {
            lock(&self.aborted).overlapping(offset, read.next_offset)
        };
        Ok(CommittedRead {
            read,
            last_stable_offset,
            aborted,
        })
    }

    /// The aborted transactions whose markers are in the log (the cleaner
    /// and `log dump` read them).
    pub fn aborted_txns(&self) -> Vec<AbortedTxn> {
        lock(&self.aborted).entries().to_vec()
    }

    /// Open transactions in this partition: producer id → first offset.
    pub fn open_txns(&self) -> std::collections::BTreeMap<i64, i64> {
        lock(&self.producers).open_txns().clone()
    }

    /// Whole batches from the segment holding `offset`; when `offset` lies
    /// in a gap compaction left (inside a segment or past its last batch),
    /// from the first batch after it, in a later segment if need be.
    fn read_segments(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Option<segment::SegmentSlice>, StorageError> {
        let candidates: Vec<LogSegment> = {
            let segments = read_lock(&self.segments);
            let first = segments
                .partition_point(|s| s.base_offset() <= offset)
                .saturating_sub(1);
            segments[first..].to_vec()
        };
        for segment in candidates {
            if let Some(slice) = segment.read(offset, max_bytes)? {
                return Ok(Some(slice));
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the first record whose timestamp is at or
    /// after `timestamp`, below the high watermark; `None` if there is none.
    /// An I/O error opening a sealed segment is logged and answers `None`;
    /// [`PartitionLog::try_offset_for_timestamp`] returns it.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Option<(i64, i64)> {
        self.try_offset_for_timestamp(timestamp)
            .unwrap_or_else(|error| {
                tracing::error!(partition = %self.name, error = %error, "lookup by timestamp failed");
                None
            })
    }

    /// [`PartitionLog::offset_for_timestamp`], or the I/O error that stopped
    /// it (a sealed segment could not be opened).
    pub fn try_offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        let mut attempts = 0;
        loop {
            match self.find_timestamp_once(timestamp) {
                Err(StorageError::SegmentReplaced { .. }) if attempts < 8 => attempts += 1,
                found => return found,
            }
        }
    }

    /// One pass of [`PartitionLog::try_offset_for_timestamp`] over the
    /// current segments.
    fn find_timestamp_once(&self, timestamp: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let segments: Vec<LogSegment> = read_lock(&self.segments).clone();
        let high_watermark = self.high_watermark();
        let log_start = self.log_start_offset();
        for segment in segments.iter().filter(|s| s.max_timestamp() >= timestamp) {
            if let Some((offset, found_at)) = segment.offset_for_timestamp(timestamp)? {
                // Records below the log start (DeleteRecords) are gone even
                // when their segment is not: answer the start instead.
                let offset = offset.max(log_start);
                return Ok(Some((offset, found_at)).filter(|&(offset, _)| offset < high_watermark));
            }
        }
        Ok(None)
    }

    /// Deletes the sealed segments retention allows, oldest first, and moves
    /// the log start offset. `now_ms` is wall-clock milliseconds; a segment's
    /// age is measured from its last append by the broker's clock
    /// ([`Segment::last_append_ms`]), never from record timestamps.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionOutcome, StorageError> {
        // `cleanup.policy=compact` alone keeps every key's latest record
        // however old (Kafka's rule); `compact,delete` also deletes by age and size.
        let config = self.config();
        if !config.cleanup_policy.delete {
            return Ok(RetentionOutcome {
                log_start: self.log_start_offset(),
                ..RetentionOutcome::default()
            });
        }
        let (retention_ms, retention_bytes) = (config.retention_ms, config.retention_bytes);
        self.delete_oldest("retention", |segments| {
            let stats: Vec<SegmentStats> = segments
                .iter()
                .map(|s| SegmentStats {
                    size: s.size(),
                    last_append_ms: s.last_append_ms(),
                })
                .collect();
            segments_to_delete(&stats, retention_ms, retention_bytes, now_ms)
        })
    }

    /// Removes the oldest `count(segments)` segments (never the active one)
    /// from the log, then deletes their files.
    fn delete_oldest(
        &self,
        why: &'static str,
        count: impl FnOnce(&[LogSegment]) -> usize,
    ) -> Result<RetentionOutcome, StorageError> {
        let removed: Vec<LogSegment> = {
            let mut segments = write_lock(&self.segments);
            let n = count(&segments).min(segments.len().saturating_sub(1));
            let removed: Vec<LogSegment> = segments.drain(..n).collect();
            // Never backwards: DeleteRecords may have moved the start past
            // the first segment kept.
            self.log_start
                .fetch_max(segments[0].base_offset(), Ordering::AcqRel);
            removed
        };
        let mut outcome = RetentionOutcome {
            log_start: self.log_start_offset(),
            ..RetentionOutcome::default()
        };
        for segment in &removed {
            segment.delete_files()?;
            outcome.segments_deleted += 1;
            outcome.bytes_deleted += segment.size();
        }
        let first_kept =
            (outcome.segments_deleted > 0).then(|| read_lock(&self.segments)[0].base_offset());
        lock(&self.aborted).truncate_start(&self.dir, outcome.log_start, first_kept)?;
        if let Some(first_kept) = first_kept {
            // Snapshots below the oldest segment kept are of no use: the
            // batches after them are gone.
            producer_state::delete_snapshots_outside(&self.dir, first_kept, i64::MAX)?;
        }
        if outcome.segments_deleted > 0 {
            sync_dir(&self.dir).map_err(|e| StorageError::io("fsync dir", &self.dir, e))?;
            tracing::info!(
                partition = %self.name,
                segments = outcome.segments_deleted,
                bytes = outcome.bytes_deleted,
                log_start = outcome.log_start,
                "{why} deleted segments"
            );
        }
        Ok(outcome)
    }

    /// The sealed segments (every one but the active segment), oldest
    /// first: what the cleaner may rewrite.
    pub(crate) fn sealed_segments(&self) -> Vec<Arc<SealedSegment>> {
        let segments = read_lock(&self.segments);
        let sealed = segments.len().saturating_sub(1);
        segments[..sealed]
            .iter()
            .filter_map(|segment| match segment {
                LogSegment::Sealed(sealed) => Some(Arc::clone(sealed)),
                LogSegment::Active(_) => None,
            })
            .collect()
    }

    /// Replaces `sources` (consecutive sealed segments) by the cleaned
    /// segment `swap` puts on disk, holding the segment write lock
    /// throughout, so retention, rolls and readers' lookups see the old list
    /// or the new one. The sources are retired before `swap` touches a file
    /// (see `storage::sealed`). Returns `Ok(false)` without calling `swap`
    /// when the sources are no longer all in the log (retention deleted one).
    ///
    /// If `swap` fails before its commit point the sources are live again;
    /// after it, the partition is poisoned (its segment list no longer
    /// matches the disk) and the next open finishes the swap.
    pub(crate) fn replace_sealed(
        &self,
        sources: &[Arc<SealedSegment>],
        swap: impl FnOnce() -> Result<
            crate::storage::cleaner::CleanedSegment,
            crate::storage::cleaner::SwapFailure,
        >,
    ) -> Result<bool, StorageError> {
        let mut segments = write_lock(&self.segments);
        let Some(first_source) = sources.first() else {
            return Ok(false);
        };
        let is = |segment: &LogSegment, wanted: &Arc<SealedSegment>| matches!(segment, LogSegment::Sealed(s) if Arc::ptr_eq(s, wanted));
        let Some(first) = segments.iter().position(|s| is(s, first_source)) else {
            return Ok(false);
        };
        let end = first + sources.len();
        let sealed = segments.len().saturating_sub(1);
        if end > sealed
            || !sources
                .iter()
                .zip(&segments[first..end])
                .all(|(a, b)| is(b, a))
        {
            return Ok(false);
        }
        for source in sources {
            source.retire();
        }
        match swap() {
            Ok(cleaned) => {
                let segment = SealedSegment::new(
                    cleaned.files,
                    cleaned.size,
                    cleaned.next_offset,
                    cleaned.max_timestamp,
                    Arc::clone(&self.cache),
                );
                segments.splice(first..end, [LogSegment::Sealed(Arc::new(segment))]);
                Ok(true)
            }
            Err(failure) if !failure.committed => {
                for source in sources {
                    source.revive();
                }
                Err(failure.error)
            }
            Err(failure) => Err(self.poison_with(failure.error)),
        }
    }

    /// Fences the partition after the cleaner found damage in sealed data:
    /// writes are refused from now on, and the error is returned for the
    /// caller (the `LogManager` takes the partition offline, as recovery
    /// would at the next start).
    pub(crate) fn fence_after_cleaning(&self, error: StorageError) -> StorageError {
        self.poison_with(error)
    }

    /// Runs the cleaner on this partition now (`now_ms`: the broker's clock),
    /// if it is due; see `storage::cleaner`. `Ok(None)` when nothing was due.
    pub fn clean(
        &self,
        now_ms: i64,
    ) -> Result<Option<crate::storage::cleaner::CleanOutcome>, StorageError> {
        crate::storage::cleaner::Cleaner::default().clean(self, now_ms)
    }

    /// DeleteRecords: moves the log start offset to `offset` (-1 means the
    /// high watermark) and deletes the sealed segments wholly below it.
    /// Returns the log start afterwards (the low watermark). An offset at or
    /// below the current start changes nothing; one above the high watermark
    /// (or another negative one) is [`StorageError::OffsetOutOfRange`].
    ///
    /// Blocking: the records up to `offset` are made durable first (under an
    /// interval flush the high watermark may be ahead of the disk, and a
    /// start past the durable end would not survive a crash), then the new
    /// start is written to [`LOG_START_FILE`], and only then moved in memory
    /// and the segments deleted. A segment that fails to delete is logged:
    /// the start has moved all the same and reads below it are refused.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        self.check_poison()?;
        let high_watermark = self.high_watermark();
        let offset = if offset == -1 { high_watermark } else { offset };
        let _update = lock(&self.log_start_update);
        let log_start = self.log_start_offset();
        if offset < 0 || offset > high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start,
                high_watermark,
            });
        }
        if offset <= log_start {
            return Ok(log_start);
        }
        self.make_durable(offset)?;
        let path = self.dir.join(LOG_START_FILE);
        write_checksummed(&path, format!("{offset}\n").as_bytes())
            .map_err(|e| StorageError::io("write", &path, e))?;
        self.log_start.fetch_max(offset, Ordering::AcqRel);
        tracing::info!(partition = %self.name, log_start = offset, "records deleted below the new log start");
        let deleted = self.delete_oldest("delete-records", |segments| {
            let sealed = segments.len().saturating_sub(1);
            segments[..sealed]
                .iter()
                .take_while(|s| s.next_offset() <= offset)
                .count()
        });
        if let Err(error) = deleted {
            tracing::warn!(partition = %self.name, error = %error, "cannot delete segments below the new log start; they are unreadable and retention or a restart removes them");
        }
        Ok(self.log_start_offset())
    }

    /// [`PartitionLog::enforce_retention`] at the current wall-clock time.
    pub fn enforce_retention_now(&self) -> Result<RetentionOutcome, StorageError> {
        self.enforce_retention(now_ms())
    }

    /// Rolls to a new segment now (tests, and operators who want a segment boundary).
    pub fn roll_now(&self) -> Result<(), StorageError> {
        self.check_poison()?;
        let mut writer = lock(&self.writer);
        if writer.position == 0 {
            return Ok(());
        }
        self.roll(&mut writer).map_err(|e| self.poison_with(e))
    }

    /// Syncs everything and trims the active segment's files, so the next open
    /// can skip recovery. Returns the log end offset (the recovery point).
    /// Appends are refused afterwards.
    pub fn close(&self) -> Result<i64, StorageError> {
        self.flush()?;
        let writer = lock(&self.writer);
        writer.active.seal()?;
        // The state at the log end: the next open replays nothing.
        let snapshot =
            producer_state::write_snapshot(&self.dir, writer.next_offset, &lock(&self.producers));
        if let Err(error) = snapshot {
            tracing::warn!(partition = %self.name, error = %error, "cannot write the producer-state snapshot at close; the next open rebuilds it from the log");
        }
        // The active segment's index is read-only now: refuse later appends.
        lock(&self.poison).get_or_insert_with(|| "the partition was closed".to_string());
        Ok(writer.next_offset)
    }

    /// Forgets idempotent producers idle for `expiration_ms` or longer at
    /// `now_ms` (the broker's `producer_id_expiration_ms`); their next batch
    /// is accepted at any sequence. Returns how many were forgotten.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        lock(&self.producers).expire(now_ms, expiration_ms)
    }

    /// Idempotent producers this partition knows.
    pub fn producer_count(&self) -> usize {
        lock(&self.producers).len()
    }

    /// Offset after the last readable record.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Offset after the last appended record (readable or not).
    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }

    /// Offset after the last record covered by a completed fdatasync.
    pub fn durable_offset(&self) -> i64 {
        lock(&self.sync).durable_offset
    }

    /// Where the durable bytes end in the active segment.
    pub fn durable_position(&self) -> DurablePosition {
        let state = lock(&self.sync);
        DurablePosition {
            file: SegmentFiles::new(&self.dir, state.durable_segment).log,
            len: state.durable_len,
            offset: state.durable_offset,
        }
    }

    /// Bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        read_lock(&self.segments).iter().map(|s| s.size()).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        read_lock(&self.segments).len()
    }

    /// Largest batch timestamp in the log, `i64::MIN` when empty.
    pub fn max_timestamp(&self) -> i64 {
        read_lock(&self.segments)
            .iter()
            .map(|s| s.max_timestamp())
            .max()
            .unwrap_or(i64::MIN)
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        read_lock(&self.segments)
            .iter()
            .map(|s| s.base_offset())
            .collect()
    }

    /// True after an I/O error refused further writes.
    pub fn is_poisoned(&self) -> bool {
        lock(&self.poison).is_some()
    }

    /// A receiver that sees every new high watermark: fetches wait on it
    /// instead of polling.
    pub fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark_tx.subscribe()
    }

    /// Seals the active segment (fdatasync, trim, index sync) and starts a new
    /// one at the log end. The new file's directory entry is synced before any
    /// append lands in it, so a crash cannot lose a segment that holds
    /// acknowledged data.
    fn roll(&self, writer: &mut Writer) -> Result<(), StorageError> {
        writer.active.seal()?;
        {
            let mut state = lock(&self.sync);
            if writer.next_offset > state.durable_offset {
                state.durable_offset = writer.next_offset;
            }
            state.durable_len = 0;
            state.durable_segment = writer.next_offset;
            state.cache_dropped = 0;
        }
        self.advance_high_watermark(writer.next_offset);
        let files = SegmentFiles::new(&self.dir, writer.next_offset);
        let segment = Arc::new(Segment::create(files, 0, self.config().index_max_bytes)?);
        sync_dir(&self.dir).map_err(|e| StorageError::io("fsync dir", &self.dir, e))?;
        // The producer state covering the sealed segments, as Kafka snapshots
        // at a roll. Only a cache of the log: if it cannot be written, the
        // next open replays from an older snapshot, so the roll goes on.
        let snapshot =
            producer_state::write_snapshot(&self.dir, writer.next_offset, &lock(&self.producers));
        if let Err(error) = snapshot {
            tracing::warn!(partition = %self.name, error = %error, "cannot write the producer-state snapshot; the next open rebuilds it from the log");
        }
        {
            // The sealed segment keeps only its description: its files close
            // once readers in flight let go, and reopen through the cache.
            let sealed = SealedSegment::from_segment(&writer.active, Arc::clone(&self.cache));
            let mut segments = write_lock(&self.segments);
            if let Some(last) = segments.last_mut() {
                *last = LogSegment::Sealed(Arc::new(sealed));
            }
            segments.push(LogSegment::Active(Arc::clone(&segment)));
        }
        // The new segment's reservations start over from the minimum step.
        *writer = Writer::new(
            segment,
            0,
            writer.next_offset,
            IndexCadence::new(self.config().index_interval_bytes),
        );
        Ok(())
    }

    /// Makes sure `[position, end)` of the active segment is reserved. The
    /// step doubles while each reservation is used up within [`FAST_REFILL`]
    /// (capped at `preallocate_bytes`) and starts over at [`MIN_RESERVATION`]
    /// otherwise; it never reaches past the segment's maximum size unless the
    /// append itself does.
    fn reserve_for(&self, writer: &mut Writer, end: u64) -> Result<(), StorageError> {
        if end <= writer.reserved {
            return Ok(());
        }
        let config = self.config();
        let cap = config.preallocate_bytes;
        let floor = MIN_RESERVATION.min(cap);
        let fast = writer
            .reserved_at
            .is_some_and(|at| at.elapsed() < FAST_REFILL);
        let step = if fast {
            writer.step.saturating_mul(2).clamp(floor, cap)
        } else {
            floor
        };
        let needed = end - writer.reserved;
        let room = config.segment_bytes.saturating_sub(writer.reserved);
        let mut len = step.min(room).max(needed);
        if let Err(error) = writer.active.reserve(writer.reserved, len) {
            // Nearly full: what this append needs may still fit.
            if len == needed || !error.is_disk_full() {
                return Err(error);
            }
            len = needed;
            writer.active.reserve(writer.reserved, len)?;
        }
        writer.reserved += len;
        writer.step = step;
        writer.reserved_at = Some(Instant::now());
        Ok(())
    }

    /// Returns the space reserved past the active segment's data to the file
    /// system if nothing was appended for `idle` (the maintenance tick calls
    /// this, so an idle partition holds no reservation). Returns the bytes
    /// released. The next append reserves again from the minimum step.
    pub fn release_reservation(&self, idle: Duration) -> Result<u64, StorageError> {
        let mut writer = lock(&self.writer);
        let idle_enough = writer.reserved_at.is_some_and(|at| at.elapsed() >= idle);
        if writer.reserved <= writer.position || !idle_enough || self.is_poisoned() {
            return Ok(0);
        }
        let released = writer.reserved - writer.position;
        // Truncating to the written length frees the KEEP_SIZE blocks past it.
        writer
            .active
            .log_file()
            .set_len(writer.position)
            .map_err(|e| StorageError::io("release space in", &writer.active.files().log, e))?;
        writer.reserved = writer.position;
        writer.step = 0;
        writer.reserved_at = None;
        Ok(released)
    }

    fn advance_high_watermark(&self, offset: i64) {
        let previous = self.high_watermark.fetch_max(offset, Ordering::AcqRel);
        self.release_stable_transactions(previous.max(offset));
        if offset > previous {
            self.high_watermark_tx.send_replace(offset);
        }
    }

    fn check_poison(&self) -> Result<(), StorageError> {
        match &*lock(&self.poison) {
            None => Ok(()),
            Some(cause) => Err(StorageError::Poisoned {
                partition: self.name.clone(),
                cause: cause.clone(),
            }),
        }
    }

    /// Logs the first of a run of failed reservations (naming the file, so
    /// the operator knows which disk is full) and the first success after
    /// it, so a producer retrying against a full disk does not flood the log.
    fn note_reservation(
        &self,
        writer: &mut Writer,
        result: Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        match result {
            Ok(()) => {
                if std::mem::take(&mut writer.reservation_failing) {
                    tracing::info!(partition = %self.name, "space reserved again: appends resumed");
                }
                Ok(())
            }
            Err(error) => {
                // The disk was full a moment ago: start again from the
                // smallest step, so freed space is shared across partitions.
                writer.step = 0;
                writer.reserved_at = None;
                if !std::mem::replace(&mut writer.reservation_failing, true) {
                    let hint = if error.is_disk_full() {
                        "disk full: appends to this partition are refused until space is freed; reads continue"
                    } else {
                        "cannot reserve space: appends to this partition are refused until a reservation succeeds; reads continue"
                    };
                    tracing::error!(partition = %self.name, error = %error, "{hint}");
                }
                Err(error)
            }
        }
    }

    /// Records the first I/O error as the poison cause and returns it.
    fn poison_with(&self, error: StorageError) -> StorageError {
        let mut poison = lock(&self.poison);
        if poison.is_none() {
            if let StorageError::Io { path, .. } = &error {
                if error.is_disk_full() {
                    tracing::error!(partition = %self.name, path = %path.display(), error = %error, "disk full: appends to this partition fail until it is reopened with space free; reads continue");
                }
            }
            tracing::error!(partition = %self.name, error = %error, "partition poisoned: refusing writes until it is reopened");
            *poison = Some(error.to_string());
        }
        drop(poison);
        self.sync_done.notify_all();
        // Wakes async durability waiters too, so they see the poisoning.
        self.high_watermark_tx.send_modify(|_| ());
        error
    }
}

/// The log start offset persisted by DeleteRecords, if any. A damaged file
/// is logged and ignored: the start then falls back to the first segment's
/// base offset, which can only expose records, never lose them.
fn read_log_start(partition: &str, dir: &Path) -> Option<i64> {
    let path = dir.join(LOG_START_FILE);
    let parsed = match read_checksummed(&path) {
        Ok(None) => return None,
        Ok(Some(payload)) => std::str::from_utf8(&payload)
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .ok_or_else(|| format!("{} does not hold an offset", path.display())),
        Err(error) => Err(error.to_string()),
    };
    match parsed {
        Ok(offset) => Some(offset),
        Err(reason) => {
            tracing::warn!(partition, %reason, "ignoring the persisted log start offset: the log starts at its first segment");
            None
        }
    }
}

/// True when the active segment must be sealed before an append of
/// `incoming` bytes and `incoming_records` offsets: it would grow past
/// `segment.bytes`, it is older than `segment.ms`, its relative offsets
/// would overflow, or its index is full. An empty segment never rolls.
fn should_roll(config: &LogConfig, writer: &Writer, incoming: u64, incoming_records: i64) -> bool {
    if writer.position == 0 {
        return false;
    }
    let too_big = writer.position + incoming > config.segment_bytes;
    let too_old = config
        .segment_ms
        .is_some_and(|max_age| writer.created.elapsed() >= max_age);
    let offsets_overflow =
        writer.next_offset + incoming_records - writer.active.base_offset() > i64::from(u32::MAX);
    too_big || too_old || offsets_overflow || writer.active.index_full()
}

/// Validates a whole record set before anything is written.
fn validate_record_set(records: &[u8]) -> Result<Vec<BatchHeader<'_>>, StorageError> {
    if records.is_empty() {
        return Err(StorageError::EmptyAppend);
    }
    BatchIter::verified(records)
        .map(|item| {
            item.map(|(_, header)| header)
                .map_err(|(position, defect)| StorageError::InvalidBatch { position, defect })
        })
        .collect()
}

/// Refuses a CreateTime record set with a timestamp further than the
/// configured bounds from the broker's clock `now_ms` (see
/// [`BatchHeader::timestamp_outside`] for what is checked: header timestamps
/// always, record timestamps of uncompressed batches).
fn check_timestamps(
    batches: &[BatchHeader<'_>],
    config: &LogConfig,
    now_ms: i64,
) -> Result<(), StorageError> {
    let earliest = now_ms.saturating_sub(config.timestamp_before_max_ms);
    let latest = now_ms.saturating_add(config.timestamp_after_max_ms);
    let mut position = 0;
    for batch in batches {
        if let Some(timestamp) = batch.timestamp_outside(earliest, latest) {
            return Err(StorageError::TimestampOutOfRange {
                position,
                timestamp,
                now_ms,
                earliest,
                latest,
                before_max_ms: config.timestamp_before_max_ms,
                after_max_ms: config.timestamp_after_max_ms,
            });
        }
        position += batch.total_len();
    }
    Ok(())
}

/// Carries out one recovery decision and logs it once.
fn apply_finding(partition: &str, finding: &Finding) -> Result<(), StorageError> {
    match finding {
        Finding::Truncate {
            file,
            position,
            bytes_cut,
            last_valid_offset,
            reason,
        } => {
            let handle = std::fs::OpenOptions::new()
                .write(true)
                .open(file)
                .map_err(|e| StorageError::io("open", file, e))?;
            handle
                .set_len(*position)
                .map_err(|e| StorageError::io("truncate", file, e))?;
            handle
                .sync_all()
                .map_err(|e| StorageError::io("fsync", file, e))?;
            tracing::warn!(
                partition,
                segment = %file.display(),
                bytes_cut,
                last_valid_offset,
                reason = %reason,
                "recovery truncated the torn tail of the last segment"
            );
        }
        Finding::RebuildIndex { file, reason } => {
            tracing::warn!(partition, index = %file.display(), reason = %reason, "recovery rebuilds an index");
        }
        Finding::RemoveStray { file } => {
            match std::fs::remove_file(file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("remove", file, e)),
            }
            tracing::info!(partition, file = %file.display(), "recovery removed a stray file");
        }
        Finding::Fence { .. } => {}
    }
    Ok(())
}
