//! `GET /api/…`: the broker's state as JSON, for the web console and for
//! scripts. Read-only, like the whole HTTP port; each answer is one pass over
//! the same [`Snapshot`] a metrics scrape takes.
//!
//! - `/api/overview`: `{"topics", "partitions", "connections", "uptime_seconds",
//!   "messages_in", "bytes_in", "bytes_out", "size_bytes"}`, totals since
//!   the broker started (`size_bytes`: on disk now);
//! - `/api/topics`: `[{"name", "messages_in", "bytes_in", "bytes_out",
//!   "partitions": [{"partition", "log_start_offset", "high_watermark",
//!   "size_bytes"}]}]`, by name;
//! - `/api/groups`: `[{"group", "lag", "offsets": [{"topic", "partition",
//!   "committed", "lag"}]}]`, by group, for every group with committed
//!   offsets on partitions open here (`lag`: high watermark − committed,
//!   never below 0, as in `sediment group describe`);
//! - `/api/topics/{topic}/partitions/{partition}/messages`: the latest
//!   [`BROWSE_MESSAGES`] messages below the high watermark, oldest first:
//!   `[{"offset", "timestamp", "key", "value", "headers": [{"key",
//!   "value"}]}]`, where every key and value is `{"text", "hex"}` (`text`
//!   null unless UTF-8; the whole value null for a null). Control batches
//!   (transaction markers) are skipped. Reads are bounded by
//!   [`BROWSE_BYTES`] and decompression by the same.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use bytes::Bytes;
use sediment_protocol::records::{decode_batch, split_batches};

use crate::broker::Broker;
use crate::http::metrics::Snapshot;

/// Messages the browser shows of a partition.
pub const BROWSE_MESSAGES: i64 = 50;

/// Most log bytes one browse reads (and inflates per batch).
pub const BROWSE_BYTES: usize = 1 << 20;

/// The JSON of one API path, or `None` for a path the API does not have
/// (or a topic or partition this broker does not host).
pub fn render(broker: &Broker, path: &str) -> Option<String> {
    if let Some((topic, partition)) = messages_path(path) {
        return latest_messages(broker, topic, partition).map(|v| v.to_string());
    }
    let render: fn(&Snapshot) -> Value = match path {
        "/api/overview" => overview,
        "/api/topics" => topics,
        "/api/groups" => groups,
        _ => return None,
    };
    Some(render(&Snapshot::take(broker)).to_string())
}

fn overview(snapshot: &Snapshot) -> Value {
    let traffic = snapshot.topics.values();
    json!({
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

fn topics(snapshot: &Snapshot) -> Value {
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
                    "messages_in": t.messages_in,
                    "bytes_in": t.bytes_in,
                    "bytes_out": t.bytes_out,
                    "partitions": partitions.remove(name.as_str()).unwrap_or_default(),
                })
            })
            .collect(),
    )
}

fn groups(snapshot: &Snapshot) -> Value {
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
    Value::Array(
        groups
            .into_iter()
            .map(|(group, (lag, offsets))| json!({"group": group, "lag": lag, "offsets": offsets}))
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
            "hex": b.iter().map(|byte| format!("{byte:02x}")).collect::<String>(),
        }),
    }
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
