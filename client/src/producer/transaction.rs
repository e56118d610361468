//! The transactional producer's state machine (Kafka's `TransactionManager`
//! states), pure: each method is one event, checked against the current
//! state, moving it or refusing with the error the caller returns. The I/O
//! that goes with the events is in `txn_client` and `transactional`.
//!
//! ```text
//!  Uninitialized ─init_transactions─▶ Initializing ─ok─▶ Ready ◀──────────────┐
//!        ▲                                │                │ begin_transaction │
//!        └──────── retriable/timeout ─────┘                ▼                   │
//!                                                    InTransaction ──commit──▶ Committing ─EndTxn ok─┤
//!                          a record or request fails │      │ abort                                 │
//!                                                    ▼      ▼                                       │
//!                                           AbortableError ─abort─▶ Aborting ───EndTxn ok───────────┘
//!
//!  any state ── a fatal error (fenced, …) ──▶ FatalError (final)
//! ```
//!
//! Rules, and why:
//! - Records may be sent only in `InTransaction`: a record outside a
//!   transaction could not be committed or aborted with anything.
//! - A failure inside a transaction (a record that was not stored, a
//!   refused AddPartitionsToTxn, AddOffsetsToTxn or TxnOffsetCommit) makes
//!   the transaction abortable: committing it would commit it without that
//!   part, so `commit_transaction` refuses until it is aborted. The first
//!   failure is kept and reported.
//! - A fatal error ([`ClientError::is_fatal`]: fenced by a newer producer
//!   with the same transactional id, …) is final: every later call returns
//!   it again, and the producer must be dropped.
//! - `Committing` and `Aborting` outlive a call that failed with a retriable
//!   error (the coordinator may or may not have taken the decision): the
//!   same call may be made again, the other one may not.

use crate::error::ClientError;

/// Where a transactional producer stands. See the module documentation.
#[derive(Debug, Clone, Default)]
pub(crate) enum TxnState {
    /// `init_transactions` not called yet (or it did not finish).
    #[default]
    Uninitialized,
    /// `init_transactions` is running.
    Initializing,
    /// A producer id and epoch are held; no transaction is open.
    Ready,
    /// A transaction is open: records may be sent.
    InTransaction,
    /// `commit_transaction` runs, or failed retriably and may be called again.
    Committing,
    /// `abort_transaction` runs, or failed retriably and may be called again.
    Aborting,
    /// Part of the open transaction failed: it can only be aborted.
    AbortableError(ClientError),
    /// The producer can no longer be used.
    FatalError(ClientError),
}

/// What the sender does with batches not yet in a request.
#[derive(Debug, Clone)]
pub(crate) enum Gate {
    /// Send them (a transaction is open or committing).
    Open,
    /// Keep them (no transaction: there should be none).
    Hold,
    /// Fail them with this error: their transaction will be aborted.
    Drop(ClientError),
}

