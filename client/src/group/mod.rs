//! Consumer groups: [`GroupConsumer`] joins a group with the classic
//! (eager) group protocol, gets partitions assigned by the group leader's
//! assignor ([`AssignorKind::Range`] or [`AssignorKind::RoundRobin`]),
//! heartbeats in the background, and commits offsets.
//!
//! ```no_run
//! use sediment_client::{AutoOffsetReset, ClientBuilder, GroupConsumerConfig};
//!
//! # async fn demo() -> sediment_client::Result<()> {
//! let client = ClientBuilder::new("127.0.0.1:9092").build().await?;
//! let config = GroupConsumerConfig::new("billing")
//!     .with_auto_offset_reset(AutoOffsetReset::Earliest)
//!     .with_auto_commit(None); // commit by hand, after processing
//! let mut consumer = client.group_consumer(config)?;
//! consumer.subscribe(["orders"])?;
//! loop {
//!     let records = consumer.poll().await?;
//!     for record in &records {
//!         println!("{}-{} @{}", record.topic, record.partition, record.offset);
//!     }
//!     consumer.commit().await?; // everything handed out so far is processed
//! #   break;
//! }
//! consumer.close().await
//! # }
//! ```
//!
//! # What is committed
//!
//! A committed offset is, as in Kafka, the next offset to read. The
//! consumer tracks two positions per partition:
//!
//! - **returned**: just after the last record handed to the application
//!   (by `poll()` or as a `stream()` item);
//! - **released**: just after the last record the application has
//!   *returned control for*: every record of an earlier `poll()` once
//!   `poll()` is called again, and every earlier item of `stream()` once the
//!   next item is asked for.
//!
//! Before any record of a partition is handed out, both are its start
//! position: the committed offset, or where `auto_offset_reset` put it.
//! After [`GroupConsumer::seek`] a partition has neither until records from
//! the new position are handed out.
//!
//! - [`GroupConsumer::commit`] (and `commit_async`) commits the **returned**
//!   positions: call it when everything you were given is processed.
//! - [`GroupConsumer::commit_offsets`] commits exactly what you pass.
//!
//! # Auto-commit
//!
//! With `auto_commit: Some(interval)`, the consumer commits **released**
//! positions, and only at these moments:
//!
//! 1. at the start of `poll()` (and before each `stream()` item), at most
//!    once per `interval`, without waiting for the answer;
//! 2. when partitions are revoked by a rebalance, before the member rejoins,
//!    waiting for the answer (unless the generation is already lost);
//! 3. in [`GroupConsumer::close`], waiting for the answer.
//!
//! So auto-commit never commits a record that is still being processed: the
//! records returned by the last `poll()` are committed only once the
//! application calls `poll()` again, and never by `close()`, since an
//! application may be closing *because* processing failed. Nor does it ever
//! commit an offset beyond a record `poll()` returned. The price is
//! redelivery: after a crash, or a `close()` without a `commit()`, the last
//! batch (and whatever was released after the last auto-commit) is read
//! again — at least once, never lost. (This is the reading of Kafka's
//! auto-commit that Jepsen's Bufstream analysis found the Java client to
//! implement; committing the records of the *latest* poll loses them when
//! the consumer crashes mid-batch.)
//!
//! "Returned control" assumes the application processes a batch before it
//! calls `poll()` again. If it hands records to other tasks and polls on,
//! they count as processed when it polls: use `auto_commit: None` and
//! commit what those tasks finished, with [`GroupConsumer::commit_offsets`].
//!
//! # Rebalances
//!
//! The heartbeat task notices a rebalance within `heartbeat_interval`; the
//! next `poll()` (a waiting one is woken) revokes every partition — the
//! auto-commit above, then [`RebalanceListener::on_revoked`] with a chance to
//! commit — rejoins, lets the leader run the assignor, reads the committed
//! offsets of the new assignment, calls
//! [`RebalanceListener::on_assigned`], and goes on fetching. Records of
//! revoked partitions fetched but not yet handed out are dropped; they are
//! read again by their next owner from the committed offset.
//!
//! Error codes follow Kafka's Java consumer: MEMBER_ID_REQUIRED → rejoin at
//! once with the id given; REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION,
//! UNKNOWN_MEMBER_ID → rejoin (the last with a new member id);
//! NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE → find the coordinator again.
//! `poll()` retries transient trouble itself (returning an empty batch
//! meanwhile) and returns only errors a retry cannot fix.
//!
//! # Closing
//!
//! [`GroupConsumer::close`] revokes (see above) and sends LeaveGroup, so the
//! group rebalances at once. Dropping the consumer without `close()` stops
//! its heartbeats; the coordinator then drops the member after the session
//! timeout.

