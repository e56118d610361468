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
//!   reach the broker in order unless a retry intervenes. With idempotence a
//!   retry does not reorder either: the [`Sequences`] rules hold batches of
//!   a partition back until older ones are settled, and a batch is stamped
//!   with its sequence as it goes into its first request.
//! - A transactional batch goes into a request only once its partition was
//!   added to the transaction (`may_add`); the drain reports the partitions
//!   still to add.
//!
//! [`drain`]: Accumulator::drain

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sediment_protocol::records::RecordParts;

use crate::error::{ClientError, Result};
use crate::producer::batch::{DeliveryFuture, ProducerBatch};
use crate::producer::partitioner::{partition_for_hash, Rng};
use crate::producer::record::ProducerRecord;
use crate::producer::sequence::{ProducerIdentity, Sequences};

/// The most bytes a new batch makes room for up front while its topic's
/// batches do not fill up (many partitions may each hold an open batch); a
/// batch of more grows as a buffer does.
const MAX_PRESIZED_BYTES: usize = 64 << 10;

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
    /// Partitions with a batch ready to go that are not yet part of the
    /// open transaction (AddPartitionsToTxn first).
    pub unadded: HashSet<(Arc<str>, i32)>,
}

struct TopicState {
    name: Arc<str>,
    partitions: i32,
    sticky: Option<i32>,
    open: Vec<Option<ProducerBatch>>,
    /// Room a new sticky batch of this topic starts with: the whole
    /// `batch_size` once a sticky batch filled up (no regrowth copies while
    /// records stream in), back to `MAX_PRESIZED_BYTES` once a batch
    /// lingered out part-full. Only the sticky partition's open batch gets
    /// it, so at most one presized batch per topic is open at a time.
    presize: usize,
}

