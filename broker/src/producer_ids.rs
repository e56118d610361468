//! Producer ids for InitProducerId, never handed out twice, even across
//! restarts and kill -9 (a reused id would inherit another producer's
//! sequences in every partition's producer state).
//!
//! Invariant: every id handed out is below the block end persisted in
//! `DATA/meta/producer-id-block` (checksummed, written atomically: temp
//! file, fdatasync, rename, directory fsync). Ids are reserved in blocks of
//! [`BLOCK_SIZE`], and a block's end is durable before its first id is
//! handed out. On a crash the next run starts at the persisted end: up to a
//! block of ids is skipped, none is reused.
//!
//! Without the file (a new data directory, or one an older version wrote)
//! ids start from the clock × 1000, above what older versions handed out.
//! A damaged or unreadable file is logged and treated the same way: the
//! clock × 1000 has moved past every block reserved before unless more than
//! a thousand ids were handed out per millisecond of uptime, so the broker
//! keeps starting (a bad file never stops it) at the cost of that bound.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::basics::lock;
use crate::error::StorageError;
use crate::storage::checkpoint::{read_checksummed, write_checksummed};

/// File in `DATA/meta/` holding the end of the last reserved block.
pub const PRODUCER_ID_BLOCK_FILE: &str = "producer-id-block";

/// Ids reserved per write of [`PRODUCER_ID_BLOCK_FILE`].
pub const BLOCK_SIZE: i64 = 1000;

/// The next id and the end of the reserved block.
struct Block {
    next: i64,
    end: i64,
}

/// Hands out producer ids. See the module docs.
pub struct ProducerIds {
    path: PathBuf,
    block: Mutex<Block>,
}

impl ProducerIds {
    /// Reads the reserved high-water mark in `meta_dir`; `now_ms` seeds the
    /// first id when there is none or it cannot be read (see the module docs).
    pub fn open(meta_dir: &Path, now_ms: i64) -> Result<Self, StorageError> {
        let path = meta_dir.join(PRODUCER_ID_BLOCK_FILE);
        let from_clock = now_ms.max(0).saturating_mul(1000);
        let start = match read_checksummed(&path) {
            Ok(None) => from_clock,
            Ok(Some(payload)) => match std::str::from_utf8(&payload)
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .filter(|end| *end >= 0)
            {
                Some(end) => end,
                None => {
                    tracing::error!(file = %path.display(), "the producer id block does not hold an id; continuing from the clock (ids stay unique unless more than 1000 were handed out per ms)");
                    from_clock
                }
            },
            Err(error) => {
                tracing::error!(file = %path.display(), error = %error, "cannot read the producer id block; continuing from the clock (ids stay unique unless more than 1000 were handed out per ms)");
                from_clock
            }
        };
        Ok(Self {
            path,
            block: Mutex::new(Block {
                next: start,
                end: start,
            }),
        })
    }

    /// A fresh id, reserving (durably) a new block when the current one is
    /// used up.
    pub fn next(&self) -> Result<i64, StorageError> {
        let mut block = lock(&self.block);
        if block.next >= block.end {
            let end = block.next.saturating_add(BLOCK_SIZE);
            write_checksummed(&self.path, format!("{end}\n").as_bytes())
                .map_err(|e| StorageError::io("write", &self.path, e))?;
            block.end = end;
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_ids_handed_out_when_reopened_then_every_new_id_is_above_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ids = ProducerIds::open(dir.path(), 5).expect("open");
        let first: Vec<i64> = (0..1500).map(|_| ids.next().expect("id")).collect();
        assert_eq!(first[0], 5000);
        drop(ids);
        let ids = ProducerIds::open(dir.path(), 0).expect("reopen");
        let next = ids.next().expect("id");
        assert!(first.iter().all(|id| *id < next));
    }

    #[test]
    fn given_a_damaged_block_file_when_opened_then_ids_continue_from_the_clock() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(PRODUCER_ID_BLOCK_FILE), b"garbage").expect("write");
        let ids =
            ProducerIds::open(dir.path(), 7).expect("a damaged file does not stop the broker");
        assert_eq!(ids.next().expect("id"), 7000);
        drop(ids);
        let ids = ProducerIds::open(dir.path(), 0).expect("reopen");
        assert!(
            ids.next().expect("id") > 7000,
            "the new block was persisted"
        );
    }
}
