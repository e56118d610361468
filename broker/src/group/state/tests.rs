//! Contract tests of the group state machine, with explicit times (ms).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;
const DELAY: u64 = 100;

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: DELAY,
        min_session_timeout_ms: 1000,
        max_session_timeout_ms: 60_000,
        max_members: 10,
    }
}

/// A group under test: reply tokens are numbered, effects collected.
struct Rig {
    group: Group<u32>,
    next_reply: u32,
}

fn request(member_id: &str, new_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        new_member_id: new_id.to_string(),
        client_id: "client".to_string(),
        client_host: "/127.0.0.1".to_string(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".to_string(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("{p}-meta"))))
            .collect(),
        require_known_member_id: false,
    }
}

impl Rig {
    fn new() -> Self {
        Self {
            group: Group::new(config()),
            next_reply: 0,
        }
    }

    fn restored(generation: i32) -> Self {
        Self {
            group: Group::restored(config(), generation, "consumer".to_string()),
            next_reply: 0,
        }
    }

    fn token(&mut self) -> u32 {
        self.next_reply += 1;
        self.next_reply
    }

    /// Sends a JoinGroup; returns its reply token and the effects.
    fn join_with(&mut self, request: JoinRequest, now: Millis) -> (u32, Vec<Effect<u32>>) {
        let token = self.token();
        self.group.join(request, token, now);
        (token, self.group.take_effects())
    }

    /// A first-time member (pre-v4: no MEMBER_ID_REQUIRED) named `id`.
    fn join_new(&mut self, id: &str, now: Millis) -> (u32, Vec<Effect<u32>>) {
        self.join_with(request("", id, &["range"]), now)
    }

    fn rejoin(&mut self, id: &str, now: Millis) -> (u32, Vec<Effect<u32>>) {
        self.join_with(request(id, "", &["range"]), now)
    }

    fn sync(
        &mut self,
        id: &str,
        generation: i32,
        assignments: &[(&str, &str)],
        now: Millis,
    ) -> (u32, Vec<Effect<u32>>) {
        let token = self.token();
        let assignments = assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
            .collect();
        self.group
            .sync(id, generation, None, None, assignments, token, now);
        (token, self.group.take_effects())
    }

    fn tick(&mut self, now: Millis) -> Vec<Effect<u32>> {
        self.group.tick(now);
        self.group.take_effects()
    }

    /// Members `ids` join a new group together and sync with the leader
    /// assigning `"<id>-assignment"`; returns the generation. Time starts at `now`.
    fn stable(&mut self, ids: &[&str], now: Millis) -> i32 {
        let mut tokens = Vec::new();
        for id in ids {
            let (token, effects) = self.join_new(id, now);
            assert!(effects.is_empty(), "{effects:?}");
            tokens.push(token);
        }
        let effects = self.tick(now + DELAY);
        let effects = if effects.is_empty() && ids.len() > 1 {
            self.tick(now + 2 * DELAY)
        } else {
            effects
        };
        let generation = self.group.generation();
        for token in tokens {
            joined(&effects, token);
        }
        let leader = self.group.leader().unwrap().to_string();
        let assignments: Vec<(String, String)> = ids
            .iter()
            .map(|id| (id.to_string(), format!("{id}-assignment")))
            .collect();
        let refs: Vec<(&str, &str)> = assignments
            .iter()
            .map(|(m, a)| (m.as_str(), a.as_str()))
            .collect();
        let (_, effects) = self.sync(&leader, generation, &refs, now + 2 * DELAY);
        assert_eq!(effects.len(), 1, "{effects:?}");
        for id in ids.iter().filter(|id| **id != leader) {
            let (token, effects) = self.sync(id, generation, &[], now + 2 * DELAY);
            assert_eq!(
                synced(&effects, token).assignment,
                Bytes::from(format!("{id}-assignment"))
            );
        }
        assert_eq!(self.group.state(), GroupState::Stable);
        generation
    }
}

fn join_outcome(effects: &[Effect<u32>], token: u32) -> Result<Joined, GroupError> {
    let outcomes: Vec<&Result<Joined, GroupError>> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Join { reply, outcome } if *reply == token => Some(outcome),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes.len(),
        1,
        "join {token} answered once in {effects:?}"
    );
    outcomes[0].clone()
}

fn joined(effects: &[Effect<u32>], token: u32) -> Joined {
    join_outcome(effects, token).unwrap_or_else(|e| panic!("join {token} refused: {e}"))
}

fn join_error(effects: &[Effect<u32>], token: u32) -> GroupError {
    join_outcome(effects, token).expect_err("join refused")
}

fn sync_outcome(effects: &[Effect<u32>], token: u32) -> Result<Synced, GroupError> {
    let outcomes: Vec<&Result<Synced, GroupError>> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Sync { reply, outcome } if *reply == token => Some(outcome),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes.len(),
        1,
        "sync {token} answered once in {effects:?}"
    );
    outcomes[0].clone()
}

fn synced(effects: &[Effect<u32>], token: u32) -> Synced {
    sync_outcome(effects, token).unwrap_or_else(|e| panic!("sync {token} refused: {e}"))
}

fn persisted(effects: &[Effect<u32>]) -> Vec<Persist> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

fn is_illegal_generation(error: &GroupError) -> bool {
    matches!(error, GroupError::IllegalGeneration { .. })
}

// ---- joining and the initial delay ----

