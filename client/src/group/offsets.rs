//! Committed offsets: OffsetCommit and OffsetFetch for [`GroupClient`],
//! and the committer task through which every commit goes.
//!
//! Invariant: commits reach the coordinator in the order the application
//! (or the consumer on its behalf) issued them. Auto-commits and
//! `commit_async` do not wait, so two of them could otherwise race, and an
//! older position land after a newer one and move the committed offset
//! back. One task sends them all, one at a time, from one queue; queued
//! fire-and-forget commits that follow each other are merged (the later
//! position of a partition wins), so a fast `stream()` with auto-commit
//! never builds a backlog.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use sediment_protocol::messages::offset_commit::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use sediment_protocol::messages::offset_fetch::OffsetFetchRequestTopic;
use sediment_protocol::messages::{OffsetCommitRequest, OffsetFetchRequest};
use sediment_protocol::{ApiKey, ErrorCode};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::coordinator::GroupClient;
use super::membership::{recovery, Recovery};
use crate::error::{ClientError, Result};
use crate::TopicPartition;

/// One commit waiting for the committer task.
#[derive(Debug)]
pub(crate) struct CommitRequest {
    offsets: BTreeMap<TopicPartition, i64>,
    deadline: Instant,
    /// `None`: an auto-commit nobody waits for (mergeable; positions
    /// already committed are skipped).
    reply: Option<oneshot::Sender<Result<()>>>,
}

/// The queue into the committer task.
pub(crate) type CommitQueue = mpsc::UnboundedSender<CommitRequest>;

/// Creates the queue; hand the receiver to [`spawn_committer`].
pub(crate) fn commit_queue() -> (CommitQueue, mpsc::UnboundedReceiver<CommitRequest>) {
    mpsc::unbounded_channel()
}

/// Starts the committer task; abort the handle to stop it (waiting
/// commits then fail with [`ClientError::ConsumerClosed`]).
pub(crate) fn spawn_committer(
    client: Arc<GroupClient>,
    queue: mpsc::UnboundedReceiver<CommitRequest>,
) -> AbortHandle {
    let cluster = client.cluster().clone();
    cluster.spawn(run_committer(client, queue)).abort_handle()
}

async fn run_committer(
    client: Arc<GroupClient>,
    mut queue: mpsc::UnboundedReceiver<CommitRequest>,
) {
    let mut next = None;
    loop {
        let request = match next.take() {
            Some(request) => request,
            None => match queue.recv().await {
                Some(request) => request,
                None => return,
            },
        };
        let mut request = request;
        if request.reply.is_none() {
            // Merge the fire-and-forget commits queued behind this one.
            while let Ok(following) = queue.try_recv() {
                if following.reply.is_some() {
                    next = Some(following);
                    break;
                }
                merge(&mut request, following);
            }
            let cache = client.committed_cache().clone();
            request
                .offsets
                .retain(|tp, offset| cache.get(tp) != Some(offset));
        }
        let result = client.commit_now(&request.offsets, request.deadline).await;
        match request.reply {
            Some(reply) => {
                let _ = reply.send(result);
            }
            None => {
                if let Err(error) = result {
                    tracing::warn!(group = client.group_id(), %error, "auto-commit failed; the records will be committed later or redelivered");
                }
            }
        }
    }
}

/// Folds a later fire-and-forget commit into an earlier one.
fn merge(into: &mut CommitRequest, later: CommitRequest) {
    into.offsets.extend(later.offsets);
    into.deadline = into.deadline.max(later.deadline);
}

/// The outcome of [`GroupConsumer::commit_async`](super::GroupConsumer::commit_async);
/// the commit proceeds whether or not this is awaited.
pub struct CommitHandle {
    rx: oneshot::Receiver<Result<()>>,
}

impl Future for CommitHandle {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(ClientError::ConsumerClosed)))
    }
}

impl GroupClient {
    /// Queues a commit of `offsets` (the next offset to read, per
    /// partition) behind the ones issued before, and waits for the
    /// coordinator's acknowledgement.
    pub(crate) async fn commit(
        &self,
        offsets: BTreeMap<TopicPartition, i64>,
        deadline: Instant,
    ) -> Result<()> {
        self.commit_queued(offsets, deadline).await
    }

