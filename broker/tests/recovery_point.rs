//! Start and stop at scale: recovery after an unclean stop CRC-checks only
//! what lies above the recovery point (data below it is trusted, as Kafka
//! trusts it, while `sediment log verify` still reads every byte), and opening
//! or closing many partitions on the bounded worker pool gives exactly what
//! the serial start and stop gave.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;
use support::{append_acked, as_stored, read_all};

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sediment_broker::basics::TopicPartition;
use sediment_broker::storage::log_manager::{LogManager, CLEAN_SHUTDOWN_FILE, META_DIR};
use sediment_broker::storage::recovery::{list_partition_dir, plan_recovery, Finding};
use sediment_broker::storage::test_batches::batch_of_size;
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::LogConfig;

const INDEX_INTERVAL: u64 = 1024;

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 16 * 1024,
        index_interval_bytes: INDEX_INTERVAL,
        preallocate_bytes: 8 * 1024,
        ..LogConfig::default()
    }
}

/// A partition with several sealed segments and an active one holding a few
/// batches, dropped without `close()` (as after kill -9). Returns the
/// acknowledged batches and the log end (every batch was made durable).
fn write_and_drop(dir: &Path, batches: u64) -> (Vec<(i64, Vec<u8>)>, i64) {
    let log = PartitionLog::open(dir, small_segments(), RecoveryHint::full_scan()).unwrap();
    let mut expected = Vec::new();
    for i in 0..batches {
        let batch = batch_of_size(1 + (i % 3) as usize, 1500, 1000 * i as i64, i);
        let base = append_acked(&log, &batch);
        expected.push((base, as_stored(&batch, base)));
    }
    assert!(log.segment_count() >= 3, "the test needs sealed segments");
    let end = log.durable_offset();
    drop(log);
    (expected, end)
}

fn unclean(recovery_point: i64) -> RecoveryHint {
    RecoveryHint {
        clean_shutdown: false,
        recovery_point,
    }
}

/// (position, base offset) of each batch in a `.log`.
fn batch_positions(log: &Path) -> Vec<(u64, i64)> {
    let bytes = std::fs::read(log).unwrap();
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let header = sediment_broker::storage::batch::BatchHeader::parse(&bytes[at..]).unwrap();
        out.push((at as u64, header.base_offset()));
        at += header.total_len();
    }
    out
}

/// Base offsets of the batches a reader gets from offset 0, checking only
/// their structure (a trusted damaged batch is served as stored, and the
/// client's CRC check is what catches it, as with Kafka).
fn served_bases(log: &PartitionLog) -> Vec<i64> {
    let mut bases = Vec::new();
    let mut offset = 0;
    while offset < log.high_watermark() {
        let read = log.read(offset, 10_000).unwrap();
        let mut rest = &read.bytes[..];
        while !rest.is_empty() {
            let header = sediment_broker::storage::batch::BatchHeader::parse(rest).unwrap();
            bases.push(header.base_offset());
            rest = &rest[header.total_len()..];
        }
        offset = read.next_offset;
    }
    bases
}

/// Flips one byte of the last record of the batch at `position` (inside its CRC).
fn damage_batch_payload(log: &Path, position: u64) {
    let bytes = std::fs::read(log).unwrap();
    let header =
        sediment_broker::storage::batch::BatchHeader::parse(&bytes[position as usize..]).unwrap();
    let at = position + header.total_len() as u64 - 2;
    let file = OpenOptions::new().read(true).write(true).open(log).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x5a], at).unwrap();
}

#[test]
fn given_unclean_drop_with_recovery_point_at_log_end_when_planned_then_no_byte_is_crc_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("orders-0");
    let (_, end) = write_and_drop(&dir, 40);

    let plan = plan_recovery(&dir, unclean(end), INDEX_INTERVAL).unwrap();
    assert!(plan.fence.is_none());
    assert!(!plan.findings.iter().any(Finding::affects_data));
    for segment in &plan.segments {
        assert!(
            segment.verified.is_empty(),
            "{} had bytes {:?} CRC-checked though all lie below the recovery point",
            segment.files.log.display(),
            segment.verified
        );
    }
    let active = plan.segments.last().unwrap();
    assert!(active.log_len > 0, "the active segment holds batches");
    assert_eq!(active.next_offset, end);

    // Without a recovery point every byte of the active segment is checked.
    let full = plan_recovery(&dir, RecoveryHint::full_scan(), INDEX_INTERVAL).unwrap();
    let active = full.segments.last().unwrap();
    assert_eq!(active.verified, 0..active.log_len);
}

#[test]
fn given_crc_damage_below_recovery_point_in_active_segment_when_reopened_unclean_then_trusted_but_verify_reports_it(
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("orders-0");
    let (expected, end) = write_and_drop(&dir, 40);
    let active = list_partition_dir(&dir).unwrap().segments.pop().unwrap();
    let first = batch_positions(&active.log)[0].0;
    damage_batch_payload(&active.log, first);

    // What `sediment log verify` runs: a full scan sees the damage.
    let verify = plan_recovery(&dir, RecoveryHint::full_scan(), INDEX_INTERVAL).unwrap();
    assert!(
        verify.findings.iter().any(Finding::affects_data),
        "verify must report the damaged batch: {:?}",
        verify.findings
    );

    // A restart trusts data below the recovery point: no cut, no fence.
    let log = PartitionLog::open(&dir, small_segments(), unclean(end)).unwrap();
    assert_eq!(log.high_watermark(), end);
    let bases: Vec<i64> = expected.iter().map(|(base, _)| *base).collect();
    assert_eq!(served_bases(&log), bases);
}

