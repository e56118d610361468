//! The producer's background work: the drain task that turns accumulated
//! batches into per-broker requests, one sender task per broker that
//! encodes and writes them, and the handling of each Produce response
//! (acknowledge, retry with back-off, or fail).
//!
//! Invariants:
//! - A broker has at most `max_in_flight_per_broker` Produce requests
//!   written and unanswered: each request holds a slot of that broker's
//!   semaphore from the drain until its response is handled.
//! - Requests for one broker are written in the order the drain formed them
//!   (the sender task queues each frame before taking the next request), so
//!   a partition's batches are written in order.
//! - Every batch ends in [`Shared::finish`] exactly once, which resolves its
//!   futures, returns its buffer memory and releases `flush` waiters; a
//!   retriable failure instead puts it back in the accumulator with
//!   `retry_at = now + retry_backoff`, until `retries` is spent.
//! - A retriable error that suggests stale metadata (lost connection, not
//!   leader, unknown partition) triggers one background metadata refresh.
//! - Idempotence: nothing is drained before the producer holds a producer
//!   id (InitProducerId, asked by the drain task; a broker without it turns
//!   idempotence off with one warning). OUT_OF_ORDER_SEQUENCE_NUMBER for a
//!   batch behind an unsettled older one re-queues it without counting a
//!   retry; DUPLICATE_SEQUENCE_NUMBER is an acknowledgement. When a failed
//!   batch left a hole in a sequence, the drain task waits until no request
//!   is in flight, then takes a new producer id (a transactional producer
//!   bumps its epoch in `abort_transaction` instead).
//! - Transactions: batches of a partition not yet in the open transaction
//!   wait for AddPartitionsToTxn (sent by the drain task for every such
//!   partition at once); once the transaction must be aborted, batches not
//!   in a request are failed instead of sent.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sediment_protocol::messages::produce::{PartitionProduceData, TopicProduceData};
use sediment_protocol::messages::{ProduceRequest, ProduceResponse};
use sediment_protocol::{ApiKey, ErrorCode};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};

use crate::cluster::Cluster;
use crate::error::{ClientError, Result};
use crate::producer::accumulator::{Accumulator, RequestBatches};
use crate::producer::batch::{BatchAck, ProducerBatch};
use crate::producer::producer_id;
use crate::producer::transaction::Gate;
use crate::producer::transactional::Transactional;
use crate::producer::ProducerConfig;

/// State shared by the producer handle and its tasks.
pub(crate) struct Shared {
    pub cluster: Cluster,
    pub config: ProducerConfig,
    pub accumulator: Accumulator,
    /// Buffer memory in bytes (estimated record sizes).
    pub memory: Semaphore,
    /// Wakes the drain task: a batch was created, sealed, requeued, or an
    /// in-flight slot was freed.
    pub wake: Notify,
    /// Wakes `flush` callers after each finished batch.
    pub flushed: Notify,
    /// Set when the last producer handle is dropped: deliver what is
    /// buffered, then stop.
    pub closing: AtomicBool,
    /// The transactional state, for a producer with a transactional id.
    pub txn: Option<Transactional>,
    in_flight: Mutex<HashMap<i32, Arc<Semaphore>>>,
    refresh_topics: Mutex<HashSet<String>>,
    refreshing: AtomicBool,
}

/// One request's worth of batches and the in-flight slot it occupies.
struct Outgoing {
    permit: OwnedSemaphorePermit,
    batches: Vec<ProducerBatch>,
}

impl Shared {
    /// Shared state for a new producer.
    pub(crate) fn new(
        cluster: Cluster,
        config: ProducerConfig,
        accumulator: Accumulator,
        txn: Option<Transactional>,
    ) -> Self {
        Self {
            txn,
            cluster,
            memory: Semaphore::new(config.buffer_memory.min(Semaphore::MAX_PERMITS)),
            config,
            accumulator,
            wake: Notify::new(),
            flushed: Notify::new(),
            closing: AtomicBool::new(false),
            in_flight: Mutex::new(HashMap::new()),
            refresh_topics: Mutex::new(HashSet::new()),
            refreshing: AtomicBool::new(false),
        }
    }

