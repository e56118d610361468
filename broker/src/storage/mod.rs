//! The storage engine: an append-only, segmented log per partition on
//! memory-mapped files.
//!
//! - [`batch`]: the RecordBatch v2 header view and the checks every stored batch passes.
//! - [`segment`]: one `.log` file, mapped for zero-copy reads, with its indexes.
//! - [`sealed`]: sealed segments, described in memory and opened on demand through a bounded cache.
//! - [`index`]: the sparse offset and time indexes, and the cadence that writes them.
//! - [`partition_log`]: segments, append, read, roll, high watermark, group commit, poison.
//! - [`recovery`]: what a restart trusts, cuts or fences (also `sediment log verify`).
//! - [`retention`]: which sealed segments retention deletes.
//! - [`cleaner`]: log compaction: keeps the latest record per key, swapping cleaned segments in crash-safely.
//! - [`cleaner_checkpoint`]: the per-partition first dirty offset (`meta/cleaner-offset-checkpoint`).
//! - [`keys`]: the keyed-records check compacted partitions apply on append.
//! - [`encode`]: encodes records the broker writes itself as one v2 batch.
//! - [`checkpoint`]: small files written atomically (temp → fdatasync → rename → fsync dir).
//! - [`log_manager`]: the data directory: partitions, clean-shutdown marker, recovery points.

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod cleaner_checkpoint;
pub mod encode;
pub mod flusher;
pub mod index;
pub mod internal_log;
pub mod keys;
pub mod log_manager;
pub mod partition_log;
pub mod producer_state;
pub mod recovery;
pub mod retention;
pub mod sealed;
pub mod segment;
pub mod txn_index;

#[cfg(any(test, feature = "test-support"))]
pub mod test_batches;

pub use partition_log::{AppendOutcome, PartitionLog, ReadOutcome};
pub use recovery::RecoveryHint;
