//! The one place where domain errors become Kafka error codes: storage,
//! group and topic errors know nothing of the protocol; handlers turn them
//! into codes here, at the protocol edge.

use sediment_protocol::ErrorCode;

use crate::broker::TopicOpError;
use crate::error::StorageError;
use crate::group::coordinator::CoordinatorError;
use crate::group::state::GroupError;
use crate::security::acl::{AclError, ResourceType};
use crate::security::credentials::CredentialError;
use crate::security::gatekeeper::Denied;
use crate::txn::coordinator::TxnError;
use crate::txn::state::TxnRefusal;

/// A refusal as a client sees it: a Kafka error code and a message for the
/// APIs that carry one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Kafka error code.
    pub code: i16,
    /// Human-readable reason (sent where the API has an error message field).
    pub message: String,
}

impl Refusal {
    /// A refusal with `error`'s code.
    pub fn new(error: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: error.code(),
            message: message.into(),
        }
    }

    /// The refusal a domain error maps to, with the error's own message.
    pub fn of<E: ToErrorCode + std::fmt::Display>(error: &E) -> Self {
        Self::new(error.error_code(), error.to_string())
    }
}

macro_rules! refusal_from {
    ($($error:ty),*) => {$(
        impl From<$error> for Refusal {
            fn from(error: $error) -> Self {
                Refusal::of(&error)
            }
        }
    )*};
}
refusal_from!(
    Denied,
    AclError,
    CredentialError,
    StorageError,
    TopicOpError,
    GroupError,
    CoordinatorError,
    TxnError
);

/// A domain error's Kafka error code.
pub trait ToErrorCode {
    /// The code a client should receive.
    fn error_code(&self) -> ErrorCode;

    /// The code as it goes on the wire.
    fn kafka_error_code(&self) -> i16 {
        self.error_code().code()
    }
}

impl ToErrorCode for Denied {
    fn error_code(&self) -> ErrorCode {
        match self.resource_type {
            ResourceType::Group => ErrorCode::GroupAuthorizationFailed,
            ResourceType::Cluster => ErrorCode::ClusterAuthorizationFailed,
            ResourceType::TransactionalId => ErrorCode::TransactionalIdAuthorizationFailed,
            ResourceType::DelegationToken => ErrorCode::DelegationTokenAuthorizationFailed,
            _ => ErrorCode::TopicAuthorizationFailed,
        }
    }
}

impl ToErrorCode for AclError {
    /// A binding or filter the model refuses is INVALID_REQUEST, as Kafka
    /// answers CreateAcls / DeleteAcls; the ACL file failing to be read or
    /// written is the broker's fault, not the request's.
    fn error_code(&self) -> ErrorCode {
        match self {
            AclError::UnknownValue { .. }
            | AclError::FilterOnlyValue { .. }
            | AclError::EmptyResourceName
            | AclError::InvalidClusterName { .. }
            | AclError::PrefixedWildcard
            | AclError::InvalidPrincipal { .. }
            | AclError::InvalidHost { .. }
            | AclError::UnknownOperation { .. } => ErrorCode::InvalidRequest,
            AclError::Read { .. } | AclError::Corrupt { .. } | AclError::Write { .. } => {
                ErrorCode::UnknownServerError
            }
        }
    }
}

impl ToErrorCode for CredentialError {
    /// A user name or credential the store refuses is UNACCEPTABLE_CREDENTIAL
    /// (Kafka's answer to an empty name or iterations out of bounds); the
    /// users file failing to be read or written is the broker's fault.
    fn error_code(&self) -> ErrorCode {
        match self {
            CredentialError::InvalidUserName { .. } | CredentialError::InvalidCredential { .. } => {
                ErrorCode::UnacceptableCredential
            }
            CredentialError::Read { .. }
            | CredentialError::Corrupt { .. }
            | CredentialError::UnsupportedVersion { .. }
            | CredentialError::Write { .. } => ErrorCode::UnknownServerError,
        }
    }
}

impl ToErrorCode for StorageError {
    fn error_code(&self) -> ErrorCode {
        match self {
            Self::Io { .. }
            | Self::Poisoned { .. }
            | Self::Fenced { .. }
            | Self::Offline { .. }
            | Self::Config(_) => ErrorCode::KafkaStorageError,
            Self::InvalidBatch { .. } | Self::EmptyAppend => ErrorCode::CorruptMessage,
            Self::TimestampOutOfRange { .. } => ErrorCode::InvalidTimestamp,
            Self::InvalidRecord { .. } => ErrorCode::InvalidRecord,
            Self::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            Self::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
            Self::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            Self::InvalidTxnState { .. } => ErrorCode::InvalidTxnState,
            // Storage errors are non-exhaustive; a new kind is a storage failure until mapped.
            #[allow(unreachable_patterns)]
            _ => ErrorCode::KafkaStorageError,
        }
    }
}

