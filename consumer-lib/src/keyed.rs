//! [`KeyedWindows`]: all window state of one input partition, for any
//! [`Aggregator`] — the pure "wagg-1" state machine of DESIGN §6.
//!
//! What it owns: the partition's watermark, the open windows of every key, and a
//! due-queue saying when each key may next have a window to close.
//!
//! Invariants, true after every call to `process`:
//! - the watermark is `max(ts seen) − grace` (saturating), `None` before any event,
//!   and never decreases;
//! - every open window is one no future event is barred from: a tumbling/hopping
//!   window has `end > wm`, a session has `last + 2·gap > wm` (closing happens as
//!   soon as that fails, and a closed window is never reopened because any event
//!   that could reach it is late by then);
//! - a key's sessions are sorted by first event time and more than `gap` apart; a
//!   key's fixed windows are sorted by start and distinct;
//! - only keys with at least one open window have an entry (a slot); a slot's
//!   `queued` value, when set, has a matching entry in the due-queue that is no
//!   later than the slot's earliest close threshold. Other queue entries for the
//!   slot are stale and skipped, so the queue is only ever a hint: whether a
//!   window closes is always decided on the window itself.
//!
//! Everything is a function of the order of `process` calls: no clocks, no
//! hashing order leaks into results (emissions are sorted by end, start, key; the
//! snapshot is sorted by key, start), so a replay from a checkpoint re-emits
//! windows with identical aggregates.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::aggregate::Aggregator;
use crate::number::Number;
use crate::result::{Closed, Processed};
use crate::snapshot::{RestoreError, Snapshot, SnapshotWindow, SNAPSHOT_FORMAT};
use crate::window::{clamp, Window};

/// Window state of one input partition with a custom aggregator `A`.
///
/// [`crate::PartitionWindows`] is this with the built-in [`crate::Aggregates`]
/// and output records shaped for the output topic.
#[derive(Debug, Clone)]
pub struct KeyedWindows<A: Aggregator> {
    window: Window,
    grace: i64,
    watermark: Option<i64>,
    /// Key → slot index, for keys with at least one open window.
    ids: HashMap<String, u32>,
    /// Per-key state; freed slots are reused (their key is cleared).
    slots: Vec<Slot<A>>,
    /// Indices of free slots.
    free: Vec<u32>,
    /// `(threshold, slot)`: the slot may have a window to close once `wm >= threshold`.
    due: BinaryHeap<Reverse<(i64, u32)>>,
    /// Number of open windows over all keys.
    open: usize,
}

/// The open windows of one key.
#[derive(Debug, Clone)]
struct Slot<A> {
    key: String,
    windows: Vec<Open<A>>,
    /// Threshold of this slot's live due-queue entry, if it has one.
    queued: Option<i64>,
}

/// One open window.
#[derive(Debug, Clone)]
struct Open<A> {
    /// Window start; for a session the first event time.
    start: i64,
    /// Window end (exclusive); for a session the last event time.
    upper: i64,
    agg: A,
}

impl<A: Aggregator> KeyedWindows<A> {
    /// Empty state for `window`, with `grace` ms of allowed lateness (a negative
    /// grace is treated as 0).
    pub fn new(window: Window, grace: i64) -> Self {
        KeyedWindows {
            window,
            grace: grace.max(0),
            watermark: None,
            ids: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            due: BinaryHeap::new(),
            open: 0,
        }
    }

    /// The window definition.
    pub fn window(&self) -> Window {
        self.window
    }

    /// The allowed lateness in ms.
    pub fn grace(&self) -> i64 {
        self.grace
    }

    /// The partition watermark; `None` stands for −∞ (no event seen yet).
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Number of open (not yet emitted) windows over all keys.
    pub fn open_windows(&self) -> usize {
        self.open
    }

    /// Number of keys holding at least one open window.
    pub fn open_keys(&self) -> usize {
        self.ids.len()
    }

    /// Processes one event (steps 1–4 of DESIGN §6) and returns the windows it
    /// closed, sorted by end, start and key, and whether it counted nowhere.
    pub fn process(&mut self, key: &str, ts: i64, value: &Number) -> Processed<Closed<A::Output>> {
        // (1) The watermark includes the current event.
        let candidate = ts.saturating_sub(self.grace);
        let wm = match self.watermark {
            Some(w) if w >= candidate => w,
            _ => candidate,
        };
        self.watermark = Some(wm);

        // (2)/(3) Aggregate into every window the event is not late for.
        let counted = match self.window {
            Window::Tumbling { size } => {
                let (start, end) = Window::tumbling_bounds(ts, size);
                if end <= wm {
                    false
                } else {
                    let id = self.slot_for(key);
                    self.add_fixed(id, start, end, value);
                    true
                }
            }
            Window::Hopping { .. } => {
                // Windows come in ascending end order, so the late ones are a prefix.
                let mut accepted = self
                    .window
                    .windows_containing(ts)
                    .filter(|&(_, end)| end > wm)
                    .peekable();
                if accepted.peek().is_none() {
                    false
                } else {
                    let id = self.slot_for(key);
                    for (start, end) in accepted {
                        self.add_fixed(id, start, end, value);
                    }
                    true
                }
            }
            Window::Session { gap } => {
                if i128::from(ts) + i128::from(gap) <= i128::from(wm) {
                    false
                } else {
                    let id = self.slot_for(key);
                    self.add_session(id, ts, gap, value);
                    true
                }
            }
        };

        // (4) Close whatever no acceptable future event can change.
        Processed {
            emitted: self.close_due(wm),
            late: !counted,
        }
    }

