//! [`Membership`]: this member's view of its group — member id, generation,
//! phase — and what every group error code makes it do. Pure (events in,
//! steps out, no I/O), so the rebalance rules are unit-tested here; the
//! coordinator client performs the I/O and the group consumer acts on the
//! steps.
//!
//! Phases: `Unjoined` → (JoinGroup) `Joining` → (SyncGroup) `Stable`, and
//! back to `Joining` whenever a rejoin is needed. Invariants:
//! - Heartbeats are sent only in `Stable` (also while a rejoin is pending,
//!   to keep the session until `poll()` rejoins), and an answer is applied only if
//!   the member is still in the generation it was sent for (a late answer
//!   about an old generation must not start a new rebalance).
//! - `lost` is set when the coordinator has already moved the group on
//!   without us (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID): the partitions we
//!   hold may already be someone else's, so nothing is committed for them.
//!
//! Error codes, as Kafka's Java consumer treats them:
//!
//! | code | JoinGroup | SyncGroup | Heartbeat / OffsetCommit |
//! |---|---|---|---|
//! | MEMBER_ID_REQUIRED (79) | rejoin at once with the id given | — | — |
//! | UNKNOWN_MEMBER_ID (25) | rejoin with an empty id | rejoin with an empty id | lost; rejoin with an empty id |
//! | ILLEGAL_GENERATION (22) | rejoin | rejoin | lost; rejoin |
//! | REBALANCE_IN_PROGRESS (27) | rejoin | rejoin | rejoin (partitions still ours) |
//! | NOT_COORDINATOR (16), COORDINATOR_NOT_AVAILABLE (15) | rediscover, retry | rediscover, rejoin | rediscover, retry |
//! | COORDINATOR_LOAD_IN_PROGRESS (14) | back off, retry | back off, rejoin | back off, retry |
//! | GROUP_AUTHORIZATION_FAILED, INVALID_GROUP_ID, FENCED_INSTANCE_ID, … | fatal | fatal | fatal (heartbeat) / the commit fails |
//! | anything else | fatal | rejoin | fatal (heartbeat) / the commit fails |

use sediment_protocol::ErrorCode;

/// Where the member is in the group protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Never joined, or left.
    Unjoined,
    /// Between sending JoinGroup and receiving its SyncGroup answer.
    Joining,
    /// Holding the assignment of the current generation.
    Stable,
}

/// What to do about a group error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// No error.
    Done,
    /// The coordinator moved or is down: find it again, then retry.
    Rediscover,
    /// The coordinator is loading the group: back off and retry.
    Retry,
    /// Join the group again (the member id is kept unless the step reset it).
    Rejoin,
    /// Nothing a retry can fix.
    Fatal,
}

/// The classification shared by every group API (before per-API effects).
pub(crate) fn recovery(code: i16) -> Recovery {
    match ErrorCode::try_from_code(code) {
        None if code == 0 => Recovery::Done,
        Some(ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable) => {
            Recovery::Rediscover
        }
        Some(ErrorCode::CoordinatorLoadInProgress | ErrorCode::RequestTimedOut) => Recovery::Retry,
        Some(
            ErrorCode::MemberIdRequired
            | ErrorCode::UnknownMemberId
            | ErrorCode::IllegalGeneration
            | ErrorCode::RebalanceInProgress,
        ) => Recovery::Rejoin,
        _ => Recovery::Fatal,
    }
}

/// Codes that refuse the member or the group outright: rejoining cannot help.
fn is_fatal_for_member(code: i16) -> bool {
    matches!(
        ErrorCode::try_from_code(code),
        Some(
            ErrorCode::GroupAuthorizationFailed
                | ErrorCode::InvalidGroupId
                | ErrorCode::FencedInstanceId
                | ErrorCode::UnsupportedVersion
                | ErrorCode::InconsistentGroupProtocol
        )
    )
}

/// This member's state in its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    member_id: String,
    generation: i32,
    phase: Phase,
    /// Why a rejoin was requested, while one is pending.
    rejoin: Option<String>,
    /// The current generation is already over for the coordinator.
    lost: bool,
    leader: bool,
}

impl Default for Membership {
    fn default() -> Self {
        Self {
            member_id: String::new(),
            generation: -1,
            phase: Phase::Unjoined,
            rejoin: None,
            lost: false,
            leader: false,
        }
    }
}

impl Membership {
    /// The member id ("" until the coordinator gave one).
    pub(crate) fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The current phase.
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// The generation whose assignment this member holds, when stable.
    pub(crate) fn generation(&self) -> Option<i32> {
        (self.phase == Phase::Stable).then_some(self.generation)
    }

