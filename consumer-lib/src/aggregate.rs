//! Folds over the values of one window: the [`Aggregator`] trait for custom
//! folds and [`Aggregates`], the built-in count/sum/min/max (and avg).
//!
//! Invariants: an aggregator always holds at least one value (it is created from
//! the first value of its window), so `min` and `max` are always defined.
//! `add` and `merge` are deterministic, so a replay in the same order yields
//! identical aggregates (DESIGN §6 allows a re-emission only with identical values).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::number::Number;

/// A fold over the values of one window.
///
/// Its state is checkpointed with serde, so it must serialize losslessly.
pub trait Aggregator: Clone + Serialize + DeserializeOwned {
    /// What a closed window reports.
    type Output;

    /// A fold holding just the first value of a window.
    fn first(value: &Number) -> Self;

    /// Folds in one more value.
    fn add(&mut self, value: &Number);

    /// Folds in another window's fold (two sessions bridged into one); `other`
    /// holds values of later-starting windows than `self`.
    fn merge(&mut self, other: &Self);

    /// The result reported when the window closes.
    fn output(&self) -> Self::Output;
}

/// count, sum, min and max of a window's values; integers stay exact.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Aggregates {
    /// Number of values.
    pub count: u64,
    /// Sum of the values (exact `Int` while it fits an `i64` and no float was seen).
    pub sum: Number,
    /// Smallest value (numerically; the earlier one on ties).
    pub min: Number,
    /// Largest value (numerically; the earlier one on ties).
    pub max: Number,
}

impl Aggregates {
    /// Mean of the values: `sum / count`.
    #[must_use]
    pub fn avg(&self) -> f64 {
        // count >= 1 by construction; guard anyway so a decoded zero gives NaN, not a panic.
        if self.count == 0 {
            return f64::NAN;
        }
        self.sum.as_f64() / self.count as f64
    }
}

impl Aggregator for Aggregates {
    type Output = Aggregates;

    fn first(value: &Number) -> Self {
        Aggregates {
            count: 1,
            sum: *value,
            min: *value,
            max: *value,
        }
    }

    fn add(&mut self, value: &Number) {
        self.count = self.count.saturating_add(1);
        self.sum = self.sum + *value;
        self.min = self.min.min_with(*value);
        self.max = self.max.max_with(*value);
    }

    fn merge(&mut self, other: &Self) {
        self.count = self.count.saturating_add(other.count);
        self.sum = self.sum + other.sum;
        self.min = self.min.min_with(other.min);
        self.max = self.max.max_with(other.max);
    }

    fn output(&self) -> Self::Output {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_negative_and_mixed_values_when_folded_then_min_max_sum_avg_are_numeric() {
        let mut a = Aggregates::first(&Number::Int(-3));
        a.add(&Number::Int(5));
        a.add(&Number::Float(-3.5));
        assert_eq!(a.count, 3);
        assert_eq!(a.sum, Number::Float(-1.5));
        assert_eq!(a.min, Number::Float(-3.5));
        assert_eq!(a.max, Number::Int(5));
        assert_eq!(a.avg(), -0.5);
    }

    #[test]
    fn given_two_folds_when_merged_then_same_as_one_fold() {
        let mut a = Aggregates::first(&Number::Int(1));
        a.add(&Number::Int(7));
        let mut b = Aggregates::first(&Number::Int(-2));
        b.add(&Number::Int(4));
        a.merge(&b);
        assert_eq!(
            a,
            Aggregates {
                count: 4,
                sum: Number::Int(10),
                min: Number::Int(-2),
                max: Number::Int(7)
            }
        );
    }
}
