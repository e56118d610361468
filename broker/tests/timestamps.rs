//! Timestamps in one partition log (DESIGN §3, KIP-937): CreateTime bounds
//! refuse a whole append, LogAppendTime stamps the broker's clock into the
//! batch header, and time retention and `segment.ms` run on the broker's
//! clock, never on what a client wrote into its records.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;
use support::{append_acked, read_all};

use std::time::Duration;

use sediment_broker::basics::now_ms;
use sediment_broker::protocol::errors::ToErrorCode;
use sediment_broker::storage::batch::BatchHeader;
use sediment_broker::storage::test_batches::batch_with_records;
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::{LogConfig, StorageError, TimestampType};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// 3000-01-01T00:00:00Z.
const YEAR_3000_MS: i64 = 32_503_680_000_000;

fn seven_day_retention() -> LogConfig {
    LogConfig {
        retention_ms: Some(Duration::from_millis(7 * DAY_MS as u64)),
        ..LogConfig::default()
    }
}

fn open(dir: &tempfile::TempDir, config: LogConfig) -> PartitionLog {
    PartitionLog::open(&dir.path().join("t-0"), config, RecoveryHint::full_scan()).unwrap()
}

#[test]
fn given_create_time_2h_ahead_when_appended_then_invalid_timestamp_and_nothing_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, LogConfig::default());
    let ahead = batch_with_records(2, 10, now_ms() + 2 * HOUR_MS);
    let err = log.append(&ahead).unwrap_err();
    assert!(
        matches!(err, StorageError::TimestampOutOfRange { .. }),
        "{err}"
    );
    assert_eq!(err.kafka_error_code(), 32, "INVALID_TIMESTAMP");
    assert!(
        err.to_string()
            .contains("message.timestamp.after.max.ms=3600000"),
        "{err}"
    );
    assert_eq!(log.log_end_offset(), 0);
    // A good batch behind a bad one in the same record set: all or nothing.
    let mut set = batch_with_records(1, 10, now_ms());
    set.extend(&ahead);
    assert!(log.append(&set).is_err());
    assert_eq!(log.log_end_offset(), 0);
    // Within the hour is fine.
    append_acked(&log, &batch_with_records(1, 10, now_ms() + HOUR_MS / 2));
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn given_before_max_ms_when_record_older_then_refused_but_no_timestamp_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        &dir,
        LogConfig {
            timestamp_before_max_ms: DAY_MS,
            ..LogConfig::default()
        },
    );
    let err = log
        .append(&batch_with_records(1, 10, now_ms() - 2 * DAY_MS))
        .unwrap_err();
    assert_eq!(err.kafka_error_code(), 32, "{err}");
    // -1 is Kafka's "no timestamp", never out of range.
    append_acked(&log, &batch_with_records(1, 10, -1));
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn given_log_append_time_when_appended_then_max_timestamp_is_broker_time_and_crc_valid() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        &dir,
        LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        },
    );
    // Far-future CreateTime is irrelevant on a LogAppendTime topic.
    let sent = batch_with_records(3, 10, YEAR_3000_MS);
    let before = now_ms();
    let outcome = log.append(&sent).unwrap();
    let after = now_ms();
    log.make_durable(outcome.next_offset).unwrap();
    assert!((before..=after).contains(&outcome.log_append_time_ms));

    let stored = read_all(&log, 0);
    let header = BatchHeader::parse_verified(&stored[0].1).expect("CRC recomputed");
    assert!(header.is_log_append_time());
    assert_eq!(header.max_timestamp(), outcome.log_append_time_ms);
    assert_eq!(
        &stored[0].1[43..],
        &sent[43..],
        "records are not re-encoded"
    );
    assert_eq!(log.max_timestamp(), outcome.log_append_time_ms);
    assert_eq!(
        log.offset_for_timestamp(outcome.log_append_time_ms),
        Some((0, outcome.log_append_time_ms))
    );
}

#[test]
fn given_create_time_topic_when_appended_then_log_append_time_is_minus_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, LogConfig::default());
    let outcome = log.append(&batch_with_records(1, 10, now_ms())).unwrap();
    assert_eq!(outcome.log_append_time_ms, -1);
}

#[test]
fn given_year_3000_create_time_when_last_append_older_than_retention_then_segment_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        &dir,
        LogConfig {
            timestamp_after_max_ms: i64::MAX,
            ..seven_day_retention()
        },
    );
    append_acked(&log, &batch_with_records(3, 10, YEAR_3000_MS));
    let last_append = now_ms();
    log.roll_now().unwrap();
    append_acked(&log, &batch_with_records(1, 10, now_ms()));

    let kept = log.enforce_retention(last_append).unwrap();
    assert_eq!(kept.segments_deleted, 0, "appended just now: kept");
    let outcome = log.enforce_retention(last_append + 8 * DAY_MS).unwrap();
    assert_eq!(outcome.segments_deleted, 1, "{outcome:?}");
    assert_eq!(log.log_start_offset(), 3);
}

#[test]
fn given_year_3000_segment_when_reopened_then_its_last_append_time_still_ages_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let config = LogConfig {
        timestamp_after_max_ms: i64::MAX,
        ..seven_day_retention()
    };
    let log = PartitionLog::open(&path, config.clone(), RecoveryHint::full_scan()).unwrap();
    let first_append = now_ms();
    append_acked(&log, &batch_with_records(3, 10, YEAR_3000_MS));
    log.roll_now().unwrap();
    append_acked(&log, &batch_with_records(1, 10, now_ms()));
    let end = log.close().unwrap();
    let closed = now_ms();
    drop(log);

    let log = PartitionLog::open(&path, config, RecoveryHint::clean(end)).unwrap();
    let seven_days = 7 * DAY_MS;
    let kept = log.enforce_retention(first_append + seven_days).unwrap();
    assert_eq!(
        kept.segments_deleted, 0,
        "the restart did not make the segment look older than its last append"
    );
    let outcome = log.enforce_retention(closed + seven_days + 1).unwrap();
    assert_eq!(
        outcome.segments_deleted, 1,
        "the year-3000 records did not pin the segment across the restart"
    );
}

#[test]
fn given_create_time_minus_5_or_30_days_ago_written_now_when_retention_7_days_then_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, seven_day_retention());
    append_acked(&log, &batch_with_records(1, 10, -5));
    log.roll_now().unwrap();
    append_acked(&log, &batch_with_records(2, 10, now_ms() - 30 * DAY_MS));
    log.roll_now().unwrap();
    append_acked(&log, &batch_with_records(1, 10, now_ms()));
    assert_eq!(log.segment_count(), 3);

    let outcome = log.enforce_retention_now().unwrap();
    assert_eq!(outcome.segments_deleted, 0, "{outcome:?}");
    assert_eq!(log.log_start_offset(), 0);
}

#[test]
fn given_ancient_record_timestamps_when_segment_ms_set_then_no_early_roll() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        &dir,
        LogConfig {
            segment_ms: Some(Duration::from_millis(HOUR_MS as u64)),
            ..LogConfig::default()
        },
    );
    append_acked(&log, &batch_with_records(1, 10, -5));
    append_acked(&log, &batch_with_records(1, 10, now_ms() - 30 * DAY_MS));
    append_acked(&log, &batch_with_records(1, 10, 0));
    assert_eq!(
        log.segment_count(),
        1,
        "segment.ms counts on the broker clock"
    );
}
