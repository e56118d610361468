//! The transactional APIs: AddPartitionsToTxn, AddOffsetsToTxn,
//! TxnOffsetCommit, EndTxn, ListTransactions and DescribeTransactions, on
//! top of the transaction coordinator (`txn::coordinator`). InitProducerId
//! for a transactional id is in `handlers::admin`.
//!
//! Kafka's rules kept here: AddPartitionsToTxn refuses the whole request
//! when one partition is unknown (that partition gets
//! UNKNOWN_TOPIC_OR_PARTITION, the others OPERATION_NOT_ATTEMPTED) and adds
//! nothing; the coordinator's own error is copied to every partition.
//!
//! Authorization, as Kafka: WRITE on the transactional id for every API
//! that changes a transaction (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED
//! everywhere); AddPartitionsToTxn also WRITE on each topic, AddOffsetsToTxn
//! READ on the group, TxnOffsetCommit READ on the group and each topic;
//! DescribeTransactions DESCRIBE on each id, ListTransactions lists only
//! the ids it may describe.

use std::sync::Arc;

use sediment_protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use sediment_protocol::messages::describe_transactions::{
    DescribedTransaction, DescribedTransactionTopic,
};
use sediment_protocol::messages::list_transactions::ListedTransaction;
use sediment_protocol::messages::txn_offset_commit::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use sediment_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, ListTransactionsRequest, ListTransactionsResponse,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use sediment_protocol::ErrorCode;

use crate::basics::now_ms;
use crate::broker::Broker;
use crate::group::offsets::CommittedOffset;
use crate::handlers::group::MAX_OFFSET_METADATA_BYTES;
use crate::protocol::errors::{Refusal, ToErrorCode};
use crate::security::acl::{AclOperation, ResourceType};
use crate::session::Session;
use crate::txn::state::TxnState;

/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED unless `session` may WRITE the id.
fn may_write_txn(broker: &Broker, session: &Session, transactional_id: &str) -> Option<i16> {
    broker
        .authorize(
            session,
            AclOperation::Write,
            ResourceType::TransactionalId,
            transactional_id,
        )
        .err()
        .map(|denied| Refusal::from(denied).code)
}

