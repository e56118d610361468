//! Many partitions fill a small volume (DESIGN §3, "Resource model": a full
//! disk degrades writes and never stops reads or startup; "fenced" means
//! corrupt data and nothing else).
//!
//! The data directory lives on a small tmpfs (mounted by the test, which runs
//! as root in CI). Partitions take turns appending acknowledged batches; each
//! one stops at its first failure. Then:
//! - every failure is a storage error (`KAFKA_STORAGE_ERROR`) naming a disk
//!   problem, never `Fenced`, and no partition is offline;
//! - every acknowledged batch reads back byte-identical;
//! - the manager is dropped without a clean shutdown (as kill -9 leaves it),
//!   a filler takes whatever space is left, and the data directory is opened
//!   again on the full volume: it opens, no partition is offline or fenced,
//!   and every acknowledged batch reads back;
//! - before that, a ballast file written at the start is deleted while the
//!   partitions are still open: none was poisoned by its failed
//!   reservation, and every one appends again without a restart;
//! - once the filler is gone too, a clean restart leaves every partition
//!   appendable.
//!
//! Where mounting is refused, the scenario runs in a child process under
//! `RLIMIT_FSIZE` instead (as `disk_full.rs` does; util-linux `prlimit`, SIGXFSZ
//! ignored so the limit surfaces as EFBIG): each partition's segment hits the
//! limit, and the reopen happens with the limit still in place. Set
//! `SEDIMENT_DISK_FULL_FORCE_RLIMIT=1` to run that variant.

// Tests may unwrap (house style); the helpers below are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::{as_stored, read_all, TmpfsMount};

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::process::Command;

use sediment_broker::basics::TopicPartition;
use sediment_broker::protocol::errors::ToErrorCode;
use sediment_broker::storage::log_manager::LogManager;
use sediment_broker::storage::test_batches::batch_of_size;
use sediment_broker::storage::PartitionLog;
use sediment_broker::{LogConfig, StorageError};

/// This file's one test: the RLIMIT_FSIZE child re-runs exactly it.
const TEST_NAME: &str =
    "given_many_partitions_filling_the_volume_when_reopened_on_the_full_volume_then_every_acked_batch_reads_back_and_none_is_fenced";
/// Set in the child process that runs the scenario under RLIMIT_FSIZE.
const CHILD_ENV: &str = "SEDIMENT_DISK_FULL_PARTITIONS_CHILD";
/// Skip the tmpfs mount and run the RLIMIT_FSIZE variant.
const FORCE_RLIMIT_ENV: &str = "SEDIMENT_DISK_FULL_FORCE_RLIMIT";
/// Size of the tmpfs.
const TMPFS_SIZE: &str = "16m";
/// Bytes of the ballast file written first and deleted to free space at the end.
const BALLAST_BYTES: usize = 8 << 20;
/// RLIMIT_FSIZE of the fallback.
const FILE_SIZE_LIMIT: u64 = 128 * 1024;
/// Partitions sharing the volume: with the old 16 MiB first reservation most
/// of them could not take a single append.
const PARTITIONS: i32 = 60;
/// Bytes of each batch (more than the index interval, so indexes get entries).
const BATCH_BYTES: usize = 5 * 1024;
/// Rounds of appends; the volume fills long before.
const MAX_ROUNDS: usize = 2000;

fn config() -> LogConfig {
    LogConfig::default()
}

fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new("orders", partition)
}

fn batch(partition: i32, round: usize) -> Vec<u8> {
    batch_of_size(
        4,
        BATCH_BYTES,
        1_000 * round as i64,
        partition as u64 * 100_000 + round as u64,
    )
}

/// Fills whatever space is left on the volume holding `path`.
fn fill(path: &Path) {
    let mut file = fs::File::create(path).unwrap();
    let chunk = vec![0x5a; 4096];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the volume: {e}"),
        }
    }
    // Whatever the page cache held back is on the volume, or the sync fails
    // for lack of space; either way the volume is full.
    let _ = file.sync_all();
}