    /// Moves the watermark up to `wm` without an event (a quiet partition
    /// whose idle timeout passed: the job decides `wm` from the wall clock)
    /// and returns the windows that closed, sorted as [`Self::process`]
    /// sorts them. A `wm` at or below the current watermark changes nothing:
    /// the watermark never decreases.
    pub fn advance_watermark(&mut self, wm: i64) -> Vec<Closed<A::Output>> {
        if self.watermark.is_some_and(|w| w >= wm) {
            return Vec::new();
        }
        self.watermark = Some(wm);
        self.close_due(wm)
    }

    /// The state as a serializable snapshot: the watermark and every open
    /// window's bounds and aggregator, sorted by key and start.
    pub fn snapshot(&self) -> Snapshot<A> {
        let mut windows = Vec::with_capacity(self.open);
        for &id in self.ids.values() {
            let slot = &self.slots[id as usize];
            windows.extend(slot.windows.iter().map(|w| SnapshotWindow {
                key: slot.key.clone(),
                start: w.start,
                upper: w.upper,
                agg: w.agg.clone(),
            }));
        }
        windows.sort_by(|a, b| (&a.key, a.start, a.upper).cmp(&(&b.key, b.start, b.upper)));
        Snapshot {
            format: SNAPSHOT_FORMAT,
            window: self.window,
            watermark: self.watermark,
            windows,
        }
    }

    /// State rebuilt from a snapshot taken with the same `window`. `grace` may
    /// differ from the snapshot's job; the restored watermark still never decreases.
    pub fn restore(
        window: Window,
        grace: i64,
        snapshot: Snapshot<A>,
    ) -> Result<Self, RestoreError> {
        crate::snapshot::validate(window, &snapshot)?;
        let mut state = KeyedWindows::new(window, grace);
        state.watermark = snapshot.watermark;
        // validate() checked that the windows are sorted by key then start, so each
        // key's windows arrive together and in order.
        for w in snapshot.windows {
            let id = state.slot_for(&w.key);
            let threshold = state.threshold(w.upper);
            let slot = &mut state.slots[id as usize];
            slot.windows.push(Open {
                start: w.start,
                upper: w.upper,
                agg: w.agg,
            });
            state.open += 1;
            state.queue(id, threshold);
        }
        Ok(state)
    }

