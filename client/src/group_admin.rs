//! Consumer-group administration: list, describe (members, assignments,
//! committed offsets and lag), reset or delete committed offsets, delete. Requests go
//! to the group's coordinator, found with FindCoordinator.

use std::collections::BTreeMap;

use bytes::Buf;
use sediment_protocol::messages::offset_commit::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use sediment_protocol::messages::offset_delete::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use sediment_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, ListGroupsRequest,
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
};
use sediment_protocol::{ApiKey, Message};

use crate::admin::Admin;
use crate::connection::BrokerConnection;
use crate::error::{ClientError, Result};
use crate::find_coordinator::{find_coordinator, CoordinatorType};
use crate::offsets::OffsetSpec;
use crate::TopicPartition;

/// One group, as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// `consumer` for Kafka consumers.
    pub protocol_type: String,
    /// `Empty`, `Stable`, `PreparingRebalance`, … (empty when the broker does not say).
    pub state: String,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The id the coordinator gave it.
    pub member_id: String,
    /// The client's `client.id`.
    pub client_id: String,
    /// Where it connects from.
    pub client_host: String,
    /// Partitions assigned to it (decoded from the consumer protocol).
    pub assignment: Vec<TopicPartition>,
}

/// A group's committed offset for one partition, with the lag behind its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPartitionOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset (the next offset to read).
    pub committed: i64,
    /// End of the partition (high watermark).
    pub end_offset: i64,
    /// `end_offset - committed`, never below zero.
    pub lag: i64,
}

/// What DescribeGroups and OffsetFetch say about a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// `Empty`, `Stable`, `PreparingRebalance`, `CompletingRebalance` or `Dead`.
    pub state: String,
    /// `consumer` for Kafka consumers.
    pub protocol_type: String,
    /// The chosen assignor (`range`, `roundrobin`, …).
    pub protocol: String,
    /// Current members.
    pub members: Vec<GroupMember>,
    /// Committed offsets and lag, per partition.
    pub offsets: Vec<GroupPartitionOffset>,
}

