//! Consumer groups: the committed-offsets store (and, with the coordinator,
//! the classic group protocol).

pub mod offsets;
