//! A windowed-aggregation job over a consumer group: reads the input
//! topic(s), keeps one [`PartitionWindows`] per assigned input partition,
//! produces every closed window to the output topic (and events that count
//! in no window to the late-output topic), and checkpoints. Every client
//! role the job uses (group consumer, producer, admin, the consumer that
//! reads checkpoints back) comes from the one [`Client`] it is started with.
//!
//! Checkpoints, and why in this order: every `checkpoint_interval` the job
//! (1) waits until every output record produced so far is acknowledged,
//! (2) writes, per partition, its window state *and watermark* together with
//! the next input offset as one record of the state topic (acks=all), and
//! only then (3) commits those input offsets to the group. After a crash the
//! job restores the latest state record of each partition it is assigned,
//! seeks to that record's offset and replays: windows emitted since the
//! checkpoint are emitted again (at-least-once) with identical aggregates,
//! because every decision is a pure function of the events' order within the
//! partition — and the restored watermark keeps already-late events late.
//!
//! Exactly-once (`JobConfig::exactly_once`, DESIGN §6): the producer is
//! transactional (transactional id `<group>.window`, so a restarted job
//! fences its predecessor and aborts its open transaction). Everything
//! between two checkpoints — the windows emitted, the late events, then
//! every assigned partition's state record and input offsets (through
//! `send_offsets_to_transaction`) — is one transaction, committed at the
//! checkpoint. A crash before the commit aborts it all: the replay from the
//! last committed checkpoint emits those windows again, and read_committed
//! readers of the output see each window once. Checkpoints are read back
//! read_committed. One exactly-once instance per group: a second instance
//! with the same group fences the first (which stops with an error).
//!
//! Quiet inputs (`JobConfig::idle_timeout`, opt-in, Flink's `withIdleness`
//! in spirit): a partition that has seen events but none for the idle
//! timeout (wall clock) has its watermark advanced to the wall clock minus
//! grace, so its last windows close (a partition the job has not caught up
//! with, with records left to read, is not quiet). That decision is not a function of the
//! input order, so it is checkpointed at once, before any later event of the
//! partition is processed; a replay after a crash restores it with the
//! state (and an advance lost with a crash is decided again, closing the
//! same windows with the same aggregates). An idle partition is advanced at
//! most once per idle timeout.
//!
//! The state topic (`<group>.window-state`, one partition) keeps each
//! partition's checkpoints as keyed records; a job reads it to its end when
//! partitions are assigned, so another instance's newer checkpoints are seen.
//! It is a compacted topic (`cleanup.policy=compact`), so the broker's log
//! cleaner keeps only the latest checkpoint of each input partition: its
//! size follows the live state, not checkpoints × time. A state topic made
//! by an older version is switched to compact when the job starts.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use sediment_client::group::RebalanceEvent;
use sediment_client::{
    AutoOffsetReset, Client, ClientError, ConfigChange, ConsumerConfig, ConsumerRecord,
    DeliveryFuture, GroupConsumer, GroupConsumerConfig, IsolationLevel, NewTopic, Offset, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};

use crate::{Event, PartitionSnapshot, PartitionWindows, Window, WindowResult};

/// What the job does (the cluster is the [`Client`] it is started with).
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Topics to read.
    pub inputs: Vec<String>,
    /// Topic the closed windows are written to.
    pub output: String,
    /// Topic for events that count in no window (too late, or malformed), if any.
    pub late_output: Option<String>,
    /// Consumer group (job instances in one group split the input partitions).
    pub group: String,
    /// The window.
    pub window: Window,
    /// Allowed lateness in ms.
    pub grace: i64,
    /// How often state and offsets are checkpointed.
    pub checkpoint_interval: Duration,
    /// Group session timeout: how long a crashed instance keeps its
    /// partitions before another takes them over (heartbeats every third).
    pub session_timeout: Duration,
    /// Write each checkpoint's outputs, state and offsets in one transaction
    /// (see the module docs); `false` is at-least-once.
    pub exactly_once: bool,
    /// Advance a quiet partition's watermark with the wall clock after this
    /// long without events (see the module docs); `None` (the default) never.
    pub idle_timeout: Option<Duration>,
}

/// Why the job stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The cluster refused or failed a request.
    #[error("{context}: {source}")]
    Client {
        /// What the job was doing.
        context: String,
        /// The client's error.
        #[source]
        source: ClientError,
    },
    /// A state record could not be read or written.
    #[error("checkpoint state of {partition}: {reason}")]
    State {
        /// `topic-partition`.
        partition: String,
        /// What was wrong.
        reason: String,
    },
}