#[test]
fn given_new_group_when_first_member_joins_then_answer_waits_for_initial_delay() {
    let mut rig = Rig::new();
    let (token, effects) = rig.join_new("a", 0);
    assert!(effects.is_empty());
    assert_eq!(rig.group.state(), GroupState::PreparingRebalance);
    assert_eq!(rig.group.next_deadline(), Some(DELAY));
    assert!(rig.tick(DELAY - 1).is_empty());
    let effects = rig.tick(DELAY);
    let joined = joined(&effects, token);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, "a");
    assert_eq!(joined.member_id, "a");
    assert_eq!(joined.protocol_name, "range");
    assert_eq!(joined.protocol_type, "consumer");
    assert_eq!(
        joined.members,
        vec![("a".to_string(), Bytes::from("range-meta"))]
    );
    assert_eq!(rig.group.state(), GroupState::CompletingRebalance);
}

#[test]
fn given_new_group_when_members_join_within_initial_delay_then_all_land_in_first_generation() {
    let mut rig = Rig::new();
    let (a, _) = rig.join_new("a", 0);
    let (b, _) = rig.join_new("b", 50);
    // b arrived during the first step: the delay is extended once more.
    assert!(rig.tick(DELAY).is_empty());
    let (c, _) = rig.join_new("c", 150);
    assert!(rig.tick(2 * DELAY).is_empty());
    let effects = rig.tick(3 * DELAY);
    let (ja, jb, jc) = (
        joined(&effects, a),
        joined(&effects, b),
        joined(&effects, c),
    );
    assert_eq!(
        (ja.generation_id, jb.generation_id, jc.generation_id),
        (1, 1, 1)
    );
    assert_eq!(ja.leader, "a");
    assert_eq!(jb.leader, "a");
    let ids: Vec<&str> = ja.members.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["a", "b", "c"],
        "leader sees every member in join order"
    );
    assert!(
        jb.members.is_empty() && jc.members.is_empty(),
        "followers see none"
    );
}

#[test]
fn given_members_keep_arriving_when_initial_delay_extends_then_it_stops_at_rebalance_timeout() {
    let mut rig = Rig::new();
    let mut first = request("", "m0", &["range"]);
    first.rebalance_timeout_ms = 250;
    let (token, _) = rig.join_with(first, 0);
    // Steps: 0..100 (remaining 150), 100..200 (remaining 50), 200..250 (remaining 0).
    let mut now = 0;
    for i in 1..10 {
        now += 40;
        let mut next = request("", &format!("m{i}"), &["range"]);
        next.rebalance_timeout_ms = 250;
        let (_, effects) = rig.join_with(next, now);
        assert!(effects.is_empty());
        let effects = rig.tick(now);
        if now >= 250 {
            assert_eq!(joined(&effects, token).generation_id, 1);
            return;
        }
        assert!(effects.is_empty(), "still delaying at {now}");
    }
    panic!("the initial delay did not end at the rebalance timeout");
}

#[test]
fn given_zero_initial_delay_when_first_member_joins_then_answered_on_next_tick() {
    let mut rig = Rig {
        group: Group::new(GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..config()
        }),
        next_reply: 0,
    };
    let (token, _) = rig.join_new("a", 7);
    assert_eq!(rig.group.next_deadline(), Some(7));
    assert_eq!(joined(&rig.tick(7), token).generation_id, 1);
}

#[test]
fn given_v4_join_without_member_id_then_member_id_required_and_rejoin_with_it_is_accepted() {
    let mut rig = Rig::new();
    let mut first = request("", "client-uuid-1", &["range"]);
    first.require_known_member_id = true;
    let (token, effects) = rig.join_with(first, 0);
    assert_eq!(
        join_error(&effects, token),
        GroupError::MemberIdRequired("client-uuid-1".to_string())
    );
    assert_eq!(rig.group.state(), GroupState::Empty);
    let (token, effects) = rig.rejoin("client-uuid-1", 10);
    assert!(effects.is_empty());
    let effects = rig.tick(10 + DELAY);
    assert_eq!(joined(&effects, token).member_id, "client-uuid-1");
}

#[test]
fn given_member_id_required_when_id_not_used_within_session_timeout_then_it_expires() {
    let mut rig = Rig::new();
    let mut first = request("", "x", &["range"]);
    first.require_known_member_id = true;
    rig.join_with(first, 0);
    assert_eq!(rig.group.next_deadline(), Some(SESSION as u64));
    rig.tick(SESSION as u64);
    let (token, effects) = rig.rejoin("x", SESSION as u64 + 1);
    assert_eq!(
        join_error(&effects, token),
        GroupError::UnknownMemberId("x".to_string())
    );
}

#[test]
fn given_unknown_member_id_when_joining_then_unknown_member_id() {
    let mut rig = Rig::new();
    rig.stable(&["a"], 0);
    let (token, effects) = rig.rejoin("nobody", 1000);
    assert_eq!(
        join_error(&effects, token),
        GroupError::UnknownMemberId("nobody".to_string())
    );
    assert_eq!(rig.group.state(), GroupState::Stable);
}

// ---- rebalances ----

#[test]
fn given_stable_group_when_member_joins_then_answers_wait_until_existing_member_rejoins() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a"], 0);
    let (b, effects) = rig.join_new("b", 1000);
    assert!(effects.is_empty());
    assert_eq!(rig.group.state(), GroupState::PreparingRebalance);
    assert_eq!(
        rig.group.heartbeat("a", generation, 1100),
        Err(GroupError::RebalanceInProgress)
    );
    let (a, effects) = rig.rejoin("a", 1200);
    let (ja, jb) = (joined(&effects, a), joined(&effects, b));
    assert_eq!(ja.generation_id, generation + 1);
    assert_eq!(jb.generation_id, generation + 1);
    assert_eq!(ja.leader, "a", "the earliest joiner stays leader");
    assert_eq!(ja.members.len(), 2);
    assert_eq!(
        persisted(&effects),
        vec![Persist {
            generation: generation + 1,
            protocol_type: Some("consumer".to_string()),
            protocol: Some("range".to_string()),
        }]
    );
}

