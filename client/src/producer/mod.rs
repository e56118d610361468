//! The producer: [`Producer`], its settings [`ProducerConfig`], and the
//! path of a record from [`Producer::enqueue`] to the broker.
//!
//! ```text
//! enqueue ─ buffer memory (await) ─ accumulator (partition, append) ─┐
//!                                                                    │ full / linger / flush
//! drain task ─ groups sealed batches per leader, one request per free in-flight slot
//!   └─ sender task per broker ─ encode once (compression) ─ write (pipelined)
//!        └─ response ─ ack → DeliveryFuture │ retriable → back-off, requeue │ else fail
//! ```
//!
//! Module map: `record` (what goes in and out), `partitioner` (murmur2 and
//! sticky), `batch` (a partition's batch and its shared completion),
//! `accumulator` (open batches and the drain), `sender` (tasks and retries).
//!
//! Ordering and delivery: records of one partition are written in enqueue
//! order; a retry after a lost connection may duplicate or reorder them
//! (at-least-once, as Kafka without idempotence). Nothing acknowledged is
//! dropped by the client.

mod accumulator;
mod batch;
pub mod partitioner;
mod record;
mod sender;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::TryAcquireError;

use crate::cluster::Cluster;
use crate::error::{ClientError, Result};
use accumulator::{Accumulator, Append};
pub use batch::DeliveryFuture;
pub use record::{Acks, CompressionCodec, ProducerRecord, RecordMetadata};
use sender::Shared;

/// Largest Produce request the producer builds (several partitions'
/// batches); a single batch above it still goes, alone.
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Producer settings, for [`Client::producer`](crate::Client::producer);
/// the connection settings are the client's. Defaults follow the brief for
/// this client rather than the Java client where they differ (1 MiB
/// batches, 5 ms linger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Acknowledgements to wait for (default `All`).
    pub acks: Acks,
    /// How long an open batch waits for more records before it may be sent
    /// (`linger.ms`, default 5 ms). A batch whose leader is busy keeps
    /// filling past it.
    pub linger: Duration,
    /// Close a batch once it would exceed this many bytes (estimated
    /// uncompressed size; default 1 MiB). Keep it at or below the broker's
    /// `message.max.bytes`.
    pub batch_size: usize,
    /// Bytes of records buffered and not yet acknowledged before `enqueue`
    /// waits (default 64 MiB).
    pub buffer_memory: usize,
    /// Batch compression (default none).
    pub compression: CompressionCodec,
    /// How many times a batch is re-sent after a retriable error (default 10).
    pub retries: u32,
    /// Wait before each re-send (default 100 ms).
    pub retry_backoff: Duration,
    /// Produce requests written and unanswered per broker (default 5).
    pub max_in_flight_per_broker: usize,
    /// How long a record may wait for its partition to have a known leader
    /// before it fails with [`ClientError::DeliveryTimeout`] (default 120 s,
    /// Kafka's `delivery.timeout.ms`). Send failures are bounded by
    /// `retries` instead.
    pub delivery_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 1 << 20,
            buffer_memory: 64 << 20,
            compression: CompressionCodec::None,
            retries: 10,
            retry_backoff: Duration::from_millis(100),
            max_in_flight_per_broker: 5,
            delivery_timeout: Duration::from_secs(120),
        }
    }
}

impl ProducerConfig {
    fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(ClientError::Config("batch_size must be above 0".into()));
        }
        if self.buffer_memory < self.batch_size {
            return Err(ClientError::Config(format!(
                "buffer_memory ({}) must be at least batch_size ({})",
                self.buffer_memory, self.batch_size
            )));
        }
        if self.max_in_flight_per_broker == 0 {
            return Err(ClientError::Config(
                "max_in_flight_per_broker must be above 0".into(),
            ));
        }
        Ok(())
    }
}

