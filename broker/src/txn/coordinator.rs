//! The transaction coordinator: InitProducerId for transactional ids,
//! AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and EndTxn, the
//! abort of transactions open past their timeout, and ListTransactions /
//! DescribeTransactions. Decisions come from `txn::state`; this file
//! persists them (`txn::log`) and carries them out.
//!
//! Invariants and why:
//! - One lock serialises every operation, persistence and markers
//!   included, so an id's records in `__transaction_state` follow the order
//!   of its decisions, and TxnOffsetCommit cannot interleave with the
//!   EndTxn that completes the same transaction. Operations are a few small
//!   fdatasyncs each; one broker's transactional traffic fits one lock.
//! - A decision (PrepareCommit / PrepareAbort) is durable before the first
//!   marker is written; the markers (and the staged offsets' completion)
//!   are durable before the Complete* record is written. A crash anywhere
//!   leaves either no decision (the transaction is still open: its producer
//!   or the timeout ends it) or a decision the coordinator finishes on
//!   start ([`TxnCoordinator::run_checks`]), so every partition ends up with
//!   the same outcome: never half a transaction.
//! - Writing a marker twice is harmless (the second finds no open
//!   transaction), so finishing a decision again after a crash is safe.
//! - A marker write that fails with a storage error leaves the decision
//!   prepared (clients get COORDINATOR_NOT_AVAILABLE and retry); the
//!   periodic check retries it.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::basics::{now_ms, TopicPartition};
use crate::config::LogConfig;
use crate::error::StorageError;
use crate::group::offsets::{CommittedOffset, OffsetStore};
use crate::storage::encode::TxnMarker;
use crate::storage::log_manager::LogManager;
use crate::txn::log::TxnLog;
use crate::txn::state::{self, EndPlan, InitPlan, TxnMetadata, TxnRefusal, TxnState};

/// Why a transactional request failed.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// The state machine refused it.
    #[error(transparent)]
    Refused(#[from] TxnRefusal),
    /// No InitProducerId was done for this transactional id.
    #[error("transactional id {0} is unknown: call InitProducerId first")]
    UnknownTransactionalId(String),
    /// Persisting or carrying out a decision failed; retry.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One transaction as ListTransactions / DescribeTransactions show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    /// The transactional id.
    pub transactional_id: String,
    /// Its state and producer.
    pub meta: TxnMetadata,
}

/// The transaction coordinator. See the module docs.
pub struct TxnCoordinator {
    log: TxnLog,
    states: Mutex<BTreeMap<String, TxnMetadata>>,
    offsets: Arc<OffsetStore>,
    max_timeout_ms: i32,
}

impl TxnCoordinator {
    /// Opens `__transaction_state` and loads every transactional id's state.
    /// Prepared decisions are finished by the first
    /// [`TxnCoordinator::run_checks`].
    pub fn open(
        logs: &LogManager,
        base: &LogConfig,
        offsets: Arc<OffsetStore>,
        max_timeout_ms: i32,
    ) -> Result<Self, StorageError> {
        let (log, states) = TxnLog::open(logs, base)?;
        let prepared = states.values().filter(|m| m.state.is_prepared()).count();
        tracing::info!(
            transactional_ids = states.len(),
            prepared,
            "transaction states loaded"
        );
        Ok(Self {
            log,
            states: Mutex::new(states),
            offsets,
            max_timeout_ms,
        })
    }

