//! The consumer: [`Consumer`] with manual partition assignment, its
//! settings [`ConsumerConfig`], and what it returns, [`ConsumerRecord`].
//!
//! Owns the assigned partitions' positions (the next offset to return),
//! their last known high watermarks, and its own fetch connections (one
//! per broker; metadata and offset lookups go over the client's shared
//! ones). Invariants:
//! - A position only moves forward by fetching, or anywhere by `seek`.
//! - `poll` never returns a record below its partition's position, and
//!   returns each partition's records in offset order.
//! - Network trouble (a lost connection, a moved leader) is retried inside
//!   `poll` after a metadata refresh, as the Java consumer does: `poll`
//!   returns only errors a retry cannot fix.
//!
//! Isolation ([`IsolationLevel`], default `ReadUncommitted`): every record
//! up to the high watermark; with `ReadCommitted`, fetches (and the
//! "latest" offset) stop at the last stable offset, and the records of
//! aborted transactions are dropped (`aborted`). Transaction markers are
//! never returned in either level; positions move past them and past
//! dropped records.
//!
//! Prefetch: once a round returned records, the next round's Fetch
//! requests are sent before `poll` returns them, from the positions just
//! reached, so the broker reads and sends while the caller works through
//! the records (as the Java consumer and librdkafka prefetch). Their
//! answers are absorbed by the next `poll` only: positions still move only
//! there. Changing the assignment or seeking drops what was prefetched
//! (answers for positions no longer current were ignored anyway).
//!
//! Positions of newly assigned partitions start at the end of the log
//! (`AutoOffsetReset::Latest`, Kafka's `auto.offset.reset=latest`) unless the
//! config says `Earliest`; `seek` sets them explicitly. The same policy
//! applies when a position falls out of the log (OFFSET_OUT_OF_RANGE, e.g.
//! after retention deleted it).

mod aborted;
mod decode;
mod types;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use futures_util::Stream;
use sediment_protocol::messages::fetch::{FetchPartition, FetchTopic};
use sediment_protocol::messages::{FetchRequest, FetchResponse};
use sediment_protocol::{ApiKey, ErrorCode};

use crate::cluster::{Cluster, Connections};
use crate::connection::PendingResponse;
use crate::error::{ClientError, Result};
use crate::offsets::{self, OffsetSpec, Query};
use crate::TopicPartition;
use aborted::AbortedFilter;
pub use types::{AutoOffsetReset, ConsumerConfig, ConsumerRecord, IsolationLevel, Offset};

#[derive(Debug, Clone)]
struct PartitionState {
    /// The topic's name, shared with every record handed out.
    topic: Arc<str>,
    /// Next offset to return; `None` = to be reset by `reset`.
    position: Option<i64>,
    reset: Option<Offset>,
    high_watermark: Option<i64>,
    /// The end a consumer of this isolation level can reach: the high
    /// watermark, or under read_committed the last stable offset.
    readable_end: Option<i64>,
}

/// A consumer of manually assigned partitions (no consumer group), from
/// [`Client::consumer`](crate::Client::consumer).
pub struct Consumer {
    cluster: Cluster,
    /// Fetch connections of this consumer alone: a long poll must not hold
    /// the client's other requests behind it.
    fetches: Connections,
    config: ConsumerConfig,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    /// A non-retriable error met while other partitions returned records:
    /// those records go out first, the error with the next `poll`.
    deferred_error: Option<ClientError>,
    /// Fetches sent ahead by the last `poll` (see the module's "Prefetch").
    prefetched: Vec<StartedFetch>,
}

/// The partitions one Fetch asked for (topic, partition, position) and the
/// request on the wire, or why it could not be sent.
type StartedFetch = (
    Vec<(String, i32, i64)>,
    Result<PendingResponse<FetchRequest>>,
);

impl Consumer {
    /// A consumer over `cluster` (see [`Client::consumer`](crate::Client::consumer)).
    pub(crate) fn new(cluster: Cluster, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        Ok(Consumer {
            cluster,
            fetches: Connections::default(),
            config,
            partitions: BTreeMap::new(),
            deferred_error: None,
            prefetched: Vec::new(),
        })
    }

    /// Replaces the assignment. Partitions kept from the previous assignment
    /// keep their positions; new ones start per `auto_offset_reset` (the end
    /// of the log by default), looked up now so that records produced after
    /// this call are seen.
    pub async fn assign(
        &mut self,
        partitions: impl IntoIterator<Item = TopicPartition>,
    ) -> Result<()> {
        let start = match self.config.auto_offset_reset {
            AutoOffsetReset::Earliest => Offset::Earliest,
            AutoOffsetReset::Latest => Offset::Latest,
        };
        let mut next = BTreeMap::new();
        for key in partitions {
            let state = self
                .partitions
                .get(&key)
                .cloned()
                .unwrap_or_else(|| PartitionState {
                    topic: Arc::from(key.topic.as_str()),
                    position: None,
                    reset: Some(start),
                    high_watermark: None,
                    readable_end: None,
                });
            next.insert(key, state);
        }
        self.prefetched.clear();
        self.partitions = next;
        self.resolve_positions().await
    }

