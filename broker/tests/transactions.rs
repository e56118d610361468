//! Transactions in one partition log (Kafka's `ProducerStateManager`,
//! `TransactionIndex` and `LogCleaner` semantics): the last stable offset
//! holds at the first batch of the oldest open transaction and read_committed
//! reads stop there; an abort marker yields an aborted-transaction entry that
//! reads overlapping it carry; clients may not write markers; a marker's
//! epoch fences; open transactions and the aborted index survive a clean
//! close, a crash, a lost or torn `.txnindex` and retention; the cleaner
//! never lets aborted data hide committed data and never cleans past the
//! last stable offset. Time is the broker's clock passed in, never a sleep.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;
use support::{append_acked, read_all};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sediment_broker::config::CleanupPolicy;
use sediment_broker::protocol::errors::ToErrorCode;
use sediment_broker::storage::cleaner::Cleaner;
use sediment_broker::storage::encode::{encode_marker, TxnMarker};
use sediment_broker::storage::producer_state::list_snapshots;
use sediment_broker::storage::test_batches::{
    batch_of_size, batch_with_records, idempotent_batch, transactional_batch,
};
use sediment_broker::storage::txn_index::{txn_index_path, AbortedTxn};
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::{LogConfig, StorageError};
use sediment_protocol::records::{decode_batch, encode_batch, split_batches, BatchOptions, Record};

const P1: i64 = 101;
const P2: i64 = 202;
const P3: i64 = 303;
const P4: i64 = 404;

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 4 * 1024,
        index_interval_bytes: 1024,
        preallocate_bytes: 4 * 1024,
        ..LogConfig::default()
    }
}

fn partition_dir(data: &Path) -> PathBuf {
    data.join("t-0")
}

fn open_with(data: &Path, config: LogConfig, hint: RecoveryHint) -> PartitionLog {
    PartitionLog::open(&partition_dir(data), config, hint).unwrap()
}

fn open(data: &Path, hint: RecoveryHint) -> PartitionLog {
    open_with(data, small_segments(), hint)
}

fn marker(producer_id: i64, producer_epoch: i16, commit: bool) -> TxnMarker {
    TxnMarker {
        producer_id,
        producer_epoch,
        commit,
        coordinator_epoch: 0,
    }
}

/// Writes a marker as the coordinator does (append, then durable); returns its offset.
fn end_txn(log: &PartitionLog, marker: TxnMarker) -> i64 {
    let outcome = log.append_marker(marker).unwrap();
    log.make_durable(outcome.next_offset).unwrap();
    outcome.base_offset
}

fn aborted(producer_id: i64, first_offset: i64, last_offset: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id,
        first_offset,
        last_offset,
        last_stable_offset: lso,
    }
}

/// One batch as a read_committed reader got it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    base: i64,
    producer_id: i64,
    transactional: bool,
    control: bool,
}

/// What a read_committed reader gets from `from`, one batch per read until
/// a read returns nothing: the batches, the aborted entries handed out (in
/// order, without repeats) and the last stable offset the last read
/// reported. Checks on the way that no read returns a batch at or past the
/// last stable offset it reports.
fn read_committed_all(log: &PartitionLog, from: i64) -> (Vec<Got>, Vec<AbortedTxn>, i64) {
    let mut got = Vec::new();
    let mut entries: Vec<AbortedTxn> = Vec::new();
    let mut offset = from;
    loop {
        let read = log.read_committed(offset, 1).unwrap();
        assert!(read.last_stable_offset <= read.read.high_watermark);
        for entry in read.aborted {
            if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
        if read.read.bytes.is_empty() {
            assert_eq!(read.read.next_offset, offset, "an empty read stays put");
            return (got, entries, read.last_stable_offset);
        }
        for raw in split_batches(&read.read.bytes) {
            let batch = decode_batch(raw, 1 << 26).unwrap();
            assert!(
                batch.base_offset < read.last_stable_offset,
                "read_committed returned a batch at {} at or past the last stable offset {}",
                batch.base_offset,
                read.last_stable_offset
            );
            got.push(Got {
                base: batch.base_offset,
                producer_id: batch.producer_id,
                transactional: batch.transactional,
                control: batch.control,
            });
        }
        assert!(read.read.next_offset > offset, "a read moves forward");
        offset = read.read.next_offset;
    }
}

fn bases(got: &[Got]) -> Vec<i64> {
    got.iter().map(|g| g.base).collect()
}

#[test]
fn given_transactional_batches_when_committed_then_the_lso_waits_at_the_first_until_the_marker_then_reaches_the_hw(
) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &batch_with_records(2, 8, 1_000)); // 0..=1
    assert_eq!(
        log.last_stable_offset(),
        2,
        "no transaction: the LSO is the HW"
    );

    assert_eq!(append_acked(&log, &transactional_batch(3, P1, 0, 0, 1)), 2);
    assert_eq!(log.high_watermark(), 5);
    assert_eq!(log.last_stable_offset(), 2, "held at the open transaction");
    append_acked(&log, &batch_with_records(2, 8, 2_000)); // 5..=6, not transactional
    append_acked(&log, &transactional_batch(2, P1, 0, 3, 2)); // 7..=8
    assert_eq!(log.high_watermark(), 9);
    assert_eq!(log.last_stable_offset(), 2);
    assert_eq!(log.open_txns(), BTreeMap::from([(P1, 2)]));

    let (got, entries, lso) = read_committed_all(&log, 0);
    assert_eq!(bases(&got), vec![0], "nothing at or past the LSO");
    assert_eq!(lso, 2);
    assert!(entries.is_empty());
    let at_lso = log.read_committed(2, 1 << 20).unwrap();
    assert!(at_lso.read.bytes.is_empty());
    assert_eq!(at_lso.read.next_offset, 2);
    // A plain read (read_uncommitted) still sees everything below the HW.
    assert_eq!(read_all(&log, 0).len(), 4);

    assert_eq!(end_txn(&log, marker(P1, 0, true)), 9);
    assert_eq!(log.high_watermark(), 10);
    assert_eq!(log.last_stable_offset(), 10, "committed: the LSO is the HW");
    assert!(log.open_txns().is_empty());
    let (got, entries, lso) = read_committed_all(&log, 0);
    assert_eq!(bases(&got), vec![0, 2, 5, 7, 9]);
    assert!(got[4].control && got[4].producer_id == P1, "{got:?}");
    assert!(got[1].transactional && got[3].transactional);
    assert_eq!(lso, 10);
    assert!(entries.is_empty(), "a commit indexes nothing: {entries:?}");
    assert!(log.aborted_txns().is_empty());
}

