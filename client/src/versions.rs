//! Which version of each API the client speaks, and the choice of version
//! per connection (the highest one both sides support). Pure, no I/O.
//!
//! The client's ranges, and why each stops where it does:
//!
//! | API | versions | why |
//! |---|---|---|
//! | Produce | 3–9 | v3 is the first with record batches v2; v9 is flexible and carries per-record errors; v10+ only add fields we do not use, v13 addresses topics by id |
//! | Fetch | 4–12 | v4 is the first with record batches and the last stable offset; v13+ addresses topics by id, which needs an id cache we do not keep |
//! | ListOffsets | 1–7 | v1 drops the old offsets array; v7 adds max-timestamp lookup |
//! | Metadata | 1–12 | v1 is the first where a null topic list means "all" (v0 used an empty one); v12 is the last that names topics in requests the way we do |
//! | ApiVersions | 0–3 | v3 sends our software name; the broker answers v0 requests from anyone |
//! | CreateTopics | 2–7 | what Kafka 4 and Sediment accept |
//! | DeleteTopics | 1–6 | v6 names topics in a struct array, earlier versions in a string array |
//! | DescribeConfigs | 1–4 | v1 has config sources |
//! | DeleteRecords | 0–2 | every version the codec has |
//! | CreatePartitions | 0–3 | every version the codec has |
//! | IncrementalAlterConfigs | 0–1 | every version the codec has |
//! | DescribeLogDirs | 1–4 | every version the codec has (v1 is the first with partition sizes) |
//! | OffsetDelete | 0 | every version the codec has |
//! | DescribeCluster | 0–1 | every version the codec has |
//! | FindCoordinator | 0–4 | v4 batches keys (`coordinator_keys`); earlier versions take one key |
//! | JoinGroup | 1–5 | v1 carries the rebalance timeout; v4+ may answer MEMBER_ID_REQUIRED; v6+ only add flexible encoding and echoed fields, and librdkafka (whose mock cluster advertises v6 but misreads it) stops at v5 too |
//! | SyncGroup | 0–3 | v4+ only add flexible encoding and echoed fields; librdkafka's mock cluster misreads v4 |
//! | Heartbeat | 0–4 | v4 is flexible |
//! | LeaveGroup | 0–2 | v3+ batch members for static membership, which this client does not use; librdkafka's mock cluster misreads them |
//! | OffsetCommit | 2–9 | v2 is the oldest the codec knows; v9 is the last before topic ids |
//! | OffsetFetch | 1–7 | v8+ batches groups, which a consumer does not need |
//! | DescribeGroups | 0–5 | for `sediment group describe` |
//! | ListGroups | 0–4 | v4 reports each group's state |
//! | DeleteGroups | 0–2 | every version the codec has |
//! | InitProducerId | 0–4 | v3 lets a transactional producer bump its own epoch (after an aborted transaction whose sequences are unknown) without fencing itself |
//! | AddPartitionsToTxn | 0–3 | v4+ batches transactions for brokers, which a producer does not need |
//! | AddOffsetsToTxn | 0–3 | every version the codec has |
//! | EndTxn | 0–3 | every version the codec has (v4+ only add epoch-bump fields of KIP-890) |
//! | TxnOffsetCommit | 0–3 | v3 carries the consumer's generation and member id (KIP-447); this client sends -1 and "" |
//! | SaslHandshake | 1 | v1 carries the exchange in SaslAuthenticate requests (KIP-152); v0's raw tokens outside Kafka framing are not spoken |
//! | SaslAuthenticate | 0–2 | every version the codec has (v1 adds the session lifetime, v2 is flexible) |
//! | DescribeAcls, CreateAcls, DeleteAcls | 1–3 | v1 carries the pattern type (v0 would silently make a PREFIXED binding or filter LITERAL); v2 is flexible, v3 adds the USER resource type |
//! | DescribeUserScramCredentials, AlterUserScramCredentials | 0 | every version the codec has |
//!
//! Every range lies within what our codec (`sediment-protocol`) can encode
//! and decode (checked by a test against `ApiKey::codec_versions`).

use std::collections::HashMap;

use sediment_protocol::messages::api_versions::ApiVersion;
use sediment_protocol::ApiKey;

use crate::error::{ClientError, Result};

