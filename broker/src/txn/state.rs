//! The transaction state machine of one transactional id, as Kafka's
//! `TransactionMetadata` runs it: pure functions from the current metadata
//! and a request to the next metadata (or a refusal). The coordinator
//! (`txn::coordinator`) persists each new metadata and carries out what it
//! implies (markers, offsets); nothing here does I/O.
//!
//! States: `Empty` (no transaction) → `Ongoing` (partitions or a group
//! added) → `PrepareCommit` / `PrepareAbort` (the decision is durable; the
//! markers are being written) → `CompleteCommit` / `CompleteAbort` (every
//! marker written) → `Ongoing` again with the next AddPartitionsToTxn.
//!
//! Rules and why:
//! - Every request names the producer id and epoch it holds; a different id
//!   is INVALID_PRODUCER_ID_MAPPING, an older epoch PRODUCER_FENCED: a
//!   zombie instance can neither add to nor end the new one's transaction.
//! - InitProducerId bumps the epoch (fencing the previous instance). An
//!   ongoing transaction is aborted with the bumped epoch first, so the
//!   zombie's late writes are refused by the partitions too. An exhausted
//!   epoch moves to a fresh producer id.
//! - While a decision is being carried out (Prepare*), every request is
//!   CONCURRENT_TRANSACTIONS, which clients retry.
//! - An EndTxn repeating the decision already completed succeeds (a retry);
//!   the opposite decision is INVALID_TXN_STATE.
//! - A transaction ongoing for longer than its timeout is aborted with a
//!   bumped epoch (the producer is fenced), as Kafka does.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Where a transactional id's transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    /// No transaction since the last InitProducerId.
    Empty,
    /// Partitions or offsets were added; not ended yet.
    Ongoing,
    /// Commit decided and durable; markers being written.
    PrepareCommit,
    /// Abort decided and durable; markers being written.
    PrepareAbort,
    /// The last transaction committed everywhere.
    CompleteCommit,
    /// The last transaction aborted everywhere.
    CompleteAbort,
}

impl TxnState {
    /// Kafka's name for the state (DescribeTransactions, ListTransactions).
    pub fn kafka_name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    /// Whether a decision is being carried out.
    pub fn is_prepared(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// What the coordinator keeps per transactional id (persisted whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMetadata {
    /// The producer id serving this transactional id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// Longest a transaction may stay open, in ms.
    pub timeout_ms: i32,
    /// Where the transaction stands.
    pub state: TxnState,
    /// Partitions written in the current (or deciding) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// Groups whose offsets the transaction commits.
    pub groups: BTreeSet<String>,
    /// When the current transaction started (ms), -1 without one.
    pub txn_start_ms: i64,
    /// When the metadata last changed (ms).
    pub last_update_ms: i64,
}

/// Why the state machine refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnRefusal {
    /// The producer's epoch is older than the coordinator's.
    #[error("producer {producer_id} epoch {epoch} was fenced: the current epoch is {current}")]
    ProducerFenced {
        /// The producer.
        producer_id: i64,
        /// Its epoch.
        epoch: i16,
        /// The coordinator's epoch.
        current: i16,
    },
    /// The producer id is not the one serving the transactional id.
    #[error("producer id {0} does not serve this transactional id")]
    InvalidProducerIdMapping(i64),
    /// A decision is being carried out.
    #[error("the previous transaction is still being completed; retry")]
    ConcurrentTransactions,
    /// The request does not fit the state.
    #[error("{0}")]
    InvalidTxnState(String),
    /// The timeout is not in `1..=transaction_max_timeout_ms`.
    #[error("transaction timeout {timeout_ms} ms is outside 1..={max_ms} ms (transaction_max_timeout_ms)")]
    InvalidTransactionTimeout {
        /// Asked for.
        timeout_ms: i32,
        /// The broker's maximum.
        max_ms: i32,
    },
}

