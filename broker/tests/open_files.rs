//! Open files and mappings follow the work, not the history (principle 7):
//! a log with thousands of sealed segments holds descriptors and mappings
//! for its active segment and for at most `max_open_segments` recently read
//! sealed ones, while every record stays readable and byte-identical.
//!
//! Counts come from `/proc/self/fd` and `/proc/self/maps`, restricted to the
//! test's own data directory (tests in this binary run in parallel).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;
use support::as_stored;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use sediment_broker::basics::TopicPartition;
use sediment_broker::storage::log_manager::LogManager;
use sediment_broker::storage::test_batches::batch_of_size;
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::{FlushPolicy, LogConfig};

/// Descriptors of the active segment: its `.log` (appended with `pwritev`);
/// its indexes are mapped and hold none.
const FDS_PER_ACTIVE_PARTITION: usize = 1;
/// Mappings of the active segment (`.log`, `.index`, `.timeindex`).
const MAPPINGS_PER_ACTIVE_PARTITION: usize = 3;
/// Each cached sealed segment maps its `.log` and both indexes, and holds no descriptor.
const MAPPINGS_PER_SEALED: usize = 3;

/// Segments of about one batch each: a ~700-byte batch fills a 1 KiB segment.
fn tiny_segments(max_open_segments: usize) -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        preallocate_bytes: 4096,
        // Appends are readable at once; a roll still seals (syncs) the segment.
        flush: FlushPolicy::Interval(Duration::from_secs(3600)),
        retention_ms: None,
        max_open_segments,
        ..LogConfig::default()
    }
}

/// The batch appended as record `k`: its value derives from `k`, its
/// timestamp is `10 * k`.
fn record(k: i64) -> Vec<u8> {
    batch_of_size(1, 700, 10 * k, k as u64)
}

/// Descriptors this process holds on files under `dir`.
fn open_fds_under(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

/// Mappings (lines of `/proc/self/maps`) of files under `dir`.
fn mappings_under(dir: &Path) -> usize {
    let dir = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|line| line.contains(dir))
        .count()
}

/// A deterministic xorshift generator (reproducible test order).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn shuffled(&mut self, n: usize) -> Vec<i64> {
        let mut order: Vec<i64> = (0..n as i64).collect();
        for i in (1..n).rev() {
            order.swap(i, self.below(i + 1));
        }
        order
    }
}

/// Appends records `0..count`, one segment each.
fn fill(log: &PartitionLog, count: i64) {
    for k in 0..count {
        let outcome = log.append(&record(k)).unwrap();
        assert_eq!(outcome.base_offset, k);
    }
    assert_eq!(log.segment_count(), count as usize);
}

fn assert_reads_back(log: &PartitionLog, k: i64) -> Bytes {
    let read = log.read(k, 1).unwrap();
    assert_eq!(read.next_offset, k + 1, "record {k}");
    assert_eq!(&read.bytes[..], &as_stored(&record(k), k)[..], "record {k}");
    read.bytes
}

#[test]
fn given_3000_sealed_segments_when_every_record_is_read_in_random_order_then_fds_and_mappings_stay_bounded_by_the_cache(
) {
    const SEGMENTS: i64 = 3000;
    const CACHE: usize = 64;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let log = PartitionLog::open(&dir, tiny_segments(CACHE), RecoveryHint::full_scan()).unwrap();
    fill(&log, SEGMENTS);
    let (fds, maps) = (open_fds_under(&dir), mappings_under(&dir));
    eprintln!("after writing {SEGMENTS} segments: {fds} fds, {maps} mappings");
    assert!(fds <= FDS_PER_ACTIVE_PARTITION, "{fds} descriptors open");
    assert!(maps <= MAPPINGS_PER_ACTIVE_PARTITION, "{maps} mappings");

    let mut rng = Rng(0x5eed);
    let bound = CACHE * MAPPINGS_PER_SEALED + MAPPINGS_PER_ACTIVE_PARTITION;
    let mut most_maps = 0;
    for (n, k) in rng.shuffled(SEGMENTS as usize).into_iter().enumerate() {
        drop(assert_reads_back(&log, k));
        if n % 100 == 0 {
            most_maps = most_maps.max(mappings_under(&dir));
            assert!(open_fds_under(&dir) <= FDS_PER_ACTIVE_PARTITION);
        }
    }
    for _ in 0..200 {
        let k = rng.below(SEGMENTS as usize) as i64;
        assert_eq!(log.offset_for_timestamp(10 * k), Some((k, 10 * k)));
    }
    let (fds, maps) = (open_fds_under(&dir), mappings_under(&dir));
    most_maps = most_maps.max(maps);
    eprintln!("after reading every record: {fds} fds, {maps} mappings (most seen {most_maps}, bound {bound})");
    assert!(fds <= FDS_PER_ACTIVE_PARTITION, "{fds} descriptors open");
    assert!(most_maps <= bound, "{most_maps} mappings, bound {bound}");
}

