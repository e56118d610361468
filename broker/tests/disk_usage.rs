//! Resources follow the data (DESIGN §1 principle 7, §3 "Resource model"):
//! an idle partition costs its data plus a small constant on disk, also after
//! a crash (a drop without `close`, as kill -9 leaves it) and the reopen that
//! follows; the active segment's mapping covers its data, not the maximum
//! segment size; reserved space is returned when a partition goes idle.
//!
//! Disk use is measured as allocated blocks (`st_blocks * 512`) summed over the
//! data directory, which is what `du` reports and what fills a volume.

// Tests may unwrap (house style); the helpers below are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::{append_acked, as_stored, read_all};

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use sediment_broker::storage::test_batches::batch_of_size;
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::LogConfig;

/// Partitions in the idle-partition test.
const PARTITIONS: usize = 200;
/// The per-partition constant the resource model allows on top of the data.
const PER_PARTITION_BUDGET: u64 = 1 << 20;

/// (allocated bytes, bytes of `.log` data) under `dir`.
fn disk_use(dir: &Path) -> (u64, u64) {
    let mut allocated = 0;
    let mut data = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            let (a, d) = disk_use(&entry.path());
            allocated += a;
            data += d;
            continue;
        }
        allocated += meta.blocks() * 512;
        if entry.path().extension().is_some_and(|ext| ext == "log") {
            data += meta.len();
        }
    }
    (allocated, data)
}

/// Allocated bytes of one file.
fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// Bytes of the mappings of `path` in this process (from /proc/self/maps).
fn mapped_bytes(path: &Path) -> u64 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let name = path.to_str().unwrap();
    maps.lines()
        .filter(|line| line.ends_with(name))
        .map(|line| {
            let range = line.split_whitespace().next().unwrap();
            let (start, end) = range.split_once('-').unwrap();
            u64::from_str_radix(end, 16).unwrap() - u64::from_str_radix(start, 16).unwrap()
        })
        .sum()
}

fn open_all(root: &Path, hint: RecoveryHint) -> Vec<PartitionLog> {
    (0..PARTITIONS)
        .map(|p| {
            PartitionLog::open(&root.join(format!("idle-{p}")), LogConfig::default(), hint).unwrap()
        })
        .collect()
}