/// What InitProducerId leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitPlan {
    /// Persist this metadata and answer with its id and epoch.
    Ready(TxnMetadata),
    /// Persist this `PrepareAbort` metadata, abort the ongoing transaction,
    /// then answer with its id and (bumped) epoch.
    AbortFirst(TxnMetadata),
}

/// What EndTxn leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndPlan {
    /// Persist this prepared metadata and complete it.
    Prepare(TxnMetadata),
    /// The same decision already completed: answer success.
    AlreadyDone,
}

/// The highest epoch handed out before moving to a fresh producer id.
const MAX_EPOCH: i16 = i16::MAX - 1;

/// Checks the timeout against the broker's maximum.
pub fn check_timeout(timeout_ms: i32, max_ms: i32) -> Result<(), TxnRefusal> {
    if timeout_ms <= 0 || timeout_ms > max_ms {
        return Err(TxnRefusal::InvalidTransactionTimeout { timeout_ms, max_ms });
    }
    Ok(())
}

/// InitProducerId for a transactional id: `current` is its metadata, if
/// any; `fresh_id` draws a new producer id when one is needed.
pub fn init(
    current: Option<&TxnMetadata>,
    timeout_ms: i32,
    now_ms: i64,
    fresh_id: &mut dyn FnMut() -> i64,
) -> Result<InitPlan, TxnRefusal> {
    let Some(current) = current else {
        return Ok(InitPlan::Ready(TxnMetadata {
            producer_id: fresh_id(),
            producer_epoch: 0,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            txn_start_ms: -1,
            last_update_ms: now_ms,
        }));
    };
    if current.state.is_prepared() {
        return Err(TxnRefusal::ConcurrentTransactions);
    }
    let mut next = current.clone();
    next.timeout_ms = timeout_ms;
    next.last_update_ms = now_ms;
    if current.state == TxnState::Ongoing {
        // The abort markers carry the bumped epoch: the fenced instance's
        // later writes are refused by every partition it touched.
        next.producer_epoch = current.producer_epoch.saturating_add(1);
        next.state = TxnState::PrepareAbort;
        return Ok(InitPlan::AbortFirst(next));
    }
    if current.producer_epoch >= MAX_EPOCH {
        next.producer_id = fresh_id();
        next.producer_epoch = 0;
    } else {
        next.producer_epoch = current.producer_epoch + 1;
    }
    next.state = TxnState::Empty;
    next.partitions.clear();
    next.groups.clear();
    next.txn_start_ms = -1;
    Ok(InitPlan::Ready(next))
}

/// After an abort that InitProducerId started: the metadata to answer with
/// (Empty, same id and epoch).
pub fn ready_after_abort(completed: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    let mut next = completed.clone();
    next.state = TxnState::Empty;
    next.last_update_ms = now_ms;
    next
}

/// Checks that `producer_id`/`epoch` is the instance serving `current`.
pub fn check_producer(
    current: &TxnMetadata,
    producer_id: i64,
    epoch: i16,
) -> Result<(), TxnRefusal> {
    if producer_id != current.producer_id {
        return Err(TxnRefusal::InvalidProducerIdMapping(producer_id));
    }
    if epoch != current.producer_epoch {
        return Err(TxnRefusal::ProducerFenced {
            producer_id,
            epoch,
            current: current.producer_epoch,
        });
    }
    Ok(())
}

/// AddPartitionsToTxn / AddOffsetsToTxn: adds `partitions` and `groups`.
/// `None` when they were already part of the ongoing transaction (nothing
/// to persist).
pub fn add(
    current: &TxnMetadata,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
    groups: &[String],
    now_ms: i64,
) -> Result<Option<TxnMetadata>, TxnRefusal> {
    check_producer(current, producer_id, epoch)?;
    if current.state.is_prepared() {
        return Err(TxnRefusal::ConcurrentTransactions);
    }
    let ongoing = current.state == TxnState::Ongoing;
    if ongoing
        && partitions.iter().all(|p| current.partitions.contains(p))
        && groups.iter().all(|g| current.groups.contains(g))
    {
        return Ok(None);
    }
    let mut next = current.clone();
    if !ongoing {
        next.partitions.clear();
        next.groups.clear();
        next.txn_start_ms = now_ms;
        next.state = TxnState::Ongoing;
    }
    next.partitions.extend(partitions.iter().cloned());
    next.groups.extend(groups.iter().cloned());
    next.last_update_ms = now_ms;
    Ok(Some(next))
}

