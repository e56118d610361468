//! Log compaction (`storage::cleaner`): the latest record per key survives at
//! its original offset, tombstones live `delete.retention.ms`, keyless
//! records are refused, the lag bounds hold, and a crash at any step of the
//! swap recovers to the old or the new segments. Time is driven by passing
//! `now` to the cleaner, never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;
use support::append_acked;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use sediment_broker::config::CleanupPolicy;
use sediment_broker::protocol::errors::ToErrorCode;
use sediment_broker::storage::cleaner::{Cleaner, SwapStep};
use sediment_broker::storage::recovery::{plan_recovery, Finding};
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::{LogConfig, StorageError};
use sediment_protocol::records::{
    decode_batch, encode_batch, split_batches, BatchOptions, Compression, Record,
};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// (offset, key, value) as a consumer sees it.
type Seen = Vec<(i64, Option<Vec<u8>>, Option<Vec<u8>>)>;

fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 256 * 1024,
        index_interval_bytes: 256,
        preallocate_bytes: 64 * 1024,
        cleanup_policy: CleanupPolicy::COMPACT,
        ..LogConfig::default()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A forced, unthrottled cleaner (the dirty ratio is tested on its own).
fn cleaner() -> Cleaner {
    Cleaner {
        io_bytes_per_sec: None,
        force: true,
        ..Cleaner::default()
    }
}

fn partition_dir(data: &Path) -> PathBuf {
    data.join("orders-0")
}

fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config, RecoveryHint::full_scan()).unwrap()
}

/// One batch of `records` (key, value; `None` value is a tombstone).
fn batch(records: &[(&str, Option<&str>)], compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            offset: i as i64,
            timestamp: 1_000 + i as i64,
            key: Some(Bytes::from(key.to_string())),
            value: value.map(|v| Bytes::from(v.to_string())),
            headers: vec![("h".to_string(), Some(Bytes::from_static(b"x")))],
        })
        .collect();
    let options = BatchOptions {
        compression,
        producer_id: 7,
        producer_epoch: 1,
        // No sequence: these batches are not one idempotent stream (each
        // would start at 0 and be refused as out of order), but the
        // producer fields must still survive cleaning.
        base_sequence: -1,
        ..BatchOptions::default()
    };
    encode_batch(&records, &options).unwrap().to_vec()
}

/// Every record from the log start to the high watermark, reading the way
/// a consumer does (from each read's `next_offset`).
fn consume(log: &PartitionLog) -> Seen {
    let mut seen = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let read = log.read(offset, 1 << 20).unwrap();
        assert!(
            !read.bytes.is_empty(),
            "empty read at {offset} below the high watermark {}",
            log.high_watermark()
        );
        assert!(read.next_offset > offset, "a read must move forward");
        for raw in split_batches(&read.bytes) {
            let decoded = decode_batch(raw, 1 << 26).unwrap();
            for r in decoded.records {
                seen.push((
                    r.offset,
                    r.key.map(|k| k.to_vec()),
                    r.value.map(|v| v.to_vec()),
                ));
            }
        }
        offset = read.next_offset;
    }
    seen
}

/// What compaction must leave of `records` (all in the cleaned range):
/// the latest record per key, tombstones kept or not.
fn compacted(records: &Seen, keep_tombstones: bool) -> Seen {
    let mut latest: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
    for (offset, key, _) in records {
        latest.insert(key.clone().unwrap(), *offset);
    }
    records
        .iter()
        .filter(|(offset, key, value)| {
            latest[key.as_ref().unwrap()] == *offset && (keep_tombstones || value.is_some())
        })
        .cloned()
        .collect()
}

fn assert_recovers_unfenced(dir: &Path) {
    let plan = plan_recovery(dir, RecoveryHint::full_scan(), 256).unwrap();
    assert!(plan.fence.is_none(), "fenced: {:?}", plan.fence);
    assert!(
        !plan.findings.iter().any(Finding::affects_data),
        "recovery would cut or fence: {:?}",
        plan.findings
    );
}

/// Ten rounds of the same ten keys, one segment per round, plus one batch
/// in the active segment. Returns the records in the sealed segments.
fn write_rounds(log: &PartitionLog, compression: Compression) -> Seen {
    for round in 0..10 {
        let values: Vec<String> = (0..10).map(|k| format!("value-{round}-{k}")).collect();
        let keys: Vec<String> = (0..10).map(|k| format!("key-{k}")).collect();
        // Keys 0..5 change every round; keys 5..10 only in the first rounds.
        let records: Vec<(&str, Option<&str>)> = (0..10)
            .filter(|&k| k < 5 || round < 3)
            .map(|k| (keys[k].as_str(), Some(values[k].as_str())))
            .collect();
        append_acked(log, &batch(&records, compression));
        log.roll_now().unwrap();
    }
    consume(log)
}

