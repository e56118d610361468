//! Kafka's transactional producer API on [`Producer`]: `init_transactions`,
//! `begin_transaction`, `send_offsets_to_transaction`, `commit_transaction`,
//! `abort_transaction`, and [`Transactional`], the state they share with
//! the sender (the state machine of `transaction`, the partitions already in
//! the open transaction).
//!
//! (The example is in the [`producer`](crate::producer) module documentation.)
//!
//! Invariants and why:
//! - One transactional call runs at a time (`ops`): the state machine's
//!   `Committing`/`Aborting` then really mean "this call is running".
//! - A send holds `sends` for reading from its state check until its record
//!   is in a batch; commit and abort take it for writing to leave
//!   `InTransaction`. So every record of a transaction is in a batch before
//!   the commit's flush marks what it waits for, and no record slips into a
//!   transaction once its end began.
//! - A partition gets records only after AddPartitionsToTxn put it in the
//!   transaction (the sender asks, in batches of the partitions that became
//!   ready), and EndTxn is sent only when the coordinator knows of the
//!   transaction (a partition or a group was added): ending a transaction
//!   it never saw would be refused as INVALID_TXN_STATE.
//! - After an abort that left a hole in some partition's sequence (a batch
//!   stamped but never stored), the producer bumps its epoch (InitProducerId
//!   with its current id and epoch) so that sequences start again at 0.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::RwLockReadGuard;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::error::{ClientError, Result};
use crate::group::ConsumerGroupMetadata;
use crate::producer::sequence::ProducerIdentity;
use crate::producer::transaction::{Gate, TxnState};
use crate::producer::txn_client::TxnClient;
use crate::producer::Producer;

/// What the transactional calls and the sender share.
pub(crate) struct Transactional {
    client: TxnClient,
    state: Mutex<TxnState>,
    /// Serialises the transactional calls.
    ops: tokio::sync::Mutex<()>,
    /// Read by sends, written when a transaction's end begins.
    sends: tokio::sync::RwLock<()>,
    /// Partitions in the open transaction.
    partitions: Mutex<HashSet<(Arc<str>, i32)>>,
    /// The coordinator knows of the open transaction.
    started: AtomicBool,
    /// How long a call retries retriable errors.
    max_block: Duration,
}

impl Transactional {
    /// The shared state of a producer with `transactional_id`.
    pub(crate) fn new(
        cluster: Cluster,
        transactional_id: String,
        transaction_timeout: Duration,
        max_block: Duration,
    ) -> Self {
        Self {
            client: TxnClient::new(cluster, transactional_id, transaction_timeout),
            state: Mutex::new(TxnState::default()),
            ops: tokio::sync::Mutex::new(()),
            sends: tokio::sync::RwLock::new(()),
            partitions: Mutex::new(HashSet::new()),
            started: AtomicBool::new(false),
            max_block,
        }
    }

    /// The transactional id (sent with every Produce request).
    pub(crate) fn transactional_id(&self) -> &str {
        self.client.transactional_id()
    }

    fn state(&self) -> MutexGuard<'_, TxnState> {
        // Transitions are single assignments: a poisoned lock is consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn added(&self) -> MutexGuard<'_, HashSet<(Arc<str>, i32)>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the sender does with batches not yet in a request.
    pub(crate) fn gate(&self) -> Gate {
        self.state().gate()
    }

    /// Whether `topic`/`partition` is in the open transaction.
    pub(crate) fn is_added(&self, topic: &str, partition: i32) -> bool {
        self.added()
            .iter()
            .any(|(t, p)| *p == partition && **t == *topic)
    }

    /// A record of the transaction was not stored.
    pub(crate) fn record_failed(&self, error: &ClientError) {
        self.state().fail(error);
    }

