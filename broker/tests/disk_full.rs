//! Disk full: appends are refused, the process lives, nothing acknowledged is
//! lost, and appends resume once space is freed, without a restart.
//!
//! The partition lives on a small tmpfs (mounted by the test, which runs as
//! root in CI) that also holds a filler file. Appends with fdatasync run until
//! one fails; then:
//! - the error is a storage error (`KAFKA_STORAGE_ERROR`, 56), and the process
//!   is alive: reserving space with `fallocate` surfaced ENOSPC as an error, no
//!   store into a mapping hit unallocated space (SIGBUS);
//! - the failure was a refused reservation, before anything was written: the
//!   partition is not poisoned, later appends are refused the same way while
//!   the disk stays full, and the high watermark stays at the last ack;
//! - every batch acknowledged before the failure reads back byte-identical;
//! - once space is freed (the filler deleted), the next append on the same
//!   open partition succeeds at the next offset;
//! - after a drop without close (kill -9) and a reopen, everything
//!   acknowledged, before and after the full disk, reads back.
//!
//! Where mounting is refused, the same scenario runs in a child process under
//! `RLIMIT_FSIZE` (util-linux `prlimit`, with SIGXFSZ ignored so the limit
//! surfaces as EFBIG): writes past the limit fail and "freeing space" raises
//! the limit. Set `SEDIMENT_DISK_FULL_FORCE_RLIMIT=1` to run that variant.

// Tests may unwrap (house style); the helpers below are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::{append_acked, as_stored, read_all, TmpfsMount};

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use sediment_broker::protocol::errors::ToErrorCode;
use sediment_broker::storage::batch::BatchHeader;
use sediment_broker::storage::test_batches::batch_of_size;
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::{LogConfig, StorageError};

/// This file's one test: the RLIMIT_FSIZE child re-runs exactly it.
const TEST_NAME: &str =
    "given_full_disk_when_appending_then_appends_are_refused_acked_data_kept_and_appends_resume_once_space_is_freed";
/// Set in the child process that runs the scenario under RLIMIT_FSIZE.
const CHILD_ENV: &str = "SEDIMENT_DISK_FULL_CHILD";
/// Skip the tmpfs mount and run the RLIMIT_FSIZE variant.
const FORCE_RLIMIT_ENV: &str = "SEDIMENT_DISK_FULL_FORCE_RLIMIT";
/// Size of the tmpfs the partition fills.
const TMPFS_SIZE: &str = "4m";
/// Bytes of the filler file deleted to free space.
const FILLER_BYTES: usize = 1 << 20;
/// RLIMIT_FSIZE of the fallback: below `segment_bytes`, so the active segment hits it.
const FILE_SIZE_LIMIT: u64 = 500 * 1024;
/// Bytes of each appended batch.
const BATCH_BYTES: usize = 16 * 1024;
/// More appends than can fit either way: the disk must fill before this.
const MAX_APPENDS: usize = 1000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        preallocate_bytes: 64 * 1024,
        index_max_bytes: 64 * 1024,
        ..LogConfig::default()
    }
}

fn batch(seed: u64) -> Vec<u8> {
    batch_of_size(16, BATCH_BYTES, 1000 * seed as i64, seed)
}

/// How the scenario runs out of space and gets it back.
enum Space {
    /// A full tmpfs; deleting the filler frees space.
    Tmpfs { filler: PathBuf },
    /// RLIMIT_FSIZE on this process; raising the soft limit to the hard
    /// limit (unlimited) "frees space".
    FileSizeLimit,
}

impl Space {
    fn free(&self) {
        match self {
            Self::Tmpfs { filler } => fs::remove_file(filler).unwrap(),
            Self::FileSizeLimit => {
                let status = Command::new("prlimit")
                    .arg(format!("--pid={}", std::process::id()))
                    .arg("--fsize=unlimited")
                    .status()
                    .unwrap();
                assert!(status.success(), "prlimit could not raise RLIMIT_FSIZE");
                assert_eq!(file_size_limit(), None);
            }
        }
    }
}

/// This process's RLIMIT_FSIZE soft limit, `None` when unlimited.
fn file_size_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max file size"))
        .unwrap();
    let soft = line["Max file size".len()..]
        .split_whitespace()
        .next()
        .unwrap();
    soft.parse().ok()
}

/// True when this process ignores SIGXFSZ (bit 24 of `SigIgn`, signal 25).
fn ignores_sigxfsz() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .unwrap();
    u64::from_str_radix(mask.trim(), 16).unwrap() & (1 << 24) != 0
}