#[test]
fn given_every_codec_when_cleaned_then_latest_value_per_key_kept_at_its_original_offset() {
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let data = tempfile::tempdir().unwrap();
        let dir = partition_dir(data.path());
        let log = open(&dir, compact_config());
        let sealed = write_rounds(&log, compression);
        append_acked(&log, &batch(&[("key-0", Some("active"))], compression));
        let segments_before = log.segment_count();

        let outcome = cleaner().clean(&log, now_ms()).unwrap().expect("cleaned");
        assert!(outcome.records_removed > 0);
        assert!(outcome.bytes_after < outcome.bytes_before);
        assert!(
            log.segment_count() < segments_before,
            "small segments were grouped"
        );

        let mut expected = compacted(&sealed, true);
        expected.push((
            sealed.last().unwrap().0 + 1,
            Some(b"key-0".to_vec()),
            Some(b"active".to_vec()),
        ));
        assert_eq!(consume(&log), expected, "{compression:?}");
        assert!(
            expected.windows(2).any(|w| w[1].0 > w[0].0 + 1),
            "offsets kept: gaps appear"
        );

        // Every offset, gap or not, reads the first record at or after it.
        for offset in 0..log.high_watermark() {
            let read = log.read(offset, 1).unwrap();
            let first = split_batches(&read.bytes)
                .flat_map(|raw| decode_batch(raw, 1 << 26).unwrap().records)
                .find(|r| r.offset >= offset)
                .map(|r| r.offset);
            let wanted = expected
                .iter()
                .find(|(o, ..)| *o >= offset)
                .map(|(o, ..)| *o);
            assert_eq!(first, wanted, "read at {offset} ({compression:?})");
        }
        // Time lookups land on a kept record.
        let (found, _) = log.offset_for_timestamp(0).unwrap();
        assert_eq!(found, expected[0].0);

        // The cleaned log recovers as it is, gaps and all.
        drop(log);
        assert_recovers_unfenced(&dir);
        let log = open(&dir, compact_config());
        assert_eq!(consume(&log), expected, "after reopen ({compression:?})");
        // Cleaning again with nothing new changes nothing.
        assert_eq!(cleaner().clean(&log, now_ms()).unwrap(), None);
        assert_eq!(consume(&log), expected);
    }
}

#[test]
fn given_tombstone_when_cleaned_then_kept_until_delete_retention_passed_then_removed() {
    let data = tempfile::tempdir().unwrap();
    let dir = partition_dir(data.path());
    let config = LogConfig {
        delete_retention_ms: Duration::from_millis(DAY_MS as u64),
        ..compact_config()
    };
    let log = open(&dir, config.clone());
    append_acked(
        &log,
        &batch(
            &[("gone", Some("v1")), ("stays", Some("s1"))],
            Compression::None,
        ),
    );
    log.roll_now().unwrap();
    append_acked(&log, &batch(&[("gone", None)], Compression::Lz4));
    log.roll_now().unwrap();

    let now = now_ms();
    cleaner().clean(&log, now).unwrap().expect("cleaned");
    let seen = consume(&log);
    assert_eq!(
        seen,
        vec![
            (1, Some(b"stays".to_vec()), Some(b"s1".to_vec())),
            (2, Some(b"gone".to_vec()), None),
        ],
        "the old value is gone, the tombstone stays within delete.retention.ms"
    );

    // Still within delete.retention.ms: new dirty data, the tombstone stays.
    append_acked(&log, &batch(&[("other", Some("o1"))], Compression::None));
    log.roll_now().unwrap();
    cleaner().clean(&log, now + DAY_MS - 60_000).unwrap();
    assert!(
        consume(&log).iter().any(|(o, ..)| *o == 2),
        "tombstone kept"
    );

    // Past it: the tombstone goes.
    append_acked(&log, &batch(&[("other", Some("o2"))], Compression::None));
    log.roll_now().unwrap();
    cleaner()
        .clean(&log, now + DAY_MS + 60_000)
        .unwrap()
        .expect("cleaned");
    assert_eq!(
        consume(&log),
        vec![
            (1, Some(b"stays".to_vec()), Some(b"s1".to_vec())),
            (4, Some(b"other".to_vec()), Some(b"o2".to_vec())),
        ]
    );
    drop(log);
    assert_recovers_unfenced(&dir);
}

