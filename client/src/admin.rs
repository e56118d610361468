//! [`Admin`]: topic administration — create, delete, list, describe, add
//! partitions, delete records — and offset lookups, over its [`Client`](crate::Client)'s shared cluster state
//! (group administration is in `group_admin`, cluster and log-dir
//! descriptions in `cluster_admin`).
//!
//! Topic changes go to the controller (any broker when it is unknown;
//! Kafka brokers forward them). Retriable errors (NOT_CONTROLLER, a lost
//! connection) are retried after a metadata refresh; everything else,
//! including TOPIC_ALREADY_EXISTS, is returned with the broker's message.

use std::collections::BTreeMap;
use std::fmt;

use sediment_protocol::messages::create_partitions::CreatePartitionsTopic;
use sediment_protocol::messages::create_topics::{CreatableTopic, CreatableTopicConfig};
use sediment_protocol::messages::delete_records::{DeleteRecordsPartition, DeleteRecordsTopic};
use sediment_protocol::messages::delete_topics::DeleteTopicState;
use sediment_protocol::messages::describe_configs::DescribeConfigsResource;
use sediment_protocol::messages::incremental_alter_configs::{
    AlterConfigsResource, AlterableConfig,
};
use sediment_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use sediment_protocol::{ApiKey, ErrorCode, TopicPartition};
use uuid::Uuid;

use crate::cluster::Cluster;
use crate::consumer::IsolationLevel;
use crate::error::{ClientError, Result};
use crate::offsets::{self, leader_not_available, OffsetSpec, Query};

/// DescribeConfigs resource type of a topic.
const TOPIC_RESOURCE: i8 = 2;

/// One change to a topic's configs ([`Admin::alter_topic_configs`]),
/// Kafka's IncrementalAlterConfigs operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// Sets the key to the value.
    Set(String, String),
    /// Removes the override: the key returns to its default.
    Delete(String),
    /// Adds items to a list config (`cleanup.policy`, say).
    Append(String, String),
    /// Removes items from a list config.
    Subtract(String, String),
}

impl ConfigChange {
    fn to_wire(&self) -> AlterableConfig {
        let (name, op, value) = match self {
            Self::Set(k, v) => (k, 0, Some(v.clone())),
            Self::Delete(k) => (k, 1, None),
            Self::Append(k, v) => (k, 2, Some(v.clone())),
            Self::Subtract(k, v) => (k, 3, Some(v.clone())),
        };
        AlterableConfig::default()
            .with_name(name.clone())
            .with_config_operation(op)
            .with_value(value)
    }
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Its name.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Topic configs (`retention.ms`, `cleanup.policy`, …); empty = broker defaults.
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with broker-default configs.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            configs: BTreeMap::new(),
        }
    }

    /// Adds one config.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }
}

/// One line of [`Admin::list_topics`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSummary {
    /// The topic.
    pub name: String,
    /// Its partition count.
    pub partitions: i32,
}

/// What [`Admin::describe_topic`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic.
    pub name: String,
    /// Its id (nil when the broker's Metadata version predates topic ids).
    pub id: TopicId,
    /// Every partition, in order.
    pub partitions: Vec<PartitionDescription>,
    /// Its configs as the broker reports them (empty when the broker does
    /// not serve DescribeConfigs).
    pub configs: BTreeMap<String, String>,
}

/// A topic's id: 16 bytes the cluster assigns when the topic is created,
/// so that a topic deleted and created again under the same name is told
/// apart. Displayed as a UUID (`8-4-4-4-12` lowercase hex).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicId([u8; 16]);

impl TopicId {
    /// The id from its 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// True for the all-zero id: the broker did not say (its Metadata
    /// version predates topic ids).
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// From the codec's representation (which stays out of the public API).
    pub(crate) fn from_uuid(id: Uuid) -> Self {
        Self(id.into_bytes())
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicId({self})")
    }
}

/// One partition of a [`TopicDescription`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionDescription {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id (-1 when none).
    pub leader: i32,
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// Offset the next record gets (the high watermark).
    pub end_offset: i64,
    /// Where read_committed consumers stop: the first offset of the oldest
    /// open transaction, or `end_offset` when none is open.
    pub last_stable_offset: i64,
    /// Bytes of the partition's log on its leader's disk (DescribeLogDirs);
    /// `None` when the leader does not report it (a broker without
    /// DescribeLogDirs, or an offline partition).
    pub size_bytes: Option<u64>,
}

