//! Differential tests against the `kafka-protocol` crate (a dev-dependency,
//! nothing more): for every API, every version the codec knows, requests and
//! responses alike, a random message encoded by us must be read by the
//! oracle and written back by it to the very same bytes, and our decoder
//! must read both our bytes and the oracle's back to the message we began
//! with. Agreement byte for byte means both sides read every field the same
//! way, in both directions. The only versions the oracle does not know (v0
//! of the ACL APIs, gone from Kafka 4) are listed in `ORACLE_LACKS` and held
//! to hand-written bytes instead.

use bytes::BytesMut;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::sample::{Gen, Sample};
use crate::{ApiKey, Message, Reader};

/// Messages drawn per API, version and direction.
const CASES: u64 = 48;

/// The versions the codec knows and the oracle does not: Kafka 4 removed
/// v0 of the ACL APIs (KIP-896) and `kafka-protocol` follows Kafka 4, but a
/// v0 client can still meet our broker. Each v0 is v1 without the pattern
/// type (literal), and each is held instead to bytes written out by hand
/// from the protocol guide's v0 grammar (`acl_v0` below). Nothing else may
/// be missing from the oracle.
const ORACLE_LACKS: &[(ApiKey, i16)] = &[
    (ApiKey::DescribeAcls, 0),
    (ApiKey::CreateAcls, 0),
    (ApiKey::DeleteAcls, 0),
];

/// True when `version` of `key` is one the oracle cannot check (see [`ORACLE_LACKS`]).
fn oracle_lacks(key: Option<ApiKey>, version: i16) -> bool {
    key.is_some_and(|key| ORACLE_LACKS.contains(&(key, version)))
}

fn check<Ours, Theirs>(seed: u64, what: &str)
where
    Ours: Message + Sample + PartialEq + std::fmt::Debug,
    Theirs: Decodable + Encodable,
{
    for version in Ours::VERSIONS.min..=Ours::VERSIONS.max {
        if oracle_lacks(Ours::API_KEY, version) {
            continue;
        }
        for case in 0..CASES {
            let mut g =
                Gen::new(seed ^ (u64::from(version as u16) << 48) ^ case.wrapping_mul(0x9e37));
            let ours = Ours::sample(&mut g, version);
            let bytes = ours.to_bytes(version).unwrap_or_else(|e| {
                panic!("{what} v{version}: our encode failed: {e} for {ours:?}")
            });

            let mut input = bytes.clone();
            let theirs = Theirs::decode(&mut input, version).unwrap_or_else(|e| {
                panic!("{what} v{version}: oracle cannot read our bytes: {e} for {ours:?}")
            });
            assert!(
                input.is_empty(),
                "{what} v{version}: oracle left {} bytes of ours",
                input.len()
            );
            let mut again = BytesMut::new();
            theirs
                .encode(&mut again, version)
                .unwrap_or_else(|e| panic!("{what} v{version}: oracle encode failed: {e}"));
            assert_eq!(
                again.as_ref(),
                bytes.as_ref(),
                "{what} v{version}: oracle's bytes differ from ours for {ours:?}"
            );

            let mut r = Reader::new(bytes);
            let back =
                Ours::decode(&mut r, version).unwrap_or_else(|e| panic!("{what} v{version}: {e}"));
            assert_eq!(r.remaining(), 0, "{what} v{version}: bytes left over");
            assert_eq!(back, ours, "{what} v{version}: our round trip differs");
            let from_theirs = Ours::from_bytes(again.freeze(), version)
                .unwrap_or_else(|e| panic!("{what} v{version}: {e}"));
            assert_eq!(
                from_theirs, ours,
                "{what} v{version}: reading the oracle's bytes differs"
            );
        }
    }
}

macro_rules! oracle_tests {
    ($name:ident, $module:ident, $req:ident, $resp:ident) => {
        #[allow(non_snake_case)]
        mod $name {
            use proptest::prelude::*;

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(4))]
                #[test]
                fn requests_agree_with_the_oracle(seed: u64) {
                    super::check::<crate::messages::$module::$req, kafka_protocol::messages::$req>(seed, stringify!($req));
                }

                #[test]
                fn responses_agree_with_the_oracle(seed: u64) {
                    super::check::<crate::messages::$module::$resp, kafka_protocol::messages::$resp>(seed, stringify!($resp));
                }
            }
        }
    };
}