impl Admin {
    /// Every group the cluster knows.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let connection = self.cluster().any_connection().await?;
        let version = connection.version(ApiKey::ListGroups)?;
        let response = connection
            .send(&ListGroupsRequest::default(), version)
            .await?;
        if let Some(e) =
            ClientError::from_code(response.error_code, || "list groups".to_string(), None)
        {
            return Err(e);
        }
        Ok(response
            .groups
            .into_iter()
            .map(|g| GroupListing {
                group_id: g.group_id,
                protocol_type: g.protocol_type,
                state: g.group_state,
            })
            .collect())
    }

    /// A group's state, members with their assignments, and committed
    /// offsets with lag.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let connection = self.coordinator(group).await?;
        let version = connection.version(ApiKey::DescribeGroups)?;
        let request = DescribeGroupsRequest::default().with_groups(vec![group.to_string()]);
        let response = connection.send(&request, version).await?;
        let described = response
            .groups
            .into_iter()
            .find(|g| g.group_id == group)
            .ok_or_else(|| ClientError::Protocol {
                addr: connection.addr().to_string(),
                reason: format!("DescribeGroups response does not mention `{group}`"),
            })?;
        // DescribeGroups carries a per-group error message only from v6 on,
        // beyond the versions this client speaks.
        if let Some(e) = ClientError::from_code(
            described.error_code,
            || format!("describe group `{group}`"),
            None,
        ) {
            return Err(e);
        }
        let members = described
            .members
            .into_iter()
            .map(|m| GroupMember {
                member_id: m.member_id,
                client_id: m.client_id,
                client_host: m.client_host,
                assignment: decode_assignment(m.member_assignment),
            })
            .collect();
        let mut offsets = Vec::new();
        for (tp, committed) in self.committed_offsets(group).await? {
            let end_offset = self
                .list_offsets(&tp.topic, tp.partition, OffsetSpec::Latest)
                .await?;
            offsets.push(GroupPartitionOffset {
                lag: (end_offset - committed).max(0),
                topic: tp.topic,
                partition: tp.partition,
                committed,
                end_offset,
            });
        }
        Ok(GroupDescription {
            group_id: group.to_string(),
            state: described.group_state,
            protocol_type: described.protocol_type,
            protocol: described.protocol_data,
            members,
            offsets,
        })
    }

    /// Every committed offset of a group (the next offset to read), by partition.
    pub async fn committed_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let connection = self.coordinator(group).await?;
        let version = connection.version(ApiKey::OffsetFetch)?;
        if version < 2 {
            return Err(ClientError::Config(
                "listing all of a group's offsets needs OffsetFetch v2 or later".to_string(),
            ));
        }
        // A null topic list asks for every committed offset of the group.
        let request = OffsetFetchRequest::default()
            .with_group_id(group.to_string())
            .with_topics(None);
        let response = connection.send(&request, version).await?;
        if let Some(e) = ClientError::from_code(
            response.error_code,
            || format!("fetch offsets of `{group}`"),
            None,
        ) {
            return Err(e);
        }
        let mut offsets = BTreeMap::new();
        for topic in response.topics {
            for partition in topic.partitions {
                if partition.committed_offset >= 0 && partition.error_code == 0 {
                    offsets.insert(
                        TopicPartition::new(topic.name.clone(), partition.partition_index),
                        partition.committed_offset,
                    );
                }
            }
        }
        Ok(offsets)
    }

    /// Sets a group's committed offsets (the next offset to read, per
    /// partition), as an administrator: the coordinator accepts this only
    /// while the group has no active members.
    pub async fn commit_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        let connection = self.coordinator(group).await?;
        let version = connection.version(ApiKey::OffsetCommit)?;
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (tp, offset) in offsets {
            let entry = OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(*offset);
            match topics.iter_mut().find(|t| t.name == tp.topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(tp.topic.clone())
                        .with_partitions(vec![entry]),
                ),
            }
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(group.to_string())
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(String::new())
            .with_topics(topics);
        let response = connection.send(&request, version).await?;
        for topic in response.topics {
            for partition in topic.partitions {
                if let Some(e) = ClientError::from_code(
                    partition.error_code,
                    || {
                        format!(
                            "commit offset of `{group}` for {}-{}",
                            topic.name, partition.partition_index
                        )
                    },
                    None,
                ) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Deletes a group's committed offsets of `partitions` (OffsetDelete),
    /// so its consumers start those partitions from their reset policy. The
    /// coordinator refuses (GROUP_SUBSCRIBED_TO_TOPIC) the partitions of
    /// topics the group's active members subscribe to; an unknown group is
    /// GROUP_ID_NOT_FOUND. The first refusal is returned, after the
    /// coordinator has deleted whatever it accepted.
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let connection = self.coordinator(group).await?;
        let version = connection.version(ApiKey::OffsetDelete)?;
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic
                .entry(tp.topic.as_str())
                .or_default()
                .push(tp.partition);
        }
        let topics = by_topic
            .into_iter()
            .map(|(topic, indexes)| {
                OffsetDeleteRequestTopic::default()
                    .with_name(topic.to_string())
                    .with_partitions(
                        indexes
                            .into_iter()
                            .map(|p| {
                                OffsetDeleteRequestPartition::default().with_partition_index(p)
                            })
                            .collect(),
                    )
            })
            .collect();
        let request = OffsetDeleteRequest::default()
            .with_group_id(group.to_string())
            .with_topics(topics);
        let response = connection.send(&request, version).await?;
        if let Some(e) = ClientError::from_code(
            response.error_code,
            || format!("delete offsets of `{group}`"),
            None,
        ) {
            return Err(e);
        }
        for topic in response.topics {
            for partition in topic.partitions {
                if let Some(e) = ClientError::from_code(
                    partition.error_code,
                    || {
                        format!(
                            "delete offset of `{group}` for {}-{}",
                            topic.name, partition.partition_index
                        )
                    },
                    None,
                ) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Deletes a group and its committed offsets (it must have no active members).
    pub async fn delete_group(&self, group: &str) -> Result<()> {
        let connection = self.coordinator(group).await?;
        let version = connection.version(ApiKey::DeleteGroups)?;
        let request = DeleteGroupsRequest::default().with_groups_names(vec![group.to_string()]);
        let response = connection.send(&request, version).await?;
        let result = response
            .results
            .iter()
            .find(|r| r.group_id == group)
            .ok_or_else(|| ClientError::Protocol {
                addr: connection.addr().to_string(),
                reason: format!("DeleteGroups response does not mention `{group}`"),
            })?;
        match ClientError::from_code(
            result.error_code,
            || format!("delete group `{group}`"),
            None,
        ) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A connection to `group`'s coordinator.
    async fn coordinator(&self, group: &str) -> Result<BrokerConnection> {
        let found = find_coordinator(self.cluster(), CoordinatorType::Group, group).await?;
        self.cluster().connection(found.node_id).await
    }
}

/// Decodes a consumer-protocol assignment (version prefix, then the struct);
/// anything else (another protocol type) yields no partitions.
fn decode_assignment(mut bytes: bytes::Bytes) -> Vec<TopicPartition> {
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = bytes.get_i16();
    match ConsumerProtocolAssignment::from_bytes(bytes, version) {
        Ok(assignment) => assignment
            .assigned_partitions
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic;
                t.partitions
                    .into_iter()
                    .map(move |p| TopicPartition::new(topic.clone(), p))
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}
