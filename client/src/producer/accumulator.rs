//! The record accumulator: one open batch per partition, filled by
//! `enqueue` and closed for sending when it is full, when its linger time
//! is up and its leader can take another request, or on `flush`.
//!
//! All of it sits behind one mutex held for a few hundred nanoseconds per
//! record (choose the partition, push the record); everything per batch
//! (sealing, leader lookup, grouping per broker) happens in [`drain`],
//! called by the sender's drain task.
//!
//! Invariants:
//! - Every batch id in `incomplete` belongs to a batch that is open, sealed,
//!   waiting for a retry, or in a request; ids are removed exactly once, by
//!   [`Accumulator::complete`]. `flush` waits for the ids below its mark.
//! - Sealed and retried batches are handed out oldest first, and at most one
//!   batch per partition goes into one request, so batches of a partition
//!   reach the broker in order unless a retry intervenes (as in Kafka without
//!   idempotence).
//!
//! [`drain`]: Accumulator::drain

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sediment_protocol::records::Record;

use crate::error::{ClientError, Result};
use crate::producer::batch::{DeliveryFuture, ProducerBatch};
use crate::producer::partitioner::{partition_for_hash, Rng};
use crate::producer::record::ProducerRecord;

/// Answer of [`Accumulator::append`].
pub(crate) enum Append {
    /// Appended; here is its future.
    Done(DeliveryFuture),
    /// The topic (or this partition of it) is not known yet: look it up and
    /// call [`Accumulator::set_partitions`], then append again.
    NeedMetadata(ProducerRecord),
}

/// Batches for one broker, sent as one Produce request.
pub(crate) struct RequestBatches {
    /// Leader broker id.
    pub broker: i32,
    /// At most one batch per partition.
    pub batches: Vec<ProducerBatch>,
    /// Bytes (estimated) in `batches`.
    pub bytes: usize,
}

/// What the drain task learns from one [`Accumulator::drain`].
pub(crate) struct Drained {
    /// Requests to send now.
    pub requests: Vec<RequestBatches>,
    /// Topics with a partition that has no known leader.
    pub missing_leaders: HashSet<Arc<str>>,
    /// Batches that waited longer than the delivery timeout for a leader:
    /// the caller fails them.
    pub expired: Vec<ProducerBatch>,
    /// When the next open batch lingers out or a retry falls due.
    pub next_deadline: Option<Instant>,
}

struct TopicState {
    name: Arc<str>,
    partitions: i32,
    sticky: Option<i32>,
    open: Vec<Option<ProducerBatch>>,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, TopicState>,
    sealed: VecDeque<ProducerBatch>,
    retry: Vec<ProducerBatch>,
    next_id: u64,
    incomplete: BTreeSet<u64>,
}

/// See the module documentation.
pub(crate) struct Accumulator {
    state: Mutex<State>,
    rng: Mutex<Rng>,
    batch_size: usize,
    linger: Duration,
    delivery_timeout: Duration,
    max_request_bytes: usize,
}

/// Output of [`Accumulator::append`]'s inner step, telling the caller whether
/// to wake the drain task (only when a batch was created or sealed).
pub(crate) struct Appended {
    /// The result.
    pub append: Append,
    /// A batch was created or sealed: the drain task has something new.
    pub wake: bool,
}

