//! `sediment bench produce|consume|e2e`: end-to-end throughput and latency
//! through the real client and broker.
//!
//! - `produce`: K producers send N messages of B bytes; latency is enqueue →
//!   acknowledgement per message.
//! - `consume`: reads N messages from the start of the topic (producing them
//!   first, untimed, if the topic holds fewer); latency is per fetch round.
//! - `e2e`: a producer at a fixed `--rate` and a consumer together; each
//!   message carries its send time, latency is send → consumed.
//!
//! A progress bar on a terminal, then one summary line (or `--output json`).

use std::future::Future as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use sediment_client::{
    Acks, Client, Consumer, ConsumerConfig, IsolationLevel, NewTopic, Offset, ProducerConfig,
    ProducerRecord, TopicDescription, TopicPartition,
};

use super::consume::IsolationArg;
use super::{OutputFormat, Target};

/// Which benchmark.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Producer throughput and acknowledgement latency.
    Produce(BenchArgs),
    /// Consumer throughput.
    Consume(BenchArgs),
    /// Produce-to-consume latency at a fixed rate.
    E2e(BenchArgs),
}

/// `--acks` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AcksArg {
    /// No acknowledgement.
    #[value(name = "0")]
    Zero,
    /// The leader appended it.
    #[value(name = "1")]
    One,
    /// Durable (under `--flush always`, after fdatasync).
    #[value(name = "all")]
    All,
}

/// Flags shared by the benchmarks.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Messages to send or read.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Bytes per message value.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Partitions of the benchmark topic (created if missing).
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Acknowledgement level.
    #[arg(long, value_enum, default_value_t = AcksArg::All)]
    pub acks: AcksArg,
    /// Concurrent producers.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Messages per second (e2e; 0 = as fast as possible).
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    /// Topic to use.
    #[arg(long, default_value = "sediment-bench")]
    pub topic: String,
    /// Produce without idempotence (with `--acks all`; 0 and 1 never use it).
    #[arg(long)]
    pub no_idempotence: bool,
    /// Produce in transactions, committing one every MS ms (1000: 1
    /// transaction/s per producer, 10: 100/s); 0 = no transactions.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub transaction_ms: u64,
    /// What consumers read (consume, e2e): read_committed stops at the last
    /// stable offset and drops aborted records.
    #[arg(long, value_enum, default_value_t = IsolationArg::ReadUncommitted)]
    pub isolation_level: IsolationArg,
}

/// The measured outcome.
struct Summary {
    kind: &'static str,
    messages: u64,
    bytes: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
    /// Transactions committed (produce with `--transaction-ms`).
    transactions: u64,
}

impl Summary {
    fn print(&self, output: OutputFormat) {
        let secs = self.elapsed.as_secs_f64().max(f64::EPSILON);
        let msgs_per_sec = self.messages as f64 / secs;
        let mb_per_sec = self.bytes as f64 / secs / 1e6;
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        let max_ms = self.latency_us.max() as f64 / 1000.0;
        match output {
            OutputFormat::Table => outln!(
                "{}: {} msgs in {:.2} s: {:.0} msgs/s, {:.1} MB/s, latency p50 {:.3} ms p99 {:.3} ms p999 {:.3} ms max {:.3} ms{}",
                self.kind,
                self.messages,
                secs,
                msgs_per_sec,
                mb_per_sec,
                ms(0.5),
                ms(0.99),
                ms(0.999),
                max_ms,
                if self.transactions > 0 {
                    format!(", {} transactions ({:.1}/s)", self.transactions, self.transactions as f64 / secs)
                } else {
                    String::new()
                }
            ),
            OutputFormat::Json => outln!(
                "{}",
                json!({
                    "kind": self.kind,
                    "messages": self.messages,
                    "bytes": self.bytes,
                    "seconds": secs,
                    "msgs_per_sec": msgs_per_sec,
                    "mb_per_sec": mb_per_sec,
                    "latency_ms": { "p50": ms(0.5), "p99": ms(0.99), "p999": ms(0.999), "max": max_ms },
                    "transactions": self.transactions,
                })
            ),
        }
    }
}

