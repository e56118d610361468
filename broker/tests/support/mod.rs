//! Helpers shared by the storage integration tests.
#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};
use std::process::Command;

use sediment_broker::storage::batch::BatchHeader;
use sediment_broker::storage::PartitionLog;

/// Appends and acknowledges (under flush always) one batch; returns its base offset.
pub fn append_acked(log: &PartitionLog, batch: &[u8]) -> i64 {
    let outcome = log.append(batch).expect("append");
    log.make_durable(outcome.next_offset).expect("durable");
    outcome.base_offset
}

/// Reads every batch from `from` to the high watermark, returning (base offset, bytes).
pub fn read_all(log: &PartitionLog, from: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.high_watermark() {
        let read = log.read(offset, 10_000).expect("read");
        assert!(
            !read.bytes.is_empty(),
            "empty read at {offset} below hw {}",
            log.high_watermark()
        );
        let mut rest = &read.bytes[..];
        while !rest.is_empty() {
            let header = BatchHeader::parse_verified(rest).expect("stored batch is valid");
            out.push((header.base_offset(), rest[..header.total_len()].to_vec()));
            rest = &rest[header.total_len()..];
        }
        offset = read.next_offset;
    }
    out
}

/// The batch as stored: the producer's bytes with the broker's base offset and leader epoch 0.
pub fn as_stored(batch: &[u8], base_offset: i64) -> Vec<u8> {
    let mut stored = batch.to_vec();
    stored[..8].copy_from_slice(&base_offset.to_be_bytes());
    stored[12..16].copy_from_slice(&0i32.to_be_bytes());
    stored
}

/// A tmpfs mounted over a directory, unmounted on drop (also when a test panics).
pub struct TmpfsMount {
    path: PathBuf,
}

impl TmpfsMount {
    /// Mounts a tmpfs of `size` over `path`; `Err` says why the system refused.
    pub fn mount(path: &Path, size: &str) -> Result<Self, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            eprintln!("umount {} failed; detaching it lazily", self.path.display());
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}