#[test]
fn given_an_aborted_transaction_when_read_committed_then_reads_overlapping_it_carry_its_entry_and_later_ones_do_not(
) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &batch_with_records(1, 8, 1_000)); // 0
    append_acked(&log, &transactional_batch(3, P1, 0, 0, 1)); // 1..=3
    append_acked(&log, &transactional_batch(2, P1, 0, 3, 2)); // 4..=5
    assert_eq!(end_txn(&log, marker(P1, 0, false)), 6);
    append_acked(&log, &batch_with_records(1, 8, 2_000)); // 7
    let entry = aborted(P1, 1, 6, 7);
    assert_eq!(log.aborted_txns(), vec![entry]);
    assert_eq!(log.last_stable_offset(), 8);

    let whole = log.read_committed(0, 1 << 20).unwrap();
    assert_eq!(whole.aborted, vec![entry]);
    let before = log.read_committed(0, 1).unwrap();
    assert_eq!(before.read.next_offset, 1, "one batch");
    assert!(before.aborted.is_empty(), "[0, 1) holds none of it");
    let inside = log.read_committed(4, 1).unwrap();
    assert_eq!(inside.aborted, vec![entry]);
    let after = log.read_committed(7, 1 << 20).unwrap();
    assert!(!after.read.bytes.is_empty());
    assert!(after.aborted.is_empty(), "the transaction ended before 7");
    let (got, entries, _) = read_committed_all(&log, 0);
    assert_eq!(
        bases(&got),
        vec![0, 1, 4, 6, 7],
        "aborted data is returned, with its entry"
    );
    assert_eq!(entries, vec![entry]);
}

#[test]
fn given_interleaved_transactions_of_several_producers_when_they_end_then_the_lso_is_the_earliest_open_first_offset(
) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &transactional_batch(1, P1, 0, 0, 1)); // 0
    append_acked(&log, &transactional_batch(1, P2, 0, 0, 2)); // 1
    append_acked(&log, &transactional_batch(1, P3, 0, 0, 3)); // 2
    append_acked(&log, &transactional_batch(1, P2, 0, 1, 4)); // 3
    assert_eq!(log.open_txns(), BTreeMap::from([(P1, 0), (P2, 1), (P3, 2)]));
    assert_eq!(log.last_stable_offset(), 0);

    assert_eq!(end_txn(&log, marker(P2, 0, true)), 4);
    assert_eq!(log.last_stable_offset(), 0, "P1 is still the earliest open");
    assert_eq!(end_txn(&log, marker(P1, 0, true)), 5);
    assert_eq!(log.last_stable_offset(), 2, "P3's transaction is next");
    append_acked(&log, &transactional_batch(1, P1, 0, 1, 5)); // 6: P1's next transaction
    assert_eq!(log.open_txns(), BTreeMap::from([(P1, 6), (P3, 2)]));
    assert_eq!(log.last_stable_offset(), 2);
    let (got, _, lso) = read_committed_all(&log, 0);
    assert_eq!((bases(&got), lso), (vec![0, 1], 2));

    assert_eq!(end_txn(&log, marker(P3, 0, false)), 7);
    assert_eq!(log.last_stable_offset(), 6, "P1's new transaction holds it");
    assert_eq!(
        log.aborted_txns(),
        vec![aborted(P3, 2, 7, 6)],
        "the entry records the LSO once the abort completed"
    );
    assert_eq!(end_txn(&log, marker(P1, 0, true)), 8);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    let (got, entries, lso) = read_committed_all(&log, 0);
    assert_eq!(bases(&got), (0..=8).collect::<Vec<_>>());
    assert_eq!(entries, vec![aborted(P3, 2, 7, 6)]);
    assert_eq!(lso, 9);
}

