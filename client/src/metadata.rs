//! The metadata cache: brokers, the controller, and for each topic its id
//! and partitions with their leaders. Pure data; [`Cluster`](crate::cluster)
//! fetches the Metadata responses that update it.
//!
//! Invariants: a topic's `partitions` are sorted by partition index and hold
//! one entry per index `0..len`; a leader of `-1` means "none right now"
//! (the partition is being created or elected) and callers wait and refresh.

use std::collections::HashMap;

use sediment_protocol::messages::MetadataResponse;
use uuid::Uuid;

/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// One partition's placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionMeta {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id, -1 when there is none.
    pub leader: i32,
    /// The broker's error for this partition (0 = none).
    pub error: i16,
}

/// One topic as the cluster last described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicMeta {
    /// Topic id (nil before Metadata v10).
    pub id: Uuid,
    /// True for internal topics such as `__consumer_offsets`.
    pub internal: bool,
    /// Partitions in index order.
    pub partitions: Vec<PartitionMeta>,
}

impl TopicMeta {
    /// Number of partitions.
    pub(crate) fn partition_count(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    /// True when every partition has a leader.
    pub(crate) fn all_led(&self) -> bool {
        !self.partitions.is_empty() && self.partitions.iter().all(|p| p.leader >= 0)
    }
}

/// The whole cache.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metadata {
    /// Broker id → `host:port`.
    pub brokers: HashMap<i32, String>,
    /// The controller's broker id, when known.
    pub controller: Option<i32>,
    /// Topic name → description.
    pub topics: HashMap<String, TopicMeta>,
}

/// What a Metadata response said about one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopicOutcome {
    /// Described (possibly with partitions still lacking a leader).
    Present,
    /// The broker does not know it.
    Unknown,
    /// Another topic-level error code.
    Error(i16),
}

impl Metadata {
    /// Folds a response in: brokers and controller are replaced; each topic
    /// in the response is replaced or, if unknown, dropped. Topics not in the
    /// response are kept (a refresh of some topics says nothing about others).
    pub(crate) fn apply(&mut self, response: &MetadataResponse) -> HashMap<String, TopicOutcome> {
        if !response.brokers.is_empty() {
            self.brokers = response
                .brokers
                .iter()
                .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
                .collect();
        }
        self.controller = (response.controller_id >= 0).then_some(response.controller_id);
        let mut outcomes = HashMap::new();
        for topic in &response.topics {
            let Some(name) = topic.name.clone() else {
                continue;
            };
            let outcome = match topic.error_code {
                0 => TopicOutcome::Present,
                UNKNOWN_TOPIC_OR_PARTITION => TopicOutcome::Unknown,
                // LEADER_NOT_AVAILABLE and the like still describe partitions.
                code if !topic.partitions.is_empty() => {
                    tracing::debug!(topic = %name, code, "metadata topic error with partitions");
                    TopicOutcome::Present
                }
                code => TopicOutcome::Error(code),
            };
            if outcome == TopicOutcome::Present {
                let mut partitions: Vec<PartitionMeta> = topic
                    .partitions
                    .iter()
                    .map(|p| PartitionMeta {
                        partition: p.partition_index,
                        leader: p.leader_id,
                        error: p.error_code,
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                // A hole in the indexes would break `partitions[i]` lookups:
                // treat such a description as not (yet) usable.
                let dense = partitions
                    .iter()
                    .enumerate()
                    .all(|(i, p)| usize::try_from(p.partition).ok() == Some(i));
                if dense {
                    self.topics.insert(
                        name.clone(),
                        TopicMeta {
                            id: topic.topic_id,
                            internal: topic.is_internal,
                            partitions,
                        },
                    );
                } else {
                    self.topics.remove(&name);
                }
            } else {
                self.topics.remove(&name);
            }
            outcomes.insert(name, outcome);
        }
        outcomes
    }

    /// Leader of `topic`/`partition`, if known and present.
    pub(crate) fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let index = usize::try_from(partition).ok()?;
        let leader = self.topics.get(topic)?.partitions.get(index)?.leader;
        (leader >= 0).then_some(leader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sediment_protocol::messages::metadata::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    fn topic(name: &str, code: i16, leaders: &[i32]) -> MetadataResponseTopic {
        MetadataResponseTopic::default()
            .with_name(Some(name.to_string()))
            .with_error_code(code)
            .with_partitions(
                leaders
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, l)| {
                        MetadataResponsePartition::default()
                            .with_partition_index(i as i32)
                            .with_leader_id(*l)
                    })
                    .collect(),
            )
    }

    #[test]
    fn given_response_then_leaders_sorted_and_unknown_topics_dropped() {
        let mut metadata = Metadata::default();
        metadata.topics.insert(
            "gone".into(),
            TopicMeta {
                id: Uuid::nil(),
                internal: false,
                partitions: vec![],
            },
        );
        let response = MetadataResponse::default()
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(7)
                .with_host("h".to_string())
                .with_port(9)])
            .with_controller_id(7)
            .with_topics(vec![topic("t", 0, &[7, -1]), topic("gone", 3, &[])]);
        let outcomes = metadata.apply(&response);
        assert_eq!(outcomes.get("gone"), Some(&TopicOutcome::Unknown));
        assert!(!metadata.topics.contains_key("gone"));
        assert_eq!(metadata.brokers.get(&7).map(String::as_str), Some("h:9"));
        assert_eq!(metadata.controller, Some(7));
        assert_eq!(metadata.leader("t", 0), Some(7));
        assert_eq!(metadata.leader("t", 1), None);
        assert_eq!(metadata.leader("t", 2), None);
        assert!(!metadata.topics["t"].all_led());
    }
}
