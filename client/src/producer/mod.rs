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
//! `accumulator` (open batches and the drain), `sequence` (producer id,
//! epoch and per-partition sequence numbers), `producer_id`
//! (InitProducerId), `sender` (tasks and retries), and for transactions
//! `transaction` (the pure state machine), `txn_client` (coordinator
//! requests) and `transactional` (the API).
//!
//! # Ordering and delivery
//!
//! Idempotent by default (`ProducerConfig::idempotence`, as in the Java
//! client since 3.0): before its first send the producer gets a producer id
//! and epoch (InitProducerId), and every batch carries them with a base
//! sequence number given per partition when the batch is first sent and kept
//! across retries. The broker stores a batch once — a retry of a stored
//! batch is answered with its original offsets — and refuses a batch whose
//! sequence does not follow the last one stored, so that retries neither
//! duplicate nor reorder: records of one partition are stored exactly once
//! and in enqueue order, up to `max_in_flight_per_broker` requests still
//! pipelined. A batch refused as OUT_OF_ORDER_SEQUENCE_NUMBER because an
//! older batch of its partition is being retried is sent again after it. A
//! batch that fails for good (retries spent, a record too large, …) leaves
//! a hole no later sequence can pass: its records fail, and the producer
//! takes a new producer id before sending more. A broker without
//! InitProducerId gets plain batches instead (one warning), as does a
//! producer with `idempotence: false` (required for `acks` other than
//! `All`): at least once, a retry after a lost connection may then store a
//! record twice or out of order. Nothing acknowledged is dropped by the
//! client.
//!
//! # Transactions
//!
//! With `transactional_id`, records are sent inside transactions (Kafka's
//! API; `transactional` implements it, `transaction` holds the state
//! machine): committed together, or aborted and never seen by
//! [`IsolationLevel::ReadCommitted`](crate::IsolationLevel) consumers. The
//! producer moves Uninitialized → (`init_transactions`) Ready →
//! (`begin_transaction`) InTransaction → (`commit_transaction`) Committing
//! → Ready, or (`abort_transaction`) Aborting → Ready. Records may be sent
//! only in a transaction. A record or request of the transaction that
//! fails makes it abortable: `commit_transaction` then returns
//! [`ClientError::TransactionAbortable`] and the transaction must be
//! aborted (and may be tried again). A fatal error
//! ([`ClientError::is_fatal`]: fenced by a newer producer with the same
//! transactional id, …) is final: every later call returns it, and the
//! producer must be dropped.
//!
//! ```no_run
//! use sediment_client::{ClientBuilder, ProducerConfig, ProducerRecord};
//!
//! # async fn demo() -> sediment_client::Result<()> {
//! let client = ClientBuilder::new("127.0.0.1:9092").build().await?;
//! let producer = client.producer(ProducerConfig {
//!     transactional_id: Some("orders-enricher-1".into()),
//!     ..ProducerConfig::default()
//! })?;
//! producer.init_transactions().await?; // fences older instances of the id
//! producer.begin_transaction()?;
//! producer.enqueue(ProducerRecord::new("enriched", "…")).await?;
//! // The input position, committed with the output or not at all.
//! producer.send_offsets_to_transaction(&[("orders".into(), 0, 42)], "enricher").await?;
//! match producer.commit_transaction().await {
//!     Ok(()) => {}
//!     Err(e) if e.is_fatal() => return Err(e), // fenced: drop the producer
//!     Err(_) => producer.abort_transaction().await?, // then redo the work
//! }
//! # Ok(())
//! # }
//! ```

mod accumulator;
mod batch;
pub mod partitioner;
mod producer_id;
mod record;
mod sender;
mod sequence;
mod transaction;
mod transactional;
mod txn_client;

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
use sequence::Sequences;
use transactional::Transactional;