/// A group member's identity for transactional offset commits (Kafka's
/// `ConsumerGroupMetadata`), from [`GroupConsumer::group_metadata`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// The group.
    pub group_id: String,
    /// The member's generation, -1 when it has none.
    pub generation_id: i32,
    /// The member id, empty when it has none.
    pub member_id: String,
}

mod assignor;
mod config;
mod coordinator;
mod heartbeat;
mod listener;
mod membership;
mod offsets;
mod progress;
mod protocol;
mod rebalance;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::Stream;
use tokio::task::AbortHandle;
use tokio::time::Instant;

pub use assignor::AssignorKind;
pub use config::GroupConsumerConfig;
pub use listener::{Assigned, RebalanceEvent, RebalanceListener, Revoked};
pub use offsets::CommitHandle;

use crate::cluster::Cluster;
use crate::consumer::{Consumer, ConsumerRecord, IsolationLevel, Offset};
use crate::error::{ClientError, Result};
use crate::TopicPartition;
use coordinator::GroupClient;
use listener::DynListener;
use membership::{Phase, Recovery};
use progress::Progress;

/// How often the leader checks whether the subscribed topics' partition
/// counts changed (a new partition needs a new assignment).
const LEADER_METADATA_CHECK: Duration = Duration::from_secs(30);

/// A consumer in a consumer group, from
/// [`Client::group_consumer`](crate::Client::group_consumer). See the
/// [module documentation](self).
pub struct GroupConsumer {
    config: GroupConsumerConfig,
    consumer: Consumer,
    client: Arc<GroupClient>,
    heartbeat: AbortHandle,
    committer: AbortHandle,
    subscription: BTreeSet<String>,
    assignment: Vec<TopicPartition>,
    progress: Progress,
    /// Fetched records not yet handed out (only `stream()` leaves any).
    buffer: VecDeque<ConsumerRecord>,
    /// Behind a mutex only so that the consumer is `Sync` without asking
    /// listeners to be; it is reached through `get_mut`, never locked.
    listener: Option<Mutex<Box<dyn DynListener>>>,
    /// The assignment's start positions are still to be looked up.
    positions_pending: bool,
    last_auto_commit: Instant,
    /// As leader: the subscribed topics and their partition counts the
    /// current assignment was computed from.
    leader_view: Option<(Vec<String>, BTreeMap<String, i32>)>,
    last_metadata_check: Instant,
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.heartbeat.abort();
        self.committer.abort();
    }
}

impl GroupConsumer {
    /// A member over `cluster` (see
    /// [`Client::group_consumer`](crate::Client::group_consumer)); starts the
    /// heartbeat and committer tasks. The group is joined by the first
    /// `poll()` after [`GroupConsumer::subscribe`].
    pub(crate) fn new(cluster: Cluster, config: GroupConsumerConfig) -> Result<GroupConsumer> {
        config.validate()?;
        let consumer = Consumer::new(cluster, config.consumer.clone())?;
        let (commits, commit_queue) = offsets::commit_queue();
        let client = Arc::new(GroupClient::new(
            consumer.cluster().clone(),
            config.group_id.clone(),
            config.session_timeout,
            config.rebalance_timeout,
            config.consumer.isolation_level == IsolationLevel::ReadCommitted,
            commits,
        ));
        let heartbeat = heartbeat::spawn(Arc::clone(&client), config.heartbeat_interval);
        let committer = offsets::spawn_committer(Arc::clone(&client), commit_queue);
        let now = Instant::now();
        Ok(GroupConsumer {
            config,
            consumer,
            client,
            heartbeat,
            committer,
            subscription: BTreeSet::new(),
            assignment: Vec::new(),
            progress: Progress::default(),
            buffer: VecDeque::new(),
            listener: None,
            positions_pending: false,
            last_auto_commit: now,
            leader_view: None,
            last_metadata_check: now,
        })
    }

