//! Differential tests against the `kafka-protocol` crate (a dev-dependency,
//! nothing more): for every API, every version the codec knows, requests and
//! responses alike, a random message encoded by us must be read by the
//! oracle and written back by it to the very same bytes, and our decoder
//! must read both our bytes and the oracle's back to the message we began
//! with. Agreement byte for byte means both sides read every field the same
//! way, in both directions.

use bytes::BytesMut;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::sample::{Gen, Sample};
use crate::{Message, Reader};

/// Messages drawn per API, version and direction.
const CASES: u64 = 48;

fn check<Ours, Theirs>(seed: u64, what: &str)
where
    Ours: Message + Sample + PartialEq + std::fmt::Debug,
    Theirs: Decodable + Encodable,
{
    for version in Ours::VERSIONS.min..=Ours::VERSIONS.max {
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