#[test]
fn given_slices_of_evicted_segments_when_still_held_then_their_bytes_stay_valid() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let log = PartitionLog::open(&dir, tiny_segments(2), RecoveryHint::full_scan()).unwrap();
    fill(&log, 40);
    // Every read after the second evicts an earlier segment from the cache;
    // the slices handed out keep their mappings.
    let held: Vec<Bytes> = (0..30).map(|k| assert_reads_back(&log, k)).collect();
    assert!(
        mappings_under(&dir) >= held.len(),
        "each held slice pins its segment's mapping"
    );
    for (k, bytes) in held.iter().enumerate() {
        let k = k as i64;
        assert_eq!(&bytes[..], &as_stored(&record(k), k)[..], "record {k}");
    }
    drop(held);
    let maps = mappings_under(&dir);
    assert!(
        maps <= 2 * MAPPINGS_PER_SEALED + MAPPINGS_PER_ACTIVE_PARTITION,
        "{maps} mappings once the slices are dropped"
    );
}

#[test]
fn given_sealed_segments_cached_or_not_when_retention_deletes_them_then_files_and_mappings_are_gone(
) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let config = LogConfig {
        retention_bytes: Some(1),
        ..tiny_segments(8)
    };
    let log = PartitionLog::open(&dir, config, RecoveryHint::full_scan()).unwrap();
    fill(&log, 200);
    // Some sealed segments are cached, most are not.
    for k in [0, 1, 50, 120, 198] {
        drop(assert_reads_back(&log, k));
    }
    let outcome = log.enforce_retention_now().unwrap();
    assert_eq!(outcome.segments_deleted, 199);
    assert_eq!(log.log_start_offset(), 199);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let (snapshots, files): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| n.ends_with(".snapshot"));
    assert_eq!(files.len(), 3, "only the active segment's files remain");
    // The producer-state snapshot at the active segment's base stays (its
    // state covers the deleted segments); the older ones went with them.
    assert!(snapshots.len() <= 1, "{snapshots:?}");
    assert!(mappings_under(&dir) <= MAPPINGS_PER_ACTIVE_PARTITION);
    assert!(open_fds_under(&dir) <= FDS_PER_ACTIVE_PARTITION);
    drop(assert_reads_back(&log, 199));
}

#[test]
fn given_log_manager_with_thousands_of_segments_when_reopened_and_read_then_open_files_follow_active_partitions(
) {
    const PARTITIONS: i32 = 4;
    const SEGMENTS: i64 = 500;
    const CACHE: usize = 16;
    let root = tempfile::tempdir().unwrap();
    let config = tiny_segments(CACHE);
    {
        let manager = LogManager::open(root.path(), config.clone(), |_| config.clone()).unwrap();
        for p in 0..PARTITIONS {
            let log = manager
                .get_or_create(&TopicPartition::new("t", p), config.clone())
                .unwrap();
            fill(&log, SEGMENTS);
        }
        manager.shutdown().unwrap();
    }
    let manager = LogManager::open(root.path(), config.clone(), |_| config.clone()).unwrap();
    let active_fds = PARTITIONS as usize * FDS_PER_ACTIVE_PARTITION;
    let active_maps = PARTITIONS as usize * MAPPINGS_PER_ACTIVE_PARTITION;
    let (fds, maps) = (open_fds_under(root.path()), mappings_under(root.path()));
    eprintln!(
        "reopened {} segments: {fds} fds, {maps} mappings",
        PARTITIONS as i64 * SEGMENTS
    );
    // The data directory's lock file is one more descriptor.
    assert!(fds <= active_fds + 1, "{fds} descriptors after opening");
    assert!(maps <= active_maps, "{maps} mappings after opening");

    let mut rng = Rng(7);
    for k in rng.shuffled(SEGMENTS as usize) {
        for p in 0..PARTITIONS {
            let log = manager.get(&TopicPartition::new("t", p)).unwrap().unwrap();
            drop(assert_reads_back(&log, k));
        }
    }
    let (fds, maps) = (open_fds_under(root.path()), mappings_under(root.path()));
    eprintln!("after reading every record: {fds} fds, {maps} mappings");
    assert!(manager.segment_cache().len() <= CACHE);
    assert!(fds <= active_fds + 1, "{fds} descriptors after reading");
    assert!(
        maps <= CACHE * MAPPINGS_PER_SEALED + active_maps,
        "{maps} mappings after reading"
    );
}

#[test]
fn given_sealed_segments_with_index_entries_when_read_through_a_one_segment_cache_then_every_lookup_matches(
) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let config = LogConfig {
        segment_bytes: 16 * 1024,
        ..tiny_segments(1)
    };
    let log = PartitionLog::open(&dir, config, RecoveryHint::full_scan()).unwrap();
    // ~700-byte batches: 23 to a segment, an index entry every few.
    for k in 0..200 {
        log.append(&record(k)).unwrap();
    }
    assert!(log.segment_count() >= 8);
    let index_bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "index"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(index_bytes > 0, "sealed segments have index entries");
    let mut rng = Rng(99);
    for k in rng.shuffled(200) {
        drop(assert_reads_back(&log, k));
        assert_eq!(log.offset_for_timestamp(10 * k), Some((k, 10 * k)));
        assert_eq!(log.offset_for_timestamp(10 * k - 5), Some((k, 10 * k)));
    }
    let maps = mappings_under(&dir);
    assert!(
        maps <= MAPPINGS_PER_SEALED + MAPPINGS_PER_ACTIVE_PARTITION,
        "{maps} mappings"
    );
}