fn client(context: impl Into<String>) -> impl FnOnce(ClientError) -> JobError {
    let context = context.into();
    move |source| JobError::Client { context, source }
}

/// Counters the job reports (status line, tests).
#[derive(Debug, Clone, Default)]
pub struct JobStats {
    /// Events read.
    pub events: u64,
    /// Windows emitted.
    pub emitted: u64,
    /// Events that counted in no window.
    pub late: u64,
    /// Records that were not valid events.
    pub malformed: u64,
    /// Open windows over all assigned partitions.
    pub open_windows: usize,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Per assigned partition: how far the watermark trails the newest event time seen.
    pub watermark_lag_ms: BTreeMap<TopicPartition, i64>,
}

/// Reads one record as an event, or says why it is not one.
pub type Extractor = Box<dyn Fn(&ConsumerRecord) -> Result<Event, String> + Send>;

/// One checkpoint record of the state topic.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    /// The next input offset to read.
    offset: i64,
    /// Window state and watermark.
    state: PartitionSnapshot,
}

struct PartitionState {
    windows: PartitionWindows,
    /// Next offset to process; records below it are already in `windows`.
    next_offset: i64,
    /// Newest event time seen (for the watermark-lag status).
    max_ts: Option<i64>,
    /// The last event, idle advance or assignment: the idle timeout counts from here.
    last_activity: Instant,
}

/// A running job.
pub struct WindowJob {
    config: JobConfig,
    extract: Extractor,
    consumer: GroupConsumer,
    producer: Producer,
    client: Client,
    state_topic: String,
    partitions: HashMap<TopicPartition, PartitionState>,
    pending_outputs: Vec<DeliveryFuture>,
    rebalances: mpsc::UnboundedReceiver<RebalanceEvent>,
    stats: JobStats,
    /// Exactly-once: a transaction is open (begun by the first write after
    /// the last checkpoint).
    in_transaction: bool,
}