#[test]
fn given_compacted_topic_when_keyless_record_appended_then_refused_with_invalid_record_and_nothing_appended(
) {
    let data = tempfile::tempdir().unwrap();
    let log = open(&partition_dir(data.path()), compact_config());
    for compression in [Compression::None, Compression::Zstd] {
        let keyed = batch(&[("k", Some("v"))], compression);
        let keyless = encode_batch(
            &[
                Record {
                    offset: 0,
                    key: Some(Bytes::from_static(b"k")),
                    value: Some(Bytes::from_static(b"v")),
                    ..Record::default()
                },
                Record {
                    offset: 1,
                    key: None,
                    value: Some(Bytes::from_static(b"no key")),
                    ..Record::default()
                },
            ],
            &BatchOptions {
                compression,
                ..BatchOptions::default()
            },
        )
        .unwrap();
        // A keyed batch followed by a keyless one: the whole set is refused.
        let mut set = keyed.clone();
        set.extend_from_slice(&keyless);
        let error = log.append(&set).unwrap_err();
        assert!(
            matches!(error, StorageError::InvalidRecord { position, .. } if position == keyed.len()),
            "{error}"
        );
        assert_eq!(error.kafka_error_code(), 87, "INVALID_RECORD");
        assert_eq!(log.log_end_offset(), 0, "nothing appended");
    }
    // A delete-policy topic takes keyless records as before.
    let other = open(&data.path().join("plain-0"), LogConfig::default());
    let keyless = encode_batch(
        &[Record {
            value: Some(Bytes::from_static(b"v")),
            ..Record::default()
        }],
        &BatchOptions::default(),
    )
    .unwrap();
    other.append(&keyless).unwrap();
}

#[test]
fn given_compact_delete_policy_when_retention_runs_then_old_segments_deleted_and_compact_only_keeps_them(
) {
    for (policy, deletes) in [
        (
            CleanupPolicy {
                compact: true,
                delete: true,
            },
            true,
        ),
        (CleanupPolicy::COMPACT, false),
    ] {
        let data = tempfile::tempdir().unwrap();
        let config = LogConfig {
            cleanup_policy: policy,
            retention_ms: Some(Duration::from_secs(60)),
            ..compact_config()
        };
        let log = open(&partition_dir(data.path()), config);
        for i in 0..3 {
            append_acked(
                &log,
                &batch(&[("k", Some(&format!("v{i}")))], Compression::None),
            );
            log.roll_now().unwrap();
        }
        let outcome = log.enforce_retention(now_ms() + 3_600_000).unwrap();
        assert_eq!(outcome.segments_deleted > 0, deletes, "{policy}");
        assert_eq!(log.log_start_offset() > 0, deletes, "{policy}");
    }
}

#[test]
fn given_min_compaction_lag_when_segments_are_recent_then_they_stay_dirty() {
    let data = tempfile::tempdir().unwrap();
    let config = LogConfig {
        min_compaction_lag_ms: Duration::from_secs(3600),
        ..compact_config()
    };
    let log = open(&partition_dir(data.path()), config);
    append_acked(&log, &batch(&[("k", Some("old"))], Compression::None));
    log.roll_now().unwrap();
    append_acked(&log, &batch(&[("k", Some("new"))], Compression::None));
    log.roll_now().unwrap();
    let now = now_ms();
    assert_eq!(cleaner().clean(&log, now).unwrap(), None, "too recent");
    assert_eq!(consume(&log).len(), 2);
    cleaner()
        .clean(&log, now + 2 * 3_600_000)
        .unwrap()
        .expect("cleaned once past the lag");
    assert_eq!(
        consume(&log),
        vec![(1, Some(b"k".to_vec()), Some(b"new".to_vec()))]
    );
}

#[test]
fn given_dirty_ratio_when_below_then_not_due_and_max_lag_makes_it_due() {
    let data = tempfile::tempdir().unwrap();
    let config = LogConfig {
        min_cleanable_dirty_ratio: 0.9,
        max_compaction_lag_ms: Some(Duration::from_secs(3600)),
        ..compact_config()
    };
    let log = open(&partition_dir(data.path()), config);
    append_acked(&log, &batch(&[("k", Some("old"))], Compression::None));
    log.roll_now().unwrap();
    append_acked(&log, &batch(&[("k", Some("new"))], Compression::None));
    log.roll_now().unwrap();
    let unforced = Cleaner {
        io_bytes_per_sec: None,
        ..Cleaner::default()
    };
    let now = now_ms();
    // Everything is dirty: ratio 1.0 ≥ 0.9.
    unforced.clean(&log, now).unwrap().expect("due by ratio");
    // New dirty data is a small share now: not due until max lag passes.
    append_acked(&log, &batch(&[("k", Some("newer"))], Compression::None));
    log.roll_now().unwrap();
    assert_eq!(unforced.clean(&log, now).unwrap(), None, "below the ratio");
    unforced
        .clean(&log, now + 2 * 3_600_000)
        .unwrap()
        .expect("due by max.compaction.lag.ms");
    assert_eq!(
        consume(&log),
        vec![(2, Some(b"k".to_vec()), Some(b"newer".to_vec()))]
    );
}