for_each_api!(oracle_tests);

/// The oracle must know every API at every version the codec does, and
/// agree on which header each version uses; otherwise the per-API tests
/// above would be checking against nothing.
#[test]
fn given_every_codec_api_then_the_oracle_knows_its_versions_and_headers() {
    for (key, version) in ORACLE_LACKS {
        assert!(
            key.codec_versions().is_some_and(|r| r.contains(*version)),
            "{key:?} v{version} is listed as missing from the oracle but the codec does not know it"
        );
    }
    for (key, range, _) in crate::messages::CODEC_APIS {
        let theirs = kafka_protocol::messages::ApiKey::try_from(*key as i16)
            .unwrap_or_else(|()| panic!("the oracle has no {key:?}"));
        let valid = theirs.valid_versions();
        for version in range.min..=range.max {
            if oracle_lacks(Some(*key), version) {
                // Below the oracle's range and below the first flexible
                // version: the classic headers.
                assert!(
                    version < valid.min,
                    "{key:?} v{version} is in the oracle after all"
                );
                assert_eq!(key.request_header_version(version), 1, "{key:?} v{version}");
                assert_eq!(
                    key.response_header_version(version),
                    0,
                    "{key:?} v{version}"
                );
                continue;
            }
            assert!(
                valid.min <= version && version <= valid.max,
                "{key:?}: ours {range:?}, the oracle's {}-{}",
                valid.min,
                valid.max
            );
            assert_eq!(
                key.request_header_version(version),
                theirs.request_header_version(version),
                "{key:?} v{version} request header"
            );
            assert_eq!(
                key.response_header_version(version),
                theirs.response_header_version(version),
                "{key:?} v{version} response header"
            );
        }
    }
}

/// ACL API v0, which the oracle no longer knows (see [`ORACLE_LACKS`]):
/// bytes written out by hand from the protocol guide's v0 grammar (classic
/// encoding: i16-length strings, -1 for null, i32 array counts; no pattern
/// type), which our codec must read to the expected message and write back
/// byte for byte.
mod acl_v0 {
    use bytes::Bytes;

    use crate::messages::create_acls::{AclCreation, AclCreationResult};
    use crate::messages::delete_acls::{
        DeleteAclsFilter, DeleteAclsFilterResult, DeleteAclsMatchingAcl,
    };
    use crate::messages::describe_acls::{AclDescription, DescribeAclsResource};
    use crate::messages::{
        CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
        DescribeAclsRequest, DescribeAclsResponse,
    };
    use crate::Message;

    /// The pattern type v0 implies: literal names.
    const LITERAL: i8 = 3;

    /// A classic (non-flexible) string.
    fn s(text: &str) -> Vec<u8> {
        let mut out = (text.len() as i16).to_be_bytes().to_vec();
        out.extend_from_slice(text.as_bytes());
        out
    }

    const NULL: [u8; 2] = [0xff, 0xff];

    fn count(n: i32) -> Vec<u8> {
        n.to_be_bytes().to_vec()
    }

    fn holds<M: Message + PartialEq + std::fmt::Debug>(parts: &[&[u8]], expected: &M) {
        let bytes = Bytes::from(parts.concat());
        let decoded = M::from_bytes(bytes.clone(), 0).unwrap();
        assert_eq!(&decoded, expected);
        assert_eq!(expected.to_bytes(0).unwrap(), bytes);
    }

