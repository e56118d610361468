//! Errors, one `thiserror` enum per layer, and the one place that maps them
//! to Kafka error codes.
//!
//! Every variant carries the context an operator needs (which partition, which
//! file, which byte) and keeps the underlying `io::Error` as its source.

use std::io;
use std::path::PathBuf;

use crate::storage::batch::BatchDefect;

/// Kafka error codes the storage layer can cause.
pub mod kafka_code {
    /// The requested offset is outside the log.
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    /// A batch failed its CRC or structure check.
    pub const CORRUPT_MESSAGE: i16 = 2;
    /// The partition's storage failed or is fenced.
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
}

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
    /// A batch handed to `append` is invalid; nothing from that call was appended.
    #[error("invalid batch at byte {position} of the append: {defect}")]
    InvalidBatch {
        /// Byte position within the appended buffer.
        position: usize,
        /// What is wrong with it.
        defect: BatchDefect,
    },
    /// `append` was given no bytes.
    #[error("append of an empty record set")]
    EmptyAppend,
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
    /// The log configuration is unusable.
    #[error("invalid log configuration: {0}")]
    Config(String),
}

impl StorageError {
    /// Wraps an `io::Error` with what was being done and to which path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The Kafka error code a client should receive for this error.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            Self::Io { .. } | Self::Poisoned { .. } | Self::Fenced { .. } => {
                kafka_code::KAFKA_STORAGE_ERROR
            }
            Self::InvalidBatch { .. } | Self::EmptyAppend => kafka_code::CORRUPT_MESSAGE,
            Self::OffsetOutOfRange { .. } => kafka_code::OFFSET_OUT_OF_RANGE,
            Self::Config(_) => kafka_code::KAFKA_STORAGE_ERROR,
        }
    }
}

impl crate::group::state::GroupError {
    /// The Kafka error code a client should receive for this refusal.
    pub fn kafka_error_code(&self) -> i16 {
        use crate::group::state::GroupError;
        use kafka_protocol::ResponseError;
        let error = match self {
            GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
            GroupError::MemberIdRequired(_) => ResponseError::MemberIdRequired,
            GroupError::UnknownMemberId(_) => ResponseError::UnknownMemberId,
            GroupError::IllegalGeneration { .. } => ResponseError::IllegalGeneration,
            GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
            GroupError::InconsistentGroupProtocol(_) => ResponseError::InconsistentGroupProtocol,
            GroupError::InvalidSessionTimeout { .. } => ResponseError::InvalidSessionTimeout,
            GroupError::GroupMaxSizeReached(_) => ResponseError::GroupMaxSizeReached,
            GroupError::CoordinatorNotAvailable(_) => ResponseError::CoordinatorNotAvailable,
            GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
            GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
            GroupError::NotCoordinator => ResponseError::NotCoordinator,
        };
        error.code()
    }
}

impl crate::group::coordinator::CoordinatorError {
    /// The Kafka error code a client should receive. A store that cannot
    /// write and a stopped coordinator are both COORDINATOR_NOT_AVAILABLE:
    /// retriable, so a consumer retries its commit instead of giving it up.
    pub fn kafka_error_code(&self) -> i16 {
        use crate::group::coordinator::CoordinatorError;
        match self {
            CoordinatorError::Group(error) => error.kafka_error_code(),
            CoordinatorError::Storage(_) | CoordinatorError::Stopped => {
                kafka_protocol::ResponseError::CoordinatorNotAvailable.code()
            }
        }
    }
}