/// AddPartitionsToTxn (v0–3).
pub async fn add_partitions(
    broker: &Arc<Broker>,
    request: AddPartitionsToTxnRequest,
    session: &Session,
) -> AddPartitionsToTxnResponse {
    let mut wanted = Vec::new();
    let mut unknown = Vec::new();
    let mut denied = Vec::new();
    let txn_denied = may_write_txn(broker, session, &request.transactional_id);
    for topic in &request.topics {
        let may_write = broker.allows(
            session,
            AclOperation::Write,
            ResourceType::Topic,
            &topic.name,
        );
        for &partition in &topic.partitions {
            let tp = (topic.name.to_string(), partition);
            if !may_write {
                denied.push(tp);
            } else if broker.partition(&tp.0, partition).is_ok() {
                wanted.push(tp);
            } else {
                unknown.push(tp);
            }
        }
    }
    let code_for = |tp: &(String, i32)| -> i16 {
        if let Some(code) = txn_denied {
            return code;
        }
        if unknown.is_empty() && denied.is_empty() {
            return 0;
        }
        if denied.contains(tp) {
            ErrorCode::TopicAuthorizationFailed.code()
        } else if unknown.contains(tp) {
            ErrorCode::UnknownTopicOrPartition.code()
        } else {
            ErrorCode::OperationNotAttempted.code()
        }
    };
    let common = if unknown.is_empty() && denied.is_empty() && txn_denied.is_none() {
        match broker
            .txn_coordinator()
            .add(
                &request.transactional_id,
                request.producer_id,
                request.producer_epoch,
                &wanted,
                &[],
            )
            .await
        {
            Ok(()) => 0,
            Err(error) => {
                tracing::debug!(transactional_id = %request.transactional_id, error = %error, "AddPartitionsToTxn refused");
                error.kafka_error_code()
            }
        }
    } else {
        0
    };
    let results = request
        .topics
        .iter()
        .map(|topic| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(
                    topic
                        .partitions
                        .iter()
                        .map(|&partition| {
                            let tp = (topic.name.to_string(), partition);
                            let code = if common != 0 { common } else { code_for(&tp) };
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(partition)
                                .with_partition_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic(results)
}

/// AddOffsetsToTxn (v0–3): the group's offsets join the transaction.
pub async fn add_offsets(
    broker: &Arc<Broker>,
    request: AddOffsetsToTxnRequest,
    session: &Session,
) -> AddOffsetsToTxnResponse {
    let code = if let Some(code) = may_write_txn(broker, session, &request.transactional_id) {
        code
    } else if request.group_id.is_empty() {
        ErrorCode::InvalidGroupId.code()
    } else if let Err(denied) = broker.authorize(
        session,
        AclOperation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        Refusal::from(denied).code
    } else {
        match broker
            .txn_coordinator()
            .add(
                &request.transactional_id,
                request.producer_id,
                request.producer_epoch,
                &[],
                &[request.group_id.to_string()],
            )
            .await
        {
            Ok(()) => 0,
            Err(error) => error.kafka_error_code(),
        }
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

/// TxnOffsetCommit (v0–3): offsets staged until the transaction ends.
///
/// v3+ carries the consumer's generation and member id: a known generation
/// is checked against the group first (KIP-447), so a member that lost its
/// partitions in a rebalance cannot commit offsets for them.
pub async fn txn_offset_commit(
    broker: &Arc<Broker>,
    request: TxnOffsetCommitRequest,
    version: i16,
    session: &Session,
) -> TxnOffsetCommitResponse {
    let mut offsets = Vec::new();
    let mut refused: Vec<(String, i32, i16)> = Vec::new();
    let now = now_ms();
    let denied = may_write_txn(broker, session, &request.transactional_id).or_else(|| {
        broker
            .authorize(
                session,
                AclOperation::Read,
                ResourceType::Group,
                &request.group_id,
            )
            .err()
            .map(|denied| Refusal::from(denied).code)
    });
    for topic in &request.topics {
        let may_read = broker.allows(
            session,
            AclOperation::Read,
            ResourceType::Topic,
            &topic.name,
        );
        for partition in &topic.partitions {
            let name = topic.name.to_string();
            if !may_read {
                refused.push((
                    name,
                    partition.partition_index,
                    ErrorCode::TopicAuthorizationFailed.code(),
                ));
            } else if broker.partition(&name, partition.partition_index).is_err() {
                refused.push((
                    name,
                    partition.partition_index,
                    ErrorCode::UnknownTopicOrPartition.code(),
                ));
            } else if partition
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > MAX_OFFSET_METADATA_BYTES)
            {
                refused.push((
                    name,
                    partition.partition_index,
                    ErrorCode::OffsetMetadataTooLarge.code(),
                ));
            } else {
                offsets.push((
                    name,
                    partition.partition_index,
                    CommittedOffset {
                        offset: partition.committed_offset,
                        leader_epoch: partition.committed_leader_epoch,
                        metadata: partition.committed_metadata.clone(),
                        commit_timestamp: now,
                    },
                ));
            }
        }
    }
    if let Some(code) = denied {
        refused.extend(offsets.drain(..).map(|(t, p, _)| (t, p, code)));
    }
    let member_refused = if version >= 3 && request.generation_id >= 0 && !offsets.is_empty() {
        match broker.group_coordinator() {
            Some(coordinator) => coordinator
                .validate_member(
                    request.group_id.to_string(),
                    request.member_id.to_string(),
                    request.generation_id,
                )
                .await
                .err()
                .map(|error| error.kafka_error_code()),
            None => Some(ErrorCode::CoordinatorNotAvailable.code()),
        }
    } else {
        None
    };
    let common = if request.group_id.is_empty() {
        ErrorCode::InvalidGroupId.code()
    } else if let Some(code) = member_refused {
        code
    } else if offsets.is_empty() {
        0
    } else {
        match broker
            .txn_coordinator()
            .commit_offsets(
                &request.transactional_id,
                request.producer_id,
                request.producer_epoch,
                &request.group_id,
                offsets,
            )
            .await
        {
            Ok(()) => 0,
            Err(error) => {
                tracing::debug!(transactional_id = %request.transactional_id, error = %error, "TxnOffsetCommit refused");
                error.kafka_error_code()
            }
        }
    };
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|p| {
                            let own = refused
                                .iter()
                                .find(|(t, i, _)| {
                                    t.as_str() == topic.name.as_str() && *i == p.partition_index
                                })
                                .map(|(_, _, code)| *code);
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(own.unwrap_or(common))
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// EndTxn (v0–3): commit or abort.
pub async fn end_txn(
    broker: &Arc<Broker>,
    request: EndTxnRequest,
    session: &Session,
) -> EndTxnResponse {
    if let Some(code) = may_write_txn(broker, session, &request.transactional_id) {
        return EndTxnResponse::default().with_error_code(code);
    }
    let ended = broker
        .txn_coordinator()
        .end_txn(
            broker.logs(),
            &request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            request.committed,
        )
        .await;
    let code = match ended {
        Ok(()) => 0,
        Err(error) => {
            tracing::debug!(transactional_id = %request.transactional_id, error = %error, "EndTxn refused");
            error.kafka_error_code()
        }
    };
    EndTxnResponse::default().with_error_code(code)
}

/// ListTransactions (v0–1).
pub async fn list_transactions(
    broker: &Arc<Broker>,
    request: ListTransactionsRequest,
    session: &Session,
) -> ListTransactionsResponse {
    let known = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ];
    let unknown_state_filters: Vec<String> = request
        .state_filters
        .iter()
        .filter(|f| !known.iter().any(|s| s.kafka_name() == f.as_str()))
        .map(|f| f.to_string())
        .collect();
    let states: Vec<String> = request
        .state_filters
        .iter()
        .map(|f| f.to_string())
        .collect();
    let listed = broker
        .txn_coordinator()
        .list(
            &states,
            &request.producer_id_filters,
            request.duration_filter,
        )
        .await;
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown_state_filters)
        .with_transaction_states(
            listed
                .into_iter()
                .filter(|t| {
                    broker.allows(
                        session,
                        AclOperation::Describe,
                        ResourceType::TransactionalId,
                        &t.transactional_id,
                    )
                })
                .map(|t| {
                    ListedTransaction::default()
                        .with_transactional_id(t.transactional_id)
                        .with_producer_id(t.meta.producer_id)
                        .with_transaction_state(t.meta.state.kafka_name().into())
                })
                .collect(),
        )
}

/// DescribeTransactions (v0).
pub async fn describe_transactions(
    broker: &Arc<Broker>,
    request: DescribeTransactionsRequest,
    session: &Session,
) -> DescribeTransactionsResponse {
    let mut described = Vec::with_capacity(request.transactional_ids.len());
    for id in &request.transactional_ids {
        let mut entry = DescribedTransaction::default()
            .with_transactional_id(id.clone())
            .with_producer_id(-1)
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1);
        if let Err(denied) = broker.authorize(
            session,
            AclOperation::Describe,
            ResourceType::TransactionalId,
            id,
        ) {
            entry.error_code = Refusal::from(denied).code;
            described.push(entry);
            continue;
        }
        match broker.txn_coordinator().describe(id).await {
            None => entry.error_code = ErrorCode::TransactionalIdNotFound.code(),
            Some(meta) => {
                let mut topics: Vec<DescribedTransactionTopic> = Vec::new();
                for (topic, partition) in &meta.partitions {
                    match topics.last_mut() {
                        Some(last) if last.topic.as_str() == topic.as_str() => {
                            last.partitions.push(*partition)
                        }
                        _ => topics.push(
                            DescribedTransactionTopic::default()
                                .with_topic(topic.clone())
                                .with_partitions(vec![*partition]),
                        ),
                    }
                }
                entry = entry
                    .with_transaction_state(meta.state.kafka_name().into())
                    .with_transaction_timeout_ms(meta.timeout_ms)
                    .with_transaction_start_time_ms(meta.txn_start_ms)
                    .with_producer_id(meta.producer_id)
                    .with_producer_epoch(meta.producer_epoch)
                    .with_topics(topics);
            }
        }
        described.push(entry);
    }
    DescribeTransactionsResponse::default().with_transaction_states(described)
}