impl Accumulator {
    /// An empty accumulator.
    pub(crate) fn new(
        batch_size: usize,
        linger: Duration,
        delivery_timeout: Duration,
        max_request_bytes: usize,
    ) -> Self {
        Self {
            state: Mutex::new(State::default()),
            rng: Mutex::new(Rng::new()),
            batch_size,
            linger,
            delivery_timeout,
            max_request_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation leaves the state consistent before it can panic
        // (pushes and moves only), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records (or updates) the partition count of `topic`.
    pub(crate) fn set_partitions(&self, topic: &str, partitions: i32) {
        let mut state = self.lock();
        match state.topics.get_mut(topic) {
            Some(t) => {
                if partitions > t.partitions {
                    t.partitions = partitions;
                    t.open
                        .resize_with(usize::try_from(partitions).unwrap_or(0), || None);
                }
            }
            None => {
                state.topics.insert(
                    topic.to_string(),
                    TopicState {
                        name: Arc::from(topic),
                        partitions,
                        sticky: None,
                        open: (0..partitions).map(|_| None).collect(),
                    },
                );
            }
        }
    }

    /// Adds one record to its partition's open batch. `key_hash` is the
    /// record key's murmur2, computed by the caller outside the lock;
    /// `metadata_fresh` says the partition count was just looked up, so an
    /// out-of-range explicit partition is an error rather than a reason to
    /// look again.
    pub(crate) fn append(
        &self,
        record: ProducerRecord,
        size: usize,
        key_hash: Option<i32>,
        metadata_fresh: bool,
    ) -> Result<Appended> {
        let now = Instant::now();
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(topic) = state.topics.get_mut(&record.topic) else {
            return Ok(Appended {
                append: Append::NeedMetadata(record),
                wake: false,
            });
        };
        let partition = match (record.partition, key_hash) {
            (Some(p), _) if (0..topic.partitions).contains(&p) => p,
            (Some(p), _) if metadata_fresh => {
                return Err(ClientError::UnknownPartition {
                    topic: record.topic,
                    partition: p,
                    partitions: topic.partitions,
                })
            }
            (Some(_), _) => {
                return Ok(Appended {
                    append: Append::NeedMetadata(record),
                    wake: false,
                })
            }
            (None, Some(hash)) => partition_for_hash(hash, topic.partitions),
            (None, None) => match topic.sticky {
                Some(p) => p,
                None => {
                    let p = self
                        .rng
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .next_sticky(None, topic.partitions);
                    topic.sticky = Some(p);
                    p
                }
            },
        };
        let index = usize::try_from(partition).unwrap_or(0);
        let mut wake = false;
        let slot = &mut topic.open[index];
        // Close the open batch first if this record would overflow it.
        if let Some(open) = slot.as_ref() {
            if open.bytes + size > self.batch_size && !open.is_empty() {
                if let Some(full) = slot.take() {
                    state.sealed.push_back(full);
                    wake = true;
                    if topic.sticky == Some(partition) {
                        topic.sticky = Some(self.next_sticky(partition, topic.partitions));
                    }
                }
            }
        }
        let batch = match slot {
            Some(batch) => batch,
            None => {
                let id = state.next_id;
                state.next_id += 1;
                state.incomplete.insert(id);
                wake = true;
                slot.insert(ProducerBatch::new(
                    id,
                    Arc::clone(&topic.name),
                    partition,
                    now,
                ))
            }
        };
        let ProducerRecord {
            key,
            value,
            headers,
            timestamp,
            ..
        } = record;
        let record = Record {
            offset: 0,
            timestamp: timestamp.unwrap_or_else(now_ms),
            key,
            value,
            headers,
        };
        let future = batch.push(record, size);
        Ok(Appended {
            append: Append::Done(future),
            wake,
        })
    }

    fn next_sticky(&self, previous: i32, partitions: i32) -> i32 {
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_sticky(Some(previous), partitions)
    }

    /// Hands out what can be sent now. `leader` maps a partition to its
    /// leader broker; `capacity` says how many more requests a broker can
    /// take (its free in-flight slots).
    pub(crate) fn drain(
        &self,
        now: Instant,
        leader: impl Fn(&str, i32) -> Option<i32>,
        capacity: impl Fn(i32) -> usize,
    ) -> Drained {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut missing_leaders = HashSet::new();
        // Retries that fell due go first: they are the oldest data.
        let (mut due, waiting): (Vec<ProducerBatch>, Vec<ProducerBatch>) =
            std::mem::take(&mut state.retry)
                .into_iter()
                .partition(|b| b.retry_at.is_none_or(|at| at <= now));
        state.retry = waiting;
        due.sort_by_key(|b| b.id);
        for batch in due.into_iter().rev() {
            state.sealed.push_front(batch);
        }
        // Open batches whose linger is up, if their leader can take them now.
        let mut next_deadline: Option<Instant> = None;
        for topic in state.topics.values_mut() {
            for (index, slot) in topic.open.iter_mut().enumerate() {
                let Some(batch) = slot.as_ref() else { continue };
                let due_at = batch.created + self.linger;
                if due_at > now {
                    next_deadline = Some(next_deadline.map_or(due_at, |d| d.min(due_at)));
                    continue;
                }
                let partition = i32::try_from(index).unwrap_or(0);
                match leader(&topic.name, partition) {
                    Some(broker) if capacity(broker) > 0 => {}
                    // Busy broker: the batch keeps filling until it can go.
                    Some(_) => continue,
                    // Leaderless for too long: seal it so that it expires below.
                    None if batch.created + self.delivery_timeout <= now => {}
                    None => {
                        missing_leaders.insert(Arc::clone(&topic.name));
                        continue;
                    }
                }
                if let Some(batch) = slot.take() {
                    state.sealed.push_back(batch);
                    if topic.sticky == Some(partition) {
                        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                        topic.sticky = Some(rng.next_sticky(Some(partition), topic.partitions));
                    }
                }
            }
        }
        // Group sealed batches into requests: per broker, as many requests as
        // it has free slots, each with at most one batch per partition. Once a
        // batch of a partition stays behind, later ones of it stay too.
        let mut requests: Vec<RequestBatches> = Vec::new();
        let mut per_broker: HashMap<i32, Vec<usize>> = HashMap::new();
        let mut blocked: HashSet<(Arc<str>, i32)> = HashSet::new();
        let mut kept = VecDeque::new();
        let mut expired = Vec::new();
        while let Some(batch) = state.sealed.pop_front() {
            let key = (Arc::clone(&batch.topic), batch.partition);
            if blocked.contains(&key) {
                kept.push_back(batch);
                continue;
            }
            let Some(broker) = leader(&batch.topic, batch.partition) else {
                if batch.created + self.delivery_timeout <= now {
                    expired.push(batch);
                    continue;
                }
                missing_leaders.insert(Arc::clone(&batch.topic));
                blocked.insert(key);
                kept.push_back(batch);
                continue;
            };
            let planned = per_broker.entry(broker).or_default();
            if let Some(&last) = planned.last() {
                let request = &mut requests[last];
                let has_partition = request
                    .batches
                    .iter()
                    .any(|b| b.partition == batch.partition && b.topic == batch.topic);
                if !has_partition && request.bytes + batch.bytes <= self.max_request_bytes {
                    request.bytes += batch.bytes;
                    request.batches.push(batch);
                    continue;
                }
            }
            if planned.len() < capacity(broker) {
                planned.push(requests.len());
                requests.push(RequestBatches {
                    broker,
                    bytes: batch.bytes,
                    batches: vec![batch],
                });
                continue;
            }
            blocked.insert(key);
            kept.push_back(batch);
        }
        state.sealed = kept;
        for batch in &state.retry {
            if let Some(at) = batch.retry_at {
                next_deadline = Some(next_deadline.map_or(at, |d| d.min(at)));
            }
        }
        Drained {
            requests,
            missing_leaders,
            expired,
            next_deadline,
        }
    }

    /// Puts a batch back to be sent again at `retry_at`.
    pub(crate) fn requeue(&self, mut batch: ProducerBatch, retry_at: Instant) {
        batch.retry_at = Some(retry_at);
        self.lock().retry.push(batch);
    }

    /// Forgets a finished batch; true when nothing is left incomplete.
    pub(crate) fn complete(&self, id: u64) -> bool {
        let mut state = self.lock();
        state.incomplete.remove(&id);
        state.incomplete.is_empty()
    }

    /// Closes every open batch for sending and returns the id mark that
    /// `flush` waits for: every batch below it was created before the call.
    pub(crate) fn seal_all(&self) -> u64 {
        let mut guard = self.lock();
        let state = &mut *guard;
        for topic in state.topics.values_mut() {
            for slot in topic.open.iter_mut() {
                if let Some(batch) = slot.take() {
                    state.sealed.push_back(batch);
                }
            }
            topic.sticky = None;
        }
        state.next_id
    }

    /// True when every batch below `mark` is complete.
    pub(crate) fn is_flushed(&self, mark: u64) -> bool {
        self.lock().incomplete.first().is_none_or(|&id| id >= mark)
    }

    /// True when no batch is incomplete.
    pub(crate) fn is_idle(&self) -> bool {
        self.lock().incomplete.is_empty()
    }
}

/// Wall-clock time in ms since the epoch (record create time).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accumulator(batch_size: usize, linger_ms: u64) -> Accumulator {
        let acc = Accumulator::new(
            batch_size,
            Duration::from_millis(linger_ms),
            Duration::from_secs(60),
            1 << 20,
        );
        acc.set_partitions("t", 3);
        acc
    }