    /// Replaces the assignment with explicit start positions (the group
    /// consumer's committed offsets, or its reset policy), looked up in one
    /// round. Unlike [`Consumer::assign`], kept partitions are repositioned too.
    pub(crate) async fn assign_at(
        &mut self,
        partitions: Vec<(TopicPartition, Offset)>,
    ) -> Result<()> {
        self.prefetched.clear();
        self.partitions = partitions
            .into_iter()
            .map(|(key, offset)| {
                let (position, reset) = match offset {
                    Offset::At(at) => (Some(at), None),
                    other => (None, Some(other)),
                };
                let state = PartitionState {
                    topic: Arc::from(key.topic.as_str()),
                    position,
                    reset,
                    high_watermark: None,
                    readable_end: None,
                };
                (key, state)
            })
            .collect();
        self.deferred_error = None;
        self.resolve_positions().await
    }

    /// The cluster view this consumer fetches through (shared with the
    /// group consumer's coordinator client).
    pub(crate) fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Moves the position of an assigned partition.
    pub async fn seek(&mut self, topic: &str, partition: i32, offset: Offset) -> Result<()> {
        self.prefetched.clear();
        let state = self
            .partitions
            .get_mut(&TopicPartition::new(topic, partition))
            .ok_or_else(|| ClientError::NotAssigned {
                topic: topic.to_string(),
                partition,
            })?;
        match offset {
            Offset::At(at) => {
                state.position = Some(at);
                state.reset = None;
                Ok(())
            }
            other => {
                state.position = None;
                state.reset = Some(other);
                self.resolve_positions().await
            }
        }
    }