#[test]
fn given_new_generation_then_persist_effect_precedes_its_join_answers() {
    let mut rig = Rig::new();
    rig.join_new("a", 0);
    let effects = rig.tick(DELAY);
    assert!(matches!(effects.first(), Some(Effect::Persist(p)) if p.generation == 1));
    assert!(matches!(effects.get(1), Some(Effect::Join { .. })));
}

#[test]
fn given_member_that_does_not_rejoin_when_rebalance_timeout_passes_then_it_is_removed() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a", "b"], 0);
    let (c, _) = rig.join_new("c", 1000);
    let (a, effects) = rig.rejoin("a", 1100);
    assert!(effects.is_empty(), "b has not rejoined yet");
    // b keeps heartbeating, which keeps its session but is not a rejoin.
    for now in [5000, 14_000, 23_000] {
        assert_eq!(
            rig.group.heartbeat("b", generation, now),
            Err(GroupError::RebalanceInProgress)
        );
        assert!(rig.tick(now).is_empty());
    }
    let deadline = 1000 + REBALANCE as u64;
    assert_eq!(rig.group.next_deadline(), Some(deadline));
    assert!(rig.tick(deadline - 1).is_empty());
    let effects = rig.tick(deadline);
    let (ja, jc) = (joined(&effects, a), joined(&effects, c));
    assert_eq!(ja.generation_id, generation + 1);
    assert_eq!(jc.generation_id, generation + 1);
    assert_eq!(rig.group.member_ids(), ["a", "c"]);
    let error = rig
        .group
        .heartbeat("b", generation, deadline + 1)
        .unwrap_err();
    assert!(is_illegal_generation(&error), "{error:?}");
}

#[test]
fn given_leader_does_not_rejoin_when_rebalance_completes_then_earliest_remaining_member_leads() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a", "b", "c"], 0);
    // b's new metadata starts a rebalance; c follows; a only heartbeats.
    let mut changed = request("b", "", &["range"]);
    changed.protocols[0].1 = Bytes::from("new topics");
    let (b, _) = rig.join_with(changed, 1000);
    let (c, _) = rig.rejoin("c", 1000);
    for now in [5000, 14_000, 23_000] {
        let _ = rig.group.heartbeat("a", generation, now);
    }
    let effects = rig.tick(1000 + REBALANCE as u64);
    assert_eq!(joined(&effects, b).leader, "b");
    assert_eq!(joined(&effects, b).members.len(), 2);
    assert!(joined(&effects, c).members.is_empty());
    assert_eq!(rig.group.member_ids(), ["b", "c"]);
}

#[test]
fn given_followers_sync_first_then_they_wait_for_leader_assignment_and_all_get_theirs() {
    let mut rig = Rig::new();
    rig.join_new("a", 0);
    rig.join_new("b", 0);
    rig.tick(DELAY);
    let effects = rig.tick(2 * DELAY);
    assert_eq!(persisted(&effects).len(), 1);
    let generation = rig.group.generation();
    let (b, effects) = rig.sync("b", generation, &[], 300);
    assert!(effects.is_empty(), "follower waits for the leader");
    assert_eq!(rig.group.state(), GroupState::CompletingRebalance);
    let (a, effects) = rig.sync("a", generation, &[("a", "p0,p1"), ("b", "p2,p3")], 400);
    assert_eq!(synced(&effects, a).assignment, Bytes::from("p0,p1"));
    assert_eq!(synced(&effects, b).assignment, Bytes::from("p2,p3"));
    assert_eq!(synced(&effects, b).protocol_name, "range");
    assert_eq!(rig.group.state(), GroupState::Stable);
    // A repeated SyncGroup in Stable is answered at once.
    let (b2, effects) = rig.sync("b", generation, &[], 500);
    assert_eq!(synced(&effects, b2).assignment, Bytes::from("p2,p3"));
}

#[test]
fn given_leader_assignment_without_a_member_then_that_member_gets_an_empty_assignment() {
    let mut rig = Rig::new();
    rig.join_new("a", 0);
    rig.join_new("b", 0);
    rig.tick(DELAY);
    rig.tick(2 * DELAY);
    let generation = rig.group.generation();
    let (b, _) = rig.sync("b", generation, &[], 300);
    let (_, effects) = rig.sync("a", generation, &[("a", "all"), ("ghost", "x")], 300);
    assert_eq!(synced(&effects, b).assignment, Bytes::new());
}

#[test]
fn given_sync_during_rebalance_then_rebalance_in_progress() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a", "b"], 0);
    rig.rejoin("a", 1000);
    let (token, effects) = rig.sync("b", generation, &[], 1100);
    assert_eq!(
        sync_outcome(&effects, token),
        Err(GroupError::RebalanceInProgress)
    );
}

#[test]
fn given_parked_syncs_when_rebalance_starts_then_they_get_rebalance_in_progress() {
    let mut rig = Rig::new();
    rig.join_new("a", 0);
    rig.join_new("b", 0);
    rig.tick(DELAY);
    rig.tick(2 * DELAY);
    let generation = rig.group.generation();
    let (b, effects) = rig.sync("b", generation, &[], 300);
    assert!(effects.is_empty());
    let (_, effects) = rig.join_new("c", 400);
    assert_eq!(
        sync_outcome(&effects, b),
        Err(GroupError::RebalanceInProgress)
    );
    assert_eq!(rig.group.state(), GroupState::PreparingRebalance);
}

#[test]
fn given_sync_with_stale_generation_or_unknown_member_then_refused() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a"], 0);
    let (token, effects) = rig.sync("a", generation - 1, &[], 1000);
    assert!(is_illegal_generation(
        &sync_outcome(&effects, token).unwrap_err()
    ));
    let (token, effects) = rig.sync("nobody", generation, &[], 1000);
    assert_eq!(
        sync_outcome(&effects, token),
        Err(GroupError::UnknownMemberId("nobody".to_string()))
    );
}