    /// Sets the topics to consume. Takes effect at the next `poll()`, which
    /// joins the group (or rejoins, if the topics changed).
    pub fn subscribe<I, T>(&mut self, topics: I) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let topics: BTreeSet<String> = topics.into_iter().map(Into::into).collect();
        if topics.is_empty() || topics.iter().any(String::is_empty) {
            return Err(ClientError::Config(
                "subscribe needs at least one topic, and no empty topic name".into(),
            ));
        }
        if topics != self.subscription {
            self.subscription = topics;
            if self.client.membership().phase() != Phase::Unjoined {
                self.client.request_rejoin("the subscription changed");
            }
        }
        Ok(())
    }

    /// Installs the rebalance callbacks (replacing earlier ones).
    pub fn set_rebalance_listener(&mut self, listener: impl RebalanceListener) {
        self.listener = Some(Mutex::new(Box::new(listener)));
    }

    /// The subscribed topics.
    pub fn subscription(&self) -> Vec<String> {
        self.subscription.iter().cloned().collect()
    }

    /// The partitions this member owns in the current generation.
    pub fn assignment(&self) -> &[TopicPartition] {
        &self.assignment
    }

    /// The group id.
    pub fn group_id(&self) -> &str {
        self.client.group_id()
    }

    /// The current generation, while this member holds one.
    pub fn generation(&self) -> Option<i32> {
        self.client.membership().generation()
    }

    /// The member id the coordinator gave (empty before the first join).
    pub fn member_id(&self) -> String {
        self.client.membership().member_id().to_string()
    }

    /// True when this member leads the current generation (runs the assignor).
    pub fn is_leader(&self) -> bool {
        self.client.membership().is_leader()
    }

    /// Fetches the next records: at most one fetch round (up to
    /// `fetch_max_wait`), possibly empty. Joins or rejoins the group first
    /// when needed, which may take a whole rebalance. Calling it releases
    /// the records of the previous call for auto-commit (see the
    /// [module documentation](self#auto-commit)).
    ///
    /// Cancelling it (with `tokio::time::timeout`, say) loses no records:
    /// a rebalance it was running is finished by the next call, and records
    /// it had fetched are fetched again.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        self.fill().await?;
        let records: Vec<ConsumerRecord> = self.buffer.drain(..).collect();
        for record in &records {
            self.progress.hand_out(record);
        }
        Ok(records)
    }

    /// The records of successive fetches one at a time. Asking for the next
    /// item releases the previous one for auto-commit. Errors are yielded as
    /// items and the stream goes on; it never ends by itself.
    pub fn stream(&mut self) -> impl Stream<Item = Result<ConsumerRecord>> + '_ {
        futures_util::stream::unfold(self, |consumer| async move {
            loop {
                consumer.progress.release_all();
                consumer.maybe_auto_commit();
                let needs_join = consumer.client.membership().needs_join();
                if !needs_join {
                    if let Some(record) = consumer.buffer.pop_front() {
                        consumer.progress.hand_out(&record);
                        return Some((Ok(record), consumer));
                    }
                }
                if let Err(error) = consumer.fill().await {
                    return Some((Err(error), consumer));
                }
            }
        })
    }

    /// Commits the position after every record handed out so far (for
    /// every assigned partition; a partition nothing was read from yet
    /// commits its start position) and waits for the acknowledgement.
    /// Fails with REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION /
    /// UNKNOWN_MEMBER_ID when the group moved on (the records are then
    /// redelivered to their next owner).
    pub async fn commit(&self) -> Result<()> {
        let offsets = self.progress.returned().clone();
        self.client.commit(offsets, self.deadline()).await
    }

    /// Like [`GroupConsumer::commit`], without waiting: the commit is sent
    /// in the background; await the handle for its outcome, or drop it.
    pub fn commit_async(&self) -> CommitHandle {
        let offsets = self.progress.returned().clone();
        self.client.commit_queued(offsets, self.deadline())
    }

    /// Commits exactly `offsets` (the next offset to read, per partition)
    /// and waits for the acknowledgement.
    pub async fn commit_offsets(&self, offsets: BTreeMap<TopicPartition, i64>) -> Result<()> {
        self.client.commit(offsets, self.deadline()).await
    }

    /// The group's committed offset of a partition (`None`: none), asked of
    /// the coordinator now.
    pub async fn committed(&self, topic: &str, partition: i32) -> Result<Option<i64>> {
        let tp = TopicPartition::new(topic, partition);
        let answers = self
            .client
            .fetch_committed(std::slice::from_ref(&tp), self.deadline())
            .await?;
        Ok(answers.get(&tp).copied().flatten())
    }

    /// The offset of the next record the application gets from an assigned
    /// partition, once known.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.buffer
            .iter()
            .find(|r| &*r.topic == topic && r.partition == partition)
            .map(|r| r.offset)
            .or_else(|| self.consumer.position(topic, partition))
    }

    /// Who this member is in its group now, for
    /// [`Producer::send_offsets_to_group_transaction`](crate::Producer::send_offsets_to_group_transaction):
    /// the broker refuses the offsets of a member whose generation is over
    /// (a zombie that lost its partitions in a rebalance).
    pub fn group_metadata(&self) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata {
            group_id: self.group_id().to_string(),
            generation_id: self.generation().unwrap_or(-1),
            member_id: self.member_id(),
        }
    }

    /// As of the last fetch, the offset this member can read up to in an
    /// assigned partition (the high watermark, or under read_committed the
    /// last stable offset): when [`GroupConsumer::position`] is there, the
    /// member has caught up.
    pub fn readable_end(&self, topic: &str, partition: i32) -> Option<i64> {
        self.consumer.readable_end(topic, partition)
    }

    /// Moves the position of an assigned partition (until the next
    /// rebalance, which starts from the committed offset again). Nothing
    /// is committed for the partition until records from the new position
    /// are handed out.
    pub async fn seek(&mut self, topic: &str, partition: i32, offset: Offset) -> Result<()> {
        let tp = TopicPartition::new(topic, partition);
        if !self.assignment.contains(&tp) {
            return Err(ClientError::NotAssigned {
                topic: topic.to_string(),
                partition,
            });
        }
        self.buffer
            .retain(|r| !(&*r.topic == topic && r.partition == partition));
        self.progress.forget(&tp);
        self.consumer.seek(topic, partition, offset).await
    }

    /// Leaves the group: commits what auto-commit may commit (not the
    /// records of the last `poll()`), calls
    /// [`RebalanceListener::on_revoked`], sends LeaveGroup and stops the
    /// heartbeats. Returns the auto-commit's failure, if any (the group is
    /// left anyway).
    pub async fn close(mut self) -> Result<()> {
        self.heartbeat.abort();
        let phase = self.client.membership().phase();
        let mut result = Ok(());
        if phase == Phase::Stable {
            if let Some(error) = self.revoke(true).await {
                result = Err(error);
            }
        }
        let member_id = self.member_id();
        if phase != Phase::Unjoined && !member_id.is_empty() {
            match self.client.leave(&member_id).await {
                Ok(0) => tracing::debug!(group = self.group_id(), %member_id, "left the group"),
                Ok(code) => tracing::debug!(group = self.group_id(), code, "LeaveGroup refused"),
                Err(error) => tracing::debug!(group = self.group_id(), %error, "LeaveGroup failed"),
            }
        }
        self.client.membership().on_leave();
        result
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.client.request_timeout()
    }

    /// Joins if needed, then fetches once into the buffer unless it holds
    /// records already.
    async fn fill(&mut self) -> Result<()> {
        if self.subscription.is_empty() {
            return Err(ClientError::Config(
                "poll() before subscribe(): the group consumer has no topics".into(),
            ));
        }
        self.progress.release_all();
        self.maybe_auto_commit();
        loop {
            if let Some(error) = self.client.take_fatal() {
                return Err(error);
            }
            self.maybe_check_metadata().await;
            if self.client.membership().needs_join() {
                if let Err(error) = self.rebalance().await {
                    return self.absorb_retriable(error).await;
                }
            }
            if self.positions_pending {
                if let Err(error) = self.start_positions().await {
                    return self.absorb_retriable(error).await;
                }
            }
            if !self.buffer.is_empty() {
                return Ok(());
            }
            let client = Arc::clone(&self.client);
            let fetched = tokio::select! {
                biased;
                () = client.wake().notified() => None,
                result = self.consumer.poll() => Some(result),
            };
            match fetched {
                // Woken for a rejoin (or an error): handle it before fetching.
                None => continue,
                Some(records) => {
                    self.buffer.extend(records?);
                    return Ok(());
                }
            }
        }
    }

    /// A transient error (a lost connection, a coordinator that moved, a
    /// rebalance that keeps restarting) becomes an empty poll after a
    /// back-off, and the next `poll()` tries again; others are returned.
    async fn absorb_retriable(&self, error: ClientError) -> Result<()> {
        let transient = error.is_retriable()
            || error.kafka_error().is_some_and(|e| {
                matches!(
                    membership::recovery(e.code()),
                    Recovery::Rediscover | Recovery::Retry | Recovery::Rejoin
                )
            });
        if !transient {
            return Err(error);
        }
        tracing::debug!(group = self.group_id(), %error, "group operation failed; will retry");
        tokio::time::sleep(self.client.cluster().retry_backoff(1)).await;
        Ok(())
    }

    /// Queues an auto-commit of the released positions when one is due
    /// (the committer task sends it; nobody waits).
    fn maybe_auto_commit(&mut self) {
        let Some(interval) = self.config.auto_commit else {
            return;
        };
        if self.last_auto_commit.elapsed() < interval {
            return;
        }
        {
            let membership = self.client.membership();
            if membership.generation().is_none() || membership.is_lost() {
                return;
            }
        }
        self.last_auto_commit = Instant::now();
        let offsets = self
            .progress
            .uncommitted_releases(&self.client.committed_cache());
        if !offsets.is_empty() {
            self.client.commit_in_background(offsets, self.deadline());
        }
    }

    /// As leader, rejoins when a subscribed topic's partition count changed.
    async fn maybe_check_metadata(&mut self) {
        if self.last_metadata_check.elapsed() < LEADER_METADATA_CHECK {
            return;
        }
        self.last_metadata_check = Instant::now();
        let Some((topics, counts)) = self.leader_view.clone() else {
            return;
        };
        if !self.client.membership().is_leader() {
            return;
        }
        match self.client.partition_counts(&topics).await {
            Ok(now) if now != counts => {
                tracing::info!(
                    group = self.group_id(),
                    "partition counts changed; rebalancing"
                );
                self.client
                    .request_rejoin("partition counts of subscribed topics changed");
            }
            Ok(_) => {}
            Err(error) => tracing::debug!(group = self.group_id(), %error, "metadata check failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;

    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn group_consumer_and_commit_handle_can_move_between_tasks() {
        assert_send_sync::<GroupConsumer>();
        assert_send::<CommitHandle>();
        fn assert_send_future<F: Future + Send>(_: &F) {}
        fn assert_send_value<T: Send>(_: &T) {}
        let _ = |mut c: GroupConsumer| async move {
            assert_send_future(&c.poll());
            assert_send_future(&c.commit());
            assert_send_future(&c.committed("t", 0));
            assert_send_future(&c.seek("t", 0, Offset::Earliest));
            assert_send_value(&c.stream());
            assert_send_future(&c.close());
        };
    }
}