#[test]
fn given_a_control_batch_from_a_client_when_appended_then_invalid_record_and_nothing_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &batch_with_records(2, 8, 1_000));
    append_acked(&log, &transactional_batch(1, P1, 0, 0, 1));
    let end = log.log_end_offset();
    let stored = read_all(&log, 0);

    // Exactly what the coordinator writes, but sent as a produce.
    let forged = encode_marker(marker(P1, 0, true), 1_000).unwrap();
    let error = log.append(&forged).unwrap_err();
    assert!(
        matches!(error, StorageError::InvalidRecord { .. }),
        "{error:?}"
    );
    assert_eq!(error.kafka_error_code(), 87, "INVALID_RECORD");
    // Behind a valid batch, it refuses the whole set.
    let mut set = batch_with_records(1, 8, 1_000);
    set.extend(&forged);
    assert_eq!(log.append(&set).unwrap_err().kafka_error_code(), 87);
    // A transactional batch must carry a producer id and a sequence.
    for not_idempotent in [
        transactional_batch(1, P2, 0, -1, 2),
        transactional_batch(1, -1, -1, -1, 3),
    ] {
        let error = log.append(&not_idempotent).unwrap_err();
        assert!(
            matches!(error, StorageError::InvalidRecord { .. }),
            "{error:?}"
        );
    }

    assert_eq!(log.log_end_offset(), end, "nothing appended");
    assert_eq!(read_all(&log, 0), stored);
    assert_eq!(
        log.open_txns(),
        BTreeMap::from([(P1, 2)]),
        "the transaction is still open"
    );
}

#[test]
fn given_a_marker_older_than_the_producers_epoch_when_appended_then_invalid_producer_epoch_and_nothing_appended(
) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &transactional_batch(2, P1, 2, 0, 1));
    let end = log.log_end_offset();
    let error = log.append_marker(marker(P1, 1, false)).unwrap_err();
    assert!(
        matches!(error, StorageError::InvalidProducerEpoch { .. }),
        "{error:?}"
    );
    assert_eq!(error.kafka_error_code(), 47);
    assert_eq!(log.log_end_offset(), end, "nothing appended");
    assert_eq!(log.open_txns(), BTreeMap::from([(P1, 0)]));
    assert!(log.aborted_txns().is_empty());
    assert_eq!(
        end_txn(&log, marker(P1, 2, true)),
        end,
        "the current epoch ends it"
    );
    assert!(log.open_txns().is_empty());
}

#[test]
fn given_a_marker_with_a_bumped_epoch_when_the_old_epoch_writes_again_then_it_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &transactional_batch(2, P1, 0, 0, 1)); // 0..=1
                                                              // InitProducerId by a new instance: the coordinator aborts with epoch 1.
    assert_eq!(end_txn(&log, marker(P1, 1, false)), 2);
    assert_eq!(log.aborted_txns(), vec![aborted(P1, 0, 2, 3)]);
    let end = log.log_end_offset();

    let next = log
        .append(&transactional_batch(1, P1, 0, 2, 2))
        .unwrap_err();
    assert_eq!(next.kafka_error_code(), 47, "{next}");
    let retry = log
        .append(&transactional_batch(2, P1, 0, 0, 1))
        .unwrap_err();
    assert_eq!(
        retry.kafka_error_code(),
        47,
        "a retry of the zombie's stored batch is not a duplicate once fenced: {retry}"
    );
    let plain_zombie = log.append(&idempotent_batch(1, P1, 0, 2, 3)).unwrap_err();
    assert_eq!(plain_zombie.kafka_error_code(), 47);
    assert_eq!(log.log_end_offset(), end, "nothing appended");
    assert!(
        log.open_txns().is_empty(),
        "no zombie write reopened anything"
    );

    let gap = log
        .append(&transactional_batch(1, P1, 1, 5, 4))
        .unwrap_err();
    assert_eq!(gap.kafka_error_code(), 45, "the new epoch starts at 0");
    assert_eq!(
        append_acked(&log, &transactional_batch(1, P1, 1, 0, 5)),
        end
    );
    assert_eq!(log.open_txns(), BTreeMap::from([(P1, end)]));
}