impl TxnState {
    /// The state's name in messages ("cannot send: the transactional
    /// producer is …").
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            TxnState::Uninitialized => "not initialized (call init_transactions first)",
            TxnState::Initializing => "initializing",
            TxnState::Ready => "not in a transaction (call begin_transaction first)",
            TxnState::InTransaction => "in a transaction",
            TxnState::Committing => "committing a transaction",
            TxnState::Aborting => "aborting a transaction",
            TxnState::AbortableError(_) => "in a transaction that must be aborted",
            TxnState::FatalError(_) => "failed for good",
        }
    }

    /// The error of a refused `operation`: the fatal or abortable error
    /// when there is one, else a state error.
    fn refuse(&self, operation: &'static str) -> ClientError {
        match self {
            TxnState::FatalError(error) => error.clone(),
            TxnState::AbortableError(error) => ClientError::TransactionAbortable {
                cause: Box::new(error.clone()),
            },
            other => ClientError::TransactionState {
                operation,
                state: other.describe(),
            },
        }
    }

    /// `init_transactions` starts.
    pub(crate) fn start_init(&mut self) -> Result<(), ClientError> {
        match self {
            TxnState::Uninitialized => {
                *self = TxnState::Initializing;
                Ok(())
            }
            other => Err(other.refuse("initialize transactions")),
        }
    }

    /// `init_transactions` obtained a producer id and epoch.
    pub(crate) fn init_done(&mut self) {
        if matches!(self, TxnState::Initializing) {
            *self = TxnState::Ready;
        }
    }

    /// `init_transactions` failed: fatal errors are final, anything else
    /// lets it be called again.
    pub(crate) fn init_failed(&mut self, error: &ClientError) {
        if error.is_fatal() {
            *self = TxnState::FatalError(error.clone());
        } else if matches!(self, TxnState::Initializing) {
            *self = TxnState::Uninitialized;
        }
    }

    /// `begin_transaction`.
    pub(crate) fn begin(&mut self) -> Result<(), ClientError> {
        match self {
            TxnState::Ready => {
                *self = TxnState::InTransaction;
                Ok(())
            }
            other => Err(other.refuse("begin a transaction")),
        }
    }

    /// Whether `operation` (a send, adding offsets) may join the open
    /// transaction.
    pub(crate) fn check_in_transaction(&self, operation: &'static str) -> Result<(), ClientError> {
        match self {
            TxnState::InTransaction => Ok(()),
            other => Err(other.refuse(operation)),
        }
    }

    /// Part of the transaction (a record, a request) failed with `error`.
    pub(crate) fn fail(&mut self, error: &ClientError) {
        if matches!(self, TxnState::FatalError(_)) {
            return;
        }
        if error.is_fatal() {
            *self = TxnState::FatalError(error.clone());
            return;
        }
        if matches!(self, TxnState::InTransaction | TxnState::Committing) {
            *self = TxnState::AbortableError(error.clone());
        }
    }

    /// `commit_transaction` starts (or is called again after a retriable failure).
    pub(crate) fn start_commit(&mut self) -> Result<(), ClientError> {
        match self {
            TxnState::InTransaction | TxnState::Committing => {
                *self = TxnState::Committing;
                Ok(())
            }
            other => Err(other.refuse("commit the transaction")),
        }
    }

    /// `abort_transaction` starts (or is called again after a retriable failure).
    pub(crate) fn start_abort(&mut self) -> Result<(), ClientError> {
        match self {
            TxnState::InTransaction | TxnState::AbortableError(_) | TxnState::Aborting => {
                *self = TxnState::Aborting;
                Ok(())
            }
            other => Err(other.refuse("abort the transaction")),
        }
    }

    /// The coordinator completed the commit or abort.
    pub(crate) fn end_done(&mut self) {
        if matches!(self, TxnState::Committing | TxnState::Aborting) {
            *self = TxnState::Ready;
        }
    }

    /// EndTxn (or the flush before it) failed with `error`. Fatal errors
    /// are final; a commit refused for another lasting reason becomes
    /// abortable; a retriable failure leaves the call to be made again.
    pub(crate) fn end_failed(&mut self, error: &ClientError) {
        if error.is_fatal() {
            *self = TxnState::FatalError(error.clone());
        } else if matches!(self, TxnState::Committing) && !error.is_retriable() {
            *self = TxnState::AbortableError(error.clone());
        }
    }

    /// What to do with batches not yet in a request.
    pub(crate) fn gate(&self) -> Gate {
        match self {
            TxnState::InTransaction | TxnState::Committing => Gate::Open,
            TxnState::Uninitialized | TxnState::Initializing | TxnState::Ready => Gate::Hold,
            TxnState::Aborting => Gate::Drop(ClientError::TransactionAborted),
            TxnState::AbortableError(error) => Gate::Drop(ClientError::TransactionAbortable {
                cause: Box::new(error.clone()),
            }),
            TxnState::FatalError(error) => Gate::Drop(error.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sediment_protocol::ErrorCode;

    fn kafka(error: ErrorCode) -> ClientError {
        ClientError::Kafka {
            error,
            code: error.code(),
            context: "test".into(),
            message: None,
        }
    }

    fn ready() -> TxnState {
        let mut state = TxnState::default();
        assert!(state.start_init().is_ok());
        state.init_done();
        state
    }

    #[test]
    fn given_a_fresh_producer_when_it_sends_or_begins_then_it_must_initialize_first() {
        let state = TxnState::default();
        assert!(matches!(
            state.check_in_transaction("send"),
            Err(ClientError::TransactionState {
                operation: "send",
                ..
            })
        ));
        let mut state = TxnState::default();
        assert!(state.begin().is_err());
        assert!(matches!(state, TxnState::Uninitialized));
    }

    #[test]
    fn given_the_happy_path_then_ready_in_transaction_committing_ready() {
        let mut state = ready();
        assert!(matches!(state, TxnState::Ready));
        assert!(state.check_in_transaction("send").is_err());
        assert!(state.begin().is_ok());
        assert!(state.check_in_transaction("send").is_ok());
        assert!(matches!(state.gate(), Gate::Open));
        assert!(state.begin().is_err(), "no nested transaction");
        assert!(state.start_commit().is_ok());
        assert!(state.check_in_transaction("send").is_err());
        assert!(matches!(state.gate(), Gate::Open), "commit still sends");
        state.end_done();
        assert!(matches!(state, TxnState::Ready));
        assert!(state.start_abort().is_err(), "nothing to abort");
        assert!(state.start_commit().is_err(), "nothing to commit");
    }

    #[test]
    fn given_init_failing_retriably_then_it_may_be_called_again() {
        let mut state = TxnState::default();
        assert!(state.start_init().is_ok());
        assert!(state.start_init().is_err(), "already running");
        state.init_failed(&kafka(ErrorCode::CoordinatorNotAvailable));
        assert!(matches!(state, TxnState::Uninitialized));
        assert!(state.start_init().is_ok());
        state.init_done();
        assert!(state.start_init().is_err(), "only once");
    }

    #[test]
    fn given_a_failed_record_then_commit_is_refused_until_aborted() {
        let mut state = ready();
        assert!(state.begin().is_ok());
        let failure = kafka(ErrorCode::MessageTooLarge);
        state.fail(&failure);
        state.fail(&kafka(ErrorCode::InvalidRecord));
        assert!(matches!(
            state.check_in_transaction("send"),
            Err(ClientError::TransactionAbortable { .. })
        ));
        match state.start_commit() {
            Err(ClientError::TransactionAbortable { cause }) => {
                assert_eq!(
                    cause.kafka_error(),
                    Some(ErrorCode::MessageTooLarge),
                    "first kept"
                );
            }
            other => panic!("commit of a failed transaction: {other:?}"),
        }
        assert!(matches!(
            state.gate(),
            Gate::Drop(ClientError::TransactionAbortable { .. })
        ));
        assert!(state.start_abort().is_ok());
        assert!(matches!(
            state.gate(),
            Gate::Drop(ClientError::TransactionAborted)
        ));
        state.fail(&ClientError::TransactionAborted);
        assert!(
            matches!(state, TxnState::Aborting),
            "dropped records do not matter"
        );
        state.end_done();
        assert!(matches!(state, TxnState::Ready));
        assert!(state.begin().is_ok(), "the transaction may be tried again");
    }

    #[test]
    fn given_a_record_failing_during_commit_then_the_commit_becomes_abortable() {
        let mut state = ready();
        assert!(state.begin().is_ok());
        assert!(state.start_commit().is_ok());
        state.fail(&kafka(ErrorCode::MessageTooLarge));
        assert!(matches!(state, TxnState::AbortableError(_)));
        assert!(state.start_commit().is_err());
        assert!(state.start_abort().is_ok());
    }

    #[test]
    fn given_fencing_then_every_later_call_returns_the_same_fatal_error() {
        let mut state = ready();
        assert!(state.begin().is_ok());
        let fenced = kafka(ErrorCode::ProducerFenced);
        state.fail(&fenced);
        state.fail(&kafka(ErrorCode::MessageTooLarge));
        for result in [
            state.check_in_transaction("send"),
            state.clone().begin(),
            state.clone().start_commit(),
            state.clone().start_abort(),
            state.clone().start_init(),
        ] {
            let error = result.expect_err("refused");
            assert_eq!(error.kafka_error(), Some(ErrorCode::ProducerFenced));
            assert!(error.is_fatal());
        }
        assert!(matches!(state.gate(), Gate::Drop(ref e) if e.is_fatal()));
    }

    #[test]
    fn given_end_txn_failing_then_retriable_keeps_the_call_and_others_move_on() {
        let mut state = ready();
        assert!(state.begin().is_ok());
        assert!(state.start_commit().is_ok());
        state.end_failed(&kafka(ErrorCode::CoordinatorNotAvailable));
        assert!(matches!(state, TxnState::Committing));
        assert!(
            state.start_abort().is_err(),
            "a decided commit cannot turn into an abort"
        );
        assert!(state.start_commit().is_ok(), "the commit may be retried");
        state.end_failed(&kafka(ErrorCode::InvalidRecord));
        assert!(matches!(state, TxnState::AbortableError(_)));
        assert!(state.start_abort().is_ok());
        state.end_failed(&kafka(ErrorCode::RequestTimedOut));
        assert!(matches!(state, TxnState::Aborting));
        state.end_failed(&kafka(ErrorCode::InvalidTxnState));
        assert!(matches!(state, TxnState::FatalError(_)));
    }
}
