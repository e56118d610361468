//! Consumer groups: the classic group protocol as a pure state machine
//! ([`state`]), the task that owns every group and drives its timers
//! ([`coordinator`]), the committed-offsets store ([`offsets`]), and which
//! offsets OffsetDelete may remove ([`offset_delete`]).

pub mod coordinator;
pub mod offset_delete;
pub mod offsets;
pub mod state;
