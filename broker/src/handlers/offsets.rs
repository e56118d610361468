//! ListOffsets: earliest (-2), latest (-1: the high watermark, or the last
//! stable offset for read_committed), largest timestamp (-3), or the
//! first offset at or after a timestamp (through the time index).
//! Needs DESCRIBE on each topic (else TOPIC_AUTHORIZATION_FAILED).

use std::sync::Arc;

use sediment_protocol::messages::list_offsets::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use sediment_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::broker::Broker;
use crate::protocol::errors::{Refusal, ToErrorCode};
use crate::security::acl::{AclOperation, ResourceType};
use crate::session::Session;

/// `timestamp` asking for the first offset.
const EARLIEST: i64 = -2;
/// `timestamp` asking for the offset after the last readable record.
const LATEST: i64 = -1;
/// `timestamp` asking for the record with the largest timestamp (v7).
const MAX_TIMESTAMP: i64 = -3;

/// The ListOffsets response.
pub fn list_offsets(
    broker: &Arc<Broker>,
    request: ListOffsetsRequest,
    version: i16,
    session: &Session,
) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let denied = broker
                .authorize(
                    session,
                    AclOperation::Describe,
                    ResourceType::Topic,
                    &topic.name,
                )
                .err();
            let partitions = topic
                .partitions
                .iter()
                .map(|wanted| {
                    let mut response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(wanted.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    if version >= 4 {
                        response.leader_epoch = 0;
                    }
                    let found = match &denied {
                        Some(denied) => Err(Refusal::from(denied.clone())),
                        None => broker
                            .partition(topic.name.as_str(), wanted.partition_index)
                            .map_err(Refusal::from),
                    };
                    match found {
                        Err(refusal) => response.error_code = refusal.code,
                        Ok(log) => {
                            let found = match wanted.timestamp {
                                EARLIEST => Ok(Some((log.log_start_offset(), -1))),
                                // read_committed consumers start at the last stable offset.
                                LATEST if request.isolation_level == 1 => {
                                    Ok(Some((log.last_stable_offset(), -1)))
                                }
                                LATEST => Ok(Some((log.high_watermark(), -1))),
                                MAX_TIMESTAMP => log.try_offset_for_timestamp(log.max_timestamp()),
                                timestamp => log.try_offset_for_timestamp(timestamp),
                            };
                            match found {
                                Ok(Some((offset, timestamp))) => {
                                    response.offset = offset;
                                    response.timestamp = timestamp;
                                }
                                Ok(None) => {}
                                Err(error) => response.error_code = error.kafka_error_code(),
                            }
                        }
                    }
                    response
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
