//! The data directory: which partitions exist, how each is recovered, and the
//! files that make a restart after a clean shutdown skip the recovery scan.
//!
//! Layout (an operator who knows Kafka recognises it):
//! ```text
//! DATA/<topic>-<partition>/{base:020}.log|.index|.timeindex
//! DATA/meta/clean-shutdown                     present only between a clean stop and the next start
//! DATA/meta/recovery-point-offset-checkpoint   "<topic> <partition> <offset>" lines, checksummed
//! ```
//! The marker is deleted (and the deletion synced) as soon as the data
//! directory is opened, so a crash at any later moment is seen as unclean.
//! The recovery points are written at clean shutdown and periodically; a
//! damaged checkpoint is logged and ignored, which only costs a longer scan.
//!
//! Start and stop work (recovery and index checks on open; the final syncs
//! on shutdown) runs across partitions on a pool of at most one thread per
//! CPU ([`run_bounded`]): each partition is still opened or closed by one
//! thread, exactly as before, so the per-partition crash rules are unchanged.
//! The clean-shutdown marker is written only after every partition's final
//! sync and the recovery-point checkpoint succeeded; a crash anywhere before
//! it leaves no marker and the next start recovers.
//!
//! The log cleaner ([`LogManager::clean_due_partitions`]) runs one pass at a
//! time over the compacted partitions; shutdown stops a pass between batches
//! and waits for it before closing partitions. A partition whose sealed data
//! the cleaner finds damaged is taken offline as fenced, exactly as recovery
//! would have at the next start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::basics::{read_lock, write_lock, TopicPartition};
use crate::config::LogConfig;
use crate::error::StorageError;
use crate::storage::checkpoint::{read_checksummed, sync_dir, write_checksummed};
use crate::storage::cleaner::{CleanOutcome, Cleaner};
use crate::storage::flusher::{Flushable, Flusher, FLUSHER_THREADS};
use crate::storage::partition_log::PartitionLog;
use crate::storage::recovery::RecoveryHint;
use crate::storage::sealed::SegmentCache;

/// Directory under the data directory for broker metadata.
pub const META_DIR: &str = "meta";
/// Present only after a clean shutdown.
pub const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// Per-partition offsets below which segments are trusted without a scan.
pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
/// Held (flock) by the broker that owns the data directory.
pub const LOCK_FILE: &str = ".lock";
/// Suffix of a partition directory being deleted.
pub const DELETE_SUFFIX: &str = "-delete";

/// A partition that could not be opened: fenced by recovery or failed with an
/// I/O error. The broker keeps running and answers KAFKA_STORAGE_ERROR for it.
#[derive(Debug, Clone)]
pub struct OfflinePartition {
    /// Why it is offline.
    pub reason: String,
    /// True when recovery fenced it (damaged data); false for an I/O error
    /// such as a full disk, which is no damage and is retried at the next start.
    pub fenced: bool,
}

/// Owns every partition log under one data directory.
pub struct LogManager {
    data_dir: PathBuf,
    /// Keeps the exclusive lock on `DATA/.lock` for the manager's lifetime.
    _lock: std::fs::File,
    default_config: LogConfig,
    partitions: RwLock<BTreeMap<TopicPartition, Arc<PartitionLog>>>,
    offline: RwLock<BTreeMap<TopicPartition, OfflinePartition>>,
    /// Sealed segments open now, shared by every partition (at most the
    /// default config's `max_open_segments`).
    segment_cache: Arc<SegmentCache>,
    /// Held by the one cleaning pass running.
    cleaner_running: Mutex<()>,
    /// Set at shutdown: a running cleaning pass stops between batches.
    cleaner_stop: Arc<AtomicBool>,
    /// Runs group commit's fdatasyncs for request paths that must not wait
    /// in one (produce under `--flush always`).
    flusher: Flusher,
}

impl LogManager {
    /// Asks the flusher for a sync of `log` covering everything appended
    /// to it so far; await [`PartitionLog::durable`] for the outcome.
    pub fn request_flush(&self, log: &Arc<PartitionLog>) {
        self.flusher.request(Arc::clone(log) as Arc<dyn Flushable>);
    }

