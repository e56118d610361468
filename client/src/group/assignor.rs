//! The partition assignors the group leader runs: [`AssignorKind::Range`]
//! and [`AssignorKind::RoundRobin`], exactly as Kafka's Java `RangeAssignor`
//! and `RoundRobinAssignor` compute them (without rack awareness), so that a
//! group mixing this client with Java or librdkafka consumers gets the same
//! assignment whichever member leads. Pure: no I/O.
//!
//! Shared rules (Java's `AbstractPartitionAssignor`):
//! - Every member appears in the result, possibly with no partitions.
//! - A topic without metadata (unknown to the cluster) is skipped.
//! - Members are ordered by group instance id first (static members, in
//!   id order), then by member id (`MemberInfo.compareTo`). Ids are compared
//!   bytewise, which is Java's `String.compareTo` order for the ASCII ids
//!   brokers hand out.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::TopicPartition;

/// A partition assignment strategy, named on the wire as Kafka names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignorKind {
    /// `range`: per topic, consecutive partition ranges; the first
    /// `partitions % members` members (in order) get one extra. Members
    /// subscribed to the same topics get co-partitioned assignments.
    Range,
    /// `roundrobin`: all partitions of all subscribed topics, sorted by
    /// topic then partition, dealt one by one to the members in order,
    /// skipping members not subscribed to the partition's topic.
    RoundRobin,
}

impl AssignorKind {
    /// The protocol name in JoinGroup (`range`, `roundrobin`).
    pub fn protocol_name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
        }
    }

    /// The assignor with this protocol name, if this client implements it.
    pub fn from_protocol_name(name: &str) -> Option<Self> {
        match name {
            "range" => Some(AssignorKind::Range),
            "roundrobin" => Some(AssignorKind::RoundRobin),
            _ => None,
        }
    }

    /// Assigns the partitions of the members' subscribed topics.
    /// `partitions_per_topic` holds the partition count of every topic the
    /// cluster knows; the result has an entry for every member.
    pub(crate) fn assign(
        self,
        members: &[MemberSubscription],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        match self {
            AssignorKind::Range => range(members, partitions_per_topic),
            AssignorKind::RoundRobin => round_robin(members, partitions_per_topic),
        }
    }
}

/// One member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberSubscription {
    /// The id the coordinator gave the member.
    pub member_id: String,
    /// Its static group instance id, if any.
    pub group_instance_id: Option<String>,
    /// The topics it subscribed to.
    pub topics: BTreeSet<String>,
}

/// Java's `MemberInfo.compareTo`: static members first, by instance id;
/// then dynamic members by member id.
fn member_order(a: &MemberSubscription, b: &MemberSubscription) -> Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    }
}

fn empty_assignment(members: &[MemberSubscription]) -> BTreeMap<String, Vec<TopicPartition>> {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect()
}

/// Kafka's `RangeAssignor`: for each topic, its subscribers in member
/// order get `n / k` consecutive partitions each, and the first `n % k` of
/// them one more.
fn range(
    members: &[MemberSubscription],
    partitions_per_topic: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut assignment = empty_assignment(members);
    let mut subscribers: BTreeMap<&str, Vec<&MemberSubscription>> = BTreeMap::new();
    for member in members {
        for topic in &member.topics {
            subscribers.entry(topic.as_str()).or_default().push(member);
        }
    }
    for (topic, mut consumers) in subscribers {
        let Some(&partitions) = partitions_per_topic.get(topic) else {
            continue; // no metadata: Java skips the topic
        };
        if partitions <= 0 {
            continue;
        }
        consumers.sort_by(|a, b| member_order(a, b));
        let count = i32::try_from(consumers.len()).unwrap_or(i32::MAX);
        let per_consumer = partitions / count;
        let with_extra = partitions % count;
        for (i, consumer) in (0i32..).zip(consumers) {
            let start = per_consumer * i + i.min(with_extra);
            let length = per_consumer + i32::from(i < with_extra);
            if let Some(list) = assignment.get_mut(&consumer.member_id) {
                list.extend((start..start + length).map(|p| TopicPartition::new(topic, p)));
            }
        }
    }
    assignment
}

