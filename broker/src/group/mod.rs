//! Consumer groups: the classic group protocol as a pure state machine
//! ([`state`]), the task that owns every group and drives its timers
//! ([`coordinator`]), and the committed-offsets store ([`offsets`]).

pub mod coordinator;
pub mod offsets;
pub mod state;