/// Descriptors this process holds on files under `dir` (tests of this
/// binary run in parallel, each in its own directory).
fn open_fds_under(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

#[test]
fn given_many_idle_partitions_with_one_message_when_measured_then_disk_is_data_plus_small_constant_also_after_crash_and_reopen(
) {
    let tmp = tempfile::tempdir().unwrap();
    let logs = open_all(tmp.path(), RecoveryHint::full_scan());
    let mut acked = Vec::new();
    for (p, log) in logs.iter().enumerate() {
        let batch = batch_of_size(1, 200, 1_000, p as u64);
        let base = append_acked(log, &batch);
        acked.push(vec![(base, as_stored(&batch, base))]);
    }
    let budget = |data: u64| data + PER_PARTITION_BUDGET * PARTITIONS as u64;

    let (running, data) = disk_use(tmp.path());
    eprintln!("{PARTITIONS} partitions, one message each, running: {running} bytes allocated for {data} bytes of data");
    assert!(
        running <= budget(data),
        "running: {running} bytes allocated for {data} bytes of data"
    );

    // Descriptors follow the work: an idle partition holds its active
    // `.log` open (appends use pwritev) and nothing else.
    let fds = open_fds_under(tmp.path());
    eprintln!("{PARTITIONS} idle partitions: {fds} descriptors");
    assert!(
        fds <= PARTITIONS,
        "{fds} descriptors for {PARTITIONS} idle partitions"
    );

    // kill -9: the logs go away without close (no trim, no seal).
    drop(logs);
    let (crashed, data) = disk_use(tmp.path());
    eprintln!("after a crash: {crashed} bytes allocated");
    assert!(crashed <= budget(data), "after a crash: {crashed} bytes");

    let logs = open_all(tmp.path(), RecoveryHint::full_scan());
    let (reopened, data) = disk_use(tmp.path());
    eprintln!("after the reopen: {reopened} bytes allocated for {data} bytes of data");
    assert!(
        reopened <= budget(data),
        "after the reopen: {reopened} bytes"
    );
    for (log, acked) in logs.iter().zip(&acked) {
        assert_eq!(&read_all(log, 0), acked, "{} lost data", log.name());
        let segment = log.dir().join(format!("{:020}.log", 0));
        assert!(
            allocated(&segment) <= 4096,
            "{}: the reopen returns the space reserved past the data, {} bytes are still allocated",
            log.name(),
            allocated(&segment)
        );
    }
}

#[test]
fn given_reserved_space_when_dropped_without_close_and_reopened_then_log_keeps_no_blocks_past_its_data(
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("orders-0");
    let log = PartitionLog::open(&dir, LogConfig::default(), RecoveryHint::full_scan()).unwrap();
    let batch = batch_of_size(4, 1000, 1_000, 7);
    let base = append_acked(&log, &batch);
    let segment = dir.join(format!("{:020}.log", 0));
    let len = std::fs::metadata(&segment).unwrap().len();
    assert!(
        allocated(&segment) > len.next_multiple_of(4096),
        "an append reserves ahead of the data"
    );
    drop(log);

    let log = PartitionLog::open(&dir, LogConfig::default(), RecoveryHint::full_scan()).unwrap();
    assert_eq!(
        allocated(&segment),
        len.next_multiple_of(4096),
        "the reopen frees the reservation"
    );
    assert_eq!(read_all(&log, 0), vec![(base, as_stored(&batch, base))]);
    let next = batch_of_size(4, 1000, 2_000, 8);
    let next_base = append_acked(&log, &next);
    assert_eq!(next_base, base + 4, "appends continue after the reopen");
}

#[test]
fn given_idle_partition_when_reservation_released_then_blocks_return_and_appends_continue() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("orders-0");
    let log = PartitionLog::open(&dir, LogConfig::default(), RecoveryHint::full_scan()).unwrap();
    let first = batch_of_size(4, 1000, 1_000, 1);
    append_acked(&log, &first);
    let segment = dir.join(format!("{:020}.log", 0));
    let len = std::fs::metadata(&segment).unwrap().len();

    assert!(log.release_reservation(Duration::ZERO).unwrap() > 0);
    assert_eq!(allocated(&segment), len.next_multiple_of(4096));
    assert_eq!(
        log.release_reservation(Duration::ZERO).unwrap(),
        0,
        "nothing left to release"
    );
    assert_eq!(
        log.release_reservation(Duration::from_secs(3600)).unwrap(),
        0,
        "a partition that appended recently keeps its reservation"
    );

    let second = batch_of_size(4, 1000, 2_000, 2);
    let base = append_acked(&log, &second);
    assert_eq!(read_all(&log, base), vec![(base, as_stored(&second, base))]);
}

#[test]
fn given_active_segment_of_large_maximum_when_data_is_small_then_mapping_covers_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("orders-0");
    let config = LogConfig {
        segment_bytes: 1 << 30,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(&dir, config.clone(), RecoveryHint::full_scan()).unwrap();
    let segment = dir.join(format!("{:020}.log", 0));
    let mut acked = Vec::new();
    for seed in 0..64 {
        let batch = batch_of_size(4, 16 * 1024, 1_000 * seed as i64, seed);
        let base = append_acked(&log, &batch);
        acked.push((base, as_stored(&batch, base)));
    }
    // Slices of earlier, smaller mappings stay valid after the mapping grew.
    let early = log.read(0, 1).unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    let mapped = mapped_bytes(&segment);
    assert!(
        mapped <= 4 * len,
        "{mapped} bytes mapped for {len} bytes of data (segment maximum {})",
        config.segment_bytes
    );
    assert_eq!(read_all(&log, 0), acked);
    assert_eq!(&early.bytes[..], &acked[0].1[..]);

    drop(log);
    let log = PartitionLog::open(&dir, config, RecoveryHint::full_scan()).unwrap();
    let mapped = mapped_bytes(&segment);
    assert!(
        mapped <= 4 * len,
        "after a reopen: {mapped} bytes mapped for {len}"
    );
    assert_eq!(read_all(&log, 0), acked);
}