    /// InitProducerId for `transactional_id`: its producer id and a bumped
    /// epoch, after aborting an ongoing transaction of a previous instance.
    /// `fresh_id` draws a never-used producer id when one is needed.
    pub async fn init_producer_id(
        &self,
        logs: &LogManager,
        transactional_id: &str,
        timeout_ms: i32,
        fresh_id: &mut (dyn FnMut() -> Result<i64, StorageError> + Send),
    ) -> Result<(i64, i16), TxnError> {
        state::check_timeout(timeout_ms, self.max_timeout_ms)?;
        let mut states = self.states.lock().await;
        let mut draw_error = None;
        let plan = {
            let mut draw = || {
                fresh_id().unwrap_or_else(|error| {
                    draw_error = Some(error);
                    -1
                })
            };
            state::init(
                states.get(transactional_id),
                timeout_ms,
                now_ms(),
                &mut draw,
            )?
        };
        if let Some(error) = draw_error {
            return Err(error.into());
        }
        let ready = match plan {
            InitPlan::Ready(meta) => meta,
            InitPlan::AbortFirst(prepared) => {
                tracing::info!(
                    transactional_id,
                    producer_id = prepared.producer_id,
                    epoch = prepared.producer_epoch,
                    "a new instance fenced the previous one: aborting its open transaction"
                );
                self.persist(&mut states, transactional_id, prepared.clone())
                    .await?;
                let completed = self
                    .finish(logs, &mut states, transactional_id, prepared)
                    .await?;
                state::ready_after_abort(&completed, now_ms())
            }
        };
        let answer = (ready.producer_id, ready.producer_epoch);
        self.persist(&mut states, transactional_id, ready).await?;
        Ok(answer)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn (a group's offsets).
    pub async fn add(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        groups: &[String],
    ) -> Result<(), TxnError> {
        let mut states = self.states.lock().await;
        let current = states
            .get(transactional_id)
            .ok_or_else(|| TxnError::UnknownTransactionalId(transactional_id.to_string()))?;
        if let Some(next) = state::add(current, producer_id, epoch, partitions, groups, now_ms())? {
            self.persist(&mut states, transactional_id, next).await?;
        }
        Ok(())
    }

    /// TxnOffsetCommit: stages `offsets` for `group` in the producer's
    /// transaction; they become committed offsets when it commits.
    pub async fn commit_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), TxnError> {
        let states = self.states.lock().await;
        let current = states
            .get(transactional_id)
            .ok_or_else(|| TxnError::UnknownTransactionalId(transactional_id.to_string()))?;
        state::check_producer(current, producer_id, epoch)?;
        if current.state != TxnState::Ongoing || !current.groups.contains(group) {
            return Err(TxnRefusal::InvalidTxnState(format!(
                "group {group} was not added to the transaction (AddOffsetsToTxn first)"
            ))
            .into());
        }
        self.offsets
            .stage_txn_offsets(producer_id, group, offsets)
            .await?;
        Ok(())
    }

    /// EndTxn: commits or aborts the ongoing transaction everywhere.
    pub async fn end_txn(
        &self,
        logs: &LogManager,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), TxnError> {
        let mut states = self.states.lock().await;
        let current = states
            .get(transactional_id)
            .ok_or_else(|| TxnError::UnknownTransactionalId(transactional_id.to_string()))?;
        match state::end(current, producer_id, epoch, commit, now_ms())? {
            EndPlan::AlreadyDone => Ok(()),
            EndPlan::Prepare(prepared) => {
                self.persist(&mut states, transactional_id, prepared.clone())
                    .await?;
                self.finish(logs, &mut states, transactional_id, prepared)
                    .await?;
                Ok(())
            }
        }
    }

    /// Finishes prepared decisions (after a restart or a storage error) and
    /// aborts transactions open past their timeout. Runs at start and every
    /// `transaction_check_interval`.
    pub async fn run_checks(&self, logs: &LogManager) {
        let mut states = self.states.lock().await;
        let now = now_ms();
        let due: Vec<(String, TxnMetadata)> = states
            .iter()
            .filter_map(|(id, meta)| {
                if meta.state.is_prepared() {
                    return Some((id.clone(), meta.clone()));
                }
                state::expire(meta, now).map(|aborting| (id.clone(), aborting))
            })
            .collect();
        for (id, prepared) in due {
            if states
                .get(&id)
                .is_some_and(|m| m.state == TxnState::Ongoing)
            {
                tracing::info!(transactional_id = %id, producer_id = prepared.producer_id, timeout_ms = prepared.timeout_ms, "aborting a transaction open past its timeout");
                if let Err(error) = self.persist(&mut states, &id, prepared.clone()).await {
                    tracing::error!(transactional_id = %id, error = %error, "cannot record the abort of a timed-out transaction; retrying later");
                    continue;
                }
            }
            if let Err(error) = self.finish(logs, &mut states, &id, prepared).await {
                tracing::error!(transactional_id = %id, error = %error, "cannot complete a transaction; retrying later");
            }
        }
    }

    /// Transactions for ListTransactions, filtered by state names and
    /// producer ids (empty filters match all) and by minimum open duration
    /// (`min_duration_ms` < 0: any).
    pub async fn list(
        &self,
        states_filter: &[String],
        producers_filter: &[i64],
        min_duration_ms: i64,
    ) -> Vec<TxnListing> {
        let now = now_ms();
        self.states
            .lock()
            .await
            .iter()
            .filter(|(_, m)| {
                (states_filter.is_empty()
                    || states_filter.iter().any(|s| s == m.state.kafka_name()))
                    && (producers_filter.is_empty() || producers_filter.contains(&m.producer_id))
                    && (min_duration_ms < 0
                        || (m.txn_start_ms >= 0 && now - m.txn_start_ms >= min_duration_ms))
            })
            .map(|(id, meta)| TxnListing {
                transactional_id: id.clone(),
                meta: meta.clone(),
            })
            .collect()
    }

    /// The state of one transactional id, if known.
    pub async fn describe(&self, transactional_id: &str) -> Option<TxnMetadata> {
        self.states.lock().await.get(transactional_id).cloned()
    }

    async fn persist(
        &self,
        states: &mut BTreeMap<String, TxnMetadata>,
        transactional_id: &str,
        meta: TxnMetadata,
    ) -> Result<(), StorageError> {
        self.log.write(transactional_id, &meta).await?;
        states.insert(transactional_id.to_string(), meta);
        Ok(())
    }

    /// Carries out a durable decision: markers in every partition, the
    /// staged offsets of every group, then the Complete* record.
    async fn finish(
        &self,
        logs: &LogManager,
        states: &mut BTreeMap<String, TxnMetadata>,
        transactional_id: &str,
        prepared: TxnMetadata,
    ) -> Result<TxnMetadata, StorageError> {
        let commit = prepared.state == TxnState::PrepareCommit;
        write_markers(logs, &prepared, commit).await?;
        for group in &prepared.groups {
            self.offsets
                .complete_txn(prepared.producer_id, group, commit)
                .await?;
        }
        let completed = state::complete(&prepared, now_ms());
        // Not waited for: a crash that loses it leaves the durable decision,
        // which the next start finishes again (see `txn::log`).
        self.log.write_unsynced(transactional_id, &completed)?;
        states.insert(transactional_id.to_string(), completed.clone());
        Ok(completed)
    }
}

/// Writes the decision's marker into every partition of the transaction and
/// waits until all are durable. A partition whose topic was deleted is
/// skipped; one whose producer moved to a newer epoch already had its
/// transaction ended by that epoch's markers.
async fn write_markers(
    logs: &LogManager,
    prepared: &TxnMetadata,
    commit: bool,
) -> Result<(), StorageError> {
    let marker = TxnMarker {
        producer_id: prepared.producer_id,
        producer_epoch: prepared.producer_epoch,
        commit,
        coordinator_epoch: 0,
    };
    let mut written: Vec<(Arc<crate::storage::PartitionLog>, i64)> =
        Vec::with_capacity(prepared.partitions.len());
    // A set already: each partition gets one marker.
    for (topic, partition) in &prepared.partitions {
        let Some(log) = logs.get(&TopicPartition::new(topic.as_str(), *partition))? else {
            continue;
        };
        match log.append_marker(marker) {
            Ok(outcome) => written.push((log, outcome.next_offset)),
            Err(error @ StorageError::InvalidProducerEpoch { .. }) => {
                tracing::warn!(partition = %log.name(), error = %error, "skipping a transaction marker older than the partition's producer epoch");
            }
            Err(error) => return Err(error),
        }
    }
    // The partitions' fdatasyncs run at once, each on the blocking pool.
    let syncs: Vec<_> = written
        .into_iter()
        .map(|(log, offset)| {
            let name = log.name().to_string();
            (
                name,
                tokio::task::spawn_blocking(move || log.make_durable(offset)),
            )
        })
        .collect();
    for (name, sync) in syncs {
        sync.await.map_err(|e| {
            StorageError::io("fdatasync", name, std::io::Error::other(e.to_string()))
        })??;
    }
    Ok(())
}
