//! `GET /api/…`: the broker's state as JSON, for the web console and for
//! scripts. Read-only, like the whole HTTP port; each answer is one pass over
//! the same [`Snapshot`] a metrics scrape takes.
//!
//! - `/api/overview`: `{"broker_id", "cluster_id", "version", "address",
//!   "data_dir", "volume_total_bytes", "volume_usable_bytes", "topics",
//!   "partitions", "connections", "uptime_seconds",
//!   "messages_in", "bytes_in", "bytes_out", "size_bytes"}`, totals since
//!   the broker started (`size_bytes`: on disk now);
//! - `/api/topics`: `[{"name", "configs", "messages_in", "bytes_in",
//!   "bytes_out", "partitions": [{"partition", "log_start_offset",
//!   "high_watermark", "size_bytes"}]}]`, by name (`configs`: the topic's
//!   overrides);
//! - `/api/groups`: `[{"group", "state", "members": [{"member_id",
//!   "client_id", "client_host", "assignment": [{"topic", "partitions"}]}],
//!   "lag", "offsets": [{"topic", "partition", "committed", "lag"}]}]`, by
//!   group, for every group the coordinator knows or with committed offsets
//!   (`lag`: high watermark − committed, never below 0, as in `sediment
//!   group describe`; `assignment` decoded from the consumer protocol, empty
//!   for other protocols or before the group is Stable);
//! - `/api/topics/{topic}/partitions/{partition}/messages`: the latest
//!   [`BROWSE_MESSAGES`] messages below the high watermark, oldest first:
//!   `[{"offset", "timestamp", "key", "value", "headers": [{"key",
//!   "value"}]}]`, where every key and value is `{"text", "hex"}` (`text`
//!   null unless UTF-8; the whole value null for a null). Control batches
//!   (transaction markers) are skipped. Reads are bounded by
//!   [`BROWSE_BYTES`] and decompression by the same.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use sediment_protocol::messages::consumer_protocol::ConsumerProtocolAssignment;
use sediment_protocol::records::{decode_batch, split_batches};
use sediment_protocol::Message;
use serde_json::{json, Value};

use crate::broker::Broker;
use crate::handlers::describe_log_dirs::volume_space;
use crate::http::metrics::Snapshot;

/// Messages the browser shows of a partition.
pub const BROWSE_MESSAGES: i64 = 50;

/// Most log bytes one browse reads (and inflates per batch).
pub const BROWSE_BYTES: usize = 1 << 20;

/// Highest `ConsumerProtocolAssignment` version the codec knows; later
/// versions only append fields, so they are read as this one (as Kafka does).
const MAX_ASSIGNMENT_VERSION: i16 = 3;

/// The JSON of one API path, or `None` for a path the API does not have
/// (or a topic or partition this broker does not host). The coordinator is
/// asked on the runtime; logs are read on the blocking pool.
pub async fn render(broker: &Arc<Broker>, path: &str) -> Option<String> {
    let members = match path {
        "/api/groups" => Some(coordinator_view(broker).await),
        _ => None,
    };
    let broker = Arc::clone(broker);
    let path = path.to_string();
    tokio::task::spawn_blocking(move || render_now(&broker, &path, members))
        .await
        .ok()
        .flatten()
}

fn render_now(broker: &Broker, path: &str, members: Option<CoordinatorView>) -> Option<String> {
    if let Some((topic, partition)) = messages_path(path) {
        return latest_messages(broker, topic, partition).map(|v| v.to_string());
    }
    let snapshot = Snapshot::take(broker);
    let value = match path {
        "/api/overview" => overview(&snapshot, broker),
        "/api/topics" => topics(&snapshot, broker),
        "/api/groups" => groups(&snapshot, members.unwrap_or_default()),
        _ => return None,
    };
    Some(value.to_string())
}

/// Each group the coordinator knows: its state and members as JSON.
type CoordinatorView = BTreeMap<String, (String, Vec<Value>)>;