/// An asynchronous, batching Kafka producer, from
/// [`Client::producer`](crate::Client::producer). Cheap to clone: clones
/// share the buffer, the connections and the background tasks. When the last
/// clone is dropped, what is buffered is still delivered in the background;
/// call [`Producer::flush`] (or [`Producer::close`]) to wait for it.
#[derive(Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

/// Signals the background tasks to wind down when the last clone goes.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

impl Producer {
    /// Starts the background tasks of a producer over `cluster` (see
    /// [`Client::producer`](crate::Client::producer)).
    pub(crate) fn new(cluster: Cluster, config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let accumulator = Accumulator::new(
            config.batch_size,
            config.linger,
            config.delivery_timeout,
            MAX_REQUEST_BYTES.max(config.batch_size),
        );
        let shared = Arc::new(Shared::new(cluster, config, accumulator));
        shared
            .cluster
            .spawn(sender::drain_task(Arc::clone(&shared)));
        Ok(Producer {
            handle: Arc::new(Handle { shared }),
        })
    }

    /// Produces one record and waits until the broker acknowledged it (or,
    /// with `acks = None`, until it was written to the socket).
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.enqueue(record).await?.await
    }

    /// Buffers one record for sending and returns a future of its outcome.
    /// Waits only while the buffer is full (`buffer_memory`), so a fast
    /// caller is slowed to the broker's pace rather than growing memory.
    pub async fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let shared = &self.handle.shared;
        let size = record.estimated_size();
        let limit = shared.config.buffer_memory;
        let permits = u32::try_from(size)
            .ok()
            .filter(|_| size <= limit)
            .ok_or(ClientError::RecordTooLarge { size, limit })?;
        match shared.memory.try_acquire_many(permits) {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::NoPermits) => shared
                .memory
                .acquire_many(permits)
                .await
                .map_err(|_| ClientError::ProducerClosed)?
                .forget(),
            Err(TryAcquireError::Closed) => return Err(ClientError::ProducerClosed),
        }
        let result = self.append(record, size).await;
        if result.is_err() {
            shared.memory.add_permits(size);
        }
        result
    }

    async fn append(&self, mut record: ProducerRecord, size: usize) -> Result<DeliveryFuture> {
        let shared = &self.handle.shared;
        let key_hash = match (&record.partition, &record.key) {
            (None, Some(key)) => Some(partitioner::murmur2(key)),
            _ => None,
        };
        let mut fresh = false;
        loop {
            let appended = shared.accumulator.append(record, size, key_hash, fresh)?;
            match appended.append {
                Append::Done(future) => {
                    if appended.wake {
                        shared.wake.notify_one();
                    }
                    return Ok(future);
                }
                Append::NeedMetadata(r) if !fresh => {
                    record = r;
                    if shared.cluster.cached_topic(&record.topic).is_some() {
                        // Known topic, unknown partition: the cache may be stale.
                        let names = [record.topic.clone()];
                        shared.cluster.fetch_metadata(Some(&names), true).await?;
                    }
                    let meta = shared.cluster.topic(&record.topic, true).await?;
                    shared
                        .accumulator
                        .set_partitions(&record.topic, meta.partition_count());
                    fresh = true;
                }
                Append::NeedMetadata(r) => {
                    return Err(ClientError::UnknownTopic { topic: r.topic });
                }
            }
        }
    }

    /// Sends everything buffered now and waits until each of those records
    /// has an outcome. Individual failures are reported by their
    /// [`DeliveryFuture`]s, not here.
    pub async fn flush(&self) -> Result<()> {
        let shared = &self.handle.shared;
        let mark = shared.accumulator.seal_all();
        shared.wake.notify_one();
        loop {
            let flushed = shared.flushed.notified();
            tokio::pin!(flushed);
            flushed.as_mut().enable();
            if shared.accumulator.is_flushed(mark) {
                return Ok(());
            }
            flushed.await;
        }
    }

    /// Flushes, then drops this handle.
    pub async fn close(self) -> Result<()> {
        self.flush().await
    }
}
