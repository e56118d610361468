//! `sediment consume T`: print messages as they arrive.
//!
//! Starts at the end of each partition (like Kafka's console consumer) unless
//! `--from-beginning` or `--partition P --offset O` says otherwise. Stops after
//! `--max-messages`, or when no message arrived for `--timeout-ms`, or on
//! Ctrl-C.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde_json::json;

use std::collections::BTreeMap;

use sediment_client::{
    AutoOffsetReset, ConsumerConfig, ConsumerRecord, ErrorCode, GroupConsumerConfig,
    IsolationLevel, Offset, TopicPartition,
};

use super::Target;

/// Flags of `sediment consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic to read.
    pub topic: String,
    /// Consumer group (committed offsets and partition assignment).
    #[arg(long)]
    pub group: Option<String>,
    /// Start at the first offset of each partition instead of the end.
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Read only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Start at this offset (needs --partition).
    #[arg(long, requires = "partition")]
    pub offset: Option<i64>,
    /// Exit after this many messages.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Exit when no message arrived for this many ms.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// How to print each message.
    #[arg(long, value_enum, default_value_t = MessageFormat::Value)]
    pub format: MessageFormat,
    /// Which records of transactions to read (as kafka-console-consumer's flag):
    /// read_committed stops before open transactions and drops aborted ones.
    #[arg(long, value_enum, default_value_t = IsolationArg::ReadUncommitted)]
    pub isolation_level: IsolationArg,
}

/// `--isolation-level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum IsolationArg {
    /// Every record, open and aborted transactions included.
    ReadUncommitted,
    /// Only committed records.
    ReadCommitted,
}

impl IsolationArg {
    /// The client's isolation level.
    pub fn level(self) -> IsolationLevel {
        match self {
            IsolationArg::ReadUncommitted => IsolationLevel::ReadUncommitted,
            IsolationArg::ReadCommitted => IsolationLevel::ReadCommitted,
        }
    }
}

/// How `consume` prints a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    /// The value alone, one per line.
    Value,
    /// One JSON object per line: topic, partition, offset, timestamp, key, value, headers.
    Json,
}

