//! Fetch: whole batches from each requested partition, straight from the
//! segment mappings, long-polling until `min_bytes` are there or `max_wait_ms`
//! passes. Woken by the partitions' high-watermark channels, never by sleeps.
//!
//! Kafka's rules kept here: records are an empty array (never null) when
//! there are none; every partition reports its last stable offset; a
//! read_committed fetch (`isolation_level` 1) returns only batches below
//! it, with the aborted transactions overlapping them (null for
//! read_uncommitted); the preferred read replica is -1; and the first batch of the
//! response is returned whole even when it is larger than `max_bytes`, so a
//! consumer can always make progress.
//!
//! Authorization: READ on each topic, checked once per request; a topic it
//! may not read is TOPIC_AUTHORIZATION_FAILED on its partitions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use sediment_protocol::messages::fetch::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use sediment_protocol::messages::{FetchRequest, FetchResponse};
use sediment_protocol::ErrorCode;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::error::StorageError;
use crate::protocol::errors::ToErrorCode;
use crate::security::acl::{AclOperation, ResourceType};
use crate::session::Session;
use crate::storage::PartitionLog;

/// A pending wait for one partition's high watermark to move.
type HighWatermarkChange<'a> =
    Pin<Box<dyn Future<Output = Result<(), watch::error::RecvError>> + Send + 'a>>;

/// `isolation_level` of a read_committed consumer.
const READ_COMMITTED: i8 = 1;

/// Longest a fetch may wait, whatever the client asks.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

/// The Fetch response.
pub async fn handle(
    broker: &Arc<Broker>,
    request: FetchRequest,
    version: i16,
    session: &Session,
) -> FetchResponse {
    // Without `--authorizer` nothing is denied and nothing is allocated.
    let denied: Vec<bool> = if broker.security().enforcing() {
        request
            .topics
            .iter()
            .map(|t| !broker.allows(session, AclOperation::Read, ResourceType::Topic, &t.topic))
            .collect()
    } else {
        Vec::new()
    };
    let wait =
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_bytes = if version >= 3 {
        usize::try_from(request.max_bytes).unwrap_or(0)
    } else {
        usize::MAX
    }
    .min(broker.config().fetch_max_bytes);
    loop {
        let (response, bytes, errors, mut waiters, served) =
            read_once(broker, &request, &denied, max_bytes);
        if bytes >= min_bytes || errors || waiters.is_empty() || Instant::now() >= deadline {
            count_out(&served);
            return response;
        }
        // Wait for any partition's high watermark to move, or the deadline.
        // The futures live across polls so their wakers stay registered.
        let mut changes: Vec<HighWatermarkChange<'_>> = waiters
            .iter_mut()
            .map(|r| Box::pin(r.changed()) as Pin<Box<_>>)
            .collect();
        let changed = std::future::poll_fn(|cx| {
            for change in changes.iter_mut() {
                if change.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        });
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let (response, _, _, _, served) = read_once(broker, &request, &denied, max_bytes);
            count_out(&served);
            return response;
        }
    }
}

/// Counts the record bytes of the pass whose response is returned (a long
/// poll's earlier passes are thrown away, so they count nothing).
fn count_out(served: &[(Arc<PartitionLog>, usize)]) {
    for (log, bytes) in served {
        log.traffic()
            .record_out(u64::try_from(*bytes).unwrap_or(u64::MAX));
    }
}

/// One pass over the requested partitions: the response, its record bytes,
/// whether any partition had an error, the channels to wait on, and the
/// record bytes read from each partition that returned some. `denied[t]`
/// says whether READ on the request's `t`th topic was refused (empty when
/// ACLs are not enforced).
#[allow(clippy::type_complexity)]
fn read_once(
    broker: &Arc<Broker>,
    request: &FetchRequest,
    denied: &[bool],
    max_bytes: usize,
) -> (
    FetchResponse,
    usize,
    bool,
    Vec<watch::Receiver<i64>>,
    Vec<(Arc<PartitionLog>, usize)>,
) {
    let mut served = Vec::new();
    let mut total = 0usize;
    let mut errors = false;
    let mut waiters = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for (t, topic) in request.topics.iter().enumerate() {
        let name = topic.topic.as_str();
        let denied = denied.get(t).copied().unwrap_or(false);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let mut data = PartitionData::default()
                .with_partition_index(wanted.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(-1)
                .with_records(Some(Bytes::new()));
            if denied {
                data.error_code = ErrorCode::TopicAuthorizationFailed.code();
                errors = true;
                partitions.push(data);
                continue;
            }
            match broker.partition(name, wanted.partition) {
                Err(refusal) => {
                    data.error_code = refusal.kafka_error_code();
                    errors = true;
                }
                Ok(log) => {
                    // Subscribe before reading, so an append right after the read still wakes us.
                    let waiter = log.subscribe_high_watermark();
                    let partition_max = usize::try_from(wanted.partition_max_bytes).unwrap_or(0);
                    let budget = partition_max.min(max_bytes.saturating_sub(total));
                    // Once something is in the response, a partition with no budget left is skipped;
                    // the first batch of the response is always whole.
                    let committed = request.isolation_level == READ_COMMITTED;
                    let read = if budget == 0 && total > 0 {
                        Ok(None)
                    } else if committed {
                        log.read_committed(wanted.fetch_offset, budget.max(1))
                            .map(|read| Some((read.read.bytes, read.aborted)))
                    } else {
                        log.read(wanted.fetch_offset, budget.max(1))
                            .map(|read| Some((read.bytes, Vec::new())))
                    };
                    match read {
                        Ok(read) => {
                            data.high_watermark = log.high_watermark();
                            data.last_stable_offset = log.last_stable_offset();
                            data.log_start_offset = log.log_start_offset();
                            if committed {
                                data.aborted_transactions = Some(Vec::new());
                            }
                            if let Some((bytes, aborted)) = read {
                                total += bytes.len();
                                if !bytes.is_empty() {
                                    served.push((Arc::clone(&log), bytes.len()));
                                }
                                data.records = Some(bytes);
                                if committed {
                                    data.aborted_transactions = Some(
                                        aborted
                                            .into_iter()
                                            .map(|a| {
                                                AbortedTransaction::default()
                                                    .with_producer_id(a.producer_id)
                                                    .with_first_offset(a.first_offset)
                                            })
                                            .collect(),
                                    );
                                }
                            }
                            waiters.push(waiter);
                        }
                        Err(error) => {
                            data.error_code = match error {
                                StorageError::OffsetOutOfRange { .. } => {
                                    ErrorCode::OffsetOutOfRange.code()
                                }
                                other => other.kafka_error_code(),
                            };
                            data.high_watermark = log.high_watermark();
                            data.last_stable_offset = log.last_stable_offset();
                            data.log_start_offset = log.log_start_offset();
                            errors = true;
                        }
                    }
                }
            }
            partitions.push(data);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions),
        );
    }
    (
        FetchResponse::default().with_responses(topics),
        total,
        errors,
        waiters,
        served,
    )
}
