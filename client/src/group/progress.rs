//! [`Progress`]: how far the application has got in each assigned
//! partition, which decides what may be committed. Pure.
//!
//! Two positions per partition, both "the next offset to read" (what Kafka
//! commits):
//! - `returned`: after the last record handed to the application (or the
//!   start position, before any record was handed out). `commit()` commits
//!   these: the application calls it once it has processed what it got.
//! - `released`: after the last record the application has *returned
//!   control for* — records handed out by an earlier `poll()` (or, with
//!   `stream()`, earlier items). Auto-commit, and the commits made when
//!   partitions are revoked or the consumer closes, commit only these.
//!
//! Invariant: `released <= returned`, and neither is ever beyond a record
//! the application was given (or the start position): nothing still being
//! processed, and nothing never seen, is committed by the client on its own.

use std::collections::BTreeMap;

use crate::consumer::ConsumerRecord;
use crate::TopicPartition;

/// Per-partition application progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    returned: BTreeMap<TopicPartition, i64>,
    released: BTreeMap<TopicPartition, i64>,
}

impl Progress {
    /// Forgets everything (the assignment was revoked).
    pub(crate) fn clear(&mut self) {
        self.returned.clear();
        self.released.clear();
    }

    /// A partition starts at `offset` (its committed offset, or where the
    /// reset policy put it): nothing before it is the application's to see.
    pub(crate) fn start(&mut self, tp: TopicPartition, offset: i64) {
        self.returned.insert(tp.clone(), offset);
        self.released.insert(tp, offset);
    }

    /// The position of a partition is being moved by a seek: until records
    /// from the new position reach the application, nothing is committed
    /// for it.
    pub(crate) fn forget(&mut self, tp: &TopicPartition) {
        self.returned.remove(tp);
        self.released.remove(tp);
    }

    /// `record` is being handed to the application.
    pub(crate) fn hand_out(&mut self, record: &ConsumerRecord) {
        let tp = TopicPartition::new(&*record.topic, record.partition);
        self.returned.insert(tp, record.offset + 1);
    }

    /// The application returned control: everything handed out so far is
    /// processed (called at the start of `poll()` and before each `stream()`
    /// item).
    pub(crate) fn release_all(&mut self) {
        self.released.clone_from(&self.returned);
    }

    /// Positions of every record handed out (what `commit()` commits).
    pub(crate) fn returned(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.returned
    }

    /// Positions the application has returned control for.
    #[cfg(test)]
    pub(crate) fn released(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.released
    }

    /// The next offset the application gets for `tp`, once known.
    #[cfg(test)]
    pub(crate) fn returned_position(&self, tp: &TopicPartition) -> Option<i64> {
        self.returned.get(tp).copied()
    }

    /// Released positions that differ from what is known to be committed:
    /// what an auto-commit sends.
    pub(crate) fn uncommitted_releases(
        &self,
        committed: &BTreeMap<TopicPartition, i64>,
    ) -> BTreeMap<TopicPartition, i64> {
        self.released
            .iter()
            .filter(|(tp, offset)| committed.get(*tp) != Some(offset))
            .map(|(tp, offset)| (tp.clone(), *offset))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn record(partition: i32, offset: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from("t"),
            partition,
            offset,
            timestamp: 0,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    fn map(pairs: &[(i32, i64)]) -> BTreeMap<TopicPartition, i64> {
        pairs.iter().map(|(p, o)| (tp(*p), *o)).collect()
    }

    #[test]
    fn given_records_of_current_poll_then_auto_commit_does_not_include_them() {
        let mut progress = Progress::default();
        progress.start(tp(0), 0);
        // poll 1 hands out 0..=4.
        progress.release_all();
        for offset in 0..5 {
            progress.hand_out(&record(0, offset));
        }
        assert_eq!(progress.returned(), &map(&[(0, 5)]));
        assert_eq!(
            progress.released(),
            &map(&[(0, 0)]),
            "still being processed"
        );
        // poll 2 starts: the application returned control for 0..=4.
        progress.release_all();
        assert_eq!(progress.released(), &map(&[(0, 5)]));
        progress.hand_out(&record(0, 5));
        assert_eq!(
            progress.uncommitted_releases(&map(&[(0, 0)])),
            map(&[(0, 5)])
        );
    }

    #[test]
    fn given_nothing_handed_out_then_only_start_positions_are_committable() {
        let mut progress = Progress::default();
        assert!(progress.uncommitted_releases(&BTreeMap::new()).is_empty());
        progress.start(tp(1), 42);
        progress.release_all();
        assert_eq!(
            progress.uncommitted_releases(&BTreeMap::new()),
            map(&[(1, 42)])
        );
        assert!(
            progress.uncommitted_releases(&map(&[(1, 42)])).is_empty(),
            "a start at the committed offset needs no commit"
        );
    }

    #[test]
    fn given_seek_then_partition_has_no_commit_position_until_records_return() {
        let mut progress = Progress::default();
        progress.start(tp(0), 10);
        progress.forget(&tp(0));
        progress.release_all();
        assert!(progress.uncommitted_releases(&BTreeMap::new()).is_empty());
        assert_eq!(progress.returned_position(&tp(0)), None);
        progress.hand_out(&record(0, 3));
        assert_eq!(progress.returned_position(&tp(0)), Some(4));
    }

    #[test]
    fn given_clear_then_nothing_is_committable() {
        let mut progress = Progress::default();
        progress.hand_out(&record(2, 7));
        progress.release_all();
        progress.clear();
        assert_eq!(progress, Progress::default());
    }

    #[test]
    fn given_any_sequence_then_released_never_passes_returned() {
        let mut progress = Progress::default();
        let mut handed_max = BTreeMap::new();
        for step in 0..200i64 {
            let partition = (step % 3) as i32;
            match step % 7 {
                0 | 3 => progress.release_all(),
                _ => {
                    progress.hand_out(&record(partition, step));
                    handed_max.insert(tp(partition), step + 1);
                }
            }
            for (tp, released) in progress.released() {
                assert!(released <= &progress.returned()[tp]);
                assert!(released <= &handed_max[tp]);
            }
        }
    }
}
