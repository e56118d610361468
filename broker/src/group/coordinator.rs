//! The group coordinator: one tokio task owns every group's state machine
//! ([`crate::group::state`]); handlers talk to it through a [`Coordinator`]
//! handle (an mpsc channel, a oneshot reply per request).
//!
//! The task applies each request to its group, carries out the effects
//! (persist a generation, answer parked JoinGroups and SyncGroups) and keeps
//! one timer per group at the group's next deadline (session expiry, end of a
//! rebalance or of an initial-delay step), so nothing polls.
//!
//! Invariants:
//! - A new generation is made durable in the offsets store *before* any
//!   JoinGroup answer carrying it is sent, so generations never go backwards
//!   across a restart. If it cannot be stored, those answers become
//!   COORDINATOR_NOT_AVAILABLE and the group rebalances again.
//! - Group records and deletions are written inline (they are rare and must
//!   be ordered with the group's state); offset commits are validated inline
//!   and written on their own task, so commits from many consumers share
//!   fsyncs. A deletion (of a group, or of some of its offsets) first waits
//!   for every commit already validated, so a commit cannot land after the
//!   tombstones it was validated before.
//! - A group with no members and nothing pending is dropped from memory: the
//!   store holds everything about it, and it is restored from there (one
//!   generation above the persisted one) when it is next used.
//! - On shutdown every parked request is answered NOT_COORDINATOR, so
//!   connections drain at once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, RwLock};
use tokio::time::Instant;

use crate::config::GroupConfig;
use crate::error::StorageError;
use crate::group::offset_delete::{protected, Protected};
use crate::group::offsets::{CommittedOffset, GroupRecord, OffsetStore};
use crate::group::state::{
    Effect, Group, GroupDescription, GroupError, GroupState, JoinRequest, Joined, Millis, Synced,
};

/// Requests waiting for the coordinator task; senders wait when it is full.
const QUEUE: usize = 1024;