/// EndTxn: commit (`true`) or abort the ongoing transaction.
pub fn end(
    current: &TxnMetadata,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    now_ms: i64,
) -> Result<EndPlan, TxnRefusal> {
    check_producer(current, producer_id, epoch)?;
    let wrong = |state: TxnState| {
        TxnRefusal::InvalidTxnState(format!(
            "cannot {} a transaction in state {}",
            if commit { "commit" } else { "abort" },
            state.kafka_name()
        ))
    };
    match (current.state, commit) {
        (TxnState::Ongoing, _) => {
            let mut next = current.clone();
            next.state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            next.last_update_ms = now_ms;
            Ok(EndPlan::Prepare(next))
        }
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
            Ok(EndPlan::AlreadyDone)
        }
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Err(TxnRefusal::ConcurrentTransactions)
        }
        (state, _) => Err(wrong(state)),
    }
}

/// The metadata once every marker of a prepared decision is written.
pub fn complete(prepared: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    let mut next = prepared.clone();
    next.state = match prepared.state {
        TxnState::PrepareCommit => TxnState::CompleteCommit,
        TxnState::PrepareAbort => TxnState::CompleteAbort,
        other => other,
    };
    next.partitions.clear();
    next.groups.clear();
    next.txn_start_ms = -1;
    next.last_update_ms = now_ms;
    next
}

