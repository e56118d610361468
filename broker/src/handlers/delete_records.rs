//! DeleteRecords: moves partitions' log start offsets forward (offset -1 is
//! the high watermark) and deletes the sealed segments wholly below them.
//!
//! Errors are per partition: an unknown topic or partition is
//! UNKNOWN_TOPIC_OR_PARTITION, an offset beyond the high watermark
//! OFFSET_OUT_OF_RANGE, both with low watermark -1 (as Kafka answers). The
//! work syncs files, so it runs on the blocking pool; `timeout_ms` is not
//! needed on a single node, where the deletion is done when we answer.

use std::sync::Arc;

use sediment_protocol::messages::delete_records::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use sediment_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use sediment_protocol::ErrorCode;

use crate::broker::Broker;
use crate::protocol::errors::{Refusal, ToErrorCode};
use crate::security::acl::{AclOperation, ResourceType};
use crate::session::Session;

/// The DeleteRecords response.
pub async fn handle(
    broker: &Arc<Broker>,
    request: DeleteRecordsRequest,
    session: &Session,
) -> DeleteRecordsResponse {
    let broker = Arc::clone(broker);
    let topics = request.topics.clone();
    let session = session.clone();
    match tokio::task::spawn_blocking(move || delete_all(&broker, request, &session)).await {
        Ok(response) => response,
        Err(error) => {
            // A panic in storage code: answer every partition with a storage
            // error rather than dropping the connection.
            tracing::error!(error = %error, "DeleteRecords task failed");
            let results = topics
                .into_iter()
                .map(|topic| {
                    let partitions = topic
                        .partitions
                        .iter()
                        .map(|p| result(p.partition_index, -1, ErrorCode::KafkaStorageError.code()))
                        .collect();
                    DeleteRecordsTopicResult::default()
                        .with_name(topic.name)
                        .with_partitions(partitions)
                })
                .collect();
            DeleteRecordsResponse::default().with_topics(results)
        }
    }
}

/// Runs every requested deletion in request order.
fn delete_all(
    broker: &Broker,
    request: DeleteRecordsRequest,
    session: &Session,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let denied = broker
                .authorize(session, AclOperation::Delete, ResourceType::Topic, &topic.name)
                .err();
            let partitions = topic
                .partitions
                .iter()
                .map(|wanted| {
                    if let Some(denied) = &denied {
                        let code = Refusal::from(denied.clone()).code;
                        return result(wanted.partition_index, -1, code);
                    }
                    match broker.delete_records(&topic.name, wanted.partition_index, wanted.offset)
                    {
                        Ok(low_watermark) => result(wanted.partition_index, low_watermark, 0),
                        Err(error) => {
                            tracing::debug!(topic = %topic.name, partition = wanted.partition_index, offset = wanted.offset, error = %error, "DeleteRecords refused");
                            result(wanted.partition_index, -1, error.kafka_error_code())
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

fn result(
    partition_index: i32,
    low_watermark: i64,
    error_code: i16,
) -> DeleteRecordsPartitionResult {
    DeleteRecordsPartitionResult::default()
        .with_partition_index(partition_index)
        .with_low_watermark(low_watermark)
        .with_error_code(error_code)
}