    /// Waits until a send may check the state, then checks it; the guard
    /// is held until the record is in a batch.
    pub(crate) async fn admit_send(&self) -> Result<RwLockReadGuard<'_, ()>> {
        let guard = self.sends.read().await;
        self.state().check_in_transaction("send")?;
        Ok(guard)
    }

    /// AddPartitionsToTxn for partitions that have records ready, called
    /// by the sender; on failure the transaction becomes abortable (or the
    /// producer fails for good) and the records are failed by the sender.
    pub(crate) async fn add_partitions(
        &self,
        identity: Option<ProducerIdentity>,
        partitions: Vec<(Arc<str>, i32)>,
    ) {
        if !matches!(self.gate(), Gate::Open) || partitions.is_empty() {
            return;
        }
        let result = match identity {
            Some(identity) => {
                let deadline = Instant::now() + self.max_block;
                self.client
                    .add_partitions(identity, &partitions, deadline)
                    .await
            }
            None => Err(ClientError::TransactionState {
                operation: "add partitions to the transaction",
                state: TxnState::Uninitialized.describe(),
            }),
        };
        match result {
            Ok(()) => {
                self.started.store(true, Ordering::Release);
                self.added().extend(partitions);
            }
            Err(error) => {
                tracing::warn!(transactional_id = %self.transactional_id(), %error, "AddPartitionsToTxn failed: the transaction must be aborted");
                self.state().fail(&error);
            }
        }
    }

    /// Forgets the ended transaction's partitions.
    fn clear(&self) {
        self.added().clear();
        self.started.store(false, Ordering::Release);
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.max_block
    }
}

impl Producer {
    fn transactional(&self, operation: &'static str) -> Result<&Transactional> {
        self.handle
            .shared
            .txn
            .as_ref()
            .ok_or(ClientError::TransactionState {
                operation,
                state: "not transactional (set ProducerConfig::transactional_id)",
            })
    }

    /// Registers the transactional id with its coordinator and gets the
    /// producer id and epoch: older producers with the same id are fenced
    /// and their open transaction aborted. Call once, before anything else;
    /// retries retriable errors (coordinator not available or loading,
    /// CONCURRENT_TRANSACTIONS while the old transaction is aborted) until
    /// `max_block`. After a non-fatal failure it may be called again.
    pub async fn init_transactions(&self) -> Result<()> {
        let txn = self.transactional("initialize transactions")?;
        let _op = txn.ops.lock().await;
        txn.state().start_init()?;
        match txn.client.init_producer_id(None, txn.deadline()).await {
            Ok(identity) => {
                tracing::debug!(transactional_id = %txn.transactional_id(), producer_id = identity.producer_id, epoch = identity.epoch, "transactions initialized");
                self.handle.shared.accumulator.set_identity(identity);
                txn.state().init_done();
                Ok(())
            }
            Err(error) => {
                txn.state().init_failed(&error);
                Err(error)
            }
        }
    }

    /// Opens a transaction: records sent from now on (and offsets added)
    /// are committed or aborted together. Only after `init_transactions`,
    /// with no transaction open.
    pub fn begin_transaction(&self) -> Result<()> {
        let txn = self.transactional("begin a transaction")?;
        let mut state = txn.state();
        state.begin()?;
        drop(state);
        txn.clear();
        Ok(())
    }