    fn slots(&self, broker: i32) -> Arc<Semaphore> {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(map.entry(broker).or_insert_with(|| {
            Arc::new(Semaphore::new(self.config.max_in_flight_per_broker.max(1)))
        }))
    }

    fn free_slots(&self) -> HashMap<i32, usize> {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(b, s)| (*b, s.available_permits()))
            .collect()
    }

    /// True when no request holds an in-flight slot: every answer is handled.
    fn nothing_in_flight(&self) -> bool {
        let max = self.config.max_in_flight_per_broker.max(1);
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .all(|s| s.available_permits() >= max)
    }

    /// The end of a batch: resolve its futures, return its memory, wake flush.
    fn finish(&self, batch: ProducerBatch, result: Result<BatchAck>) {
        if let Err(e) = &result {
            match e {
                ClientError::TransactionAborted | ClientError::TransactionAbortable { .. } => {
                    tracing::debug!(topic = %batch.topic, partition = batch.partition, error = %e, "record dropped with its transaction");
                }
                _ => {
                    tracing::warn!(topic = %batch.topic, partition = batch.partition, error = %e, "produce failed");
                }
            }
            // Before the batch counts as complete: a commit waiting for it
            // must see the transaction fail.
            if let Some(txn) = &self.txn {
                txn.record_failed(e);
            }
        }
        let acked = result.is_ok();
        batch.complete(result);
        self.memory.add_permits(batch.bytes);
        let idle = self.accumulator.complete(&batch, acked);
        self.flushed.notify_waiters();
        if idle && self.closing.load(Ordering::Acquire) {
            self.wake.notify_one();
        }
    }

    /// Retries `batch` after the back-off, or fails it when `error` is not
    /// retriable or its retries are spent.
    fn retry_or_fail(self: &Arc<Self>, batch: ProducerBatch, error: ClientError) {
        if error.is_retriable() && batch.attempts <= self.config.retries {
            tracing::debug!(
                topic = %batch.topic,
                partition = batch.partition,
                attempt = batch.attempts,
                error = %error,
                "retrying produce"
            );
            if error.needs_metadata_refresh() {
                self.request_refresh([batch.topic.to_string()]);
            }
            self.accumulator
                .requeue(batch, Instant::now() + self.config.retry_backoff);
            self.wake.notify_one();
        } else {
            self.finish(batch, Err(error));
        }
    }

    /// Sends `batch` again without counting a retry: it was refused
    /// (OUT_OF_ORDER_SEQUENCE_NUMBER) only because an older batch of its
    /// partition is not stored yet, and the sequence rules send it after it.
    fn requeue_in_order(&self, mut batch: ProducerBatch) {
        batch.attempts = batch.attempts.saturating_sub(1);
        tracing::debug!(topic = %batch.topic, partition = batch.partition, id = batch.id, stamp = ?batch.stamp, "re-sending behind an older batch");
        self.accumulator.requeue(batch, Instant::now());
        self.wake.notify_one();
    }

    /// Refreshes the metadata of `topics` in the background (one refresh at
    /// a time; topics asked for meanwhile join the next one).
    fn request_refresh(self: &Arc<Self>, topics: impl IntoIterator<Item = String>) {
        self.refresh_topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(topics);
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let topics: Vec<String> = std::mem::take(
                    &mut *shared
                        .refresh_topics
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()),
                )
                .into_iter()
                .collect();
                if topics.is_empty() {
                    shared.refreshing.store(false, Ordering::Release);
                    let more = !shared
                        .refresh_topics
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .is_empty();
                    if more && !shared.refreshing.swap(true, Ordering::AcqRel) {
                        continue;
                    }
                    return;
                }
                shared.cluster.refresh_quietly(&topics).await;
                for topic in &topics {
                    if let Some(meta) = shared.cluster.cached_topic(topic) {
                        shared
                            .accumulator
                            .set_partitions(topic, meta.partition_count());
                    }
                }
                shared.wake.notify_one();
            }
        });
    }
}

