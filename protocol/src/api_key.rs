//! Every API key Kafka defines, by number and name, and what the codec knows
//! of each: its versions and first flexible version, which decide the
//! request and response header versions.

use crate::messages::CODEC_APIS;
use crate::VersionRange;

macro_rules! api_keys {
    ($($name:ident = $key:literal,)*) => {
        /// A Kafka API, as numbered in the protocol.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        #[repr(i16)]
        pub enum ApiKey {
            $(
                #[doc = concat!("API key ", stringify!($key), ".")]
                $name = $key,
            )*
        }

        impl ApiKey {
            /// Every key, in numeric order.
            pub const ALL: &'static [ApiKey] = &[$(ApiKey::$name),*];

            /// The API's name as Kafka spells it (`"Produce"`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(ApiKey::$name => stringify!($name),)*
                }
            }
        }

        impl TryFrom<i16> for ApiKey {
            type Error = i16;

            /// The key with this number, or the number back if Kafka defines none.
            fn try_from(key: i16) -> Result<Self, i16> {
                match key {
                    $($key => Ok(ApiKey::$name),)*
                    other => Err(other),
                }
            }
        }
    };
}

api_keys! {
    Produce = 0,
    Fetch = 1,
    ListOffsets = 2,
    Metadata = 3,
    LeaderAndIsr = 4,
    StopReplica = 5,
    UpdateMetadata = 6,
    ControlledShutdown = 7,
    OffsetCommit = 8,
    OffsetFetch = 9,
    FindCoordinator = 10,
    JoinGroup = 11,
    Heartbeat = 12,
    LeaveGroup = 13,
    SyncGroup = 14,
    DescribeGroups = 15,
    ListGroups = 16,
    SaslHandshake = 17,
    ApiVersions = 18,
    CreateTopics = 19,
    DeleteTopics = 20,
    DeleteRecords = 21,
    InitProducerId = 22,
    OffsetForLeaderEpoch = 23,
    AddPartitionsToTxn = 24,
    AddOffsetsToTxn = 25,
    EndTxn = 26,
    WriteTxnMarkers = 27,
    TxnOffsetCommit = 28,
    DescribeAcls = 29,
    CreateAcls = 30,
    DeleteAcls = 31,
    DescribeConfigs = 32,
    AlterConfigs = 33,
    AlterReplicaLogDirs = 34,
    DescribeLogDirs = 35,
    SaslAuthenticate = 36,
    CreatePartitions = 37,
    CreateDelegationToken = 38,
    RenewDelegationToken = 39,
    ExpireDelegationToken = 40,
    DescribeDelegationToken = 41,
    DeleteGroups = 42,
    ElectLeaders = 43,
    IncrementalAlterConfigs = 44,
    AlterPartitionReassignments = 45,
    ListPartitionReassignments = 46,
    OffsetDelete = 47,
    DescribeClientQuotas = 48,
    AlterClientQuotas = 49,
    DescribeUserScramCredentials = 50,
    AlterUserScramCredentials = 51,
    Vote = 52,
    BeginQuorumEpoch = 53,
    EndQuorumEpoch = 54,
    DescribeQuorum = 55,
    AlterPartition = 56,
    UpdateFeatures = 57,
    Envelope = 58,
    FetchSnapshot = 59,
    DescribeCluster = 60,
    DescribeProducers = 61,
    BrokerRegistration = 62,
    BrokerHeartbeat = 63,
    UnregisterBroker = 64,
    DescribeTransactions = 65,
    ListTransactions = 66,
    AllocateProducerIds = 67,
    ConsumerGroupHeartbeat = 68,
    ConsumerGroupDescribe = 69,
    ControllerRegistration = 70,
    GetTelemetrySubscriptions = 71,
    PushTelemetry = 72,
    AssignReplicasToDirs = 73,
    ListConfigResources = 74,
    DescribeTopicPartitions = 75,
    ShareGroupHeartbeat = 76,
    ShareGroupDescribe = 77,
    ShareFetch = 78,
    ShareAcknowledge = 79,
    AddRaftVoter = 80,
    RemoveRaftVoter = 81,
    UpdateRaftVoter = 82,
    InitializeShareGroupState = 83,
    ReadShareGroupState = 84,
    WriteShareGroupState = 85,
    DeleteShareGroupState = 86,
    ReadShareGroupStateSummary = 87,
    StreamsGroupHeartbeat = 88,
    StreamsGroupDescribe = 89,
    DescribeShareGroupOffsets = 90,
    AlterShareGroupOffsets = 91,
    DeleteShareGroupOffsets = 92,
}