impl WindowJob {
    /// Creates the output, late-output and state topics if needed, and
    /// joins the group, through `client`.
    pub async fn start(
        client: &Client,
        config: JobConfig,
        extract: Extractor,
    ) -> Result<WindowJob, JobError> {
        let admin = client.admin();
        let state_topic = format!("{}.window-state", config.group);
        let compacted =
            NewTopic::new(state_topic.clone(), 1).with_config("cleanup.policy", "compact");
        let mut wanted = vec![NewTopic::new(config.output.clone(), 1), compacted];
        if let Some(late) = &config.late_output {
            wanted.push(NewTopic::new(late.clone(), 1));
        }
        let existing: Vec<String> = admin
            .list_topics()
            .await
            .map_err(client_err("list topics"))?
            .into_iter()
            .map(|t| t.name)
            .collect();
        for topic in wanted {
            let name = topic.name.clone();
            if !existing.contains(&name) {
                match admin.create_topic(topic).await {
                    Ok(()) => {}
                    Err(e)
                        if e.kafka_error()
                            == Some(sediment_client::ErrorCode::TopicAlreadyExists) => {}
                    Err(e) => return Err(self::client(format!("create topic {name}"))(e)),
                }
            } else if name == state_topic {
                admin
                    .alter_topic_configs(
                        &name,
                        &[ConfigChange::Set("cleanup.policy".into(), "compact".into())],
                    )
                    .await
                    .map_err(client_err("make the state topic compacted"))?;
            }
        }
        let producer = client
            .producer(ProducerConfig {
                linger: Duration::from_millis(2),
                transactional_id: config
                    .exactly_once
                    .then(|| format!("{}.window", config.group)),
                ..ProducerConfig::default()
            })
            .map_err(client_err("start the producer"))?;
        if config.exactly_once {
            // Fences an earlier instance and aborts its open transaction.
            producer
                .init_transactions()
                .await
                .map_err(client_err("initialise transactions"))?;
        }
        let mut group_config = GroupConsumerConfig::new(config.group.clone())
            .with_auto_offset_reset(AutoOffsetReset::Earliest)
            .with_auto_commit(None);
        group_config.session_timeout = config.session_timeout;
        group_config.heartbeat_interval =
            (config.session_timeout / 3).max(Duration::from_millis(100));
        let mut consumer = client
            .group_consumer(group_config)
            .map_err(client_err("join the group"))?;
        let (tx, rebalances) = mpsc::unbounded_channel();
        consumer.set_rebalance_listener(tx);
        consumer
            .subscribe(config.inputs.clone())
            .map_err(client_err("subscribe"))?;
        Ok(WindowJob {
            config,
            extract,
            consumer,
            producer,
            client: client.clone(),
            state_topic,
            partitions: HashMap::new(),
            pending_outputs: Vec::new(),
            rebalances,
            stats: JobStats::default(),
            in_transaction: false,
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> &JobStats {
        &self.stats
    }

    /// Runs until `stop` completes, then checkpoints and leaves the group.
    /// `on_tick` is called about once a second with the counters (a status line).
    pub async fn run(
        mut self,
        stop: impl std::future::Future<Output = ()>,
        mut on_tick: impl FnMut(&JobStats),
    ) -> Result<JobStats, JobError> {
        tokio::pin!(stop);
        let mut last_checkpoint = Instant::now();
        let mut last_tick = Instant::now();
        loop {
            let batch = tokio::select! {
                _ = &mut stop => break,
                batch = self.consumer.poll() => batch,
            };
            self.handle_rebalances().await?;
            match batch {
                Ok(records) => self.process(records).await?,
                Err(e) if e.is_retriable() => tracing::debug!(error = %e, "poll will be retried"),
                Err(e) => return Err(client("poll the input")(e)),
            }
            if self.advance_idle_partitions().await? {
                last_checkpoint = Instant::now();
            }
            if last_checkpoint.elapsed() >= self.config.checkpoint_interval {
                self.checkpoint().await?;
                last_checkpoint = Instant::now();
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                self.refresh_stats();
                on_tick(&self.stats);
                last_tick = Instant::now();
            }
        }
        self.handle_rebalances().await?;
        self.checkpoint().await?;
        self.refresh_stats();
        let stats = self.stats.clone();
        self.consumer
            .close()
            .await
            .map_err(client_err("leave the group"))?;
        Ok(stats)
    }

    /// Applies assignment changes: revoked partitions are checkpointed and
    /// dropped, assigned ones restored from the state topic and sought to
    /// their checkpoint offset.
    async fn handle_rebalances(&mut self) -> Result<(), JobError> {
        while let Ok(event) = self.rebalances.try_recv() {
            match event {
                RebalanceEvent::Revoked { partitions, lost } => {
                    if lost {
                        if self.in_transaction {
                            // Outputs of partitions another member may now
                            // own are in the open transaction: committing it
                            // could duplicate them. Abort and start over
                            // from the committed checkpoints.
                            let _ = self.producer.abort_transaction().await;
                            self.in_transaction = false;
                            return Err(JobError::State {
                                partition: format!("{partitions:?}"),
                                reason: "partitions were lost with a transaction open; \
                                         it was aborted: restart the job to resume from \
                                         the last checkpoint"
                                    .into(),
                            });
                        }
                        // Another member may already own them: our state is stale.
                        for tp in partitions {
                            self.partitions.remove(&tp);
                        }
                        continue;
                    }
                    let revoked: Vec<TopicPartition> = partitions;
                    self.checkpoint_partitions(&revoked).await?;
                    for tp in revoked {
                        self.partitions.remove(&tp);
                    }
                }
                RebalanceEvent::Assigned { partitions, .. } => {
                    let checkpoints = self.read_checkpoints().await?;
                    for tp in partitions {
                        let restored = match checkpoints.get(&tp) {
                            Some(checkpoint) => PartitionState {
                                windows: PartitionWindows::restore(
                                    self.config.window,
                                    self.config.grace,
                                    checkpoint.state.clone(),
                                )
                                .map_err(|e| JobError::State {
                                    partition: tp.to_string(),
                                    reason: format!("checkpoint does not restore: {e}"),
                                })?,
                                next_offset: checkpoint.offset,
                                max_ts: None,
                                last_activity: Instant::now(),
                            },
                            None => PartitionState {
                                windows: PartitionWindows::new(
                                    self.config.window,
                                    self.config.grace,
                                ),
                                next_offset: -1,
                                max_ts: None,
                                last_activity: Instant::now(),
                            },
                        };
                        if restored.next_offset >= 0 {
                            self.consumer
                                .seek(&tp.topic, tp.partition, Offset::At(restored.next_offset))
                                .await
                                .map_err(client(format!("seek {tp}")))?;
                        }
                        self.partitions.insert(tp, restored);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn process(&mut self, records: Vec<ConsumerRecord>) -> Result<(), JobError> {
        for record in records {
            let tp = TopicPartition::new(&*record.topic, record.partition);
            let Some(state) = self.partitions.get_mut(&tp) else {
                continue; // not (or no longer) ours
            };
            if record.offset < state.next_offset {
                continue; // already in the restored state
            }
            state.next_offset = record.offset + 1;
            state.last_activity = Instant::now();
            self.stats.events += 1;
            let event = match (self.extract)(&record) {
                Ok(event) => event,
                Err(reason) => {
                    self.stats.malformed += 1;
                    if self.stats.malformed <= 10 || self.stats.malformed % 10_000 == 0 {
                        tracing::warn!(
                            topic = %record.topic, partition = record.partition, offset = record.offset,
                            %reason, malformed = self.stats.malformed, "malformed event"
                        );
                    }
                    self.send_late(&record).await?;
                    continue;
                }
            };
            state.max_ts = Some(state.max_ts.map_or(event.ts, |m| m.max(event.ts)));
            let processed = state.windows.process(event);
            if processed.late {
                self.stats.late += 1;
                self.send_late(&record).await?;
            }
            for result in processed.emitted {
                self.emit(&tp, result).await?;
            }
        }
        Ok(())
    }

    /// Produces one closed window to the output topic.
    async fn emit(&mut self, tp: &TopicPartition, result: WindowResult) -> Result<(), JobError> {
        self.stats.emitted += 1;
        let value = serde_json::to_vec(&result).map_err(|e| JobError::State {
            partition: tp.to_string(),
            reason: format!("cannot encode a window: {e}"),
        })?;
        let record = ProducerRecord {
            topic: self.config.output.as_str().into(),
            partition: None,
            key: Some(Bytes::from(result.key.clone())),
            value: Some(Bytes::from(value)),
            headers: Vec::new(),
            timestamp: Some(result.end),
        };
        self.begin_if_needed()?;
        let delivery = self
            .producer
            .enqueue(record)
            .await
            .map_err(client_err("produce a window"))?;
        self.pending_outputs.push(delivery);
        Ok(())
    }

    /// Exactly-once: opens the transaction the next writes belong to.
    fn begin_if_needed(&mut self) -> Result<(), JobError> {
        if self.config.exactly_once && !self.in_transaction {
            self.producer
                .begin_transaction()
                .map_err(client_err("begin a transaction"))?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Advances the watermark of every partition quiet for the idle timeout
    /// to the wall clock minus grace, emits what that closes, and
    /// checkpoints at once when any watermark moved. Returns whether it
    /// checkpointed.
    async fn advance_idle_partitions(&mut self) -> Result<bool, JobError> {
        let Some(idle) = self.config.idle_timeout else {
            return Ok(false);
        };
        let now = Instant::now();
        let wm = wall_clock_ms().saturating_sub(self.config.grace.max(0));
        let mut emitted = Vec::new();
        let mut advanced = false;
        for (tp, state) in &mut self.partitions {
            if now.saturating_duration_since(state.last_activity) < idle {
                continue;
            }
            // Quiet means no input, not a job that fell behind: a partition
            // with records left to read is never idle.
            let caught_up = match (
                self.consumer.position(&tp.topic, tp.partition),
                self.consumer.readable_end(&tp.topic, tp.partition),
            ) {
                (Some(position), Some(end)) => position >= end,
                _ => false,
            };
            if !caught_up {
                continue;
            }
            state.last_activity = now;
            // A partition that never saw an event has nothing to close, and
            // a watermark already past the wall clock does not move.
            if state.windows.watermark().is_none_or(|w| w >= wm) {
                continue;
            }
            advanced = true;
            for result in state.windows.advance_watermark(wm) {
                emitted.push((tp.clone(), result));
            }
        }
        for (tp, result) in emitted {
            self.emit(&tp, result).await?;
        }
        if advanced {
            self.checkpoint().await?;
        }
        Ok(advanced)
    }

    async fn send_late(&mut self, record: &ConsumerRecord) -> Result<(), JobError> {
        let Some(topic) = &self.config.late_output else {
            return Ok(());
        };
        let late = ProducerRecord {
            topic: topic.as_str().into(),
            partition: None,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: Vec::new(),
            timestamp: Some(record.timestamp),
        };
        self.begin_if_needed()?;
        let delivery = self
            .producer
            .enqueue(late)
            .await
            .map_err(client_err("produce a late event"))?;
        self.pending_outputs.push(delivery);
        Ok(())
    }

    /// Checkpoints every assigned partition.
    async fn checkpoint(&mut self) -> Result<(), JobError> {
        let all: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        self.checkpoint_partitions(&all).await
    }

    /// Outputs acknowledged → state records written → input offsets committed.
    /// Exactly-once: every assigned partition, in the open transaction,
    /// which commits them all at once.
    async fn checkpoint_partitions(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<(), JobError> {
        if self.config.exactly_once {
            return self.commit_transaction().await;
        }
        self.producer
            .flush()
            .await
            .map_err(client_err("flush outputs"))?;
        for delivery in self.pending_outputs.drain(..) {
            delivery
                .await
                .map_err(client_err("an output was not acknowledged"))?;
        }
        let mut offsets = BTreeMap::new();
        let mut writes = Vec::new();
        for tp in partitions {
            let Some((record, next_offset)) = self.checkpoint_record(tp)? else {
                continue;
            };
            writes.push(
                self.producer
                    .enqueue(record)
                    .await
                    .map_err(client_err("write a checkpoint"))?,
            );
            offsets.insert(tp.clone(), next_offset);
        }
        self.producer
            .flush()
            .await
            .map_err(client_err("flush checkpoints"))?;
        for write in writes {
            write
                .await
                .map_err(client_err("a checkpoint was not acknowledged"))?;
        }
        if offsets.is_empty() {
            return Ok(());
        }
        match self.consumer.commit_offsets(offsets).await {
            Ok(()) => {}
            // The group moved on; the state record is what restores it.
            Err(e)
                if e.is_retriable()
                    || matches!(
                        e.kafka_error(),
                        Some(
                            sediment_client::ErrorCode::IllegalGeneration
                                | sediment_client::ErrorCode::UnknownMemberId
                                | sediment_client::ErrorCode::RebalanceInProgress
                        )
                    ) =>
            {
                tracing::debug!(error = %e, "offset commit after a checkpoint was refused")
            }
            Err(e) => return Err(client("commit input offsets")(e)),
        }
        self.stats.checkpoints += 1;
        Ok(())
    }

    /// The state-topic record checkpointing `tp` (its window state,
    /// watermark and next input offset) and that offset; `None` when the
    /// partition is not assigned or nothing of it was read yet.
    fn checkpoint_record(
        &self,
        tp: &TopicPartition,
    ) -> Result<Option<(ProducerRecord, i64)>, JobError> {
        let Some(state) = self.partitions.get(tp) else {
            return Ok(None);
        };
        if state.next_offset < 0 {
            return Ok(None);
        }
        let checkpoint = Checkpoint {
            offset: state.next_offset,
            state: state.windows.snapshot(),
        };
        let value = serde_json::to_vec(&checkpoint).map_err(|e| JobError::State {
            partition: tp.to_string(),
            reason: e.to_string(),
        })?;
        let record = ProducerRecord {
            topic: self.state_topic.as_str().into(),
            partition: Some(0),
            key: Some(Bytes::from(state_key(&self.config.group, tp))),
            value: Some(Bytes::from(value)),
            headers: Vec::new(),
            timestamp: None,
        };
        Ok(Some((record, state.next_offset)))
    }

    /// Exactly-once checkpoint: the state records and input offsets of every
    /// assigned partition join the open transaction, which commits.
    async fn commit_transaction(&mut self) -> Result<(), JobError> {
        let mut offsets = Vec::new();
        let mut records = Vec::new();
        for tp in self.partitions.keys() {
            let Some((record, next_offset)) = self.checkpoint_record(tp)? else {
                continue;
            };
            records.push(record);
            offsets.push((tp.topic.clone(), tp.partition, next_offset));
        }
        if offsets.is_empty() && !self.in_transaction {
            return Ok(());
        }
        self.begin_if_needed()?;
        for record in records {
            let write = self
                .producer
                .enqueue(record)
                .await
                .map_err(client_err("write a checkpoint"))?;
            self.pending_outputs.push(write);
        }
        if !offsets.is_empty() {
            // As this member: the broker refuses the offsets if the group
            // moved on without it (a zombie), and the transaction aborts.
            self.producer
                .send_offsets_to_group_transaction(&offsets, &self.consumer.group_metadata())
                .await
                .map_err(client_err("add input offsets to the transaction"))?;
        }
        let committed = self.producer.commit_transaction().await;
        self.in_transaction = false;
        committed.map_err(client_err("commit a checkpoint transaction"))?;
        for delivery in self.pending_outputs.drain(..) {
            delivery
                .await
                .map_err(client_err("an output was not acknowledged"))?;
        }
        self.stats.checkpoints += 1;
        Ok(())
    }

    /// The latest checkpoint of every partition in the state topic.
    async fn read_checkpoints(&self) -> Result<HashMap<TopicPartition, Checkpoint>, JobError> {
        let mut consumer = self
            .client
            .consumer(ConsumerConfig {
                fetch_max_wait: Duration::from_millis(10),
                // Only checkpoints whose transaction committed count.
                isolation_level: IsolationLevel::ReadCommitted,
                ..ConsumerConfig::default()
            })
            .map_err(client_err("read checkpoints"))?;
        consumer
            .assign([TopicPartition::new(self.state_topic.clone(), 0)])
            .await
            .map_err(client_err("read checkpoints"))?;
        consumer
            .seek(&self.state_topic, 0, Offset::Earliest)
            .await
            .map_err(client_err("read checkpoints"))?;
        let end = self
            .client
            .admin()
            .list_offsets(&self.state_topic, 0, sediment_client::OffsetSpec::Latest)
            .await
            .map_err(client_err("read checkpoints"))?;
        let prefix = format!("{}\u{0}", self.config.group);
        let mut latest = HashMap::new();
        while consumer.position(&self.state_topic, 0).unwrap_or(0) < end {
            for record in consumer
                .poll()
                .await
                .map_err(client_err("read checkpoints"))?
            {
                let Some(key) = record
                    .key
                    .as_ref()
                    .and_then(|k| std::str::from_utf8(k).ok())
                else {
                    continue;
                };
                let Some(tp) = key.strip_prefix(&prefix).and_then(parse_tp) else {
                    continue;
                };
                let Some(value) = &record.value else { continue };
                let checkpoint: Checkpoint =
                    serde_json::from_slice(value).map_err(|e| JobError::State {
                        partition: tp.to_string(),
                        reason: format!("unreadable checkpoint at offset {}: {e}", record.offset),
                    })?;
                latest.insert(tp, checkpoint);
            }
        }
        Ok(latest)
    }

    fn refresh_stats(&mut self) {
        self.stats.open_windows = self
            .partitions
            .values()
            .map(|p| p.windows.open_windows())
            .sum();
        self.stats.watermark_lag_ms = self
            .partitions
            .iter()
            .filter_map(|(tp, p)| Some((tp.clone(), p.max_ts? - p.windows.watermark()?)))
            .collect();
    }
}

/// Key of a partition's checkpoint records: `group NUL topic NUL partition`.
fn state_key(group: &str, tp: &TopicPartition) -> String {
    format!("{group}\u{0}{}\u{0}{}", tp.topic, tp.partition)
}

fn parse_tp(rest: &str) -> Option<TopicPartition> {
    let (topic, partition) = rest.rsplit_once('\u{0}')?;
    Some(TopicPartition::new(topic, partition.parse().ok()?))
}

/// The wall clock in ms since the epoch (idle watermark advances only).
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn client_err(context: &'static str) -> impl FnOnce(ClientError) -> JobError {
    client(context)
}

/// Reads the `sediment window` event format: a JSON value
/// `{"key": str, "ts": int ms, "value": number}`; integers stay exact.
pub fn json_event(record: &ConsumerRecord) -> Result<Event, String> {
    #[derive(Deserialize)]
    struct Wire {
        key: String,
        ts: i64,
        value: serde_json::Number,
    }
    let bytes = record
        .value
        .as_ref()
        .ok_or("a null value is not an event")?;
    let wire: Wire = serde_json::from_slice(bytes).map_err(|e| format!("not an event: {e}"))?;
    let value = match wire.value.as_i64() {
        Some(int) => crate::Number::Int(int),
        None => crate::Number::Float(wire.value.as_f64().ok_or("value is not a number")?),
    };
    Ok(Event {
        key: wire.key,
        ts: wire.ts,
        value,
    })
}

/// Shared so tests can build jobs with the default extractor.
pub fn json_extractor() -> Extractor {
    Box::new(json_event)
}
