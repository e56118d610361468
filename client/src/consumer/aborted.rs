//! read_committed filtering of one partition's fetched batches: which
//! belong to aborted transactions and must not be returned. Pure; the
//! decoder asks [`AbortedFilter::keep`] batch by batch, in offset order.
//!
//! The broker answers a read_committed Fetch with the data up to the last
//! stable offset and, for that range, the aborted transactions: for each,
//! its producer id and first offset. A transaction's records run from its
//! first offset to its producer's abort marker (a control batch). So, as
//! Kafka's consumer does: walking the batches in order, a producer enters
//! the aborted set once the walk reaches the first offset of one of its
//! aborted transactions, and leaves it at its abort marker; a transactional
//! data batch of a producer in the set is dropped. Control batches (commit
//! and abort markers) are never returned, in either isolation level; the
//! consumer's position still moves past every dropped batch.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

/// Control record type of an abort marker (the key is `version i16, type i16`).
const ABORT_MARKER: i16 = 0;

/// What the filter needs to know of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchInfo {
    /// Offset of the batch's last record.
    pub last_offset: i64,
    /// The producer id in its header (-1 for none).
    pub producer_id: i64,
    /// The header's transactional flag.
    pub transactional: bool,
    /// The header's control flag: a transaction marker.
    pub control: bool,
    /// For a control batch: the type of its (first) control record, when
    /// known (0 abort, 1 commit).
    pub marker: Option<i16>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct AbortedFilter {
    /// Aborted transactions not reached yet: (first offset, producer id),
    /// smallest first offset on top.
    pending: BinaryHeap<Reverse<(i64, i64)>>,
    /// Producers whose aborted transaction the walk is inside.
    aborted: HashSet<i64>,
}

impl AbortedFilter {
    /// A filter for a fetch answer's `aborted_transactions`, given as
    /// (producer id, first offset).
    pub(crate) fn new(aborted: impl IntoIterator<Item = (i64, i64)>) -> Self {
        Self {
            pending: aborted
                .into_iter()
                .map(|(producer_id, first_offset)| Reverse((first_offset, producer_id)))
                .collect(),
            aborted: HashSet::new(),
        }
    }

    /// Whether the records of `batch` (the next batch, in offset order) are
    /// returned: false for control batches and for data of aborted
    /// transactions.
    pub(crate) fn keep(&mut self, batch: &BatchInfo) -> bool {
        if batch.producer_id >= 0 {
            while let Some(Reverse((first_offset, producer_id))) = self.pending.peek().copied() {
                if first_offset > batch.last_offset {
                    break;
                }
                self.pending.pop();
                self.aborted.insert(producer_id);
            }
            if batch.control {
                if batch.marker == Some(ABORT_MARKER) {
                    self.aborted.remove(&batch.producer_id);
                }
            } else if batch.transactional && self.aborted.contains(&batch.producer_id) {
                return false;
            }
        }
        !batch.control
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(last_offset: i64, producer_id: i64, transactional: bool) -> BatchInfo {
        BatchInfo {
            last_offset,
            producer_id,
            transactional,
            control: false,
            marker: None,
        }
    }

    fn marker(offset: i64, producer_id: i64, abort: bool) -> BatchInfo {
        BatchInfo {
            last_offset: offset,
            producer_id,
            transactional: true,
            control: true,
            marker: Some(if abort { 0 } else { 1 }),
        }
    }

    #[test]
    fn given_interleaved_committed_and_aborted_transactions_then_only_aborted_data_is_dropped() {
        // Producer 1 aborts [0, 4] (marker at 5); producer 2 commits [2, 3]
        // (marker at 6); producer 1's next transaction [7] commits (marker 8);
        // a plain batch of producer 3 at 9.
        let mut filter = AbortedFilter::new([(1, 0)]);
        let kept: Vec<bool> = [
            data(1, 1, true),
            data(3, 2, true),
            data(4, 1, true),
            marker(5, 1, true),
            marker(6, 2, false),
            data(7, 1, true),
            marker(8, 1, false),
            data(9, 3, false),
        ]
        .iter()
        .map(|b| filter.keep(b))
        .collect();
        assert_eq!(
            kept,
            vec![false, true, false, false, false, true, false, true]
        );
    }

    #[test]
    fn given_an_aborted_transaction_starting_inside_a_batch_then_that_batch_is_dropped() {
        let mut filter = AbortedFilter::new([(4, 12)]);
        assert!(
            filter.keep(&data(9, 4, true)),
            "before the aborted transaction"
        );
        assert!(
            !filter.keep(&data(15, 4, true)),
            "first offset 12 lies in 10..=15"
        );
        assert!(!filter.keep(&marker(16, 4, true)));
        assert!(filter.keep(&data(17, 4, true)), "after its abort marker");
    }

    #[test]
    fn given_no_aborted_transactions_then_control_batches_alone_are_dropped() {
        let mut filter = AbortedFilter::default();
        assert!(filter.keep(&data(0, -1, false)));
        assert!(filter.keep(&data(1, 5, true)));
        assert!(!filter.keep(&marker(2, 5, false)));
        assert!(!filter.keep(&marker(3, 5, true)));
    }

    #[test]
    fn given_the_same_producer_aborting_twice_then_both_ranges_are_dropped() {
        let mut filter = AbortedFilter::new([(1, 0), (1, 3)]);
        assert!(!filter.keep(&data(1, 1, true)));
        assert!(!filter.keep(&marker(2, 1, true)));
        assert!(!filter.keep(&data(4, 1, true)));
        assert!(!filter.keep(&marker(5, 1, true)));
        assert!(filter.keep(&data(6, 1, true)));
    }
}
