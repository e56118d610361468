//! `GET /metrics`: the families below, read from broker state and the
//! hot-path counters ([`crate::telemetry`]) at scrape time, put in a fresh
//! `prometheus-client` registry and encoded by it (OpenMetrics text; never
//! hand-formatted).
//!
//! Families (names and labels are a contract: dashboards and the tests
//! depend on them):
//! - `sediment_messages_in_total{topic}`, `sediment_bytes_in_total{topic}`:
//!   records and record-set bytes appended by Produce since the broker
//!   started; `sediment_bytes_out_total{topic}`: record bytes returned by
//!   Fetch. Summed over each topic's partitions at scrape time;
//! - `sediment_partition_high_watermark`, `_log_start_offset`, `_size_bytes`
//!   `{topic,partition}`: gauges read from each partition log;
//! - `sediment_group_lag{group,topic,partition}`: high watermark minus the
//!   committed offset, never below 0 (as `sediment group describe`), for
//!   every committed offset of every group whose partition is open here;
//! - `sediment_request_duration_seconds{api}`: histogram per Kafka API the
//!   broker serves, from decoded header to reply ready;
//! - `sediment_fsync_duration_seconds`: histogram of the log's fdatasyncs;
//! - `sediment_connections`: open Kafka connections.
//!
//! A scrape costs one pass over the partitions and one over the committed
//! offsets; it runs on the blocking pool (see `http`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::broker::Broker;
use crate::protocol::versions::ADVERTISED;
use crate::telemetry::{HistogramSnapshot, FSYNC_SECONDS};

/// The label set type named for the (absent) exemplars.
type NoExemplar = Vec<(String, String)>;

/// Renders every family as an OpenMetrics text exposition (ending `# EOF`).
pub fn render(broker: &Broker) -> Result<String, fmt::Error> {
    let snapshot = Snapshot::take(broker);
    let mut out = String::with_capacity(4096 + snapshot.partitions.len() * 320);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

/// A family drawn from samples of type `S`: name, help, and the value of a sample.
type Family<S, V> = (&'static str, &'static str, fn(&S) -> V);

/// Traffic of one topic, summed over its partitions.
#[derive(Debug, Default)]
pub(crate) struct TopicTraffic {
    pub(crate) messages_in: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
}

/// One partition's gauges.
#[derive(Debug)]
pub(crate) struct PartitionSample {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) high_watermark: i64,
    pub(crate) log_start_offset: i64,
    pub(crate) size_bytes: u64,
}

/// One group's committed offset and lag on one partition.
#[derive(Debug)]
pub(crate) struct LagSample {
    pub(crate) group: String,
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) committed: i64,
    pub(crate) lag: i64,
}

/// Everything one scrape reports, read from the broker once (the JSON API,
/// `http::api`, reads the same).
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) topics: BTreeMap<String, TopicTraffic>,
    pub(crate) partitions: Vec<PartitionSample>,
    pub(crate) lags: Vec<LagSample>,
    requests: Vec<(&'static str, HistogramSnapshot)>,
    fsync: HistogramSnapshot,
    pub(crate) connections: i64,
    pub(crate) uptime_seconds: u64,
}