#[test]
fn given_sync_naming_another_protocol_then_inconsistent_group_protocol() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a"], 0);
    rig.group.sync(
        "a",
        generation,
        Some("consumer"),
        Some("roundrobin"),
        Vec::new(),
        99,
        1000,
    );
    let effects = rig.group.take_effects();
    assert!(matches!(
        sync_outcome(&effects, 99),
        Err(GroupError::InconsistentGroupProtocol(_))
    ));
}

#[test]
fn given_completing_rebalance_when_member_rejoins_unchanged_then_answer_is_repeated() {
    let mut rig = Rig::new();
    rig.join_new("a", 0);
    rig.join_new("b", 0);
    rig.tick(DELAY);
    rig.tick(2 * DELAY);
    let generation = rig.group.generation();
    let (a, effects) = rig.rejoin("a", 300);
    let ja = joined(&effects, a);
    assert_eq!(ja.generation_id, generation);
    assert_eq!(ja.members.len(), 2, "the leader gets the members again");
    let (b, effects) = rig.rejoin("b", 300);
    assert!(joined(&effects, b).members.is_empty());
    assert!(persisted(&effects).is_empty());
    assert_eq!(rig.group.state(), GroupState::CompletingRebalance);
}

#[test]
fn given_completing_rebalance_when_member_rejoins_with_new_metadata_then_rebalance() {
    let mut rig = Rig::new();
    rig.join_new("a", 0);
    rig.join_new("b", 0);
    rig.tick(DELAY);
    rig.tick(2 * DELAY);
    let generation = rig.group.generation();
    let mut changed = request("b", "", &["range"]);
    changed.protocols[0].1 = Bytes::from("new topics");
    let (b, effects) = rig.join_with(changed, 300);
    assert!(effects.is_empty());
    assert_eq!(rig.group.state(), GroupState::PreparingRebalance);
    let (a, effects) = rig.rejoin("a", 400);
    assert_eq!(joined(&effects, a).generation_id, generation + 1);
    assert_eq!(joined(&effects, b).generation_id, generation + 1);
}

#[test]
fn given_stable_group_when_follower_rejoins_unchanged_then_same_generation_without_rebalance() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a", "b"], 0);
    let (b, effects) = rig.rejoin("b", 1000);
    let jb = joined(&effects, b);
    assert_eq!(jb.generation_id, generation);
    assert_eq!(rig.group.state(), GroupState::Stable);
}

#[test]
fn given_stable_group_when_leader_rejoins_then_rebalance() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a", "b"], 0);
    let (a, effects) = rig.rejoin("a", 1000);
    assert!(effects.is_empty());
    assert_eq!(rig.group.state(), GroupState::PreparingRebalance);
    let (b, effects) = rig.rejoin("b", 1100);
    assert_eq!(joined(&effects, a).generation_id, generation + 1);
    assert_eq!(joined(&effects, b).generation_id, generation + 1);
}

#[test]
fn given_parked_join_when_member_joins_again_then_first_is_answered_rebalance_in_progress() {
    let mut rig = Rig::new();
    rig.stable(&["a", "b"], 0);
    let (first, effects) = rig.rejoin("a", 1000);
    assert!(effects.is_empty());
    let (second, effects) = rig.rejoin("a", 2000);
    assert_eq!(join_error(&effects, first), GroupError::RebalanceInProgress);
    let (b, effects) = rig.rejoin("b", 2100);
    joined(&effects, second);
    joined(&effects, b);
}

// ---- protocols ----

#[test]
fn given_no_common_protocol_when_joining_then_inconsistent_group_protocol_and_group_unchanged() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a"], 0);
    let (token, effects) = rig.join_with(request("", "x", &["sticky"]), 1000);
    assert!(matches!(
        join_error(&effects, token),
        GroupError::InconsistentGroupProtocol(_)
    ));
    assert_eq!(rig.group.state(), GroupState::Stable);
    assert_eq!(rig.group.member_ids(), ["a"]);
    assert_eq!(rig.group.heartbeat("a", generation, 1000), Ok(()));
}

#[test]
fn given_other_protocol_type_or_no_protocols_when_joining_then_inconsistent_group_protocol() {
    let mut rig = Rig::new();
    rig.stable(&["a"], 0);
    let mut connect = request("", "x", &["range"]);
    connect.protocol_type = "connect".to_string();
    let (token, effects) = rig.join_with(connect, 1000);
    assert!(matches!(
        join_error(&effects, token),
        GroupError::InconsistentGroupProtocol(_)
    ));
    let (token, effects) = rig.join_with(request("", "y", &[]), 1000);
    assert!(matches!(
        join_error(&effects, token),
        GroupError::InconsistentGroupProtocol(_)
    ));
    let mut untyped = request("", "z", &["range"]);
    untyped.protocol_type.clear();
    let (token, effects) = Rig::new().join_with(untyped, 0);
    assert!(matches!(
        join_error(&effects, token),
        GroupError::InconsistentGroupProtocol(_)
    ));
}

#[test]
fn given_members_with_different_preferences_then_protocol_with_most_first_choices_wins() {
    let mut rig = Rig::new();
    let (a, _) = rig.join_with(request("", "a", &["range", "roundrobin"]), 0);
    rig.join_with(request("", "b", &["roundrobin", "range"]), 10);
    rig.join_with(request("", "c", &["roundrobin", "range", "sticky"]), 20);
    rig.tick(DELAY);
    let effects = rig.tick(2 * DELAY);
    let ja = joined(&effects, a);
    assert_eq!(ja.protocol_name, "roundrobin");
    assert_eq!(
        ja.members[0].1,
        Bytes::from("roundrobin-meta"),
        "metadata of the chosen protocol"
    );
}