    /// Adds consumed positions to the open transaction: `offsets` are
    /// (topic, partition, next offset to read) of group `group_id`, stored
    /// by the group coordinator now and visible to the group only if the
    /// transaction commits (AddOffsetsToTxn, then TxnOffsetCommit). The
    /// group's members should read with `IsolationLevel::ReadCommitted`.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(String, i32, i64)],
        group_id: &str,
    ) -> Result<()> {
        let member = ConsumerGroupMetadata {
            group_id: group_id.to_string(),
            generation_id: -1,
            member_id: String::new(),
        };
        self.send_offsets_to_group_transaction(offsets, &member)
            .await
    }

    /// [`Producer::send_offsets_to_transaction`] on behalf of a group
    /// member ([`GroupConsumer::group_metadata`](crate::GroupConsumer::group_metadata)):
    /// the broker checks the member's generation (KIP-447) and refuses the
    /// offsets of a member the group has moved past (ILLEGAL_GENERATION,
    /// UNKNOWN_MEMBER_ID), which makes the transaction abortable, so a
    /// zombie cannot commit output for partitions it no longer owns.
    pub async fn send_offsets_to_group_transaction(
        &self,
        offsets: &[(String, i32, i64)],
        member: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let group_id = member.group_id.as_str();
        let txn = self.transactional("send offsets to the transaction")?;
        let _op = txn.ops.lock().await;
        txn.state()
            .check_in_transaction("send offsets to the transaction")?;
        let identity = self.identity()?;
        let deadline = txn.deadline();
        let result = async {
            txn.client.add_offsets(identity, group_id, deadline).await?;
            txn.started.store(true, Ordering::Release);
            if offsets.is_empty() {
                return Ok(());
            }
            txn.client
                .commit_offsets(identity, member, offsets, deadline)
                .await
        }
        .await;
        if let Err(error) = &result {
            txn.state().fail(error);
        }
        result
    }

    /// Sends every record of the open transaction, waits for each to be
    /// stored, then commits the transaction (EndTxn), retrying retriable
    /// errors until `max_block`. If any record (or added offset) of the
    /// transaction failed, nothing is committed: the error is
    /// [`ClientError::TransactionAbortable`] and the transaction must be
    /// aborted. A fatal error ([`ClientError::is_fatal`]) means the producer
    /// must be dropped; after a retriable one the commit may be called again.
    pub async fn commit_transaction(&self) -> Result<()> {
        let txn = self.transactional("commit the transaction")?;
        let _op = txn.ops.lock().await;
        {
            let _no_sends = txn.sends.write().await;
            txn.state().start_commit()?;
        }
        self.flush().await?;
        // A record that failed made the transaction abortable meanwhile.
        txn.state().start_commit()?;
        if txn.started.load(Ordering::Acquire) {
            let identity = self.identity()?;
            if let Err(error) = txn.client.end_txn(identity, true, txn.deadline()).await {
                txn.state().end_failed(&error);
                return Err(error);
            }
        }
        txn.state().end_done();
        txn.clear();
        Ok(())
    }

    /// Aborts the open transaction: records not sent yet are dropped (their
    /// futures fail with [`ClientError::TransactionAborted`]), those in
    /// flight are waited for, and the coordinator writes abort markers
    /// (EndTxn), so that read_committed consumers never see the
    /// transaction's records. Then a new transaction may begin.
    pub async fn abort_transaction(&self) -> Result<()> {
        let txn = self.transactional("abort the transaction")?;
        let _op = txn.ops.lock().await;
        {
            let _no_sends = txn.sends.write().await;
            txn.state().start_abort()?;
        }
        self.flush().await?;
        let accumulator = &self.handle.shared.accumulator;
        if txn.started.load(Ordering::Acquire) {
            let identity = self.identity()?;
            if let Err(error) = txn.client.end_txn(identity, false, txn.deadline()).await {
                txn.state().end_failed(&error);
                return Err(error);
            }
            txn.started.store(false, Ordering::Release);
        }
        if accumulator.needs_reset() {
            // A dropped or failed batch left a hole in a sequence.
            let current = accumulator.identity();
            match txn.client.init_producer_id(current, txn.deadline()).await {
                Ok(identity) => {
                    tracing::debug!(transactional_id = %txn.transactional_id(), epoch = identity.epoch, "epoch bumped after the abort");
                    accumulator.set_identity(identity);
                }
                Err(error) => {
                    txn.state().end_failed(&error);
                    return Err(error);
                }
            }
        }
        txn.state().end_done();
        txn.clear();
        Ok(())
    }

    /// The identity transactional requests carry.
    fn identity(&self) -> Result<ProducerIdentity> {
        self.handle
            .shared
            .accumulator
            .identity()
            .ok_or(ClientError::TransactionState {
                operation: "use the transaction",
                state: TxnState::Uninitialized.describe(),
            })
    }
}