/// An aborted transaction of P1 at 1..=3 and an open one of P2 from 4; returns the entry.
fn abort_one_and_leave_one_open(log: &PartitionLog) -> AbortedTxn {
    append_acked(log, &batch_with_records(1, 8, 1_000)); // 0
    append_acked(log, &transactional_batch(2, P1, 0, 0, 1)); // 1..=2
    assert_eq!(end_txn(log, marker(P1, 0, false)), 3);
    append_acked(log, &transactional_batch(2, P2, 0, 0, 2)); // 4..=5
    append_acked(log, &batch_with_records(1, 8, 2_000)); // 6
    aborted(P1, 1, 3, 4)
}

/// The state [`abort_one_and_leave_one_open`] left is back, and P2's
/// transaction still ends as one.
fn assert_txn_state(log: &PartitionLog, entry: AbortedTxn) {
    assert_eq!(log.open_txns(), BTreeMap::from([(P2, 4)]));
    assert_eq!(log.last_stable_offset(), 4);
    assert_eq!(log.aborted_txns(), vec![entry]);
    let (got, entries, lso) = read_committed_all(log, 0);
    assert_eq!((bases(&got), entries, lso), (vec![0, 1, 3], vec![entry], 4));
    let marker_at = end_txn(log, marker(P2, 0, true));
    assert_eq!(log.last_stable_offset(), marker_at + 1);
    assert!(log.open_txns().is_empty());
    assert_eq!(log.aborted_txns(), vec![entry], "a commit indexes nothing");
}

#[test]
fn given_an_open_and_an_aborted_transaction_when_closed_and_reopened_then_both_survive() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    let entry = abort_one_and_leave_one_open(&log);
    let end = log.close().unwrap();
    drop(log);
    let log = open(dir.path(), RecoveryHint::clean(end));
    assert_txn_state(&log, entry);
}

#[test]
fn given_an_open_and_an_aborted_transaction_when_the_broker_crashes_then_both_survive() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    let entry = abort_one_and_leave_one_open(&log);
    drop(log); // kill -9: no close, no snapshot at the log end
    let log = open(dir.path(), RecoveryHint::full_scan());
    assert_txn_state(&log, entry);
}

/// Plain batches of about 1 KiB until the log has `segments` segments.
fn fill_until_segments(log: &PartitionLog, segments: usize, seed: &mut u64) {
    while log.segment_count() < segments {
        *seed += 1;
        append_acked(log, &batch_of_size(4, 1_000, 1_000, *seed));
    }
}

#[derive(Debug, Clone, Copy)]
enum Reopen {
    Clean,
    Crash,
}

fn reopen(data: &Path, log: PartitionLog, how: Reopen) -> PartitionLog {
    match how {
        Reopen::Clean => {
            let end = log.close().unwrap();
            drop(log);
            open(data, RecoveryHint::clean(end))
        }
        Reopen::Crash => {
            drop(log);
            open(data, RecoveryHint::full_scan())
        }
    }
}

#[test]
fn given_a_snapshot_taken_at_a_roll_inside_open_transactions_when_reopened_then_the_replay_from_it_reopens_them(
) {
    for how in [Reopen::Crash, Reopen::Clean] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), RecoveryHint::full_scan());
        let mut seed = 0;
        append_acked(&log, &transactional_batch(1, P1, 0, 0, 1)); // 0: P1 opens
        append_acked(&log, &transactional_batch(1, P2, 0, 0, 2)); // 1: P2 opens
        append_acked(&log, &transactional_batch(1, P3, 0, 0, 3)); // 2: P3 opens
        assert_eq!(end_txn(&log, marker(P3, 0, false)), 3);
        fill_until_segments(&log, 3, &mut seed);
        let snapshot_at = list_snapshots(&partition_dir(dir.path()))
            .unwrap()
            .last()
            .map(|(offset, _)| *offset)
            .expect("rolls wrote snapshots");
        assert!(
            snapshot_at > 3,
            "the newest snapshot covers the transactions' first batches and the marker"
        );
        // P2 ends after the snapshot: the replay reads its marker.
        let p2_end = end_txn(&log, marker(P2, 0, false));
        assert!(p2_end >= snapshot_at);
        let expected_aborts = vec![aborted(P3, 2, 3, 0), aborted(P2, 1, p2_end, 0)];
        assert_eq!(log.aborted_txns(), expected_aborts);

        let log = reopen(dir.path(), log, how);
        assert_eq!(
            log.open_txns(),
            BTreeMap::from([(P1, 0)]),
            "{how:?}: P1 is open again, P2 and P3 ended"
        );
        assert_eq!(log.last_stable_offset(), 0, "{how:?}");
        assert_eq!(log.aborted_txns(), expected_aborts, "{how:?}");
        let retry = log.append(&transactional_batch(1, P1, 0, 0, 1)).unwrap();
        assert_eq!(retry.base_offset, 0, "{how:?}: P1's batch is still known");
        let end = end_txn(&log, marker(P1, 0, true));
        assert_eq!(log.last_stable_offset(), end + 1, "{how:?}");
    }
}

