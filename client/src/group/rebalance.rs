//! The rebalance itself, as `poll()` runs it: revoke everything held
//! (auto-commit, then the listener), JoinGroup and SyncGroup until the
//! member holds a generation (running the assignor when it leads), then
//! read the new assignment's committed offsets, call the listener, and
//! position the fetcher. Every decision about error codes comes from
//! [`Membership`](super::membership::Membership); this file does the I/O
//! and the bookkeeping of the [`GroupConsumer`].

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use sediment_protocol::messages::join_group::JoinGroupResponseMember;
use sediment_protocol::ErrorCode;
use tokio::time::Instant;

use super::assignor::{AssignorKind, MemberSubscription};
use super::listener::{Assigned, Revoked};
use super::membership::{Phase, Recovery};
use super::protocol;
use super::GroupConsumer;
use crate::consumer::{AutoOffsetReset, Offset};
use crate::error::{ClientError, Result};
use crate::TopicPartition;

impl GroupConsumer {
    /// Revoke (if holding a generation), join, sync, and take the new assignment.
    pub(super) async fn rebalance(&mut self) -> Result<()> {
        if self.client.membership().phase() == Phase::Stable {
            self.revoke(false).await;
        }
        let reason = self
            .client
            .membership()
            .rejoin_reason()
            .unwrap_or("first join")
            .to_string();
        tracing::debug!(group = self.group_id(), %reason, "joining the group");
        let (generation, partitions) = self.join_and_sync().await?;
        tracing::debug!(
            group = self.group_id(),
            generation,
            ?partitions,
            "joined the group"
        );
        self.assignment = partitions;
        self.positions_pending = true;
        self.last_metadata_check = Instant::now();
        self.start_positions().await
    }

    /// Gives up every partition: auto-commit, the listener, then forgets
    /// positions and buffered records. Returns the auto-commit's failure.
    pub(super) async fn revoke(&mut self, closing: bool) -> Option<ClientError> {
        let lost = self.client.membership().is_lost();
        let partitions = std::mem::take(&mut self.assignment);
        let mut failure = None;
        if self.config.auto_commit.is_some() && !lost {
            let offsets = self
                .progress
                .uncommitted_releases(&self.client.committed_cache());
            if let Err(error) = self.client.commit(offsets, self.deadline()).await {
                tracing::warn!(group = self.group_id(), %error, "commit on revoke failed; records will be redelivered");
                failure = Some(error);
            }
        }
        if let Some(listener) = self.listener.as_mut() {
            let listener = listener.get_mut().unwrap_or_else(|p| p.into_inner());
            let mut revoked = Revoked {
                client: &self.client,
                partitions: &partitions,
                returned: self.progress.returned(),
                lost,
                closing,
            };
            listener.on_revoked(&mut revoked).await;
        }
        self.buffer.clear();
        self.progress.clear();
        self.positions_pending = false;
        self.leader_view = None;
        // No partitions: nothing to look up, so this cannot fail.
        let _ = self.consumer.assign_at(Vec::new()).await;
        failure
    }