/// Why a coordinator request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinatorError {
    /// The group protocol refused it.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// The offsets store failed to write.
    #[error("cannot store group data: {0}")]
    Storage(#[from] StorageError),
    /// The coordinator task has stopped (the broker is shutting down).
    #[error("the group coordinator has stopped")]
    Stopped,
    /// Refused by the ACLs before it reached the coordinator.
    #[error(transparent)]
    Unauthorized(#[from] crate::security::gatekeeper::Denied),
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer`), empty for groups that only store offsets.
    pub protocol_type: String,
    /// State.
    pub state: GroupState,
}

/// A parked request's reply channel.
#[derive(Debug)]
enum Waiter {
    Join(oneshot::Sender<Result<Joined, GroupError>>),
    Sync(oneshot::Sender<Result<Synced, GroupError>>),
}

type Reply<T> = oneshot::Sender<Result<T, CoordinatorError>>;

/// A SyncGroup as the coordinator gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// Member id.
    pub member_id: String,
    /// The member's generation.
    pub generation: i32,
    /// v5+: the protocol type the member expects.
    pub protocol_type: Option<String>,
    /// v5+: the protocol the member expects.
    pub protocol_name: Option<String>,
    /// The leader's assignment per member (empty from followers).
    pub assignments: Vec<(String, Bytes)>,
}

/// An OffsetCommit as the coordinator gets it (topics and partitions
/// already checked to exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRequest {
    /// Member id (empty for consumers outside group management).
    pub member_id: String,
    /// The member's generation (-1 outside group management).
    pub generation: i32,
    /// What to commit.
    pub offsets: Vec<(String, i32, CommittedOffset)>,
}

#[derive(Debug)]
enum Command {
    Join {
        group: String,
        request: JoinRequest,
        reply: oneshot::Sender<Result<Joined, GroupError>>,
    },
    Sync {
        group: String,
        request: SyncRequest,
        reply: oneshot::Sender<Result<Synced, GroupError>>,
    },
    Heartbeat {
        group: String,
        member_id: String,
        generation: i32,
        reply: Reply<()>,
    },
    Leave {
        group: String,
        members: Vec<String>,
        reply: Reply<Vec<Result<(), GroupError>>>,
    },
    Commit {
        group: String,
        request: CommitRequest,
        reply: Reply<()>,
    },
    ValidateMember {
        group: String,
        member_id: String,
        generation: i32,
        reply: Reply<()>,
    },
    Describe {
        groups: Vec<String>,
        reply: Reply<Vec<Option<GroupDescription>>>,
    },
    List {
        reply: Reply<Vec<ListedGroup>>,
    },
    Delete {
        groups: Vec<String>,
        reply: Reply<Vec<Result<(), CoordinatorError>>>,
    },
    DeleteOffsets {
        group: String,
        partitions: Vec<(String, i32)>,
        reply: Reply<Vec<Result<(), GroupError>>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The handle handlers use; cheap to clone.
#[derive(Debug, Clone)]
pub struct Coordinator {
    tx: mpsc::Sender<Command>,
}

impl Coordinator {
    /// Starts the coordinator task on the current tokio runtime.
    pub fn start(store: Arc<OffsetStore>, config: GroupConfig) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = Task {
            store,
            config,
            groups: HashMap::new(),
            timers: BTreeSet::new(),
            scheduled: HashMap::new(),
            started: Instant::now(),
            fence: Arc::new(RwLock::new(())),
        };
        tokio::spawn(task.run(rx));
        Self { tx }
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, CoordinatorError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| CoordinatorError::Stopped)?;
        rx.await.map_err(|_| CoordinatorError::Stopped)?
    }

    async fn call_group<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, GroupError>>) -> Command,
    ) -> Result<T, CoordinatorError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| CoordinatorError::Stopped)?;
        Ok(rx.await.map_err(|_| CoordinatorError::Stopped)??)
    }

    /// JoinGroup; returns once the rebalance completes (or at once when refused).
    pub async fn join(
        &self,
        group: String,
        request: JoinRequest,
    ) -> Result<Joined, CoordinatorError> {
        self.call_group(|reply| Command::Join {
            group,
            request,
            reply,
        })
        .await
    }

    /// SyncGroup; a follower's returns once the leader's assignment arrives.
    pub async fn sync(
        &self,
        group: String,
        request: SyncRequest,
    ) -> Result<Synced, CoordinatorError> {
        self.call_group(|reply| Command::Sync {
            group,
            request,
            reply,
        })
        .await
    }

    /// Heartbeat.
    pub async fn heartbeat(
        &self,
        group: String,
        member_id: String,
        generation: i32,
    ) -> Result<(), CoordinatorError> {
        self.call(|reply| Command::Heartbeat {
            group,
            member_id,
            generation,
            reply,
        })
        .await
    }

    /// LeaveGroup of several members; one result per member, in order.
    pub async fn leave(
        &self,
        group: String,
        members: Vec<String>,
    ) -> Result<Vec<Result<(), GroupError>>, CoordinatorError> {
        self.call(|reply| Command::Leave {
            group,
            members,
            reply,
        })
        .await
    }

    /// OffsetCommit: validated against the group, then durable when this returns.
    pub async fn commit(
        &self,
        group: String,
        request: CommitRequest,
    ) -> Result<(), CoordinatorError> {
        self.call(|reply| Command::Commit {
            group,
            request,
            reply,
        })
        .await
    }

    /// Checks that `member_id` of `generation` may commit for `group`, as
    /// OffsetCommit would, without committing (TxnOffsetCommit v3+ fences a
    /// zombie member's transactional commits this way, KIP-447).
    pub async fn validate_member(
        &self,
        group: String,
        member_id: String,
        generation: i32,
    ) -> Result<(), CoordinatorError> {
        self.call(|reply| Command::ValidateMember {
            group,
            member_id,
            generation,
            reply,
        })
        .await
    }

    /// DescribeGroups: `None` for a group that does not exist.
    pub async fn describe(
        &self,
        groups: Vec<String>,
    ) -> Result<Vec<Option<GroupDescription>>, CoordinatorError> {
        self.call(|reply| Command::Describe { groups, reply }).await
    }

    /// ListGroups: every group with members, a record or committed offsets.
    pub async fn list(&self) -> Result<Vec<ListedGroup>, CoordinatorError> {
        self.call(|reply| Command::List { reply }).await
    }

    /// DeleteGroups: each group must be empty; its offsets are deleted durably.
    pub async fn delete(
        &self,
        groups: Vec<String>,
    ) -> Result<Vec<Result<(), CoordinatorError>>, CoordinatorError> {
        self.call(|reply| Command::Delete { groups, reply }).await
    }

    /// OffsetDelete: forgets the group's committed offsets of `partitions`,
    /// durably, except those of topics its members still subscribe to (see
    /// `group::offset_delete`). One result per partition, in order; the
    /// whole call fails for an unknown group (GROUP_ID_NOT_FOUND), a
    /// non-empty group of another protocol (NON_EMPTY_GROUP) or a store
    /// that cannot write.
    pub async fn delete_offsets(
        &self,
        group: String,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<Result<(), GroupError>>, CoordinatorError> {
        self.call(|reply| Command::DeleteOffsets {
            group,
            partitions,
            reply,
        })
        .await
    }

    /// Stops the task, answering every parked request NOT_COORDINATOR.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// The coordinator task's state.
struct Task {
    store: Arc<OffsetStore>,
    config: GroupConfig,
    groups: HashMap<String, Group<Waiter>>,
    /// (deadline, group) for every group with a deadline.
    timers: BTreeSet<(Millis, String)>,
    /// The entry each group has in `timers`.
    scheduled: HashMap<String, Millis>,
    started: Instant,
    /// Commits hold it shared while they write; deletions exclusively.
    fence: Arc<RwLock<()>>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            let next = self.timers.first().map(|(at, _)| *at);
            let wake = self.started + Duration::from_millis(next.unwrap_or(0));
            tokio::select! {
                command = rx.recv() => match command {
                    Some(Command::Shutdown { reply }) => {
                        self.answer_all_not_coordinator();
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.handle(command).await,
                    None => return,
                },
                _ = tokio::time::sleep_until(wake), if next.is_some() => self.fire_timers().await,
            }
        }
    }

    fn now(&self) -> Millis {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The group, loaded from the store (or new) if not in memory.
    fn group_mut(&mut self, id: &str) -> &mut Group<Waiter> {
        let (store, config) = (&self.store, &self.config);
        self.groups
            .entry(id.to_string())
            .or_insert_with(|| match store.group(id) {
                Some(record) => {
                    Group::restored(config.clone(), record.generation, record.protocol_type)
                }
                None => Group::new(config.clone()),
            })
    }

    async fn handle(&mut self, command: Command) {
        let now = self.now();
        match command {
            Command::Join {
                group,
                request,
                reply,
            } => {
                self.group_mut(&group)
                    .join(request, Waiter::Join(reply), now);
                self.settle(&group).await;
            }
            Command::Sync {
                group,
                request,
                reply,
            } => {
                self.group_mut(&group).sync(
                    &request.member_id,
                    request.generation,
                    request.protocol_type.as_deref(),
                    request.protocol_name.as_deref(),
                    request.assignments,
                    Waiter::Sync(reply),
                    now,
                );
                self.settle(&group).await;
            }
            Command::Heartbeat {
                group,
                member_id,
                generation,
                reply,
            } => {
                let result = self
                    .group_mut(&group)
                    .heartbeat(&member_id, generation, now);
                self.settle(&group).await;
                let _ = reply.send(result.map_err(CoordinatorError::from));
            }
            Command::Leave {
                group,
                members,
                reply,
            } => {
                let state = self.group_mut(&group);
                let results = members.iter().map(|m| state.leave(m, now)).collect();
                self.settle(&group).await;
                let _ = reply.send(Ok(results));
            }
            Command::ValidateMember {
                group,
                member_id,
                generation,
                reply,
            } => {
                let valid = self
                    .group_mut(&group)
                    .validate_commit(&member_id, generation, now);
                self.settle(&group).await;
                let _ = reply.send(valid.map_err(CoordinatorError::from));
            }
            Command::Commit {
                group,
                request,
                reply,
            } => {
                let valid = self.group_mut(&group).validate_commit(
                    &request.member_id,
                    request.generation,
                    now,
                );
                self.settle(&group).await;
                if let Err(error) = valid {
                    let _ = reply.send(Err(error.into()));
                    return;
                }
                // Taken here, in order with deletions; never contended here
                // because only this task takes the fence exclusively.
                let Ok(guard) = Arc::clone(&self.fence).try_read_owned() else {
                    let _ = reply.send(Err(CoordinatorError::Stopped));
                    return;
                };
                let store = Arc::clone(&self.store);
                tokio::spawn(async move {
                    let result = store.commit(&group, request.offsets).await;
                    drop(guard);
                    if let Err(error) = &result {
                        tracing::error!(group = %group, error = %error, "cannot store committed offsets");
                    }
                    let _ = reply.send(result.map_err(CoordinatorError::from));
                });
            }
            Command::Describe { groups, reply } => {
                let described = groups.iter().map(|g| self.describe(g)).collect();
                let _ = reply.send(Ok(described));
            }
            Command::List { reply } => {
                let _ = reply.send(Ok(self.list()));
            }
            Command::Delete { groups, reply } => {
                let mut results = Vec::with_capacity(groups.len());
                for group in groups {
                    results.push(self.delete(&group).await);
                }
                let _ = reply.send(Ok(results));
            }
            Command::DeleteOffsets {
                group,
                partitions,
                reply,
            } => {
                let result = self.delete_offsets(&group, partitions).await;
                let _ = reply.send(result);
            }
            Command::Shutdown { reply } => {
                // Handled in `run`; kept total.
                let _ = reply.send(());
            }
        }
    }

    async fn fire_timers(&mut self) {
        let now = self.now();
        let due: Vec<String> = self
            .timers
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, group)| group.clone())
            .collect();
        for group in due {
            if let Some(state) = self.groups.get_mut(&group) {
                state.tick(now);
            }
            self.settle(&group).await;
        }
    }

    /// Carries out a group's effects in order, then reschedules its timer
    /// (or drops it from memory when idle).
    async fn settle(&mut self, group_id: &str) {
        while let Some(group) = self.groups.get_mut(group_id) {
            let effects = group.take_effects();
            if effects.is_empty() {
                break;
            }
            let mut unpersisted: Option<i32> = None;
            for effect in effects {
                match effect {
                    Effect::Persist(persist) => {
                        let members = self.groups.get(group_id).map_or(0, Group::member_count);
                        tracing::info!(group = %group_id, generation = persist.generation, members,
                            protocol = persist.protocol.as_deref().unwrap_or(""), "group rebalanced");
                        let record = GroupRecord {
                            generation: persist.generation,
                            protocol_type: persist.protocol_type.unwrap_or_default(),
                            protocol: persist.protocol,
                        };
                        if let Err(error) = self.store.save_group(group_id, record).await {
                            tracing::error!(group = %group_id, generation = persist.generation, error = %error,
                                "cannot persist the group's generation; its members must rejoin");
                            unpersisted = Some(persist.generation);
                        }
                    }
                    Effect::Join {
                        reply: Waiter::Join(reply),
                        outcome,
                    } => {
                        let outcome = match outcome {
                            Ok(joined) if Some(joined.generation_id) == unpersisted => {
                                Err(GroupError::CoordinatorNotAvailable(
                                    "the new generation could not be stored".to_string(),
                                ))
                            }
                            outcome => outcome,
                        };
                        let _ = reply.send(outcome);
                    }
                    Effect::Sync {
                        reply: Waiter::Sync(reply),
                        outcome,
                    } => {
                        let _ = reply.send(outcome);
                    }
                    // A token of the wrong kind cannot be produced (each
                    // request hands in its own); dropping it answers its
                    // handler COORDINATOR_NOT_AVAILABLE.
                    Effect::Join { .. } | Effect::Sync { .. } => {
                        tracing::error!(group = %group_id, "group effect with a mismatched reply");
                    }
                }
            }
            if unpersisted.is_some() {
                let now = self.now();
                if let Some(group) = self.groups.get_mut(group_id) {
                    group.force_rebalance(now);
                }
            }
        }
        self.reschedule(group_id);
    }

    fn reschedule(&mut self, group_id: &str) {
        if let Some(old) = self.scheduled.remove(group_id) {
            self.timers.remove(&(old, group_id.to_string()));
        }
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        match group.next_deadline() {
            Some(at) => {
                self.timers.insert((at, group_id.to_string()));
                self.scheduled.insert(group_id.to_string(), at);
            }
            None if group.is_idle() => {
                self.groups.remove(group_id);
            }
            None => {}
        }
    }

    fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        if let Some(group) = self.groups.get(group_id) {
            return Some(group.describe());
        }
        let record = self.store.group(group_id);
        if record.is_none() && self.store.group_offsets(group_id).is_empty() {
            return None;
        }
        Some(GroupDescription {
            state: GroupState::Empty,
            generation: record.as_ref().map_or(0, |r| r.generation),
            protocol_type: record.map(|r| r.protocol_type).unwrap_or_default(),
            protocol: String::new(),
            members: Vec::new(),
        })
    }

    fn list(&self) -> Vec<ListedGroup> {
        let mut ids: BTreeSet<String> = self.store.groups().into_iter().collect();
        ids.extend(self.groups.keys().cloned());
        ids.into_iter()
            .map(|id| match self.groups.get(&id) {
                Some(group) => ListedGroup {
                    protocol_type: group.protocol_type().unwrap_or_default().to_string(),
                    state: group.state(),
                    group_id: id,
                },
                None => ListedGroup {
                    protocol_type: self
                        .store
                        .group(&id)
                        .map(|r| r.protocol_type)
                        .unwrap_or_default(),
                    state: GroupState::Empty,
                    group_id: id,
                },
            })
            .collect()
    }

    async fn delete(&mut self, group_id: &str) -> Result<(), CoordinatorError> {
        if !self.exists(group_id) {
            return Err(GroupError::GroupIdNotFound.into());
        }
        if let Some(group) = self.groups.get_mut(group_id) {
            group.mark_dead()?;
        }
        // Wait for commits already validated: none may land after the tombstones.
        let fence = Arc::clone(&self.fence);
        let _exclusive = fence.write().await;
        let result = self.store.delete_group(group_id).await;
        // Dead groups hold nothing worth keeping; a later use starts afresh
        // from whatever the store still has.
        if let Some(mut group) = self.groups.remove(group_id) {
            drop(group.take_effects());
        }
        if let Some(old) = self.scheduled.remove(group_id) {
            self.timers.remove(&(old, group_id.to_string()));
        }
        match &result {
            Ok(()) => tracing::info!(group = %group_id, "group deleted"),
            Err(error) => {
                tracing::error!(group = %group_id, error = %error, "cannot delete the group's offsets")
            }
        }
        Ok(result?)
    }

    async fn delete_offsets(
        &mut self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<Result<(), GroupError>>, CoordinatorError> {
        if !self.exists(group_id) {
            return Err(GroupError::GroupIdNotFound.into());
        }
        // A group not in memory is Empty (it is dropped once idle).
        let kept = match self.groups.get(group_id) {
            Some(group) => protected(group)?,
            None => Protected::Nothing,
        };
        let mut deletable = Vec::new();
        let results = partitions
            .into_iter()
            .map(|(topic, partition)| {
                if kept.covers(&topic) {
                    Err(GroupError::SubscribedToTopic(topic))
                } else {
                    deletable.push((topic, partition));
                    Ok(())
                }
            })
            .collect();
        // Wait for commits already validated: none may land after the tombstones.
        let fence = Arc::clone(&self.fence);
        let _exclusive = fence.write().await;
        if let Err(error) = self.store.delete_offsets(group_id, &deletable).await {
            tracing::error!(group = %group_id, error = %error, "cannot delete the group's offsets");
            return Err(error.into());
        }
        if !deletable.is_empty() {
            tracing::info!(group = %group_id, partitions = ?deletable, "committed offsets deleted");
        }
        Ok(results)
    }

    /// True when the group is in memory, has a record or committed offsets.
    fn exists(&self, group_id: &str) -> bool {
        self.groups.contains_key(group_id)
            || self.store.group(group_id).is_some()
            || !self.store.group_offsets(group_id).is_empty()
    }

    /// Shutdown: every parked JoinGroup and SyncGroup is answered
    /// NOT_COORDINATOR (clients look for the coordinator again).
    fn answer_all_not_coordinator(&mut self) {
        for (_, mut group) in self.groups.drain() {
            drop(group.take_effects());
            for waiter in group.drain_waiters() {
                match waiter {
                    Waiter::Join(reply) => {
                        let _ = reply.send(Err(GroupError::NotCoordinator));
                    }
                    Waiter::Sync(reply) => {
                        let _ = reply.send(Err(GroupError::NotCoordinator));
                    }
                }
            }
        }
        self.timers.clear();
        self.scheduled.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::config::LogConfig;
    use crate::storage::log_manager::LogManager;

    fn open(dir: &std::path::Path) -> (LogManager, Arc<OffsetStore>) {
        let logs = LogManager::open(dir, LogConfig::default(), |_| {
            OffsetStore::log_config(&LogConfig::default())
        })
        .unwrap();
        let store = Arc::new(OffsetStore::open(&logs, &LogConfig::default()).unwrap());
        (logs, store)
    }

    fn config() -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            min_session_timeout_ms: 10,
            ..GroupConfig::default()
        }
    }

    fn join(member_id: &str, session_timeout_ms: i32) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_string(),
            new_member_id: format!("member-{}", uuid::Uuid::new_v4()),
            client_id: "test".to_string(),
            client_host: String::new(),
            session_timeout_ms,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".to_string(),
            protocols: vec![("range".to_string(), Bytes::from_static(b"meta"))],
            require_known_member_id: false,
        }
    }

    fn offset(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp: 1,
        }
    }

    fn group_error<T: std::fmt::Debug>(result: Result<T, CoordinatorError>) -> GroupError {
        match result {
            Err(CoordinatorError::Group(error)) => error,
            other => panic!("expected a group error, got {other:?}"),
        }
    }

    /// One member joins and syncs; returns its id and generation.
    async fn stable_member(coordinator: &Coordinator, group: &str) -> (String, i32) {
        let joined = coordinator
            .join(group.to_string(), join("", 10_000))
            .await
            .unwrap();
        let synced = coordinator
            .sync(
                group.to_string(),
                SyncRequest {
                    member_id: joined.member_id.clone(),
                    generation: joined.generation_id,
                    protocol_type: None,
                    protocol_name: None,
                    assignments: vec![(joined.member_id.clone(), Bytes::from_static(b"all"))],
                },
            )
            .await
            .unwrap();
        assert_eq!(synced.assignment, Bytes::from_static(b"all"));
        (joined.member_id, joined.generation_id)
    }

    #[tokio::test]
    async fn given_restart_then_members_from_before_get_illegal_generation_and_generations_grow() {
        let dir = tempfile::tempdir().unwrap();
        let (member, generation) = {
            let (_logs, store) = open(dir.path());
            let coordinator = Coordinator::start(Arc::clone(&store), config());
            let stable = stable_member(&coordinator, "g").await;
            coordinator.shutdown().await;
            stable
        };
        assert_eq!(generation, 1);
        let (_logs, store) = open(dir.path());
        assert_eq!(store.group("g").map(|r| r.generation), Some(1));
        let coordinator = Coordinator::start(Arc::clone(&store), config());
        assert!(matches!(
            group_error(
                coordinator
                    .heartbeat("g".into(), member.clone(), generation)
                    .await
            ),
            GroupError::IllegalGeneration { got: 1, .. }
        ));
        let stale_commit = CommitRequest {
            member_id: member.clone(),
            generation,
            offsets: vec![("t".to_string(), 0, offset(5))],
        };
        assert!(matches!(
            group_error(coordinator.commit("g".into(), stale_commit).await),
            GroupError::IllegalGeneration { .. }
        ));
        assert_eq!(
            store.fetch("g", "t", 0),
            None,
            "a stale commit is not stored"
        );
        let (_, next) = stable_member(&coordinator, "g").await;
        assert!(next > generation, "{next} > {generation}");
        assert_eq!(store.group("g").map(|r| r.generation), Some(next));
    }

    #[tokio::test]
    async fn given_member_stops_heartbeating_then_session_timer_removes_it_and_group_goes_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (_logs, store) = open(dir.path());
        let coordinator = Coordinator::start(Arc::clone(&store), config());
        let joined = coordinator.join("g".into(), join("", 50)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let described = coordinator.describe(vec!["g".into()]).await.unwrap();
        assert_eq!(
            described[0].as_ref().map(|d| d.state),
            Some(GroupState::Empty)
        );
        assert!(matches!(
            group_error(
                coordinator
                    .heartbeat("g".into(), joined.member_id, joined.generation_id)
                    .await
            ),
            GroupError::IllegalGeneration { .. }
        ));
    }

    #[tokio::test]
    async fn given_parked_join_when_coordinator_shuts_down_then_it_is_answered_not_coordinator() {
        let dir = tempfile::tempdir().unwrap();
        let (_logs, store) = open(dir.path());
        let coordinator = Coordinator::start(Arc::clone(&store), config());
        stable_member(&coordinator, "g").await;
        // A second member waits for the first to rejoin, which never happens.
        let second = {
            let coordinator = coordinator.clone();
            tokio::spawn(async move { coordinator.join("g".into(), join("", 10_000)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        coordinator.shutdown().await;
        let answer = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(group_error(answer), GroupError::NotCoordinator);
        assert!(matches!(
            coordinator.list().await,
            Err(CoordinatorError::Stopped)
        ));
    }

    #[tokio::test]
    async fn given_offsets_only_group_then_commit_describe_list_and_delete_work() {
        let dir = tempfile::tempdir().unwrap();
        let (_logs, store) = open(dir.path());
        let coordinator = Coordinator::start(Arc::clone(&store), config());
        let commit = CommitRequest {
            member_id: String::new(),
            generation: -1,
            offsets: vec![("t".to_string(), 0, offset(42))],
        };
        coordinator.commit("simple".into(), commit).await.unwrap();
        assert_eq!(store.fetch("simple", "t", 0).map(|o| o.offset), Some(42));
        let described = coordinator
            .describe(vec!["simple".into(), "nope".into()])
            .await
            .unwrap();
        assert_eq!(
            described[0].as_ref().map(|d| d.state),
            Some(GroupState::Empty)
        );
        assert_eq!(described[1], None);
        let listed = coordinator.list().await.unwrap();
        assert_eq!(
            listed,
            vec![ListedGroup {
                group_id: "simple".to_string(),
                protocol_type: String::new(),
                state: GroupState::Empty,
            }]
        );
        let results = coordinator
            .delete(vec!["simple".into(), "nope".into()])
            .await
            .unwrap();
        assert!(results[0].is_ok());
        assert!(matches!(
            &results[1],
            Err(CoordinatorError::Group(GroupError::GroupIdNotFound))
        ));
        assert_eq!(store.fetch("simple", "t", 0), None);
        assert!(coordinator.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn given_offset_delete_then_subscribed_topics_are_kept_until_the_group_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (_logs, store) = open(dir.path());
        let coordinator = Coordinator::start(Arc::clone(&store), config());
        assert!(matches!(
            group_error(
                coordinator
                    .delete_offsets("nope".into(), vec![("t".into(), 0)])
                    .await
            ),
            GroupError::GroupIdNotFound
        ));
        // The member's metadata does not decode as a subscription: every topic is kept.
        let (member, generation) = stable_member(&coordinator, "g").await;
        let commit = CommitRequest {
            member_id: member.clone(),
            generation,
            offsets: vec![("t".to_string(), 0, offset(3))],
        };
        coordinator.commit("g".into(), commit).await.unwrap();
        let results = coordinator
            .delete_offsets("g".into(), vec![("t".into(), 0)])
            .await
            .unwrap();
        assert_eq!(
            results,
            vec![Err(GroupError::SubscribedToTopic("t".into()))]
        );
        assert_eq!(store.fetch("g", "t", 0).map(|o| o.offset), Some(3));
        coordinator.leave("g".into(), vec![member]).await.unwrap();
        let results = coordinator
            .delete_offsets("g".into(), vec![("t".into(), 0), ("t".into(), 1)])
            .await
            .unwrap();
        assert_eq!(results, vec![Ok(()), Ok(())]);
        assert_eq!(store.fetch("g", "t", 0), None);
    }

    #[tokio::test]
    async fn given_group_with_members_then_delete_is_refused_and_group_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let (_logs, store) = open(dir.path());
        let coordinator = Coordinator::start(Arc::clone(&store), config());
        let (member, generation) = stable_member(&coordinator, "g").await;
        let results = coordinator.delete(vec!["g".into()]).await.unwrap();
        assert!(matches!(
            &results[0],
            Err(CoordinatorError::Group(GroupError::NonEmptyGroup))
        ));
        coordinator
            .heartbeat("g".into(), member, generation)
            .await
            .unwrap();
    }
}