/// Consumes until a stop condition holds.
pub async fn run(args: ConsumeArgs, target: Target) -> anyhow::Result<ExitCode> {
    if let Some(group) = args.group.clone() {
        if args.partition.is_some() {
            bail!("--group assigns partitions itself; leave out --partition/--offset");
        }
        return consume_in_group(args, group, target).await;
    }
    let client = target.connect().await?;
    let description = client
        .admin()
        .describe_topic(&args.topic)
        .await
        .with_context(|| format!("cannot read topic {}", args.topic))?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) if description.partitions.iter().any(|d| d.partition == p) => vec![p],
        Some(p) => bail!(
            "topic {} has no partition {p} (it has {})",
            args.topic,
            description.partitions.len()
        ),
        None => description.partitions.iter().map(|d| d.partition).collect(),
    };
    let mut consumer = client
        .consumer(ConsumerConfig {
            isolation_level: args.isolation_level.level(),
            ..ConsumerConfig::default()
        })
        .context("cannot connect the consumer")?;
    consumer
        .assign(
            partitions
                .iter()
                .map(|&p| TopicPartition::new(args.topic.clone(), p)),
        )
        .await
        .context("cannot assign partitions")?;
    for &partition in &partitions {
        let start = match (args.offset, args.from_beginning) {
            (Some(offset), _) => Offset::At(offset),
            (None, true) => Offset::Earliest,
            (None, false) => Offset::Latest,
        };
        consumer
            .seek(&args.topic, partition, start)
            .await
            .with_context(|| format!("cannot seek partition {partition}"))?;
    }

    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let mut idle_since = tokio::time::Instant::now();
    let mut printed = 0u64;
    loop {
        if args.max_messages.is_some_and(|max| printed >= max) {
            break;
        }
        let batch = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            batch = consumer.poll() => batch.context("fetch failed")?,
        };
        if batch.is_empty() {
            if idle_limit.is_some_and(|limit| idle_since.elapsed() >= limit) {
                break;
            }
            continue;
        }
        idle_since = tokio::time::Instant::now();
        for record in batch {
            if args.max_messages.is_some_and(|max| printed >= max) {
                break;
            }
            print_record(&record, args.format);
            printed += 1;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Consumes as a member of `group`: the group assigns partitions, reading
/// starts at the committed offsets (or, with none, at the end, or the start
/// with `--from-beginning`), and after each printed batch the positions of
/// exactly the printed records are committed (at-least-once: a crash between
/// printing and committing prints them again).
async fn consume_in_group(
    args: ConsumeArgs,
    group: String,
    target: Target,
) -> anyhow::Result<ExitCode> {
    let client = target.connect().await?;
    client
        .admin()
        .describe_topic(&args.topic)
        .await
        .with_context(|| format!("cannot read topic {}", args.topic))?;
    let reset = if args.from_beginning {
        AutoOffsetReset::Earliest
    } else {
        AutoOffsetReset::Latest
    };
    let config = GroupConsumerConfig::new(group.clone())
        .with_auto_offset_reset(reset)
        .with_isolation_level(args.isolation_level.level())
        .with_auto_commit(None);
    let mut consumer = client
        .group_consumer(config)
        .with_context(|| format!("cannot join group {group}"))?;
    consumer
        .subscribe([args.topic.clone()])
        .with_context(|| format!("cannot subscribe to {}", args.topic))?;
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let mut idle_since = tokio::time::Instant::now();
    let mut printed = 0u64;
    let outcome: anyhow::Result<()> = async {
        loop {
            if args.max_messages.is_some_and(|max| printed >= max) {
                return Ok(());
            }
            let poll = match idle_limit {
                Some(limit) => {
                    let left = limit.saturating_sub(idle_since.elapsed());
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => return Ok(()),
                        batch = tokio::time::timeout(left, consumer.poll()) => match batch {
                            Ok(batch) => batch,
                            Err(_) => return Ok(()),
                        },
                    }
                }
                None => tokio::select! {
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                    batch = consumer.poll() => batch,
                },
            };
            let batch = poll.context("fetch failed")?;
            if batch.is_empty() {
                if idle_limit.is_some_and(|limit| idle_since.elapsed() >= limit) {
                    return Ok(());
                }
                continue;
            }
            idle_since = tokio::time::Instant::now();
            let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
            for record in batch {
                if args.max_messages.is_some_and(|max| printed >= max) {
                    break;
                }
                print_record(&record, args.format);
                printed += 1;
                next.insert(
                    TopicPartition::new(&*record.topic, record.partition),
                    record.offset + 1,
                );
            }
            match consumer.commit_offsets(next).await {
                Ok(()) => {}
                // The group moved on: the printed records go to their next
                // owner again (at-least-once), reading goes on.
                Err(error)
                    if matches!(
                        error.kafka_error(),
                        Some(
                            ErrorCode::RebalanceInProgress
                                | ErrorCode::IllegalGeneration
                                | ErrorCode::UnknownMemberId
                        )
                    ) => {}
                Err(error) => {
                    return Err(anyhow::Error::new(error)
                        .context("cannot commit the printed messages' offsets"))
                }
            }
        }
    }
    .await;
    let closed = consumer.close().await;
    outcome?;
    closed.context("cannot leave the group cleanly")?;
    Ok(ExitCode::SUCCESS)
}

fn print_record(record: &ConsumerRecord, format: MessageFormat) {
    let text = |bytes: &Option<bytes::Bytes>| {
        bytes
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    match format {
        MessageFormat::Value => outln!("{}", text(&record.value).unwrap_or_default()),
        MessageFormat::Json => {
            let headers: serde_json::Map<String, serde_json::Value> = record
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), json!(text(v))))
                .collect();
            outln!(
                "{}",
                json!({
                    "topic": &*record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "timestamp": record.timestamp,
                    "key": text(&record.key),
                    "value": text(&record.value),
                    "headers": headers,
                })
            );
        }
    }
}
