//! A producer batch — the records of one partition sent in one record
//! batch — and how its outcome reaches the per-record [`DeliveryFuture`]s.
//!
//! Records share their batch's fate, so completion is per batch: one
//! `Arc<BatchCompletion>` that every record's future points at with its
//! index (offset = base offset + index). Enqueueing a record therefore
//! allocates nothing beyond the record itself and a slot in the batch's
//! `Vec`; only a future that is actually polled before completion registers
//! a waker.
//!
//! A batch is encoded once ([`ProducerBatch::encode`]) and the bytes are
//! reused by every retry. An idempotent batch carries its [`Stamp`] (producer
//! id, epoch, base sequence) in its header; should the stamp change (new
//! sequences after a reset), the encoded header is re-stamped in place of a
//! new encoding (the CRC-32C is computed again). A batch dropped without an outcome (the runtime
//! shut down under the producer's tasks) fails its futures with
//! [`ClientError::ProducerClosed`] instead of leaving them pending forever.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use sediment_protocol::records::{BatchBuilder, BatchOptions, RecordParts};

use crate::error::{ClientError, Result};
use crate::producer::record::{CompressionCodec, RecordMetadata};
use crate::producer::sequence::Stamp;

/// Where the CRC-32C sits in a v2 batch header; it covers `attributes` on.
const CRC_AT: usize = 17;
/// Where `attributes` sits.
const ATTRIBUTES_AT: usize = 21;
/// Where `producerId` sits (then `producerEpoch` i16, `baseSequence` i32).
const PRODUCER_ID_AT: usize = 43;
/// Where `recordCount` sits: the header ends after it.
const RECORD_COUNT_AT: usize = 57;
/// The transactional bit of `attributes`.
const TRANSACTIONAL_FLAG: i16 = 0x10;

/// The broker's acknowledgement of a whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchAck {
    /// Offset of the first record; -1 when unknown (acks=0).
    pub base_offset: i64,
    /// Broker append time for `LogAppendTime` topics, else -1.
    pub log_append_time: i64,
}

/// The shared outcome of one batch.
pub(crate) struct BatchCompletion {
    topic: Arc<str>,
    partition: i32,
    /// Set once; every record's future reads it without a lock.
    done: OnceLock<Result<BatchAck>>,
    /// Futures polled before the outcome, to wake when it is set.
    wakers: Mutex<Vec<Waker>>,
}