    /// Queues a commit; the handle resolves with its outcome.
    pub(crate) fn commit_queued(
        &self,
        offsets: BTreeMap<TopicPartition, i64>,
        deadline: Instant,
    ) -> CommitHandle {
        let (tx, rx) = oneshot::channel();
        let request = CommitRequest {
            offsets,
            deadline,
            reply: Some(tx),
        };
        // A closed queue drops the request and its reply sender: the
        // handle then answers ConsumerClosed.
        let _ = self.commit_queue().send(request);
        CommitHandle { rx }
    }

    /// Queues an auto-commit nobody waits for.
    pub(crate) fn commit_in_background(
        &self,
        offsets: BTreeMap<TopicPartition, i64>,
        deadline: Instant,
    ) {
        let request = CommitRequest {
            offsets,
            deadline,
            reply: None,
        };
        let _ = self.commit_queue().send(request);
    }

    /// Sends one commit and waits for the coordinator's acknowledgement.
    /// Retries (finding the coordinator again if it moved) until
    /// `deadline`; a rebalance error fails the commit and asks the next
    /// `poll` to rejoin. Only the committer task calls this.
    async fn commit_now(
        &self,
        offsets: &BTreeMap<TopicPartition, i64>,
        deadline: Instant,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.commit_once(offsets).await {
                Ok(()) => {
                    let mut cache = self.committed_cache();
                    for (tp, offset) in offsets {
                        cache.insert(tp.clone(), *offset);
                    }
                    return Ok(());
                }
                Err(error) => error,
            };
            let step = match error.kafka_code() {
                Some(code) => recovery(code),
                None if error.is_retriable() => Recovery::Retry,
                None => Recovery::Fatal,
            };
            match step {
                Recovery::Rediscover | Recovery::Retry if Instant::now() < deadline => {
                    if step == Recovery::Rediscover {
                        self.forget_coordinator(None).await;
                    }
                    tracing::debug!(group = self.group_id(), %error, attempt, "offset commit failed; retrying");
                    tokio::time::sleep(self.cluster().retry_backoff(attempt)).await;
                }
                Recovery::Rejoin => {
                    self.wake().notify_one();
                    return Err(error);
                }
                _ => return Err(error),
            }
        }
    }

    async fn commit_once(&self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        let (generation, member_id) = self.membership().commit_identity();
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (tp, offset) in offsets {
            let entry = OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(*offset)
                .with_committed_metadata(Some(String::new()));
            match topics.iter_mut().find(|t| t.name == tp.topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(tp.topic.clone())
                        .with_partitions(vec![entry]),
                ),
            }
        }
        let response = self
            .call(ApiKey::OffsetCommit, Duration::ZERO, |_| {
                OffsetCommitRequest::default()
                    .with_group_id(self.group_id().to_string())
                    .with_generation_id_or_member_epoch(generation)
                    .with_member_id(member_id)
                    .with_topics(topics)
            })
            .await?;
        let failed = response.topics.iter().find_map(|t| {
            t.partitions
                .iter()
                .find(|p| p.error_code != 0)
                .map(|p| (t.name.clone(), p.partition_index, p.error_code))
        });
        let Some((topic, partition, code)) = failed else {
            return Ok(());
        };
        self.membership().on_commit(code);
        Err(ClientError::from_code(
            code,
            || {
                format!(
                    "commit offsets of group `{}` (first failure: {topic}-{partition})",
                    self.group_id()
                )
            },
            None,
        )
        .unwrap_or(ClientError::Protocol {
            addr: "group coordinator".into(),
            reason: "OffsetCommit failed without an error code".into(),
        }))
    }

    /// The committed offsets of `partitions` (`None` = nothing committed),
    /// retrying until `deadline`.
    pub(crate) async fn fetch_committed(
        &self,
        partitions: &[TopicPartition],
        deadline: Instant,
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.fetch_committed_once(partitions).await {
                Ok(answers) => return Ok(answers),
                Err(error) => error,
            };
            let code = error.kafka_code();
            let step = match code {
                Some(c) if c == ErrorCode::UnstableOffsetCommit.code() => Recovery::Retry,
                Some(c) => recovery(c),
                None if error.is_retriable() => Recovery::Retry,
                None => Recovery::Fatal,
            };
            match step {
                Recovery::Rediscover | Recovery::Retry if Instant::now() < deadline => {
                    if step == Recovery::Rediscover {
                        self.forget_coordinator(None).await;
                    }
                    tracing::debug!(group = self.group_id(), %error, attempt, "offset fetch failed; retrying");
                    tokio::time::sleep(self.cluster().retry_backoff(attempt)).await;
                }
                _ => return Err(error),
            }
        }
    }

    async fn fetch_committed_once(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        let mut topics: Vec<OffsetFetchRequestTopic> = Vec::new();
        for tp in partitions {
            match topics.iter_mut().find(|t| t.name == tp.topic) {
                Some(t) => t.partition_indexes.push(tp.partition),
                None => topics.push(
                    OffsetFetchRequestTopic::default()
                        .with_name(tp.topic.clone())
                        .with_partition_indexes(vec![tp.partition]),
                ),
            }
        }
        let response = self
            .call(ApiKey::OffsetFetch, Duration::ZERO, |version| {
                let mut request = OffsetFetchRequest::default()
                    .with_group_id(self.group_id().to_string())
                    .with_topics(Some(topics));
                if version >= 7 && self.require_stable() {
                    // A read_committed member waits out offsets pending in
                    // open transactions (KIP-447), as Java's does: the
                    // answer is UNSTABLE_OFFSET_COMMIT, retried below.
                    request.require_stable = true;
                }
                request
            })
            .await?;
        let context = || format!("fetch committed offsets of group `{}`", self.group_id());
        if let Some(error) = ClientError::from_code(response.error_code, context, None) {
            return Err(error);
        }
        let mut answers: BTreeMap<TopicPartition, Option<i64>> =
            partitions.iter().map(|tp| (tp.clone(), None)).collect();
        for topic in response.topics {
            let name = topic.name;
            for p in topic.partitions {
                // An unknown partition has nothing committed (Kafka answers
                // -1 without an error; older brokers flag it).
                if p.error_code != 0 && p.error_code != ErrorCode::UnknownTopicOrPartition.code() {
                    return Err(
                        ClientError::from_code(p.error_code, context, None).unwrap_or(
                            ClientError::Protocol {
                                addr: "group coordinator".into(),
                                reason: "OffsetFetch failed without an error code".into(),
                            },
                        ),
                    );
                }
                if let Some(slot) =
                    answers.get_mut(&TopicPartition::new(name.clone(), p.partition_index))
                {
                    *slot = (p.error_code == 0 && p.committed_offset >= 0)
                        .then_some(p.committed_offset);
                }
            }
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(i32, i64)], reply: bool) -> CommitRequest {
        CommitRequest {
            offsets: pairs
                .iter()
                .map(|(p, o)| (TopicPartition::new("t", *p), *o))
                .collect(),
            deadline: Instant::now(),
            reply: reply.then(|| oneshot::channel().0),
        }
    }

    #[test]
    fn given_queued_auto_commits_then_merge_keeps_the_latest_position_per_partition() {
        let mut first = request(&[(0, 5), (1, 3)], false);
        merge(&mut first, request(&[(0, 9), (2, 1)], false));
        let expected: BTreeMap<TopicPartition, i64> = [(0, 9), (1, 3), (2, 1)]
            .iter()
            .map(|(p, o)| (TopicPartition::new("t", *p), *o))
            .collect();
        assert_eq!(first.offsets, expected);
    }

    #[tokio::test]
    async fn given_closed_queue_then_commit_handle_reports_consumer_closed() {
        let (tx, rx) = oneshot::channel::<Result<()>>();
        drop(tx);
        let handle = CommitHandle { rx };
        assert!(matches!(handle.await, Err(ClientError::ConsumerClosed)));
    }
}