/// A topic and consumer-group administration client, from
/// [`Client::admin`](crate::Client::admin). Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    cluster: Cluster,
}

impl Admin {
    /// An admin over `cluster` (see [`Client::admin`](crate::Client::admin)).
    pub(crate) fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }

    /// The cluster connections (for the group administration in `group_admin`).
    pub(crate) fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Creates a topic (replication factor: the broker's default).
    pub async fn create_topic(&self, topic: NewTopic) -> Result<()> {
        if topic.partitions < 1 {
            return Err(ClientError::Config(format!(
                "topic `{}` needs at least one partition",
                topic.name
            )));
        }
        let names = [topic.name.clone()];
        self.cluster
            .retry(&names, || self.create_topic_once(&topic))
            .await?;
        // Let the cache learn the new topic (it may take a moment to get leaders).
        self.cluster.refresh_quietly(&names).await;
        Ok(())
    }

    async fn create_topic_once(&self, topic: &NewTopic) -> Result<()> {
        let connection = self.cluster.controller_connection().await?;
        let version = connection.version(ApiKey::CreateTopics)?;
        let configs = topic
            .configs
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default()
                    .with_name(k.clone())
                    .with_value(Some(v.clone()))
            })
            .collect();
        let request = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic.name.clone())
                .with_num_partitions(topic.partitions)
                // -1 = the broker's default.replication.factor, from v4 on.
                .with_replication_factor(if version >= 4 { -1 } else { 1 })
                .with_configs(configs)])
            .with_timeout_ms(self.timeout_ms());
        let response = connection.send(&request, version).await?;
        let result = response
            .topics
            .iter()
            .find(|t| t.name == topic.name)
            .ok_or_else(|| ClientError::Protocol {
                addr: connection.addr().to_string(),
                reason: format!("CreateTopics response does not mention `{}`", topic.name),
            })?;
        match ClientError::from_code(
            result.error_code,
            || format!("create topic `{}`", topic.name),
            result.error_message.as_deref(),
        ) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Deletes a topic and all its data.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let names = [name.to_string()];
        self.cluster
            .retry(&names, || self.delete_topic_once(name))
            .await?;
        self.cluster.refresh_quietly(&names).await;
        Ok(())
    }

    async fn delete_topic_once(&self, name: &str) -> Result<()> {
        let connection = self.cluster.controller_connection().await?;
        let version = connection.version(ApiKey::DeleteTopics)?;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(self.timeout_ms());
        if version >= 6 {
            request.topics = vec![DeleteTopicState::default().with_name(Some(name.to_string()))];
        } else {
            request.topic_names = vec![name.to_string()];
        }
        let response = connection.send(&request, version).await?;
        let result = response
            .responses
            .iter()
            .find(|r| r.name.as_deref() == Some(name))
            .ok_or_else(|| ClientError::Protocol {
                addr: connection.addr().to_string(),
                reason: format!("DeleteTopics response does not mention `{name}`"),
            })?;
        match ClientError::from_code(
            result.error_code,
            || format!("delete topic `{name}`"),
            result.error_message.as_deref(),
        ) {
            Some(e) if e.kafka_error() == Some(ErrorCode::UnknownTopicOrPartition) => {
                Err(ClientError::UnknownTopic {
                    topic: name.to_string(),
                })
            }
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every non-internal topic with its partition count, sorted by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicSummary>> {
        let (response, _) = self
            .cluster
            .retry(&[], || self.cluster.fetch_metadata(None, false))
            .await?;
        let mut topics: Vec<TopicSummary> = response
            .topics
            .iter()
            .filter(|t| t.error_code == 0 && !t.is_internal)
            .filter_map(|t| {
                Some(TopicSummary {
                    name: t.name.clone()?,
                    partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Partitions (leader, log start, end offset, size on disk), id and
    /// configs of a topic.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let names = [name.to_string()];
        // Always ask: a description should not come from a stale cache.
        self.cluster
            .retry(&names, || self.cluster.fetch_metadata(Some(&names), false))
            .await?;
        let meta = self.cluster.topic(name, false).await?;
        let mut queries: Vec<Query> = Vec::with_capacity(meta.partitions.len() * 2);
        for p in &meta.partitions {
            queries.push((name.to_string(), p.partition, offsets::EARLIEST_TIMESTAMP));
            queries.push((name.to_string(), p.partition, offsets::LATEST_TIMESTAMP));
        }
        // One partition may appear only once per ListOffsets request.
        let (earliest, latest): (Vec<Query>, Vec<Query>) = queries
            .into_iter()
            .partition(|q| q.2 == offsets::EARLIEST_TIMESTAMP);
        let starts =
            offsets::list_offsets(&self.cluster, &earliest, IsolationLevel::ReadUncommitted)
                .await?;
        let ends =
            offsets::list_offsets(&self.cluster, &latest, IsolationLevel::ReadUncommitted).await?;
        let stable =
            offsets::list_offsets(&self.cluster, &latest, IsolationLevel::ReadCommitted).await?;
        let sizes = match self.partition_sizes(name).await {
            Ok(sizes) => sizes,
            // Sizes are extra: a broker without DescribeLogDirs, or one whose
            // ACLs do not let this client describe the cluster, still
            // describes the topic.
            Err(ClientError::UnsupportedApi { .. }) => BTreeMap::new(),
            Err(e) if is_authorization_refusal(&e) => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        let partitions = meta
            .partitions
            .iter()
            .zip(starts.into_iter().zip(ends).zip(stable))
            .map(|(p, ((start, end), stable))| PartitionDescription {
                partition: p.partition,
                leader: p.leader,
                log_start_offset: start,
                end_offset: end,
                last_stable_offset: stable,
                size_bytes: sizes.get(&p.partition).copied(),
            })
            .collect();
        Ok(TopicDescription {
            name: name.to_string(),
            id: TopicId::from_uuid(meta.id),
            partitions,
            // Configs are extra too: a client allowed to read a topic need
            // not be allowed DESCRIBE_CONFIGS on it.
            configs: match self.topic_configs(name).await {
                Ok(configs) => configs,
                Err(e) if is_authorization_refusal(&e) => BTreeMap::new(),
                Err(e) => return Err(e),
            },
        })
    }

    async fn topic_configs(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let connection = self.cluster.any_connection().await?;
        let version = match connection.version(ApiKey::DescribeConfigs) {
            Ok(v) => v,
            Err(ClientError::UnsupportedApi { .. }) => return Ok(BTreeMap::new()),
            Err(e) => return Err(e),
        };
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(name.to_string())
                .with_configuration_keys(None),
        ]);
        let response = connection.send(&request, version).await?;
        let mut configs = BTreeMap::new();
        for result in &response.results {
            if let Some(e) = ClientError::from_code(
                result.error_code,
                || format!("describe configs of `{name}`"),
                result.error_message.as_deref(),
            ) {
                return Err(e);
            }
            for config in &result.configs {
                if let Some(value) = &config.value {
                    configs.insert(config.name.clone(), value.clone());
                }
            }
        }
        Ok(configs)
    }

    /// The offset of `topic`/`partition` that `spec` names.
    pub async fn list_offsets(&self, topic: &str, partition: i32, spec: OffsetSpec) -> Result<i64> {
        let answers = offsets::list_offsets(
            &self.cluster,
            &[(topic.to_string(), partition, spec.wire())],
            IsolationLevel::ReadUncommitted,
        )
        .await?;
        answers
            .first()
            .copied()
            .ok_or_else(|| ClientError::Protocol {
                addr: String::new(),
                reason: "ListOffsets returned no answer".into(),
            })
    }

    /// Grows `topic` to `new_total` partitions (CreatePartitions). The
    /// count can only grow: an equal or smaller one is refused by the
    /// broker with INVALID_PARTITIONS.
    pub async fn create_partitions(&self, topic: &str, new_total: i32) -> Result<()> {
        let names = [topic.to_string()];
        self.cluster
            .retry(&names, || self.create_partitions_once(topic, new_total))
            .await?;
        // Let the cache learn the new partitions.
        self.cluster.refresh_quietly(&names).await;
        Ok(())
    }

    async fn create_partitions_once(&self, topic: &str, new_total: i32) -> Result<()> {
        let connection = self.cluster.controller_connection().await?;
        let version = connection.version(ApiKey::CreatePartitions)?;
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic.to_string())
                .with_count(new_total)
                .with_assignments(None)])
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(false);
        let response = connection.send(&request, version).await?;
        let result = response
            .results
            .iter()
            .find(|r| r.name == topic)
            .ok_or_else(|| ClientError::Protocol {
                addr: connection.addr().to_string(),
                reason: format!("CreatePartitions response does not mention `{topic}`"),
            })?;
        match ClientError::from_code(
            result.error_code,
            || format!("add partitions to `{topic}`"),
            result.error_message.as_deref(),
        ) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Deletes the records of `tp` below `before_offset` (-1: every record
    /// up to the high watermark) and returns the partition's new log start
    /// offset (its low watermark). An offset beyond the high watermark is
    /// refused with OFFSET_OUT_OF_RANGE.
    pub async fn delete_records(&self, tp: &TopicPartition, before_offset: i64) -> Result<i64> {
        let names = [tp.topic.clone()];
        self.cluster
            .retry(&names, || self.delete_records_once(tp, before_offset))
            .await
    }

    async fn delete_records_once(&self, tp: &TopicPartition, before_offset: i64) -> Result<i64> {
        let meta = self.cluster.topic(&tp.topic, false).await?;
        if !(0..meta.partition_count()).contains(&tp.partition) {
            return Err(ClientError::UnknownPartition {
                topic: tp.topic.clone(),
                partition: tp.partition,
                partitions: meta.partition_count(),
            });
        }
        let leader = self
            .cluster
            .leader(&tp.topic, tp.partition)
            .ok_or_else(|| leader_not_available(&tp.topic, tp.partition))?;
        let connection = self.cluster.connection(leader).await?;
        let version = connection.version(ApiKey::DeleteRecords)?;
        let request = DeleteRecordsRequest::default()
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(tp.topic.clone())
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_offset(before_offset)])])
            .with_timeout_ms(self.timeout_ms());
        let response = connection.send(&request, version).await?;
        let result = response
            .topics
            .iter()
            .filter(|t| t.name == tp.topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == tp.partition)
            .ok_or_else(|| ClientError::Protocol {
                addr: connection.addr().to_string(),
                reason: format!("DeleteRecords response does not mention {tp}"),
            })?;
        match ClientError::from_code(
            result.error_code,
            || format!("delete records of {tp} before offset {before_offset}"),
            None,
        ) {
            Some(e) => Err(e),
            None => Ok(result.low_watermark),
        }
    }

    /// Changes some of a topic's configs, leaving the others as they are
    /// (IncrementalAlterConfigs). All changes are checked together and take
    /// effect together, or none does; an unknown key or a bad value is
    /// refused with INVALID_CONFIG and the broker's message.
    pub async fn alter_topic_configs(&self, topic: &str, changes: &[ConfigChange]) -> Result<()> {
        let names = [topic.to_string()];
        self.cluster
            .retry(&names, || self.alter_topic_configs_once(topic, changes))
            .await
    }

    async fn alter_topic_configs_once(&self, topic: &str, changes: &[ConfigChange]) -> Result<()> {
        let connection = self.cluster.any_connection().await?;
        let version = connection.version(ApiKey::IncrementalAlterConfigs)?;
        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(topic.to_string())
                .with_configs(changes.iter().map(ConfigChange::to_wire).collect())])
            .with_validate_only(false);
        let response = connection.send(&request, version).await?;
        let result = response
            .responses
            .iter()
            .find(|r| r.resource_name == topic)
            .ok_or_else(|| ClientError::Protocol {
                addr: connection.addr().to_string(),
                reason: format!("IncrementalAlterConfigs response does not mention `{topic}`"),
            })?;
        match ClientError::from_code(
            result.error_code,
            || format!("alter configs of `{topic}`"),
            result.error_message.as_deref(),
        ) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.cluster.config().request_timeout.as_millis()).unwrap_or(i32::MAX)
    }
}

/// Whether the broker refused for lack of an ACL (the parts of a topic
/// description that need more than DESCRIBE on the topic are then left out).
fn is_authorization_refusal(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Kafka {
            error: ErrorCode::ClusterAuthorizationFailed | ErrorCode::TopicAuthorizationFailed,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_topic_id_then_displayed_as_a_uuid() {
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let topic_id = TopicId::from_uuid(id);
        assert_eq!(topic_id.to_string(), id.hyphenated().to_string());
        assert_eq!(topic_id.as_bytes(), id.as_bytes());
        assert!(!topic_id.is_nil());
        assert!(TopicId::default().is_nil());
        assert_eq!(
            format!("{:?}", TopicId::default()),
            "TopicId(00000000-0000-0000-0000-000000000000)"
        );
    }
}
