//! The cleaner's per-partition "first dirty offset" (Kafka's
//! `cleaner-offset-checkpoint`): `DATA/meta/cleaner-offset-checkpoint`,
//! one `<topic> <partition> <offset>` line per partition the cleaner has
//! cleaned, written through the checksummed atomic writer of
//! [`crate::storage::checkpoint`].
//!
//! Invariants:
//! - Offsets below a partition's value have been compacted (and may have
//!   gaps); offsets at or above it are exactly as appended. Recovery accepts
//!   offset gaps only below it, so a missing segment in never-cleaned data is
//!   still fenced.
//! - A partition's value only ever grows ([`raise_first_dirty`]) until the
//!   partition is deleted ([`forget`]): it is raised only after the cleaned
//!   segments it covers are durably in place (see `storage::cleaner`), so
//!   after a crash it never claims more than what is on disk.
//! - The file lives beside the recovery points, in the data directory's
//!   `meta/`; the data directory is the parent of the partition directory.
//!   Every read-modify-write of it in the process is serialised by one lock.
//! - A missing file means "nothing cleaned" (0); a damaged one is logged and
//!   read as 0: recovery is then strict everywhere, which can fence a
//!   compacted partition but never serves damaged data.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::basics::lock;
use crate::storage::checkpoint::{read_checksummed, write_checksummed};

/// File name under `DATA/meta/`.
pub const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// Serialises read-modify-write cycles of every cleaner checkpoint file.
static UPDATE: Mutex<()> = Mutex::new(());

/// Where the checkpoint holding `partition_dir`'s value lives.
pub fn checkpoint_path(partition_dir: &Path) -> PathBuf {
    let data_dir = partition_dir.parent().unwrap_or_else(|| Path::new("."));
    data_dir
        .join(crate::storage::log_manager::META_DIR)
        .join(CLEANER_CHECKPOINT_FILE)
}

/// The partition's key in the file: its directory name, written as Kafka
/// writes it (`topic partition`) when the name ends in `-<partition>`.
fn key_of(partition_dir: &Path) -> String {
    let name = partition_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rsplit_once('-') {
        Some((topic, partition)) if !topic.is_empty() && partition.parse::<i32>().is_ok() => {
            format!("{topic} {partition}")
        }
        _ => name,
    }
}

fn read_all(path: &Path) -> BTreeMap<String, i64> {
    let payload = match read_checksummed(path) {
        Ok(Some(payload)) => payload,
        Ok(None) => return BTreeMap::new(),
        Err(error) => {
            tracing::warn!(error = %error, "ignoring the cleaner-offset checkpoint: recovery treats every partition as never cleaned");
            return BTreeMap::new();
        }
    };
    String::from_utf8_lossy(&payload)
        .lines()
        .filter_map(|line| {
            let (key, offset) = line.rsplit_once(' ')?;
            Some((key.to_string(), offset.parse::<i64>().ok()?))
        })
        .collect()
}

fn write_all(path: &Path, entries: &BTreeMap<String, i64>) -> io::Result<()> {
    if let Some(meta) = path.parent() {
        std::fs::create_dir_all(meta)?;
    }
    let mut text = String::new();
    for (key, offset) in entries {
        text.push_str(&format!("{key} {offset}\n"));
    }
    write_checksummed(path, text.as_bytes())
}

/// The partition's first dirty offset; 0 when it was never cleaned.
pub fn read_first_dirty(partition_dir: &Path) -> i64 {
    read_all(&checkpoint_path(partition_dir))
        .get(&key_of(partition_dir))
        .copied()
        .unwrap_or(0)
}

/// Raises the partition's first dirty offset to `offset` (never lowers it),
/// durably. Returns the value afterwards.
pub fn raise_first_dirty(partition_dir: &Path, offset: i64) -> io::Result<i64> {
    let _update = lock(&UPDATE);
    let path = checkpoint_path(partition_dir);
    let mut entries = read_all(&path);
    let key = key_of(partition_dir);
    let current = entries.get(&key).copied().unwrap_or(0);
    if offset <= current {
        return Ok(current);
    }
    entries.insert(key, offset);
    write_all(&path, &entries)?;
    Ok(offset)
}

/// Forgets the partition (it is being deleted): a partition created later
/// under the same name must not inherit the old one's gap allowance.
pub fn forget(partition_dir: &Path) -> io::Result<()> {
    let _update = lock(&UPDATE);
    let path = checkpoint_path(partition_dir);
    let mut entries = read_all(&path);
    if entries.remove(&key_of(partition_dir)).is_some() {
        write_all(&path, &entries)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_raises_when_read_back_then_only_grows_per_partition() {
        let data = tempfile::tempdir().unwrap();
        let a = data.path().join("orders-0");
        let b = data.path().join("my-topic-12");
        assert_eq!(read_first_dirty(&a), 0);
        assert_eq!(raise_first_dirty(&a, 100).unwrap(), 100);
        assert_eq!(raise_first_dirty(&a, 50).unwrap(), 100);
        assert_eq!(raise_first_dirty(&b, 7).unwrap(), 7);
        assert_eq!(read_first_dirty(&a), 100);
        assert_eq!(read_first_dirty(&b), 7);
        forget(&a).unwrap();
        assert_eq!(read_first_dirty(&a), 0);
        assert_eq!(read_first_dirty(&b), 7);
    }
}