#[test]
fn given_tied_vote_then_leader_preference_wins() {
    let mut rig = Rig::new();
    let (a, _) = rig.join_with(request("", "a", &["range", "roundrobin"]), 0);
    rig.join_with(request("", "b", &["roundrobin", "range"]), 10);
    rig.tick(DELAY);
    let effects = rig.tick(2 * DELAY);
    assert_eq!(joined(&effects, a).protocol_name, "range");
}

#[test]
fn given_protocol_not_supported_by_every_member_then_it_is_not_chosen() {
    let mut rig = Rig::new();
    let (a, _) = rig.join_with(request("", "a", &["sticky", "range"]), 0);
    rig.join_with(request("", "b", &["sticky", "range"]), 10);
    rig.join_with(request("", "c", &["range"]), 20);
    rig.tick(DELAY);
    let effects = rig.tick(2 * DELAY);
    assert_eq!(joined(&effects, a).protocol_name, "range");
}

// ---- limits ----

#[test]
fn given_session_timeout_outside_bounds_then_invalid_session_timeout() {
    let mut rig = Rig::new();
    for timeout in [999, 60_001, -1] {
        let mut join = request("", "a", &["range"]);
        join.session_timeout_ms = timeout;
        let (token, effects) = rig.join_with(join, 0);
        assert!(matches!(
            join_error(&effects, token),
            GroupError::InvalidSessionTimeout { requested, .. } if requested == timeout
        ));
    }
    assert_eq!(rig.group.state(), GroupState::Empty);
}

#[test]
fn given_full_group_when_another_member_joins_then_group_max_size_reached() {
    let mut rig = Rig::new();
    for i in 0..10 {
        let (_, effects) = rig.join_new(&format!("m{i}"), 0);
        assert!(effects.is_empty());
    }
    let (token, effects) = rig.join_new("one-too-many", 0);
    assert_eq!(
        join_error(&effects, token),
        GroupError::GroupMaxSizeReached(10)
    );
}

// ---- heartbeats and sessions ----

#[test]
fn given_heartbeat_errors_then_each_says_why() {
    let mut rig = Rig::new();
    assert!(matches!(
        rig.group.heartbeat("a", 0, 0),
        Err(GroupError::UnknownMemberId(_))
    ));
    let generation = rig.stable(&["a", "b"], 0);
    assert_eq!(rig.group.heartbeat("a", generation, 1000), Ok(()));
    assert!(matches!(
        rig.group.heartbeat("nobody", generation, 1000),
        Err(GroupError::UnknownMemberId(_))
    ));
    assert_eq!(
        rig.group.heartbeat("a", generation + 5, 1000),
        Err(GroupError::IllegalGeneration {
            got: generation + 5,
            current: generation
        })
    );
    assert!(is_illegal_generation(
        &rig.group.heartbeat("a", generation - 1, 1000).unwrap_err()
    ));
}

#[test]
fn given_completing_rebalance_then_heartbeat_is_accepted() {
    let mut rig = Rig::new();
    rig.join_new("a", 0);
    rig.tick(DELAY);
    assert_eq!(rig.group.state(), GroupState::CompletingRebalance);
    assert_eq!(rig.group.heartbeat("a", 1, 200), Ok(()));
}

#[test]
fn given_heartbeats_within_session_timeout_then_member_is_never_expired() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a"], 0);
    let mut now = 0;
    for _ in 0..20 {
        now += SESSION as u64 - 1;
        assert!(rig.tick(now).is_empty());
        assert_eq!(rig.group.heartbeat("a", generation, now), Ok(()));
    }
    assert_eq!(rig.group.state(), GroupState::Stable);
}

#[test]
fn given_member_stops_heartbeating_when_session_times_out_then_removed_and_others_rebalance() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a", "b"], 0);
    assert_eq!(rig.group.heartbeat("a", generation, 5000), Ok(()));
    // b's session started when its SyncGroup was answered (at 2 * DELAY).
    let b_expires = 2 * DELAY + SESSION as u64;
    assert_eq!(rig.group.next_deadline(), Some(b_expires));
    assert!(rig.tick(b_expires - 1).is_empty());
    rig.tick(b_expires);
    assert_eq!(rig.group.member_ids(), ["a"]);
    assert_eq!(rig.group.state(), GroupState::PreparingRebalance);
    assert_eq!(
        rig.group.heartbeat("a", generation, b_expires + 1),
        Err(GroupError::RebalanceInProgress)
    );
    let (a, effects) = rig.rejoin("a", b_expires + 2);
    let ja = joined(&effects, a);
    assert_eq!(ja.generation_id, generation + 1);
    assert_eq!(ja.members.len(), 1);
}

#[test]
fn given_follower_parked_in_sync_then_session_does_not_expire_until_leader_answers() {
    let mut rig = Rig::new();
    rig.join_new("a", 0);
    rig.join_new("b", 0);
    rig.tick(DELAY);
    rig.tick(2 * DELAY);
    let generation = rig.group.generation();
    let (b, _) = rig.sync("b", generation, &[], 300);
    // a keeps its session with heartbeats but is slow to assign (within the
    // rebalance timeout).
    let mut now = 300;
    for _ in 0..2 {
        now += SESSION as u64 - 1;
        assert_eq!(rig.group.heartbeat("a", generation, now), Ok(()));
        assert!(rig.tick(now).is_empty());
    }
    assert_eq!(rig.group.member_ids(), ["a", "b"]);
    let (_, effects) = rig.sync("a", generation, &[("b", "x")], now);
    assert_eq!(synced(&effects, b).assignment, Bytes::from("x"));
}

