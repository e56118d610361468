//! Idempotent producers in one partition log: retries stored once and
//! answered with their original offsets, gaps and old epochs refused with
//! nothing appended, the state surviving a clean close and a crash, and
//! idle producers expiring (Kafka's `ProducerStateManager` semantics).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;
use support::{append_acked, read_all};

use std::path::Path;

use sediment_broker::protocol::errors::ToErrorCode;
use sediment_broker::storage::test_batches::{batch_with_records, idempotent_batch};
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::LogConfig;

const PID: i64 = 4242;

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 4 * 1024,
        index_interval_bytes: 1024,
        preallocate_bytes: 4 * 1024,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, hint: RecoveryHint) -> PartitionLog {
    PartitionLog::open(&dir.join("t-0"), small_segments(), hint).unwrap()
}

fn records_stored(log: &PartitionLog) -> usize {
    read_all(log, log.log_start_offset()).len()
}

#[test]
fn given_a_stored_batch_when_retried_then_stored_once_and_answered_with_its_original_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &batch_with_records(2, 8, 1_000));
    let first = log.append(&idempotent_batch(3, PID, 0, 0, 1)).unwrap();
    log.make_durable(first.next_offset).unwrap();
    assert_eq!(first.base_offset, 2);
    let retry = log.append(&idempotent_batch(3, PID, 0, 0, 1)).unwrap();
    assert_eq!((retry.base_offset, retry.last_offset), (2, 4));
    log.make_durable(retry.next_offset).unwrap();
    assert_eq!(log.log_end_offset(), 5, "the retry appended nothing");
    assert_eq!(records_stored(&log), 2);
    // An older batch of the last five is still recognised.
    append_acked(&log, &idempotent_batch(2, PID, 0, 3, 2));
    let older = log.append(&idempotent_batch(3, PID, 0, 0, 1)).unwrap();
    assert_eq!(older.base_offset, 2);
    assert_eq!(log.log_end_offset(), 7);
}

#[test]
fn given_a_sequence_gap_when_appended_then_out_of_order_and_nothing_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &idempotent_batch(2, PID, 0, 0, 1));
    let end = log.log_end_offset();
    let error = log.append(&idempotent_batch(1, PID, 0, 5, 2)).unwrap_err();
    assert_eq!(error.kafka_error_code(), 45, "{error}");
    assert_eq!(log.log_end_offset(), end);
    // A set whose first batch is fine and second has a gap appends nothing.
    let mut set = idempotent_batch(1, PID, 0, 2, 3);
    set.extend(idempotent_batch(1, PID, 0, 9, 4));
    let error = log.append(&set).unwrap_err();
    assert_eq!(error.kafka_error_code(), 45, "{error}");
    assert_eq!(log.log_end_offset(), end);
    // The next sequence in order is still accepted.
    assert_eq!(append_acked(&log, &idempotent_batch(1, PID, 0, 2, 5)), end);
}

#[test]
fn given_a_newer_epoch_when_an_old_epoch_appends_then_invalid_producer_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &idempotent_batch(2, PID, 0, 0, 1));
    let error = log.append(&idempotent_batch(1, PID, 1, 3, 2)).unwrap_err();
    assert_eq!(error.kafka_error_code(), 45, "a new epoch must start at 0");
    append_acked(&log, &idempotent_batch(1, PID, 1, 0, 3));
    let end = log.log_end_offset();
    let error = log.append(&idempotent_batch(1, PID, 0, 2, 4)).unwrap_err();
    assert_eq!(error.kafka_error_code(), 47, "{error}");
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(append_acked(&log, &idempotent_batch(1, PID, 1, 1, 5)), end);
}

#[test]
fn given_an_unknown_producer_when_it_starts_past_zero_then_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    assert_eq!(append_acked(&log, &idempotent_batch(2, PID, 3, 17, 1)), 0);
    assert_eq!(append_acked(&log, &idempotent_batch(1, PID, 3, 19, 2)), 2);
}

