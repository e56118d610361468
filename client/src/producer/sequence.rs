//! Idempotent-producer bookkeeping, pure: the producer id and epoch the
//! producer holds, the next sequence number of every partition, and which
//! batches of a partition carry sequence numbers the broker has not
//! confirmed yet. The accumulator owns one [`Sequences`] behind its mutex
//! and asks it, batch by batch, while it forms requests.
//!
//! The rules, and why (Kafka's idempotent producer, KIP-98 and KIP-360):
//! - A batch gets its base sequence when it is first put into a request, in
//!   the order its partition's batches are sent, and keeps it for every
//!   retry: the broker recognises a retry of a batch it already stored (same
//!   producer id, epoch, first and last sequence) and answers with the
//!   original offsets instead of storing it twice.
//! - The broker takes a known producer's batch only when its first sequence
//!   follows the last one stored (else OUT_OF_ORDER_SEQUENCE_NUMBER, nothing
//!   stored), but takes *any* first sequence from a producer it does not
//!   know. So a partition's first batch under an identity is not pipelined:
//!   until the broker acknowledged one batch of the partition, no second one
//!   is in flight — a retried first batch could otherwise land after it.
//! - A batch is re-sent only when no other batch of its partition is in
//!   flight, and a new batch is not sent while an older one of its partition
//!   waits for a retry: retries go out one by one in sequence order and are
//!   never overtaken, so batches reach the log in the order they were sent.
//! - A stamped batch that ends without an acknowledgement (it failed for
//!   good, or its transaction was aborted before it was re-sent) leaves a
//!   hole in the sequence that no later batch of the partition can pass. The
//!   sequences then start again under a new identity (a new producer id, or
//!   a bumped epoch for a transactional id), obtained once nothing is in
//!   flight: see [`Sequences::needs_reset`]. Until then nothing is sent.
//!
//! Invariant: for every partition, `in_flight ⊆ unresolved`, and both hold
//! only ids of batches stamped under the current identity.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// A producer id and epoch, from InitProducerId.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerIdentity {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
}

/// The idempotence fields a batch's header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Who sent it.
    pub identity: ProducerIdentity,
    /// Sequence number of its first record.
    pub base_sequence: i32,
    /// Part of a transaction (the header's transactional flag).
    pub transactional: bool,
}

/// One partition's sequence state under the current identity.
#[derive(Debug, Default)]
struct PartitionSequence {
    /// The base sequence of the next new batch.
    next: i32,
    /// Stamped batches (by id) neither acknowledged nor failed.
    unresolved: BTreeSet<u64>,
    /// Of those, the ones in a request whose answer is not handled yet.
    in_flight: BTreeSet<u64>,
    /// The broker acknowledged a batch of this partition under this identity.
    acked: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Sequences {
    enabled: bool,
    transactional: bool,
    identity: Option<ProducerIdentity>,
    partitions: HashMap<(Arc<str>, i32), PartitionSequence>,
    reset_needed: bool,
}

/// The sequence after `count` records from `base`: sequences wrap from
/// `i32::MAX` to 0, as the broker expects.
pub(crate) fn advance(base: i32, count: i32) -> i32 {
    let next = (i64::from(base) + i64::from(count.max(0))) % (i64::from(i32::MAX) + 1);
    i32::try_from(next).unwrap_or(0)
}

impl Sequences {
    /// Bookkeeping for a producer; `enabled = false` for a producer without
    /// idempotence (every method is then a no-op that allows everything).
    pub(crate) fn new(enabled: bool, transactional: bool) -> Self {
        Self {
            enabled,
            transactional,
            identity: None,
            partitions: HashMap::new(),
            reset_needed: false,
        }
    }

    /// Whether batches carry producer ids and sequences.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Turns idempotence off for good (the broker has no InitProducerId).
    pub(crate) fn disable(&mut self) {
        self.enabled = false;
        self.identity = None;
        self.partitions.clear();
        self.reset_needed = false;
    }

    /// The identity batches are stamped with, once obtained.
    pub(crate) fn identity(&self) -> Option<ProducerIdentity> {
        self.identity
    }

    /// True when nothing may be sent before an InitProducerId.
    pub(crate) fn needs_identity(&self) -> bool {
        self.enabled && (self.identity.is_none() || self.reset_needed)
    }