impl BatchCompletion {
    fn wakers(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        // A list of wakers is consistent whatever a panicking holder did.
        self.wakers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the outcome (the first one wins) and wakes every waiter.
    pub(crate) fn complete(&self, result: Result<BatchAck>) {
        if self.done.set(result).is_err() {
            return;
        }
        // Taken after the outcome is set: a future that registered before
        // is woken here, one that looks after sees the outcome.
        let wakers = std::mem::take(&mut *self.wakers());
        for waker in wakers {
            waker.wake();
        }
    }
}

/// Resolves to where one record was stored, once its batch is acknowledged
/// (or to the error that failed the batch after retries).
#[must_use = "a DeliveryFuture reports whether the record was stored"]
pub struct DeliveryFuture {
    completion: Arc<BatchCompletion>,
    index: i32,
    timestamp: i64,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("topic", &self.completion.topic)
            .field("partition", &self.completion.partition)
            .field("index", &self.index)
            .finish()
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(outcome) = this.completion.done.get() {
            return Poll::Ready(this.metadata(outcome));
        }
        let mut wakers = this.completion.wakers();
        // Looked at again under the lock `complete` takes after setting it.
        if let Some(outcome) = this.completion.done.get() {
            drop(wakers);
            return Poll::Ready(this.metadata(outcome));
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl DeliveryFuture {
    /// This record's share of its batch's outcome.
    fn metadata(&self, outcome: &Result<BatchAck>) -> Result<RecordMetadata> {
        match outcome {
            Ok(ack) => Ok(RecordMetadata {
                topic: Arc::clone(&self.completion.topic),
                partition: self.completion.partition,
                offset: if ack.base_offset < 0 {
                    -1
                } else {
                    ack.base_offset + i64::from(self.index)
                },
                timestamp: if ack.log_append_time >= 0 {
                    ack.log_append_time
                } else {
                    self.timestamp
                },
            }),
            Err(e) => Err(e.clone()),
        }
    }
}

/// Records of one partition on their way to the broker.
pub(crate) struct ProducerBatch {
    /// Creation order; `flush` waits for every id below its mark.
    pub id: u64,
    /// Destination topic.
    pub topic: Arc<str>,
    /// Destination partition.
    pub partition: i32,
    /// The records, encoded as they arrive, until the batch is encoded
    /// whole (emptied by `encode`).
    pub records: BatchBuilder,
    /// Estimated bytes: buffer memory held until completion.
    pub bytes: usize,
    /// When the first record arrived (linger starts here).
    pub created: Instant,
    /// Sends so far.
    pub attempts: u32,
    /// Not to be sent before this instant (retry back-off).
    pub retry_at: Option<Instant>,
    /// The idempotence fields given when it was first put in a request
    /// (`None` without idempotence, or before).
    pub stamp: Option<Stamp>,
    /// Records in the batch.
    pub count: i32,
    encoded: Option<(Bytes, Option<Stamp>)>,
    completion: Arc<BatchCompletion>,
}

impl ProducerBatch {
    /// An empty batch with room for `capacity` bytes of records.
    pub(crate) fn new(
        id: u64,
        topic: Arc<str>,
        partition: i32,
        now: Instant,
        capacity: usize,
    ) -> Self {
        Self {
            id,
            completion: Arc::new(BatchCompletion {
                topic: Arc::clone(&topic),
                partition,
                done: OnceLock::new(),
                wakers: Mutex::new(Vec::new()),
            }),
            topic,
            partition,
            records: BatchBuilder::with_capacity(capacity),
            bytes: 0,
            created: now,
            attempts: 0,
            retry_at: None,
            stamp: None,
            count: 0,
            encoded: None,
        }
    }

    /// Encodes a record into the batch and returns its future. `record`'s
    /// offset is ignored: offsets are deltas inside the batch (the broker
    /// assigns the base).
    pub(crate) fn push(&mut self, record: RecordParts<'_>, size: usize) -> Result<DeliveryFuture> {
        let index = self.records.count();
        self.records
            .push(RecordParts {
                offset: i64::from(index),
                ..record
            })
            .map_err(|e| ClientError::Encode {
                what: format!("record for {}-{}", self.topic, self.partition),
                reason: e.to_string(),
            })?;
        self.count = self.count.saturating_add(1);
        self.bytes += size;
        Ok(DeliveryFuture {
            completion: Arc::clone(&self.completion),
            index,
            timestamp: record.timestamp,
        })
    }

    /// Number of records not yet encoded.
    pub(crate) fn is_empty(&self) -> bool {
        self.records.count() == 0 && self.encoded.is_none()
    }

    /// The encoded record batch, encoding it on first use with the batch's
    /// stamp (or none), and re-stamping the header if the stamp changed.
    pub(crate) fn encode(&mut self, codec: CompressionCodec) -> Result<Bytes> {
        if let Some((encoded, stamp)) = &self.encoded {
            if *stamp == self.stamp {
                return Ok(encoded.clone());
            }
            let restamped = restamp(encoded, self.stamp);
            self.encoded = Some((restamped.clone(), self.stamp));
            return Ok(restamped);
        }
        let mut options = BatchOptions {
            compression: codec.wire(),
            ..BatchOptions::default()
        };
        if let Some(stamp) = self.stamp {
            options.producer_id = stamp.identity.producer_id;
            options.producer_epoch = stamp.identity.epoch;
            options.base_sequence = stamp.base_sequence;
            options.transactional = stamp.transactional;
        }
        let records = std::mem::take(&mut self.records);
        let encoded = records.finish(&options).map_err(|e| ClientError::Encode {
            what: format!("record batch for {}-{}", self.topic, self.partition),
            reason: e.to_string(),
        })?;
        self.encoded = Some((encoded.clone(), self.stamp));
        Ok(encoded)
    }

    /// Resolves every record's future.
    pub(crate) fn complete(&self, result: Result<BatchAck>) {
        self.completion.complete(result);
    }
}

/// `batch` with the producer id, epoch, base sequence and transactional
/// flag of `stamp` (or none), and its CRC-32C computed again. The caller
/// encoded `batch`, so its header is whole.
fn restamp(batch: &Bytes, stamp: Option<Stamp>) -> Bytes {
    let mut bytes = BytesMut::from(&batch[..]);
    if bytes.len() <= RECORD_COUNT_AT {
        return batch.clone();
    }
    let (producer_id, epoch, sequence, transactional) = match stamp {
        Some(s) => (
            s.identity.producer_id,
            s.identity.epoch,
            s.base_sequence,
            s.transactional,
        ),
        None => (-1, -1, -1, false),
    };
    let attributes = i16::from_be_bytes([bytes[ATTRIBUTES_AT], bytes[ATTRIBUTES_AT + 1]]);
    let attributes = if transactional {
        attributes | TRANSACTIONAL_FLAG
    } else {
        attributes & !TRANSACTIONAL_FLAG
    };
    bytes[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    bytes[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
    bytes[PRODUCER_ID_AT + 8..PRODUCER_ID_AT + 10].copy_from_slice(&epoch.to_be_bytes());
    bytes[PRODUCER_ID_AT + 10..PRODUCER_ID_AT + 14].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[ATTRIBUTES_AT..]);
    bytes[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    bytes.freeze()
}

impl Drop for ProducerBatch {
    fn drop(&mut self) {
        self.completion.complete(Err(ClientError::ProducerClosed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sediment_protocol::records::{decode_batch, split_batches};

    fn record(value: &'static [u8], timestamp: i64) -> RecordParts<'static> {
        RecordParts {
            offset: 0,
            timestamp,
            key: None,
            value: Some(value),
            headers: &[],
        }
    }

    #[tokio::test]
    async fn given_acked_batch_then_futures_get_base_plus_index() {
        let mut batch = ProducerBatch::new(0, Arc::from("t"), 2, Instant::now(), 4);
        let first = batch.push(record(b"a", 10), 40).expect("push");
        let second = batch.push(record(b"b", 11), 40).expect("push");
        batch.complete(Ok(BatchAck {
            base_offset: 100,
            log_append_time: -1,
        }));
        let first = first.await.ok();
        let second = second.await.ok();
        assert_eq!(first.map(|m| (m.offset, m.timestamp)), Some((100, 10)));
        assert_eq!(
            second.map(|m| (m.topic, m.partition, m.offset)),
            Some(("t".into(), 2, 101))
        );
    }

    #[tokio::test]
    async fn given_dropped_batch_then_futures_fail_with_closed() {
        let mut batch = ProducerBatch::new(0, Arc::from("t"), 0, Instant::now(), 4);
        let future = batch.push(record(b"a", 1), 40).expect("push");
        drop(batch);
        assert!(matches!(future.await, Err(ClientError::ProducerClosed)));
    }

    #[test]
    fn given_a_stamp_then_header_carries_it_and_a_new_stamp_restamps_the_same_records() {
        use crate::producer::sequence::ProducerIdentity;
        let mut batch = ProducerBatch::new(0, Arc::from("t"), 0, Instant::now(), 4);
        for i in 0..3 {
            drop(batch.push(record(b"abc", 1000 + i), 40).expect("push"));
        }
        assert_eq!(batch.count, 3);
        let stamp = |producer_id, base_sequence, transactional| Stamp {
            identity: ProducerIdentity {
                producer_id,
                epoch: 2,
            },
            base_sequence,
            transactional,
        };
        batch.stamp = Some(stamp(41, 7, true));
        let first = batch.encode(CompressionCodec::Gzip).unwrap();
        let decoded = decode_batch(first, 1 << 20).unwrap();
        assert_eq!(
            (
                decoded.producer_id,
                decoded.producer_epoch,
                decoded.base_sequence
            ),
            (41, 2, 7)
        );
        assert!(decoded.transactional);
        batch.stamp = Some(stamp(42, 0, false));
        let second = decode_batch(batch.encode(CompressionCodec::Gzip).unwrap(), 1 << 20);
        let second = second.expect("re-stamped batch passes its CRC check");
        assert_eq!((second.producer_id, second.base_sequence), (42, 0));
        assert!(!second.transactional);
        assert_eq!(second.records, decoded.records);
    }

    #[test]
    fn given_records_then_encoded_once_as_one_batch_without_sequence() {
        let mut batch = ProducerBatch::new(0, Arc::from("t"), 0, Instant::now(), 4);
        for i in 0..5 {
            drop(batch.push(record(b"xyz", 1000 + i), 40).expect("push"));
        }
        let encoded = batch.encode(CompressionCodec::Lz4).unwrap_or_default();
        assert_eq!(batch.records.count(), 0);
        assert_eq!(
            batch.encode(CompressionCodec::None).ok(),
            Some(encoded.clone())
        );
        let batches: Vec<Bytes> = split_batches(&encoded).collect();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].len(), encoded.len());
        let decoded = decode_batch(batches[0].clone(), 1 << 20).unwrap();
        let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
        assert_eq!(decoded.base_sequence, -1);
        assert_eq!(decoded.producer_id, -1);
        assert_eq!(
            decoded.compression,
            sediment_protocol::records::Compression::Lz4
        );
    }
}
