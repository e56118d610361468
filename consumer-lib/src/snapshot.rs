//! Checkpoint form of one partition's window state ([`Snapshot`]) and the
//! checks a snapshot must pass before it is restored ([`RestoreError`]).
//!
//! A snapshot holds the watermark together with every open window: DESIGN §6
//! requires both, because restarting the watermark from −∞ would re-admit events
//! that were already late. Windows are listed sorted by key, then start, so two
//! snapshots of equal state serialize to identical bytes.
//!
//! A snapshot comes from the state topic, i.e. from outside this process: restore
//! re-checks every invariant `KeyedWindows` relies on (format, window definition,
//! alignment, ordering, spacing, nothing already due) and refuses the whole
//! snapshot rather than run on state it could not have produced.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregates, Aggregator};
use crate::window::{clamp, Window};

/// Version of the snapshot layout written by this crate.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// The state of one partition, as written to a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot<A> {
    /// Layout version ([`SNAPSHOT_FORMAT`]).
    pub format: u32,
    /// The window definition the state was built with.
    pub window: Window,
    /// The partition watermark; `None` = −∞.
    pub watermark: Option<i64>,
    /// Every open window, sorted by key, then start.
    pub windows: Vec<SnapshotWindow<A>>,
}

/// Snapshot of [`crate::PartitionWindows`] (built-in aggregates).
pub type PartitionSnapshot = Snapshot<Aggregates>;

/// One open window in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotWindow<A> {
    /// The grouping key.
    pub key: String,
    /// Window start; for a session the first event time.
    pub start: i64,
    /// Window end (exclusive); for a session the last event time.
    pub upper: i64,
    /// The window's fold so far.
    pub agg: A,
}

/// Why a snapshot cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// Written by an incompatible version of this crate.
    #[error("snapshot format {found} is not supported (expected {SNAPSHOT_FORMAT})")]
    Format {
        /// The format found.
        found: u32,
    },
    /// The job's window differs from the one the state was built with.
    #[error("snapshot was taken with window {snapshot:?} but the job uses {job:?}; state cannot be carried over")]
    WindowMismatch {
        /// The snapshot's window.
        snapshot: Window,
        /// The job's window.
        job: Window,
    },
    /// A window that this state machine could not have produced.
    #[error("snapshot window of key {key:?} at [{start}, {upper}] is invalid: {reason}")]
    InvalidWindow {
        /// The key.
        key: String,
        /// Its start.
        start: i64,
        /// Its upper bound (end, or last event time for sessions).
        upper: i64,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Checks `snapshot` against `window` and the invariants of `KeyedWindows`.
pub(crate) fn validate<A: Aggregator>(
    window: Window,
    snapshot: &Snapshot<A>,
) -> Result<(), RestoreError> {
    if snapshot.format != SNAPSHOT_FORMAT {
        return Err(RestoreError::Format {
            found: snapshot.format,
        });
    }
    if snapshot.window != window {
        return Err(RestoreError::WindowMismatch {
            snapshot: snapshot.window,
            job: window,
        });
    }
    let mut previous: Option<&SnapshotWindow<A>> = None;
    for w in &snapshot.windows {
        let invalid = |reason| RestoreError::InvalidWindow {
            key: w.key.clone(),
            start: w.start,
            upper: w.upper,
            reason,
        };
        let same_key_prev = previous.filter(|p| p.key == w.key);
        if let Some(p) = previous {
            if (&p.key, p.start, p.upper) >= (&w.key, w.start, w.upper) {
                return Err(invalid(
                    "windows are not sorted by key and start, or repeat",
                ));
            }
        }
        let (threshold, well_formed) = match window {
            Window::Tumbling { size } => (
                i128::from(w.upper),
                Window::tumbling_bounds(w.start, size) == (w.start, w.upper),
            ),
            Window::Hopping { size, advance } => {
                let aligned = if w.start == i64::MIN {
                    // Bounds below i64::MIN were clamped: accept any such window.
                    window
                        .windows_containing(i64::MIN)
                        .any(|b| b == (w.start, w.upper))
                } else {
                    w.start.rem_euclid(advance) == 0
                        && clamp(i128::from(w.start) + i128::from(size)) == w.upper
                };
                (i128::from(w.upper), aligned)
            }
            Window::Session { gap } => {
                if let Some(p) = same_key_prev {
                    if i128::from(w.start) - i128::from(p.upper) <= i128::from(gap) {
                        return Err(invalid(
                            "sessions of one key are not more than the gap apart",
                        ));
                    }
                }
                (
                    i128::from(w.upper) + 2 * i128::from(gap),
                    w.start <= w.upper,
                )
            }
        };
        if !well_formed {
            return Err(invalid("bounds do not match the window definition"));
        }
        if snapshot
            .watermark
            .is_some_and(|wm| threshold <= i128::from(wm))
        {
            return Err(invalid(
                "window should already have been closed at the snapshot's watermark",
            ));
        }
        previous = Some(w);
    }
    Ok(())
}
