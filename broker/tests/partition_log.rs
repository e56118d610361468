//! Behaviour of one partition log through its public API: appends, reads,
//! rolls, reopen, retention, group commit and time lookups.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;
use support::{append_acked, as_stored, read_all};

use std::sync::Arc;
use std::time::Duration;

use sediment_broker::protocol::errors::ToErrorCode;
use sediment_broker::storage::test_batches::{batch_of_size, batch_with_records, batch_with_seed};
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::{FlushPolicy, LogConfig, StorageError};

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        index_interval_bytes: 1024,
        preallocate_bytes: 32 * 1024,
        ..LogConfig::default()
    }
}

/// A partition log with small segments in `dir`, shared between threads.
fn shared_log(dir: &std::path::Path) -> Arc<PartitionLog> {
    Arc::new(
        PartitionLog::open(
            &dir.join("t-0"),
            small_segments(),
            RecoveryHint::full_scan(),
        )
        .unwrap(),
    )
}

#[test]
fn given_appends_when_read_then_offsets_are_contiguous_and_bytes_identical() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(
        &dir.path().join("t-0"),
        small_segments(),
        RecoveryHint::full_scan(),
    )
    .unwrap();
    let mut expected = Vec::new();
    let mut next = 0;
    for i in 0..50 {
        let batch = batch_with_seed(1 + i % 7, 100 + i * 13, 1_000 + i as i64, i as u64);
        let base = append_acked(&log, &batch);
        assert_eq!(base, next, "offsets are contiguous");
        next += 1 + (i % 7) as i64;
        expected.push((base, as_stored(&batch, base)));
    }
    assert_eq!(log.high_watermark(), next);
    assert!(log.segment_count() > 1, "small segments rolled");
    assert_eq!(read_all(&log, 0), expected);
    // A read from the middle of a batch starts with the batch containing it.
    let (base, bytes) = &expected[10];
    let read = log.read(base + 1, 1).unwrap();
    if bytes.len() > 1 && expected[10 + 1].0 > base + 1 {
        assert_eq!(
            &read.bytes[..],
            &bytes[..],
            "first whole batch returned even beyond max_bytes"
        );
    }
}

#[test]
fn given_flush_always_when_appended_but_not_durable_then_not_readable() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(
        &dir.path().join("t-0"),
        LogConfig::default(),
        RecoveryHint::full_scan(),
    )
    .unwrap();
    let outcome = log.append(&batch_with_records(3, 10, 0)).unwrap();
    assert_eq!(log.high_watermark(), 0);
    assert!(log.read(0, 1000).unwrap().bytes.is_empty());
    log.make_durable(outcome.next_offset).unwrap();
    assert_eq!(log.high_watermark(), 3);
    assert!(!log.read(0, 1000).unwrap().bytes.is_empty());
}

#[test]
fn given_flush_interval_when_appended_then_readable_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::Interval(Duration::from_secs(60)),
        ..LogConfig::default()
    };
    let log =
        PartitionLog::open(&dir.path().join("t-0"), config, RecoveryHint::full_scan()).unwrap();
    log.append(&batch_with_records(3, 10, 0)).unwrap();
    assert_eq!(log.high_watermark(), 3);
    assert_eq!(log.durable_offset(), 0);
    log.flush().unwrap();
    assert_eq!(log.durable_offset(), 3);
}

#[test]
fn given_clean_close_when_reopened_then_same_data_and_next_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut expected = Vec::new();
    let end = {
        let log = PartitionLog::open(&path, small_segments(), RecoveryHint::full_scan()).unwrap();
        for i in 0..40 {
            let batch = batch_of_size(5, 3000, i, i as u64);
            let base = append_acked(&log, &batch);
            expected.push((base, as_stored(&batch, base)));
        }
        log.close().unwrap()
    };
    let log = PartitionLog::open(&path, small_segments(), RecoveryHint::clean(end)).unwrap();
    assert_eq!(log.high_watermark(), end);
    assert_eq!(read_all(&log, 0), expected);
    let base = append_acked(&log, &batch_with_records(1, 10, 0));
    assert_eq!(base, end, "no offset reused after reopen");
}

#[test]
fn given_unclean_drop_when_reopened_then_everything_acked_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut expected = Vec::new();
    {
        let log = PartitionLog::open(&path, small_segments(), RecoveryHint::full_scan()).unwrap();
        for i in 0..40 {
            let batch = batch_of_size(3, 2500, i, i as u64);
            let base = append_acked(&log, &batch);
            expected.push((base, as_stored(&batch, base)));
        }
    }
    let log = PartitionLog::open(&path, small_segments(), RecoveryHint::full_scan()).unwrap();
    assert_eq!(read_all(&log, 0), expected);
}

