//! `sediment topic create|list|describe|delete|alter|delete-records`: topic administration through
//! the Kafka admin APIs (so it works against any Kafka-compatible broker).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

use sediment_client::{Admin, ConfigChange, NewTopic, TopicPartition};

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
    /// Show a topic's partitions (leader, start and end offsets, size on disk) and configs.
    Describe {
        /// Topic name.
        topic: String,
    },
    /// Delete a topic and its data.
    Delete {
        /// Topic name.
        topic: String,
    },
    /// Change a topic: grow its partition count (it can only grow), set or
    /// remove config overrides (they take effect at once).
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true)))]
    Alter {
        /// Topic name.
        topic: String,
        /// The new total number of partitions.
        #[arg(long, group = "change")]
        partitions: Option<i32>,
        /// Config override to set, `key=value` (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", group = "change")]
        configs: Vec<String>,
        /// Config override to remove, so the key returns to its default (repeatable).
        #[arg(long = "delete-config", value_name = "KEY", group = "change")]
        delete_configs: Vec<String>,
    },
    /// Delete a partition's records below an offset (moves its log start).
    DeleteRecords {
        /// Topic name.
        topic: String,
        /// Partition index.
        #[arg(long)]
        partition: i32,
        /// Delete every record below this offset; -1 means up to the high watermark.
        #[arg(long, allow_hyphen_values = true)]
        before: i64,
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
        TopicCommand::Alter {
            topic,
            partitions,
            configs,
            delete_configs,
        } => alter(&admin, &topic, partitions, configs, delete_configs, output).await,
        TopicCommand::DeleteRecords {
            topic,
            partition,
            before,
        } => {
            let tp = TopicPartition::new(topic.clone(), partition);
            let low_watermark = admin
                .delete_records(&tp, before)
                .await
                .with_context(|| format!("cannot delete records of {tp} before offset {before}"))?;
            match output {
                OutputFormat::Table => {
                    outln!("deleted records of {tp}: log start offset is now {low_watermark}")
                }
                OutputFormat::Json => outln!(
                    "{}",
                    json!({ "topic": topic, "partition": partition, "low_watermark": low_watermark })
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn alter(
    admin: &Admin,
    topic: &str,
    partitions: Option<i32>,
    configs: Vec<String>,
    delete_configs: Vec<String>,
    output: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let mut changes = Vec::new();
    for (key, value) in parse_configs(configs)? {
        changes.push(ConfigChange::Set(key, value));
    }
    changes.extend(delete_configs.iter().cloned().map(ConfigChange::Delete));
    if !changes.is_empty() {
        admin
            .alter_topic_configs(topic, &changes)
            .await
            .with_context(|| format!("cannot alter the configs of topic {topic}"))?;
    }
    if let Some(partitions) = partitions {
        admin
            .create_partitions(topic, partitions)
            .await
            .with_context(|| format!("cannot grow topic {topic} to {partitions} partitions"))?;
    }
    match output {
        OutputFormat::Table => {
            for change in &changes {
                match change {
                    ConfigChange::Set(key, value) => outln!("topic {topic}: {key}={value}"),
                    ConfigChange::Delete(key) => outln!("topic {topic}: {key} back to its default"),
                    _ => {}
                }
            }
            if let Some(partitions) = partitions {
                outln!("topic {topic} now has {partitions} partitions");
            }
        }
        OutputFormat::Json => {
            let set: BTreeMap<&str, &str> = changes
                .iter()
                .filter_map(|c| match c {
                    ConfigChange::Set(k, v) => Some((k.as_str(), v.as_str())),
                    _ => None,
                })
                .collect();
            outln!(
                "{}",
                json!({
                    "topic": topic,
                    "partitions": partitions,
                    "set_configs": set,
                    "deleted_configs": delete_configs,
                })
            )
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses repeated `--config KEY=VALUE` arguments.
fn parse_configs(configs: Vec<String>) -> anyhow::Result<BTreeMap<String, String>> {
    let mut parsed = BTreeMap::new();
    for pair in configs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--config takes KEY=VALUE, got `{pair}`");
        };
        parsed.insert(key.to_string(), value.to_string());
    }
    Ok(parsed)
}

async fn create(
    admin: &Admin,
    topic: String,
    partitions: i32,
    configs: Vec<String>,
    output: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let parsed = parse_configs(configs)?;
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
                "{:>9} {:>7} {:>16} {:>16} {:>14}",
                "PARTITION",
                "LEADER",
                "START OFFSET",
                "END OFFSET",
                "SIZE (BYTES)"
            );
            for p in &description.partitions {
                let size = p
                    .size_bytes
                    .map_or_else(|| "-".to_string(), |s| s.to_string());
                outln!(
                    "{:>9} {:>7} {:>16} {:>16} {:>14}",
                    p.partition,
                    p.leader,
                    p.log_start_offset,
                    p.end_offset,
                    size
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
                        "last_stable_offset": p.last_stable_offset,
                        "size_bytes": p.size_bytes,
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