/// Checks that `log` reads back every batch of `acked`, byte-identical, at its
/// offset (reporting offsets, not bytes). After a reopen, the batch whose
/// append failed may follow them: it can have reached the file before the
/// failure (an index reservation failed after the write), and like a write cut
/// short by a crash it was never acknowledged, so recovery may keep it.
fn assert_reads_back(log: &PartitionLog, acked: &[(i64, Vec<u8>)], when: &str, reopened: bool) {
    let read = read_all(log, 0);
    let offsets = |batches: &[(i64, Vec<u8>)]| batches.iter().map(|(o, _)| *o).collect::<Vec<_>>();
    let unacked_allowed = if reopened { 1 } else { 0 };
    assert!(
        read.len() >= acked.len() && read.len() <= acked.len() + unacked_allowed,
        "{}: {when}: read offsets {:?}, acknowledged {:?}",
        log.name(),
        offsets(&read),
        offsets(acked)
    );
    assert_eq!(
        offsets(&read[..acked.len()]),
        offsets(acked),
        "{}: {when}: the acknowledged batches read back",
        log.name()
    );
    assert!(
        read[..acked.len()] == *acked,
        "{}: {when}: the batches read back byte-identical",
        log.name()
    );
}

fn assert_not_fenced(error: &StorageError) {
    assert!(
        !matches!(error, StorageError::Fenced { .. }),
        "a full disk is not damage: {error}"
    );
    assert!(
        !error.to_string().contains("fenced"),
        "a full disk is not reported as fenced: {error}"
    );
}

fn run_scenario(root: &Path, full_volume: bool) {
    let data = root.join("data");
    let ballast = root.join("ballast");
    if full_volume {
        fs::write(&ballast, vec![0xa5; BALLAST_BYTES]).unwrap();
    }
    let manager = LogManager::open(&data, config(), |_| config()).unwrap();
    let logs: Vec<_> = (0..PARTITIONS)
        .map(|p| manager.get_or_create(&tp(p), config()).unwrap())
        .collect();

    let mut acked: Vec<Vec<(i64, Vec<u8>)>> = vec![Vec::new(); PARTITIONS as usize];
    let mut failed = vec![false; PARTITIONS as usize];
    for round in 0..MAX_ROUNDS {
        if failed.iter().all(|&f| f) {
            break;
        }
        for (p, log) in logs.iter().enumerate() {
            if failed[p] {
                continue;
            }
            let batch = batch(p as i32, round);
            let result = log
                .append(&batch)
                .and_then(|outcome| log.make_durable(outcome.next_offset).map(|()| outcome));
            match result {
                Ok(outcome) => {
                    acked[p].push((outcome.base_offset, as_stored(&batch, outcome.base_offset)))
                }
                Err(error) => {
                    assert_not_fenced(&error);
                    assert_eq!(error.kafka_error_code(), 56, "KAFKA_STORAGE_ERROR: {error}");
                    match &error {
                        StorageError::Io { source, .. } => assert!(
                            matches!(
                                source.kind(),
                                ErrorKind::StorageFull | ErrorKind::FileTooLarge
                            ),
                            "out of space, got {error}"
                        ),
                        other => panic!("expected an I/O error, got {other:?}"),
                    }
                    failed[p] = true;
                }
            }
        }
    }
    assert!(
        failed.iter().all(|&f| f),
        "{MAX_ROUNDS} rounds and the volume never filled"
    );
    let total: usize = acked.iter().map(Vec::len).sum();
    eprintln!("the volume filled after {total} acknowledged batches over {PARTITIONS} partitions");
    assert!(
        acked.iter().all(|a| !a.is_empty()),
        "every partition took at least one batch before the volume filled"
    );
    assert!(manager.offline_partitions().is_empty());
    for (log, acked) in logs.iter().zip(&acked) {
        assert_reads_back(log, acked, "reads continue on the full volume", false);
    }

    // Space comes back while the partitions are open: a failed reservation
    // poisoned nothing, and every partition's next append succeeds without
    // a restart.
    if full_volume {
        fs::remove_file(&ballast).unwrap();
        for (p, log) in logs.iter().enumerate() {
            assert!(
                !log.is_poisoned(),
                "{}: a failed reservation does not poison the partition",
                log.name()
            );
            let next = batch(p as i32, MAX_ROUNDS + 1);
            let outcome = log
                .append(&next)
                .and_then(|outcome| log.make_durable(outcome.next_offset).map(|()| outcome))
                .unwrap_or_else(|e| {
                    panic!("{}: appends resume once space is freed: {e}", log.name())
                });
            let acked_end = acked[p].last().map_or(0, |(base, _)| base + 4);
            assert_eq!(outcome.base_offset, acked_end, "{}", log.name());
            acked[p].push((outcome.base_offset, as_stored(&next, outcome.base_offset)));
        }
    }

    // kill -9: no clean shutdown, reservations and unsynced indexes left as they are.
    drop(logs);
    drop(manager);
    let filler = root.join("filler");
    if full_volume {
        fill(&filler);
    }

    let manager = LogManager::open(&data, config(), |_| config()).unwrap();
    let offline = manager.offline_partitions();
    assert!(
        offline.is_empty(),
        "partitions offline on the full volume: {:?}",
        offline
            .iter()
            .map(|(tp, why)| format!("{tp}: {}", why.reason))
            .collect::<Vec<_>>()
    );
    for (p, acked) in acked.iter().enumerate() {
        let log = match manager.get(&tp(p as i32)) {
            Ok(Some(log)) => log,
            Ok(None) => panic!("{} is gone", tp(p as i32)),
            Err(error) => {
                assert_not_fenced(&error);
                panic!("{} did not open: {error}", tp(p as i32));
            }
        };
        assert_reads_back(&log, acked, "reopened on the full volume", true);
    }

    // Space comes back; a clean restart picks it up at the latest.
    if full_volume {
        fs::remove_file(&filler).unwrap();
    }
    if let Err(error) = manager.shutdown() {
        // A partition poisoned by a failed append on the full volume does
        // not close cleanly; the next start recovers it.
        assert_not_fenced(&error);
    }
    drop(manager);
    if !full_volume {
        return;
    }
    let manager = LogManager::open(&data, config(), |_| config()).unwrap();
    assert!(manager.offline_partitions().is_empty());
    for (p, acked) in acked.iter().enumerate() {
        let log = manager.get(&tp(p as i32)).unwrap().unwrap();
        assert_reads_back(&log, acked, "after a clean restart with space", true);
        let next = batch(p as i32, MAX_ROUNDS);
        let outcome = log.append(&next).unwrap();
        log.make_durable(outcome.next_offset).unwrap();
        let acked_end = acked.last().map_or(0, |(base, _)| base + 4);
        assert!(
            outcome.base_offset == acked_end || outcome.base_offset == acked_end + 4,
            "appends continue after the log ({} at {})",
            log.name(),
            outcome.base_offset
        );
    }
}