#[test]
fn given_recovery_point_inside_active_segment_when_reopened_unclean_then_only_batches_above_it_are_checked_and_cut(
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("orders-0");
    let (expected, end) = write_and_drop(&dir, 40);
    let active = list_partition_dir(&dir).unwrap().segments.pop().unwrap();
    let batches = batch_positions(&active.log);
    assert!(
        batches.len() >= 3,
        "the active segment needs several batches"
    );
    // The recovery point is the base offset of the second-to-last batch.
    let (point_position, point) = batches[batches.len() - 2];
    let (last_position, last_base) = batches[batches.len() - 1];

    let plan = plan_recovery(&dir, unclean(point), INDEX_INTERVAL).unwrap();
    let planned = plan.segments.last().unwrap();
    assert_eq!(planned.verified, point_position..planned.log_len);

    // Damage below the point is trusted; damage above it is a torn tail, cut.
    damage_batch_payload(&active.log, batches[0].0);
    damage_batch_payload(&active.log, last_position);
    let log = PartitionLog::open(&dir, small_segments(), unclean(point)).unwrap();
    assert_eq!(
        log.high_watermark(),
        last_base,
        "the damaged last batch is cut"
    );
    assert!(last_base < end);
    let served = served_bases(&log);
    assert_eq!(served.len(), expected.len() - 1);
    assert_eq!(served.last().copied(), Some(point));
}

fn manager(dir: &Path) -> LogManager {
    LogManager::open(dir, small_segments(), |_| small_segments()).unwrap()
}

/// Creates `count` partitions, partition `p` holding `p % 7 + 1` batches of one record.
fn fill(manager: &LogManager, count: i32) {
    for p in 0..count {
        let tp = TopicPartition::new("many", p);
        let log = manager.get_or_create(&tp, small_segments()).unwrap();
        for i in 0..(p % 7 + 1) {
            append_acked(&log, &batch_of_size(1, 200, i64::from(i), p as u64));
        }
    }
}

fn assert_all_present(manager: &LogManager, count: i32) {
    assert_eq!(manager.partitions().len(), count as usize);
    assert!(manager.offline_partitions().is_empty());
    for p in 0..count {
        let log = manager
            .get(&TopicPartition::new("many", p))
            .unwrap()
            .unwrap();
        assert_eq!(log.high_watermark(), i64::from(p % 7 + 1), "partition {p}");
        assert_eq!(read_all(&log, 0).len(), (p % 7 + 1) as usize);
    }
}

#[test]
fn given_300_partitions_when_closed_and_reopened_on_the_pool_then_all_present_with_their_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let manager = manager(tmp.path());
        fill(&manager, 300);
        manager.shutdown().unwrap();
    }
    assert!(tmp.path().join(META_DIR).join(CLEAN_SHUTDOWN_FILE).exists());
    let manager = manager(tmp.path());
    assert_all_present(&manager, 300);
    // Appends continue at the right offsets after the parallel open.
    let log = manager
        .get(&TopicPartition::new("many", 13))
        .unwrap()
        .unwrap();
    assert_eq!(append_acked(&log, &batch_of_size(1, 200, 0, 0)), 13 % 7 + 1);
}

#[test]
fn given_300_partitions_dropped_unclean_when_reopened_on_the_pool_then_all_present_with_their_offsets(
) {
    let tmp = tempfile::tempdir().unwrap();
    {
        let manager = manager(tmp.path());
        fill(&manager, 300);
        manager.checkpoint_recovery_points().unwrap();
        // Dropped without shutdown, as after kill -9.
    }
    assert!(!tmp.path().join(META_DIR).join(CLEAN_SHUTDOWN_FILE).exists());
    let manager = manager(tmp.path());
    assert_all_present(&manager, 300);
}

#[test]
fn given_one_damaged_partition_among_many_when_reopened_then_only_it_is_offline() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let manager = manager(tmp.path());
        fill(&manager, 40);
        manager.shutdown().unwrap();
    }
    // Partition 9's data is gone below its recovery point: it is fenced.
    let damaged = tmp.path().join("many-9");
    let active = list_partition_dir(&damaged)
        .unwrap()
        .segments
        .pop()
        .unwrap();
    OpenOptions::new()
        .write(true)
        .open(&active.log)
        .unwrap()
        .set_len(0)
        .unwrap();
    let manager = manager(tmp.path());
    let offline = manager.offline_partitions();
    assert_eq!(offline.len(), 1);
    assert_eq!(offline[0].0, TopicPartition::new("many", 9));
    assert!(offline[0].1.fenced);
    assert_eq!(manager.partitions().len(), 39);
    // Its neighbours opened normally.
    let log = manager
        .get(&TopicPartition::new("many", 10))
        .unwrap()
        .unwrap();
    assert_eq!(log.high_watermark(), 10 % 7 + 1);
}