    /// Opens the data directory, recovering every partition in it with the
    /// configuration `config_for` gives it. Partitions that cannot be opened
    /// are kept offline with their reason; the others work. Directories of
    /// topics whose deletion was interrupted are removed.
    pub fn open(
        data_dir: &Path,
        default_config: LogConfig,
        config_for: impl Fn(&TopicPartition) -> LogConfig,
    ) -> Result<Self, StorageError> {
        default_config.validate().map_err(StorageError::Config)?;
        let meta = data_dir.join(META_DIR);
        std::fs::create_dir_all(&meta).map_err(|e| StorageError::io("create", &meta, e))?;
        let lock = lock_data_dir(data_dir)?;
        let marker = meta.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        let recovery_points = read_recovery_points(&meta.join(RECOVERY_POINT_FILE));
        if clean {
            std::fs::remove_file(&marker).map_err(|e| StorageError::io("remove", &marker, e))?;
            sync_dir(&meta).map_err(|e| StorageError::io("fsync dir", &meta, e))?;
        } else {
            tracing::info!(data_dir = %data_dir.display(), "no clean-shutdown marker: recovering partitions above their recovery points");
        }

        let manager = Self {
            _lock: lock,
            data_dir: data_dir.to_path_buf(),
            partitions: RwLock::new(BTreeMap::new()),
            offline: RwLock::new(BTreeMap::new()),
            segment_cache: Arc::new(SegmentCache::new(default_config.max_open_segments)),
            default_config,
            cleaner_running: Mutex::new(()),
            cleaner_stop: Arc::new(AtomicBool::new(false)),
            flusher: Flusher::start(FLUSHER_THREADS)
                .map_err(|e| StorageError::io("start the flusher threads for", data_dir, e))?,
        };
        let work: Vec<_> = partition_dirs(data_dir)?
            .into_iter()
            .map(|(tp, dir)| {
                let recovery_point = recovery_points.get(&tp).copied();
                let hint = match recovery_point {
                    Some(point) if clean => RecoveryHint::clean(point),
                    point => RecoveryHint {
                        clean_shutdown: false,
                        recovery_point: point.unwrap_or(0),
                    },
                };
                let config = config_for(&tp);
                (tp, dir, config, hint)
            })
            .collect();
        // Each partition recovers on its own; the pool only overlaps their I/O.
        let opened = run_bounded(work, |(tp, dir, config, hint)| {
            let cache = Arc::clone(&manager.segment_cache);
            let result = PartitionLog::open_with_cache(&dir, config, hint, cache);
            (tp, result)
        });
        for (tp, result) in opened {
            manager.open_partition(tp, result);
        }
        Ok(manager)
    }

