//! Kafka transactions: the transaction coordinator (`coordinator`), its
//! pure per-id state machine (`state`) and its persisted state in the
//! compacted internal topic `__transaction_state` (`log`). The partitions'
//! side (open transactions, markers, the last stable offset, the aborted
//! index) lives in `storage`; offsets committed inside a transaction in
//! `group::offsets`.

pub mod coordinator;
pub mod log;
pub mod state;