/// Largest Produce request the producer builds (several partitions'
/// batches); a single batch above it still goes, alone.
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Producer settings, for [`Client::producer`](crate::Client::producer);
/// the connection settings are the client's. Defaults follow the brief for
/// this client rather than the Java client where they differ (1 MiB
/// batches, 5 ms linger). Idempotence is on by default and needs
/// `acks: Acks::All`: to produce with `Acks::Leader` or `Acks::None`, set
/// `idempotence: false` too.
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
    /// Produce requests written and unanswered per broker (default 5; at
    /// most 5 with idempotence, the batches a broker remembers per producer).
    pub max_in_flight_per_broker: usize,
    /// How long a record may wait for its partition to have a known leader
    /// before it fails with [`ClientError::DeliveryTimeout`] (default 120 s,
    /// Kafka's `delivery.timeout.ms`). Send failures are bounded by
    /// `retries` instead.
    pub delivery_timeout: Duration,
    /// Idempotent batches (`enable.idempotence`, default `true`): retries
    /// never store a record twice or out of order (see the
    /// [module documentation](self#ordering-and-delivery)). Needs
    /// `acks: Acks::All`, `retries` above 0 and at most 5 requests in
    /// flight; `false` for `Acks::Leader` or `Acks::None`.
    pub idempotence: bool,
    /// Makes the producer transactional (`transactional.id`, default none):
    /// call [`Producer::init_transactions`] once, then send inside
    /// [`Producer::begin_transaction`] … [`Producer::commit_transaction`].
    /// A newer producer with the same id fences this one. Needs idempotence.
    pub transactional_id: Option<String>,
    /// Longest a transaction may stay open before the coordinator aborts it
    /// (`transaction.timeout.ms`, default 60 s); brokers cap it (Kafka:
    /// 15 min by default).
    pub transaction_timeout: Duration,
    /// How long the transactional calls (`init_transactions`,
    /// `commit_transaction`, …) retry retriable errors before they give up
    /// (`max.block.ms`, default 60 s).
    pub max_block: Duration,
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
            idempotence: true,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
            max_block: Duration::from_secs(60),
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
        if self.transactional_id.is_some() && !self.idempotence {
            return Err(ClientError::Config(
                "a transactional producer must be idempotent: set idempotence to true".into(),
            ));
        }
        if self.transactional_id.as_deref() == Some("") {
            return Err(ClientError::Config(
                "transactional_id must not be empty".into(),
            ));
        }
        if self.idempotence {
            if self.acks != Acks::All {
                return Err(ClientError::Config(format!(
                    "idempotence needs acks All (got {:?}): set idempotence to false to \
                     produce with acks {:?}",
                    self.acks, self.acks
                )));
            }
            if self.retries == 0 {
                return Err(ClientError::Config(
                    "idempotence needs retries above 0: set idempotence to false to never retry"
                        .into(),
                ));
            }
            if self.max_in_flight_per_broker > 5 {
                return Err(ClientError::Config(format!(
                    "idempotence allows at most 5 requests in flight per broker (got {}): \
                     brokers remember 5 batches per producer to recognise retries",
                    self.max_in_flight_per_broker
                )));
            }
        }
        let millis = self.transaction_timeout.as_millis();
        if millis == 0 || millis > i32::MAX as u128 {
            return Err(ClientError::Config(format!(
                "transaction_timeout {:?} must be above 0 and fit the protocol's i32 milliseconds",
                self.transaction_timeout
            )));
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
        let txn = config.transactional_id.clone().map(|id| {
            Transactional::new(
                cluster.clone(),
                id,
                config.transaction_timeout,
                config.max_block,
            )
        });
        let accumulator = Accumulator::new(
            config.batch_size,
            config.linger,
            config.delivery_timeout,
            MAX_REQUEST_BYTES.max(config.batch_size),
            Sequences::new(config.idempotence, txn.is_some()),
        );
        let shared = Arc::new(Shared::new(cluster, config, accumulator, txn));
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
    /// A transactional producer sends only inside a transaction
    /// ([`ClientError::TransactionState`] otherwise).
    pub async fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let shared = &self.handle.shared;
        let _in_transaction = match &shared.txn {
            Some(txn) => Some(txn.admit_send().await?),
            None => None,
        };
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
                        let names = [record.topic.to_string()];
                        shared.cluster.fetch_metadata(Some(&names), true).await?;
                    }
                    let meta = shared.cluster.topic(&record.topic, true).await?;
                    shared
                        .accumulator
                        .set_partitions(&record.topic, meta.partition_count());
                    fresh = true;
                }
                Append::NeedMetadata(r) => {
                    return Err(ClientError::UnknownTopic {
                        topic: r.topic.to_string(),
                    });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_defaults_then_idempotent_with_acks_all_and_valid() {
        let config = ProducerConfig::default();
        assert!(config.idempotence);
        assert_eq!(config.acks, Acks::All);
        assert_eq!(config.transactional_id, None);
        assert_eq!(config.transaction_timeout, Duration::from_secs(60));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn given_idempotence_with_weaker_acks_or_settings_it_cannot_keep_then_config_error() {
        let base = ProducerConfig::default();
        let refused = [
            ProducerConfig {
                acks: Acks::Leader,
                ..base.clone()
            },
            ProducerConfig {
                acks: Acks::None,
                ..base.clone()
            },
            ProducerConfig {
                retries: 0,
                ..base.clone()
            },
            ProducerConfig {
                max_in_flight_per_broker: 6,
                ..base.clone()
            },
            ProducerConfig {
                transactional_id: Some("t".into()),
                idempotence: false,
                ..base.clone()
            },
            ProducerConfig {
                transactional_id: Some(String::new()),
                ..base.clone()
            },
            ProducerConfig {
                transaction_timeout: Duration::ZERO,
                ..base.clone()
            },
        ];
        for config in refused {
            assert!(
                matches!(config.validate(), Err(ClientError::Config(_))),
                "{config:?}"
            );
        }
        for acks in [Acks::Leader, Acks::None] {
            let plain = ProducerConfig {
                acks,
                idempotence: false,
                ..base.clone()
            };
            assert!(
                plain.validate().is_ok(),
                "acks {acks:?} without idempotence"
            );
        }
    }
}