    /// JoinGroup and SyncGroup until this member holds a generation; returns
    /// it with the assignment.
    async fn join_and_sync(&mut self) -> Result<(i32, Vec<TopicPartition>)> {
        let metadata = protocol::encode_subscription(&self.subscription, &[], -1)?;
        let protocols: Vec<(AssignorKind, Bytes)> = self
            .config
            .assignors
            .iter()
            .map(|kind| (*kind, metadata.clone()))
            .collect();
        // Bounds the retries after errors, not a join the coordinator holds
        // (that one waits up to its own request timeout plus the rebalance
        // timeout); past it, poll() returns empty and the next one goes on.
        let deadline = Instant::now() + self.client.request_timeout();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.client.membership().begin_join();
            let response = match self.client.join(&protocols).await {
                Ok(response) => response,
                Err(error) => {
                    self.retry_or_fail(error, attempt, deadline).await?;
                    continue;
                }
            };
            let code = response.error_code;
            let step = self.client.membership().on_join(
                code,
                &response.member_id,
                response.generation_id,
                &response.leader,
            );
            if step != Recovery::Done {
                if code == ErrorCode::MemberIdRequired.code() {
                    // KIP-394: rejoin at once with the id the coordinator gave.
                    tracing::debug!(group = self.group_id(), member_id = %response.member_id, "coordinator assigned a member id; rejoining with it");
                    continue;
                }
                self.handle_step(step, code, "join group", attempt, deadline)
                    .await?;
                continue;
            }
            let generation = response.generation_id;
            let protocol_name = response.protocol_name.clone().unwrap_or_default();
            let assignments = if self.client.membership().is_leader_elect() {
                match self.lead(&protocol_name, &response.members).await {
                    Ok(assignments) => assignments,
                    Err(error) => {
                        self.retry_or_fail(error, attempt, deadline).await?;
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            let sync = match self
                .client
                .sync(generation, &protocol_name, assignments)
                .await
            {
                Ok(sync) => sync,
                Err(error) => {
                    self.retry_or_fail(error, attempt, deadline).await?;
                    continue;
                }
            };
            let step = self.client.membership().on_sync(sync.error_code);
            if step != Recovery::Done {
                self.handle_step(step, sync.error_code, "sync group", attempt, deadline)
                    .await?;
                continue;
            }
            return match protocol::decode_assignment(sync.assignment) {
                Ok(partitions) => Ok((generation, partitions)),
                Err(error) => {
                    self.client.request_rejoin("undecodable assignment");
                    Err(error)
                }
            };
        }
    }

    /// After a transport error in the join loop: back off and go on while
    /// it is retriable and time remains.
    async fn retry_or_fail(
        &self,
        error: ClientError,
        attempt: u32,
        deadline: Instant,
    ) -> Result<()> {
        if !error.is_retriable() || Instant::now() >= deadline {
            return Err(error);
        }
        tracing::debug!(group = self.group_id(), %error, attempt, "group join failed; retrying");
        tokio::time::sleep(self.client.cluster().retry_backoff(attempt)).await;
        Ok(())
    }

    /// Acts on a JoinGroup/SyncGroup error code: Ok(()) = try again.
    async fn handle_step(
        &self,
        step: Recovery,
        code: i16,
        what: &str,
        attempt: u32,
        deadline: Instant,
    ) -> Result<()> {
        let error = ClientError::from_code(code, || format!("{what} `{}`", self.group_id()), None);
        let Some(error) = error else {
            return Ok(());
        };
        match step {
            Recovery::Fatal => return Err(error),
            _ if Instant::now() >= deadline => return Err(error),
            Recovery::Rediscover => self.client.forget_coordinator(None).await,
            _ => {}
        }
        tracing::debug!(group = self.group_id(), %error, "rejoining");
        tokio::time::sleep(self.client.cluster().retry_backoff(attempt)).await;
        Ok(())
    }

    /// As leader: decodes the members' subscriptions, runs the chosen
    /// assignor over current metadata, encodes every member's assignment.
    async fn lead(
        &mut self,
        protocol_name: &str,
        members: &[JoinGroupResponseMember],
    ) -> Result<Vec<(String, Bytes)>> {
        let kind = AssignorKind::from_protocol_name(protocol_name).ok_or_else(|| {
            ClientError::Protocol {
                addr: "group coordinator".into(),
                reason: format!(
                    "the coordinator chose assignor `{protocol_name}`, which this member did not offer"
                ),
            }
        })?;
        let subscriptions: Vec<MemberSubscription> = members
            .iter()
            .map(|m| {
                let topics = protocol::decode_subscription(m.metadata.clone()).unwrap_or_else(|error| {
                    tracing::warn!(group = self.group_id(), member = %m.member_id, %error, "undecodable subscription; assigning it nothing");
                    BTreeSet::new()
                });
                MemberSubscription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    topics,
                }
            })
            .collect();
        let topics: Vec<String> = subscriptions
            .iter()
            .flat_map(|s| s.topics.iter().cloned())
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect();
        let counts = self.client.partition_counts(&topics).await?;
        let plan = kind.assign(&subscriptions, &counts);
        tracing::debug!(
            group = self.group_id(),
            assignor = protocol_name,
            ?plan,
            "assigned partitions as leader"
        );
        self.leader_view = Some((topics, counts));
        plan.into_iter()
            .map(|(member, partitions)| Ok((member, protocol::encode_assignment(&partitions)?)))
            .collect()
    }

    /// Reads the committed offsets of the assignment, calls `on_assigned`,
    /// and positions the fetcher: committed offset, else the listener's
    /// seek, else `auto_offset_reset`.
    pub(super) async fn start_positions(&mut self) -> Result<()> {
        let committed = self
            .client
            .fetch_committed(&self.assignment, self.deadline())
            .await?;
        let generation = self.generation().unwrap_or(-1);
        let mut assigned = Assigned {
            partitions: &self.assignment,
            committed: &committed,
            generation,
            seeks: BTreeMap::new(),
        };
        if let Some(listener) = self.listener.as_mut() {
            let listener = listener.get_mut().unwrap_or_else(|p| p.into_inner());
            listener.on_assigned(&mut assigned).await;
        }
        let seeks = assigned.seeks;
        let reset = match self.config.consumer.auto_offset_reset {
            AutoOffsetReset::Earliest => Offset::Earliest,
            AutoOffsetReset::Latest => Offset::Latest,
        };
        let starts: Vec<(TopicPartition, Offset)> = self
            .assignment
            .iter()
            .map(|tp| {
                let committed = committed.get(tp).copied().flatten().map(Offset::At);
                let start = seeks.get(tp).copied().or(committed).unwrap_or(reset);
                (tp.clone(), start)
            })
            .collect();
        {
            let mut cache = self.client.committed_cache();
            cache.clear();
            cache.extend(
                committed
                    .iter()
                    .filter_map(|(tp, offset)| offset.map(|o| (tp.clone(), o))),
            );
        }
        self.progress.clear();
        let resolved = self.consumer.assign_at(starts.clone()).await;
        // Only now: a poll() cancelled before this point looks the
        // positions up again rather than fetching with the old assignment.
        self.positions_pending = false;
        for (tp, start) in &starts {
            if seeks.contains_key(tp) {
                continue;
            }
            let position = match start {
                Offset::At(at) => Some(*at),
                _ => self.consumer.position(&tp.topic, tp.partition),
            };
            if let Some(position) = position {
                self.progress.start(tp.clone(), position);
            }
        }
        match resolved {
            // Unresolved positions are looked up again by the next fetch.
            Err(error) if !error.is_retriable() => Err(error),
            _ => Ok(()),
        }
    }
}