/// Fills the space, checks the failure and what survives it, frees space and reopens.
fn run_scenario(data_dir: &Path, space: &Space) {
    let dir = data_dir.join("orders-0");
    let log = PartitionLog::open(&dir, config(), RecoveryHint::full_scan()).unwrap();

    let mut acked: Vec<(i64, Vec<u8>)> = Vec::new();
    let failure = loop {
        assert!(
            acked.len() < MAX_APPENDS,
            "{MAX_APPENDS} appends of {BATCH_BYTES} bytes and the disk never filled"
        );
        let batch = batch(acked.len() as u64);
        let outcome = match log.append(&batch) {
            Ok(outcome) => outcome,
            Err(e) => break e,
        };
        if let Err(e) = log.make_durable(outcome.next_offset) {
            break e;
        }
        acked.push((outcome.base_offset, as_stored(&batch, outcome.base_offset)));
    };
    eprintln!(
        "append failed after {} acknowledged batches: {failure}",
        acked.len()
    );
    assert!(
        acked.len() >= 8,
        "the space ran out only after some appends"
    );

    // Reaching this line means the process survived the failed write.
    let out_of_space = |error: &StorageError| match error {
        StorageError::Io { source, .. } => assert!(
            matches!(
                source.kind(),
                ErrorKind::StorageFull | ErrorKind::FileTooLarge
            ),
            "out of space, got {source:?}"
        ),
        other => panic!("expected an I/O error from the reservation, got {other:?}"),
    };
    out_of_space(&failure);
    assert_eq!(failure.kafka_error_code(), 56, "KAFKA_STORAGE_ERROR");
    // RLIMIT_FSIZE does not limit `fallocate(KEEP_SIZE)`, so under the
    // fallback the reservation succeeds and the write itself fails, which
    // poisons (a failed write is not retried in place); a full disk refuses
    // the reservation, before anything is written.
    let write_failed = matches!(space, Space::FileSizeLimit);
    assert_eq!(
        log.is_poisoned(),
        write_failed,
        "only a failed write poisons; a refused reservation wrote nothing"
    );

    let acked_end = acked.last().map_or(0, |(base, stored)| {
        base + i64::from(BatchHeader::parse(stored).unwrap().last_offset_delta()) + 1
    });
    for seed in 0..3 {
        let err = log.append(&batch(10_000 + seed)).unwrap_err();
        if write_failed {
            assert!(matches!(err, StorageError::Poisoned { .. }), "{err}");
        } else {
            out_of_space(&err);
        }
        assert_eq!(err.kafka_error_code(), 56);
    }
    assert_eq!(
        log.log_end_offset(),
        acked_end,
        "nothing refused was appended"
    );
    assert_eq!(log.high_watermark(), acked_end);
    assert_eq!(
        read_all(&log, 0),
        acked,
        "acknowledged data stays readable on a full disk"
    );

    space.free();
    let log = if write_failed {
        drop(log);
        let log = PartitionLog::open(&dir, config(), RecoveryHint::full_scan()).unwrap();
        assert!(!log.is_poisoned(), "a reopen clears the poison");
        log
    } else {
        log
    };
    let next = batch(20_000);
    let base = append_acked(&log, &next);
    assert_eq!(base, acked_end, "appends resume at the next offset");
    acked.push((base, as_stored(&next, base)));
    assert_eq!(read_all(&log, 0), acked);

    // kill -9 and reopen: everything acknowledged is there, appends go on.
    drop(log);
    let log = PartitionLog::open(&dir, config(), RecoveryHint::full_scan()).unwrap();
    assert_eq!(read_all(&log, 0), acked);
    let after = batch(30_000);
    let next_base = append_acked(&log, &after);
    assert_eq!(
        read_all(&log, base),
        vec![
            (base, as_stored(&next, base)),
            (next_base, as_stored(&after, next_base))
        ]
    );
}

/// Runs this test again in a child process whose files are limited to
/// `FILE_SIZE_LIMIT` bytes (soft limit), with SIGXFSZ ignored (an ignored signal stays ignored
/// across exec) so that the limit shows up as EFBIG.
fn run_in_file_size_limited_child() {
    let prlimit = Command::new("prlimit").arg("--version").output();
    assert!(
        prlimit.is_ok_and(|out| out.status.success()),
        "the RLIMIT_FSIZE fallback needs prlimit: install util-linux"
    );
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; exec prlimit --fsize="$0" -- "$@""#)
        // Soft limit only: raising it back to the (unlimited) hard limit
        // needs no privilege.
        .arg(format!("{FILE_SIZE_LIMIT}:unlimited"))
        .arg(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .status()
        .unwrap();
    assert!(status.success(), "the RLIMIT_FSIZE run failed: {status}");
}

#[test]
fn given_full_disk_when_appending_then_appends_are_refused_acked_data_kept_and_appends_resume_once_space_is_freed(
) {
    if std::env::var_os(CHILD_ENV).is_some() {
        // The child: the fault is RLIMIT_FSIZE, set by the parent.
        assert_eq!(file_size_limit(), Some(FILE_SIZE_LIMIT));
        assert!(ignores_sigxfsz(), "SIGXFSZ would kill the process instead");
        let tmp = tempfile::tempdir().unwrap();
        run_scenario(tmp.path(), &Space::FileSizeLimit);
        return;
    }

    let tmp = tempfile::tempdir().unwrap();
    let mount = if std::env::var_os(FORCE_RLIMIT_ENV).is_some() {
        Err(format!("{FORCE_RLIMIT_ENV} is set"))
    } else {
        TmpfsMount::mount(tmp.path(), TMPFS_SIZE)
    };
    match mount {
        Ok(_mount) => {
            let filler = tmp.path().join("filler");
            fs::write(&filler, vec![0xa5; FILLER_BYTES]).unwrap();
            run_scenario(tmp.path(), &Space::Tmpfs { filler });
        }
        Err(why) => {
            eprintln!("tmpfs mount refused ({why}); using RLIMIT_FSIZE fault injection instead");
            run_in_file_size_limited_child();
        }
    }
}