/// Kafka's `RoundRobinAssignor`: every partition of every subscribed topic
/// in (topic, partition) order goes to the next member in a circular
/// member order that subscribes to its topic.
fn round_robin(
    members: &[MemberSubscription],
    partitions_per_topic: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut assignment = empty_assignment(members);
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| member_order(a, b));
    if sorted.is_empty() {
        return assignment;
    }
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    let mut next = 0usize;
    for topic in topics {
        let Some(&partitions) = partitions_per_topic.get(topic.as_str()) else {
            continue;
        };
        for partition in 0..partitions.max(0) {
            // Some member subscribes to `topic` (it came from a subscription),
            // so this scan ends within one lap.
            for _ in 0..sorted.len() {
                if sorted[next].topics.contains(topic.as_str()) {
                    break;
                }
                next = (next + 1) % sorted.len();
            }
            if let Some(list) = assignment.get_mut(&sorted[next].member_id) {
                list.push(TopicPartition::new(topic.as_str(), partition));
            }
            next = (next + 1) % sorted.len();
        }
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.to_string(),
            group_instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn static_member(id: &str, instance: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            group_instance_id: Some(instance.to_string()),
            ..member(id, topics)
        }
    }

    fn counts(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
        pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn tps(pairs: &[(&str, i32)]) -> Vec<TopicPartition> {
        pairs
            .iter()
            .map(|(t, p)| TopicPartition::new(*t, *p))
            .collect()
    }

    fn sorted(mut v: Vec<TopicPartition>) -> Vec<TopicPartition> {
        v.sort();
        v
    }

    /// Every partition of the subscribed, known topics exactly once.
    fn assert_partitioned(
        result: &BTreeMap<String, Vec<TopicPartition>>,
        partitions_per_topic: &BTreeMap<String, i32>,
        topics: &[&str],
    ) {
        let mut all: Vec<TopicPartition> = result.values().flatten().cloned().collect();
        all.sort();
        let mut expected: Vec<TopicPartition> = topics
            .iter()
            .flat_map(|t| {
                (0..partitions_per_topic.get(*t).copied().unwrap_or(0))
                    .map(|p| TopicPartition::new(*t, p))
            })
            .collect();
        expected.sort();
        assert_eq!(all, expected);
    }

    #[test]
    fn given_protocol_names_then_they_round_trip_and_unknown_is_none() {
        for kind in [AssignorKind::Range, AssignorKind::RoundRobin] {
            assert_eq!(
                AssignorKind::from_protocol_name(kind.protocol_name()),
                Some(kind)
            );
        }
        assert_eq!(AssignorKind::from_protocol_name("cooperative-sticky"), None);
    }

    #[test]
    fn given_no_topics_or_unknown_topic_then_every_member_gets_an_empty_list() {
        for kind in [AssignorKind::Range, AssignorKind::RoundRobin] {
            let result = kind.assign(&[member("c", &[])], &counts(&[("t", 3)]));
            assert_eq!(result.get("c"), Some(&vec![]), "{kind:?}");
            let result = kind.assign(&[member("c", &["absent"])], &counts(&[("t", 3)]));
            assert_eq!(result.get("c"), Some(&vec![]), "{kind:?}");
            assert!(kind.assign(&[], &counts(&[("t", 3)])).is_empty());
        }
    }

    #[test]
    fn given_one_member_then_it_gets_every_subscribed_partition_only() {
        for kind in [AssignorKind::Range, AssignorKind::RoundRobin] {
            let result = kind.assign(&[member("c", &["t"])], &counts(&[("t", 3), ("other", 3)]));
            assert_eq!(
                result["c"],
                tps(&[("t", 0), ("t", 1), ("t", 2)]),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn given_two_members_one_partition_then_the_first_member_gets_it() {
        for kind in [AssignorKind::Range, AssignorKind::RoundRobin] {
            let result = kind.assign(
                &[member("c2", &["t"]), member("c1", &["t"])],
                &counts(&[("t", 1)]),
            );
            assert_eq!(result["c1"], tps(&[("t", 0)]), "{kind:?}");
            assert_eq!(result["c2"], vec![], "{kind:?}");
        }
    }

    #[test]
    fn given_range_two_members_two_topics_of_three_then_ranges_are_co_partitioned() {
        // Java RangeAssignorTest.testTwoConsumersTwoTopicsSixPartitions.
        let members = [member("c1", &["t1", "t2"]), member("c2", &["t1", "t2"])];
        let per_topic = counts(&[("t1", 3), ("t2", 3)]);
        let result = AssignorKind::Range.assign(&members, &per_topic);
        assert_eq!(
            sorted(result["c1"].clone()),
            tps(&[("t1", 0), ("t1", 1), ("t2", 0), ("t2", 1)])
        );
        assert_eq!(sorted(result["c2"].clone()), tps(&[("t1", 2), ("t2", 2)]));
    }

    #[test]
    fn given_range_uneven_split_then_first_members_get_one_extra() {
        // 7 partitions over 3 members: 3, 2, 2.
        let members = [
            member("a", &["t"]),
            member("b", &["t"]),
            member("c", &["t"]),
        ];
        let per_topic = counts(&[("t", 7)]);
        let result = AssignorKind::Range.assign(&members, &per_topic);
        assert_eq!(result["a"], tps(&[("t", 0), ("t", 1), ("t", 2)]));
        assert_eq!(result["b"], tps(&[("t", 3), ("t", 4)]));
        assert_eq!(result["c"], tps(&[("t", 5), ("t", 6)]));
        assert_partitioned(&result, &per_topic, &["t"]);
        // More members than partitions: the last ones get nothing.
        let five: Vec<MemberSubscription> = ["m1", "m2", "m3", "m4", "m5"]
            .iter()
            .map(|m| member(m, &["t"]))
            .collect();
        let result = AssignorKind::Range.assign(&five, &counts(&[("t", 3)]));
        assert_eq!(result["m1"], tps(&[("t", 0)]));
        assert_eq!(result["m3"], tps(&[("t", 2)]));
        assert_eq!(result["m4"], vec![]);
        assert_eq!(result["m5"], vec![]);
    }

    #[test]
    fn given_range_mixed_subscriptions_then_each_topic_splits_among_its_subscribers() {
        // Java RangeAssignorTest.testMultipleConsumersMixedTopicSubscriptions.
        let members = [
            member("consumer1", &["topic1"]),
            member("consumer2", &["topic1", "topic2"]),
            member("consumer3", &["topic1"]),
        ];
        let per_topic = counts(&[("topic1", 3), ("topic2", 2)]);
        let result = AssignorKind::Range.assign(&members, &per_topic);
        assert_eq!(result["consumer1"], tps(&[("topic1", 0)]));
        assert_eq!(
            sorted(result["consumer2"].clone()),
            tps(&[("topic1", 1), ("topic2", 0), ("topic2", 1)])
        );
        assert_eq!(result["consumer3"], tps(&[("topic1", 2)]));
        assert_partitioned(&result, &per_topic, &["topic1", "topic2"]);
    }

    #[test]
    fn given_round_robin_two_members_two_topics_of_three_then_partitions_alternate() {
        // Java RoundRobinAssignorTest.testTwoConsumersTwoTopicsSixPartitions.
        let members = [member("c1", &["t1", "t2"]), member("c2", &["t1", "t2"])];
        let per_topic = counts(&[("t1", 3), ("t2", 3)]);
        let result = AssignorKind::RoundRobin.assign(&members, &per_topic);
        assert_eq!(result["c1"], tps(&[("t1", 0), ("t1", 2), ("t2", 1)]));
        assert_eq!(result["c2"], tps(&[("t1", 1), ("t2", 0), ("t2", 2)]));
    }

    #[test]
    fn given_round_robin_mixed_subscriptions_then_unsubscribed_members_are_skipped() {
        // Java RoundRobinAssignorTest.testMultipleConsumersMixedTopics.
        let members = [
            member("consumer1", &["topic1"]),
            member("consumer2", &["topic1", "topic2"]),
            member("consumer3", &["topic1"]),
        ];
        let per_topic = counts(&[("topic1", 3), ("topic2", 2)]);
        let result = AssignorKind::RoundRobin.assign(&members, &per_topic);
        assert_eq!(result["consumer1"], tps(&[("topic1", 0)]));
        assert_eq!(
            result["consumer2"],
            tps(&[("topic1", 1), ("topic2", 0), ("topic2", 1)])
        );
        assert_eq!(result["consumer3"], tps(&[("topic1", 2)]));
    }

    #[test]
    fn given_round_robin_uneven_split_over_topics_then_dealing_continues_across_topics() {
        // a: 3 partitions, b: 2 partitions, three members subscribed to both:
        // a0 a1 a2 b0 b1 dealt to m1 m2 m3 m1 m2.
        let members = [
            member("m3", &["a", "b"]),
            member("m1", &["a", "b"]),
            member("m2", &["a", "b"]),
        ];
        let per_topic = counts(&[("a", 3), ("b", 2)]);
        let result = AssignorKind::RoundRobin.assign(&members, &per_topic);
        assert_eq!(result["m1"], tps(&[("a", 0), ("b", 0)]));
        assert_eq!(result["m2"], tps(&[("a", 1), ("b", 1)]));
        assert_eq!(result["m3"], tps(&[("a", 2)]));
        assert_partitioned(&result, &per_topic, &["a", "b"]);
    }

    #[test]
    fn given_static_members_then_they_order_first_by_instance_id() {
        // Instance ids order before member ids: "z" (instance "a") leads.
        let members = [
            member("a-dynamic", &["t"]),
            static_member("z", "instance-a", &["t"]),
            static_member("y", "instance-b", &["t"]),
        ];
        let per_topic = counts(&[("t", 4)]);
        let range = AssignorKind::Range.assign(&members, &per_topic);
        assert_eq!(range["z"], tps(&[("t", 0), ("t", 1)]));
        assert_eq!(range["y"], tps(&[("t", 2)]));
        assert_eq!(range["a-dynamic"], tps(&[("t", 3)]));
        let rr = AssignorKind::RoundRobin.assign(&members, &per_topic);
        assert_eq!(rr["z"], tps(&[("t", 0), ("t", 3)]));
        assert_eq!(rr["y"], tps(&[("t", 1)]));
        assert_eq!(rr["a-dynamic"], tps(&[("t", 2)]));
    }

    #[test]
    fn given_many_shapes_then_both_assignors_assign_every_partition_exactly_once() {
        let topics = ["a", "b", "c"];
        let per_topic = counts(&[("a", 5), ("b", 1), ("c", 8)]);
        for members_count in 1..=7 {
            let members: Vec<MemberSubscription> = (0..members_count)
                .map(|i| member(&format!("member-{i:02}"), &topics))
                .collect();
            for kind in [AssignorKind::Range, AssignorKind::RoundRobin] {
                let result = kind.assign(&members, &per_topic);
                assert_eq!(result.len(), members.len());
                assert_partitioned(&result, &per_topic, &topics);
                // Balanced per topic for range, overall for round robin.
                let sizes: Vec<usize> = result.values().map(Vec::len).collect();
                let (min, max) = (sizes.iter().min(), sizes.iter().max());
                if kind == AssignorKind::RoundRobin {
                    assert!(
                        max.zip(min).is_some_and(|(a, b)| a - b <= 1),
                        "{kind:?} {sizes:?}"
                    );
                }
            }
        }
    }
}
