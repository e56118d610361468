//! [`PartitionWindows`]: the window state of one input partition with the
//! built-in count/sum/min/max aggregates, emitting [`WindowResult`]s ready for
//! the output topic.
//!
//! A thin wrapper over [`KeyedWindows<Aggregates>`]; all semantics (and their
//! invariants) live there. A job keeps one of these per assigned input partition,
//! snapshots it with the partition's offsets at each checkpoint, and drops it on
//! revoke.

use crate::aggregate::Aggregates;
use crate::event::Event;
use crate::keyed::KeyedWindows;
use crate::number::Number;
use crate::result::{Processed, WindowResult};
use crate::snapshot::{PartitionSnapshot, RestoreError};
use crate::window::Window;

/// All window state of one input partition: open windows per key and the watermark.
#[derive(Debug, Clone)]
pub struct PartitionWindows {
    inner: KeyedWindows<Aggregates>,
}

impl PartitionWindows {
    /// Empty state: no windows, watermark −∞. `grace` is the allowed lateness in
    /// ms (a negative grace is treated as 0).
    pub fn new(window: Window, grace: i64) -> Self {
        PartitionWindows {
            inner: KeyedWindows::new(window, grace),
        }
    }

    /// Processes one event; see [`Self::process_parts`].
    pub fn process(&mut self, event: Event) -> Processed {
        self.process_parts(&event.key, event.ts, event.value)
    }

    /// Processes one borrowed event; see [`Self::process_parts`].
    pub fn process_ref(&mut self, event: &Event) -> Processed {
        self.process_parts(&event.key, event.ts, event.value)
    }

    /// Processes the event `(key, ts, value)`: advances the watermark, counts the
    /// value in every window it is not late for, and returns the windows this
    /// closed (each exactly once, sorted by end, then start, then key) and
    /// `late: true` if it was counted in no window. Allocates only when a key
    /// opens a window or a window is emitted.
    pub fn process_parts(&mut self, key: &str, ts: i64, value: Number) -> Processed {
        let processed = self.inner.process(key, ts, &value);
        Processed {
            emitted: processed
                .emitted
                .into_iter()
                .map(WindowResult::from)
                .collect(),
            late: processed.late,
        }
    }

    /// Advances the watermark to `wm` without an event (see
    /// [`KeyedWindows::advance_watermark`]) and returns the windows that closed.
    pub fn advance_watermark(&mut self, wm: i64) -> Vec<WindowResult> {
        self.inner
            .advance_watermark(wm)
            .into_iter()
            .map(WindowResult::from)
            .collect()
    }

    /// The partition watermark (max event time seen − grace); `None` = −∞.
    pub fn watermark(&self) -> Option<i64> {
        self.inner.watermark()
    }

    /// Number of open (not yet emitted) windows over all keys.
    pub fn open_windows(&self) -> usize {
        self.inner.open_windows()
    }

    /// Number of keys holding at least one open window.
    pub fn open_keys(&self) -> usize {
        self.inner.open_keys()
    }

    /// The window definition.
    pub fn window(&self) -> Window {
        self.inner.window()
    }

    /// The allowed lateness in ms.
    pub fn grace(&self) -> i64 {
        self.inner.grace()
    }

    /// The state (watermark and every open window) for a checkpoint; serialize it
    /// with serde (e.g. `serde_json`).
    pub fn snapshot(&self) -> PartitionSnapshot {
        self.inner.snapshot()
    }

    /// State restored from a checkpoint taken with the same `window`. Continuing
    /// from here gives the same emissions as never having stopped.
    pub fn restore(
        window: Window,
        grace: i64,
        snapshot: PartitionSnapshot,
    ) -> Result<Self, RestoreError> {
        Ok(PartitionWindows {
            inner: KeyedWindows::restore(window, grace, snapshot)?,
        })
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
