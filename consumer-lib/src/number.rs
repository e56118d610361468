//! [`Number`]: an event value that keeps exact integers exact.
//!
//! Invariants: `Int + Int` stays `Int` unless the checked sum overflows, in which
//! case it falls back to `Float`; anything involving a `Float` is a `Float`.
//! Comparisons are numeric across both variants and exact (an `i64` is never
//! rounded through `f64` to decide an order). Serialization writes `Int` as a
//! JSON integer (`42`) and a finite `Float` as a JSON float (`42.5`, `42.0`), so
//! a round trip through JSON gives back the same variant. JSON has no NaN or
//! infinity, so those floats are written as the strings `"NaN"`, `"inf"` and
//! `"-inf"` and read back from them: a checkpoint never changes a value.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Add;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A numeric event value: an exact integer or a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An exact integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
}

impl Number {
    /// The value as an `f64` (rounded for integers beyond 2^53).
    #[must_use]
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    /// Numeric comparison across variants; exact for integers. Floats are ordered
    /// by [`f64::total_cmp`] (so NaN has a place and the order is total); an
    /// integer compares to a float by value, with `Int(1)` and `Float(1.0)` equal.
    #[must_use]
    pub fn numeric_cmp(&self, other: &Number) -> Ordering {
        match (*self, *other) {
            (Number::Int(a), Number::Int(b)) => a.cmp(&b),
            (Number::Float(a), Number::Float(b)) => a.total_cmp(&b),
            (Number::Int(a), Number::Float(b)) => cmp_int_float(a, b),
            (Number::Float(a), Number::Int(b)) => cmp_int_float(b, a).reverse(),
        }
    }

    /// The smaller of the two; on a numeric tie, `self` (the earlier value) wins.
    #[must_use]
    pub fn min_with(self, other: Number) -> Number {
        if other.numeric_cmp(&self) == Ordering::Less {
            other
        } else {
            self
        }
    }

    /// The larger of the two; on a numeric tie, `self` (the earlier value) wins.
    #[must_use]
    pub fn max_with(self, other: Number) -> Number {
        if other.numeric_cmp(&self) == Ordering::Greater {
            other
        } else {
            self
        }
    }
}

/// Compares an integer with a float without rounding the integer away.
fn cmp_int_float(a: i64, b: f64) -> Ordering {
    if b.is_nan() {
        // Same place total_cmp gives NaN: above +inf when positive, below -inf when negative.
        return if b.is_sign_negative() {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    let af = a as f64;
    match af.partial_cmp(&b) {
        Some(Ordering::Equal) | None => {
            // `af == b`, so `b` is an integral value within about ±2^63 and the cast is
            // exact; compare in i128 to settle the rounding of `a` into `af`.
            (a as i128).cmp(&(b as i128))
        }
        Some(order) => order,
    }
}

/// The sum: exact while both are integers and the sum fits in an `i64`, a float
/// otherwise.
impl Add for Number {
    type Output = Number;

    fn add(self, other: Number) -> Number {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => match a.checked_add(b) {
                Some(sum) => Number::Int(sum),
                // Overflow: keep going in floating point rather than wrap or fail.
                None => Number::Float(a as f64 + b as f64),
            },
            (a, b) => Number::Float(a.as_f64() + b.as_f64()),
        }
    }
}

impl From<i64> for Number {
    fn from(value: i64) -> Self {
        Number::Int(value)
    }
}

impl From<f64> for Number {
    fn from(value: f64) -> Self {
        Number::Float(value)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => write!(f, "{x}"),
        }
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Number::Int(i) => serializer.serialize_i64(i),
            Number::Float(f) if f.is_finite() => serializer.serialize_f64(f),
            Number::Float(f) if f.is_nan() => serializer.serialize_str("NaN"),
            Number::Float(f) if f > 0.0 => serializer.serialize_str("inf"),
            Number::Float(_) => serializer.serialize_str("-inf"),
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NumberVisitor)
    }
}

/// Reads integers as [`Number::Int`] (when they fit an `i64`) and floats as
/// [`Number::Float`].
struct NumberVisitor;

impl Visitor<'_> for NumberVisitor {
    type Value = Number;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
        Ok(Number::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Number::Int(i),
            Err(_) => Number::Float(v as f64),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
        Ok(Number::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
        match v {
            "NaN" => Ok(Number::Float(f64::NAN)),
            "inf" => Ok(Number::Float(f64::INFINITY)),
            "-inf" => Ok(Number::Float(f64::NEG_INFINITY)),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_two_ints_when_added_then_result_stays_exact_int() {
        assert_eq!(Number::Int(40) + Number::Int(2), Number::Int(42));
        assert_eq!(Number::Int(-5) + Number::Int(-7), Number::Int(-12));
    }

    #[test]
    fn given_int_overflow_when_added_then_falls_back_to_float() {
        let sum = Number::Int(i64::MAX) + Number::Int(1);
        assert_eq!(sum, Number::Float(i64::MAX as f64 + 1.0));
    }

    #[test]
    fn given_any_float_when_added_then_result_is_float() {
        assert_eq!(Number::Int(1) + Number::Float(0.5), Number::Float(1.5));
        assert_eq!(Number::Float(2.0) + Number::Int(1), Number::Float(3.0));
    }

    #[test]
    fn given_int_and_float_when_compared_then_order_is_numeric_and_exact() {
        assert_eq!(
            Number::Int(2).numeric_cmp(&Number::Float(2.5)),
            Ordering::Less
        );
        assert_eq!(
            Number::Float(-0.5).numeric_cmp(&Number::Int(-1)),
            Ordering::Greater
        );
        assert_eq!(
            Number::Int(1).numeric_cmp(&Number::Float(1.0)),
            Ordering::Equal
        );
        // 2^53 + 1 rounds to 2^53 as f64; the comparison must still see it as larger.
        let big = (1_i64 << 53) + 1;
        assert_eq!(
            Number::Int(big).numeric_cmp(&Number::Float((1_i64 << 53) as f64)),
            Ordering::Greater
        );
        assert_eq!(
            Number::Int(i64::MAX).numeric_cmp(&Number::Float(9.3e18)),
            Ordering::Less
        );
    }

    #[test]
    fn given_numbers_when_serialized_then_ints_have_no_fraction_and_floats_do() {
        assert_eq!(serde_json::to_string(&Number::Int(42)).unwrap(), "42");
        assert_eq!(serde_json::to_string(&Number::Float(42.5)).unwrap(), "42.5");
        assert_eq!(serde_json::to_string(&Number::Float(42.0)).unwrap(), "42.0");
    }

    #[test]
    fn given_any_number_when_round_tripped_through_json_then_identical() {
        for n in [
            Number::Int(i64::MIN),
            Number::Int(0),
            Number::Float(-0.0),
            Number::Float(42.0),
            Number::Float(1e300),
            Number::Float(f64::INFINITY),
            Number::Float(f64::NEG_INFINITY),
        ] {
            let back: Number = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
            assert_eq!(back.numeric_cmp(&n), Ordering::Equal);
            assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&n));
        }
        let nan: Number =
            serde_json::from_str(&serde_json::to_string(&Number::Float(f64::NAN)).unwrap())
                .unwrap();
        assert!(matches!(nan, Number::Float(f) if f.is_nan()));
    }

    #[test]
    fn given_huge_unsigned_json_integer_when_read_then_float() {
        let n: Number = serde_json::from_str("18446744073709551615").unwrap();
        assert!(matches!(n, Number::Float(_)));
    }
}