/// The coordinator's groups with state and members (empty if it is not
/// running or does not answer).
async fn coordinator_view(broker: &Broker) -> CoordinatorView {
    let Some(coordinator) = broker.group_coordinator() else {
        return CoordinatorView::new();
    };
    let Ok(listed) = coordinator.list().await else {
        return CoordinatorView::new();
    };
    let ids: Vec<String> = listed.into_iter().map(|g| g.group_id).collect();
    let Ok(described) = coordinator.describe(ids.clone()).await else {
        return CoordinatorView::new();
    };
    ids.into_iter()
        .zip(described)
        .filter_map(|(id, description)| {
            let description = description?;
            let members = description
                .members
                .into_iter()
                .map(|m| {
                    json!({
                        "member_id": m.member_id,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "assignment": assigned(m.assignment),
                    })
                })
                .collect();
            Some((id, (description.state.name().to_string(), members)))
        })
        .collect()
}

/// A consumer-protocol assignment (an `i16` version, then the struct) as
/// `[{"topic", "partitions"}]`; empty when it does not decode.
fn assigned(mut assignment: Bytes) -> Value {
    if assignment.len() < 2 {
        return json!([]);
    }
    let version = assignment.get_i16();
    if version < 0 {
        return json!([]);
    }
    match ConsumerProtocolAssignment::from_bytes(assignment, version.min(MAX_ASSIGNMENT_VERSION)) {
        Ok(decoded) => Value::Array(
            decoded
                .assigned_partitions
                .into_iter()
                .map(|tp| json!({"topic": tp.topic, "partitions": tp.partitions}))
                .collect(),
        ),
        Err(_) => json!([]),
    }
}

fn overview(snapshot: &Snapshot, broker: &Broker) -> Value {
    let traffic = snapshot.topics.values();
    let config = broker.config();
    let (host, port) = broker.advertised();
    let volume = volume_space(&config.data_dir);
    json!({
        "broker_id": config.broker_id,
        "cluster_id": config.cluster_id,
        "version": env!("CARGO_PKG_VERSION"),
        "address": format!("{host}:{port}"),
        "data_dir": config.data_dir.display().to_string(),
        "volume_total_bytes": volume.as_ref().map(|v| v.total_bytes),
        "volume_usable_bytes": volume.as_ref().map(|v| v.usable_bytes),
        "topics": snapshot.topics.len(),
        "partitions": snapshot.partitions.len(),
        "connections": snapshot.connections,
        "uptime_seconds": snapshot.uptime_seconds,
        "messages_in": traffic.clone().map(|t| t.messages_in).sum::<u64>(),
        "bytes_in": traffic.clone().map(|t| t.bytes_in).sum::<u64>(),
        "bytes_out": traffic.map(|t| t.bytes_out).sum::<u64>(),
        "size_bytes": snapshot.partitions.iter().map(|p| p.size_bytes).sum::<u64>(),
    })
}

fn topics(snapshot: &Snapshot, broker: &Broker) -> Value {
    let configs: BTreeMap<String, BTreeMap<String, String>> = broker
        .topics()
        .list()
        .into_iter()
        .map(|t| (t.name, t.configs))
        .collect();
    let mut partitions: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for p in &snapshot.partitions {
        partitions.entry(p.topic.as_str()).or_default().push(json!({
            "partition": p.partition,
            "log_start_offset": p.log_start_offset,
            "high_watermark": p.high_watermark,
            "size_bytes": p.size_bytes,
        }));
    }
    Value::Array(
        snapshot
            .topics
            .iter()
            .map(|(name, t)| {
                json!({
                    "name": name,
                    "configs": configs.get(name).cloned().unwrap_or_default(),
                    "messages_in": t.messages_in,
                    "bytes_in": t.bytes_in,
                    "bytes_out": t.bytes_out,
                    "partitions": partitions.remove(name.as_str()).unwrap_or_default(),
                })
            })
            .collect(),
    )
}

