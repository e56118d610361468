//! `sediment group list|describe|reset-offsets|delete-offsets|delete`: consumer-group
//! administration through the Kafka group APIs.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::json;

use sediment_client::{Admin, OffsetSpec, TopicPartition};

use super::{OutputFormat, Target};

/// Group commands.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups.
    List,
    /// Show a group's state, members with their assignment, and committed offset, end offset and lag per partition.
    Describe {
        /// Group id.
        group: String,
    },
    /// Set a group's committed offsets for a topic (the group must have no active members).
    ResetOffsets(ResetArgs),
    /// Delete a group's committed offsets of a topic (all its partitions, or
    /// one); refused for topics the group's active members subscribe to.
    DeleteOffsets {
        /// Group id.
        group: String,
        /// Topic whose committed offsets are deleted.
        #[arg(long)]
        topic: String,
        /// Only this partition (default: every partition of the topic).
        #[arg(long)]
        partition: Option<i32>,
    },
    /// Delete a group and its committed offsets (the group must have no active members).
    Delete {
        /// Group id.
        group: String,
    },
}

/// Flags of `group reset-offsets`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime"])))]
pub struct ResetArgs {
    /// Group id.
    pub group: String,
    /// Topic whose partitions are reset (all of them).
    #[arg(long)]
    pub topic: String,
    /// To each partition's first offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To each partition's end.
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset on every partition.
    #[arg(long)]
    pub to_offset: Option<i64>,
    /// To the first offset at or after this time (RFC 3339, e.g. 2026-11-21T08:00:00Z).
    #[arg(long)]
    pub to_datetime: Option<String>,
}