#[test]
fn given_leader_never_syncs_when_its_session_expires_then_parked_followers_are_told_to_rejoin() {
    let mut rig = Rig::new();
    rig.join_new("a", 0);
    rig.join_new("b", 0);
    rig.tick(DELAY);
    rig.tick(2 * DELAY);
    let generation = rig.group.generation();
    let (b, _) = rig.sync("b", generation, &[], 300);
    let effects = rig.tick(2 * DELAY + SESSION as u64);
    assert_eq!(
        sync_outcome(&effects, b),
        Err(GroupError::RebalanceInProgress)
    );
    assert_eq!(rig.group.member_ids(), ["b"]);
}

#[test]
fn given_leader_heartbeats_but_never_syncs_when_rebalance_timeout_passes_then_it_is_removed() {
    let mut rig = Rig::new();
    rig.join_new("a", 0);
    rig.join_new("b", 0);
    rig.tick(DELAY);
    rig.tick(2 * DELAY);
    let generation = rig.group.generation();
    let (b, _) = rig.sync("b", generation, &[], 300);
    let sync_deadline = 2 * DELAY + REBALANCE as u64;
    for now in [9000, 18_000, 27_000] {
        assert_eq!(rig.group.heartbeat("a", generation, now), Ok(()));
        assert!(rig.tick(now).is_empty());
    }
    assert_eq!(rig.group.next_deadline(), Some(sync_deadline));
    let effects = rig.tick(sync_deadline);
    assert_eq!(
        sync_outcome(&effects, b),
        Err(GroupError::RebalanceInProgress)
    );
    assert_eq!(rig.group.member_ids(), ["b"]);
    let (b, effects) = rig.rejoin("b", sync_deadline + 1);
    let jb = joined(&effects, b);
    assert_eq!(
        (jb.generation_id, jb.leader.as_str()),
        (generation + 1, "b")
    );
}

#[test]
fn given_member_parked_in_join_then_session_is_not_checked_during_the_rebalance() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a", "b"], 0);
    let (a, _) = rig.rejoin("a", 1000);
    // a's session (from 200) would end at 10 200; parked, it waits for b.
    let _ = rig.group.heartbeat("b", generation, 9000);
    assert!(rig.tick(2 * DELAY + SESSION as u64).is_empty());
    assert_eq!(rig.group.member_ids(), ["a", "b"]);
    let (b, effects) = rig.rejoin("b", 11_000);
    joined(&effects, a);
    joined(&effects, b);
}

// ---- leaving ----

#[test]
fn given_member_leaves_then_remaining_members_rebalance_without_it() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a", "b", "c"], 0);
    assert_eq!(rig.group.leave("b", 1000), Ok(()));
    assert_eq!(rig.group.state(), GroupState::PreparingRebalance);
    let (a, _) = rig.rejoin("a", 1100);
    let (c, effects) = rig.rejoin("c", 1200);
    assert_eq!(joined(&effects, a).members.len(), 2);
    assert_eq!(joined(&effects, c).generation_id, generation + 1);
}

#[test]
fn given_leader_leaves_then_earliest_remaining_member_becomes_leader() {
    let mut rig = Rig::new();
    rig.stable(&["a", "b", "c"], 0);
    rig.group.leave("a", 1000).unwrap();
    assert_eq!(rig.group.leader(), Some("b"));
    let (b, _) = rig.rejoin("b", 1100);
    let (_, effects) = rig.rejoin("c", 1100);
    assert_eq!(joined(&effects, b).leader, "b");
}

#[test]
fn given_last_member_leaves_then_group_is_empty_with_next_generation_persisted() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a"], 0);
    rig.group.leave("a", 1000).unwrap();
    assert_eq!(rig.group.state(), GroupState::Empty);
    assert_eq!(rig.group.generation(), generation + 1);
    assert_eq!(rig.group.protocol(), None);
    assert_eq!(
        persisted(&rig.group.take_effects()),
        vec![Persist {
            generation: generation + 1,
            protocol_type: Some("consumer".to_string()),
            protocol: None,
        }]
    );
    assert!(rig.group.is_idle());
    assert_eq!(rig.group.next_deadline(), None);
}

#[test]
fn given_unknown_member_leaves_then_unknown_member_id() {
    let mut rig = Rig::new();
    rig.stable(&["a"], 0);
    assert!(matches!(
        rig.group.leave("nobody", 1000),
        Err(GroupError::UnknownMemberId(_))
    ));
    assert_eq!(rig.group.state(), GroupState::Stable);
}

#[test]
fn given_member_parked_in_join_when_it_leaves_then_its_join_is_answered_and_others_complete() {
    let mut rig = Rig::new();
    rig.stable(&["a", "b"], 0);
    let (a, _) = rig.rejoin("a", 1000);
    rig.group.leave("a", 1100).unwrap();
    let effects = rig.group.take_effects();
    assert!(matches!(
        join_error(&effects, a),
        GroupError::UnknownMemberId(_)
    ));
    // b has not rejoined yet: the rebalance still waits for it.
    assert_eq!(rig.group.state(), GroupState::PreparingRebalance);
    let (b, effects) = rig.rejoin("b", 1200);
    assert_eq!(joined(&effects, b).leader, "b");
}

#[test]
fn given_pending_member_id_when_it_leaves_then_rebalance_no_longer_waits_for_it() {
    let mut rig = Rig::new();
    rig.stable(&["a"], 0);
    let mut v4 = request("", "p", &["range"]);
    v4.require_known_member_id = true;
    rig.join_with(v4, 1000);
    let (a, effects) = rig.rejoin("a", 1100);
    assert!(effects.is_empty(), "a rebalance waits for the pending id");
    rig.group.leave("p", 1200).unwrap();
    joined(&rig.group.take_effects(), a);
}

// ---- offset commits ----

