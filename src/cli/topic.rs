//! `sediment topic create|list|describe|delete`: topic administration through
//! the Kafka admin APIs (so it works against any Kafka-compatible broker).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

use sediment_client::{Admin, NewTopic};

use super::{OutputFormat, Target};

/// Topic commands.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        topic: String,
        /// Number of partitions.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Topic config override `key=value` (repeatable), e.g. `retention.ms=3600000`.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// List topics.
    List,
    /// Show a topic's partitions (leader, start and end offsets) and configs.
    Describe {
        /// Topic name.
        topic: String,
    },
    /// Delete a topic and its data.
    Delete {
        /// Topic name.
        topic: String,
    },
}

/// Runs a topic command.
pub async fn run(
    command: TopicCommand,
    target: Target,
    output: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let admin = target.connect().await?.admin();
    match command {
        TopicCommand::Create {
            topic,
            partitions,
            configs,
        } => create(&admin, topic, partitions, configs, output).await,
        TopicCommand::List => list(&admin, output).await,
        TopicCommand::Describe { topic } => describe(&admin, &topic, output).await,
        TopicCommand::Delete { topic } => {
            admin
                .delete_topic(&topic)
                .await
                .with_context(|| format!("cannot delete topic {topic}"))?;
            match output {
                OutputFormat::Table => outln!("deleted topic {topic}"),
                OutputFormat::Json => outln!("{}", json!({ "topic": topic, "deleted": true })),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn create(
    admin: &Admin,
    topic: String,
    partitions: i32,
    configs: Vec<String>,
    output: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let mut parsed = BTreeMap::new();
    for pair in configs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--config takes KEY=VALUE, got `{pair}`");
        };
        parsed.insert(key.to_string(), value.to_string());
    }
    admin
        .create_topic(NewTopic {
            name: topic.clone(),
            partitions,
            configs: parsed.clone(),
        })
        .await
        .with_context(|| format!("cannot create topic {topic}"))?;
    match output {
        OutputFormat::Table => outln!("created topic {topic} with {partitions} partitions"),
        OutputFormat::Json => outln!(
            "{}",
            json!({ "topic": topic, "partitions": partitions, "configs": parsed, "created": true })
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(admin: &Admin, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let topics = admin.list_topics().await.context("cannot list topics")?;
    match output {
        OutputFormat::Table => {
            outln!("{:<40} {:>10}", "TOPIC", "PARTITIONS");
            for topic in &topics {
                outln!("{:<40} {:>10}", topic.name, topic.partitions);
            }
        }
        OutputFormat::Json => {
            let list: Vec<_> = topics
                .iter()
                .map(|t| json!({ "name": t.name, "partitions": t.partitions }))
                .collect();
            outln!("{}", serde_json::Value::Array(list));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn describe(admin: &Admin, topic: &str, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let description = admin
        .describe_topic(topic)
        .await
        .with_context(|| format!("cannot describe topic {topic}"))?;
    match output {
        OutputFormat::Table => {
            outln!(
                "topic {} ({} partitions)",
                description.name,
                description.partitions.len()
            );
            outln!(
                "{:>9} {:>7} {:>16} {:>16}",
                "PARTITION",
                "LEADER",
                "START OFFSET",
                "END OFFSET"
            );
            for p in &description.partitions {
                outln!(
                    "{:>9} {:>7} {:>16} {:>16}",
                    p.partition,
                    p.leader,
                    p.log_start_offset,
                    p.end_offset
                );
            }
            for (key, value) in &description.configs {
                outln!("config {key}={value}");
            }
        }
        OutputFormat::Json => {
            let partitions: Vec<_> = description
                .partitions
                .iter()
                .map(|p| {
                    json!({
                        "partition": p.partition,
                        "leader": p.leader,
                        "log_start_offset": p.log_start_offset,
                        "end_offset": p.end_offset,
                    })
                })
                .collect();
            outln!(
                "{}",
                json!({ "name": description.name, "partitions": partitions, "configs": description.configs })
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