    /// Records the outcome of opening one partition: online, or offline with its reason.
    fn open_partition(&self, tp: TopicPartition, result: Result<PartitionLog, StorageError>) {
        match result {
            Ok(log) => {
                write_lock(&self.partitions).insert(tp, Arc::new(log));
            }
            Err(error) => {
                let fenced = matches!(error, StorageError::Fenced { .. });
                tracing::error!(partition = %tp, error = %error, fenced, "partition offline");
                let reason = match error {
                    StorageError::Fenced { reason, .. } => reason,
                    other => other.to_string(),
                };
                write_lock(&self.offline).insert(tp, OfflinePartition { reason, fenced });
            }
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The cache through which every partition opens its sealed segments.
    pub fn segment_cache(&self) -> &SegmentCache {
        &self.segment_cache
    }

    /// The configuration new partitions get unless a topic overrides it.
    pub fn default_config(&self) -> &LogConfig {
        &self.default_config
    }

    /// Creates a partition (or returns the existing one).
    pub fn get_or_create(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
    ) -> Result<Arc<PartitionLog>, StorageError> {
        if let Some(log) = self.get(tp)? {
            return Ok(log);
        }
        let mut partitions = write_lock(&self.partitions);
        if let Some(log) = partitions.get(tp) {
            return Ok(Arc::clone(log));
        }
        let dir = self.data_dir.join(tp.to_string());
        let cache = Arc::clone(&self.segment_cache);
        let log = Arc::new(PartitionLog::open_with_cache(
            &dir,
            config,
            RecoveryHint::full_scan(),
            cache,
        )?);
        sync_dir(&self.data_dir).map_err(|e| StorageError::io("fsync dir", &self.data_dir, e))?;
        partitions.insert(tp.clone(), Arc::clone(&log));
        Ok(log)
    }

    /// The partition's log, `Ok(None)` if it does not exist, or the reason it is offline.
    pub fn get(&self, tp: &TopicPartition) -> Result<Option<Arc<PartitionLog>>, StorageError> {
        if let Some(offline) = read_lock(&self.offline).get(tp) {
            if !offline.fenced {
                return Err(StorageError::Offline {
                    partition: tp.to_string(),
                    reason: offline.reason.clone(),
                });
            }
            return Err(StorageError::Fenced {
                partition: tp.to_string(),
                file: self.data_dir.join(tp.to_string()),
                position: 0,
                reason: offline.reason.clone(),
            });
        }
        Ok(read_lock(&self.partitions).get(tp).cloned())
    }

    /// Every open partition.
    pub fn partitions(&self) -> Vec<(TopicPartition, Arc<PartitionLog>)> {
        read_lock(&self.partitions)
            .iter()
            .map(|(tp, log)| (tp.clone(), Arc::clone(log)))
            .collect()
    }

    /// Every offline partition with its reason.
    pub fn offline_partitions(&self) -> Vec<(TopicPartition, OfflinePartition)> {
        read_lock(&self.offline)
            .iter()
            .map(|(tp, why)| (tp.clone(), why.clone()))
            .collect()
    }

    /// Removes a partition and deletes its files: the directory is first renamed
    /// to `<topic>-<partition>.<n>-delete` (atomic, so a crash leaves either the
    /// whole partition or a directory the next start deletes), then removed.
    pub fn delete_partition(&self, tp: &TopicPartition) -> Result<(), StorageError> {
        let removed = write_lock(&self.partitions).remove(tp);
        write_lock(&self.offline).remove(tp);
        let dir = self.data_dir.join(tp.to_string());
        if let Some(log) = removed {
            // Readers holding slices keep their mappings; new readers cannot find it.
            let _ = log.close();
        }
        if !dir.exists() {
            return Ok(());
        }
        let doomed = self
            .data_dir
            .join(format!("{tp}.{}{DELETE_SUFFIX}", crate::basics::now_ms()));
        std::fs::rename(&dir, &doomed).map_err(|e| StorageError::io("rename", &dir, e))?;
        sync_dir(&self.data_dir).map_err(|e| StorageError::io("fsync dir", &self.data_dir, e))?;
        std::fs::remove_dir_all(&doomed).map_err(|e| StorageError::io("delete", &doomed, e))?;
        // A partition created later under the same name starts never cleaned.
        crate::storage::cleaner_checkpoint::forget(&dir).map_err(|e| {
            StorageError::io(
                "write",
                crate::storage::cleaner_checkpoint::checkpoint_path(&dir),
                e,
            )
        })?;
        // Forget its recovery point now: a partition created later under the
        // same name must not be held to the old one's offsets.
        self.checkpoint_recovery_points()
    }

    /// Syncs every partition (the `interval:MS` flusher's tick). A partition
    /// that fails is poisoned and logged; the others are still flushed.
    pub fn flush_all(&self) {
        for (_, log) in self.partitions() {
            // The partition logs and poisons itself on failure.
            let _ = log.flush();
        }
    }

    /// Returns the segment space reserved ahead of appends by partitions that
    /// appended nothing for `idle`, so idle partitions hold no reservation.
    pub fn release_idle_reservations(&self, idle: Duration) {
        for (tp, log) in self.partitions() {
            if let Err(error) = log.release_reservation(idle) {
                tracing::warn!(partition = %tp, error = %error, "cannot release reserved segment space");
            }
        }
    }

    /// Forgets, in every partition, the idempotent producers idle for
    /// `expiration_ms` at `now_ms` (Kafka's `producer.id.expiration.ms`).
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) {
        for (tp, log) in self.partitions() {
            let expired = log.expire_producers(now_ms, expiration_ms);
            if expired > 0 {
                tracing::info!(partition = %tp, expired, "expired idle producer ids");
            }
        }
    }

    /// Runs retention on every partition.
    pub fn enforce_retention(&self) {
        for (tp, log) in self.partitions() {
            if let Err(error) = log.enforce_retention_now() {
                tracing::error!(partition = %tp, error = %error, "retention failed");
            }
        }
    }

    /// Runs the log cleaner once over every compacted partition that is due
    /// at `now_ms` (the broker's clock), one partition after another,
    /// throttled (see `storage::cleaner`). Returns what was cleaned. If a
    /// pass is already running (or shutdown began) this returns at once. A
    /// partition the cleaner finds damaged goes offline as fenced.
    pub fn clean_due_partitions(&self, now_ms: i64) -> Vec<(TopicPartition, CleanOutcome)> {
        let _running = match self.cleaner_running.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Vec::new(),
        };
        let cleaner = Cleaner {
            stop: Some(Arc::clone(&self.cleaner_stop)),
            ..Cleaner::default()
        };
        let mut cleaned = Vec::new();
        for (tp, log) in self.partitions() {
            if self.cleaner_stop.load(Ordering::Relaxed) {
                break;
            }
            if !log.config().cleanup_policy.compact || log.is_poisoned() {
                continue;
            }
            match cleaner.clean(&log, now_ms) {
                Ok(Some(outcome)) => cleaned.push((tp, outcome)),
                Ok(None) => {}
                Err(StorageError::Fenced { reason, .. }) => {
                    tracing::error!(partition = %tp, %reason, "partition fenced: the log cleaner found damage inside sealed data");
                    write_lock(&self.partitions).remove(&tp);
                    write_lock(&self.offline).insert(
                        tp,
                        OfflinePartition {
                            reason,
                            fenced: true,
                        },
                    );
                }
                Err(error) => {
                    tracing::error!(partition = %tp, error = %error, "log cleaning failed");
                }
            }
        }
        cleaned
    }