impl ToErrorCode for GroupError {
    fn error_code(&self) -> ErrorCode {
        match self {
            GroupError::InvalidGroupId => ErrorCode::InvalidGroupId,
            GroupError::MemberIdRequired(_) => ErrorCode::MemberIdRequired,
            GroupError::UnknownMemberId(_) => ErrorCode::UnknownMemberId,
            GroupError::IllegalGeneration { .. } => ErrorCode::IllegalGeneration,
            GroupError::RebalanceInProgress => ErrorCode::RebalanceInProgress,
            GroupError::InconsistentGroupProtocol(_) => ErrorCode::InconsistentGroupProtocol,
            GroupError::InvalidSessionTimeout { .. } => ErrorCode::InvalidSessionTimeout,
            GroupError::GroupMaxSizeReached(_) => ErrorCode::GroupMaxSizeReached,
            GroupError::CoordinatorNotAvailable(_) => ErrorCode::CoordinatorNotAvailable,
            GroupError::NonEmptyGroup => ErrorCode::NonEmptyGroup,
            GroupError::GroupIdNotFound => ErrorCode::GroupIdNotFound,
            GroupError::SubscribedToTopic(_) => ErrorCode::GroupSubscribedToTopic,
            GroupError::NotCoordinator => ErrorCode::NotCoordinator,
        }
    }
}

impl ToErrorCode for CoordinatorError {
    /// A store that cannot write and a stopped coordinator are both
    /// COORDINATOR_NOT_AVAILABLE: retriable, so a consumer retries its commit
    /// instead of giving it up.
    fn error_code(&self) -> ErrorCode {
        match self {
            CoordinatorError::Group(error) => error.error_code(),
            CoordinatorError::Storage(_) | CoordinatorError::Stopped => {
                ErrorCode::CoordinatorNotAvailable
            }
            CoordinatorError::Unauthorized(denied) => denied.error_code(),
        }
    }
}

impl ToErrorCode for TxnError {
    /// An unknown transactional id is INVALID_PRODUCER_ID_MAPPING, as Kafka
    /// answers; a storage failure is COORDINATOR_NOT_AVAILABLE, which
    /// clients retry (the decision, if any was made, is finished later).
    fn error_code(&self) -> ErrorCode {
        match self {
            TxnError::Refused(refusal) => match refusal {
                TxnRefusal::ProducerFenced { .. } => ErrorCode::ProducerFenced,
                TxnRefusal::InvalidProducerIdMapping(_) => ErrorCode::InvalidProducerIdMapping,
                TxnRefusal::ConcurrentTransactions => ErrorCode::ConcurrentTransactions,
                TxnRefusal::InvalidTxnState(_) => ErrorCode::InvalidTxnState,
                TxnRefusal::InvalidTransactionTimeout { .. } => {
                    ErrorCode::InvalidTransactionTimeout
                }
            },
            TxnError::UnknownTransactionalId(_) => ErrorCode::InvalidProducerIdMapping,
            TxnError::Storage(_) => ErrorCode::CoordinatorNotAvailable,
        }
    }
}

impl ToErrorCode for TopicOpError {
    fn error_code(&self) -> ErrorCode {
        match self {
            TopicOpError::UnknownTopicOrPartition(_) => ErrorCode::UnknownTopicOrPartition,
            TopicOpError::AlreadyExists(_) => ErrorCode::TopicAlreadyExists,
            TopicOpError::InvalidName(_) => ErrorCode::InvalidTopicException,
            TopicOpError::InvalidPartitions(_) => ErrorCode::InvalidPartitions,
            TopicOpError::InvalidConfig(_) => ErrorCode::InvalidConfig,
            TopicOpError::InvalidReplicaAssignment(_) => ErrorCode::InvalidReplicaAssignment,
            TopicOpError::Metadata(_) => ErrorCode::KafkaStorageError,
            TopicOpError::Storage(error) => error.error_code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_map_to_storage_codes_and_out_of_range() {
        let fenced = StorageError::Fenced {
            partition: "t-0".into(),
            file: "00000000000000000000.log".into(),
            position: 7,
            reason: "bad crc".into(),
        };
        assert_eq!(fenced.kafka_error_code(), 56);
        assert_eq!(StorageError::EmptyAppend.kafka_error_code(), 2);
        let out = StorageError::OffsetOutOfRange {
            offset: 9,
            log_start: 0,
            high_watermark: 3,
        };
        assert_eq!(out.kafka_error_code(), 1);
        let future = StorageError::TimestampOutOfRange {
            position: 0,
            timestamp: 7_200_000,
            now_ms: 0,
            earliest: i64::MIN,
            latest: 3_600_000,
            before_max_ms: i64::MAX,
            after_max_ms: 3_600_000,
        };
        assert_eq!(future.kafka_error_code(), 32, "INVALID_TIMESTAMP");
        let gap = StorageError::OutOfOrderSequence {
            position: 0,
            producer_id: 1,
            epoch: 0,
            first_seq: 7,
            last_seq: 3,
        };
        assert_eq!(gap.kafka_error_code(), 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");
        let fenced_epoch = StorageError::InvalidProducerEpoch {
            position: 0,
            producer_id: 1,
            epoch: 0,
            current_epoch: 1,
        };
        assert_eq!(
            fenced_epoch.kafka_error_code(),
            47,
            "INVALID_PRODUCER_EPOCH"
        );
        assert_eq!(
            TopicOpError::Storage(out).error_code(),
            ErrorCode::OffsetOutOfRange
        );
    }

    #[test]
    fn a_refusal_carries_the_errors_message() {
        let refusal = Refusal::of(&TopicOpError::AlreadyExists(
            "topic t already exists".into(),
        ));
        assert_eq!(refusal.code, ErrorCode::TopicAlreadyExists.code());
        assert_eq!(refusal.message, "topic t already exists");
    }
}