    fn append(acc: &Accumulator, partition: i32) -> DeliveryFuture {
        let record = ProducerRecord::new("t", "0123456789").with_partition(partition);
        let size = record.estimated_size();
        match acc.append(record, size, None, false).map(|a| a.append) {
            Ok(Append::Done(future)) => future,
            _ => panic!("append failed"),
        }
    }

    #[test]
    fn given_open_batch_then_drained_only_after_linger() {
        let acc = accumulator(1 << 20, 50);
        drop(append(&acc, 0));
        let now = Instant::now();
        let drained = acc.drain(now, |_, _| Some(1), |_| 5);
        assert!(drained.requests.is_empty());
        assert!(drained.next_deadline.is_some());
        let later = now + Duration::from_millis(60);
        let drained = acc.drain(later, |_, _| Some(1), |_| 5);
        assert_eq!(drained.requests.len(), 1);
        assert_eq!(drained.requests[0].batches[0].records.len(), 1);
    }

    #[test]
    fn given_full_batches_then_one_batch_per_partition_per_request_in_order() {
        // Each record is 46 estimated bytes: two fit in 100.
        let acc = accumulator(100, 1000);
        for _ in 0..6 {
            drop(append(&acc, 1));
        }
        drop(append(&acc, 2));
        let drained = acc.drain(Instant::now(), |_, _| Some(7), |_| 2);
        // Partition 1 sealed two full batches (the third is still open);
        // they may not share a request, and only two requests are allowed.
        assert_eq!(drained.requests.len(), 2);
        let ids: Vec<u64> = drained
            .requests
            .iter()
            .flat_map(|r| r.batches.iter().map(|b| b.id))
            .collect();
        assert_eq!(ids, vec![0, 1]);
        assert!(drained.requests.iter().all(|r| r.broker == 7));
        // Flush closes the rest; a later drain hands them out.
        let mark = acc.seal_all();
        assert!(!acc.is_flushed(mark));
        let drained = acc.drain(Instant::now(), |_, _| Some(7), |_| 5);
        let count: usize = drained.requests.iter().map(|r| r.batches.len()).sum();
        assert_eq!(count, 2);
        for request in drained.requests {
            for batch in request.batches {
                acc.complete(batch.id);
            }
        }
        assert!(!acc.is_flushed(mark), "batches 0 and 1 are still out");
        acc.complete(0);
        acc.complete(1);
        assert!(acc.is_flushed(mark));
        assert!(acc.is_idle());
    }

