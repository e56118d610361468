//! sediment-stream: keyed, event-time windowed aggregation ("wagg-1", DESIGN §6).
//!
//! This crate's core is pure: no I/O, no clocks. [`PartitionWindows`] holds the
//! whole window state of one input partition and turns each [`Event`] into the
//! windows it closed ([`WindowResult`], serialized as the output record value) and
//! a `late` flag. Results depend only on the order of events within the
//! partition, so restoring a [`PartitionSnapshot`] and replaying the events after
//! it re-emits identical windows.
//!
//! Modules: [`window`] (window kinds and assignment), [`number`] (exact integer
//! values), [`aggregate`] (folds), [`event`], [`result`] (emissions), [`keyed`]
//! (the state machine, generic over the fold), [`partition`] (the built-in fold),
//! [`snapshot`] (checkpoint form and restore checks).

pub mod aggregate;
pub mod event;
pub mod job;
pub mod keyed;
pub mod number;
pub mod partition;
pub mod result;
pub mod snapshot;
pub mod window;

pub use aggregate::{Aggregates, Aggregator};
pub use event::Event;
pub use keyed::KeyedWindows;
pub use number::Number;
pub use partition::PartitionWindows;
pub use result::{Closed, Processed, WindowResult};
pub use snapshot::{PartitionSnapshot, RestoreError, Snapshot, SnapshotWindow, SNAPSHOT_FORMAT};
pub use window::{Window, WindowError};
