//! Which committed offsets OffsetDelete may remove from a group: Kafka's
//! rules as a pure function of the group's state (no I/O; the coordinator
//! writes the tombstones).
//!
//! - A Dead group (being deleted) is GROUP_ID_NOT_FOUND.
//! - An Empty group gives up any offset.
//! - A non-empty `consumer` group keeps the offsets of the topics its
//!   members subscribe to (GROUP_SUBSCRIBED_TO_TOPIC for each of their
//!   partitions) and gives up the rest. The subscriptions are the members'
//!   `ConsumerProtocolSubscription`s for the group's chosen protocol; when
//!   they cannot be known (no protocol chosen yet, metadata that does not
//!   decode) every topic is kept, as Kafka treats an unknown subscription.
//! - A non-empty group of another protocol type is NON_EMPTY_GROUP (Kafka
//!   cannot tell what it uses).

use std::collections::BTreeSet;

use bytes::{Buf, Bytes};
use sediment_protocol::messages::consumer_protocol::ConsumerProtocolSubscription;
use sediment_protocol::Message;

use crate::group::state::{Group, GroupError, GroupState};

/// The protocol type of Kafka consumers.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// Highest `ConsumerProtocolSubscription` version the codec knows; later
/// versions only append fields, so they are read as this one (as Kafka does).
const MAX_SUBSCRIPTION_VERSION: i16 = 3;

/// The offsets of a group that OffsetDelete must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protected {
    /// None: every offset may go.
    Nothing,
    /// Those of these topics.
    Topics(BTreeSet<String>),
    /// All of them (the subscriptions are unknown).
    Everything,
}

impl Protected {
    /// True when the offsets of `topic` must be kept.
    pub fn covers(&self, topic: &str) -> bool {
        match self {
            Self::Nothing => false,
            Self::Topics(topics) => topics.contains(topic),
            Self::Everything => true,
        }
    }
}

/// What OffsetDelete must keep of `group`'s offsets, or why it is refused
/// for the whole group.
pub fn protected<R>(group: &Group<R>) -> Result<Protected, GroupError> {
    match group.state() {
        GroupState::Dead => return Err(GroupError::GroupIdNotFound),
        GroupState::Empty => return Ok(Protected::Nothing),
        _ => {}
    }
    if group.protocol_type() != Some(CONSUMER_PROTOCOL_TYPE) {
        return Err(GroupError::NonEmptyGroup);
    }
    let Some(subscriptions) = group.subscription_metadata() else {
        return Ok(Protected::Everything);
    };
    let mut topics = BTreeSet::new();
    for metadata in subscriptions {
        match subscribed_topics(metadata) {
            Some(subscribed) => topics.extend(subscribed),
            None => return Ok(Protected::Everything),
        }
    }
    Ok(Protected::Topics(topics))
}

/// The topics of a member's subscription (an `i16` version, then the
/// struct at that version), `None` when it does not decode.
fn subscribed_topics(mut metadata: Bytes) -> Option<Vec<String>> {
    if metadata.len() < 2 {
        return None;
    }
    let version = metadata.get_i16();
    if version < 0 {
        return None;
    }
    ConsumerProtocolSubscription::from_bytes(metadata, version.min(MAX_SUBSCRIPTION_VERSION))
        .ok()
        .map(|subscription| subscription.topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GroupConfig;
    use crate::group::state::JoinRequest;
    use sediment_protocol::Writer;

    fn subscription(topics: &[&str]) -> Bytes {
        let mut w = Writer::new();
        w.put_i16(1);
        ConsumerProtocolSubscription::default()
            .with_topics(topics.iter().map(|t| t.to_string()).collect())
            .encode(&mut w, 1)
            .unwrap();
        w.into_bytes()
    }

    fn join(protocol_type: &str, metadata: Bytes) -> JoinRequest {
        JoinRequest {
            member_id: String::new(),
            new_member_id: "m-1".to_string(),
            client_id: "test".to_string(),
            client_host: String::new(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: protocol_type.to_string(),
            protocols: vec![("range".to_string(), metadata)],
            require_known_member_id: false,
        }
    }

    /// A group with one member that joined (and got its generation).
    fn joined(protocol_type: &str, metadata: Bytes) -> Group<()> {
        let config = GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        };
        let mut group = Group::new(config);
        group.join(join(protocol_type, metadata), (), 0);
        group.tick(1);
        drop(group.take_effects());
        assert_ne!(group.state(), GroupState::Empty);
        group
    }

    #[test]
    fn given_empty_group_then_nothing_is_protected() {
        let group: Group<()> = Group::new(GroupConfig::default());
        assert_eq!(protected(&group), Ok(Protected::Nothing));
    }

    #[test]
    fn given_consumer_member_then_only_its_subscribed_topics_are_protected() {
        let group = joined("consumer", subscription(&["orders", "payments"]));
        let kept = protected(&group).unwrap();
        assert!(kept.covers("orders") && kept.covers("payments"));
        assert!(!kept.covers("audit"));
    }

    #[test]
    fn given_undecodable_subscription_then_every_topic_is_protected() {
        let group = joined("consumer", Bytes::from_static(b"\x00"));
        assert_eq!(protected(&group), Ok(Protected::Everything));
    }

    #[test]
    fn given_non_empty_group_of_another_protocol_then_non_empty_group() {
        let group = joined("connect", Bytes::from_static(b"whatever"));
        assert_eq!(protected(&group), Err(GroupError::NonEmptyGroup));
    }

    #[test]
    fn given_dead_group_then_group_id_not_found() {
        let mut group: Group<()> = Group::new(GroupConfig::default());
        group.mark_dead().unwrap();
        assert_eq!(protected(&group), Err(GroupError::GroupIdNotFound));
    }
}