/// This process's RLIMIT_FSIZE soft limit, `None` when unlimited.
fn file_size_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max file size"))
        .unwrap();
    line["Max file size".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .ok()
}

/// Runs this test again in a child whose files are limited to
/// `FILE_SIZE_LIMIT` bytes, with SIGXFSZ ignored so the limit shows up as EFBIG.
fn run_in_file_size_limited_child() {
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; exec prlimit --fsize="$0" -- "$@""#)
        .arg(format!("{FILE_SIZE_LIMIT}:unlimited"))
        .arg(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .status()
        .expect("the RLIMIT_FSIZE fallback needs prlimit (util-linux)");
    assert!(status.success(), "the RLIMIT_FSIZE run failed: {status}");
}

#[test]
fn given_many_partitions_filling_the_volume_when_reopened_on_the_full_volume_then_every_acked_batch_reads_back_and_none_is_fenced(
) {
    if std::env::var_os(CHILD_ENV).is_some() {
        assert_eq!(file_size_limit(), Some(FILE_SIZE_LIMIT));
        let tmp = tempfile::tempdir().unwrap();
        run_scenario(tmp.path(), false);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mount = if std::env::var_os(FORCE_RLIMIT_ENV).is_some() {
        Err(format!("{FORCE_RLIMIT_ENV} is set"))
    } else {
        TmpfsMount::mount(tmp.path(), TMPFS_SIZE)
    };
    match mount {
        Ok(_mount) => run_scenario(tmp.path(), true),
        Err(why) => {
            eprintln!("tmpfs mount refused ({why}); using RLIMIT_FSIZE fault injection instead");
            run_in_file_size_limited_child();
        }
    }
}