/// The drain loop: runs until the producer is dropped and everything it
/// buffered has an outcome.
pub(crate) async fn drain_task(shared: Arc<Shared>) {
    let mut senders: HashMap<i32, mpsc::UnboundedSender<Outgoing>> = HashMap::new();
    let mut identity_failures = 0u32;
    loop {
        // Register for a wake-up before looking, so none is lost in between.
        let woken = shared.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();

        let closing = shared.closing.load(Ordering::Acquire);
        if closing {
            shared.accumulator.seal_all();
        }
        let gate = shared.txn.as_ref().map(Transactional::gate);
        if let Some(Gate::Drop(error)) = &gate {
            for batch in shared.accumulator.take_unsent() {
                shared.finish(batch, Err(error.clone()));
            }
        }
        let mut next_deadline = None;
        match ensure_identity(&shared, &mut identity_failures).await {
            IdentityWait::Ready => {}
            IdentityWait::Woken => {
                woken.as_mut().await;
                continue;
            }
            IdentityWait::Until(at) => next_deadline = Some(at),
        }
        let free = shared.free_slots();
        let max_in_flight = shared.config.max_in_flight_per_broker.max(1);
        let now = Instant::now();
        let drained = shared.accumulator.drain(
            now,
            |topic, partition| shared.cluster.leader(topic, partition),
            |broker| free.get(&broker).copied().unwrap_or(max_in_flight),
            |topic, partition| match (&shared.txn, &gate) {
                (None, _) => true,
                (Some(txn), Some(Gate::Open)) => txn.is_added(topic, partition),
                (Some(_), _) => false,
            },
        );
        if let Some(due) = drained.next_deadline {
            next_deadline = Some(next_deadline.map_or(due, |d: Instant| d.min(due)));
        }
        for batch in drained.expired {
            let error = ClientError::DeliveryTimeout {
                topic: batch.topic.to_string(),
                partition: batch.partition,
                waited: now.saturating_duration_since(batch.created),
            };
            shared.finish(batch, Err(error));
        }
        if !drained.missing_leaders.is_empty() {
            shared.request_refresh(drained.missing_leaders.iter().map(|t| t.to_string()));
            let retry_at = now + shared.config.retry_backoff;
            next_deadline = Some(next_deadline.map_or(retry_at, |d| d.min(retry_at)));
        }
        for RequestBatches {
            broker, batches, ..
        } in drained.requests
        {
            dispatch(&shared, &mut senders, broker, batches);
        }
        if let (Some(txn), Some(Gate::Open)) = (&shared.txn, &gate) {
            if !drained.unadded.is_empty() {
                let identity = shared.accumulator.identity();
                txn.add_partitions(identity, drained.unadded.into_iter().collect())
                    .await;
                continue;
            }
        }
        if closing && shared.accumulator.is_idle() {
            return;
        }
        match next_deadline {
            Some(deadline) => {
                tokio::select! {
                    _ = woken => {}
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {}
                }
            }
            None => woken.await,
        }
    }
}

/// What the drain task waits for before it may drain.
enum IdentityWait {
    /// Nothing: drain.
    Ready,
    /// A wake-up (requests still in flight before a reset).
    Woken,
    /// A back-off after a failed InitProducerId.
    Until(Instant),
}

