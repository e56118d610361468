//! `sediment produce T`: one message per stdin line, acknowledged by the
//! broker before the command reports success.

use std::process::ExitCode;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use sediment_client::{ProducerConfig, ProducerRecord};

use super::{OutputFormat, Target};

/// Flags of `sediment produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic to produce to.
    pub topic: String,
    /// Key for every message.
    #[arg(long, conflicts_with = "key_separator")]
    pub key: Option<String>,
    /// Split each line at the first SEP into key and value.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Partition for every message (default: by key, or sticky for unkeyed messages).
    #[arg(long)]
    pub partition: Option<i32>,
}

/// Reads stdin to its end, produces every line, waits for every acknowledgement.
pub async fn run(
    args: ProduceArgs,
    target: Target,
    output: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let producer = target
        .build()
        .await?
        .producer(ProducerConfig::default())
        .context("cannot create the producer")?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut deliveries = Vec::new();
    while let Some(line) = lines.next_line().await.context("cannot read stdin")? {
        let (key, value) = match (&args.key, &args.key_separator) {
            (Some(key), _) => (Some(Bytes::from(key.clone())), line),
            (None, Some(separator)) => match line.split_once(separator.as_str()) {
                Some((key, value)) => (Some(Bytes::from(key.to_string())), value.to_string()),
                None => bail!(
                    "line {} has no key separator `{separator}`: {line}",
                    deliveries.len() + 1
                ),
            },
            (None, None) => (None, line),
        };
        let record = ProducerRecord {
            topic: args.topic.as_str().into(),
            partition: args.partition,
            key,
            value: Some(Bytes::from(value)),
            headers: Vec::new(),
            timestamp: None,
        };
        deliveries.push(
            producer
                .enqueue(record)
                .await
                .context("cannot enqueue a message")?,
        );
    }
    producer
        .flush()
        .await
        .context("cannot flush the producer")?;
    let count = deliveries.len();
    for (n, delivery) in deliveries.into_iter().enumerate() {
        delivery
            .await
            .with_context(|| format!("message {} (line {}) was not acknowledged", n, n + 1))?;
    }
    match output {
        OutputFormat::Table => outln!("produced {count} messages to {}", args.topic),
        OutputFormat::Json => outln!("{}", json!({ "topic": args.topic, "messages": count })),
    }
    Ok(ExitCode::SUCCESS)
}
