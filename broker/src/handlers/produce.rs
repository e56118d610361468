//! Produce: validate each partition's record set, append it, and answer once
//! it is durable (acks=1/-1 under `--flush always`) or at once (acks=0: no
//! answer at all).
//!
//! Batches are opaque here: no per-record work, only the header checks the
//! storage layer does (length, magic, CRC-32C, the topic's timestamp bounds)
//! and the size limit. A refused partition gets its own error code
//! (INVALID_TIMESTAMP for a timestamp out of bounds) and nothing of its
//! records is appended; the request's other partitions are unaffected.
//!
//! Authorization: WRITE on each topic (else TOPIC_AUTHORIZATION_FAILED for
//! its partitions) and, for a transactional producer, WRITE on its
//! transactional id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every
//! partition); one check per topic, not per record.
//!
//! A Produce runs in two steps: [`append_all`] appends every partition's
//! records, and [`Appended::finish`] waits until they are durable. Only the
//! appends have to follow request order (Kafka keeps the order of pipelined
//! Produce requests on one connection: a non-idempotent client relies on it);
//! the durability waits of pipelined requests may overlap, so one fsync can
//! cover several of them.

use std::sync::Arc;

use sediment_protocol::messages::produce::{PartitionProduceResponse, TopicProduceResponse};
use sediment_protocol::messages::{ProduceRequest, ProduceResponse};
use sediment_protocol::ErrorCode;

use crate::broker::Broker;
use crate::config::FlushPolicy;
use crate::error::StorageError;
use crate::protocol::errors::Refusal;
use crate::security::acl::{AclOperation, ResourceType};
use crate::session::Session;
use crate::storage::batch::{BatchDefect, BatchIter};
use crate::storage::{AppendOutcome, PartitionLog};

struct Pending {
    topic: usize,
    partition: usize,
    log: Arc<PartitionLog>,
    next_offset: i64,
}

/// A Produce request whose records are appended, waiting to be durable.
pub struct Appended {
    acks: i16,
    version: i16,
    responses: Vec<TopicProduceResponse>,
    pending: Vec<Pending>,
    flush: FlushPolicy,
}

/// The Produce response, or `None` for acks=0.
pub async fn handle(
    broker: &Arc<Broker>,
    request: ProduceRequest,
    version: i16,
    session: &Session,
) -> Option<ProduceResponse> {
    append_all(broker, request, version, session).finish().await
}

/// Appends every partition's record set (the step that must run in request
/// order); refusals become per-partition error codes.
pub fn append_all(
    broker: &Arc<Broker>,
    request: ProduceRequest,
    version: i16,
    session: &Session,
) -> Appended {
    let acks = request.acks;
    let transaction_denied = request.transactional_id.as_deref().and_then(|id| {
        broker
            .authorize(
                session,
                AclOperation::Write,
                ResourceType::TransactionalId,
                id,
            )
            .err()
    });
    let flush = broker.config().log.flush;
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut pending = Vec::new();
    for (t, topic) in request.topic_data.into_iter().enumerate() {
        let name = topic.name.clone();
        let denied = match &transaction_denied {
            Some(denied) => Some(denied.clone()),
            None => broker
                .authorize(session, AclOperation::Write, ResourceType::Topic, &name)
                .err(),
        };
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (p, data) in topic.partition_data.into_iter().enumerate() {
            let mut response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let outcome = if !matches!(acks, -1..=1) {
                Err(Refusal::new(
                    ErrorCode::InvalidRequiredAcks,
                    format!("acks={acks}"),
                ))
            } else if let Some(denied) = &denied {
                Err(Refusal::from(denied.clone()))
            } else {
                append(
                    broker,
                    name.as_str(),
                    data.index,
                    data.records.as_deref().unwrap_or_default(),
                )
            };
            match outcome {
                Ok((log, outcome)) => {
                    if flush == FlushPolicy::Always {
                        // Asked at once, so the sync can start while the
                        // rest of the request is appended.
                        broker.request_flush(&log);
                    }
                    let (base_offset, next_offset) = (outcome.base_offset, outcome.next_offset);
                    response.base_offset = base_offset;
                    response.log_append_time_ms = outcome.log_append_time_ms;
                    response.log_start_offset = log.log_start_offset();
                    pending.push(Pending {
                        topic: t,
                        partition: p,
                        log,
                        next_offset,
                    });
                }
                Err(refusal) => {
                    response.error_code = refusal.code;
                    if version >= 8 {
                        response.error_message = Some(refusal.message);
                    }
                }
            }
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions),
        );
    }
    Appended {
        acks,
        version,
        responses,
        pending,
        flush,
    }
}

impl Appended {
    /// Waits until the appends are durable (under `--flush always`) and
    /// returns the response, or `None` for acks=0.
    pub async fn finish(self) -> Option<ProduceResponse> {
        let Self {
            acks,
            version,
            mut responses,
            pending,
            flush,
        } = self;
        if acks == 0 {
            // Nobody waits for an acks=0 produce; under `always` the sync
            // that makes its records readable was requested at append.
            return None;
        }
        if flush == FlushPolicy::Always {
            wait_durable(&mut responses, pending, version).await;
        }
        Some(ProduceResponse::default().with_responses(responses))
    }
}

/// Checks limits and appends one partition's record set.
fn append(
    broker: &Arc<Broker>,
    topic: &str,
    partition: i32,
    records: &[u8],
) -> Result<(Arc<PartitionLog>, AppendOutcome), Refusal> {
    let (log, max) = broker.produce_target(topic, partition)?;
    for item in BatchIter::headers(records) {
        match item {
            Ok((_, header)) if header.total_len() > max => {
                return Err(Refusal::new(
                    ErrorCode::MessageTooLarge,
                    format!(
                        "batch of {} bytes exceeds max.message.bytes {max}",
                        header.total_len()
                    ),
                ))
            }
            Ok(_) => {}
            Err(_) => break, // reported precisely by append below
        }
    }
    match log.append(records) {
        Ok(outcome) => {
            // Once per partition per request: two relaxed additions.
            let messages =
                u64::try_from(outcome.last_offset - outcome.base_offset + 1).unwrap_or(0);
            log.traffic()
                .record_in(messages, u64::try_from(records.len()).unwrap_or(u64::MAX));
            Ok((log, outcome))
        }
        Err(StorageError::InvalidBatch {
            defect: BatchDefect::BadMagic { magic },
            ..
        }) => Err(Refusal::new(
            ErrorCode::UnsupportedForMessageFormat,
            format!("record batch magic {magic}: only v2 batches are stored"),
        )),
        Err(error) => Err(Refusal::from(error)),
    }
}

/// Waits until every appended partition is durable (group commit happens in
/// the partition log), turning a sync failure into KAFKA_STORAGE_ERROR.
async fn wait_durable(responses: &mut [TopicProduceResponse], pending: Vec<Pending>, version: i16) {
    for p in pending {
        // The syncs were requested at append and run in parallel; waiting
        // for them in turn costs no more than the slowest.
        if let Err(error) = p.log.durable(p.next_offset).await {
            let refusal = Refusal::from(error);
            let response = &mut responses[p.topic].partition_responses[p.partition];
            response.error_code = refusal.code;
            response.base_offset = -1;
            response.log_append_time_ms = -1;
            if version >= 8 {
                response.error_message = Some(refusal.message);
            }
        }
    }
}
