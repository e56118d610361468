//! OffsetDelete v0: forgets a group's committed offsets of some partitions,
//! durably (a later OffsetFetch answers -1 for them, also after a restart).
//!
//! As Kafka answers (`KafkaApis.handleOffsetDeleteRequest` and the group
//! coordinator):
//! - an empty group id is INVALID_GROUP_ID, an unknown group
//!   GROUP_ID_NOT_FOUND, a non-empty group of a protocol other than
//!   `consumer` NON_EMPTY_GROUP: group-level errors, with no topics;
//! - a partition of an unknown topic (or beyond its partition count) is
//!   UNKNOWN_TOPIC_OR_PARTITION, checked before the group;
//! - a partition of a topic the group's members still subscribe to is
//!   GROUP_SUBSCRIBED_TO_TOPIC (see `group::offset_delete`);
//! - every other partition is answered 0, whether or not it had an offset.

use std::sync::Arc;

use sediment_protocol::messages::offset_delete::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use sediment_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use sediment_protocol::ErrorCode;

use crate::broker::Broker;
use crate::group::coordinator::CoordinatorError;
use crate::group::state::GroupError;
use crate::protocol::errors::{Refusal, ToErrorCode};
use crate::security::acl::{AclOperation, ResourceType};
use crate::session::Session;

/// The OffsetDelete response.
pub async fn handle(
    broker: &Arc<Broker>,
    request: OffsetDeleteRequest,
    session: &Session,
) -> OffsetDeleteResponse {
    if request.group_id.is_empty() {
        return refused(GroupError::InvalidGroupId.kafka_error_code());
    }
    // As Kafka: DELETE on the group, READ on each topic.
    if let Err(denied) = broker.authorize(
        session,
        AclOperation::Delete,
        ResourceType::Group,
        &request.group_id,
    ) {
        return refused(Refusal::from(denied).code);
    }
    // Each partition's code when known now (unknown partition), else None.
    let mut codes: Vec<Vec<Option<i16>>> = Vec::with_capacity(request.topics.len());
    let mut partitions = Vec::new();
    for topic in &request.topics {
        let count = broker
            .topics()
            .get(topic.name.as_str())
            .map_or(0, |t| t.partitions);
        let may_read = broker.allows(
            session,
            AclOperation::Read,
            ResourceType::Topic,
            &topic.name,
        );
        codes.push(
            topic
                .partitions
                .iter()
                .map(|p| {
                    if !may_read {
                        Some(ErrorCode::TopicAuthorizationFailed.code())
                    } else if (0..count).contains(&p.partition_index) {
                        partitions.push((topic.name.clone(), p.partition_index));
                        None
                    } else {
                        Some(ErrorCode::UnknownTopicOrPartition.code())
                    }
                })
                .collect(),
        );
    }
    let outcome = match broker.group_coordinator() {
        Some(coordinator) => {
            coordinator
                .delete_offsets(request.group_id.clone(), partitions)
                .await
        }
        None => Err(CoordinatorError::Stopped),
    };
    let results = match outcome {
        Ok(results) => results,
        Err(error) => {
            tracing::debug!(group = %request.group_id, error = %error, "OffsetDelete refused");
            return refused(error.kafka_error_code());
        }
    };
    let mut results = results.into_iter();
    let topics = request
        .topics
        .into_iter()
        .zip(codes)
        .map(|(topic, topic_codes)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(topic_codes)
                .map(|(partition, code)| {
                    let code = code.unwrap_or_else(|| match results.next() {
                        Some(Ok(())) => 0,
                        Some(Err(error)) => error.kafka_error_code(),
                        // The coordinator answers every partition it was given.
                        None => ErrorCode::UnknownServerError.code(),
                    });
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default()
        .with_error_code(0)
        .with_topics(topics)
}

/// A group-level refusal: the code, no topics (as Kafka answers).
fn refused(code: i16) -> OffsetDeleteResponse {
    OffsetDeleteResponse::default().with_error_code(code)
}