#[test]
fn given_the_txnindex_lost_or_truncated_when_reopened_after_a_crash_then_the_replay_rebuilds_it() {
    for damage in ["delete", "truncate"] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), RecoveryHint::full_scan());
        append_acked(&log, &batch_with_records(1, 8, 1_000)); // 0
        append_acked(&log, &transactional_batch(2, P1, 0, 0, 1)); // 1..=2
        assert_eq!(end_txn(&log, marker(P1, 0, false)), 3);
        append_acked(&log, &transactional_batch(1, P2, 0, 0, 2)); // 4
        assert_eq!(end_txn(&log, marker(P2, 0, false)), 5);
        let entries = vec![aborted(P1, 1, 3, 4), aborted(P2, 4, 5, 6)];
        assert_eq!(log.aborted_txns(), entries);
        drop(log); // crash: no snapshot covers the markers, so the replay reads them
        let index = txn_index_path(&partition_dir(dir.path()), 0);
        match damage {
            "delete" => std::fs::remove_file(&index).unwrap(),
            _ => std::fs::OpenOptions::new()
                .write(true)
                .open(&index)
                .unwrap()
                .set_len(40)
                .unwrap(),
        }
        let log = open(dir.path(), RecoveryHint::full_scan());
        assert_eq!(
            log.aborted_txns(),
            entries,
            "{damage}: rebuilt from the markers"
        );
        // Rebuilt on disk too: a clean reopen (nothing replayed) still has them.
        let log = reopen(dir.path(), log, Reopen::Clean);
        assert_eq!(
            log.aborted_txns(),
            entries,
            "{damage}: after a clean reopen"
        );
        let (_, handed_out, _) = read_committed_all(&log, 0);
        assert_eq!(handed_out, entries);
    }
}

#[test]
fn given_a_torn_txnindex_entry_when_later_aborts_are_indexed_then_all_survive_a_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &transactional_batch(1, P1, 0, 0, 1)); // 0
    assert_eq!(end_txn(&log, marker(P1, 0, false)), 1);
    let log = reopen(dir.path(), log, Reopen::Clean);
    // A crash tore the write of a further entry: 3 of its 34 bytes landed.
    let index = txn_index_path(&partition_dir(dir.path()), 0);
    let mut bytes = std::fs::read(&index).unwrap();
    bytes.extend_from_slice(&[0, 0, 0]);
    std::fs::write(&index, bytes).unwrap();
    let log = reopen(dir.path(), log, Reopen::Crash);
    assert_eq!(log.aborted_txns(), vec![aborted(P1, 0, 1, 2)]);

    append_acked(&log, &transactional_batch(1, P2, 0, 0, 2)); // 2
    assert_eq!(end_txn(&log, marker(P2, 0, false)), 3);
    append_acked(&log, &transactional_batch(1, P3, 0, 0, 3)); // 4
    assert_eq!(end_txn(&log, marker(P3, 0, false)), 5);
    let entries = vec![
        aborted(P1, 0, 1, 2),
        aborted(P2, 2, 3, 4),
        aborted(P3, 4, 5, 6),
    ];
    assert_eq!(log.aborted_txns(), entries);
    // The clean close's snapshot covers the markers: only the file has them.
    let log = reopen(dir.path(), log, Reopen::Clean);
    assert_eq!(log.aborted_txns(), entries);
}

#[test]
fn given_an_indexed_abort_whose_marker_a_crash_lost_when_the_offsets_are_reused_then_no_stale_entry_hides_committed_data(
) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &batch_with_records(1, 8, 1_000)); // 0, durable
                                                          // Appended but not yet durable (acks in flight, or an interval flush).
    log.append(&transactional_batch(2, P1, 0, 0, 1)).unwrap(); // 1..=2
    let abort = log.append_marker(marker(P1, 0, false)).unwrap(); // 3
    assert_eq!(abort.base_offset, 3);
    assert_eq!(log.aborted_txns(), vec![aborted(P1, 1, 3, 4)]);
    // kill -9: the page cache held what no fdatasync covered, and loses it;
    // the aborted-transaction index was synced when the entry was written.
    let durable = log.durable_position();
    assert_eq!(durable.offset, 1);
    drop(log);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&durable.file)
        .unwrap()
        .set_len(durable.len)
        .unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    assert_eq!(log.log_end_offset(), 1, "the unsynced tail is gone");
    assert!(
        log.aborted_txns().is_empty(),
        "its marker is not in the log"
    );
    assert!(log.open_txns().is_empty());

    // The coordinator finishes its abort decision again: nothing is open here.
    assert_eq!(end_txn(&log, marker(P1, 0, false)), 1);
    // P1's next transaction reuses offsets 2..=3 and commits.
    append_acked(&log, &transactional_batch(2, P1, 0, 0, 2)); // 2..=3
    append_acked(&log, &transactional_batch(1, P1, 0, 2, 3)); // 4
    assert_eq!(end_txn(&log, marker(P1, 0, true)), 5);
    append_acked(&log, &batch_with_records(1, 8, 2_000)); // 6
    assert!(log.aborted_txns().is_empty());
    drop(log);

    for how in [Reopen::Clean, Reopen::Crash] {
        let log = reopen(dir.path(), open(dir.path(), RecoveryHint::full_scan()), how);
        assert!(
            log.aborted_txns().is_empty(),
            "{how:?}: the lost marker's entry came back: {:?}",
            log.aborted_txns()
        );
        let (got, entries, _) = read_committed_all(&log, 0);
        assert!(entries.is_empty(), "{how:?}: {entries:?}");
        assert_eq!(bases(&got), vec![0, 1, 2, 4, 5, 6]);
    }
}