    /// Writes every partition's durable offset as its recovery point.
    pub fn checkpoint_recovery_points(&self) -> Result<(), StorageError> {
        let points: Vec<(TopicPartition, i64)> = self
            .partitions()
            .into_iter()
            .map(|(tp, log)| (tp, log.durable_offset()))
            .collect();
        self.write_recovery_points(&points)
    }

    fn write_recovery_points(&self, points: &[(TopicPartition, i64)]) -> Result<(), StorageError> {
        let mut text = String::new();
        for (tp, offset) in points {
            text.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
        }
        let path = self.data_dir.join(META_DIR).join(RECOVERY_POINT_FILE);
        write_checksummed(&path, text.as_bytes()).map_err(|e| StorageError::io("write", &path, e))
    }

    /// Clean shutdown: flush and close every partition (on the bounded pool),
    /// write the recovery points, then the clean-shutdown marker, so the next
    /// start skips the scan. If any partition fails to close, no marker is
    /// written and the next start recovers.
    pub fn shutdown(&self) -> Result<(), StorageError> {
        // Stop a cleaning pass between batches and wait for it to leave.
        self.cleaner_stop.store(true, Ordering::Relaxed);
        drop(crate::basics::lock(&self.cleaner_running));
        let mut points = Vec::new();
        let mut first_error = None;
        let closed = run_bounded(self.partitions(), |(tp, log)| {
            let result = log.close();
            (tp, result)
        });
        for (tp, result) in closed {
            match result {
                Ok(end) => points.push((tp, end)),
                Err(error) => {
                    tracing::error!(partition = %tp, error = %error, "partition did not close cleanly");
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        self.write_recovery_points(&points)?;
        let marker = self.data_dir.join(META_DIR).join(CLEAN_SHUTDOWN_FILE);
        write_checksummed(&marker, b"clean\n")
            .map_err(|e| StorageError::io("write", &marker, e))?;
        Ok(())
    }
}

/// Runs `work` on every item on at most one thread per CPU (fewer when there
/// are fewer items) and returns the results in the items' order. Threads
/// take the next item from a shared counter, so a slow partition does not
/// hold up the others' share. A panic in `work` propagates to the caller.
pub(crate) fn run_bounded<T, R>(items: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R>
where
    T: Send,
    R: Send,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len());
    if threads <= 1 {
        return items.into_iter().map(work).collect();
    }
    let count = items.len();
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let results: Vec<Mutex<Option<R>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = slots.get(i) else { break };
                if let Some(item) = crate::basics::lock(slot).take() {
                    let result = work(item);
                    *crate::basics::lock(&results[i]) = Some(result);
                }
            });
        }
    });
    // Every index below `count` was taken by exactly one thread and filled
    // (a panicking thread would have propagated out of the scope above).
    results
        .into_iter()
        .filter_map(|slot| slot.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

/// Takes the exclusive lock on the data directory that a running broker
/// holds, or `Ok(None)` when another process holds it: two brokers on one
/// directory would corrupt each other's segments, and offline tools
/// (`sediment user --data-dir`) must not write under a running broker.
pub fn try_lock_data_dir(data_dir: &Path) -> std::io::Result<Option<std::fs::File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join(LOCK_FILE))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// [`try_lock_data_dir`] for the broker itself: held by another process is
/// an error.
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, StorageError> {
    let path = data_dir.join(LOCK_FILE);
    match try_lock_data_dir(data_dir) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(StorageError::io(
            "lock (is another broker using this data directory?)",
            &path,
            std::io::ErrorKind::WouldBlock.into(),
        )),
        Err(e) => Err(StorageError::io("lock", &path, e)),
    }
}