/// Runs a group command.
pub async fn run(
    command: GroupCommand,
    target: Target,
    output: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let admin = target.connect().await?.admin();
    match command {
        GroupCommand::List => list(&admin, output).await,
        GroupCommand::Describe { group } => describe(&admin, &group, output).await,
        GroupCommand::ResetOffsets(args) => reset(&admin, args, output).await,
        GroupCommand::DeleteOffsets {
            group,
            topic,
            partition,
        } => delete_offsets(&admin, &group, &topic, partition, output).await,
        GroupCommand::Delete { group } => {
            admin
                .delete_group(&group)
                .await
                .with_context(|| format!("cannot delete group {group}"))?;
            match output {
                OutputFormat::Table => outln!("deleted group {group}"),
                OutputFormat::Json => outln!("{}", json!({ "group": group, "deleted": true })),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn list(admin: &Admin, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let groups = admin.list_groups().await.context("cannot list groups")?;
    match output {
        OutputFormat::Table => {
            outln!("{:<40} {:<22} {}", "GROUP", "STATE", "PROTOCOL TYPE");
            for g in &groups {
                outln!("{:<40} {:<22} {}", g.group_id, g.state, g.protocol_type);
            }
        }
        OutputFormat::Json => {
            let list: Vec<_> = groups
                .iter()
                .map(|g| json!({ "group": g.group_id, "state": g.state, "protocol_type": g.protocol_type }))
                .collect();
            outln!("{}", serde_json::Value::Array(list));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn describe(admin: &Admin, group: &str, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let description = admin
        .describe_group(group)
        .await
        .with_context(|| format!("cannot describe group {group}"))?;
    if description.state == "Dead"
        && description.members.is_empty()
        && description.offsets.is_empty()
    {
        bail!("group {group} does not exist (see `sediment group list`)");
    }
    match output {
        OutputFormat::Table => {
            outln!(
                "group {} state {} protocol {} ({} members)",
                description.group_id,
                description.state,
                if description.protocol.is_empty() {
                    "-"
                } else {
                    &description.protocol
                },
                description.members.len()
            );
            for member in &description.members {
                let assigned: Vec<String> =
                    member.assignment.iter().map(ToString::to_string).collect();
                outln!(
                    "member {} client {} host {} partitions [{}]",
                    member.member_id,
                    member.client_id,
                    member.client_host,
                    assigned.join(", ")
                );
            }
            outln!(
                "{:<30} {:>9} {:>16} {:>16} {:>12}",
                "TOPIC",
                "PARTITION",
                "COMMITTED",
                "END OFFSET",
                "LAG"
            );
            for o in &description.offsets {
                outln!(
                    "{:<30} {:>9} {:>16} {:>16} {:>12}",
                    o.topic,
                    o.partition,
                    o.committed,
                    o.end_offset,
                    o.lag
                );
            }
        }
        OutputFormat::Json => {
            let members: Vec<_> = description
                .members
                .iter()
                .map(|m| {
                    json!({
                        "member_id": m.member_id,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "assignment": m.assignment.iter().map(|tp| json!({"topic": tp.topic, "partition": tp.partition})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let offsets: Vec<_> = description
                .offsets
                .iter()
                .map(|o| {
                    json!({
                        "topic": o.topic, "partition": o.partition, "committed": o.committed,
                        "end_offset": o.end_offset, "lag": o.lag,
                    })
                })
                .collect();
            outln!(
                "{}",
                json!({
                    "group": description.group_id,
                    "state": description.state,
                    "protocol_type": description.protocol_type,
                    "protocol": description.protocol,
                    "members": members,
                    "offsets": offsets,
                })
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn delete_offsets(
    admin: &Admin,
    group: &str,
    topic: &str,
    partition: Option<i32>,
    output: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let partitions: Vec<i32> = match partition {
        Some(p) => vec![p],
        None => {
            let topics = admin.list_topics().await.context("cannot list topics")?;
            let Some(found) = topics.iter().find(|t| t.name == topic) else {
                bail!("topic {topic} does not exist (name a --partition to delete an offset of a deleted topic's partition)");
            };
            (0..found.partitions).collect()
        }
    };
    let tps: Vec<TopicPartition> = partitions
        .iter()
        .map(|p| TopicPartition::new(topic.to_string(), *p))
        .collect();
    admin
        .delete_group_offsets(group, &tps)
        .await
        .with_context(|| format!("cannot delete offsets of group {group} for topic {topic}"))?;
    match output {
        OutputFormat::Table => outln!(
            "deleted committed offsets of group {group} for {topic} partitions {partitions:?}"
        ),
        OutputFormat::Json => outln!(
            "{}",
            json!({ "group": group, "topic": topic, "partitions": partitions, "deleted": true })
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn reset(admin: &Admin, args: ResetArgs, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let description = admin
        .describe_group(&args.group)
        .await
        .with_context(|| format!("cannot read group {}", args.group))?;
    if !description.members.is_empty() {
        bail!(
            "group {} has {} active members: stop its consumers before resetting offsets",
            args.group,
            description.members.len()
        );
    }
    let topic = admin
        .describe_topic(&args.topic)
        .await
        .with_context(|| format!("cannot read topic {}", args.topic))?;
    let timestamp = match &args.to_datetime {
        Some(text) => Some(parse_rfc3339_ms(text)?),
        None => None,
    };
    let mut offsets = BTreeMap::new();
    for partition in &topic.partitions {
        let p = partition.partition;
        let offset = if args.to_earliest {
            partition.log_start_offset
        } else if args.to_latest {
            partition.end_offset
        } else if let Some(offset) = args.to_offset {
            offset.clamp(partition.log_start_offset, partition.end_offset)
        } else if let Some(ts) = timestamp {
            match admin
                .list_offsets(&args.topic, p, OffsetSpec::Timestamp(ts))
                .await?
            {
                -1 => partition.end_offset,
                offset => offset,
            }
        } else {
            bail!("one of --to-earliest, --to-latest, --to-offset, --to-datetime is required");
        };
        offsets.insert(TopicPartition::new(args.topic.clone(), p), offset);
    }
    admin
        .commit_group_offsets(&args.group, &offsets)
        .await
        .with_context(|| format!("cannot reset offsets of group {}", args.group))?;
    match output {
        OutputFormat::Table => {
            for (tp, offset) in &offsets {
                outln!("{}: {tp} -> {offset}", args.group);
            }
        }
        OutputFormat::Json => {
            let list: Vec<_> = offsets
                .iter()
                .map(|(tp, o)| json!({ "topic": tp.topic, "partition": tp.partition, "offset": o }))
                .collect();
            outln!("{}", json!({ "group": args.group, "offsets": list }));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Milliseconds since the epoch of an RFC 3339 time (`2026-11-21T08:00:00Z`,
/// `2026-11-21T09:00:00.250+01:00`).
fn parse_rfc3339_ms(text: &str) -> anyhow::Result<i64> {
    let bad =
        || anyhow::anyhow!("--to-datetime wants RFC 3339 like 2026-11-21T08:00:00Z, got `{text}`");
    let (date, rest) = text.split_once(['T', 't', ' ']).ok_or_else(bad)?;
    let mut date_parts = date.split('-');
    let year: i64 = date_parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    let month: i64 = date_parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    let day: i64 = date_parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    let (time, offset_minutes) = if let Some(time) = rest.strip_suffix(['Z', 'z']) {
        (time, 0)
    } else {
        let at = rest.rfind(['+', '-']).ok_or_else(bad)?;
        let (time, zone) = rest.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':').ok_or_else(bad)?;
        let minutes =
            h.parse::<i64>().map_err(|_| bad())? * 60 + m.parse::<i64>().map_err(|_| bad())?;
        (time, sign * minutes)
    };
    let mut time_parts = time.split(':');
    let hour: i64 = time_parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    let minute: i64 = time_parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    let seconds: f64 = time_parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || !(0.0..61.0).contains(&seconds)
    {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = ((days * 86_400 + hour * 3600 + minute * 60 - offset_minutes * 60) * 1000)
        + (seconds * 1000.0).round() as i64;
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339_ms;

    #[test]
    fn rfc3339_times_convert_to_epoch_milliseconds() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_rfc3339_ms("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_rfc3339_ms("2023-11-14T23:13:20.5+01:00").unwrap(),
            1_700_000_000_500
        );
        assert!(parse_rfc3339_ms("yesterday").is_err());
        assert!(parse_rfc3339_ms("2023-13-01T00:00:00Z").is_err());
    }
}