impl ApiKey {
    /// The versions the codec encodes and decodes, if it knows this API.
    pub fn codec_versions(self) -> Option<VersionRange> {
        CODEC_APIS
            .iter()
            .find(|(key, _, _)| *key == self)
            .map(|(_, range, _)| *range)
    }

    /// True when `version` of this API uses the flexible (compact) encoding.
    pub fn is_flexible(self, version: i16) -> bool {
        CODEC_APIS
            .iter()
            .find(|(key, _, _)| *key == self)
            .and_then(|(_, _, flexible)| *flexible)
            .is_some_and(|first| version >= first)
    }

    /// The request header version for `version`: 2 for flexible versions,
    /// else 1.
    pub fn request_header_version(self, version: i16) -> i16 {
        if self.is_flexible(version) {
            2
        } else {
            1
        }
    }

    /// The response header version for `version`: 1 for flexible versions,
    /// else 0, and always 0 for ApiVersions (a client must be able to read
    /// it before it knows what the broker speaks).
    pub fn response_header_version(self, version: i16) -> i16 {
        if self != ApiKey::ApiVersions && self.is_flexible(version) {
            1
        } else {
            0
        }
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_numbers() {
        for key in ApiKey::ALL {
            assert_eq!(ApiKey::try_from(*key as i16), Ok(*key));
        }
        assert_eq!(ApiKey::try_from(-1), Err(-1));
        assert_eq!(ApiKey::try_from(10_000), Err(10_000));
    }

    #[test]
    fn api_versions_responses_always_have_a_v0_header() {
        assert_eq!(ApiKey::ApiVersions.response_header_version(4), 0);
        assert_eq!(ApiKey::ApiVersions.request_header_version(4), 2);
        assert_eq!(ApiKey::Metadata.response_header_version(9), 1);
        assert_eq!(ApiKey::Metadata.response_header_version(8), 0);
    }

    #[test]
    fn given_the_admin_apis_of_design_section_4_then_the_codec_knows_them_at_these_versions() {
        // (key, lowest, highest, first flexible)
        let expected = [
            (ApiKey::DeleteRecords, 0, 2, Some(2)),
            (ApiKey::AlterConfigs, 0, 2, Some(2)),
            (ApiKey::DescribeLogDirs, 1, 4, Some(2)),
            (ApiKey::CreatePartitions, 0, 3, Some(2)),
            (ApiKey::IncrementalAlterConfigs, 0, 1, Some(1)),
            (ApiKey::OffsetDelete, 0, 0, None),
            (ApiKey::DescribeCluster, 0, 1, Some(0)),
        ];
        assert_codec_versions(&expected);
    }

    #[test]
    fn given_the_transaction_apis_of_design_section_4_then_the_codec_knows_the_client_versions() {
        // (key, lowest, highest, first flexible). AddPartitionsToTxn stops at
        // v3: v4+ batches transactions and is sent by brokers, not clients.
        let expected = [
            (ApiKey::AddPartitionsToTxn, 0, 3, Some(3)),
            (ApiKey::AddOffsetsToTxn, 0, 3, Some(3)),
            (ApiKey::EndTxn, 0, 3, Some(3)),
            (ApiKey::TxnOffsetCommit, 0, 3, Some(3)),
            (ApiKey::DescribeTransactions, 0, 0, Some(0)),
            (ApiKey::ListTransactions, 0, 1, Some(0)),
        ];
        assert_codec_versions(&expected);
    }

    #[test]
    fn given_describe_client_quotas_then_the_codec_knows_v0_and_the_flexible_v1() {
        assert_codec_versions(&[(ApiKey::DescribeClientQuotas, 0, 1, Some(1))]);
    }

    /// Checks the codec's range and flexible versions of each `(key, lowest,
    /// highest, first flexible)`.
    fn assert_codec_versions(expected: &[(ApiKey, i16, i16, Option<i16>)]) {
        for &(key, min, max, flexible) in expected {
            assert_eq!(
                key.codec_versions(),
                Some(VersionRange { min, max }),
                "{key:?}"
            );
            for version in min..=max {
                let is_flexible = flexible.is_some_and(|first| version >= first);
                assert_eq!(key.is_flexible(version), is_flexible, "{key:?} v{version}");
            }
        }
    }
}