struct State {
    topics: HashMap<String, TopicState>,
    sealed: VecDeque<ProducerBatch>,
    retry: Vec<ProducerBatch>,
    next_id: u64,
    incomplete: BTreeSet<u64>,
    sequences: Sequences,
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
    /// An empty accumulator; `sequences` says whether batches are
    /// idempotent (and transactional).
    pub(crate) fn new(
        batch_size: usize,
        linger: Duration,
        delivery_timeout: Duration,
        max_request_bytes: usize,
        sequences: Sequences,
    ) -> Self {
        Self {
            state: Mutex::new(State {
                topics: HashMap::new(),
                sealed: VecDeque::new(),
                retry: Vec::new(),
                next_id: 0,
                incomplete: BTreeSet::new(),
                sequences,
            }),
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
                        presize: self.batch_size.min(MAX_PRESIZED_BYTES),
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
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(topic) = state.topics.get_mut(&*record.topic) else {
            return Ok(Appended {
                append: Append::NeedMetadata(record),
                wake: false,
            });
        };
        // Unkeyed records without a partition go where stickiness says.
        let sticky_placed = record.partition.is_none() && key_hash.is_none();
        let mut partition = match (record.partition, key_hash) {
            (Some(p), _) if (0..topic.partitions).contains(&p) => p,
            (Some(p), _) if metadata_fresh => {
                return Err(ClientError::UnknownPartition {
                    topic: record.topic.to_string(),
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
        let mut wake = false;
        // Close the open batch first if this record would overflow it. A
        // sticky-placed record follows the sticky partition to its next one
        // (as Kafka's KIP-480 partitioner does) instead of opening a batch of
        // one record behind the full one.
        loop {
            let slot = &mut topic.open[usize::try_from(partition).unwrap_or(0)];
            let overflows = slot
                .as_ref()
                .is_some_and(|open| open.bytes + size > self.batch_size && !open.is_empty());
            if !overflows {
                break;
            }
            if let Some(full) = slot.take() {
                state.sealed.push_back(full);
                wake = true;
            }
            if topic.sticky != Some(partition) {
                break;
            }
            let next = self.next_sticky(partition, topic.partitions);
            topic.sticky = Some(next);
            topic.presize = self.batch_size;
            if !sticky_placed || next == partition {
                break;
            }
            partition = next;
        }
        let index = usize::try_from(partition).unwrap_or(0);
        let slot = &mut topic.open[index];
        let batch = match slot {
            Some(batch) => batch,
            None => {
                let id = state.next_id;
                state.next_id += 1;
                state.incomplete.insert(id);
                wake = true;
                let capacity = if sticky_placed {
                    topic.presize
                } else {
                    self.batch_size.min(MAX_PRESIZED_BYTES)
                };
                slot.insert(ProducerBatch::new(
                    id,
                    Arc::clone(&topic.name),
                    partition,
                    Instant::now(),
                    capacity,
                ))
            }
        };
        let parts = RecordParts {
            offset: 0,
            timestamp: record.timestamp.unwrap_or_else(now_ms),
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: &record.headers,
        };
        let future = match batch.push(parts, size) {
            Ok(future) => future,
            Err(error) => {
                // A batch opened for this record alone goes again.
                if batch.count == 0 {
                    if let Some(empty) = slot.take() {
                        state.incomplete.remove(&empty.id);
                    }
                }
                return Err(error);
            }
        };
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
    /// take (its free in-flight slots); `may_add` says whether a partition
    /// may be written to (for a transactional producer: it is part of the
    /// open transaction).
    pub(crate) fn drain(
        &self,
        now: Instant,
        leader: impl Fn(&str, i32) -> Option<i32>,
        capacity: impl Fn(i32) -> usize,
        may_add: impl Fn(&str, i32) -> bool,
    ) -> Drained {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut missing_leaders = HashSet::new();
        // Retries that fell due go back among the sealed batches in creation
        // (id) order: ahead of newer batches of their partition, and behind
        // older ones still held back from an earlier round (a retry that
        // jumped ahead of an older retry of its partition could only be
        // refused as out of order, again and again).
        let (due, waiting): (Vec<ProducerBatch>, Vec<ProducerBatch>) =
            std::mem::take(&mut state.retry)
                .into_iter()
                .partition(|b| b.retry_at.is_none_or(|at| at <= now));
        state.retry = waiting;
        if !due.is_empty() {
            state.sealed.extend(due);
            state.sealed.make_contiguous().sort_by_key(|b| b.id);
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
                    topic.presize = self.batch_size.min(MAX_PRESIZED_BYTES);
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
        let mut unadded = HashSet::new();
        if state.sequences.enabled() {
            // A batch waiting for its retry holds back the newer ones of
            // its partition (they would get later sequences and overtake it).
            for batch in &state.retry {
                blocked.insert((Arc::clone(&batch.topic), batch.partition));
            }
        }
        let mut kept = VecDeque::new();
        let mut expired = Vec::new();
        while let Some(mut batch) = state.sealed.pop_front() {
            let key = (Arc::clone(&batch.topic), batch.partition);
            if blocked.contains(&key) {
                kept.push_back(batch);
                continue;
            }
            if !may_add(&batch.topic, batch.partition) {
                unadded.insert(key.clone());
                blocked.insert(key);
                kept.push_back(batch);
                continue;
            }
            if !state
                .sequences
                .may_send(&batch.topic, batch.partition, batch.stamp)
            {
                blocked.insert(key);
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
            let joins = planned.last().copied().filter(|&last| {
                let request = &requests[last];
                let has_partition = request
                    .batches
                    .iter()
                    .any(|b| b.partition == batch.partition && b.topic == batch.topic);
                !has_partition && request.bytes + batch.bytes <= self.max_request_bytes
            });
            if joins.is_none() && planned.len() >= capacity(broker) {
                blocked.insert(key);
                kept.push_back(batch);
                continue;
            }
            // It goes: the sequence is given now, in send order.
            batch.stamp = state.sequences.stamp(
                &batch.topic,
                batch.partition,
                batch.id,
                batch.count,
                batch.stamp,
            );
            match joins {
                Some(last) => {
                    let request = &mut requests[last];
                    request.bytes += batch.bytes;
                    request.batches.push(batch);
                }
                None => {
                    planned.push(requests.len());
                    requests.push(RequestBatches {
                        broker,
                        bytes: batch.bytes,
                        batches: vec![batch],
                    });
                }
            }
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
            unadded,
        }
    }

    /// Puts a batch back to be sent again at `retry_at`.
    pub(crate) fn requeue(&self, mut batch: ProducerBatch, retry_at: Instant) {
        batch.retry_at = Some(retry_at);
        let mut state = self.lock();
        state
            .sequences
            .returned(&batch.topic, batch.partition, batch.id);
        state.retry.push(batch);
    }

    /// Forgets a finished batch (`acked`: the broker stored it); true when
    /// nothing is left incomplete.
    pub(crate) fn complete(&self, batch: &ProducerBatch, acked: bool) -> bool {
        let mut state = self.lock();
        state
            .sequences
            .finished(&batch.topic, batch.partition, batch.id, batch.stamp, acked);
        state.incomplete.remove(&batch.id);
        state.incomplete.is_empty()
    }

    /// Removes every batch not in a request (open, sealed, waiting for a
    /// retry), for the caller to fail: their transaction is over.
    pub(crate) fn take_unsent(&self) -> Vec<ProducerBatch> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut taken: Vec<ProducerBatch> = state.retry.drain(..).collect();
        taken.extend(state.sealed.drain(..));
        for topic in state.topics.values_mut() {
            taken.extend(topic.open.iter_mut().filter_map(Option::take));
            topic.sticky = None;
        }
        taken
    }

    /// Whether batches are idempotent and wait for a producer id (none
    /// yet, or a reset is due).
    pub(crate) fn needs_identity(&self) -> bool {
        self.lock().sequences.needs_identity()
    }

    /// Whether a failed idempotent batch left a hole in a sequence.
    pub(crate) fn needs_reset(&self) -> bool {
        self.lock().sequences.needs_reset()
    }

    /// The identity batches are stamped with.
    pub(crate) fn identity(&self) -> Option<ProducerIdentity> {
        self.lock().sequences.identity()
    }

    /// Stamps batches with `identity` from now on, every sequence from 0;
    /// batches waiting for a retry fall due at once, to go first.
    pub(crate) fn set_identity(&self, identity: ProducerIdentity) {
        let mut state = self.lock();
        state.sequences.set_identity(identity);
        for batch in &mut state.retry {
            batch.retry_at = None;
        }
    }

    /// Sends batches without producer id or sequences from now on.
    pub(crate) fn disable_idempotence(&self) {
        self.lock().sequences.disable();
    }

    /// Asks for a new identity before anything else is sent.
    pub(crate) fn request_reset(&self) {
        self.lock().sequences.request_reset();
    }

    /// Whether an OUT_OF_ORDER_SEQUENCE_NUMBER answer for `batch` comes from
    /// an older batch of its partition not yet stored (or a reset): then
    /// `batch` is sent again after it instead of failing.
    pub(crate) fn explains_out_of_order(&self, batch: &ProducerBatch) -> bool {
        self.lock().sequences.explains_out_of_order(
            &batch.topic,
            batch.partition,
            batch.id,
            batch.stamp,
        )
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
    // Whole seconds and the millisecond part separately: `as_millis` works in
    // u128, and this runs once per record.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| {
            i64::try_from(d.as_secs())
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000)
                .saturating_add(i64::from(d.subsec_millis()))
        })
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
            Sequences::new(false, false),
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
        let drained = acc.drain(now, |_, _| Some(1), |_| 5, |_, _| true);
        assert!(drained.requests.is_empty());
        assert!(drained.next_deadline.is_some());
        let later = now + Duration::from_millis(60);
        let drained = acc.drain(later, |_, _| Some(1), |_| 5, |_, _| true);
        assert_eq!(drained.requests.len(), 1);
        assert_eq!(drained.requests[0].batches[0].count as usize, 1);
    }

    #[test]
    fn given_full_batches_then_one_batch_per_partition_per_request_in_order() {
        // Each record is 46 estimated bytes: two fit in 100.
        let acc = accumulator(100, 1000);
        for _ in 0..6 {
            drop(append(&acc, 1));
        }
        drop(append(&acc, 2));
        let first = acc.drain(Instant::now(), |_, _| Some(7), |_| 2, |_, _| true);
        let drained = &first;
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
        let drained = acc.drain(Instant::now(), |_, _| Some(7), |_| 5, |_, _| true);
        let count: usize = drained.requests.iter().map(|r| r.batches.len()).sum();
        assert_eq!(count, 2);
        for request in drained.requests {
            for batch in &request.batches {
                acc.complete(batch, true);
            }
        }
        assert!(!acc.is_flushed(mark), "batches 0 and 1 are still out");
        for request in first.requests {
            for batch in &request.batches {
                acc.complete(batch, true);
            }
        }
        assert!(acc.is_flushed(mark));
        assert!(acc.is_idle());
    }

    fn idempotent(batch_size: usize) -> Accumulator {
        let acc = Accumulator::new(
            batch_size,
            Duration::ZERO,
            Duration::from_secs(60),
            1 << 20,
            Sequences::new(true, false),
        );
        acc.set_partitions("t", 3);
        acc.set_identity(ProducerIdentity {
            producer_id: 9,
            epoch: 0,
        });
        acc
    }

    fn drain_ids(acc: &Accumulator) -> Vec<ProducerBatch> {
        acc.drain(Instant::now(), |_, _| Some(1), |_| 5, |_, _| true)
            .requests
            .into_iter()
            .flat_map(|r| r.batches)
            .collect()
    }

    #[test]
    fn given_idempotence_then_batches_are_stamped_in_send_order_and_first_is_not_pipelined() {
        // Each record is 46 estimated bytes: one batch per record.
        let acc = idempotent(50);
        for _ in 0..3 {
            drop(append(&acc, 0));
        }
        acc.seal_all();
        let first = drain_ids(&acc);
        assert_eq!(first.len(), 1, "the first batch goes alone");
        assert_eq!(first[0].stamp.map(|s| s.base_sequence), Some(0));
        acc.complete(&first[0], true);
        let rest = drain_ids(&acc);
        let stamps: Vec<Option<i32>> = rest
            .iter()
            .map(|b| b.stamp.map(|s| s.base_sequence))
            .collect();
        assert_eq!(stamps, vec![Some(1), Some(2)], "then pipelined");
    }

    #[test]
    fn given_an_older_retry_held_back_when_a_newer_one_falls_due_then_the_older_goes_first() {
        let acc = idempotent(50);
        for _ in 0..3 {
            drop(append(&acc, 0));
        }
        acc.seal_all();
        let first = drain_ids(&acc);
        acc.complete(&first[0], true);
        let mut out = drain_ids(&acc).into_iter();
        let (older, newer) = (out.next().unwrap(), out.next().unwrap());
        // The older one's request failed; the newer one is still out.
        acc.requeue(older, Instant::now());
        assert!(drain_ids(&acc).is_empty(), "no retry while another is out");
        // The newer one is refused as out of order: it goes after the older.
        assert!(acc.explains_out_of_order(&newer));
        acc.requeue(newer, Instant::now());
        let ids: Vec<u64> = drain_ids(&acc).iter().map(|b| b.id).collect();
        assert_eq!(ids, vec![1], "the older retry first, alone");
    }

    #[test]
    fn given_a_partition_not_in_the_transaction_then_it_is_reported_and_held() {
        let acc = accumulator(1 << 20, 0);
        drop(append(&acc, 0));
        drop(append(&acc, 1));
        let drained = acc.drain(Instant::now(), |_, _| Some(1), |_| 5, |_, p| p == 1);
        let sent: Vec<i32> = drained
            .requests
            .iter()
            .flat_map(|r| r.batches.iter().map(|b| b.partition))
            .collect();
        assert_eq!(sent, vec![1]);
        assert_eq!(drained.unadded.len(), 1);
        assert!(drained.unadded.contains(&(Arc::from("t"), 0)));
        assert_eq!(acc.take_unsent().len(), 1, "held, then taken to be failed");
    }

    #[test]
    fn given_busy_broker_then_open_batch_keeps_filling() {
        let acc = accumulator(1 << 20, 0);
        drop(append(&acc, 0));
        let drained = acc.drain(Instant::now(), |_, _| Some(1), |_| 0, |_, _| true);
        assert!(drained.requests.is_empty());
        drop(append(&acc, 0));
        let drained = acc.drain(Instant::now(), |_, _| Some(1), |_| 1, |_, _| true);
        assert_eq!(drained.requests[0].batches[0].count as usize, 2);
    }

    #[test]
    fn given_no_leader_past_delivery_timeout_then_batch_expires() {
        let acc = Accumulator::new(
            1 << 20,
            Duration::ZERO,
            Duration::ZERO,
            1 << 20,
            Sequences::new(false, false),
        );
        acc.set_partitions("t", 1);
        drop(append(&acc, 0));
        let drained = acc.drain(Instant::now(), |_, _| None, |_| 5, |_, _| true);
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

    #[test]
    fn given_unkeyed_record_that_fills_a_batch_then_it_opens_its_batch_on_the_next_sticky_partition(
    ) {
        let acc = accumulator(100, 1000);
        let mut first = None;
        for _ in 0..3 {
            let record = ProducerRecord::new("t", "0123456789");
            let size = record.estimated_size();
            let Ok(Append::Done(_)) = acc.append(record, size, None, false).map(|a| a.append)
            else {
                panic!("append failed");
            };
            first = first.or(acc.lock().topics["t"].sticky);
        }
        let state = acc.lock();
        let topic = &state.topics["t"];
        let (Some(full), Some(now)) = (first, topic.sticky) else {
            panic!("no sticky partition");
        };
        assert_ne!(full, now);
        // The full batch was sealed and nothing is left open behind it; the
        // third record waits in the new sticky partition's batch.
        assert!(topic.open[usize::try_from(full).unwrap()].is_none());
        let open = topic.open[usize::try_from(now).unwrap()].as_ref().unwrap();
        assert_eq!(open.count, 1);
        assert_eq!(state.sealed.len(), 1);
    }
}
