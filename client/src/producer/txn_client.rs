//! [`TxnClient`]: the transactional producer's requests — InitProducerId,
//! AddPartitionsToTxn, AddOffsetsToTxn and EndTxn to its transaction
//! coordinator, TxnOffsetCommit to a group's coordinator — each retried
//! with back-off until a deadline while the error is retriable.
//!
//! Invariants and why:
//! - The transaction coordinator is found with FindCoordinator (key type 1)
//!   and reached over a connection of its own, so that an EndTxn waiting
//!   for its markers holds up no produce acknowledgement, and none holds it
//!   up. NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or a lost connection
//!   forget it; the next attempt looks it up again.
//! - Retried: every error Kafka marks retriable — CONCURRENT_TRANSACTIONS
//!   (the previous transaction's markers are still being written),
//!   COORDINATOR_LOAD_IN_PROGRESS, the coordinator moving, timeouts, lost
//!   connections. Anything else goes back to the caller, which classifies it
//!   as fatal or abortable (see `transaction`).
//! - AddPartitionsToTxn is all-or-nothing on the broker: partitions answered
//!   OPERATION_NOT_ATTEMPTED failed because of another one, whose error is
//!   the one reported.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sediment_protocol::messages::add_partitions_to_txn::AddPartitionsToTxnTopic;
use sediment_protocol::messages::txn_offset_commit::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use sediment_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, TxnOffsetCommitRequest,
};
use sediment_protocol::{ApiKey, ErrorCode, Request};
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::connection::BrokerConnection;
use crate::error::{ClientError, Result};
use crate::find_coordinator::{find_coordinator, CoordinatorType};
use crate::group::ConsumerGroupMetadata;
use crate::producer::producer_id::init_producer_id;
use crate::producer::sequence::ProducerIdentity;

/// Requests of one transactional id. See the module documentation.
pub(crate) struct TxnClient {
    cluster: Cluster,
    transactional_id: String,
    /// `transaction.timeout.ms`, sent with InitProducerId.
    timeout_ms: i32,
    /// The coordinator connection, once found.
    link: tokio::sync::Mutex<Option<BrokerConnection>>,
}

impl TxnClient {
    /// A client for `transactional_id`; nothing is sent yet.
    pub(crate) fn new(cluster: Cluster, transactional_id: String, timeout: Duration) -> Self {
        Self {
            cluster,
            transactional_id,
            timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
            link: tokio::sync::Mutex::new(None),
        }
    }

    /// The transactional id.
    pub(crate) fn transactional_id(&self) -> &str {
        &self.transactional_id
    }

    /// The live coordinator connection, finding the coordinator if needed.
    async fn coordinator(&self) -> Result<BrokerConnection> {
        let mut link = self.link.lock().await;
        if let Some(connection) = link.as_ref().filter(|c| !c.is_closed()) {
            return Ok(connection.clone());
        }
        *link = None;
        let found = find_coordinator(
            &self.cluster,
            CoordinatorType::Transaction,
            &self.transactional_id,
        )
        .await?;
        tracing::debug!(transactional_id = %self.transactional_id, coordinator = %found.addr, "found the transaction coordinator");
        let connection = BrokerConnection::connect(&found.addr, self.cluster.config()).await?;
        *link = Some(connection.clone());
        Ok(connection)
    }

    /// One request to the coordinator.
    async fn call<R: Request>(&self, build: impl FnOnce(i16) -> R) -> Result<R::Response> {
        let connection = self.coordinator().await?;
        let version = connection.version(R::KEY)?;
        connection.send(&build(version), version).await
    }