impl Snapshot {
    /// Reads every figure from `broker` once.
    pub(crate) fn take(broker: &Broker) -> Self {
        let mut logs = broker.logs().partitions();
        logs.sort_by(|(a, _), (b, _)| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let mut topics: BTreeMap<String, TopicTraffic> = BTreeMap::new();
        let mut partitions = Vec::with_capacity(logs.len());
        let mut high_watermarks: HashMap<(&str, i32), i64> = HashMap::with_capacity(logs.len());
        for (tp, log) in &logs {
            let traffic = log.traffic();
            let topic = topics.entry(tp.topic.clone()).or_default();
            topic.messages_in += traffic.messages_in();
            topic.bytes_in += traffic.bytes_in();
            topic.bytes_out += traffic.bytes_out();
            let high_watermark = log.high_watermark();
            high_watermarks.insert((tp.topic.as_str(), tp.partition), high_watermark);
            partitions.push(PartitionSample {
                topic: tp.topic.clone(),
                partition: tp.partition,
                high_watermark,
                log_start_offset: log.log_start_offset(),
                size_bytes: log.size_bytes(),
            });
        }
        let lags = broker
            .offsets()
            .all_offsets()
            .into_iter()
            .filter_map(|(group, topic, partition, committed)| {
                let end = *high_watermarks.get(&(topic.as_str(), partition))?;
                Some(LagSample {
                    group,
                    topic,
                    partition,
                    committed,
                    lag: end.saturating_sub(committed).max(0),
                })
            })
            .collect();
        let telemetry = broker.telemetry();
        let requests = ADVERTISED
            .iter()
            .filter_map(|range| {
                telemetry
                    .request_histogram(range.key)
                    .map(|h| (range.key.name(), h.snapshot()))
            })
            .collect();
        Self {
            topics,
            partitions,
            lags,
            requests,
            fsync: FSYNC_SECONDS.snapshot(),
            connections: telemetry.connections(),
            uptime_seconds: telemetry.uptime().as_secs(),
        }
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        // Counters: the encoder appends `_total` to the family name.
        let traffic: [Family<TopicTraffic, u64>; 3] = [
            (
                "sediment_messages_in",
                "Records appended by Produce since the broker started",
                |t| t.messages_in,
            ),
            (
                "sediment_bytes_in",
                "Record-set bytes appended by Produce since the broker started",
                |t| t.bytes_in,
            ),
            (
                "sediment_bytes_out",
                "Record bytes returned by Fetch since the broker started",
                |t| t.bytes_out,
            ),
        ];
        for (name, help, value) in traffic {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (topic, t) in &self.topics {
                let labels = [("topic", topic.as_str())];
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoExemplar, u64, f64>(&value(t), None)?;
            }
        }

        let gauges: [Family<PartitionSample, i64>; 3] = [
            (
                "sediment_partition_high_watermark",
                "Offset after the last readable record",
                |p| p.high_watermark,
            ),
            (
                "sediment_partition_log_start_offset",
                "First offset still in the log",
                |p| p.log_start_offset,
            ),
            (
                "sediment_partition_size_bytes",
                "Bytes in all segments of the partition",
                |p| i64::try_from(p.size_bytes).unwrap_or(i64::MAX),
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for p in &self.partitions {
                let partition = p.partition.to_string();
                let labels = [
                    ("topic", p.topic.as_str()),
                    ("partition", partition.as_str()),
                ];
                family.encode_family(&labels)?.encode_gauge(&value(p))?;
            }
        }

        {
            let mut family = encoder.encode_descriptor(
                "sediment_group_lag",
                "High watermark minus the group's committed offset, never below 0",
                None,
                MetricType::Gauge,
            )?;
            for l in &self.lags {
                let partition = l.partition.to_string();
                let labels = [
                    ("group", l.group.as_str()),
                    ("topic", l.topic.as_str()),
                    ("partition", partition.as_str()),
                ];
                family.encode_family(&labels)?.encode_gauge(&l.lag)?;
            }
        }

        {
            let mut family = encoder.encode_descriptor(
                "sediment_request_duration_seconds",
                "Time from a Kafka request's decoded header to its reply being ready, per API",
                None,
                MetricType::Histogram,
            )?;
            for (api, histogram) in &self.requests {
                let labels = [("api", *api)];
                encode_histogram(&mut family.encode_family(&labels)?, histogram)?;
            }
        }

        {
            let mut family = encoder.encode_descriptor(
                "sediment_fsync_duration_seconds",
                "Time spent in fdatasync making appended records durable",
                None,
                MetricType::Histogram,
            )?;
            encode_histogram(&mut family, &self.fsync)?;
        }

        let mut family = encoder.encode_descriptor(
            "sediment_connections",
            "Open Kafka client connections",
            None,
            MetricType::Gauge,
        )?;
        family.encode_gauge(&self.connections)?;
        Ok(())
    }
}

fn encode_histogram(
    encoder: &mut MetricEncoder<'_>,
    histogram: &HistogramSnapshot,
) -> Result<(), fmt::Error> {
    encoder.encode_histogram::<NoExemplar>(
        histogram.sum_seconds,
        histogram.count,
        &histogram.buckets,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, HttpListen};

    #[test]
    fn given_an_empty_broker_when_rendered_then_every_family_is_described_and_it_ends_with_eof() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            data_dir: dir.path().to_path_buf(),
            http: HttpListen::Off,
            ..BrokerConfig::default()
        };
        let broker = Broker::open(config).unwrap();
        let text = render(&broker).unwrap();
        for family in [
            "# TYPE sediment_messages_in counter",
            "# TYPE sediment_bytes_in counter",
            "# TYPE sediment_bytes_out counter",
            "# TYPE sediment_partition_high_watermark gauge",
            "# TYPE sediment_partition_log_start_offset gauge",
            "# TYPE sediment_partition_size_bytes gauge",
            "# TYPE sediment_group_lag gauge",
            "# TYPE sediment_request_duration_seconds histogram",
            "# TYPE sediment_fsync_duration_seconds histogram",
            "# TYPE sediment_connections gauge",
        ] {
            assert!(text.contains(family), "{family} missing from:\n{text}");
        }
        assert!(
            text.contains("sediment_request_duration_seconds_count{api=\"Produce\"} 0"),
            "{text}"
        );
        assert!(text.contains("sediment_connections 0\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
