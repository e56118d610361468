//! The classic consumer-group protocol as a pure state machine (raft-rs
//! style): every request and every timer is an event applied to a [`Group`]
//! with the current time passed in, and what must happen outside (answer a
//! parked JoinGroup or SyncGroup, persist a new generation) comes back as
//! [`Effect`]s from [`Group::take_effects`]. No I/O, no clock, no randomness:
//! member ids are minted by the caller and handed in with the join.
//!
//! States, as Kafka runs them:
//! - `Empty`: no members (committed offsets may still exist).
//! - `PreparingRebalance`: members are (re)joining; JoinGroup answers are
//!   held until every known member has rejoined or the rebalance timeout (the
//!   largest of the members') passes, when the members that did not rejoin
//!   are removed. A group leaving `Empty` first waits the initial rebalance
//!   delay, extended (within the rebalance timeout) while new members keep
//!   arriving, so members that start together land in one generation.
//! - `CompletingRebalance`: the new generation exists; the leader (the
//!   earliest joiner still present) got every member's metadata and computes
//!   the assignment; followers' SyncGroups are held until the leader's
//!   SyncGroup brings it.
//! - `Stable`: every member has its assignment and heartbeats.
//! - `Dead`: the group is being deleted.
//!
//! Invariants:
//! - The generation only grows. Each new generation is announced by an
//!   [`Effect::Persist`] *before* the JoinGroup answers that carry it; the
//!   caller must make it durable before sending them. A group restored after
//!   a restart starts one above its persisted generation, so every member
//!   from before the restart is stale.
//! - Every reply token handed in is handed back exactly once, in an effect
//!   (or dropped with the group).
//! - The members always share a protocol: a join is refused
//!   (INCONSISTENT_GROUP_PROTOCOL) unless one of its protocols is supported
//!   by every member.
//!
//! Choices where Kafka leaves room (or where this differs from it):
//! - JoinGroup v4+ with an empty member id gets MEMBER_ID_REQUIRED with a
//!   fresh id, as Kafka does (KIP-394), and the id is reserved ("pending")
//!   for one session timeout; older versions join at once.
//! - `group.instance.id` (static membership) is ignored: every member is
//!   dynamic.
//! - A request from an unknown member whose generation is older than the
//!   group's gets ILLEGAL_GENERATION (Kafka says UNKNOWN_MEMBER_ID): its
//!   generation is what makes it stale, notably for members from before a
//!   restart. Either way the client rejoins.
//! - A member's session is not checked while it has a JoinGroup or SyncGroup
//!   parked (Kafka's keep-alive rule). The rebalance timeout bounds both
//!   phases instead: members that have not rejoined when it ends are
//!   removed, and so are members that have not sent SyncGroup within it
//!   after the join answers (Kafka 3's pending-sync timeout), so a leader
//!   that heartbeats but never assigns cannot stall its group.
//! - A parked JoinGroup or SyncGroup superseded by another from the same
//!   member is answered REBALANCE_IN_PROGRESS rather than left unanswered
//!   (a connection answers in order, so an unanswered request would block it).
//! - The initial delay is extended by any member arriving during it, not
//!   only in the group's first generation as in Kafka.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::config::GroupConfig;

/// Milliseconds on the caller's monotonic clock.
pub type Millis = u64;

/// Where a group is in the classic protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Being deleted.
    Dead,
}

