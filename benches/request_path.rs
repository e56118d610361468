//! The broker's request path in-process: decode a Produce request frame →
//! append to the partition log → encode the response; and the same for a
//! Fetch of what was produced. No sockets, so the figures are the broker's
//! own cost per request.
//!
//! Run: `cargo bench --bench request_path`.
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::expect_used)] // a benchmark that cannot set up should stop loudly

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sediment_broker::handlers::{dispatch, Reply};
use sediment_broker::protocol::codec::{decode_header, header_prefix};
use sediment_broker::storage::test_batches::batch_of_size;
use sediment_broker::{Broker, BrokerConfig, FlushPolicy};
use sediment_protocol::messages::fetch::{FetchPartition, FetchTopic};
use sediment_protocol::messages::produce::{PartitionProduceData, TopicProduceData};
use sediment_protocol::messages::{FetchRequest, ProduceRequest};
use sediment_protocol::{ApiKey, Message, RequestHeader, Writer};

const TOPIC: &str = "bench";

fn frame<T: Message>(api_key: ApiKey, version: i16, body: &T) -> Bytes {
    let mut w = Writer::new();
    RequestHeader {
        request_api_key: api_key as i16,
        request_api_version: version,
        correlation_id: 7,
        client_id: Some("bench".into()),
    }
    .encode(&mut w, api_key.request_header_version(version))
    .expect("header");
    body.encode(&mut w, version).expect("body");
    w.into_bytes()
}

fn produce_frame(records: Bytes) -> Bytes {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TOPIC.into())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    frame(ApiKey::Produce, 9, &request)
}

fn fetch_frame(offset: i64) -> Bytes {
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TOPIC.into())
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    frame(ApiKey::Fetch, 12, &request)
}

async fn run(broker: &Arc<Broker>, frame: Bytes) -> usize {
    let prefix = header_prefix(&frame).expect("prefix");
    let key = ApiKey::try_from(prefix.api_key).expect("key");
    let request = decode_header(frame, key, prefix.api_version).expect("header");
    match dispatch(broker, request, &in_process_session())
        .await
        .expect("dispatch")
    {
        Reply::Frame(chunks) => chunks.iter().map(Bytes::len).sum(),
        Reply::Nothing => 0,
    }
}

fn request_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // 16 KiB batches of 100-byte records, the storage benchmark's unit.
    let batch = Bytes::from(batch_of_size(140, 16 * 1024, 0, 7));
    let produce = produce_frame(batch.clone());
    // One 100-byte record per request: the handler's fixed cost per request.
    let produce_one = produce_frame(Bytes::from(batch_of_size(1, 200, 0, 7)));
    let mut group = c.benchmark_group("request_path");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    let mut fetches = Vec::new();
    for flush in [
        FlushPolicy::Interval(Duration::from_secs(3600)),
        FlushPolicy::Always,
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = BrokerConfig {
            data_dir: dir.path().to_path_buf(),
            ..BrokerConfig::default()
        };
        config.log.flush = flush;
        config.log.retention_ms = None;
        let broker = Arc::new(Broker::open(config).expect("broker"));
        let name = match flush {
            FlushPolicy::Always => "produce_16KiB_flush_always",
            FlushPolicy::Interval(_) => "produce_16KiB_flush_interval",
        };
        group.bench_function(name, |b| {
            b.iter(|| black_box(runtime.block_on(run(&broker, produce.clone()))))
        });
        if matches!(flush, FlushPolicy::Interval(_)) {
            group.bench_function("produce_1_record_flush_interval", |b| {
                b.iter(|| black_box(runtime.block_on(run(&broker, produce_one.clone()))))
            });
            fetches.push((dir, broker));
        }
    }
    group.finish();

    // Fetch up to 1 MiB of what was produced above (in the page cache).
    let (_dir, broker) = fetches.pop().expect("the interval broker");
    let end = broker
        .partition(TOPIC, 0)
        .expect("partition")
        .high_watermark();
    let response_bytes = runtime.block_on(run(&broker, fetch_frame(0)));
    let mut group = c.benchmark_group("request_path");
    group.throughput(Throughput::Bytes(response_bytes as u64));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    let mut offset = 0;
    group.bench_function("fetch_1MiB", |b| {
        b.iter(|| {
            offset = if offset + 20_000 >= end {
                0
            } else {
                offset + 140
            };
            black_box(runtime.block_on(run(&broker, fetch_frame(offset))))
        })
    });
    group.finish();
}

criterion_group!(benches, request_path);
criterion_main!(benches);

/// The session of an in-process caller: anonymous, on the plaintext listener.
fn in_process_session() -> sediment_broker::session::Session {
    sediment_broker::session::Session::anonymous(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
}
