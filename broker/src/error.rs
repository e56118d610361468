//! Errors of the storage layer. They know nothing of the Kafka protocol:
//! `protocol/errors.rs` maps them to error codes at the protocol edge.
//!
//! Every variant carries the context an operator needs (which partition, which
//! file, which byte) and keeps the underlying `io::Error` as its source.

use std::io;
use std::path::PathBuf;

use crate::storage::batch::BatchDefect;

/// Errors of the storage engine (segments, indexes, partition logs, recovery).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A file operation failed. The partition that saw it is poisoned.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`append to`, `fdatasync`, `reserve space in`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// An earlier write, sync or reservation failed; appends are refused until the
    /// partition is reopened (which runs recovery). fsync is never retried.
    #[error("partition {partition} refuses writes after an I/O error ({cause}); restart the broker to recover it")]
    Poisoned {
        /// `topic-partition` directory name.
        partition: String,
        /// The error that poisoned it.
        cause: String,
    },
    /// Recovery found damage it must not repair by itself: invalid bytes inside a
    /// sealed segment or a hole between segments. The files are left untouched.
    #[error("partition {partition} is fenced: {file} at byte {position}: {reason}; inspect with `sediment log verify`")]
    Fenced {
        /// `topic-partition` directory name.
        partition: String,
        /// The damaged file.
        file: PathBuf,
        /// Byte position of the damage in that file.
        position: u64,
        /// What is wrong there.
        reason: String,
    },
    /// The partition could not be opened because of an I/O error (a full or
    /// failing disk), not because its data is damaged. It is opened again at
    /// the next start.
    #[error("partition {partition} is offline after an I/O error: {reason}")]
    Offline {
        /// `topic-partition` directory name.
        partition: String,
        /// The error that kept it from opening.
        reason: String,
    },
    /// A batch handed to `append` is invalid; nothing from that call was appended.
    #[error("invalid batch at byte {position} of the append: {defect}")]
    InvalidBatch {
        /// Byte position within the appended buffer.
        position: usize,
        /// What is wrong with it.
        defect: BatchDefect,
    },
    /// A CreateTime batch carries a timestamp further from the broker's clock
    /// than the topic allows; nothing from that call was appended.
    #[error("timestamp {timestamp} of the batch at byte {position} of the append is outside [{earliest}, {latest}] (broker clock {now_ms}; message.timestamp.before.max.ms={before_max_ms}, message.timestamp.after.max.ms={after_max_ms})")]
    TimestampOutOfRange {
        /// Byte position of the batch within the appended buffer.
        position: usize,
        /// The offending timestamp.
        timestamp: i64,
        /// The broker's clock at the check, ms since the epoch.
        now_ms: i64,
        /// Earliest timestamp accepted.
        earliest: i64,
        /// Latest timestamp accepted.
        latest: i64,
        /// The topic's `message.timestamp.before.max.ms`.
        before_max_ms: i64,
        /// The topic's `message.timestamp.after.max.ms`.
        after_max_ms: i64,
    },
    /// `append` was given no bytes.
    #[error("append of an empty record set")]
    EmptyAppend,
    /// A record failed a check of its contents: on a compacted partition
    /// every record needs a key (the cleaner keeps the latest record *per
    /// key*), so a keyless one, or a compressed batch whose records cannot
    /// be read to check, is refused; nothing from that call was appended.
    #[error("invalid record in the batch at byte {position} of the append: {reason}")]
    InvalidRecord {
        /// Byte position of the batch within the appended buffer.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// A read asked for an offset outside `[log_start, high_watermark]`.
    #[error("offset {offset} is out of range: the log holds [{log_start}, {high_watermark})")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: i64,
        /// First offset in the log.
        log_start: i64,
        /// Offset after the last readable record.
        high_watermark: i64,
    },
    /// A sealed segment was replaced by the cleaner while it was being
    /// opened; the read is retried against the current segments.
    #[error("segment {file} was replaced by the log cleaner")]
    SegmentReplaced {
        /// The replaced segment's `.log`.
        file: PathBuf,
    },
    /// An idempotent batch's first sequence does not follow the last one
    /// stored for its producer and epoch (a gap, or a new epoch not starting
    /// at 0); nothing from that call was appended.
    #[error("out-of-order sequence for producer {producer_id} epoch {epoch}: the batch at byte {position} of the append starts at sequence {first_seq}, the last stored is {last_seq}")]
    OutOfOrderSequence {
        /// Byte position of the batch within the appended buffer.
        position: usize,
        /// The batch's producer id.
        producer_id: i64,
        /// The batch's producer epoch.
        epoch: i16,
        /// The batch's first sequence.
        first_seq: i32,
        /// The last sequence stored for that producer and epoch, -1 if none.
        last_seq: i32,
    },
    /// An idempotent batch carries an epoch older than its producer's
    /// current one (a fenced, zombie producer); nothing from that call was
    /// appended.
    #[error("producer {producer_id}: epoch {epoch} of the batch at byte {position} of the append is older than the current epoch {current_epoch}")]
    InvalidProducerEpoch {
        /// Byte position of the batch within the appended buffer.
        position: usize,
        /// The batch's producer id.
        producer_id: i64,
        /// The batch's producer epoch.
        epoch: i16,
        /// The producer's current epoch in this partition.
        current_epoch: i16,
    },
    /// A producer with an open transaction in the partition wrote a batch
    /// outside it (Kafka's INVALID_TXN_STATE); nothing was appended.
    #[error("producer {producer_id} has an open transaction here: the batch at byte {position} of the append must be transactional")]
    InvalidTxnState {
        /// Byte position of the batch within the appended buffer.
        position: usize,
        /// The producer.
        producer_id: i64,
    },
    /// The log configuration is unusable.
    #[error("invalid log configuration: {0}")]
    Config(String),
}

impl StorageError {
    /// True when the error is the file system running out of space (ENOSPC,
    /// or a quota).
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            ),
            _ => false,
        }
    }

    /// Wraps an `io::Error` with what was being done and to which path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
