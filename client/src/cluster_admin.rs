//! Cluster and storage administration: describe the cluster (id,
//! controller, brokers: DescribeCluster) and the partitions' sizes on disk
//! (DescribeLogDirs, asked of each partition's leader).

use std::collections::BTreeMap;

use sediment_protocol::messages::describe_log_dirs::DescribableLogDirTopic;
use sediment_protocol::messages::{DescribeClusterRequest, DescribeLogDirsRequest};
use sediment_protocol::ApiKey;

use crate::admin::Admin;
use crate::error::{ClientError, Result};
use crate::offsets::leader_not_available;

/// Kafka's `EndpointType.BROKER`: DescribeCluster lists brokers.
const ENDPOINT_TYPE_BROKER: i8 = 1;

/// One broker of a [`ClusterDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerDescription {
    /// Broker id.
    pub id: i32,
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: i32,
    /// Rack, when the broker has one.
    pub rack: Option<String>,
}

/// What [`Admin::describe_cluster`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id.
    pub cluster_id: String,
    /// Broker id of the controller, -1 when unknown.
    pub controller_id: i32,
    /// Every broker, in the order the cluster lists them.
    pub brokers: Vec<BrokerDescription>,
}

impl Admin {
    /// The cluster id, controller and brokers (DescribeCluster).
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let connection = self.cluster().any_connection().await?;
        let version = connection.version(ApiKey::DescribeCluster)?;
        let request = DescribeClusterRequest::default()
            .with_include_cluster_authorized_operations(false)
            .with_endpoint_type(ENDPOINT_TYPE_BROKER);
        let response = connection.send(&request, version).await?;
        if let Some(e) = ClientError::from_code(
            response.error_code,
            || "describe the cluster".to_string(),
            response.error_message.as_deref(),
        ) {
            return Err(e);
        }
        Ok(ClusterDescription {
            cluster_id: response.cluster_id,
            controller_id: response.controller_id,
            brokers: response
                .brokers
                .into_iter()
                .map(|b| BrokerDescription {
                    id: b.broker_id,
                    host: b.host,
                    port: b.port,
                    rack: b.rack,
                })
                .collect(),
        })
    }

    /// Bytes on disk of each partition of `topic` (DescribeLogDirs, asked of
    /// each partition's leader). A partition its leader does not report
    /// (offline, just created elsewhere) is missing from the map. A broker
    /// that does not serve DescribeLogDirs is [`ClientError::UnsupportedApi`].
    pub async fn partition_sizes(&self, topic: &str) -> Result<BTreeMap<i32, u64>> {
        let meta = self.cluster().topic(topic, false).await?;
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in &meta.partitions {
            if p.leader < 0 {
                return Err(leader_not_available(topic, p.partition));
            }
            by_leader.entry(p.leader).or_default().push(p.partition);
        }
        let mut sizes = BTreeMap::new();
        for (leader, partitions) in by_leader {
            let connection = self.cluster().connection(leader).await?;
            let version = connection.version(ApiKey::DescribeLogDirs)?;
            let request = DescribeLogDirsRequest::default().with_topics(Some(vec![
                DescribableLogDirTopic::default()
                    .with_topic(topic.to_string())
                    .with_partitions(partitions.clone()),
            ]));
            let response = connection.send(&request, version).await?;
            if let Some(e) = ClientError::from_code(
                response.error_code,
                || format!("describe the log dirs of `{topic}`"),
                None,
            ) {
                return Err(e);
            }
            // A directory with an error holds nothing readable; a future
            // log is a copy being made, not the partition's size.
            let reported = response
                .results
                .iter()
                .filter(|dir| dir.error_code == 0)
                .flat_map(|dir| dir.topics.iter())
                .filter(|t| t.name == topic)
                .flat_map(|t| t.partitions.iter())
                .filter(|p| !p.is_future_key && partitions.contains(&p.partition_index));
            for p in reported {
                let size = u64::try_from(p.partition_size).unwrap_or(0);
                sizes.insert(p.partition_index, size);
            }
        }
        Ok(sizes)
    }
}