    /// True when a stamped batch ended unacknowledged: a new identity is
    /// needed before anything else is sent.
    pub(crate) fn needs_reset(&self) -> bool {
        self.enabled && self.reset_needed
    }

    /// Asks for a new identity (the broker lost this producer's state).
    pub(crate) fn request_reset(&mut self) {
        if self.enabled {
            self.reset_needed = true;
        }
    }

    /// Starts over under `identity`: every partition's sequence from 0.
    /// Batches stamped before are re-stamped when next sent.
    pub(crate) fn set_identity(&mut self, identity: ProducerIdentity) {
        self.identity = Some(identity);
        self.partitions.clear();
        self.reset_needed = false;
    }

    fn is_current(&self, stamp: Option<Stamp>) -> bool {
        stamp.is_some_and(|s| Some(s.identity) == self.identity)
    }

    /// Whether batch `id` of `topic`/`partition`, carrying `stamp` from an
    /// earlier send (if any), may go into a request now.
    pub(crate) fn may_send(&self, topic: &Arc<str>, partition: i32, stamp: Option<Stamp>) -> bool {
        if !self.enabled {
            return true;
        }
        if self.identity.is_none() || self.reset_needed {
            return false;
        }
        let Some(state) = self.partitions.get(&(Arc::clone(topic), partition)) else {
            return true;
        };
        if self.is_current(stamp) {
            // A retry: only once nothing else of the partition is out.
            state.in_flight.is_empty()
        } else {
            // A new batch: no older batch waits for a retry, and the first
            // acknowledged batch is not pipelined.
            state.unresolved.len() == state.in_flight.len()
                && (state.acked || state.in_flight.is_empty())
        }
    }

    /// Stamps batch `id` (of `count` records) as it goes into a request:
    /// its earlier stamp if that is still current, else the partition's
    /// next sequence. `None` without idempotence.
    pub(crate) fn stamp(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        id: u64,
        count: i32,
        earlier: Option<Stamp>,
    ) -> Option<Stamp> {
        if !self.enabled {
            return None;
        }
        let identity = self.identity?;
        let current = self.is_current(earlier);
        let state = self
            .partitions
            .entry((Arc::clone(topic), partition))
            .or_default();
        state.in_flight.insert(id);
        if current {
            return earlier;
        }
        let base_sequence = state.next;
        state.next = advance(base_sequence, count);
        state.unresolved.insert(id);
        Some(Stamp {
            identity,
            base_sequence,
            transactional: self.transactional,
        })
    }

    /// Batch `id` came back from a request to be sent again.
    pub(crate) fn returned(&mut self, topic: &Arc<str>, partition: i32, id: u64) {
        if let Some(state) = self.partitions.get_mut(&(Arc::clone(topic), partition)) {
            state.in_flight.remove(&id);
        }
    }

    /// Batch `id` is done: acknowledged, or failed for good.
    pub(crate) fn finished(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        id: u64,
        stamp: Option<Stamp>,
        acked: bool,
    ) {
        if !self.enabled || !self.is_current(stamp) {
            return;
        }
        if let Some(state) = self.partitions.get_mut(&(Arc::clone(topic), partition)) {
            state.in_flight.remove(&id);
            state.unresolved.remove(&id);
            if acked {
                state.acked = true;
            } else {
                self.reset_needed = true;
            }
        }
    }