/// Gets the idempotent producer's id when it has none yet, or a new one
/// when a failed batch left a hole in a sequence (once nothing is in
/// flight). A broker without InitProducerId turns idempotence off.
async fn ensure_identity(shared: &Arc<Shared>, failures: &mut u32) -> IdentityWait {
    // A transactional producer gets its id from init_transactions and bumps
    // its epoch when it aborts.
    if shared.txn.is_some() || !shared.accumulator.needs_identity() {
        return IdentityWait::Ready;
    }
    if shared.accumulator.is_idle() {
        return IdentityWait::Ready; // nothing to send: ask when there is
    }
    if shared.accumulator.needs_reset() && !shared.nothing_in_flight() {
        return IdentityWait::Woken;
    }
    let timeout_ms =
        i32::try_from(shared.config.transaction_timeout.as_millis()).unwrap_or(i32::MAX);
    match producer_id::init_idempotent(&shared.cluster, timeout_ms).await {
        Ok(identity) => {
            *failures = 0;
            tracing::debug!(
                producer_id = identity.producer_id,
                epoch = identity.epoch,
                "idempotent producer id obtained"
            );
            shared.accumulator.set_identity(identity);
            IdentityWait::Ready
        }
        Err(error) if producer_id::is_unsupported(&error) => {
            tracing::warn!(%error, "the broker does not support idempotent producers; sending without idempotence (a retry may store a record twice)");
            shared.accumulator.disable_idempotence();
            IdentityWait::Ready
        }
        Err(error) => {
            *failures = failures.saturating_add(1);
            if error.is_retriable() {
                tracing::debug!(%error, "InitProducerId failed; retrying");
            } else {
                // Nothing can be sent without an id: fail what waits, so
                // that callers hear why, and try again for later records.
                tracing::warn!(%error, "InitProducerId failed: failing the buffered records");
                for batch in shared.accumulator.take_unsent() {
                    shared.finish(batch, Err(error.clone()));
                }
            }
            let wait = shared
                .cluster
                .retry_backoff(*failures)
                .max(shared.config.retry_backoff.min(Duration::from_secs(1)));
            IdentityWait::Until(Instant::now() + wait)
        }
    }
}

/// Hands one request's batches to the broker's sender task.
fn dispatch(
    shared: &Arc<Shared>,
    senders: &mut HashMap<i32, mpsc::UnboundedSender<Outgoing>>,
    broker: i32,
    batches: Vec<ProducerBatch>,
) {
    let Ok(permit) = shared.slots(broker).try_acquire_owned() else {
        // Only this task takes slots and it counted them first; should the
        // count be off, the batches simply wait for the next round.
        for batch in batches {
            shared.accumulator.requeue(batch, Instant::now());
        }
        shared.wake.notify_one();
        return;
    };
    let sender = senders.entry(broker).or_insert_with(|| {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(broker_task(Arc::clone(shared), broker, rx));
        tx
    });
    if let Err(mpsc::error::SendError(outgoing)) = sender.send(Outgoing { permit, batches }) {
        // The sender task is gone (its runtime is shutting down).
        senders.remove(&broker);
        for batch in outgoing.batches {
            shared.finish(batch, Err(ClientError::ProducerClosed));
        }
    }
}

/// Writes the requests for one broker, in order.
async fn broker_task(shared: Arc<Shared>, broker: i32, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(outgoing) = rx.recv().await {
        send_request(&shared, broker, outgoing).await;
        shared.wake.notify_one();
    }
}