    #[test]
    fn given_describe_acls_v0_bytes_then_they_read_as_a_literal_filter_and_write_back_the_same() {
        holds(
            &[&[2], &s("orders"), &s("User:alice"), &NULL, &[3, 3]],
            &DescribeAclsRequest::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some("orders".into()))
                .with_pattern_type_filter(LITERAL)
                .with_principal_filter(Some("User:alice".into()))
                .with_host_filter(None)
                .with_operation(3)
                .with_permission_type(3),
        );
        holds(
            &[
                &0i32.to_be_bytes(),
                &0i16.to_be_bytes(),
                &NULL,
                &count(1),
                &[2],
                &s("orders"),
                &count(1),
                &s("User:alice"),
                &s("*"),
                &[3, 3],
            ],
            &DescribeAclsResponse::default()
                .with_error_message(None)
                .with_resources(vec![DescribeAclsResource::default()
                    .with_resource_type(2)
                    .with_resource_name("orders".into())
                    .with_pattern_type(LITERAL)
                    .with_acls(vec![AclDescription::default()
                        .with_principal("User:alice".into())
                        .with_host("*".into())
                        .with_operation(3)
                        .with_permission_type(3)])]),
        );
    }

    #[test]
    fn given_create_acls_v0_bytes_then_they_read_as_literal_bindings_and_write_back_the_same() {
        holds(
            &[
                &count(1),
                &[2],
                &s("orders"),
                &s("User:alice"),
                &s("*"),
                &[4, 3],
            ],
            &CreateAclsRequest::default().with_creations(vec![AclCreation::default()
                .with_resource_type(2)
                .with_resource_name("orders".into())
                .with_resource_pattern_type(LITERAL)
                .with_principal("User:alice".into())
                .with_host("*".into())
                .with_operation(4)
                .with_permission_type(3)]),
        );
        holds(
            &[
                &7i32.to_be_bytes(),
                &count(2),
                &0i16.to_be_bytes(),
                &NULL,
                &31i16.to_be_bytes(),
                &s("not allowed"),
            ],
            &CreateAclsResponse::default()
                .with_throttle_time_ms(7)
                .with_results(vec![
                    AclCreationResult::default()
                        .with_error_code(0)
                        .with_error_message(None),
                    AclCreationResult::default()
                        .with_error_code(31)
                        .with_error_message(Some("not allowed".into())),
                ]),
        );
    }

    #[test]
    fn given_delete_acls_v0_bytes_then_they_read_as_literal_filters_and_write_back_the_same() {
        holds(
            &[&count(1), &[1], &NULL, &s("User:alice"), &NULL, &[1, 1]],
            &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                .with_resource_type_filter(1)
                .with_resource_name_filter(None)
                .with_pattern_type_filter(LITERAL)
                .with_principal_filter(Some("User:alice".into()))
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1)]),
        );
        holds(
            &[
                &0i32.to_be_bytes(),
                &count(1),
                &0i16.to_be_bytes(),
                &NULL,
                &count(1),
                &0i16.to_be_bytes(),
                &NULL,
                &[2],
                &s("orders"),
                &s("User:alice"),
                &s("*"),
                &[3, 3],
            ],
            &DeleteAclsResponse::default().with_filter_results(vec![
                DeleteAclsFilterResult::default()
                    .with_error_message(None)
                    .with_matching_acls(vec![DeleteAclsMatchingAcl::default()
                        .with_error_message(None)
                        .with_resource_type(2)
                        .with_resource_name("orders".into())
                        .with_pattern_type(LITERAL)
                        .with_principal("User:alice".into())
                        .with_host("*".into())
                        .with_operation(3)
                        .with_permission_type(3)]),
            ]),
        );
    }
}

mod consumer_protocol {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4))]
        #[test]
        fn subscriptions_agree_with_the_oracle(seed: u64) {
            super::check::<crate::messages::ConsumerProtocolSubscription, kafka_protocol::messages::ConsumerProtocolSubscription>(seed, "ConsumerProtocolSubscription");
        }

        #[test]
        fn assignments_agree_with_the_oracle(seed: u64) {
            super::check::<crate::messages::ConsumerProtocolAssignment, kafka_protocol::messages::ConsumerProtocolAssignment>(seed, "ConsumerProtocolAssignment");
        }
    }
}