    /// Whether an OUT_OF_ORDER_SEQUENCE_NUMBER answer for batch `id` is
    /// explained by this producer's own state — an older batch of the
    /// partition is still unresolved, a reset is pending, or the batch was
    /// stamped under an older identity — so that the batch is simply sent
    /// again after them, rather than failed.
    pub(crate) fn explains_out_of_order(
        &self,
        topic: &Arc<str>,
        partition: i32,
        id: u64,
        stamp: Option<Stamp>,
    ) -> bool {
        if !self.is_current(stamp) || self.reset_needed {
            return true;
        }
        self.partitions
            .get(&(Arc::clone(topic), partition))
            .is_some_and(|state| state.unresolved.range(..id).next().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: ProducerIdentity = ProducerIdentity {
        producer_id: 7,
        epoch: 0,
    };

    fn topic() -> Arc<str> {
        Arc::from("t")
    }

    fn ready() -> Sequences {
        let mut s = Sequences::new(true, false);
        s.set_identity(ID);
        s
    }

    #[test]
    fn given_batches_then_sequences_follow_record_counts_and_wrap() {
        let mut s = ready();
        let t = topic();
        let a = s.stamp(&t, 0, 1, 10, None);
        assert_eq!(a.map(|s| s.base_sequence), Some(0));
        s.finished(&t, 0, 1, a, true);
        let b = s.stamp(&t, 0, 2, 5, None);
        assert_eq!(b.map(|s| s.base_sequence), Some(10));
        assert_eq!(s.stamp(&t, 1, 3, 5, None).map(|s| s.base_sequence), Some(0));
        assert_eq!(advance(i32::MAX, 1), 0);
        assert_eq!(advance(i32::MAX - 1, 4), 2);
    }

    #[test]
    fn given_a_retry_then_it_keeps_its_stamp() {
        let mut s = ready();
        let t = topic();
        let first = s.stamp(&t, 0, 1, 3, None);
        s.returned(&t, 0, 1);
        assert!(s.may_send(&t, 0, first));
        assert_eq!(s.stamp(&t, 0, 1, 3, first), first);
        assert_eq!(s.stamp(&t, 0, 2, 1, None).map(|s| s.base_sequence), Some(3));
    }

    #[test]
    fn given_unacknowledged_first_batch_then_the_next_is_not_pipelined() {
        let mut s = ready();
        let t = topic();
        let first = s.stamp(&t, 0, 1, 1, None);
        assert!(!s.may_send(&t, 0, None), "first batch still out");
        s.finished(&t, 0, 1, first, true);
        let _second = s.stamp(&t, 0, 2, 1, None);
        assert!(s.may_send(&t, 0, None), "pipelined once one was acked");
    }

    #[test]
    fn given_a_batch_waiting_for_a_retry_then_newer_batches_and_later_retries_wait() {
        let mut s = ready();
        let t = topic();
        let a = s.stamp(&t, 0, 1, 1, None);
        s.finished(&t, 0, 1, a, true);
        let b = s.stamp(&t, 0, 2, 1, None);
        let c = s.stamp(&t, 0, 3, 1, None);
        // b failed retriably: it waits; c is still out.
        s.returned(&t, 0, 2);
        assert!(!s.may_send(&t, 0, None), "new batch behind a waiting retry");
        assert!(!s.may_send(&t, 0, b), "retry while c is in flight");
        // c answers OUT_OF_ORDER because b is missing: explained, retried.
        assert!(s.explains_out_of_order(&t, 0, 3, c));
        s.returned(&t, 0, 3);
        assert!(s.may_send(&t, 0, b));
        s.stamp(&t, 0, 2, 1, b);
        assert!(!s.may_send(&t, 0, c), "one retry at a time");
        s.finished(&t, 0, 2, b, true);
        assert!(s.may_send(&t, 0, c));
    }

    #[test]
    fn given_out_of_order_with_nothing_older_unresolved_then_not_explained() {
        let mut s = ready();
        let t = topic();
        let a = s.stamp(&t, 0, 1, 1, None);
        s.finished(&t, 0, 1, a, true);
        let b = s.stamp(&t, 0, 2, 1, None);
        assert!(!s.explains_out_of_order(&t, 0, 2, b));
    }

    #[test]
    fn given_a_stamped_batch_failing_then_nothing_is_sent_until_a_new_identity() {
        let mut s = ready();
        let t = topic();
        let a = s.stamp(&t, 0, 1, 2, None);
        s.finished(&t, 0, 1, a, false);
        assert!(s.needs_reset() && s.needs_identity());
        assert!(!s.may_send(&t, 1, None));
        let next = ProducerIdentity {
            producer_id: 8,
            epoch: 0,
        };
        s.set_identity(next);
        assert!(!s.needs_reset());
        // A batch stamped under the old identity is stamped afresh.
        let again = s.stamp(&t, 0, 1, 2, a);
        assert_eq!(
            again.map(|s| (s.identity, s.base_sequence)),
            Some((next, 0))
        );
        // Old stamps no longer count.
        s.finished(&t, 0, 9, a, false);
        assert!(!s.needs_reset());
    }

    #[test]
    fn given_idempotence_off_then_everything_may_go_unstamped() {
        let mut s = Sequences::new(false, false);
        let t = topic();
        assert!(!s.needs_identity());
        assert!(s.may_send(&t, 0, None));
        assert_eq!(s.stamp(&t, 0, 1, 1, None), None);
        s.finished(&t, 0, 1, None, false);
        assert!(!s.needs_reset());
    }
}