/// Runs a benchmark.
pub async fn run(
    command: BenchCommand,
    target: Target,
    output: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let (BenchCommand::Produce(args) | BenchCommand::Consume(args) | BenchCommand::E2e(args)) =
        &command;
    validate(args)?;
    let client = target.build().await?;
    ensure_topic(&client, args).await?;
    let summary = match &command {
        BenchCommand::Produce(args) => produce(&target, args, true).await?,
        BenchCommand::Consume(args) => consume(&client, &target, args).await?,
        BenchCommand::E2e(args) => e2e(&client, args).await?,
    };
    summary.print(output);
    Ok(ExitCode::SUCCESS)
}

fn validate(args: &BenchArgs) -> anyhow::Result<()> {
    if args.messages == 0 || args.producers == 0 || args.partitions < 1 {
        bail!("--messages, --producers and --partitions must be at least 1");
    }
    Ok(())
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).context("cannot create the latency histogram")
}

fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

fn acks(arg: AcksArg) -> Acks {
    match arg {
        AcksArg::Zero => Acks::None,
        AcksArg::One => Acks::Leader,
        AcksArg::All => Acks::All,
    }
}

/// The producer settings for `--acks` and `--no-idempotence`: idempotent
/// (the client's default) with `all`, which idempotence needs; plain with 0
/// and 1.
fn producer_config(args: &BenchArgs) -> ProducerConfig {
    let acks = acks(args.acks);
    ProducerConfig {
        acks,
        idempotence: acks == Acks::All && !args.no_idempotence,
        ..ProducerConfig::default()
    }
}

async fn ensure_topic(client: &Client, args: &BenchArgs) -> anyhow::Result<()> {
    let admin = client.admin();
    let exists = admin
        .list_topics()
        .await
        .context("cannot list topics")?
        .iter()
        .any(|t| t.name == args.topic);
    if !exists {
        admin
            .create_topic(NewTopic {
                name: args.topic.clone(),
                partitions: args.partitions,
                configs: Default::default(),
            })
            .await
            .with_context(|| format!("cannot create benchmark topic {}", args.topic))?;
    }
    Ok(())
}

/// A consumer assigned every partition of the topic, each positioned at `start`.
async fn assigned_consumer(
    client: &Client,
    description: &TopicDescription,
    start: Offset,
    fetch_max_wait: Duration,
    isolation_level: IsolationLevel,
) -> anyhow::Result<Consumer> {
    let mut consumer = client
        .consumer(ConsumerConfig {
            fetch_max_wait,
            isolation_level,
            ..ConsumerConfig::default()
        })
        .context("cannot connect the consumer")?;
    let partitions: Vec<TopicPartition> = description
        .partitions
        .iter()
        .map(|p| TopicPartition::new(description.name.clone(), p.partition))
        .collect();
    consumer
        .assign(partitions.clone())
        .await
        .context("assign failed")?;
    for tp in &partitions {
        consumer
            .seek(&tp.topic, tp.partition, start)
            .await
            .context("seek failed")?;
    }
    Ok(consumer)
}

/// A value of `size` bytes whose first 8 bytes (if room) carry `stamp`.
fn payload(size: usize, stamp: u64) -> Bytes {
    let mut value = vec![b'x'; size];
    if size >= 8 {
        value[..8].copy_from_slice(&stamp.to_be_bytes());
    }
    Bytes::from(value)
}

/// `--producers` producers, each with a client (and so connections) of its
/// own, as separate producer processes would have.
/// How many reads of a [`SampledClock`] share one clock reading.
const CLOCK_EVERY: u32 = 64;

/// A clock read once per [`CLOCK_EVERY`] uses, or when refreshed: produce
/// stamps every record twice, and reading the clock each time cost ~15 % of
/// the client's CPU at 100-byte records. A reading lags the true time by at
/// most the time to enqueue (or collect) that many records, tens of µs
/// against latencies in ms; the completion side is refreshed whenever the
/// benchmark had to wait, so that lag is the time to collect records that
/// had already completed.
struct SampledClock {
    last: Instant,
    uses: u32,
}

impl SampledClock {
    fn new() -> Self {
        Self {
            last: Instant::now(),
            uses: 0,
        }
    }

    fn now(&mut self) -> Instant {
        self.uses += 1;
        if self.uses >= CLOCK_EVERY {
            self.refresh();
        }
        self.last
    }

    fn refresh(&mut self) {
        self.last = Instant::now();
        self.uses = 0;
    }
}