/// Record batches: ours read by the oracle, the oracle's read by us, with
/// every codec, field for field.
mod record_batches {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression as TheirCompression, Record as TheirRecord, RecordBatchDecoder,
        RecordBatchEncoder, RecordEncodeOptions, TimestampType as TheirTimestampType,
    };
    use proptest::prelude::*;

    use crate::records::{decode_batch, encode_batch, BatchOptions, Compression, Record};
    use crate::sample::Gen;

    const CODECS: [(Compression, TheirCompression); 5] = [
        (Compression::None, TheirCompression::None),
        (Compression::Gzip, TheirCompression::Gzip),
        (Compression::Snappy, TheirCompression::Snappy),
        (Compression::Lz4, TheirCompression::Lz4),
        (Compression::Zstd, TheirCompression::Zstd),
    ];

    fn bytes(g: &mut Gen) -> Option<Bytes> {
        match g.below(5) {
            0 => None,
            1 => Some(Bytes::from(vec![b'z'; 3000])),
            _ => Some(Bytes::from(
                (0..g.below(64))
                    .map(|_| g.next_u64() as u8)
                    .collect::<Vec<u8>>(),
            )),
        }
    }

    fn records(g: &mut Gen) -> Vec<Record> {
        let base = (g.next_u64() % 1_000_000) as i64;
        let time = 1_700_000_000_000 + (g.next_u64() % 1_000_000) as i64;
        (0..1 + g.below(40) as i64)
            .map(|i| Record {
                offset: base + i,
                timestamp: time + (g.next_u64() % 10_000) as i64 - 5_000,
                key: bytes(g),
                value: bytes(g),
                // Unique keys: the oracle keeps headers in a map.
                headers: (0..g.below(3))
                    .map(|h| (format!("h{h}"), bytes(g)))
                    .collect(),
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn our_batches_read_the_same_in_the_oracle(seed: u64) {
            let mut g = Gen::new(seed);
            let ours = records(&mut g);
            for (codec, _) in CODECS {
                let options = BatchOptions {
                    compression: codec,
                    producer_id: 42,
                    producer_epoch: 3,
                    base_sequence: 7,
                    ..BatchOptions::default()
                };
                let mut batch = encode_batch(&ours, &options).unwrap();
                let set = RecordBatchDecoder::decode(&mut batch).unwrap();
                prop_assert_eq!(set.records.len(), ours.len());
                for (i, (theirs, mine)) in set.records.iter().zip(&ours).enumerate() {
                    prop_assert_eq!(theirs.offset, mine.offset);
                    prop_assert_eq!(theirs.timestamp, mine.timestamp);
                    prop_assert_eq!(&theirs.key, &mine.key);
                    prop_assert_eq!(&theirs.value, &mine.value);
                    prop_assert_eq!(theirs.producer_id, 42);
                    prop_assert_eq!(theirs.producer_epoch, 3);
                    prop_assert_eq!(theirs.sequence, 7 + i as i32);
                    let headers: Vec<(String, Option<Bytes>)> = theirs
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect();
                    prop_assert_eq!(&headers, &mine.headers);
                }
            }
        }

        #[test]
        fn the_oracles_batches_read_the_same_here(seed: u64) {
            let mut g = Gen::new(seed);
            let ours = records(&mut g);
            let theirs: Vec<TheirRecord> = ours
                .iter()
                .map(|r| TheirRecord {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: 9,
                    producer_epoch: 1,
                    timestamp_type: TheirTimestampType::Creation,
                    offset: r.offset,
                    // The oracle starts a new batch whenever offset - sequence changes.
                    sequence: r.offset as i32,
                    timestamp: r.timestamp,
                    key: r.key.clone(),
                    value: r.value.clone(),
                    headers: r
                        .headers
                        .iter()
                        .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                        .collect::<IndexMap<_, _>>(),
                })
                .collect();
            for (codec, their_codec) in CODECS {
                let mut buf = BytesMut::new();
                RecordBatchEncoder::encode(
                    &mut buf,
                    theirs.iter(),
                    &RecordEncodeOptions { version: 2, compression: their_codec },
                )
                .unwrap();
                let decoded = decode_batch(buf.freeze(), 64 << 20)
                    .unwrap_or_else(|e| panic!("{codec:?}: {e}"));
                prop_assert_eq!(decoded.compression, codec);
                prop_assert_eq!(decoded.producer_id, 9);
                prop_assert_eq!(&decoded.records, &ours);
            }
        }
    }
}