async fn send_request(shared: &Arc<Shared>, broker: i32, outgoing: Outgoing) {
    let Outgoing {
        permit,
        mut batches,
    } = outgoing;
    for batch in &mut batches {
        batch.attempts += 1;
    }
    let connection = match shared.cluster.connection(broker).await {
        Ok(c) => c,
        Err(e) => return fail_all(shared, batches, e),
    };
    let version = match connection.version(ApiKey::Produce) {
        Ok(v) => v,
        Err(e) => return fail_all(shared, batches, e),
    };
    let codec = shared.config.compression;
    let mut encoded = Vec::with_capacity(batches.len());
    let mut sendable = Vec::with_capacity(batches.len());
    for mut batch in batches {
        match batch.encode(codec) {
            Ok(bytes) => {
                encoded.push((Arc::clone(&batch.topic), batch.partition, bytes));
                sendable.push(batch);
            }
            Err(e) => shared.finish(batch, Err(e)),
        }
    }
    if sendable.is_empty() {
        return;
    }
    let request = produce_request(shared, encoded);
    if shared.config.acks.wire() == 0 {
        match connection.send_without_response(&request, version) {
            Ok(()) => {
                for batch in sendable {
                    shared.finish(
                        batch,
                        Ok(BatchAck {
                            base_offset: -1,
                            log_append_time: -1,
                        }),
                    );
                }
            }
            Err(e) => fail_all(shared, sendable, e),
        }
        return;
    }
    match connection.start(&request, version) {
        Ok(pending) => {
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                let response = pending.response().await;
                handle_response(&shared, broker, response, sendable);
                drop(permit);
                shared.wake.notify_one();
            });
        }
        Err(e) => fail_all(shared, sendable, e),
    }
}

fn produce_request(shared: &Shared, encoded: Vec<(Arc<str>, i32, bytes::Bytes)>) -> ProduceRequest {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (topic, partition, records) in encoded {
        let data = PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(records));
        match topics.iter_mut().find(|t| t.name == *topic) {
            Some(t) => t.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(topic.to_string())
                    .with_partition_data(vec![data]),
            ),
        }
    }
    let timeout_ms =
        i32::try_from(shared.cluster.config().request_timeout.as_millis()).unwrap_or(i32::MAX);
    ProduceRequest::default()
        .with_transactional_id(
            shared
                .txn
                .as_ref()
                .map(|txn| txn.transactional_id().to_string()),
        )
        .with_acks(shared.config.acks.wire())
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topics)
}

fn fail_all(shared: &Arc<Shared>, batches: Vec<ProducerBatch>, error: ClientError) {
    for batch in batches {
        shared.retry_or_fail(batch, error.clone());
    }
}

fn handle_response(
    shared: &Arc<Shared>,
    broker: i32,
    response: Result<ProduceResponse>,
    batches: Vec<ProducerBatch>,
) {
    let response = match response {
        Ok(r) => r,
        Err(e) => return fail_all(shared, batches, e),
    };
    for batch in batches {
        let answer = response
            .responses
            .iter()
            .filter(|t| t.name == *batch.topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == batch.partition);
        let Some(answer) = answer else {
            let error = ClientError::Protocol {
                addr: format!("broker {broker}"),
                reason: format!(
                    "produce response has no answer for {}-{}",
                    batch.topic, batch.partition
                ),
            };
            shared.finish(batch, Err(error));
            continue;
        };
        let error = ClientError::from_code(
            answer.error_code,
            || format!("produce to {}-{}", batch.topic, batch.partition),
            answer.error_message.as_deref(),
        );
        let ack = BatchAck {
            base_offset: answer.base_offset,
            log_append_time: answer.log_append_time_ms,
        };
        let Some(error) = error else {
            shared.finish(batch, Ok(ack));
            continue;
        };
        match error.kafka_error() {
            // A retry of a batch stored so long ago the broker no longer has
            // its offsets: stored, once.
            Some(ErrorCode::DuplicateSequenceNumber) => shared.finish(batch, Ok(ack)),
            Some(ErrorCode::OutOfOrderSequenceNumber)
                if shared.accumulator.explains_out_of_order(&batch) =>
            {
                shared.requeue_in_order(batch);
            }
            // The broker forgot this producer (its state expired): the batch
            // was not stored; send it again under a new producer id.
            Some(ErrorCode::UnknownProducerId) if shared.txn.is_none() => {
                shared.accumulator.request_reset();
                shared.requeue_in_order(batch);
            }
            _ => shared.retry_or_fail(batch, error),
        }
    }
}
