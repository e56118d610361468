//! The one table of what the broker advertises in ApiVersions (DESIGN §4),
//! and the versions it actually decodes.
//!
//! Produce is advertised from v0 because old librdkafka turns compression off
//! when a broker's minimum Produce version is above 0, but only v3+ (record
//! batches v2) is decoded: a client that really sends v0–v2 (message format
//! v0/v1, which no current client does against a broker advertising v11) has
//! its connection closed with a log line saying so. SaslHandshake is
//! advertised from v0, as Kafka does, but decoded from v1: after a v0
//! handshake the tokens travel raw, outside Kafka framing, which the broker
//! does not speak.

use sediment_protocol::messages::api_versions::ApiVersion;
use sediment_protocol::ApiKey;

/// One advertised API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    /// The API.
    pub key: ApiKey,
    /// Lowest version advertised.
    pub min: i16,
    /// Highest version advertised.
    pub max: i16,
    /// Lowest version decoded; below it (but advertised) the connection is closed.
    pub decode_min: i16,
}

const fn range(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange {
        key,
        min,
        max,
        decode_min: min,
    }
}

/// Everything advertised, in api-key order.
pub const ADVERTISED: &[ApiRange] = &[
    ApiRange {
        key: ApiKey::Produce,
        min: 0,
        max: 11,
        decode_min: 3,
    },
    range(ApiKey::Fetch, 4, 12),
    range(ApiKey::ListOffsets, 1, 7),
    range(ApiKey::Metadata, 0, 12),
    range(ApiKey::OffsetCommit, 2, 9),
    // v8+ batches groups; 1–7 is what DESIGN §4 asks for.
    range(ApiKey::OffsetFetch, 1, 7),
    range(ApiKey::FindCoordinator, 0, 4),
    range(ApiKey::JoinGroup, 0, 7),
    range(ApiKey::Heartbeat, 0, 4),
    range(ApiKey::LeaveGroup, 0, 5),
    range(ApiKey::SyncGroup, 0, 5),
    range(ApiKey::DescribeGroups, 0, 5),
    range(ApiKey::ListGroups, 0, 4),
    // v0 sends the SASL tokens raw, outside Kafka framing, which the broker
    // does not speak: advertised (as Kafka does) but a v0 handshake closes
    // the connection with a log line; clients use v1.
    ApiRange {
        key: ApiKey::SaslHandshake,
        min: 0,
        max: 1,
        decode_min: 1,
    },
    range(ApiKey::ApiVersions, 0, 4),
    range(ApiKey::CreateTopics, 2, 7),
    range(ApiKey::DeleteTopics, 1, 6),
    // Every version the codec knows.
    range(ApiKey::DeleteRecords, 0, 2),
    range(ApiKey::InitProducerId, 0, 4),
    // Every version the codec knows (v4+ is broker-to-broker batching).
    range(ApiKey::AddPartitionsToTxn, 0, 3),
    range(ApiKey::AddOffsetsToTxn, 0, 3),
    range(ApiKey::EndTxn, 0, 3),
    range(ApiKey::TxnOffsetCommit, 0, 3),
    // Every version the codec knows (served whether or not `--authorizer`
    // enforces them: `handlers::acls`).
    range(ApiKey::DescribeAcls, 0, 3),
    range(ApiKey::CreateAcls, 0, 3),
    range(ApiKey::DeleteAcls, 0, 3),
    // Kafka 4 starts at v1 (v0 has no config sources), so v1–4 is advertised.
    range(ApiKey::DescribeConfigs, 1, 4),
    // Every version the codec knows.
    range(ApiKey::AlterConfigs, 0, 2),
    // Every version the codec knows.
    range(ApiKey::DescribeLogDirs, 1, 4),
    // Every version the codec knows (v2 is flexible).
    range(ApiKey::SaslAuthenticate, 0, 2),
    // Every version the codec knows.
    range(ApiKey::CreatePartitions, 0, 3),
    // Every version the codec knows.
    range(ApiKey::DeleteGroups, 0, 2),
    // Every version the codec knows.
    range(ApiKey::IncrementalAlterConfigs, 0, 1),
    // Every version the codec knows.
    range(ApiKey::OffsetDelete, 0, 0),
    // Every version the codec knows (v1 is flexible). Always empty: Sediment
    // has no client quotas (`handlers::client_quotas`).
    range(ApiKey::DescribeClientQuotas, 0, 1),
    // Every version the codec knows.
    range(ApiKey::DescribeUserScramCredentials, 0, 0),
    range(ApiKey::AlterUserScramCredentials, 0, 0),
    // Every version the codec knows.
    range(ApiKey::DescribeCluster, 0, 1),
    range(ApiKey::DescribeTransactions, 0, 0),
    range(ApiKey::ListTransactions, 0, 1),
];