#[test]
fn given_sequences_at_i32_max_when_the_next_batch_starts_at_0_then_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &idempotent_batch(2, PID, 0, i32::MAX - 1, 1));
    assert_eq!(append_acked(&log, &idempotent_batch(1, PID, 0, 0, 2)), 2);
}

/// Fills several segments (rolls snapshot the state) and returns the log end.
fn produce_across_rolls(log: &PartitionLog) -> i32 {
    let mut seq = 0;
    for i in 0..40 {
        append_acked(log, &idempotent_batch(5, PID, 0, seq, i));
        seq += 5;
    }
    assert!(log.segment_count() > 2, "small segments rolled");
    seq
}

fn assert_state_survived(log: &PartitionLog, next_seq: i32) {
    let end = log.log_end_offset();
    let retry = log
        .append(&idempotent_batch(5, PID, 0, next_seq - 5, 39))
        .unwrap();
    assert_eq!(retry.base_offset, end - 5, "the last batch is a duplicate");
    assert_eq!(log.log_end_offset(), end);
    let gap = log
        .append(&idempotent_batch(1, PID, 0, next_seq + 1, 40))
        .unwrap_err();
    assert_eq!(gap.kafka_error_code(), 45);
    assert_eq!(
        append_acked(log, &idempotent_batch(1, PID, 0, next_seq, 41)),
        end
    );
}

#[test]
fn given_a_clean_close_when_reopened_then_duplicates_and_gaps_are_still_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    let next_seq = produce_across_rolls(&log);
    let end = log.close().unwrap();
    drop(log);
    let snapshots = std::fs::read_dir(dir.path().join("t-0"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "snapshot")
        })
        .count();
    assert!(snapshots >= 2, "snapshots at rolls and at close");
    let log = open(dir.path(), RecoveryHint::clean(end));
    assert_state_survived(&log, next_seq);
}

#[test]
fn given_a_crash_without_close_when_reopened_then_the_state_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    let next_seq = produce_across_rolls(&log);
    // kill -9: no close, no snapshot at the log end.
    drop(log);
    let log = open(dir.path(), RecoveryHint::full_scan());
    assert_state_survived(&log, next_seq);
}

#[test]
fn given_no_snapshot_at_all_when_reopened_after_a_crash_then_the_whole_log_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    let next_seq = produce_across_rolls(&log);
    drop(log);
    for entry in std::fs::read_dir(dir.path().join("t-0")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "snapshot") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let log = open(dir.path(), RecoveryHint::full_scan());
    assert_state_survived(&log, next_seq);
}

#[test]
fn given_retention_when_segments_are_deleted_then_older_snapshots_go_too() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    produce_across_rolls(&log);
    let first_before = log.segment_base_offsets()[0];
    log.delete_records_before(log.high_watermark()).unwrap();
    let first_kept = log.segment_base_offsets()[0];
    assert!(first_kept > first_before);
    for entry in std::fs::read_dir(dir.path().join("t-0")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "snapshot") {
            let stem: i64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            assert!(
                stem >= first_kept,
                "{} is below the first segment",
                path.display()
            );
        }
    }
}

#[test]
fn given_an_idle_producer_when_expired_then_its_next_batch_is_accepted_at_any_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &idempotent_batch(2, PID, 0, 0, 1));
    let now = sediment_broker::basics::now_ms();
    assert_eq!(log.expire_producers(now, 86_400_000), 0, "not idle yet");
    let error = log.append(&idempotent_batch(1, PID, 0, 7, 2)).unwrap_err();
    assert_eq!(error.kafka_error_code(), 45);
    assert_eq!(log.expire_producers(now + 86_400_000, 86_400_000), 1);
    assert_eq!(log.producer_count(), 0);
    assert_eq!(append_acked(&log, &idempotent_batch(1, PID, 0, 7, 3)), 2);
}
