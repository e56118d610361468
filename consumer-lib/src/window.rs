//! [`Window`]: the window kinds of DESIGN §6 ("wagg-1") and which windows an
//! event time falls into.
//!
//! Invariants: every `Window` value has `size > 0`, `0 < advance <= size` and
//! `gap > 0`. Outside this crate the variants can only be built through the
//! validating constructors (they are `#[non_exhaustive]`) or deserialized through
//! the same validation, so the window arithmetic never divides by zero.
//!
//! Windows are epoch-aligned and half-open, `[start, end)`: tumbling `start =
//! floor(ts / S) * S` (floor division, also for negative times); hopping every
//! `[k*A, k*A + S)` containing `ts`. Bounds that would leave the `i64` range
//! (event times within one window size of `i64::MIN`/`i64::MAX`) are clamped to it.

use serde::{Deserialize, Serialize};

/// How events are grouped in time. All durations are in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WindowSpec", into = "WindowSpec")]
pub enum Window {
    /// Fixed-size, non-overlapping windows `[k*size, (k+1)*size)`.
    #[non_exhaustive]
    Tumbling {
        /// Window length, > 0.
        size: i64,
    },
    /// Fixed-size windows starting every `advance`: `[k*advance, k*advance + size)`.
    #[non_exhaustive]
    Hopping {
        /// Window length, > 0.
        size: i64,
        /// Distance between window starts, `0 < advance <= size`.
        advance: i64,
    },
    /// Per-key sessions: events closer than or exactly `gap` apart share a session.
    #[non_exhaustive]
    Session {
        /// Largest distance between consecutive events of one session, > 0.
        gap: i64,
    },
}

/// A window definition that breaks the rules of DESIGN §6.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// A window size of zero or less.
    #[error("window size must be positive, got {0} ms")]
    Size(i64),
    /// A hopping advance outside `0 < advance <= size`.
    #[error("hopping advance must satisfy 0 < advance <= size ({size} ms), got {advance} ms")]
    Advance {
        /// The window size.
        size: i64,
        /// The rejected advance.
        advance: i64,
    },
    /// A session gap of zero or less.
    #[error("session gap must be positive, got {0} ms")]
    Gap(i64),
}

impl Window {
    /// Tumbling windows of `size` ms.
    pub fn tumbling(size: i64) -> Result<Window, WindowError> {
        if size <= 0 {
            return Err(WindowError::Size(size));
        }
        Ok(Window::Tumbling { size })
    }

    /// Hopping windows of `size` ms starting every `advance` ms (`0 < advance <= size`;
    /// `advance` need not divide `size`).
    pub fn hopping(size: i64, advance: i64) -> Result<Window, WindowError> {
        if size <= 0 {
            return Err(WindowError::Size(size));
        }
        if advance <= 0 || advance > size {
            return Err(WindowError::Advance { size, advance });
        }
        Ok(Window::Hopping { size, advance })
    }

    /// Session windows closed by `gap` ms of inactivity per key.
    pub fn session(gap: i64) -> Result<Window, WindowError> {
        if gap <= 0 {
            return Err(WindowError::Gap(gap));
        }
        Ok(Window::Session { gap })
    }

    /// The `kind` string of output records: `"tumbling"`, `"hopping"` or `"session"`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Window::Tumbling { .. } => "tumbling",
            Window::Hopping { .. } => "hopping",
            Window::Session { .. } => "session",
        }
    }

    /// Re-checks the invariants (for values built inside this crate or decoded).
    pub fn validate(self) -> Result<Window, WindowError> {
        match self {
            Window::Tumbling { size } => Window::tumbling(size),
            Window::Hopping { size, advance } => Window::hopping(size, advance),
            Window::Session { gap } => Window::session(gap),
        }
    }

    /// The fixed-size windows `[start, end)` containing `ts`, in ascending order of
    /// start. Empty for session windows, which depend on other events.
    pub fn windows_containing(&self, ts: i64) -> impl Iterator<Item = (i64, i64)> {
        let (size, advance) = match *self {
            Window::Tumbling { size } => (size, size),
            Window::Hopping { size, advance } => (size, advance),
            Window::Session { .. } => (1, 1),
        };
        let (first_k, last_k) = match *self {
            Window::Session { .. } => (1, 0),
            _ => hop_range(ts, size, advance),
        };
        (first_k..=last_k).map(move |k| bounds(k, size, advance))
    }

    /// The only tumbling window containing `ts` (fast path of [`Self::windows_containing`]).
    pub(crate) fn tumbling_bounds(ts: i64, size: i64) -> (i64, i64) {
        let k = ts.div_euclid(size);
        match k.checked_mul(size) {
            Some(start) => (start, start.saturating_add(size)),
            None => bounds(i128::from(k), size, size),
        }
    }
}