/// The versions this client speaks, per API.
pub(crate) const CLIENT_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 1, 5),
    (ApiKey::SyncGroup, 0, 3),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 2),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
];

/// Short name of an API for messages (`"Produce"`).
pub(crate) fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::DescribeLogDirs => "DescribeLogDirs",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::AddPartitionsToTxn => "AddPartitionsToTxn",
        ApiKey::AddOffsetsToTxn => "AddOffsetsToTxn",
        ApiKey::EndTxn => "EndTxn",
        ApiKey::TxnOffsetCommit => "TxnOffsetCommit",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        ApiKey::DescribeAcls => "DescribeAcls",
        ApiKey::CreateAcls => "CreateAcls",
        ApiKey::DeleteAcls => "DeleteAcls",
        ApiKey::DescribeUserScramCredentials => "DescribeUserScramCredentials",
        ApiKey::AlterUserScramCredentials => "AlterUserScramCredentials",
        _ => "an unsupported API",
    }
}

/// The version chosen for each API on one connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct NegotiatedVersions {
    /// Broker-advertised ranges, by api key.
    broker: HashMap<i16, (i16, i16)>,
}

impl NegotiatedVersions {
    /// From the `api_keys` of an ApiVersions response.
    pub(crate) fn from_broker(api_keys: &[ApiVersion]) -> Self {
        Self {
            broker: api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect(),
        }
    }

    /// The highest version of `key` both sides support.
    pub(crate) fn version(&self, key: ApiKey, addr: &str) -> Result<i16> {
        let (client_min, client_max) = CLIENT_VERSIONS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, min, max)| (*min, *max))
            .unwrap_or((0, -1));
        let broker = self.broker.get(&(key as i16)).copied();
        let chosen = broker.and_then(|(broker_min, broker_max)| {
            let version = client_max.min(broker_max);
            (version >= client_min.max(broker_min)).then_some(version)
        });
        chosen.ok_or_else(|| ClientError::UnsupportedApi {
            addr: addr.to_string(),
            api: api_name(key),
            client_min,
            client_max,
            broker: broker
                .map(|(min, max)| format!("{min}-{max}"))
                .unwrap_or_else(|| "none".into()),
        })
    }

    /// `Produce v9, Fetch v12, …, CreateTopics unsupported` for logs.
    pub(crate) fn summary(&self, addr: &str) -> String {
        CLIENT_VERSIONS
            .iter()
            .map(|(key, _, _)| match self.version(*key, addr) {
                Ok(v) => format!("{} v{v}", api_name(*key)),
                Err(_) => format!("{} unsupported", api_name(*key)),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(ranges: &[(ApiKey, i16, i16)]) -> NegotiatedVersions {
        let keys: Vec<ApiVersion> = ranges
            .iter()
            .map(|(k, min, max)| {
                ApiVersion::default()
                    .with_api_key(*k as i16)
                    .with_min_version(*min)
                    .with_max_version(*max)
            })
            .collect();
        NegotiatedVersions::from_broker(&keys)
    }

    #[test]
    fn client_maxima_are_versions_the_codec_can_encode() {
        for (key, min, max) in CLIENT_VERSIONS {
            let codec = key.codec_versions();
            assert!(
                codec.is_some_and(|c| *min >= c.min && *max <= c.max),
                "{key:?} {min}-{max} vs {codec:?}"
            );
        }
    }

    #[test]
    fn given_overlapping_ranges_then_highest_common_version() {
        let v = broker(&[
            (ApiKey::Produce, 0, 11),
            (ApiKey::Fetch, 4, 17),
            (ApiKey::Metadata, 0, 5),
        ]);
        assert_eq!(v.version(ApiKey::Produce, "b").ok(), Some(9));
        assert_eq!(v.version(ApiKey::Fetch, "b").ok(), Some(12));
        assert_eq!(v.version(ApiKey::Metadata, "b").ok(), Some(5));
    }

    #[test]
    fn given_disjoint_or_missing_range_then_unsupported_api() {
        let v = broker(&[(ApiKey::Fetch, 13, 17)]);
        assert!(matches!(
            v.version(ApiKey::Fetch, "b"),
            Err(ClientError::UnsupportedApi { .. })
        ));
        assert!(matches!(
            v.version(ApiKey::CreateTopics, "b"),
            Err(ClientError::UnsupportedApi { broker, .. }) if broker == "none"
        ));
    }
}