impl GroupState {
    /// The name Kafka uses in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// Why a group request was refused. Each maps to one Kafka error code
/// (`protocol/errors.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The group id is empty.
    #[error("the group id must not be empty")]
    InvalidGroupId,
    /// A JoinGroup v4+ without a member id: rejoin with this one.
    #[error("rejoin with the member id {0}")]
    MemberIdRequired(String),
    /// The member is not (or no longer) in the group.
    #[error("member {0:?} is not in the group")]
    UnknownMemberId(String),
    /// The request's generation is not the group's.
    #[error("generation {got} is not the group's current generation {current}")]
    IllegalGeneration {
        /// Generation in the request.
        got: i32,
        /// The group's generation.
        current: i32,
    },
    /// The group is rebalancing; the member must rejoin.
    #[error("the group is rebalancing; rejoin")]
    RebalanceInProgress,
    /// The member's protocols do not fit the group's.
    #[error("inconsistent group protocol: {0}")]
    InconsistentGroupProtocol(String),
    /// The session timeout is outside the broker's bounds.
    #[error("session timeout {requested} ms is outside [{min}, {max}] ms")]
    InvalidSessionTimeout {
        /// Requested timeout.
        requested: i32,
        /// Lowest allowed.
        min: i32,
        /// Highest allowed.
        max: i32,
    },
    /// The group already has the most members allowed.
    #[error("the group already has {0} members, the most allowed")]
    GroupMaxSizeReached(usize),
    /// The coordinator cannot serve the group right now (being deleted,
    /// storage failed); the client retries.
    #[error("the group coordinator is not available: {0}")]
    CoordinatorNotAvailable(String),
    /// DeleteGroups of a group that has members.
    #[error("the group has members")]
    NonEmptyGroup,
    /// The group does not exist.
    #[error("the group does not exist")]
    GroupIdNotFound,
    /// OffsetDelete of a topic the group's members still subscribe to.
    #[error("the group is subscribed to topic {0}; its offsets cannot be deleted while it is")]
    SubscribedToTopic(String),
    /// The coordinator is shutting down; the client finds it again.
    #[error("this broker is shutting down and no longer coordinates the group")]
    NotCoordinator,
}

/// A JoinGroup as the state machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// The member's id; empty for a member joining for the first time.
    pub member_id: String,
    /// The id given to a first-time member (the caller mints unique ids, e.g.
    /// `client_id-uuid`); ignored when `member_id` is set.
    pub new_member_id: String,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address, for DescribeGroups.
    pub client_host: String,
    /// Session timeout, ms.
    pub session_timeout_ms: i32,
    /// Rebalance timeout, ms (JoinGroup v0 has none: pass the session timeout).
    pub rebalance_timeout_ms: i32,
    /// `consumer` for Kafka consumers.
    pub protocol_type: String,
    /// Supported protocols (assignors) in order of preference, with metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a member without an id gets MEMBER_ID_REQUIRED first.
    pub require_known_member_id: bool,
}

/// A successful JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The new generation.
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: String,
    /// The chosen protocol.
    pub protocol_name: String,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol (the leader
    /// only; empty for followers).
    pub members: Vec<(String, Bytes)>,
}

/// A successful SyncGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    /// The group's protocol type.
    pub protocol_type: String,
    /// The chosen protocol.
    pub protocol_name: String,
    /// This member's assignment, as the leader wrote it.
    pub assignment: Bytes,
}

/// The group record to make durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persist {
    /// The generation just created.
    pub generation: i32,
    /// The group's protocol type, if it has one.
    pub protocol_type: Option<String>,
    /// The chosen protocol (none when the group is empty).
    pub protocol: Option<String>,
}

/// Something the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<R> {
    /// Make this record durable before carrying out the effects after it
    /// (the JoinGroup answers of the generation).
    Persist(Persist),
    /// Answer a JoinGroup.
    Join {
        /// The request's reply token.
        reply: R,
        /// The answer.
        outcome: Result<Joined, GroupError>,
    },
    /// Answer a SyncGroup.
    Sync {
        /// The request's reply token.
        reply: R,
        /// The answer.
        outcome: Result<Synced, GroupError>,
    },
}

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the chosen protocol (empty unless Stable).
    pub metadata: Bytes,
    /// Assignment (empty unless Stable).
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// State.
    pub state: GroupState,
    /// Generation.
    pub generation: i32,
    /// Protocol type, empty if none.
    pub protocol_type: String,
    /// Chosen protocol, empty unless Stable (as Kafka).
    pub protocol: String,
    /// Members in join order.
    pub members: Vec<MemberDescription>,
}

#[derive(Debug)]
struct Member<R> {
    /// Join order: the leader is the earliest joiner present.
    seq: u64,
    client_id: String,
    client_host: String,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    /// When the session expires unless a heartbeat comes first.
    session_deadline: Millis,
    join_reply: Option<R>,
    sync_reply: Option<R>,
}

