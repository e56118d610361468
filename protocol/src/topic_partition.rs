//! [`TopicPartition`]: the name of one partition of one topic, shared by the
//! broker (partition logs and their directories) and the client
//! (assignments, positions, committed offsets).
//!
//! Invariant: ordering is by topic, then partition — the order in which
//! assignors deal partitions and in which commits and listings are reported.

use std::fmt;
use std::str::FromStr;

/// One partition of one topic.
///
/// Displayed as `topic-partition` (`orders-3`), as Kafka tools print it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic's name.
    pub topic: String,
    /// The partition index (from 0).
    pub partition: i32,
}

impl TopicPartition {
    /// Names partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Why a string is not a `topic-partition` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not `topic-partition` (a topic name, '-', a partition number from 0)")]
pub struct ParseTopicPartitionError(String);

impl FromStr for TopicPartition {
    type Err = ParseTopicPartitionError;

    /// Parses the `topic-partition` form [`Display`](fmt::Display) writes,
    /// as partition directories are named: the partition is after the last '-'.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseTopicPartitionError(name.to_string());
        let (topic, partition) = name.rsplit_once('-').ok_or_else(invalid)?;
        let partition = partition
            .parse::<i32>()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(invalid)?;
        if topic.is_empty() {
            return Err(invalid());
        }
        Ok(Self::new(topic, partition))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_partitions_then_displayed_topic_dash_partition_and_ordered_by_topic_first() {
        let a = TopicPartition::new("orders", 3);
        assert_eq!(a.to_string(), "orders-3");
        assert_eq!(
            a,
            TopicPartition {
                topic: "orders".to_string(),
                partition: 3
            }
        );
        let mut all = vec![
            TopicPartition::new("b", 0),
            TopicPartition::new("a", 10),
            TopicPartition::new("a", 2),
        ];
        all.sort();
        assert_eq!(
            all,
            vec![
                TopicPartition::new("a", 2),
                TopicPartition::new("a", 10),
                TopicPartition::new("b", 0),
            ]
        );
    }
}
