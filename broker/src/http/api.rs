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
//!   never below 0, as in `sediment group describe`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::broker::Broker;
use crate::http::metrics::Snapshot;

/// The JSON of one API path, or `None` for a path the API does not have.
pub fn render(broker: &Broker, path: &str) -> Option<String> {
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
