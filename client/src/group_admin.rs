//! Consumer-group administration: list, describe (members, assignments,
//! committed offsets and lag), reset committed offsets, delete. Requests go
//! to the group's coordinator, found with FindCoordinator.

use bytes::Buf;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::admin::{topic_name, Admin};
use crate::connection::BrokerConnection;
use crate::error::{ClientError, Result};
use crate::offsets::OffsetSpec;

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
    pub assignment: Vec<(String, i32)>,
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
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            })
            .collect())
    }

    /// A group's state, members with their assignments, and committed
    /// offsets with lag.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let connection = self.coordinator(group).await?;
        let version = connection.version(ApiKey::DescribeGroups)?;
        let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
        let response = connection.send(&request, version).await?;
        let described = response
            .groups
            .into_iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| ClientError::Protocol {
                addr: connection.addr().to_string(),
                reason: format!("DescribeGroups response does not mention `{group}`"),
            })?;
        if let Some(e) = ClientError::from_code(
            described.error_code,
            || format!("describe group `{group}`"),
            described.error_message.as_ref().map(|m| m.as_str()),
        ) {
            return Err(e);
        }
        let members = described
            .members
            .into_iter()
            .map(|m| GroupMember {
                member_id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: decode_assignment(m.member_assignment),
            })
            .collect();
        let mut offsets = Vec::new();
        for (topic, partition, committed) in self.committed_offsets(group).await? {
            let end_offset = self
                .list_offsets(&topic, partition, OffsetSpec::Latest)
                .await?;
            offsets.push(GroupPartitionOffset {
                lag: (end_offset - committed).max(0),
                topic,
                partition,
                committed,
                end_offset,
            });
        }
        Ok(GroupDescription {
            group_id: group.to_string(),
            state: described.group_state.to_string(),
            protocol_type: described.protocol_type.to_string(),
            protocol: described.protocol_data.to_string(),
            members,
            offsets,
        })
    }

    /// Every committed offset of a group: (topic, partition, offset).
    pub async fn committed_offsets(&self, group: &str) -> Result<Vec<(String, i32, i64)>> {
        let connection = self.coordinator(group).await?;
        let version = connection.version(ApiKey::OffsetFetch)?;
        if version < 2 {
            return Err(ClientError::Config(
                "listing all of a group's offsets needs OffsetFetch v2 or later".to_string(),
            ));
        }
        // A null topic list asks for every committed offset of the group.
        let request = OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(None);
        let response = connection.send(&request, version).await?;
        if let Some(e) = ClientError::from_code(
            response.error_code,
            || format!("fetch offsets of `{group}`"),
            None,
        ) {
            return Err(e);
        }
        let mut offsets = Vec::new();
        for topic in response.topics {
            for partition in topic.partitions {
                if partition.committed_offset >= 0 && partition.error_code == 0 {
                    offsets.push((
                        topic.name.0.to_string(),
                        partition.partition_index,
                        partition.committed_offset,
                    ));
                }
            }
        }
        offsets.sort();
        Ok(offsets)
    }

    /// Sets a group's committed offsets, as an administrator: the coordinator
    /// accepts this only while the group has no active members.
    pub async fn commit_group_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, i64)],
    ) -> Result<()> {
        let connection = self.coordinator(group).await?;
        let version = connection.version(ApiKey::OffsetCommit)?;
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset) in offsets {
            let entry = OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset);
            match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(vec![entry]),
                ),
            }
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::from_static_str(""))
            .with_topics(topics);
        let response = connection.send(&request, version).await?;
        for topic in response.topics {
            for partition in topic.partitions {
                if let Some(e) = ClientError::from_code(
                    partition.error_code,
                    || {
                        format!(
                            "commit offset of `{group}` for {}-{}",
                            topic.name.0.as_str(),
                            partition.partition_index
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
        let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
        let response = connection.send(&request, version).await?;
        let result = response
            .results
            .iter()
            .find(|r| r.group_id.0.as_str() == group)
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
        let connection = self.cluster().any_connection().await?;
        let version = connection.version(ApiKey::FindCoordinator)?;
        let request = if version >= 4 {
            FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![StrBytes::from_string(group.to_string())])
        } else {
            FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string()))
        };
        let response = connection.send(&request, version).await?;
        let (error_code, node_id) = match response.coordinators.first() {
            Some(c) if version >= 4 => (c.error_code, c.node_id.0),
            _ => (response.error_code, response.node_id.0),
        };
        if let Some(e) = ClientError::from_code(
            error_code,
            || format!("find the coordinator of `{group}`"),
            None,
        ) {
            return Err(e);
        }
        self.cluster().connection(node_id).await
    }
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

/// Decodes a consumer-protocol assignment (version prefix, then the struct);
/// anything else (another protocol type) yields no partitions.
fn decode_assignment(mut bytes: bytes::Bytes) -> Vec<(String, i32)> {
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = bytes.get_i16();
    match ConsumerProtocolAssignment::decode(&mut bytes, version) {
        Ok(assignment) => assignment
            .assigned_partitions
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (topic.clone(), p))
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}