    /// Runs `op` until it succeeds, fails with an error that is not
    /// retriable, or `deadline` passes; forgets the coordinator when the
    /// error says it moved.
    async fn retrying<T, F, Fut>(&self, what: &str, deadline: Instant, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match op().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let now = Instant::now();
            if !error.is_retriable() || now >= deadline {
                return Err(error);
            }
            let moved = matches!(
                error.kafka_error(),
                Some(ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable)
            ) || !matches!(error, ClientError::Kafka { .. });
            if moved {
                *self.link.lock().await = None;
            }
            tracing::debug!(transactional_id = %self.transactional_id, %error, attempt, "{what} failed; retrying");
            let wait = self.cluster.retry_backoff(attempt);
            tokio::time::sleep(wait.min(deadline - now)).await;
        }
    }

    /// InitProducerId with the transactional id: fences older producers of
    /// the id (and aborts their open transaction); with `current`, bumps
    /// this producer's own epoch.
    pub(crate) async fn init_producer_id(
        &self,
        current: Option<ProducerIdentity>,
        deadline: Instant,
    ) -> Result<ProducerIdentity> {
        self.retrying("InitProducerId", deadline, || async move {
            let connection = self.coordinator().await?;
            init_producer_id(
                &connection,
                Some(&self.transactional_id),
                self.timeout_ms,
                current,
            )
            .await
        })
        .await
    }

    /// AddPartitionsToTxn for `partitions` (topic, partition).
    pub(crate) async fn add_partitions(
        &self,
        identity: ProducerIdentity,
        partitions: &[(Arc<str>, i32)],
        deadline: Instant,
    ) -> Result<()> {
        let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
        for (topic, partition) in partitions {
            match topics.iter_mut().find(|t| *t.name == **topic) {
                Some(t) => t.partitions.push(*partition),
                None => topics.push(
                    AddPartitionsToTxnTopic::default()
                        .with_name(topic.to_string())
                        .with_partitions(vec![*partition]),
                ),
            }
        }
        self.retrying("AddPartitionsToTxn", deadline, || {
            let topics = topics.clone();
            async move {
                let response = self
                    .call(|_| {
                        AddPartitionsToTxnRequest::default()
                            .with_transactional_id(self.transactional_id.clone())
                            .with_producer_id(identity.producer_id)
                            .with_producer_epoch(identity.epoch)
                            .with_topics(topics)
                    })
                    .await?;
                let mut not_attempted = None;
                for topic in &response.results_by_topic {
                    for result in &topic.results_by_partition {
                        let code = result.partition_error_code;
                        let context = || {
                            format!(
                                "add {}-{} to transaction `{}`",
                                topic.name, result.partition_index, self.transactional_id
                            )
                        };
                        if code == ErrorCode::OperationNotAttempted.code() {
                            not_attempted = not_attempted
                                .or_else(|| ClientError::from_code(code, context, None));
                        } else if let Some(error) = ClientError::from_code(code, context, None) {
                            return Err(error);
                        }
                    }
                }
                not_attempted.map_or(Ok(()), Err)
            }
        })
        .await
    }

    /// AddOffsetsToTxn: the transaction will carry `group`'s offsets.
    pub(crate) async fn add_offsets(
        &self,
        identity: ProducerIdentity,
        group: &str,
        deadline: Instant,
    ) -> Result<()> {
        self.retrying("AddOffsetsToTxn", deadline, || async move {
            let response = self
                .call(|_| {
                    AddOffsetsToTxnRequest::default()
                        .with_transactional_id(self.transactional_id.clone())
                        .with_producer_id(identity.producer_id)
                        .with_producer_epoch(identity.epoch)
                        .with_group_id(group.to_string())
                })
                .await?;
            let context = || {
                format!(
                    "add offsets of group `{group}` to transaction `{}`",
                    self.transactional_id
                )
            };
            ClientError::from_code(response.error_code, context, None).map_or(Ok(()), Err)
        })
        .await
    }

    /// TxnOffsetCommit of `offsets` (topic, partition, next offset to read)
    /// for `group`, to the group's coordinator: stored now, visible once the
    /// transaction commits.
    pub(crate) async fn commit_offsets(
        &self,
        identity: ProducerIdentity,
        member: &ConsumerGroupMetadata,
        offsets: &[(String, i32, i64)],
        deadline: Instant,
    ) -> Result<()> {
        let group = member.group_id.as_str();
        let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset) in offsets {
            let entry = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_metadata(Some(String::new()));
            match topics.iter_mut().find(|t| t.name == *topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(topic.clone())
                        .with_partitions(vec![entry]),
                ),
            }
        }
        self.retrying("TxnOffsetCommit", deadline, || {
            let topics = topics.clone();
            async move {
                let found = find_coordinator(&self.cluster, CoordinatorType::Group, group).await?;
                let connection = self.cluster.connection(found.node_id).await?;
                let version = connection.version(ApiKey::TxnOffsetCommit)?;
                let request = TxnOffsetCommitRequest::default()
                    .with_transactional_id(self.transactional_id.clone())
                    .with_group_id(group.to_string())
                    .with_producer_id(identity.producer_id)
                    .with_producer_epoch(identity.epoch)
                    .with_generation_id(member.generation_id)
                    .with_member_id(member.member_id.clone())
                    .with_topics(topics);
                let response = connection.send(&request, version).await?;
                for topic in &response.topics {
                    for partition in &topic.partitions {
                        let context = || {
                            format!(
                                "commit the offset of {}-{} for group `{group}` in transaction `{}`",
                                topic.name, partition.partition_index, self.transactional_id
                            )
                        };
                        if let Some(error) =
                            ClientError::from_code(partition.error_code, context, None)
                        {
                            return Err(error);
                        }
                    }
                }
                Ok(())
            }
        })
        .await
    }

    /// EndTxn: commit (`true`) or abort the open transaction.
    pub(crate) async fn end_txn(
        &self,
        identity: ProducerIdentity,
        commit: bool,
        deadline: Instant,
    ) -> Result<()> {
        let what = if commit { "commit" } else { "abort" };
        self.retrying("EndTxn", deadline, || async move {
            let response = self
                .call(|_| {
                    EndTxnRequest::default()
                        .with_transactional_id(self.transactional_id.clone())
                        .with_producer_id(identity.producer_id)
                        .with_producer_epoch(identity.epoch)
                        .with_committed(commit)
                })
                .await?;
            let context = || format!("{what} transaction `{}`", self.transactional_id);
            ClientError::from_code(response.error_code, context, None).map_or(Ok(()), Err)
        })
        .await
    }
}