/// The advertised range of `key`, if the broker serves it.
pub fn advertised(key: i16) -> Option<ApiRange> {
    ADVERTISED.iter().copied().find(|r| r.key as i16 == key)
}

/// True when `version` of `key` is advertised.
pub fn is_supported(key: i16, version: i16) -> bool {
    advertised(key).is_some_and(|r| (r.min..=r.max).contains(&version))
}

/// True when `version` of `key` is advertised and decoded.
pub fn is_decoded(key: i16, version: i16) -> bool {
    advertised(key).is_some_and(|r| (r.decode_min..=r.max).contains(&version))
}

/// The `api_keys` array of an ApiVersions response.
pub fn api_versions() -> Vec<ApiVersion> {
    ADVERTISED
        .iter()
        .map(|r| {
            ApiVersion::default()
                .with_api_key(r.key as i16)
                .with_min_version(r.min)
                .with_max_version(r.max)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_ranges_are_within_what_the_codec_supports() {
        for r in ADVERTISED {
            let codec = r
                .key
                .codec_versions()
                .expect("the codec knows every advertised API");
            assert!(
                r.decode_min >= codec.min && r.max <= codec.max,
                "{:?} {r:?} vs {codec:?}",
                r.key
            );
        }
    }

    #[test]
    fn advertised_table_is_in_api_key_order() {
        for pair in ADVERTISED.windows(2) {
            assert!((pair[0].key as i16) < (pair[1].key as i16), "{:?}", pair);
        }
    }

    #[test]
    fn classic_group_apis_are_advertised_at_design_versions() {
        for (key, min, max) in [
            (ApiKey::OffsetCommit, 2, 9),
            (ApiKey::OffsetFetch, 1, 7),
            (ApiKey::JoinGroup, 0, 7),
            (ApiKey::Heartbeat, 0, 4),
            (ApiKey::LeaveGroup, 0, 5),
            (ApiKey::SyncGroup, 0, 5),
            (ApiKey::DescribeGroups, 0, 5),
            (ApiKey::ListGroups, 0, 4),
            (ApiKey::DeleteGroups, 0, 2),
        ] {
            let range = advertised(key as i16).unwrap_or_else(|| panic!("{key:?}"));
            assert_eq!((range.min, range.max), (min, max), "{key:?}");
        }
    }

    #[test]
    fn given_security_apis_then_advertised_at_design_versions() {
        for (key, min, max) in [
            (ApiKey::SaslHandshake, 0, 1),
            (ApiKey::SaslAuthenticate, 0, 2),
            (ApiKey::DescribeAcls, 0, 3),
            (ApiKey::CreateAcls, 0, 3),
            (ApiKey::DeleteAcls, 0, 3),
            (ApiKey::DescribeUserScramCredentials, 0, 0),
            (ApiKey::AlterUserScramCredentials, 0, 0),
            (ApiKey::DescribeClientQuotas, 0, 1),
        ] {
            let range = advertised(key as i16).unwrap_or_else(|| panic!("{key:?}"));
            assert_eq!((range.min, range.max), (min, max), "{key:?}");
        }
    }

    #[test]
    fn given_no_client_quotas_then_describe_is_advertised_and_alter_is_not() {
        assert!(is_decoded(ApiKey::DescribeClientQuotas as i16, 1));
        assert!(advertised(ApiKey::AlterClientQuotas as i16).is_none());
    }

    #[test]
    fn given_sasl_handshake_v0_then_advertised_but_not_decoded() {
        let key = ApiKey::SaslHandshake as i16;
        assert!(is_supported(key, 0));
        assert!(!is_decoded(key, 0));
        assert!(is_decoded(key, 1));
        assert!(!is_supported(key, 2));
        for other in ADVERTISED
            .iter()
            .filter(|r| !matches!(r.key, ApiKey::SaslHandshake | ApiKey::Produce))
        {
            assert_eq!(other.decode_min, other.min, "{:?}", other.key);
        }
    }

    #[test]
    fn newer_group_protocols_are_not_advertised() {
        for key in [
            ApiKey::ConsumerGroupHeartbeat,
            ApiKey::GetTelemetrySubscriptions,
        ] {
            assert!(advertised(key as i16).is_none(), "{key:?}");
        }
        assert!(is_supported(ApiKey::Produce as i16, 0));
        assert!(!is_supported(ApiKey::Fetch as i16, 3));
        assert!(!is_supported(ApiKey::ApiVersions as i16, 5));
    }
}
