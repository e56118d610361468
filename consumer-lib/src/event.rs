//! [`Event`]: one keyed, timestamped value, the unit of input of the windowing core.
//!
//! The JSON form `{"key": str, "ts": int ms, "value": number}` is what
//! `sediment window` reads (DESIGN §6); an integer `value` stays an exact integer.

use serde::{Deserialize, Serialize};

use crate::number::Number;

/// One input event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Grouping key.
    pub key: String,
    /// Event time in milliseconds since the epoch (may be negative).
    pub ts: i64,
    /// The value folded into the event's windows.
    pub value: Number,
}

impl Event {
    /// An event from its parts.
    pub fn new(key: impl Into<String>, ts: i64, value: impl Into<Number>) -> Self {
        Event {
            key: key.into(),
            ts,
            value: value.into(),
        }
    }
}