    /// The slot of `key`, created (or reused) if the key has no open window.
    fn slot_for(&mut self, key: &str) -> u32 {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize].key.push_str(key);
                id
            }
            None => {
                // More than u32::MAX keys with open windows in one partition would
                // exhaust memory long before this cast could wrap.
                let id = self.slots.len() as u32;
                self.slots.push(Slot {
                    key: key.to_owned(),
                    windows: Vec::new(),
                    queued: None,
                });
                id
            }
        };
        self.ids.insert(key.to_owned(), id);
        id
    }

    /// Counts `value` in the fixed window `[start, end)` of slot `id`.
    fn add_fixed(&mut self, id: u32, start: i64, end: i64, value: &Number) {
        let slot = &mut self.slots[id as usize];
        // Few windows per key (1–2 tumbling, ~size/advance hopping): a linear scan
        // beats any map and allocates nothing.
        let mut at = slot.windows.len();
        for (i, w) in slot.windows.iter_mut().enumerate() {
            if w.start == start && w.upper == end {
                w.agg.add(value);
                return;
            }
            if (w.start, w.upper) > (start, end) {
                at = i;
                break;
            }
        }
        slot.windows.insert(
            at,
            Open {
                start,
                upper: end,
                agg: A::first(value),
            },
        );
        self.open += 1;
        self.queue(id, end);
    }

    /// Adds an accepted event at `ts` to the sessions of slot `id`: merges every
    /// session with `first − gap ≤ ts ≤ last + gap` (bridging them if several),
    /// or starts a new one.
    fn add_session(&mut self, id: u32, ts: i64, gap: i64, value: &Number) {
        let slot = &mut self.slots[id as usize];
        let (t, g) = (i128::from(ts), i128::from(gap));
        let reaches = |w: &Open<A>| i128::from(w.start) - g <= t && t <= i128::from(w.upper) + g;
        // Sessions are sorted and more than `gap` apart, so the ones `ts` reaches
        // are contiguous.
        let Some(first) = slot.windows.iter().position(reaches) else {
            let at = slot
                .windows
                .iter()
                .position(|w| w.start > ts)
                .unwrap_or(slot.windows.len());
            slot.windows.insert(
                at,
                Open {
                    start: ts,
                    upper: ts,
                    agg: A::first(value),
                },
            );
            self.open += 1;
            let threshold = session_threshold(ts, gap);
            self.queue(id, threshold);
            return;
        };
        let count = slot.windows[first..]
            .iter()
            .take_while(|w| reaches(w))
            .count();
        let (head, tail) = slot.windows.split_at_mut(first + 1);
        let base = &mut head[first];
        for other in &tail[..count - 1] {
            base.agg.merge(&other.agg);
            base.upper = base.upper.max(other.upper);
        }
        base.agg.add(value);
        base.start = base.start.min(ts);
        base.upper = base.upper.max(ts);
        let threshold = session_threshold(base.upper, gap);
        slot.windows.drain(first + 1..first + count);
        self.open -= count - 1;
        // The merged session's threshold is no lower than its parts', so the
        // slot's queued entry still comes early enough; queue() only adds one
        // when this session would be due earlier than that entry.
        self.queue(id, threshold);
    }

    /// Makes sure slot `id` is looked at once the watermark reaches `threshold`.
    fn queue(&mut self, id: u32, threshold: i64) {
        let slot = &mut self.slots[id as usize];
        if slot.queued.is_none_or(|q| threshold < q) {
            slot.queued = Some(threshold);
            self.due.push(Reverse((threshold, id)));
        }
    }

    /// The due-queue threshold of a window with the given `upper` bound.
    fn threshold(&self, upper: i64) -> i64 {
        match self.window {
            Window::Session { gap } => session_threshold(upper, gap),
            _ => upper,
        }
    }

    /// Whether a window can no longer change at watermark `wm`: fixed windows when
    /// `end <= wm`, sessions when `last + 2·gap <= wm` (exact, not clamped).
    fn is_closed(&self, w: &Open<A>, wm: i64) -> bool {
        match self.window {
            Window::Session { gap } => i128::from(w.upper) + 2 * i128::from(gap) <= i128::from(wm),
            _ => w.upper <= wm,
        }
    }

    /// Step (4): removes and returns every window closed at `wm`, sorted by end,
    /// start, key.
    fn close_due(&mut self, wm: i64) -> Vec<Closed<A::Output>> {
        let mut emitted = Vec::new();
        while let Some(&Reverse((threshold, id))) = self.due.peek() {
            if threshold > wm {
                break;
            }
            self.due.pop();
            if self.slots[id as usize].queued != Some(threshold) {
                continue; // stale entry: the slot was re-queued earlier or freed
            }
            let mut windows = std::mem::take(&mut self.slots[id as usize].windows);
            let mut next: Option<i64> = None;
            let before = windows.len();
            windows.retain(|w| {
                if self.is_closed(w, wm) {
                    emitted.push(self.closed(id, w));
                    false
                } else {
                    let t = self.threshold(w.upper);
                    next = Some(next.map_or(t, |n| n.min(t)));
                    true
                }
            });
            self.open -= before - windows.len();
            let slot = &mut self.slots[id as usize];
            slot.windows = windows;
            slot.queued = None;
            if slot.windows.is_empty() {
                // A key without open windows holds no state (the slot's buffer is
                // pooled for the next key).
                self.ids.remove(slot.key.as_str());
                slot.key.clear();
                self.free.push(id);
            } else if let Some(t) = next.filter(|&t| t > wm) {
                self.queue(id, t);
            }
            // else: every remaining window has a threshold beyond i64::MAX (clamped),
            // which no watermark reaches; it is re-queued if an earlier one appears.
        }
        if emitted.len() > 1 {
            emitted.sort_by(|a, b| (a.end, a.start, &a.key).cmp(&(b.end, b.start, &b.key)));
        }
        emitted
    }

    /// The emitted form of window `w` of slot `id`.
    fn closed(&self, id: u32, w: &Open<A>) -> Closed<A::Output> {
        let end = match self.window {
            Window::Session { gap } => clamp(i128::from(w.upper) + i128::from(gap)),
            _ => w.upper,
        };
        Closed {
            kind: self.window.kind(),
            key: self.slots[id as usize].key.clone(),
            start: w.start,
            end,
            output: w.agg.output(),
        }
    }
}

/// When a session with last event time `last` may close: `last + 2·gap`, clamped.
fn session_threshold(last: i64, gap: i64) -> i64 {
    clamp(i128::from(last) + 2 * i128::from(gap))
}