#[test]
fn given_aborted_transactions_in_old_segments_when_retention_deletes_them_then_their_entries_and_txnindex_files_go(
) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    let mut seed = 0;
    append_acked(&log, &transactional_batch(1, P1, 0, 0, 1));
    end_txn(&log, marker(P1, 0, false));
    fill_until_segments(&log, 2, &mut seed);
    let p2_first = append_acked(&log, &transactional_batch(1, P2, 0, 0, 2));
    let p2_end = end_txn(&log, marker(P2, 0, false));
    fill_until_segments(&log, 3, &mut seed);
    let p3_first = append_acked(&log, &transactional_batch(1, P3, 0, 0, 3));
    let p3_end = end_txn(&log, marker(P3, 0, false));
    let kept = aborted(P3, p3_first, p3_end, p3_end + 1);
    assert_eq!(log.aborted_txns().len(), 3);
    let bases = log.segment_base_offsets();
    assert_eq!(bases.len(), 3);
    assert!(bases[1] <= p2_first && p2_end < bases[2]);
    let dir_of = partition_dir(dir.path());
    for base in &bases {
        assert!(txn_index_path(&dir_of, *base).exists(), "{base}.txnindex");
    }

    let outcome = log
        .enforce_retention(sediment_broker::basics::now_ms() + 8 * 24 * 3600 * 1000)
        .unwrap();
    assert_eq!(outcome.segments_deleted, 2);
    assert_eq!(outcome.log_start, bases[2]);
    assert_eq!(
        log.aborted_txns(),
        vec![kept],
        "entries below the log start go"
    );
    assert!(!txn_index_path(&dir_of, bases[0]).exists());
    assert!(!txn_index_path(&dir_of, bases[1]).exists());
    assert!(txn_index_path(&dir_of, bases[2]).exists());
    let (_, entries, _) = read_committed_all(&log, bases[2]);
    assert_eq!(entries, vec![kept]);
    let log = reopen(dir.path(), log, Reopen::Crash);
    assert_eq!(log.aborted_txns(), vec![kept]);
}

// ---------------------------------------------------------------------------
// The cleaner on a compacted partition.

fn compacted() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        ..small_segments()
    }
}

/// A forced, unthrottled cleaner (as `tests/compaction.rs` uses).
fn cleaner() -> Cleaner {
    Cleaner {
        io_bytes_per_sec: None,
        force: true,
        ..Cleaner::default()
    }
}

/// One batch of keyed records; `producer` is (id, epoch, first sequence,
/// transactional), `None` for a plain producer.
fn keyed(records: &[(&str, &str)], producer: Option<(i64, i32, bool)>) -> Vec<u8> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            offset: i as i64,
            timestamp: 1_000 + i as i64,
            key: Some(Bytes::from(key.to_string())),
            value: Some(Bytes::from(value.to_string())),
            headers: Vec::new(),
        })
        .collect();
    let mut options = BatchOptions::default();
    if let Some((producer_id, base_sequence, transactional)) = producer {
        options.producer_id = producer_id;
        options.producer_epoch = 0;
        options.base_sequence = base_sequence;
        options.transactional = transactional;
    }
    encode_batch(&records, &options).unwrap().to_vec()
}