#[test]
fn given_crash_at_each_swap_step_when_reopened_then_old_or_new_set_and_nothing_fenced() {
    let steps = [
        SwapStep::CleanedWritten,
        SwapStep::SwapEndWritten,
        SwapStep::IndexSwapped,
        SwapStep::TimeIndexSwapped,
        SwapStep::Committed,
        SwapStep::FirstSourceDeleted,
        SwapStep::SourcesDeleted,
        SwapStep::IndexRenamed,
        SwapStep::LogRenamed,
        SwapStep::CheckpointRaised,
    ];
    for step in steps {
        let data = tempfile::tempdir().unwrap();
        let dir = partition_dir(data.path());
        let log = open(&dir, compact_config());
        let old = write_rounds(&log, Compression::Snappy);
        let new = compacted(&old, true);
        let crashing = Cleaner {
            crash_after: Some(step),
            ..cleaner()
        };
        assert_eq!(crashing.clean(&log, now_ms()).unwrap(), None, "{step:?}");
        drop(log); // the crash: no clean-up, no close

        // `log verify` (plan only, read-only) sees a consistent log.
        assert_recovers_unfenced(&dir);
        let log = open(&dir, compact_config());
        let seen = consume(&log);
        assert!(
            seen == old || seen == new,
            "{step:?}: recovered to neither the old nor the new set: {seen:?}"
        );
        let committed = step >= SwapStep::Committed;
        assert_eq!(seen == new, committed, "{step:?}");
        // Every key's latest value is readable either way.
        for (offset, key, value) in &new {
            assert!(
                seen.iter()
                    .any(|(o, k, v)| o == offset && k == key && v == value),
                "{step:?}: latest {key:?} lost"
            );
        }
        // No leftovers, and cleaning proceeds from there.
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".cleaned") || n.contains(".swap"))
            .collect();
        assert!(leftovers.is_empty(), "{step:?}: {leftovers:?}");
        cleaner().clean(&log, now_ms()).unwrap();
        assert_eq!(consume(&log), new, "{step:?}: cleaned after recovery");
        drop(log);
        assert_recovers_unfenced(&dir);
    }
}

#[test]
fn given_missing_segment_in_never_cleaned_data_when_reopened_then_fenced() {
    let data = tempfile::tempdir().unwrap();
    let dir = partition_dir(data.path());
    let log = open(&dir, compact_config());
    // The first three segments are cleaned; the later ones never are.
    write_rounds(&log, Compression::None);
    cleaner().clean(&log, now_ms()).unwrap().expect("cleaned");
    let cleaned_end = *log.segment_base_offsets().last().unwrap();
    for i in 0..3 {
        append_acked(
            &log,
            &batch(&[("late", Some(&format!("v{i}")))], Compression::None),
        );
        log.roll_now().unwrap();
    }
    let bases = log.segment_base_offsets();
    drop(log);
    let middle = bases
        .iter()
        .copied()
        .find(|&b| b > cleaned_end)
        .expect("a never-cleaned segment after the first one");
    for ext in ["log", "index", "timeindex"] {
        std::fs::remove_file(dir.join(format!("{middle:020}.{ext}"))).unwrap();
    }
    let plan = plan_recovery(&dir, RecoveryHint::full_scan(), 256).unwrap();
    assert!(
        plan.fence.is_some(),
        "a hole in never-cleaned data is fenced"
    );
    let error = PartitionLog::open(&dir, compact_config(), RecoveryHint::full_scan())
        .err()
        .expect("fenced");
    assert!(matches!(error, StorageError::Fenced { .. }), "{error}");
}

#[test]
fn given_corrupt_sealed_segment_when_cleaned_then_fenced_and_sources_left() {
    let data = tempfile::tempdir().unwrap();
    let dir = partition_dir(data.path());
    let log = open(&dir, compact_config());
    write_rounds(&log, Compression::None);
    let first = dir.join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&first).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&first, &bytes).unwrap();
    let files_before = std::fs::read_dir(&dir).unwrap().count();
    let error = cleaner().clean(&log, now_ms()).unwrap_err();
    assert!(matches!(error, StorageError::Fenced { .. }), "{error}");
    assert!(log.is_poisoned(), "writes refused");
    assert_eq!(std::fs::read(&first).unwrap(), bytes, "sources untouched");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        files_before,
        "no cleaner file left behind"
    );
}