impl<R> Member<R> {
    /// Kafka's keep-alive: a member with a parked request is not expired.
    fn kept_alive(&self) -> bool {
        self.join_reply.is_some() || self.sync_reply.is_some()
    }

    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    fn refresh_session(&mut self, now: Millis) {
        self.session_deadline = now.saturating_add(self.session_timeout_ms);
    }
}

/// The timer of a PreparingRebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rebalance {
    /// When the join phase (or the current initial-delay step) ends.
    deadline: Millis,
    /// Set while in the initial delay after leaving Empty.
    initial: Option<InitialDelay>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InitialDelay {
    /// Rebalance time left after the current step.
    remaining_ms: u64,
    /// A member arrived during the current step.
    new_member_added: bool,
}

/// One consumer group. `R` is the caller's reply token for parked requests.
#[derive(Debug)]
pub struct Group<R> {
    config: GroupConfig,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member<R>>,
    /// Ids handed out with MEMBER_ID_REQUIRED, until their session timeout.
    pending: BTreeMap<String, Millis>,
    rebalance: Option<Rebalance>,
    /// In CompletingRebalance: members that have not sent SyncGroup by then
    /// are removed (the rebalance timeout, counted from the join answers).
    sync_deadline: Option<Millis>,
    next_seq: u64,
    effects: Vec<Effect<R>>,
}

