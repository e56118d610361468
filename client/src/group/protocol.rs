//! The embedded "consumer" protocol: the bytes a member puts in JoinGroup
//! (its subscription) and the bytes the leader puts in SyncGroup (each
//! member's assignment), as Kafka's `ConsumerProtocol` lays them out: an
//! `i16` version, then `ConsumerProtocolSubscription` /
//! `ConsumerProtocolAssignment` encoded at that version. Pure.
//!
//! Like Kafka, a version above the highest one known (3) is decoded as 3:
//! later versions only append fields. A negative version is refused. An
//! empty assignment (a coordinator's answer to a member the leader left out)
//! means "no partitions".

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, Bytes};
use sediment_protocol::messages::consumer_protocol::{
    self, ConsumerProtocolAssignment, ConsumerProtocolSubscription,
};
use sediment_protocol::{Message, Writer};

use crate::error::{ClientError, Result};
use crate::TopicPartition;

/// The embedded protocol type of consumer groups.
pub(crate) const PROTOCOL_TYPE: &str = "consumer";

/// The version written (Kafka 3.x writes 3 too) and the highest decoded.
const VERSION: i16 = 3;

/// Encodes this member's subscription: its topics, and what it owns now
/// (empty under the eager protocol, which revokes everything before joining).
pub(crate) fn encode_subscription(
    topics: &BTreeSet<String>,
    owned: &[TopicPartition],
    generation_id: i32,
) -> Result<Bytes> {
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().cloned().collect())
        .with_owned_partitions(topic_partitions(owned))
        .with_generation_id(generation_id);
    encode_versioned(&subscription, "consumer protocol subscription")
}

/// Decodes a member's subscription; returns its topics.
pub(crate) fn decode_subscription(bytes: Bytes) -> Result<BTreeSet<String>> {
    let (version, body) = split_version(bytes, "subscription")?;
    let subscription = ConsumerProtocolSubscription::from_bytes(body, version)
        .map_err(|e| invalid("subscription", e))?;
    Ok(subscription.topics.into_iter().collect())
}

/// Encodes one member's assignment.
pub(crate) fn encode_assignment(partitions: &[TopicPartition]) -> Result<Bytes> {
    let assignment = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(topic_partitions(partitions));
    encode_versioned(&assignment, "consumer protocol assignment")
}

/// Decodes the assignment SyncGroup handed this member, sorted.
pub(crate) fn decode_assignment(bytes: Bytes) -> Result<Vec<TopicPartition>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let (version, body) = split_version(bytes, "assignment")?;
    let assignment = ConsumerProtocolAssignment::from_bytes(body, version)
        .map_err(|e| invalid("assignment", e))?;
    let mut partitions: Vec<TopicPartition> = assignment
        .assigned_partitions
        .into_iter()
        .flat_map(|tp| {
            let topic = tp.topic;
            tp.partitions
                .into_iter()
                .map(move |p| TopicPartition::new(topic.clone(), p))
        })
        .collect();
    partitions.sort();
    partitions.dedup();
    Ok(partitions)
}

/// The partitions grouped by topic, in the consumer protocol's form.
fn topic_partitions(partitions: &[TopicPartition]) -> Vec<consumer_protocol::TopicPartition> {
    group_by_topic(partitions)
        .into_iter()
        .map(|(topic, partitions)| {
            consumer_protocol::TopicPartition::default()
                .with_topic(topic)
                .with_partitions(partitions)
        })
        .collect()
}

fn group_by_topic(partitions: &[TopicPartition]) -> BTreeMap<String, Vec<i32>> {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic
            .entry(tp.topic.clone())
            .or_default()
            .push(tp.partition);
    }
    for list in by_topic.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    by_topic
}

fn encode_versioned<T: Message>(message: &T, what: &str) -> Result<Bytes> {
    let mut w = Writer::new();
    w.put_i16(VERSION);
    message
        .encode(&mut w, VERSION)
        .map_err(|e| encode_error(what, e))?;
    Ok(w.into_bytes())
}

fn encode_error(what: &str, reason: impl std::fmt::Display) -> ClientError {
    ClientError::Encode {
        what: what.to_string(),
        reason: reason.to_string(),
    }
}

/// The version prefix (clamped to what the codec knows) and the body.
fn split_version(mut bytes: Bytes, what: &str) -> Result<(i16, Bytes)> {
    if bytes.len() < 2 {
        return Err(invalid(what, "shorter than its version field"));
    }
    let version = bytes.get_i16();
    if version < 0 {
        return Err(invalid(what, format!("negative version {version}")));
    }
    Ok((version.min(VERSION), bytes))
}

fn invalid(what: &str, reason: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol {
        addr: "group coordinator".to_string(),
        reason: format!("invalid consumer protocol {what}: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    fn tps(pairs: &[(&str, i32)]) -> Vec<TopicPartition> {
        pairs
            .iter()
            .map(|(t, p)| TopicPartition::new(*t, *p))
            .collect()
    }

    #[test]
    fn given_subscription_then_it_round_trips_with_version_3_prefix() {
        let topics: BTreeSet<String> = ["b", "a"].iter().map(|s| s.to_string()).collect();
        let bytes = encode_subscription(&topics, &tps(&[("a", 1)]), 7).unwrap_or_default();
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(decode_subscription(bytes).ok(), Some(topics));
    }

    #[test]
    fn given_assignment_then_it_round_trips_sorted_and_deduplicated() {
        let partitions = tps(&[("t", 3), ("a", 0), ("t", 1), ("t", 3)]);
        let bytes = encode_assignment(&partitions).unwrap_or_default();
        assert_eq!(
            decode_assignment(bytes).ok(),
            Some(tps(&[("a", 0), ("t", 1), ("t", 3)]))
        );
    }

    #[test]
    fn given_version_0_subscription_as_librdkafka_may_send_then_topics_decode() {
        // i16 version 0, topics ["x"], user data null.
        let mut raw = BytesMut::new();
        raw.put_i16(0);
        raw.put_i32(1);
        raw.put_i16(1);
        raw.put_slice(b"x");
        raw.put_i32(-1);
        let topics = decode_subscription(raw.freeze()).ok();
        assert_eq!(topics, Some(["x".to_string()].into_iter().collect()));
    }

    #[test]
    fn given_future_version_then_decoded_as_3_and_trailing_fields_ignored() {
        let mut bytes =
            BytesMut::from(&encode_assignment(&tps(&[("t", 0)])).unwrap_or_default()[..]);
        bytes[1] = 9; // version 9
        bytes.put_slice(b"future fields");
        assert_eq!(
            decode_assignment(bytes.freeze()).ok(),
            Some(tps(&[("t", 0)]))
        );
    }

    #[test]
    fn given_empty_or_malformed_assignment_then_empty_or_error() {
        assert_eq!(decode_assignment(Bytes::new()).ok(), Some(vec![]));
        assert!(decode_assignment(Bytes::from_static(&[0])).is_err());
        assert!(decode_assignment(Bytes::from_static(&[0xff, 0xff, 0, 0])).is_err());
        assert!(decode_subscription(Bytes::from_static(&[0, 0, 0, 0, 0, 9])).is_err());
    }
}
