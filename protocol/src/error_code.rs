//! Kafka's error codes: the one place the codec names them. Domain errors of
//! the broker and client map to these at the protocol edge, nowhere else.

macro_rules! error_codes {
    ($($name:ident = $code:literal, $retriable:literal, $what:literal;)*) => {
        /// An error code of the Kafka protocol.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $(
                #[doc = $what]
                $name,
            )*
        }

        impl ErrorCode {
            /// The code on the wire.
            pub const fn code(self) -> i16 {
                match self {
                    $(ErrorCode::$name => $code,)*
                }
            }

            /// The error with this code; `None` for 0 (no error) and codes Kafka does not define.
            pub const fn try_from_code(code: i16) -> Option<Self> {
                match code {
                    $($code => Some(ErrorCode::$name),)*
                    _ => None,
                }
            }

            /// True when retrying the same request may succeed.
            pub const fn is_retriable(self) -> bool {
                match self {
                    $(ErrorCode::$name => $retriable,)*
                }
            }

            /// What the code means, in a few words.
            pub const fn description(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $what,)*
                }
            }
        }
    };
}

error_codes! {
    UnknownServerError = -1, false, "The server experienced an unexpected error.";
    OffsetOutOfRange = 1, false, "The requested offset is outside the range of offsets the server holds for this partition.";
    CorruptMessage = 2, true, "A message failed its CRC check, is too short, or is otherwise corrupt.";
    UnknownTopicOrPartition = 3, true, "This server does not host this topic-partition.";
    InvalidFetchSize = 4, false, "The requested fetch size is invalid.";
    LeaderNotAvailable = 5, true, "There is no leader for this topic-partition right now.";
    NotLeaderOrFollower = 6, true, "This server is not the leader or a follower for that topic-partition.";
    RequestTimedOut = 7, true, "The request timed out.";
    BrokerNotAvailable = 8, false, "The broker is not available.";
    ReplicaNotAvailable = 9, true, "The replica is not available for the requested topic-partition.";
    MessageTooLarge = 10, false, "The request included a message larger than the server accepts.";
    StaleControllerEpoch = 11, false, "The controller moved to another broker.";
    OffsetMetadataTooLarge = 12, false, "The metadata field of the offset request was too large.";
    NetworkException = 13, true, "The server disconnected before a response was received.";
    CoordinatorLoadInProgress = 14, true, "The coordinator is loading and cannot serve requests yet.";
    CoordinatorNotAvailable = 15, true, "The coordinator is not available.";
    NotCoordinator = 16, true, "This is not the correct coordinator.";
    InvalidTopicException = 17, false, "The request names an invalid topic.";
    RecordListTooLarge = 18, false, "A batch in the request is larger than the maximum segment size.";
    NotEnoughReplicas = 19, true, "Fewer in-sync replicas than required.";
    NotEnoughReplicasAfterAppend = 20, true, "Written to fewer in-sync replicas than required.";
    InvalidRequiredAcks = 21, false, "The produce request asked for an invalid number of acknowledgements.";
    IllegalGeneration = 22, false, "The generation id is not the current one.";
    InconsistentGroupProtocol = 23, false, "The group member's protocol type or protocols do not match the group's.";
    InvalidGroupId = 24, false, "The group id is invalid.";
    UnknownMemberId = 25, false, "The coordinator does not know this member.";
    InvalidSessionTimeout = 26, false, "The session timeout is outside the allowed range.";
    RebalanceInProgress = 27, false, "The group is rebalancing, so a rejoin is needed.";
    InvalidCommitOffsetSize = 28, false, "The committing offset data size is not valid.";
    TopicAuthorizationFailed = 29, false, "Topic authorization failed.";
    GroupAuthorizationFailed = 30, false, "Group authorization failed.";
    ClusterAuthorizationFailed = 31, false, "Cluster authorization failed.";
    InvalidTimestamp = 32, false, "The timestamp of the message is out of the acceptable range.";
    UnsupportedSaslMechanism = 33, false, "The broker does not support the requested SASL mechanism.";
    IllegalSaslState = 34, false, "The request is not valid in the current SASL state.";
    UnsupportedVersion = 35, false, "The version of the API is not supported.";
    TopicAlreadyExists = 36, false, "The topic already exists.";
    InvalidPartitions = 37, false, "The number of partitions is invalid.";
    InvalidReplicationFactor = 38, false, "The replication factor is invalid.";
    InvalidReplicaAssignment = 39, false, "The replica assignment is invalid.";
    InvalidConfig = 40, false, "The configuration is invalid.";
    NotController = 41, true, "This is not the correct controller for this cluster.";
    InvalidRequest = 42, false, "The request is malformed or not valid for this server.";
    UnsupportedForMessageFormat = 43, false, "The message format version on the broker does not support the request.";
    PolicyViolation = 44, false, "The request parameters do not satisfy the configured policy.";
    OutOfOrderSequenceNumber = 45, false, "The broker received an out of order sequence number.";
    DuplicateSequenceNumber = 46, false, "The broker received a duplicate sequence number.";
    InvalidProducerEpoch = 47, false, "The producer's epoch is older than the broker's (or the producer was fenced).";
    InvalidTxnState = 48, false, "The producer attempted a transactional operation in an invalid state.";
    InvalidProducerIdMapping = 49, false, "The producer id does not match the transactional id.";
    InvalidTransactionTimeout = 50, false, "The transaction timeout is larger than the broker allows.";
    ConcurrentTransactions = 51, true, "Another transactional operation for this producer is in progress.";
    TransactionCoordinatorFenced = 52, false, "The transaction coordinator is no longer the current one.";
    TransactionalIdAuthorizationFailed = 53, false, "Transactional id authorization failed.";
    SecurityDisabled = 54, false, "Security features are disabled.";
    OperationNotAttempted = 55, false, "The broker did not attempt this operation.";
    KafkaStorageError = 56, true, "Disk error when trying to access the log file on disk.";
    LogDirNotFound = 57, false, "The log directory is not found.";
    SaslAuthenticationFailed = 58, false, "SASL authentication failed.";
    UnknownProducerId = 59, false, "The broker has no state for this producer id.";
    ReassignmentInProgress = 60, false, "A partition reassignment is in progress.";
    DelegationTokenAuthDisabled = 61, false, "Delegation token authentication is disabled.";
    DelegationTokenNotFound = 62, false, "The delegation token is not found.";
    DelegationTokenOwnerMismatch = 63, false, "The delegation token's owner does not match.";
    DelegationTokenRequestNotAllowed = 64, false, "Delegation token requests are not allowed on this channel.";
    DelegationTokenAuthorizationFailed = 65, false, "Delegation token authorization failed.";
    DelegationTokenExpired = 66, false, "The delegation token has expired.";
    InvalidPrincipalType = 67, false, "The principal type is not supported.";
    NonEmptyGroup = 68, false, "The group is not empty.";
    GroupIdNotFound = 69, false, "The group id does not exist.";
    FetchSessionIdNotFound = 70, true, "The fetch session id was not found.";
    InvalidFetchSessionEpoch = 71, true, "The fetch session epoch is invalid.";
    ListenerNotFound = 72, true, "No matching listener on the leader broker.";
    TopicDeletionDisabled = 73, false, "Topic deletion is disabled.";
    FencedLeaderEpoch = 74, true, "The leader epoch in the request is older than the broker's.";
    UnknownLeaderEpoch = 75, true, "The leader epoch in the request is newer than the broker's.";
    UnsupportedCompressionType = 76, false, "The requesting client does not support the compression type of the topic.";
    StaleBrokerEpoch = 77, false, "The broker epoch has changed.";
    OffsetNotAvailable = 78, true, "The leader high watermark has not caught up yet.";
    MemberIdRequired = 79, false, "The group member needs a valid member id to enter the group.";
    PreferredLeaderNotAvailable = 80, true, "The preferred leader was not available.";
    GroupMaxSizeReached = 81, false, "The group has reached its maximum size.";
    FencedInstanceId = 82, false, "A newer member with the same group instance id has joined.";
    EligibleLeadersNotAvailable = 83, true, "Eligible topic partition leaders are not available.";
    ElectionNotNeeded = 84, true, "Leader election not needed for the topic partition.";
    NoReassignmentInProgress = 85, false, "No partition reassignment is in progress.";
    GroupSubscribedToTopic = 86, false, "The group is subscribed to the topic, so its offsets cannot be deleted.";
    InvalidRecord = 87, false, "The record failed the broker's validation and was refused.";
    UnstableOffsetCommit = 88, true, "There are unstable offsets that need to be cleared.";
    ThrottlingQuotaExceeded = 89, true, "The throttling quota has been exceeded.";
    ProducerFenced = 90, false, "A newer producer with the same transactional id has fenced this one.";
    ResourceNotFound = 91, false, "A request illegally referred to a resource that does not exist.";
    DuplicateResource = 92, false, "A request illegally referred to the same resource twice.";
    UnacceptableCredential = 93, false, "The requested credential does not meet the criteria for acceptability.";
    InconsistentVoterSet = 94, false, "The voter sets of the leader and the request do not match.";
    InvalidUpdateVersion = 95, false, "The given update version was invalid.";
    FeatureUpdateFailed = 96, false, "Unable to update finalized features due to an unexpected server error.";
    PrincipalDeserializationFailure = 97, false, "The forwarded principal could not be deserialized.";
    SnapshotNotFound = 98, false, "The requested snapshot was not found.";
    PositionOutOfRange = 99, false, "The requested position is not greater than or equal to zero and less than the size of the snapshot.";
    UnknownTopicId = 100, true, "This server does not host this topic id.";
    DuplicateBrokerRegistration = 101, false, "This broker id is already in use.";
    BrokerIdNotRegistered = 102, false, "The given broker id was not registered.";
    InconsistentTopicId = 103, true, "The log's topic id does not match the topic id in the request.";
    InconsistentClusterId = 104, false, "The cluster id in the request does not match the server's.";
    TransactionalIdNotFound = 105, false, "The transactional id could not be found.";
    FetchSessionTopicIdError = 106, true, "The fetch session encountered inconsistent topic id usage.";
    IneligibleReplica = 107, false, "The new ISR contains at least one ineligible replica.";
    NewLeaderElected = 108, false, "The AlterPartition request succeeded but a new leader was elected.";
    OffsetMovedToTieredStorage = 109, false, "The requested offset is moved to tiered storage.";
    FencedMemberEpoch = 110, false, "The member epoch is fenced by the group coordinator.";
    UnreleasedInstanceId = 111, false, "The instance id is still used by another member.";
    UnsupportedAssignor = 112, false, "The assignor or its version range is not supported by the group.";
    StaleMemberEpoch = 113, false, "The member epoch is stale.";
    MismatchedEndpointType = 114, false, "The request was sent to an endpoint of the wrong type.";
    UnsupportedEndpointType = 115, false, "This endpoint type is not supported yet.";
    UnknownControllerId = 116, false, "This controller id is not known.";
    UnknownSubscriptionId = 117, false, "The client sent a push telemetry request with an invalid or outdated subscription id.";
    TelemetryTooLarge = 118, false, "The client sent a push telemetry request larger than the broker accepts.";
    InvalidRegistration = 119, false, "The controller refused the broker registration.";
    TransactionAbortable = 120, false, "The server hit an error the transactional producer can abort from.";
    InvalidRecordState = 121, false, "The record state is invalid.";
    ShareSessionNotFound = 122, true, "The share session was not found.";
    InvalidShareSessionEpoch = 123, true, "The share session epoch is invalid.";
    FencedStateEpoch = 124, false, "The share coordinator rejected the request because the state epoch did not match.";
    InvalidVoterKey = 125, false, "The voter key does not match the receiving replica's key.";
    DuplicateVoter = 126, false, "The voter is already part of the set of voters.";
    VoterNotFound = 127, false, "The voter is not part of the set of voters.";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({}): {}", self, self.code(), self.description())
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_zero_is_no_error() {
        assert_eq!(ErrorCode::try_from_code(0), None);
        for code in -1..=127 {
            if let Some(e) = ErrorCode::try_from_code(code) {
                assert_eq!(e.code(), code);
            }
        }
        assert_eq!(ErrorCode::KafkaStorageError.code(), 56);
        assert!(ErrorCode::NotCoordinator.is_retriable());
        assert!(!ErrorCode::MessageTooLarge.is_retriable());
    }
}