fn groups(snapshot: &Snapshot, mut coordinator: CoordinatorView) -> Value {
    let mut groups: BTreeMap<&str, (i64, Vec<Value>)> = BTreeMap::new();
    for l in &snapshot.lags {
        let (lag, offsets) = groups.entry(l.group.as_str()).or_default();
        *lag = lag.saturating_add(l.lag);
        offsets.push(json!({
            "topic": l.topic,
            "partition": l.partition,
            "committed": l.committed,
            "lag": l.lag,
        }));
    }
    let ids: Vec<String> = groups
        .keys()
        .map(|g| g.to_string())
        .chain(coordinator.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Value::Array(
        ids.into_iter()
            .map(|id| {
                let (lag, offsets) = groups.remove(id.as_str()).unwrap_or_default();
                let (state, members) = coordinator
                    .remove(&id)
                    .unwrap_or_else(|| ("Empty".to_string(), Vec::new()));
                json!({
                    "group": id,
                    "state": state,
                    "members": members,
                    "lag": lag,
                    "offsets": offsets,
                })
            })
            .collect(),
    )
}

/// `(topic, partition)` of `/api/topics/{topic}/partitions/{partition}/messages`.
fn messages_path(path: &str) -> Option<(&str, i32)> {
    let rest = path
        .strip_prefix("/api/topics/")?
        .strip_suffix("/messages")?;
    let (topic, partition) = rest.split_once("/partitions/")?;
    Some((topic, partition.parse().ok()?))
}

/// The latest [`BROWSE_MESSAGES`] messages of a partition, oldest first.
fn latest_messages(broker: &Broker, topic: &str, partition: i32) -> Option<Value> {
    let log = broker.partition(topic, partition).ok()?;
    let end = log.high_watermark();
    let from = end
        .saturating_sub(BROWSE_MESSAGES)
        .max(log.log_start_offset());
    let mut messages = Vec::new();
    let mut offset = from;
    let mut budget = BROWSE_BYTES;
    while offset < end && budget > 0 {
        let Ok(read) = log.read(offset, budget) else {
            break;
        };
        if read.bytes.is_empty() || read.next_offset <= offset {
            break;
        }
        budget = budget.saturating_sub(read.bytes.len());
        for batch in split_batches(&read.bytes) {
            let Ok(batch) = decode_batch(batch, BROWSE_BYTES) else {
                continue; // a batch the log returned but cannot inflate here
            };
            if batch.control {
                continue;
            }
            for record in batch.records {
                if record.offset < from || record.offset >= end {
                    continue;
                }
                messages.push(json!({
                    "offset": record.offset,
                    "timestamp": record.timestamp,
                    "key": shown(record.key.as_ref()),
                    "value": shown(record.value.as_ref()),
                    "headers": record.headers.iter().map(|(key, value)| json!({
                        "key": key,
                        "value": shown(value.as_ref()),
                    })).collect::<Vec<_>>(),
                }));
            }
        }
        offset = read.next_offset;
    }
    Some(Value::Array(messages))
}

/// Bytes as the browser shows them: as text when they are UTF-8, and hex.
fn shown(bytes: Option<&Bytes>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => json!({
            "text": std::str::from_utf8(b).ok(),
            "hex": hex(b),
        }),
    }
}

/// `bytes` as lowercase hex, written into one buffer.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_message_paths_then_topic_and_partition_or_none() {
        assert_eq!(
            messages_path("/api/topics/a.b-c/partitions/3/messages"),
            Some(("a.b-c", 3))
        );
        assert_eq!(messages_path("/api/topics/a/partitions/x/messages"), None);
        assert_eq!(messages_path("/api/topics/a/messages"), None);
        assert_eq!(messages_path("/api/topics"), None);
    }

    #[test]
    fn given_bytes_then_text_when_utf8_and_always_hex() {
        let text = shown(Some(&Bytes::from_static(b"hi")));
        assert_eq!(text, json!({"text": "hi", "hex": "6869"}));
        let binary = shown(Some(&Bytes::from_static(&[0xff, 0x00])));
        assert_eq!(binary, json!({"text": null, "hex": "ff00"}));
        assert_eq!(shown(None), Value::Null);
    }
}