#[test]
fn given_concurrent_appenders_when_made_durable_then_all_acked_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let log = shared_log(dir.path());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..50 {
                    append_acked(&log, &batch_with_seed(2, 200, i, t * 1000 + i as u64));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(log.high_watermark(), 8 * 50 * 2);
    assert_eq!(read_all(&log, 0).len(), 400);
}

#[test]
fn given_invalid_batch_in_record_set_when_appended_then_nothing_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(
        &dir.path().join("t-0"),
        LogConfig::default(),
        RecoveryHint::full_scan(),
    )
    .unwrap();
    let mut set = batch_with_records(2, 10, 0);
    let mut bad = batch_with_records(2, 10, 0);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    set.extend(bad);
    let err = log.append(&set).unwrap_err();
    assert!(matches!(err, StorageError::InvalidBatch { .. }), "{err}");
    assert_eq!(err.kafka_error_code(), 2);
    assert_eq!(log.log_end_offset(), 0);
    assert!(matches!(log.append(&[]), Err(StorageError::EmptyAppend)));
}

#[test]
fn given_offsets_outside_log_when_read_then_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(
        &dir.path().join("t-0"),
        LogConfig::default(),
        RecoveryHint::full_scan(),
    )
    .unwrap();
    append_acked(&log, &batch_with_records(2, 10, 0));
    assert!(log.read(2, 100).unwrap().bytes.is_empty());
    assert!(matches!(
        log.read(3, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.read(-1, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn given_timestamps_when_offset_for_timestamp_then_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(
        &dir.path().join("t-0"),
        small_segments(),
        RecoveryHint::full_scan(),
    )
    .unwrap();
    // 100 batches of 10 records; batch i has timestamps 1000*i .. 1000*i+9.
    for i in 0..100 {
        append_acked(&log, &batch_with_seed(10, 150, 1000 * i, i as u64));
    }
    assert_eq!(log.offset_for_timestamp(0), Some((0, 0)));
    assert_eq!(log.offset_for_timestamp(5), Some((5, 5)));
    assert_eq!(log.offset_for_timestamp(1000 * 57 + 3), Some((573, 57_003)));
    assert_eq!(
        log.offset_for_timestamp(1000 * 57 + 10),
        Some((580, 58_000)),
        "between batches: next batch"
    );
    assert_eq!(log.offset_for_timestamp(1000 * 99 + 9), Some((999, 99_009)));
    assert_eq!(log.offset_for_timestamp(1000 * 99 + 10), None);
}

#[test]
fn given_retention_bytes_when_enforced_then_oldest_sealed_segments_deleted_and_start_moves() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(100 * 1024),
        retention_ms: None,
        ..small_segments()
    };
    let log =
        PartitionLog::open(&dir.path().join("t-0"), config, RecoveryHint::full_scan()).unwrap();
    for i in 0..100 {
        append_acked(&log, &batch_of_size(4, 4000, i, i as u64));
    }
    let before = log.segment_count();
    let outcome = log.enforce_retention_now().unwrap();
    assert!(outcome.segments_deleted > 0);
    assert_eq!(log.segment_count(), before - outcome.segments_deleted);
    assert!(log.size_bytes() >= 100 * 1024);
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
    assert!(matches!(
        log.read(0, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert!(!log
        .read(log.log_start_offset(), 100)
        .unwrap()
        .bytes
        .is_empty());
}

#[test]
fn given_retention_ms_when_segments_last_appended_long_ago_then_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: Some(Duration::from_millis(1000)),
        ..small_segments()
    };
    let log =
        PartitionLog::open(&dir.path().join("t-0"), config, RecoveryHint::full_scan()).unwrap();
    for i in 0..60 {
        append_acked(&log, &batch_of_size(4, 4000, i, i as u64));
    }
    log.roll_now().unwrap();
    append_acked(&log, &batch_of_size(4, 4000, 10_000_000, 1));
    // Age counts from each segment's last append by the broker's clock.
    let later = sediment_broker::basics::now_ms() + 2000;
    let outcome = log.enforce_retention(later).unwrap();
    assert_eq!(log.segment_count(), 1, "{outcome:?}");
    assert_eq!(log.log_start_offset(), 240);
}

#[test]
fn given_segment_ms_when_old_then_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: Some(Duration::from_millis(20)),
        ..LogConfig::default()
    };
    let log =
        PartitionLog::open(&dir.path().join("t-0"), config, RecoveryHint::full_scan()).unwrap();
    append_acked(&log, &batch_with_records(1, 10, 0));
    std::thread::sleep(Duration::from_millis(30));
    append_acked(&log, &batch_with_records(1, 10, 0));
    assert_eq!(log.segment_base_offsets(), vec![0, 1]);
}