#[test]
fn given_empty_group_then_commit_with_negative_generation_is_accepted_and_others_are_not() {
    let mut rig = Rig::new();
    assert_eq!(rig.group.validate_commit("", -1, 0), Ok(()));
    assert!(matches!(
        rig.group.validate_commit("someone", 0, 0),
        Err(GroupError::UnknownMemberId(_))
    ));
    let mut rig = Rig::restored(4);
    assert!(is_illegal_generation(
        &rig.group.validate_commit("someone", 4, 0).unwrap_err()
    ));
}

#[test]
fn given_active_group_then_commit_needs_current_member_and_generation() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a", "b"], 0);
    assert_eq!(rig.group.validate_commit("a", generation, 1000), Ok(()));
    assert!(matches!(
        rig.group.validate_commit("", -1, 1000),
        Err(GroupError::UnknownMemberId(_))
    ));
    assert!(matches!(
        rig.group.validate_commit("nobody", generation, 1000),
        Err(GroupError::UnknownMemberId(_))
    ));
    assert!(is_illegal_generation(
        &rig.group
            .validate_commit("a", generation - 1, 1000)
            .unwrap_err()
    ));
    // During a rebalance members may still commit what they processed.
    rig.rejoin("a", 2000);
    assert_eq!(rig.group.validate_commit("b", generation, 2100), Ok(()));
}

#[test]
fn given_completing_rebalance_then_commit_gets_rebalance_in_progress() {
    let mut rig = Rig::new();
    rig.join_new("a", 0);
    rig.tick(DELAY);
    assert_eq!(
        rig.group.validate_commit("a", 1, 200),
        Err(GroupError::RebalanceInProgress)
    );
}

#[test]
fn given_commits_instead_of_heartbeats_then_session_is_kept() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a"], 0);
    let later = 2 * DELAY + SESSION as u64 - 1;
    assert_eq!(rig.group.validate_commit("a", generation, later), Ok(()));
    assert!(rig.tick(later + 10).is_empty());
    assert_eq!(rig.group.member_ids(), ["a"]);
}

// ---- restarts ----

#[test]
fn given_group_restored_after_restart_then_members_from_before_get_illegal_generation() {
    // Before the restart the group was at generation 7 with member "old".
    let mut rig = Rig::restored(7);
    assert_eq!(rig.group.state(), GroupState::Empty);
    assert_eq!(rig.group.generation(), 8);
    assert!(is_illegal_generation(
        &rig.group.heartbeat("old", 7, 0).unwrap_err()
    ));
    assert!(is_illegal_generation(
        &rig.group.validate_commit("old", 7, 0).unwrap_err()
    ));
    let (token, effects) = rig.sync("old", 7, &[], 0);
    assert!(is_illegal_generation(
        &sync_outcome(&effects, token).unwrap_err()
    ));
    let (token, effects) = rig.rejoin("old", 0);
    assert!(matches!(
        join_error(&effects, token),
        GroupError::UnknownMemberId(_)
    ));
    // New members land in a generation above every earlier one.
    let (token, _) = rig.join_new("new", 10);
    let effects = rig.tick(10 + DELAY);
    assert_eq!(joined(&effects, token).generation_id, 9);
    assert_eq!(persisted(&effects)[0].generation, 9);
}

// ---- deletion and persistence failures ----

#[test]
fn given_group_with_members_then_it_cannot_be_marked_dead() {
    let mut rig = Rig::new();
    rig.stable(&["a"], 0);
    assert_eq!(rig.group.mark_dead(), Err(GroupError::NonEmptyGroup));
    rig.group.leave("a", 1000).unwrap();
    assert_eq!(rig.group.mark_dead(), Ok(()));
    assert_eq!(rig.group.state(), GroupState::Dead);
    let (token, effects) = rig.join_new("b", 1100);
    assert!(matches!(
        join_error(&effects, token),
        GroupError::CoordinatorNotAvailable(_)
    ));
    assert!(matches!(
        rig.group.validate_commit("", -1, 1100),
        Err(GroupError::CoordinatorNotAvailable(_))
    ));
}

#[test]
fn given_forced_rebalance_after_failed_persist_then_members_rejoin_into_next_generation() {
    let mut rig = Rig::new();
    rig.join_new("a", 0);
    rig.join_new("b", 0);
    rig.tick(DELAY);
    rig.tick(2 * DELAY);
    let generation = rig.group.generation();
    rig.group.force_rebalance(300);
    assert_eq!(rig.group.state(), GroupState::PreparingRebalance);
    let (a, _) = rig.rejoin("a", 400);
    let (b, effects) = rig.rejoin("b", 400);
    assert_eq!(joined(&effects, a).generation_id, generation + 1);
    assert_eq!(joined(&effects, b).generation_id, generation + 1);
}

// ---- describe ----

#[test]
fn given_stable_group_then_describe_shows_members_with_metadata_and_assignment() {
    let mut rig = Rig::new();
    let generation = rig.stable(&["a", "b"], 0);
    let description = rig.group.describe();
    assert_eq!(description.state, GroupState::Stable);
    assert_eq!(description.generation, generation);
    assert_eq!(description.protocol_type, "consumer");
    assert_eq!(description.protocol, "range");
    assert_eq!(description.members.len(), 2);
    assert_eq!(description.members[0].member_id, "a");
    assert_eq!(description.members[0].metadata, Bytes::from("range-meta"));
    assert_eq!(
        description.members[1].assignment,
        Bytes::from("b-assignment")
    );
    rig.rejoin("a", 1000);
    let rebalancing = rig.group.describe();
    assert_eq!(rebalancing.state, GroupState::PreparingRebalance);
    assert_eq!(rebalancing.protocol, "");
    assert!(rebalancing.members.iter().all(|m| m.assignment.is_empty()));
}

// ---- properties over random event sequences ----

