//! ListOffsets lookups — earliest, latest, or first offset at a timestamp —
//! for any set of partitions, one request per partition leader. Used by
//! [`Admin`](crate::Admin) and by the consumer's `seek`/`assign`. Under
//! [`IsolationLevel::ReadCommitted`] (ListOffsets v2+) "latest" is the last
//! stable offset, where a read_committed fetch stops.

use std::collections::BTreeMap;

use sediment_protocol::messages::list_offsets::{ListOffsetsPartition, ListOffsetsTopic};
use sediment_protocol::messages::ListOffsetsRequest;
use sediment_protocol::{ApiKey, ErrorCode};

use crate::cluster::Cluster;
use crate::consumer::IsolationLevel;
use crate::error::{ClientError, Result};

/// ListOffsets timestamp meaning "log start offset".
pub(crate) const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets timestamp meaning "end of the log" (the high watermark).
pub(crate) const LATEST_TIMESTAMP: i64 = -1;

/// Which offset to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The end of the log: the offset the next record will get (the high
    /// watermark).
    Latest,
    /// The first offset whose record timestamp is at or after this time (ms);
    /// `-1` when there is none.
    Timestamp(i64),
}

impl OffsetSpec {
    /// The ListOffsets wire timestamp.
    pub(crate) fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => EARLIEST_TIMESTAMP,
            OffsetSpec::Latest => LATEST_TIMESTAMP,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

/// One lookup: topic, partition, wire timestamp.
pub(crate) type Query = (String, i32, i64);

/// Looks up every query, retrying retriable errors; answers in query order.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    queries: &[Query],
    isolation: IsolationLevel,
) -> Result<Vec<i64>> {
    let mut topics: Vec<String> = queries.iter().map(|q| q.0.clone()).collect();
    topics.sort();
    topics.dedup();
    cluster
        .retry(&topics, || list_offsets_once(cluster, queries, isolation))
        .await
}

async fn list_offsets_once(
    cluster: &Cluster,
    queries: &[Query],
    isolation: IsolationLevel,
) -> Result<Vec<i64>> {
    // Leader → indexes of the queries it answers.
    let mut by_leader: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (i, (topic, partition, _)) in queries.iter().enumerate() {
        let meta = cluster.topic(topic, false).await?;
        if !(0..meta.partition_count()).contains(partition) {
            return Err(ClientError::UnknownPartition {
                topic: topic.clone(),
                partition: *partition,
                partitions: meta.partition_count(),
            });
        }
        let leader = cluster
            .leader(topic, *partition)
            .ok_or_else(|| leader_not_available(topic, *partition))?;
        by_leader.entry(leader).or_default().push(i);
    }
    let mut answers = vec![-1; queries.len()];
    for (leader, indexes) in by_leader {
        let connection = cluster.connection(leader).await?;
        let version = connection.version(ApiKey::ListOffsets)?;
        let mut request_topics: Vec<ListOffsetsTopic> = Vec::new();
        for &i in &indexes {
            let (topic, partition, timestamp) = &queries[i];
            let entry = ListOffsetsPartition::default()
                .with_partition_index(*partition)
                .with_timestamp(*timestamp);
            match request_topics.iter_mut().find(|t| t.name == *topic) {
                Some(t) => t.partitions.push(entry),
                None => request_topics.push(
                    ListOffsetsTopic::default()
                        .with_name(topic.clone())
                        .with_partitions(vec![entry]),
                ),
            }
        }
        let mut request = ListOffsetsRequest::default()
            .with_replica_id(-1)
            .with_topics(request_topics);
        if version >= 2 {
            request.isolation_level = isolation.wire();
        }
        let response = connection.send(&request, version).await?;
        for &i in &indexes {
            let (topic, partition, _) = &queries[i];
            let answer = response
                .topics
                .iter()
                .filter(|t| t.name == *topic)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == *partition)
                .ok_or_else(|| ClientError::Protocol {
                    addr: connection.addr().to_string(),
                    reason: format!("ListOffsets response has no answer for {topic}-{partition}"),
                })?;
            if let Some(error) = ClientError::from_code(
                answer.error_code,
                || format!("list offsets of {topic}-{partition}"),
                None,
            ) {
                return Err(error);
            }
            answers[i] = answer.offset;
        }
    }
    Ok(answers)
}

/// The retriable error for a partition whose leader is unknown.
pub(crate) fn leader_not_available(topic: &str, partition: i32) -> ClientError {
    ClientError::Kafka {
        error: ErrorCode::LeaderNotAvailable,
        code: ErrorCode::LeaderNotAvailable.code(),
        context: format!("find the leader of {topic}-{partition}"),
        message: None,
    }
}