impl<R> Group<R> {
    /// A group that never existed: Empty, generation 0.
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            rebalance: None,
            sync_deadline: None,
            next_seq: 0,
            effects: Vec::new(),
        }
    }

    /// A group loaded after a restart: Empty, one generation above the last
    /// persisted one, so every member from before the restart is stale.
    pub fn restored(config: GroupConfig, persisted_generation: i32, protocol_type: String) -> Self {
        let mut group = Self::new(config);
        group.generation = persisted_generation.saturating_add(1).max(0);
        group.protocol_type = Some(protocol_type).filter(|t| !t.is_empty());
        group
    }

    /// The current state.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// The current generation.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// The protocol type, once a member has joined.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// The chosen protocol of the current generation.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The leader's member id.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// How many members the group has.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Member ids, sorted.
    pub fn member_ids(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    /// Every member's metadata for the chosen protocol (a consumer's
    /// subscription), in member-id order; `None` until a protocol is chosen.
    pub fn subscription_metadata(&self) -> Option<Vec<Bytes>> {
        let protocol = self.protocol.as_deref()?;
        Some(
            self.members
                .values()
                .map(|m| m.metadata(protocol))
                .collect(),
        )
    }

    /// True when the group has no members and nothing pending: it holds no
    /// state beyond what the store has, and may be dropped from memory.
    pub fn is_idle(&self) -> bool {
        self.state == GroupState::Empty && self.members.is_empty() && self.pending.is_empty()
    }

    /// The effects produced since the last call, in order.
    pub fn take_effects(&mut self) -> Vec<Effect<R>> {
        std::mem::take(&mut self.effects)
    }

    /// The earliest time [`Group::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        let rebalance = self
            .rebalance
            .filter(|_| self.state == GroupState::PreparingRebalance)
            .map(|r| r.deadline);
        let sync = self
            .sync_deadline
            .filter(|_| self.state == GroupState::CompletingRebalance);
        let pending = self.pending.values().copied().min();
        let sessions = self
            .members
            .values()
            .filter(|m| !m.kept_alive())
            .map(|m| m.session_deadline)
            .min();
        [rebalance, sync, pending, sessions]
            .into_iter()
            .flatten()
            .min()
    }

    /// Applies the timers due at `now`: expired pending ids and sessions,
    /// the end of an initial-delay step, the rebalance deadline.
    pub fn tick(&mut self, now: Millis) {
        if self.state == GroupState::Dead {
            return;
        }
        let expired_pending: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, &deadline)| deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired_pending {
            self.pending.remove(&id);
        }
        // One at a time: removing a member can change who is kept alive.
        while let Some(id) = self
            .members
            .iter()
            .find(|(_, m)| !m.kept_alive() && m.session_deadline <= now)
            .map(|(id, _)| id.clone())
        {
            self.remove_member(&id, now);
        }
        if self.state == GroupState::CompletingRebalance
            && self.sync_deadline.is_some_and(|deadline| deadline <= now)
        {
            // Whoever has not sent SyncGroup by now (typically a leader that
            // never assigns) is removed; the rest rebalance without it.
            let silent: Vec<String> = self
                .members
                .iter()
                .filter(|(_, m)| m.sync_reply.is_none())
                .map(|(id, _)| id.clone())
                .collect();
            for id in silent {
                self.remove_member(&id, now);
            }
        }
        // Loop: a late tick may be past several initial-delay steps.
        while let Some(rebalance) = self
            .rebalance
            .filter(|r| r.deadline <= now && self.state == GroupState::PreparingRebalance)
        {
            match rebalance.initial {
                Some(initial) if initial.new_member_added && initial.remaining_ms > 0 => {
                    let step = self
                        .config
                        .initial_rebalance_delay_ms
                        .min(initial.remaining_ms);
                    self.rebalance = Some(Rebalance {
                        deadline: rebalance.deadline.saturating_add(step),
                        initial: Some(InitialDelay {
                            remaining_ms: initial.remaining_ms - step,
                            new_member_added: false,
                        }),
                    });
                }
                _ => self.complete_join(now),
            }
        }
        self.maybe_complete_join(now);
    }

    /// JoinGroup. The answer comes as an [`Effect::Join`] for `reply`: at
    /// once for a refusal or a member whose join changes nothing, else when
    /// the rebalance completes.
    pub fn join(&mut self, request: JoinRequest, reply: R, now: Millis) {
        if let Err(error) = self.check_join(&request) {
            return self.answer_join(reply, Err(error));
        }
        if request.member_id.is_empty() {
            return self.join_new_member(request, reply, now);
        }
        if self.pending.remove(&request.member_id).is_some() {
            let id = request.member_id.clone();
            return self.add_member_and_rebalance(id, request, reply, now);
        }
        let Some(member) = self.members.get(&request.member_id) else {
            return self.answer_join(reply, Err(GroupError::UnknownMemberId(request.member_id)));
        };
        let unchanged = member.protocols == request.protocols;
        let is_leader = self.leader.as_deref() == Some(request.member_id.as_str());
        match self.state {
            GroupState::CompletingRebalance if unchanged => {
                // Most likely the member missed the answer: repeat it.
                let members = if is_leader {
                    self.current_member_metadata()
                } else {
                    Vec::new()
                };
                let joined = self.joined(&request.member_id, members);
                self.answer_join(reply, Ok(joined));
            }
            // A follower rejoining unchanged learns the current generation
            // and syncs; the leader rejoining always rebalances (it may have
            // seen a change the metadata does not show, such as new partitions).
            GroupState::Stable if unchanged && !is_leader => {
                let joined = self.joined(&request.member_id, Vec::new());
                self.answer_join(reply, Ok(joined));
            }
            _ => self.update_member_and_rebalance(request, reply, now),
        }
    }

    /// SyncGroup. The answer comes as an [`Effect::Sync`] for `reply`: held
    /// for followers until the leader's SyncGroup brings the assignment.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        reply: R,
        now: Millis,
    ) {
        if let Err(error) = self.check_member(member_id, generation) {
            return self.answer_sync(reply, Err(error));
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|p| Some(p) != self.protocol.as_deref())
        {
            return self.answer_sync(
                reply,
                Err(GroupError::InconsistentGroupProtocol(format!(
                    "the group's protocol is {:?}/{:?}",
                    self.protocol_type, self.protocol
                ))),
            );
        }
        match self.state {
            GroupState::PreparingRebalance => {
                self.answer_sync(reply, Err(GroupError::RebalanceInProgress))
            }
            GroupState::Stable => {
                let assignment = match self.members.get_mut(member_id) {
                    Some(member) => {
                        member.refresh_session(now);
                        member.assignment.clone()
                    }
                    None => Bytes::new(),
                };
                let synced = self.synced(assignment);
                self.answer_sync(reply, Ok(synced));
            }
            GroupState::CompletingRebalance => {
                let Some(member) = self.members.get_mut(member_id) else {
                    return self.answer_sync(
                        reply,
                        Err(GroupError::UnknownMemberId(member_id.to_string())),
                    );
                };
                if let Some(old) = member.sync_reply.replace(reply) {
                    self.effects.push(Effect::Sync {
                        reply: old,
                        outcome: Err(GroupError::RebalanceInProgress),
                    });
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut by_member: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                    for (id, member) in self.members.iter_mut() {
                        member.assignment = by_member.remove(id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    self.propagate_assignments(now);
                }
            }
            // Not reachable: check_member refuses for Empty (no members) and Dead.
            GroupState::Empty | GroupState::Dead => self.answer_sync(
                reply,
                Err(GroupError::UnknownMemberId(member_id.to_string())),
            ),
        }
    }

    /// Heartbeat: keeps the member's session alive; REBALANCE_IN_PROGRESS
    /// tells it to rejoin.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        generation: i32,
        now: Millis,
    ) -> Result<(), GroupError> {
        self.check_member(member_id, generation)?;
        if let Some(member) = self.members.get_mut(member_id) {
            member.refresh_session(now);
        }
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::Stable | GroupState::CompletingRebalance => Ok(()),
            GroupState::Empty | GroupState::Dead => {
                Err(GroupError::UnknownMemberId(member_id.to_string()))
            }
        }
    }

    /// LeaveGroup of one member (or of an id handed out with
    /// MEMBER_ID_REQUIRED that never joined).
    pub fn leave(&mut self, member_id: &str, now: Millis) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(dead());
        }
        if self.pending.remove(member_id).is_some() {
            self.maybe_complete_join(now);
            return Ok(());
        }
        if !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId(member_id.to_string()));
        }
        self.remove_member(member_id, now);
        Ok(())
    }

    /// Checks an OffsetCommit before it is written: an Empty group accepts
    /// commits with a negative generation (consumers that only store
    /// offsets); otherwise the member and its generation must be current,
    /// and not in the middle of CompletingRebalance. A valid commit counts as
    /// a heartbeat.
    pub fn validate_commit(
        &mut self,
        member_id: &str,
        generation: i32,
        now: Millis,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(dead());
        }
        if generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        self.check_member(member_id, generation)?;
        match self.state {
            GroupState::CompletingRebalance => Err(GroupError::RebalanceInProgress),
            _ => {
                if let Some(member) = self.members.get_mut(member_id) {
                    member.refresh_session(now);
                }
                Ok(())
            }
        }
    }

    /// Marks the group Dead for DeleteGroups; refused unless it is Empty.
    pub fn mark_dead(&mut self) -> Result<(), GroupError> {
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                self.state = GroupState::Dead;
                self.rebalance = None;
                self.pending.clear();
                Ok(())
            }
            _ => Err(GroupError::NonEmptyGroup),
        }
    }

    /// Starts a rebalance whatever the state (the caller could not persist
    /// the current generation: its members must rejoin into a new one).
    pub fn force_rebalance(&mut self, now: Millis) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance
        ) {
            self.prepare_rebalance(now);
            self.maybe_complete_join(now);
        }
    }

    /// Takes every parked reply token, for the caller to answer (shutdown).
    pub fn drain_waiters(&mut self) -> Vec<R> {
        let mut waiters = Vec::new();
        for member in self.members.values_mut() {
            waiters.extend(member.join_reply.take());
            waiters.extend(member.sync_reply.take());
        }
        waiters
    }

    /// The group as DescribeGroups shows it: metadata, assignments and the
    /// protocol only when Stable, as Kafka does.
    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol.clone().filter(|_| stable).unwrap_or_default();
        let mut members: Vec<(&String, &Member<R>)> = self.members.iter().collect();
        members.sort_by_key(|(_, m)| m.seq);
        GroupDescription {
            state: self.state,
            generation: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            members: members
                .into_iter()
                .map(|(id, m)| MemberDescription {
                    member_id: id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
            protocol,
        }
    }

    // ---- internals ----

    fn check_join(&self, request: &JoinRequest) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(dead());
        }
        let (min, max) = (
            self.config.min_session_timeout_ms,
            self.config.max_session_timeout_ms,
        );
        if !(min..=max).contains(&request.session_timeout_ms) {
            return Err(GroupError::InvalidSessionTimeout {
                requested: request.session_timeout_ms,
                min,
                max,
            });
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return Err(GroupError::InconsistentGroupProtocol(
                "a member must name a protocol type and at least one protocol".to_string(),
            ));
        }
        if self.members.is_empty() {
            return Ok(());
        }
        if self.protocol_type.as_deref() != Some(request.protocol_type.as_str()) {
            return Err(GroupError::InconsistentGroupProtocol(format!(
                "the group's protocol type is {:?}, not {:?}",
                self.protocol_type.as_deref().unwrap_or_default(),
                request.protocol_type
            )));
        }
        let everyone = self.members.len();
        let shared = request.protocols.iter().any(|(name, _)| {
            self.members.values().filter(|m| m.supports(name)).count() == everyone
        });
        if !shared {
            let names: Vec<&str> = request.protocols.iter().map(|(n, _)| n.as_str()).collect();
            return Err(GroupError::InconsistentGroupProtocol(format!(
                "none of {names:?} is supported by every member of the group"
            )));
        }
        Ok(())
    }

    fn join_new_member(&mut self, request: JoinRequest, reply: R, now: Millis) {
        if self.members.len() + self.pending.len() >= self.config.max_members {
            return self.answer_join(
                reply,
                Err(GroupError::GroupMaxSizeReached(self.config.max_members)),
            );
        }
        let id = request.new_member_id.clone();
        if self.members.contains_key(&id) || self.pending.contains_key(&id) {
            // The caller mints unique ids; never let one member replace another.
            return self.answer_join(
                reply,
                Err(GroupError::CoordinatorNotAvailable(format!(
                    "member id {id} is already in use"
                ))),
            );
        }
        if request.require_known_member_id {
            let timeout = u64::try_from(request.session_timeout_ms).unwrap_or(0);
            self.pending.insert(id.clone(), now.saturating_add(timeout));
            return self.answer_join(reply, Err(GroupError::MemberIdRequired(id)));
        }
        self.add_member_and_rebalance(id, request, reply, now);
    }

    fn add_member_and_rebalance(
        &mut self,
        id: String,
        request: JoinRequest,
        reply: R,
        now: Millis,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let session_timeout_ms = u64::try_from(request.session_timeout_ms).unwrap_or(0);
        let member = Member {
            seq,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout_ms,
            rebalance_timeout_ms: u64::try_from(request.rebalance_timeout_ms).unwrap_or(0),
            protocols: request.protocols,
            assignment: Bytes::new(),
            session_deadline: now.saturating_add(session_timeout_ms),
            join_reply: Some(reply),
            sync_reply: None,
        };
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type);
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        self.members.insert(id, member);
        if let Some(Rebalance {
            initial: Some(initial),
            ..
        }) = self.rebalance.as_mut()
        {
            initial.new_member_added = true;
        }
        self.maybe_prepare_rebalance(now);
        self.maybe_complete_join(now);
    }

    fn update_member_and_rebalance(&mut self, request: JoinRequest, reply: R, now: Millis) {
        let Some(member) = self.members.get_mut(&request.member_id) else {
            return self.answer_join(reply, Err(GroupError::UnknownMemberId(request.member_id)));
        };
        member.protocols = request.protocols;
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.session_timeout_ms = u64::try_from(request.session_timeout_ms).unwrap_or(0);
        member.rebalance_timeout_ms = u64::try_from(request.rebalance_timeout_ms).unwrap_or(0);
        if let Some(old) = member.join_reply.replace(reply) {
            self.effects.push(Effect::Join {
                reply: old,
                outcome: Err(GroupError::RebalanceInProgress),
            });
        }
        self.maybe_prepare_rebalance(now);
        self.maybe_complete_join(now);
    }

    fn maybe_prepare_rebalance(&mut self, now: Millis) {
        if matches!(
            self.state,
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance
        ) {
            self.prepare_rebalance(now);
        }
    }

    fn prepare_rebalance(&mut self, now: Millis) {
        if self.state == GroupState::CompletingRebalance {
            // The assignment being computed is for a generation that ends now.
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(reply) = member.sync_reply.take() {
                    // Its session was not checked while parked: it restarts
                    // now (Kafka does the same).
                    member.refresh_session(now);
                    self.effects.push(Effect::Sync {
                        reply,
                        outcome: Err(GroupError::RebalanceInProgress),
                    });
                }
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        self.rebalance = Some(if self.state == GroupState::Empty {
            let delay = self.config.initial_rebalance_delay_ms;
            Rebalance {
                deadline: now.saturating_add(delay),
                initial: Some(InitialDelay {
                    remaining_ms: timeout.saturating_sub(delay),
                    new_member_added: false,
                }),
            }
        } else {
            Rebalance {
                deadline: now.saturating_add(timeout),
                initial: None,
            }
        });
        self.state = GroupState::PreparingRebalance;
    }

    /// Completes the join phase early once every known member has rejoined
    /// and no handed-out id is still expected (not during the initial delay,
    /// which waits for more members), or at once when no member is left.
    fn maybe_complete_join(&mut self, now: Millis) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let in_initial_delay = self.rebalance.is_some_and(|r| r.initial.is_some());
        let all_rejoined = !in_initial_delay
            && self.pending.is_empty()
            && self.members.values().all(|m| m.join_reply.is_some());
        if all_rejoined || self.members.is_empty() {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: members that did not rejoin are removed, the
    /// generation advances, and every member gets its JoinGroup answer.
    fn complete_join(&mut self, now: Millis) {
        let missing: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.join_reply.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in &missing {
            if let Some(member) = self.members.remove(id) {
                self.answer_parked(id, member);
            }
        }
        if self
            .leader
            .as_ref()
            .is_some_and(|l| !self.members.contains_key(l))
        {
            self.leader = self.earliest_member();
        }
        self.rebalance = None;
        self.sync_deadline = None;
        self.generation = self.generation.saturating_add(1);
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            self.effects.push(Effect::Persist(Persist {
                generation: self.generation,
                protocol_type: self.protocol_type.clone(),
                protocol: None,
            }));
            return;
        }
        self.protocol = Some(self.select_protocol());
        self.state = GroupState::CompletingRebalance;
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        self.sync_deadline = Some(now.saturating_add(timeout));
        self.effects.push(Effect::Persist(Persist {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
        }));
        let all = self.current_member_metadata();
        let leader = self.leader.clone().unwrap_or_default();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let members = if id == leader {
                all.clone()
            } else {
                Vec::new()
            };
            let joined = self.joined(&id, members);
            if let Some(member) = self.members.get_mut(&id) {
                member.refresh_session(now);
                if let Some(reply) = member.join_reply.take() {
                    self.effects.push(Effect::Join {
                        reply,
                        outcome: Ok(joined),
                    });
                }
            }
        }
    }

    /// Kafka's vote: among the protocols every member supports, each member
    /// votes for the first in its own preference order; most votes wins,
    /// ties going to the leader's preference.
    fn select_protocol(&self) -> String {
        let mut ordered: Vec<&Member<R>> = self.members.values().collect();
        ordered.sort_by_key(|m| m.seq);
        let candidates: Vec<&str> = ordered
            .first()
            .map(|first| {
                first
                    .protocols
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .filter(|name| ordered.iter().all(|m| m.supports(name)))
                    .collect()
            })
            .unwrap_or_default();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in &ordered {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(name, _)| candidates.contains(&name.as_str()))
            {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max().unwrap_or(0);
        candidates
            .iter()
            .find(|name| votes.get(*name).copied().unwrap_or(0) == best)
            .or_else(|| candidates.first())
            .map(|name| name.to_string())
            // Unreachable while joins keep a shared protocol; stay total anyway.
            .or_else(|| {
                ordered
                    .first()
                    .and_then(|m| m.protocols.first())
                    .map(|(name, _)| name.clone())
            })
            .unwrap_or_default()
    }

    fn current_member_metadata(&self) -> Vec<(String, Bytes)> {
        let protocol = self.protocol.clone().unwrap_or_default();
        let mut members: Vec<(&String, &Member<R>)> = self.members.iter().collect();
        members.sort_by_key(|(_, m)| m.seq);
        members
            .into_iter()
            .map(|(id, m)| (id.clone(), m.metadata(&protocol)))
            .collect()
    }

    fn joined(&self, member_id: &str, members: Vec<(String, Bytes)>) -> Joined {
        Joined {
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: self.protocol.clone().unwrap_or_default(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
        }
    }

    fn synced(&self, assignment: Bytes) -> Synced {
        Synced {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: self.protocol.clone().unwrap_or_default(),
            assignment,
        }
    }

    fn propagate_assignments(&mut self, now: Millis) {
        let protocol_type = self.protocol_type.clone().unwrap_or_default();
        let protocol_name = self.protocol.clone().unwrap_or_default();
        for member in self.members.values_mut() {
            if let Some(reply) = member.sync_reply.take() {
                member.refresh_session(now);
                self.effects.push(Effect::Sync {
                    reply,
                    outcome: Ok(Synced {
                        protocol_type: protocol_type.clone(),
                        protocol_name: protocol_name.clone(),
                        assignment: member.assignment.clone(),
                    }),
                });
            }
        }
    }

    /// Membership and generation checks shared by SyncGroup, Heartbeat and
    /// OffsetCommit.
    fn check_member(&self, member_id: &str, generation: i32) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(dead());
        }
        if !self.members.contains_key(member_id) {
            // A generation that has ended says more than the unknown id: the
            // member is stale (e.g. from before a restart, or expired).
            if (0..self.generation).contains(&generation) {
                return Err(self.illegal_generation(generation));
            }
            return Err(GroupError::UnknownMemberId(member_id.to_string()));
        }
        if generation != self.generation {
            return Err(self.illegal_generation(generation));
        }
        Ok(())
    }

    fn illegal_generation(&self, got: i32) -> GroupError {
        GroupError::IllegalGeneration {
            got,
            current: self.generation,
        }
    }

    fn earliest_member(&self) -> Option<String> {
        self.members
            .iter()
            .min_by_key(|(_, m)| m.seq)
            .map(|(id, _)| id.clone())
    }

    /// Removes a member (left or expired) and moves the group on: a
    /// rebalance from Stable or CompletingRebalance, an earlier end of the
    /// join phase from PreparingRebalance.
    fn remove_member(&mut self, member_id: &str, now: Millis) {
        let Some(member) = self.members.remove(member_id) else {
            return;
        };
        self.answer_parked(member_id, member);
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.earliest_member();
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now);
                self.maybe_complete_join(now);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    fn answer_parked(&mut self, member_id: &str, member: Member<R>) {
        let id = || GroupError::UnknownMemberId(member_id.to_string());
        if let Some(reply) = member.join_reply {
            self.effects.push(Effect::Join {
                reply,
                outcome: Err(id()),
            });
        }
        if let Some(reply) = member.sync_reply {
            self.effects.push(Effect::Sync {
                reply,
                outcome: Err(id()),
            });
        }
    }

    fn answer_join(&mut self, reply: R, outcome: Result<Joined, GroupError>) {
        self.effects.push(Effect::Join { reply, outcome });
    }

    fn answer_sync(&mut self, reply: R, outcome: Result<Synced, GroupError>) {
        self.effects.push(Effect::Sync { reply, outcome });
    }
}

fn dead() -> GroupError {
    GroupError::CoordinatorNotAvailable("the group is being deleted".to_string())
}

#[cfg(test)]
mod tests;