/// Lists `<topic>-<partition>` directories under the data directory.
fn partition_dirs(data_dir: &Path) -> Result<Vec<(TopicPartition, PathBuf)>, StorageError> {
    let entries = std::fs::read_dir(data_dir).map_err(|e| StorageError::io("list", data_dir, e))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io("list", data_dir, e))?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name == META_DIR {
            continue;
        }
        if name.ends_with(DELETE_SUFFIX) {
            tracing::info!(dir = %path.display(), "removing a partition directory whose deletion was interrupted");
            std::fs::remove_dir_all(&path).map_err(|e| StorageError::io("delete", &path, e))?;
            continue;
        }
        if let Ok(tp) = name.parse::<TopicPartition>() {
            dirs.push((tp, path));
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Reads the recovery-point checkpoint; a missing or damaged file yields no
/// points (every partition is then scanned from its start).
fn read_recovery_points(path: &Path) -> BTreeMap<TopicPartition, i64> {
    let payload = match read_checksummed(path) {
        Ok(Some(payload)) => payload,
        Ok(None) => return BTreeMap::new(),
        Err(error) => {
            tracing::warn!(error = %error, "ignoring the recovery-point checkpoint: every partition is scanned in full");
            return BTreeMap::new();
        }
    };
    String::from_utf8_lossy(&payload)
        .lines()
        .filter_map(|line| {
            let mut words = line.rsplitn(3, ' ');
            let offset = words.next()?.parse::<i64>().ok()?;
            let partition = words.next()?.parse::<i32>().ok()?;
            let topic = words.next()?;
            Some((TopicPartition::new(topic, partition), offset))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_batches::batch_with_records;

    #[test]
    fn topic_partition_dir_names_round_trip() {
        let tp = TopicPartition::new("my-topic", 3);
        assert_eq!(tp.to_string(), "my-topic-3");
        assert_eq!("my-topic-3".parse::<TopicPartition>().ok(), Some(tp));
        assert_eq!("meta".parse::<TopicPartition>().ok(), None);
        assert_eq!("-3".parse::<TopicPartition>().ok(), None);
        assert_eq!("t-x".parse::<TopicPartition>().ok(), None);
        assert_eq!(
            "t--1".parse::<TopicPartition>().ok(),
            Some(TopicPartition::new("t-", 1))
        );
    }

    #[test]
    fn given_many_items_when_run_bounded_then_each_runs_once_and_results_keep_their_order() {
        let runs = AtomicUsize::new(0);
        let results = run_bounded((0..1000).collect(), |i: u64| {
            runs.fetch_add(1, Ordering::Relaxed);
            i * 2
        });
        assert_eq!(runs.load(Ordering::Relaxed), 1000);
        assert_eq!(results, (0..1000).map(|i| i * 2).collect::<Vec<u64>>());
        assert!(run_bounded(Vec::<u8>::new(), |i| i).is_empty());
    }

    #[test]
    fn given_open_data_dir_when_opened_again_then_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first =
            LogManager::open(dir.path(), LogConfig::default(), |_| LogConfig::default()).unwrap();
        let second = LogManager::open(dir.path(), LogConfig::default(), |_| LogConfig::default());
        assert!(second.is_err());
    }

    #[test]
    fn given_clean_shutdown_when_reopened_then_marker_consumed_and_data_back() {
        let dir = tempfile::tempdir().unwrap();
        let tp = TopicPartition::new("orders", 0);
        {
            let manager =
                LogManager::open(dir.path(), LogConfig::default(), |_| LogConfig::default())
                    .unwrap();
            let log = manager.get_or_create(&tp, LogConfig::default()).unwrap();
            let outcome = log.append(&batch_with_records(3, 10, 0)).unwrap();
            log.make_durable(outcome.next_offset).unwrap();
            manager.shutdown().unwrap();
        }
        let marker = dir.path().join(META_DIR).join(CLEAN_SHUTDOWN_FILE);
        assert!(marker.exists());
        let points = read_recovery_points(&dir.path().join(META_DIR).join(RECOVERY_POINT_FILE));
        assert_eq!(points.get(&tp), Some(&3));

        let manager =
            LogManager::open(dir.path(), LogConfig::default(), |_| LogConfig::default()).unwrap();
        assert!(!marker.exists(), "the marker is consumed on open");
        let log = manager.get(&tp).unwrap().unwrap();
        assert_eq!(log.high_watermark(), 3);
    }
}