/// The indices `k` of hopping windows `[k*A, k*A + S)` containing `ts`:
/// `k*A <= ts < k*A + S`, i.e. `floor((ts - S) / A) < k <= floor(ts / A)`.
fn hop_range(ts: i64, size: i64, advance: i64) -> (i128, i128) {
    let (ts, size, advance) = (i128::from(ts), i128::from(size), i128::from(advance));
    ((ts - size).div_euclid(advance) + 1, ts.div_euclid(advance))
}

/// `[k*A, k*A + S)` clamped to the `i64` range.
fn bounds(k: i128, size: i64, advance: i64) -> (i64, i64) {
    let start = k * i128::from(advance);
    (clamp(start), clamp(start + i128::from(size)))
}

/// Clamps an `i128` into the `i64` range.
pub(crate) fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// The serialized form of a [`Window`], validated on the way in.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WindowSpec {
    Tumbling { size: i64 },
    Hopping { size: i64, advance: i64 },
    Session { gap: i64 },
}

impl TryFrom<WindowSpec> for Window {
    type Error = WindowError;

    fn try_from(spec: WindowSpec) -> Result<Self, Self::Error> {
        match spec {
            WindowSpec::Tumbling { size } => Window::tumbling(size),
            WindowSpec::Hopping { size, advance } => Window::hopping(size, advance),
            WindowSpec::Session { gap } => Window::session(gap),
        }
    }
}

impl From<Window> for WindowSpec {
    fn from(window: Window) -> Self {
        match window {
            Window::Tumbling { size } => WindowSpec::Tumbling { size },
            Window::Hopping { size, advance } => WindowSpec::Hopping { size, advance },
            Window::Session { gap } => WindowSpec::Session { gap },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(window: Window, ts: i64) -> Vec<(i64, i64)> {
        window.windows_containing(ts).collect()
    }

    #[test]
    fn given_invalid_parameters_when_constructed_then_rejected() {
        assert_eq!(Window::tumbling(0), Err(WindowError::Size(0)));
        assert_eq!(
            Window::hopping(10, 0),
            Err(WindowError::Advance {
                size: 10,
                advance: 0
            })
        );
        assert_eq!(
            Window::hopping(10, 11),
            Err(WindowError::Advance {
                size: 10,
                advance: 11
            })
        );
        assert_eq!(Window::hopping(-1, 1), Err(WindowError::Size(-1)));
        assert_eq!(Window::session(0), Err(WindowError::Gap(0)));
        assert!(Window::hopping(10, 10).is_ok());
    }

    #[test]
    fn given_event_exactly_at_window_end_when_assigned_then_belongs_to_next_window() {
        let w = Window::tumbling(10).unwrap();
        assert_eq!(all(w, 10), vec![(10, 20)]);
        assert_eq!(all(w, 9), vec![(0, 10)]);
        assert_eq!(Window::tumbling_bounds(10, 10), (10, 20));
    }

    #[test]
    fn given_negative_timestamp_when_assigned_then_floor_division_is_used() {
        let w = Window::tumbling(10).unwrap();
        assert_eq!(all(w, -1), vec![(-10, 0)]);
        assert_eq!(all(w, -10), vec![(-10, 0)]);
        assert_eq!(all(w, -11), vec![(-20, -10)]);
        assert_eq!(Window::tumbling_bounds(-1, 10), (-10, 0));
    }

    #[test]
    fn given_hopping_advance_not_dividing_size_when_assigned_then_every_covering_window() {
        let w = Window::hopping(10, 3).unwrap();
        // Starts at multiples of 3 with start <= 9 < start + 10: 0, 3, 6, 9.
        assert_eq!(all(w, 9), vec![(0, 10), (3, 13), (6, 16), (9, 19)]);
        // 10 is outside [0, 10): starts 3, 6, 9.
        assert_eq!(all(w, 10), vec![(3, 13), (6, 16), (9, 19)]);
        assert_eq!(all(w, -1), vec![(-9, 1), (-6, 4), (-3, 7)]);
    }

    #[test]
    fn given_extreme_timestamps_when_assigned_then_bounds_clamp_without_panic() {
        let w = Window::tumbling(3).unwrap();
        assert_eq!(all(w, i64::MIN)[0].0, i64::MIN);
        assert_eq!(Window::tumbling_bounds(i64::MIN, 3).0, i64::MIN);
        assert_eq!(all(w, i64::MAX)[0].1, i64::MAX);
        // i64::MAX is odd: the covering starts are MAX-5, MAX-3 and MAX-1.
        assert_eq!(all(Window::hopping(7, 2).unwrap(), i64::MAX).len(), 3);
    }

    #[test]
    fn given_window_json_when_decoded_then_validated() {
        let w: Window =
            serde_json::from_str(r#"{"kind":"hopping","size":10,"advance":3}"#).unwrap();
        assert_eq!(w, Window::hopping(10, 3).unwrap());
        assert!(serde_json::from_str::<Window>(r#"{"kind":"tumbling","size":0}"#).is_err());
        let back: Window = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
        assert_eq!(back, w);
    }
}