#[derive(Debug, Clone)]
enum Event {
    JoinNew { v4: bool, protocol: u8 },
    Rejoin { member: u8, protocol: u8 },
    Sync { member: u8, stale: bool },
    Heartbeat { member: u8 },
    Leave { member: u8 },
    Wait { ms: u64 },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (any::<bool>(), 0u8..3).prop_map(|(v4, protocol)| Event::JoinNew { v4, protocol }),
        (0u8..8, 0u8..3).prop_map(|(member, protocol)| Event::Rejoin { member, protocol }),
        (0u8..8, any::<bool>()).prop_map(|(member, stale)| Event::Sync { member, stale }),
        (0u8..8).prop_map(|member| Event::Heartbeat { member }),
        (0u8..8).prop_map(|member| Event::Leave { member }),
        (0u64..15_000).prop_map(|ms| Event::Wait { ms }),
    ]
}

fn protocols(choice: u8) -> &'static [&'static str] {
    match choice {
        0 => &["range"],
        1 => &["range", "roundrobin"],
        _ => &["roundrobin"],
    }
}

proptest! {
    /// Whatever happens, every request is answered exactly once (once every
    /// member has left and the timers have run), the generation never goes
    /// backwards, a generation is persisted before any join answer carries
    /// it, and a Stable or CompletingRebalance group has a leader among its
    /// members.
    #[test]
    fn any_event_sequence_answers_every_request_once_and_never_lowers_the_generation(
        events in proptest::collection::vec(event(), 1..80)
    ) {
        let mut rig = Rig::new();
        let mut now: Millis = 0;
        let mut issued: Vec<u32> = Vec::new();
        let mut answered: BTreeMap<u32, usize> = BTreeMap::new();
        let mut known: Vec<String> = Vec::new();
        let mut last_generation = 0;
        let mut persisted_generation = 0;
        let mut next_id = 0;
        let apply = |effects: Vec<Effect<u32>>,
                         answered: &mut BTreeMap<u32, usize>,
                         known: &mut Vec<String>,
                         persisted_generation: &mut i32| {
            for effect in effects {
                match effect {
                    Effect::Persist(p) => *persisted_generation = p.generation,
                    Effect::Join { reply, outcome } => {
                        *answered.entry(reply).or_default() += 1;
                        match outcome {
                            Ok(joined) => {
                                assert!(joined.generation_id <= *persisted_generation,
                                    "join answer with unpersisted generation {}", joined.generation_id);
                                if !known.contains(&joined.member_id) {
                                    known.push(joined.member_id);
                                }
                            }
                            Err(GroupError::MemberIdRequired(id)) => known.push(id),
                            Err(_) => {}
                        }
                    }
                    Effect::Sync { reply, .. } => *answered.entry(reply).or_default() += 1,
                }
            }
        };
        for event in events {
            match event {
                Event::JoinNew { v4, protocol } => {
                    next_id += 1;
                    let mut join = request("", &format!("m{next_id}"), protocols(protocol));
                    join.require_known_member_id = v4;
                    let (token, effects) = rig.join_with(join, now);
                    issued.push(token);
                    apply(effects, &mut answered, &mut known, &mut persisted_generation);
                }
                Event::Rejoin { member, protocol } => {
                    let id = known.get(usize::from(member)).cloned().unwrap_or_default();
                    let (token, effects) = rig.join_with(request(&id, "fresh", protocols(protocol)), now);
                    issued.push(token);
                    apply(effects, &mut answered, &mut known, &mut persisted_generation);
                }
                Event::Sync { member, stale } => {
                    let id = known.get(usize::from(member)).cloned().unwrap_or_default();
                    let generation = rig.group.generation() - i32::from(stale);
                    let assignments: Vec<(String, String)> =
                        known.iter().map(|m| (m.clone(), m.clone())).collect();
                    let refs: Vec<(&str, &str)> =
                        assignments.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                    let (token, effects) = rig.sync(&id, generation, &refs, now);
                    issued.push(token);
                    apply(effects, &mut answered, &mut known, &mut persisted_generation);
                }
                Event::Heartbeat { member } => {
                    let id = known.get(usize::from(member)).cloned().unwrap_or_default();
                    let generation = rig.group.generation();
                    let _ = rig.group.heartbeat(&id, generation, now);
                }
                Event::Leave { member } => {
                    let id = known.get(usize::from(member)).cloned().unwrap_or_default();
                    let _ = rig.group.leave(&id, now);
                    let effects = rig.group.take_effects();
                    apply(effects, &mut answered, &mut known, &mut persisted_generation);
                }
                Event::Wait { ms } => {
                    now += ms;
                    let effects = rig.tick(now);
                    apply(effects, &mut answered, &mut known, &mut persisted_generation);
                }
            }
            let generation = rig.group.generation();
            prop_assert!(generation >= last_generation);
            last_generation = generation;
            if matches!(rig.group.state(), GroupState::Stable | GroupState::CompletingRebalance) {
                let leader = rig.group.leader().map(str::to_string);
                prop_assert!(leader.is_some_and(|l| rig.group.member_ids().contains(&l)));
            }
            if let Some(deadline) = rig.group.next_deadline() {
                prop_assert!(deadline >= now, "a timer is overdue: {deadline} < {now}");
            }
            for (token, count) in &answered {
                prop_assert_eq!(*count, 1, "reply {} answered {} times", token, count);
            }
        }
        // Everyone leaves; the timers run out.
        for id in rig.group.member_ids() {
            let _ = rig.group.leave(&id, now);
        }
        let effects = rig.group.take_effects();
        apply(effects, &mut answered, &mut known, &mut persisted_generation);
        now += 10 * REBALANCE as u64;
        let effects = rig.tick(now);
        apply(effects, &mut answered, &mut known, &mut persisted_generation);
        prop_assert_eq!(rig.group.state(), GroupState::Empty);
        for token in issued {
            prop_assert_eq!(answered.get(&token).copied(), Some(1), "reply {} unanswered", token);
        }
    }
}