    /// True when this member was elected leader of the current generation.
    pub(crate) fn is_leader(&self) -> bool {
        self.leader && self.phase == Phase::Stable
    }

    /// True when the last JoinGroup answer named this member leader (it
    /// must send the assignment in SyncGroup).
    pub(crate) fn is_leader_elect(&self) -> bool {
        self.leader
    }

    /// True when the current generation is known to be over.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost
    }

    /// True when `poll` must (re)join before fetching.
    pub(crate) fn needs_join(&self) -> bool {
        self.phase != Phase::Stable || self.rejoin.is_some()
    }

    /// Why a rejoin is pending, if one is.
    pub(crate) fn rejoin_reason(&self) -> Option<&str> {
        self.rejoin.as_deref()
    }

    /// Asks for a rejoin at the next `poll` (new subscription, metadata change, …).
    pub(crate) fn request_rejoin(&mut self, reason: &str) {
        if self.rejoin.is_none() {
            self.rejoin = Some(reason.to_string());
        }
    }

    /// What OffsetCommit carries: the generation (-1 outside one) and member id.
    pub(crate) fn commit_identity(&self) -> (i32, String) {
        match self.phase {
            Phase::Stable => (self.generation, self.member_id.clone()),
            _ => (-1, self.member_id.clone()),
        }
    }

    /// What to heartbeat with, or `None` when not stable. Heartbeats go on
    /// while a rejoin is pending: until `poll()` rejoins, they keep the
    /// session alive (Kafka refreshes it even when answering
    /// REBALANCE_IN_PROGRESS), so a slow batch does not cost the membership.
    pub(crate) fn heartbeat_target(&self) -> Option<(String, i32)> {
        (self.phase == Phase::Stable).then(|| (self.member_id.clone(), self.generation))
    }

    /// A JoinGroup is about to be sent: the old assignment is gone.
    pub(crate) fn begin_join(&mut self) {
        self.phase = Phase::Joining;
        self.rejoin = None;
        self.lost = false;
        self.leader = false;
    }

    /// Folds in a JoinGroup answer.
    pub(crate) fn on_join(
        &mut self,
        code: i16,
        member_id: &str,
        generation: i32,
        leader_id: &str,
    ) -> Recovery {
        match ErrorCode::try_from_code(code) {
            None if code == 0 => {
                self.member_id = member_id.to_string();
                self.generation = generation;
                self.leader = leader_id == member_id;
                Recovery::Done
            }
            Some(ErrorCode::MemberIdRequired) => {
                // KIP-394: the coordinator assigned an id and waits for a
                // JoinGroup carrying it.
                self.member_id = member_id.to_string();
                Recovery::Rejoin
            }
            Some(ErrorCode::UnknownMemberId) => {
                self.member_id.clear();
                Recovery::Rejoin
            }
            _ => recovery(code),
        }
    }

    /// Folds in a SyncGroup answer. Besides the codes every group API
    /// shares, only refusals of the member or group themselves are fatal:
    /// any other failure ends this attempt at the generation and the member
    /// joins again, as librdkafka does (its own mock cluster, for one,
    /// answers INVALID_REQUEST to a follower whose SyncGroup arrives after
    /// the leader's completed the generation).
    pub(crate) fn on_sync(&mut self, code: i16) -> Recovery {
        let step = match recovery(code) {
            Recovery::Fatal if !is_fatal_for_member(code) => Recovery::Rejoin,
            step => step,
        };
        match step {
            Recovery::Done => {
                self.phase = Phase::Stable;
                self.lost = false;
            }
            // Any failed sync ends this attempt at the generation: join again.
            Recovery::Rediscover | Recovery::Retry | Recovery::Rejoin => {
                if code == ErrorCode::UnknownMemberId.code() {
                    self.member_id.clear();
                }
                self.generation = -1;
                self.leader = false;
            }
            Recovery::Fatal => {}
        }
        step
    }

    /// Folds in a Heartbeat answer for `generation_sent`; answers about an
    /// older generation, or arriving while not stable, change nothing.
    pub(crate) fn on_heartbeat(&mut self, generation_sent: i32, code: i16) -> Recovery {
        if self.phase != Phase::Stable || generation_sent != self.generation {
            return Recovery::Done;
        }
        self.on_group_error(code, "heartbeat")
    }

    /// Folds in an OffsetCommit partition error (the generation was ours
    /// when it was sent).
    pub(crate) fn on_commit(&mut self, code: i16) -> Recovery {
        if self.phase != Phase::Stable {
            return recovery(code);
        }
        self.on_group_error(code, "offset commit")
    }

    fn on_group_error(&mut self, code: i16, what: &str) -> Recovery {
        let step = recovery(code);
        if step == Recovery::Rejoin {
            let error = ErrorCode::try_from_code(code);
            match error {
                Some(ErrorCode::UnknownMemberId) => {
                    self.member_id.clear();
                    self.lost = true;
                }
                Some(ErrorCode::IllegalGeneration) => self.lost = true,
                _ => {}
            }
            let name = error.map(|e| format!("{e:?}")).unwrap_or_default();
            self.request_rejoin(&format!("{what} answered {name}"));
        }
        step
    }

    /// LeaveGroup was sent (or the member is closing): back to unjoined,
    /// with no member id (a later join is a new member).
    pub(crate) fn on_leave(&mut self) {
        *self = Membership::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMBER_ID_REQUIRED: i16 = 79;
    const UNKNOWN_MEMBER_ID: i16 = 25;
    const ILLEGAL_GENERATION: i16 = 22;
    const REBALANCE_IN_PROGRESS: i16 = 27;
    const NOT_COORDINATOR: i16 = 16;
    const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    const GROUP_AUTHORIZATION_FAILED: i16 = 30;

    fn stable(member: &str, generation: i32) -> Membership {
        let mut m = Membership::default();
        m.begin_join();
        assert_eq!(m.on_join(0, member, generation, member), Recovery::Done);
        assert_eq!(m.on_sync(0), Recovery::Done);
        m
    }

    #[test]
    fn given_new_member_then_it_must_join_and_sends_no_heartbeat() {
        let m = Membership::default();
        assert!(m.needs_join());
        assert_eq!(m.phase(), Phase::Unjoined);
        assert_eq!(m.heartbeat_target(), None);
        assert_eq!(m.generation(), None);
        assert_eq!(m.commit_identity(), (-1, String::new()));
    }

    #[test]
    fn given_member_id_required_when_joining_then_rejoins_with_the_given_id() {
        let mut m = Membership::default();
        m.begin_join();
        assert_eq!(
            m.on_join(MEMBER_ID_REQUIRED, "consumer-1-abc", -1, ""),
            Recovery::Rejoin
        );
        assert_eq!(m.member_id(), "consumer-1-abc");
        assert_eq!(m.on_join(0, "consumer-1-abc", 4, "other"), Recovery::Done);
        assert!(!m.is_leader());
        assert_eq!(m.on_sync(0), Recovery::Done);
        assert_eq!(m.generation(), Some(4));
        assert!(!m.needs_join());
        assert_eq!(m.heartbeat_target(), Some(("consumer-1-abc".into(), 4)));
    }

    #[test]
    fn given_join_answer_then_leader_is_the_member_whose_id_the_coordinator_named() {
        let m = stable("me", 1);
        assert!(m.is_leader());
        let mut m = Membership::default();
        m.begin_join();
        m.on_join(0, "me", 1, "you");
        m.on_sync(0);
        assert!(!m.is_leader());
    }

    #[test]
    fn given_unknown_member_when_joining_then_rejoins_with_empty_id() {
        let mut m = stable("old", 3);
        m.begin_join();
        assert_eq!(m.on_join(UNKNOWN_MEMBER_ID, "", -1, ""), Recovery::Rejoin);
        assert_eq!(m.member_id(), "");
    }

    #[test]
    fn given_rebalance_or_stale_generation_when_joining_then_rejoins_keeping_id() {
        for code in [REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION] {
            let mut m = stable("me", 3);
            m.begin_join();
            assert_eq!(m.on_join(code, "", -1, ""), Recovery::Rejoin);
            assert_eq!(m.member_id(), "me");
        }
    }

    #[test]
    fn given_coordinator_errors_then_rediscover_or_retry() {
        let mut m = Membership::default();
        m.begin_join();
        assert_eq!(m.on_join(NOT_COORDINATOR, "", -1, ""), Recovery::Rediscover);
        assert_eq!(
            m.on_join(COORDINATOR_NOT_AVAILABLE, "", -1, ""),
            Recovery::Rediscover
        );
        assert_eq!(
            m.on_join(COORDINATOR_LOAD_IN_PROGRESS, "", -1, ""),
            Recovery::Retry
        );
        let mut m = stable("me", 2);
        assert_eq!(m.on_heartbeat(2, NOT_COORDINATOR), Recovery::Rediscover);
        assert!(
            !m.needs_join(),
            "a moved coordinator does not end the generation"
        );
    }

    #[test]
    fn given_fatal_join_errors_then_fatal() {
        for code in [INCONSISTENT_GROUP_PROTOCOL, GROUP_AUTHORIZATION_FAILED] {
            let mut m = Membership::default();
            m.begin_join();
            assert_eq!(m.on_join(code, "", -1, ""), Recovery::Fatal);
        }
    }

    #[test]
    fn given_failed_sync_then_rejoin_and_unknown_member_resets_id() {
        let mut m = Membership::default();
        m.begin_join();
        m.on_join(0, "me", 5, "me");
        assert_eq!(m.on_sync(REBALANCE_IN_PROGRESS), Recovery::Rejoin);
        assert_eq!(m.member_id(), "me");
        assert!(m.needs_join());
        m.begin_join();
        m.on_join(0, "me", 6, "me");
        assert_eq!(m.on_sync(UNKNOWN_MEMBER_ID), Recovery::Rejoin);
        assert_eq!(m.member_id(), "");
        assert_eq!(m.generation(), None);
    }

    #[test]
    fn given_unexpected_sync_error_then_rejoin_but_authorization_failure_is_fatal() {
        const INVALID_REQUEST: i16 = 42;
        let mut m = Membership::default();
        m.begin_join();
        m.on_join(0, "me", 2, "other");
        assert_eq!(m.on_sync(INVALID_REQUEST), Recovery::Rejoin);
        assert!(m.needs_join());
        m.begin_join();
        m.on_join(0, "me", 3, "other");
        assert_eq!(m.on_sync(GROUP_AUTHORIZATION_FAILED), Recovery::Fatal);
    }

    #[test]
    fn given_heartbeat_rebalance_in_progress_then_rejoin_with_partitions_still_ours() {
        let mut m = stable("me", 7);
        assert_eq!(m.on_heartbeat(7, 0), Recovery::Done);
        assert_eq!(m.on_heartbeat(7, REBALANCE_IN_PROGRESS), Recovery::Rejoin);
        assert!(m.needs_join());
        assert!(!m.is_lost());
        assert_eq!(m.generation(), Some(7), "commits still carry generation 7");
        assert!(m
            .rejoin_reason()
            .is_some_and(|r| r.contains("RebalanceInProgress")));
        assert_eq!(
            m.heartbeat_target(),
            Some(("me".into(), 7)),
            "heartbeats keep the session alive until poll() rejoins"
        );
        assert_eq!(m.on_heartbeat(7, REBALANCE_IN_PROGRESS), Recovery::Rejoin);
        m.begin_join();
        assert_eq!(m.heartbeat_target(), None, "no heartbeats during a join");
    }

    #[test]
    fn given_heartbeat_illegal_generation_or_unknown_member_then_partitions_are_lost() {
        let mut m = stable("me", 7);
        assert_eq!(m.on_heartbeat(7, ILLEGAL_GENERATION), Recovery::Rejoin);
        assert!(m.is_lost());
        assert_eq!(m.member_id(), "me");
        let mut m = stable("me", 7);
        assert_eq!(m.on_heartbeat(7, UNKNOWN_MEMBER_ID), Recovery::Rejoin);
        assert!(m.is_lost());
        assert_eq!(m.member_id(), "");
        m.begin_join();
        assert!(!m.is_lost(), "a new join starts clean");
    }

    #[test]
    fn given_late_heartbeat_answer_for_old_generation_then_ignored() {
        let mut m = stable("me", 7);
        assert_eq!(m.on_heartbeat(6, ILLEGAL_GENERATION), Recovery::Done);
        assert!(!m.needs_join());
        m.begin_join();
        assert_eq!(m.on_heartbeat(7, REBALANCE_IN_PROGRESS), Recovery::Done);
        assert_eq!(m.phase(), Phase::Joining);
    }

    #[test]
    fn given_commit_errors_then_rebalance_errors_request_rejoin() {
        let mut m = stable("me", 3);
        assert_eq!(m.commit_identity(), (3, "me".to_string()));
        assert_eq!(m.on_commit(0), Recovery::Done);
        assert_eq!(m.on_commit(NOT_COORDINATOR), Recovery::Rediscover);
        assert!(!m.needs_join());
        assert_eq!(m.on_commit(ILLEGAL_GENERATION), Recovery::Rejoin);
        assert!(m.needs_join() && m.is_lost());
        // Unknown topic: the commit fails, the membership is untouched.
        let mut m = stable("me", 3);
        assert_eq!(m.on_commit(3), Recovery::Fatal);
        assert!(!m.needs_join());
    }

    #[test]
    fn given_leave_then_member_is_new_again() {
        let mut m = stable("me", 3);
        m.on_leave();
        assert_eq!(m, Membership::default());
    }
}