/// Each key's latest value as a read_committed consumer (Kafka's
/// `isBatchAborted` rule) sees the log up to the last stable offset.
fn committed_view(log: &PartitionLog) -> BTreeMap<String, String> {
    let mut view = BTreeMap::new();
    let mut entries: Vec<AbortedTxn> = Vec::new();
    let mut offset = log.log_start_offset();
    loop {
        let read = log.read_committed(offset, 1 << 20).unwrap();
        entries.extend(read.aborted);
        if read.read.bytes.is_empty() {
            return view;
        }
        for raw in split_batches(&read.read.bytes) {
            let batch = decode_batch(raw, 1 << 26).unwrap();
            assert!(batch.base_offset < read.last_stable_offset);
            let aborted = batch.transactional
                && entries.iter().any(|a| {
                    a.producer_id == batch.producer_id
                        && a.first_offset <= batch.base_offset
                        && batch.base_offset < a.last_offset
                });
            if batch.control || aborted {
                continue;
            }
            for record in batch.records {
                view.insert(
                    String::from_utf8(record.key.unwrap().to_vec()).unwrap(),
                    String::from_utf8(record.value.unwrap().to_vec()).unwrap(),
                );
            }
        }
        offset = read.read.next_offset;
    }
}

/// Every stored batch from `from` to the high watermark as
/// (base offset, producer, transactional, control, keys=values).
type Stored = Vec<(i64, i64, bool, bool, Vec<String>)>;

fn stored(log: &PartitionLog, from: i64) -> Stored {
    read_all(log, from)
        .into_iter()
        .map(|(_, bytes)| {
            let batch = decode_batch(Bytes::from(bytes), 1 << 26).unwrap();
            let records = if batch.control {
                Vec::new()
            } else {
                batch
                    .records
                    .iter()
                    .map(|r| {
                        format!(
                            "{}@{}={}",
                            String::from_utf8_lossy(r.key.as_deref().unwrap()),
                            r.offset,
                            String::from_utf8_lossy(r.value.as_deref().unwrap())
                        )
                    })
                    .collect()
            };
            (
                batch.base_offset,
                batch.producer_id,
                batch.transactional,
                batch.control,
                records,
            )
        })
        .collect()
}

#[test]
fn given_aborted_and_open_transactions_when_the_cleaner_runs_then_committed_values_survive_markers_stay_and_nothing_past_the_lso_is_cleaned(
) {
    let dir = tempfile::tempdir().unwrap();
    let log = open_with(dir.path(), compacted(), RecoveryHint::full_scan());
    // Segment A.
    append_acked(&log, &keyed(&[("k1", "v1")], None)); // 0
    append_acked(
        &log,
        &keyed(&[("k1", "aborted"), ("k2", "aborted")], Some((P1, 0, true))),
    ); // 1..=2
    assert_eq!(end_txn(&log, marker(P1, 0, false)), 3);
    append_acked(
        &log,
        &keyed(&[("k2", "c2"), ("k3", "c3")], Some((P2, 0, true))),
    ); // 4..=5
    assert_eq!(end_txn(&log, marker(P2, 0, true)), 6);
    append_acked(&log, &keyed(&[("k3", "v3")], None)); // 7
    log.roll_now().unwrap();
    // Segment B: P3's transaction stays open, so the LSO is 8.
    append_acked(&log, &keyed(&[("k4", "open")], Some((P3, 0, true)))); // 8
    append_acked(&log, &keyed(&[("k2", "late")], None)); // 9
    log.roll_now().unwrap();
    // Segment C: an aborted write of k1 in a later segment.
    append_acked(&log, &keyed(&[("k2", "later")], None)); // 10
    append_acked(
        &log,
        &keyed(&[("k1", "aborted-again")], Some((P4, 0, true))),
    ); // 11
    assert_eq!(end_txn(&log, marker(P4, 0, false)), 12);
    log.roll_now().unwrap();
    append_acked(&log, &keyed(&[("k5", "x")], None)); // 13, active segment
    assert_eq!(log.last_stable_offset(), 8);
    assert_eq!(log.segment_base_offsets(), vec![0, 8, 10, 13]);

    let view_before = committed_view(&log);
    assert_eq!(
        view_before,
        BTreeMap::from([
            ("k1".into(), "v1".into()),
            ("k2".into(), "c2".into()),
            ("k3".into(), "v3".into()),
        ])
    );
    let past_lso_before = stored(&log, 8);
    let now = sediment_broker::basics::now_ms() + 1_000;
    let outcome = cleaner()
        .clean(&log, now)
        .unwrap()
        .expect("segment A cleaned");
    assert_eq!(outcome.segments_in, 1, "only the segment below the LSO");
    assert_eq!(outcome.first_dirty, 8);
    assert_eq!(
        stored(&log, 0),
        [
            vec![
                (0, -1, false, false, vec!["k1@0=v1".to_string()]),
                (3, P1, true, true, vec![]),
                (4, P2, true, false, vec!["k2@4=c2".to_string()]),
                (6, P2, true, true, vec![]),
                (7, -1, false, false, vec!["k3@7=v3".to_string()]),
            ],
            past_lso_before.clone()
        ]
        .concat(),
        "the aborted batch is gone, k1=v1 stays, markers stay, nothing from 8 on changed"
    );
    assert_eq!(committed_view(&log), view_before);

    // P3 commits: everything sealed is stable and cleanable now.
    let p3_end = end_txn(&log, marker(P3, 0, true));
    assert_eq!(log.last_stable_offset(), p3_end + 1);
    log.roll_now().unwrap();
    let view_before = committed_view(&log);
    assert_eq!(
        view_before,
        BTreeMap::from([
            ("k1".into(), "v1".into()),
            ("k2".into(), "later".into()),
            ("k3".into(), "v3".into()),
            ("k4".into(), "open".into()),
            ("k5".into(), "x".into()),
        ])
    );
    cleaner().clean(&log, now).unwrap().expect("cleaned again");
    assert_eq!(committed_view(&log), view_before);
    let after = stored(&log, 0);
    let markers: Vec<(i64, i64)> = after.iter().filter(|b| b.3).map(|b| (b.0, b.1)).collect();
    assert_eq!(
        markers,
        vec![(3, P1), (6, P2), (12, P4), (p3_end, P3)],
        "every marker is kept"
    );
    let records: Vec<String> = after.iter().flat_map(|b| b.4.clone()).collect();
    assert_eq!(
        records,
        vec!["k1@0=v1", "k3@7=v3", "k4@8=open", "k2@10=later", "k5@13=x"],
        "the latest committed record of each key, aborted ones dropped"
    );
}