/// A transaction open longer than its timeout: the `PrepareAbort` metadata
/// that aborts it with a bumped epoch (fencing the producer), or `None`.
pub fn expire(current: &TxnMetadata, now_ms: i64) -> Option<TxnMetadata> {
    let expired = current.state == TxnState::Ongoing
        && now_ms.saturating_sub(current.txn_start_ms) > i64::from(current.timeout_ms);
    expired.then(|| {
        let mut next = current.clone();
        next.producer_epoch = current.producer_epoch.saturating_add(1);
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms;
        next
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> impl FnMut() -> i64 {
        let mut next = 1000;
        move || {
            next += 1;
            next
        }
    }

    fn ready(plan: InitPlan) -> TxnMetadata {
        match plan {
            InitPlan::Ready(meta) => meta,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    fn tp(topic: &str, partition: i32) -> (String, i32) {
        (topic.to_string(), partition)
    }

    #[test]
    fn given_new_id_when_initialised_twice_then_epoch_bumps_and_old_instance_is_fenced() {
        let mut ids = fresh();
        let first = ready(init(None, 60_000, 0, &mut ids).expect("init"));
        assert_eq!((first.producer_id, first.producer_epoch), (1001, 0));
        let second = ready(init(Some(&first), 60_000, 1, &mut ids).expect("init"));
        assert_eq!((second.producer_id, second.producer_epoch), (1001, 1));
        assert_eq!(
            add(&second, 1001, 0, &[tp("t", 0)], &[], 2),
            Err(TxnRefusal::ProducerFenced {
                producer_id: 1001,
                epoch: 0,
                current: 1
            })
        );
        assert_eq!(
            add(&second, 7, 1, &[tp("t", 0)], &[], 2),
            Err(TxnRefusal::InvalidProducerIdMapping(7))
        );
    }

    #[test]
    fn given_ongoing_txn_when_reinitialised_then_aborted_with_bumped_epoch() {
        let mut ids = fresh();
        let meta = ready(init(None, 60_000, 0, &mut ids).expect("init"));
        let ongoing = add(&meta, 1001, 0, &[tp("t", 0)], &[], 5)
            .expect("add")
            .expect("changed");
        assert_eq!(ongoing.state, TxnState::Ongoing);
        assert_eq!(ongoing.txn_start_ms, 5);
        match init(Some(&ongoing), 60_000, 6, &mut ids).expect("init") {
            InitPlan::AbortFirst(prepared) => {
                assert_eq!(prepared.state, TxnState::PrepareAbort);
                assert_eq!(prepared.producer_epoch, 1);
                assert_eq!(prepared.partitions.len(), 1);
                let done = complete(&prepared, 7);
                assert_eq!(done.state, TxnState::CompleteAbort);
                assert!(done.partitions.is_empty());
            }
            other => panic!("expected AbortFirst, got {other:?}"),
        }
    }

    #[test]
    fn given_end_txn_when_repeated_or_contradicted_then_kafka_answers() {
        let mut ids = fresh();
        let meta = ready(init(None, 60_000, 0, &mut ids).expect("init"));
        assert!(matches!(
            end(&meta, 1001, 0, true, 1),
            Err(TxnRefusal::InvalidTxnState(_))
        ));
        let ongoing = add(&meta, 1001, 0, &[tp("t", 0)], &["g".into()], 1)
            .expect("add")
            .expect("changed");
        assert_eq!(
            add(&ongoing, 1001, 0, &[tp("t", 0)], &["g".into()], 2),
            Ok(None)
        );
        let EndPlan::Prepare(prepared) = end(&ongoing, 1001, 0, true, 3).expect("end") else {
            panic!("expected Prepare");
        };
        assert_eq!(
            end(&prepared, 1001, 0, true, 4),
            Err(TxnRefusal::ConcurrentTransactions)
        );
        assert_eq!(
            add(&prepared, 1001, 0, &[tp("t", 1)], &[], 4),
            Err(TxnRefusal::ConcurrentTransactions)
        );
        let done = complete(&prepared, 5);
        assert_eq!(end(&done, 1001, 0, true, 6), Ok(EndPlan::AlreadyDone));
        assert!(matches!(
            end(&done, 1001, 0, false, 6),
            Err(TxnRefusal::InvalidTxnState(_))
        ));
        let next = add(&done, 1001, 0, &[tp("u", 0)], &[], 7)
            .expect("add")
            .expect("changed");
        assert_eq!(next.partitions.len(), 1);
        assert!(next.groups.is_empty());
    }

    #[test]
    fn given_open_txn_past_its_timeout_when_checked_then_aborted_with_bumped_epoch() {
        let mut ids = fresh();
        let meta = ready(init(None, 1_000, 0, &mut ids).expect("init"));
        let ongoing = add(&meta, 1001, 0, &[tp("t", 0)], &[], 10)
            .expect("add")
            .expect("changed");
        assert_eq!(expire(&ongoing, 1_010), None);
        let aborted = expire(&ongoing, 1_011).expect("expired");
        assert_eq!(aborted.state, TxnState::PrepareAbort);
        assert_eq!(aborted.producer_epoch, 1);
        assert_eq!(expire(&meta, i64::MAX), None);
    }

    #[test]
    fn given_exhausted_epoch_when_initialised_then_fresh_producer_id() {
        let mut ids = fresh();
        let mut meta = ready(init(None, 1_000, 0, &mut ids).expect("init"));
        meta.producer_epoch = MAX_EPOCH;
        let next = ready(init(Some(&meta), 1_000, 1, &mut ids).expect("init"));
        assert_eq!((next.producer_id, next.producer_epoch), (1002, 0));
    }

    #[test]
    fn given_timeouts_outside_the_maximum_then_refused() {
        assert!(check_timeout(0, 900_000).is_err());
        assert!(check_timeout(-5, 900_000).is_err());
        assert!(check_timeout(900_001, 900_000).is_err());
        assert!(check_timeout(900_000, 900_000).is_ok());
    }
}