#[test]
fn given_batch_larger_than_segment_when_appended_then_lands_whole_in_its_own_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(
        &dir.path().join("t-0"),
        small_segments(),
        RecoveryHint::full_scan(),
    )
    .unwrap();
    append_acked(&log, &batch_with_records(1, 10, 0));
    let big = batch_of_size(10, 200 * 1024, 0, 3);
    let base = append_acked(&log, &big);
    assert_eq!(log.read(base, 10).unwrap().bytes.len(), big.len());
}

#[test]
fn given_fresh_log_when_many_small_appends_then_one_segment_and_exact_index_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let config = LogConfig {
        index_interval_bytes: 256,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(&path, config.clone(), RecoveryHint::full_scan()).unwrap();
    for i in 0..200 {
        append_acked(&log, &batch_with_seed(2, 100, i, i as u64));
    }
    assert_eq!(
        log.segment_count(),
        1,
        "a fresh segment's index is empty, not full"
    );
    let end = log.close().unwrap();
    let index_len = std::fs::metadata(path.join("00000000000000000000.index"))
        .unwrap()
        .len();
    let time_index_len = std::fs::metadata(path.join("00000000000000000000.timeindex"))
        .unwrap()
        .len();
    assert!(
        index_len > 0 && index_len % 8 == 0,
        "index trimmed to its entries: {index_len}"
    );
    assert!(index_len < 200 * 8, "sparse: fewer entries than batches");
    assert_eq!(
        time_index_len / 12,
        index_len / 8,
        "one time entry per offset entry here"
    );
    let log = PartitionLog::open(&path, config, RecoveryHint::clean(end)).unwrap();
    assert_eq!(log.high_watermark(), 400);
    assert_eq!(read_all(&log, 0).len(), 200);
}

#[test]
fn given_clean_close_when_last_segment_missing_then_fenced_instead_of_reusing_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let log = PartitionLog::open(&path, small_segments(), RecoveryHint::full_scan()).unwrap();
    for i in 0..40 {
        append_acked(&log, &batch_of_size(3, 3000, i, i as u64));
    }
    let end = log.close().unwrap();
    let last = *log.segment_base_offsets().last().unwrap();
    drop(log);
    for ext in ["log", "index", "timeindex"] {
        std::fs::remove_file(path.join(format!("{last:020}.{ext}"))).unwrap();
    }
    let err = PartitionLog::open(&path, small_segments(), RecoveryHint::clean(end))
        .err()
        .expect("a log that ends before its recovery point is fenced");
    assert!(matches!(err, StorageError::Fenced { .. }), "{err}");
}

#[test]
fn given_page_cache_window_when_synced_past_it_then_every_record_reads_back_before_and_after_reopen(
) {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        page_cache_window: Some(4096),
        ..small_segments()
    };
    let path = dir.path().join("t-0");
    let log = PartitionLog::open(&path, config.clone(), RecoveryHint::full_scan()).unwrap();
    let mut expected = Vec::new();
    for i in 0..60 {
        let batch = batch_with_seed(3, 500 + i * 7, 1_000 + i as i64, i as u64);
        let base = append_acked(&log, &batch);
        expected.push((base, as_stored(&batch, base)));
    }
    assert!(log.segment_count() > 1, "small segments rolled");
    assert_eq!(
        read_all(&log, 0),
        expected,
        "dropped pages read back from disk"
    );
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(&path, config, RecoveryHint::full_scan()).unwrap();
    assert_eq!(read_all(&log, 0), expected);
}

#[test]
fn given_a_flush_request_when_durability_is_awaited_then_a_flusher_thread_made_it_durable() {
    use sediment_broker::storage::flusher::{Flushable, Flusher};
    let dir = tempfile::tempdir().unwrap();
    let log = shared_log(dir.path());
    let flusher = Flusher::start(2).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut next = 0;
    for i in 0..20 {
        let outcome = log.append(&batch_with_seed(2, 200, 1_000, i)).unwrap();
        assert_eq!(log.high_watermark(), next, "not readable before its sync");
        flusher.request(Arc::clone(&log) as Arc<dyn Flushable>);
        runtime.block_on(log.durable(outcome.next_offset)).unwrap();
        next = outcome.next_offset;
        assert!(log.durable_offset() >= next);
        assert_eq!(log.high_watermark(), next);
    }
}