/// `*.txnindex` files in the partition directory, by base offset.
fn txn_index_bases(dir: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            (path.extension()? == "txnindex").then(|| path.file_stem()?.to_str()?.parse().ok())?
        })
        .collect();
    bases.sort_unstable();
    bases
}

#[test]
fn given_segments_with_aborts_merged_by_the_cleaner_when_retention_deletes_the_merged_segment_then_no_txnindex_file_is_left_below_the_log_start(
) {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: true,
            compact: true,
        },
        ..small_segments()
    };
    let log = open_with(dir.path(), config, RecoveryHint::full_scan());
    append_acked(&log, &keyed(&[("k1", "v1")], None)); // 0
    log.roll_now().unwrap();
    append_acked(&log, &keyed(&[("k1", "aborted")], Some((P1, 0, true)))); // 1
    assert_eq!(end_txn(&log, marker(P1, 0, false)), 2);
    log.roll_now().unwrap();
    append_acked(&log, &keyed(&[("k2", "x")], Some((P2, 0, true)))); // 3
    assert_eq!(end_txn(&log, marker(P2, 0, false)), 4);
    log.roll_now().unwrap();
    append_acked(&log, &keyed(&[("k3", "v3")], None)); // 5, active segment
    assert_eq!(log.segment_base_offsets(), vec![0, 1, 3, 5]);
    let pdir = partition_dir(dir.path());
    assert_eq!(txn_index_bases(&pdir), vec![1, 3]);

    let now = sediment_broker::basics::now_ms() + 1_000;
    let outcome = cleaner().clean(&log, now).unwrap().expect("cleaned");
    assert_eq!(
        (outcome.segments_in, outcome.segments_out),
        (3, 1),
        "the small segments were merged"
    );
    assert_eq!(log.segment_base_offsets(), vec![0, 5]);
    assert_eq!(
        committed_view(&log).get("k1").map(String::as_str),
        Some("v1")
    );

    let outcome = log.enforce_retention(now + 8 * 24 * 3600 * 1000).unwrap();
    assert_eq!(outcome.log_start, 5);
    assert!(log.aborted_txns().is_empty());
    assert_eq!(
        txn_index_bases(&pdir),
        Vec::<i64>::new(),
        "the index files of every source of the deleted segment go with it"
    );
}

#[test]
fn given_an_open_transaction_below_a_new_log_start_when_read_committed_then_none_of_its_batches_is_returned_until_it_ends(
) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), RecoveryHint::full_scan());
    append_acked(&log, &transactional_batch(10, P1, 0, 0, 1)); // 0..=9, open
    append_acked(&log, &batch_with_records(1, 8, 1_000)); // 10
    assert_eq!(
        log.delete_records_before(5).unwrap(),
        5,
        "the start moves into the batch"
    );
    let lso = log.last_stable_offset();
    assert!(
        lso <= 5,
        "nothing from the open transaction on is stable: {lso}"
    );
    let read = log.read_committed(5, 1 << 20).unwrap();
    assert!(
        read.read.bytes.is_empty(),
        "an open transaction's batch was returned to a read_committed reader (LSO {})",
        read.last_stable_offset
    );
    assert_eq!(read.read.next_offset, 5);

    assert_eq!(end_txn(&log, marker(P1, 0, false)), 11);
    let (got, entries, lso) = read_committed_all(&log, 5);
    assert_eq!(
        bases(&got),
        vec![0, 10, 11],
        "the batch holding the start comes whole"
    );
    assert_eq!(entries, vec![aborted(P1, 0, 11, 12)], "with its abort");
    assert_eq!(lso, 12);
}