async fn produce(
    target: &Target,
    args: &BenchArgs,
    show_progress: bool,
) -> anyhow::Result<Summary> {
    let bar = show_progress.then(|| progress(args.messages, "produce"));
    let sent = Arc::new(AtomicU64::new(0));
    let transactions = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..args.producers {
        let quota = args.messages / args.producers as u64
            + u64::from((p as u64) < args.messages % args.producers as u64);
        let mut config = producer_config(args);
        let transaction_every =
            (args.transaction_ms > 0).then(|| Duration::from_millis(args.transaction_ms));
        if transaction_every.is_some() {
            config.transactional_id = Some(format!("sediment-bench-{}-{p}", std::process::id()));
        }
        let transactions = Arc::clone(&transactions);
        let builder = target.builder();
        let topic: Arc<str> = args.topic.as_str().into();
        let size = args.size;
        let sent = Arc::clone(&sent);
        let bar = bar.clone();
        tasks.push(tokio::spawn(async move {
            let producer = builder
                .build()
                .await
                .and_then(|client| client.producer(config))
                .context("cannot connect a producer")?;
            let mut latency = histogram()?;
            let (mut enqueue_clock, mut done_clock) = (SampledClock::new(), SampledClock::new());
            // One value shared by every record, as a static buffer: cloning a
            // shared `Bytes` costs two atomic operations per record, which
            // showed as ~3 % of the client's samples at 100-byte records. The
            // buffer lives as long as this benchmark process anyway.
            let value = Bytes::from_static(Vec::leak(payload(size, 0).to_vec()));
            let mut pending = std::collections::VecDeque::new();
            let mut last_commit = Instant::now();
            if transaction_every.is_some() {
                producer
                    .init_transactions()
                    .await
                    .context("cannot initialise transactions")?;
                producer.begin_transaction().context("cannot begin")?;
            }
            for _ in 0..quota {
                if transaction_every.is_some_and(|every| last_commit.elapsed() >= every) {
                    producer
                        .commit_transaction()
                        .await
                        .context("commit failed")?;
                    transactions.fetch_add(1, Ordering::Relaxed);
                    producer.begin_transaction().context("cannot begin")?;
                    last_commit = Instant::now();
                }
                let record = ProducerRecord {
                    topic: topic.clone(),
                    partition: None,
                    key: None,
                    value: Some(value.clone()),
                    headers: Vec::new(),
                    timestamp: None,
                };
                let enqueued = enqueue_clock.now();
                pending.push_back((
                    enqueued,
                    producer.enqueue(record).await.context("enqueue failed")?,
                ));
                // Keep the number of outstanding futures bounded; the producer's
                // buffer memory already bounds the bytes.
                while pending.len() > 100_000 {
                    if let Some((at, mut delivery)) = pending.pop_front() {
                        // Polled once first: only a wait moves the clock.
                        let outcome = std::future::poll_fn(|cx| {
                            std::task::Poll::Ready(std::pin::Pin::new(&mut delivery).poll(cx))
                        })
                        .await;
                        match outcome {
                            std::task::Poll::Ready(result) => {
                                result.context("a message was not acknowledged")?;
                            }
                            std::task::Poll::Pending => {
                                delivery.await.context("a message was not acknowledged")?;
                                done_clock.refresh();
                            }
                        }
                        let waited = done_clock.now().saturating_duration_since(at);
                        let _ = latency.record(waited.as_micros() as u64);
                        let done = sent.fetch_add(1, Ordering::Relaxed) + 1;
                        if let Some(bar) = &bar {
                            if done % 4096 == 0 {
                                bar.set_position(done);
                            }
                        }
                    }
                }
            }
            if transaction_every.is_some() {
                producer
                    .commit_transaction()
                    .await
                    .context("commit failed")?;
                transactions.fetch_add(1, Ordering::Relaxed);
            }
            producer.flush().await.context("flush failed")?;
            while let Some((at, delivery)) = pending.pop_front() {
                delivery.await.context("a message was not acknowledged")?;
                let _ = latency.record(at.elapsed().as_micros() as u64);
                sent.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(latency)
        }));
    }
    let mut latency = histogram()?;
    for task in tasks {
        let task_latency = task.await.context("producer task failed")??;
        latency.add(&task_latency).context("merging histograms")?;
    }
    let elapsed = start.elapsed();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(Summary {
        kind: "produce",
        messages: args.messages,
        bytes: args.messages * args.size as u64,
        elapsed,
        latency_us: latency,
        transactions: transactions.load(Ordering::Relaxed),
    })
}

async fn consume(client: &Client, target: &Target, args: &BenchArgs) -> anyhow::Result<Summary> {
    let description = client
        .admin()
        .describe_topic(&args.topic)
        .await
        .context("cannot describe topic")?;
    let held: i64 = description
        .partitions
        .iter()
        .map(|p| p.end_offset - p.log_start_offset)
        .sum();
    if (held.max(0) as u64) < args.messages {
        let mut fill = args.clone();
        fill.messages = args.messages - held.max(0) as u64;
        fill.acks = AcksArg::One;
        fill.transaction_ms = 0;
        produce(target, &fill, false)
            .await
            .context("cannot fill the topic")?;
    }
    let mut consumer = assigned_consumer(
        client,
        &description,
        Offset::Earliest,
        ConsumerConfig::default().fetch_max_wait,
        args.isolation_level.level(),
    )
    .await?;
    let bar = progress(args.messages, "consume");
    let mut latency = histogram()?;
    let mut received = 0u64;
    let mut bytes = 0u64;
    let start = Instant::now();
    while received < args.messages {
        let round = Instant::now();
        let records = consumer.poll().await.context("fetch failed")?;
        let _ = latency.record(round.elapsed().as_micros().max(1) as u64);
        for record in &records {
            bytes += record.value.as_ref().map_or(0, |v| v.len() as u64);
        }
        received += records.len() as u64;
        bar.set_position(received.min(args.messages));
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    Ok(Summary {
        kind: "consume",
        messages: received,
        bytes,
        elapsed,
        latency_us: latency,
        transactions: 0,
    })
}

async fn e2e(client: &Client, args: &BenchArgs) -> anyhow::Result<Summary> {
    if args.size < 8 {
        bail!("e2e needs --size of at least 8 bytes to carry the send time");
    }
    let description = client
        .admin()
        .describe_topic(&args.topic)
        .await
        .context("cannot describe topic")?;
    let mut consumer = assigned_consumer(
        client,
        &description,
        Offset::Latest,
        Duration::from_millis(100),
        args.isolation_level.level(),
    )
    .await?;
    let origin = Instant::now();
    let producer = client
        .producer(ProducerConfig {
            linger: Duration::ZERO,
            ..producer_config(args)
        })
        .context("cannot connect the producer")?;
    let topic: Arc<str> = args.topic.as_str().into();
    let (messages, size, rate) = (args.messages, args.size, args.rate);
    let send = tokio::spawn(async move {
        // Rate 0 means as fast as possible.
        let interval = 1_000_000_000u64
            .checked_div(rate)
            .map_or(Duration::ZERO, Duration::from_nanos);
        let mut deliveries = Vec::new();
        for n in 0..messages {
            let due = origin + interval.mul_f64(n as f64);
            tokio::time::sleep_until(due.into()).await;
            let stamp = origin.elapsed().as_nanos() as u64;
            let record = ProducerRecord {
                topic: topic.clone(),
                partition: None,
                key: None,
                value: Some(payload(size, stamp)),
                headers: Vec::new(),
                timestamp: None,
            };
            deliveries.push(producer.enqueue(record).await.context("enqueue failed")?);
        }
        producer.flush().await.context("flush failed")?;
        for delivery in deliveries {
            delivery.await.context("a message was not acknowledged")?;
        }
        anyhow::Ok(())
    });
    let bar = progress(args.messages, "e2e");
    let mut latency = histogram()?;
    let mut received = 0u64;
    let start = Instant::now();
    while received < args.messages {
        let records = consumer.poll().await.context("fetch failed")?;
        let now = origin.elapsed().as_nanos() as u64;
        for record in &records {
            if let Some(value) = &record.value {
                if value.len() >= 8 {
                    let mut stamp = [0u8; 8];
                    stamp.copy_from_slice(&value[..8]);
                    let sent_at = u64::from_be_bytes(stamp);
                    let _ = latency.record((now.saturating_sub(sent_at) / 1000).max(1));
                }
            }
        }
        received += records.len() as u64;
        bar.set_position(received.min(args.messages));
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    send.await.context("producer task failed")??;
    Ok(Summary {
        kind: "e2e",
        messages: received,
        bytes: received * args.size as u64,
        elapsed,
        latency_us: latency,
        transactions: 0,
    })
}