    /// The next offset `poll` returns for this partition, once known.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.state(topic, partition).and_then(|s| s.position)
    }

    /// The partition's high watermark as of the last fetch.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.state(topic, partition).and_then(|s| s.high_watermark)
    }

    /// As of the last fetch, the offset this consumer can read up to: the
    /// high watermark, or under read_committed the last stable offset. A
    /// position there means the consumer has caught up.
    pub fn readable_end(&self, topic: &str, partition: i32) -> Option<i64> {
        self.state(topic, partition).and_then(|s| s.readable_end)
    }

    /// The assigned partitions, in order.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    fn state(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.partitions.get(&TopicPartition::new(topic, partition))
    }

    /// Looks up every position waiting for a reset.
    async fn resolve_positions(&mut self) -> Result<()> {
        let pending: Vec<(TopicPartition, Offset)> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.position.is_none())
            .map(|(k, s)| (k.clone(), s.reset.unwrap_or(Offset::Latest)))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let queries: Vec<Query> = pending
            .iter()
            .map(|(tp, offset)| {
                let spec = match offset {
                    Offset::Earliest => OffsetSpec::Earliest,
                    Offset::Latest | Offset::At(_) => OffsetSpec::Latest,
                    Offset::Timestamp(ts) => OffsetSpec::Timestamp(*ts),
                };
                (tp.topic.clone(), tp.partition, spec.wire())
            })
            .collect();
        let mut answers =
            offsets::list_offsets(&self.cluster, &queries, self.config.isolation_level).await?;
        // A timestamp after the last record has no offset: go to the end.
        let after_end: Vec<usize> = (0..answers.len())
            .filter(|&i| answers[i] < 0 && queries[i].2 >= 0)
            .collect();
        if !after_end.is_empty() {
            let latest: Vec<Query> = after_end
                .iter()
                .map(|&i| {
                    (
                        queries[i].0.clone(),
                        queries[i].1,
                        offsets::LATEST_TIMESTAMP,
                    )
                })
                .collect();
            let ends =
                offsets::list_offsets(&self.cluster, &latest, self.config.isolation_level).await?;
            for (&i, end) in after_end.iter().zip(ends) {
                answers[i] = end;
            }
        }
        for ((key, _), offset) in pending.into_iter().zip(answers) {
            if let Some(state) = self.partitions.get_mut(&key) {
                state.position = Some(offset);
                state.reset = None;
            }
        }
        Ok(())
    }

    /// One fetch round over every assigned partition (one Fetch request per
    /// leader, sent concurrently). Returns what arrived within
    /// `fetch_max_wait`, possibly nothing.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        if let Some(e) = self.deferred_error.take() {
            return Err(e);
        }
        if self.partitions.is_empty() {
            tokio::time::sleep(self.config.fetch_max_wait).await;
            return Ok(Vec::new());
        }
        let round = if self.prefetched.is_empty() {
            if let Err(e) = self.resolve_positions().await {
                return self.retry_later(e).await;
            }
            let (by_leader, stale_topics) = self.fetch_plan();
            if !stale_topics.is_empty() {
                self.cluster.refresh_quietly(&stale_topics).await;
            }
            if by_leader.is_empty() {
                tokio::time::sleep(self.cluster.retry_backoff(1)).await;
                return Ok(Vec::new());
            }
            self.start_fetches(by_leader).await
        } else {
            std::mem::take(&mut self.prefetched)
        };
        let responses = futures_util::future::join_all(round.into_iter().map(
            |(partitions, started)| async move {
                let response = match started {
                    Ok(pending) => pending.response().await,
                    Err(e) => Err(e),
                };
                (partitions, response)
            },
        ))
        .await;
        let mut records = Vec::new();
        let mut retry_error = None;
        let mut fatal_error = None;
        for (partitions, response) in responses {
            let error = match response {
                Ok(response) => self.absorb(&partitions, response, &mut records),
                Err(e) => Some(e),
            };
            match error {
                Some(e) if e.is_retriable() => retry_error = Some(e),
                Some(e) => fatal_error = fatal_error.or(Some(e)),
                None => {}
            }
        }
        if fatal_error.is_none() && retry_error.is_none() && !records.is_empty() {
            self.prefetch().await;
        }
        if let Some(e) = fatal_error {
            if records.is_empty() {
                return Err(e);
            }
            self.deferred_error = Some(e);
        }
        if let Some(e) = retry_error {
            tracing::debug!(error = %e, "fetch failed; refreshing metadata");
            let topics: Vec<String> = self.partitions.keys().map(|tp| tp.topic.clone()).collect();
            self.cluster.refresh_quietly(&topics).await;
            if records.is_empty() {
                tokio::time::sleep(self.cluster.retry_backoff(1)).await;
            }
        }
        Ok(records)
    }

    async fn retry_later(&self, error: ClientError) -> Result<Vec<ConsumerRecord>> {
        if !error.is_retriable() {
            return Err(error);
        }
        tracing::debug!(%error, "offset lookup failed; will retry");
        tokio::time::sleep(self.cluster.retry_backoff(1)).await;
        Ok(Vec::new())
    }

    /// Which partitions to fetch from which leader (those with a position),
    /// and the topics whose leader is unknown.
    #[allow(clippy::type_complexity)]
    fn fetch_plan(&self) -> (BTreeMap<i32, Vec<(String, i32, i64)>>, Vec<String>) {
        let mut by_leader: BTreeMap<i32, Vec<(String, i32, i64)>> = BTreeMap::new();
        let mut stale_topics = Vec::new();
        for (tp, state) in &self.partitions {
            let Some(position) = state.position else {
                continue;
            };
            match self.cluster.leader(&tp.topic, tp.partition) {
                Some(leader) => by_leader.entry(leader).or_default().push((
                    tp.topic.clone(),
                    tp.partition,
                    position,
                )),
                None => stale_topics.push(tp.topic.clone()),
            }
        }
        stale_topics.dedup();
        (by_leader, stale_topics)
    }

    /// Sends the next round's fetches now, if every partition's leader is
    /// known and every position resolved; otherwise the next `poll` plans
    /// its round itself.
    async fn prefetch(&mut self) {
        if self
            .partitions
            .values()
            .any(|state| state.position.is_none())
        {
            return;
        }
        let (by_leader, stale_topics) = self.fetch_plan();
        if stale_topics.is_empty() && !by_leader.is_empty() {
            self.prefetched = self.start_fetches(by_leader).await;
        }
    }

    /// Puts one Fetch per leader on the wire, without waiting for answers.
    async fn start_fetches(
        &self,
        by_leader: BTreeMap<i32, Vec<(String, i32, i64)>>,
    ) -> Vec<StartedFetch> {
        let mut started = Vec::with_capacity(by_leader.len());
        for (leader, partitions) in by_leader {
            let pending = self.start_fetch(leader, &partitions).await;
            started.push((partitions, pending));
        }
        started
    }

    /// Sends one Fetch to `leader` for `partitions`.
    async fn start_fetch(
        &self,
        leader: i32,
        partitions: &[(String, i32, i64)],
    ) -> Result<PendingResponse<FetchRequest>> {
        let connection = self.cluster.connection_in(&self.fetches, leader).await?;
        let version = connection.version(ApiKey::Fetch)?;
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (topic, partition, position) in partitions {
            let entry = FetchPartition::default()
                .with_partition(*partition)
                .with_fetch_offset(*position)
                .with_partition_max_bytes(self.config.partition_max_bytes);
            match topics.iter_mut().find(|t| t.topic == *topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(topic.clone())
                        .with_partitions(vec![entry]),
                ),
            }
        }
        let max_wait = self.config.fetch_max_wait;
        let request = FetchRequest::default()
            .with_isolation_level(self.config.isolation_level.wire())
            .with_max_wait_ms(i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX))
            .with_min_bytes(self.config.fetch_min_bytes)
            .with_max_bytes(self.config.fetch_max_bytes)
            .with_topics(topics);
        Ok(connection
            .start(&request, version)?
            .extend_timeout(max_wait))
    }

    /// Folds one Fetch response into positions, watermarks and `records`.
    /// Returns the first error met (non-retriable ones first); partitions
    /// without an error are absorbed regardless, and a partition with an
    /// error keeps its position.
    fn absorb(
        &mut self,
        asked: &[(String, i32, i64)],
        response: FetchResponse,
        records: &mut Vec<ConsumerRecord>,
    ) -> Option<ClientError> {
        if let Some(e) = ClientError::from_code(response.error_code, || "fetch".into(), None) {
            return Some(e);
        }
        let mut retriable = None;
        let mut fatal = None;
        let reset_to = match self.config.auto_offset_reset {
            AutoOffsetReset::Earliest => Offset::Earliest,
            AutoOffsetReset::Latest => Offset::Latest,
        };
        // Brokers answer in request order: the next asked partition is
        // tried first, so matching a round of P partitions costs P, not P².
        let mut next_asked = 0;
        for topic in response.responses {
            let name = topic.topic;
            for data in topic.partitions {
                let partition = data.partition_index;
                let is_it = |(t, p, _): &(String, i32, i64)| *t == name && *p == partition;
                let index = match asked.get(next_asked) {
                    Some(candidate) if is_it(candidate) => Some(next_asked),
                    _ => asked.iter().position(is_it),
                };
                let Some(index) = index else {
                    continue;
                };
                next_asked = index + 1;
                let position = asked[index].2;
                let key = TopicPartition::new(name.clone(), partition);
                let Some(state) = self.partitions.get_mut(&key) else {
                    continue; // unassigned while the fetch was out
                };
                if state.position != Some(position) {
                    continue; // seek'ed while the fetch was out
                }
                if data.error_code == ErrorCode::OffsetOutOfRange.code() {
                    tracing::info!(
                        topic = %name, partition, position, reset = ?reset_to,
                        "position out of range; resetting"
                    );
                    state.position = None;
                    state.reset = Some(reset_to);
                    continue;
                }
                if let Some(e) = ClientError::from_code(
                    data.error_code,
                    || format!("fetch {name}-{partition}"),
                    None,
                ) {
                    if e.is_retriable() {
                        retriable = retriable.or(Some(e));
                    } else {
                        fatal = fatal.or(Some(e));
                    }
                    continue;
                }
                if data.high_watermark >= 0 {
                    state.high_watermark = Some(data.high_watermark);
                    state.readable_end = Some(match self.config.isolation_level {
                        IsolationLevel::ReadCommitted if data.last_stable_offset >= 0 => {
                            data.last_stable_offset
                        }
                        _ => data.high_watermark,
                    });
                }
                let Some(bytes) = data.records.filter(|b| !b.is_empty()) else {
                    continue;
                };
                let topic_name = Arc::clone(&state.topic);
                let mut filter = match self.config.isolation_level {
                    IsolationLevel::ReadCommitted => Some(AbortedFilter::new(
                        data.aborted_transactions
                            .iter()
                            .flatten()
                            .map(|t| (t.producer_id, t.first_offset)),
                    )),
                    IsolationLevel::ReadUncommitted => None,
                };
                let decoded = decode::decode_partition(
                    &topic_name,
                    partition,
                    position,
                    bytes,
                    filter.as_mut(),
                    records,
                );
                if let Some(next) = decoded.next_position {
                    state.position = Some(next);
                }
                if let Some(e) = decoded.error {
                    fatal = fatal.or(Some(e));
                }
            }
        }
        fatal.or(retriable)
    }

    /// The records of successive polls as a stream. Errors are yielded as
    /// items and the stream goes on; it never ends by itself.
    pub fn stream(&mut self) -> impl Stream<Item = Result<ConsumerRecord>> + '_ {
        futures_util::stream::unfold(
            (self, VecDeque::new()),
            |(consumer, mut buffer)| async move {
                loop {
                    if let Some(record) = buffer.pop_front() {
                        return Some((Ok(record), (consumer, buffer)));
                    }
                    match consumer.poll().await {
                        Ok(records) => buffer.extend(records),
                        Err(e) => return Some((Err(e), (consumer, buffer))),
                    }
                }
            },
        )
    }
}
