//! CreatePartitions: grows topics' partition counts.
//!
//! A count at or below the current one, or above `max_partitions_per_topic`,
//! is INVALID_PARTITIONS; an unknown topic UNKNOWN_TOPIC_OR_PARTITION; a
//! topic named twice in one request INVALID_REQUEST (as Kafka answers).
//! Manual assignments are accepted only when well formed (one per new
//! partition, each naming just this broker, the only one there is) and are
//! otherwise INVALID_REPLICA_ASSIGNMENT; placement itself needs no choice on
//! a single node. `validate_only` checks everything and changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use sediment_protocol::messages::create_partitions::{
    CreatePartitionsAssignment, CreatePartitionsTopicResult,
};
use sediment_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use sediment_protocol::ErrorCode;

use crate::broker::{Broker, TopicOpError};
use crate::protocol::errors::Refusal;
use crate::security::acl::{AclOperation, ResourceType};
use crate::session::Session;

/// The CreatePartitions response. Creating a partition syncs its directory,
/// so the work runs on the blocking pool.
pub async fn handle(
    broker: &Arc<Broker>,
    request: CreatePartitionsRequest,
    session: &Session,
) -> CreatePartitionsResponse {
    let broker = Arc::clone(broker);
    let names: Vec<String> = request.topics.iter().map(|t| t.name.clone()).collect();
    let session = session.clone();
    match tokio::task::spawn_blocking(move || create_all(&broker, request, &session)).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(error = %error, "CreatePartitions task failed");
            let results = names
                .into_iter()
                .map(|name| {
                    topic_result(
                        name,
                        Refusal::new(ErrorCode::KafkaStorageError, "internal error"),
                    )
                })
                .collect();
            CreatePartitionsResponse::default().with_results(results)
        }
    }
}

/// Grows every topic of the request, in order.
fn create_all(
    broker: &Broker,
    request: CreatePartitionsRequest,
    session: &Session,
) -> CreatePartitionsResponse {
    let mut mentions: BTreeMap<&str, usize> = BTreeMap::new();
    for topic in &request.topics {
        *mentions.entry(topic.name.as_str()).or_default() += 1;
    }
    let results = request
        .topics
        .iter()
        .map(|topic| {
            if let Err(denied) = broker.authorize(
                session,
                AclOperation::Alter,
                ResourceType::Topic,
                &topic.name,
            ) {
                return topic_result(topic.name.clone(), Refusal::from(denied));
            }
            if mentions.get(topic.name.as_str()).copied().unwrap_or(0) > 1 {
                let refusal = Refusal::new(
                    ErrorCode::InvalidRequest,
                    format!("topic {} appears more than once in the request", topic.name),
                );
                return topic_result(topic.name.clone(), refusal);
            }
            let outcome = check_assignments(
                broker,
                &topic.name,
                topic.count,
                topic.assignments.as_deref(),
            )
            .and_then(|()| {
                broker.create_partitions(&topic.name, topic.count, request.validate_only)
            });
            match outcome {
                Ok(_) => CreatePartitionsTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_error_code(0),
                Err(error) => topic_result(topic.name.clone(), Refusal::from(error)),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

/// Refuses a malformed manual assignment: it must have one entry per new
/// partition, each listing exactly this broker.
fn check_assignments(
    broker: &Broker,
    name: &str,
    count: i32,
    assignments: Option<&[CreatePartitionsAssignment]>,
) -> Result<(), TopicOpError> {
    let Some(assignments) = assignments else {
        return Ok(());
    };
    // An unknown topic, or a count that does not grow, is reported as such
    // by `Broker::create_partitions`, not as a bad assignment.
    let Some(current) = broker.topics().get(name).map(|t| t.partitions) else {
        return Ok(());
    };
    let added = i64::from(count) - i64::from(current);
    if added <= 0 {
        return Ok(());
    }
    if i64::try_from(assignments.len()).unwrap_or(i64::MAX) != added {
        return Err(TopicOpError::InvalidReplicaAssignment(format!(
            "increasing topic {name} by {added} partitions needs {added} assignments, got {}",
            assignments.len()
        )));
    }
    let me = broker.config().broker_id;
    if let Some(bad) = assignments.iter().find(|a| a.broker_ids != [me]) {
        return Err(TopicOpError::InvalidReplicaAssignment(format!(
            "replicas {:?} are not valid on this single-broker cluster: each new partition has exactly one replica, broker {me}",
            bad.broker_ids
        )));
    }
    Ok(())
}

fn topic_result(name: String, refusal: Refusal) -> CreatePartitionsTopicResult {
    CreatePartitionsTopicResult::default()
        .with_name(name)
        .with_error_code(refusal.code)
        .with_error_message(Some(refusal.message))
}
