//! What processing an event produces: the windows it closed ([`Closed`] for any
//! aggregator, [`WindowResult`] for the built-in [`Aggregates`]) and whether the
//! event was late everywhere ([`Processed`]).
//!
//! Invariants: `Processed::emitted` is sorted by `(end, start, key)`, and a window
//! appears in the emissions of exactly one event over the life of a partition
//! (a checkpoint restore replays, and re-emits, with identical values).

use serde::Serialize;

use crate::aggregate::Aggregates;
use crate::number::Number;

/// The outcome of processing one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed<T = WindowResult> {
    /// Windows this event closed, each emitted once, ordered by end, then start, then key.
    pub emitted: Vec<T>,
    /// `true` when the event was counted in no window (it belongs on the late-output topic).
    pub late: bool,
}

/// A closed window with the output of any [`crate::Aggregator`].
#[derive(Debug, Clone, PartialEq)]
pub struct Closed<O> {
    /// `"tumbling"`, `"hopping"` or `"session"`.
    pub kind: &'static str,
    /// The grouping key.
    pub key: String,
    /// Inclusive start (for sessions: the first event time).
    pub start: i64,
    /// Exclusive end (for sessions: the last event time + gap).
    pub end: i64,
    /// The aggregator's output.
    pub output: O,
}

/// A closed window with the built-in aggregates; serializes to exactly the
/// output record value of DESIGN §6:
/// `{"kind","key","start","end","count","sum","min","max"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowResult {
    /// `"tumbling"`, `"hopping"` or `"session"`.
    pub kind: &'static str,
    /// The grouping key (also the output record key).
    pub key: String,
    /// Inclusive start (for sessions: the first event time).
    pub start: i64,
    /// Exclusive end (for sessions: the last event time + gap).
    pub end: i64,
    /// Number of events counted in the window.
    pub count: u64,
    /// Sum of their values.
    pub sum: Number,
    /// Smallest value.
    pub min: Number,
    /// Largest value.
    pub max: Number,
}

impl WindowResult {
    /// The window's aggregates (for `avg()`).
    #[must_use]
    pub fn aggregates(&self) -> Aggregates {
        Aggregates {
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
        }
    }
}

impl From<Closed<Aggregates>> for WindowResult {
    fn from(closed: Closed<Aggregates>) -> Self {
        WindowResult {
            kind: closed.kind,
            key: closed.key,
            start: closed.start,
            end: closed.end,
            count: closed.output.count,
            sum: closed.output.sum,
            min: closed.output.min,
            max: closed.output.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_window_result_when_serialized_then_exact_output_fields_and_int_sums() {
        let r = WindowResult {
            kind: "tumbling",
            key: "k".into(),
            start: 0,
            end: 10,
            count: 2,
            sum: Number::Int(42),
            min: Number::Int(-1),
            max: Number::Float(42.5),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"kind":"tumbling","key":"k","start":0,"end":10,"count":2,"sum":42,"min":-1,"max":42.5}"#
        );
    }
}