    #[test]
    fn given_busy_broker_then_open_batch_keeps_filling() {
        let acc = accumulator(1 << 20, 0);
        drop(append(&acc, 0));
        let drained = acc.drain(Instant::now(), |_, _| Some(1), |_| 0);
        assert!(drained.requests.is_empty());
        drop(append(&acc, 0));
        let drained = acc.drain(Instant::now(), |_, _| Some(1), |_| 1);
        assert_eq!(drained.requests[0].batches[0].records.len(), 2);
    }

    #[test]
    fn given_no_leader_past_delivery_timeout_then_batch_expires() {
        let acc = Accumulator::new(1 << 20, Duration::ZERO, Duration::ZERO, 1 << 20);
        acc.set_partitions("t", 1);
        drop(append(&acc, 0));
        let drained = acc.drain(Instant::now(), |_, _| None, |_| 5);
        assert!(drained.requests.is_empty());
        assert_eq!(drained.expired.len(), 1);
    }

    #[test]
    fn given_partition_out_of_range_then_metadata_then_error() {
        let acc = accumulator(1 << 20, 0);
        let record = ProducerRecord::new("t", "v").with_partition(9);
        let appended = acc
            .append(record.clone(), 40, None, false)
            .map(|a| a.append);
        assert!(matches!(appended, Ok(Append::NeedMetadata(_))));
        assert!(matches!(
            acc.append(record, 40, None, true),
            Err(ClientError::UnknownPartition {
                partition: 9,
                partitions: 3,
                ..
            })
        ));
    }

    #[test]
    fn given_unkeyed_records_then_sticky_partition_changes_when_batch_seals() {
        let acc = accumulator(100, 1000);
        let mut partitions = Vec::new();
        for _ in 0..4 {
            let record = ProducerRecord::new("t", "0123456789");
            let size = record.estimated_size();
            let Ok(Append::Done(_)) = acc.append(record, size, None, false).map(|a| a.append)
            else {
                panic!("append failed");
            };
            let state = acc.lock();
            partitions.push(state.topics["t"].sticky);
        }
        // Two records fill a batch; the third seals it and moves on.
        assert_eq!(partitions[0], partitions[1]);
        assert_ne!(partitions[1], partitions[2]);
        assert_eq!(partitions[2], partitions[3]);
    }
}
