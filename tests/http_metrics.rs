//! The broker's HTTP port against the real binary: GET /metrics is exact
//! (parsed by the Python `prometheus-client` OpenMetrics parser, not by our
//! own code), unknown paths and other methods are refused, a huge request
//! head or a flood of silent connections neither takes the port down nor
//! stalls the Kafka listener, and `--http` binds as documented (off, an
//! explicit address that is taken fails startup).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{run_bounded, wait_until_async, BrokerProcess, Finished};
use sediment_client::{
    AutoOffsetReset, GroupConsumerConfig, NewTopic, ProducerConfig, ProducerRecord, TopicPartition,
};
use serde_json::Value;

/// How long any wait in these tests may take before it fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// One HTTP response: status code (`None` if the connection closed without
/// one), the head, and the body.
struct HttpResponse {
    status: Option<u16>,
    head: String,
    body: String,
}

/// Sends `request` (a whole HTTP/1.1 request) on a fresh connection and
/// reads the response until the server closes it. A write or read the server
/// cut short (it may close on a refused request) ends the exchange.
fn http_exchange(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("connect to the HTTP port");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    let _ = stream.write_all(request);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    HttpResponse {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// `METHOD path` with `Connection: close`.
fn http(addr: SocketAddr, method: &str, path: &str) -> HttpResponse {
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    http_exchange(addr, request.as_bytes())
}

/// The venv's Python with `prometheus_client` importable (scripts/test
/// installs it), or a panic that says how to install it.
fn python_with_prometheus_client() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "prometheus_client is not importable in {}: run `scripts/test` (it creates target/venv), \
         or `target/venv/bin/pip install prometheus-client`",
        python.display()
    );
    python
}

/// Parses an exposition with prometheus_client's OpenMetrics parser (the
/// format the endpoint declares) and returns every sample as
/// `{"name", "labels", "value"}`.
fn parse_exposition(text: &str) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append({"family": family.name, "type": family.type,
                        "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(samples))
"#;
    let mut command = Command::new(python_with_prometheus_client());
    command.args(["-c", SCRIPT]);
    let Finished {
        status,
        stdout,
        stderr,
    } = run_bounded(command, Some(text.as_bytes().to_vec()), PATIENCE);
    assert!(
        status.is_some_and(|s| s.success()),
        "the OpenMetrics parser refused the exposition: {stderr}\n{text}"
    );
    serde_json::from_slice::<Vec<Value>>(&stdout).expect("parser output")
}

/// Sum of the samples named `name` whose labels include every `(k, v)` of `labels`.
fn sum(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| s["value"].as_f64().expect("numeric value"))
        .sum()
}

/// Number of samples named `name` with `labels`.
fn count(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> usize {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_records_produced_and_partly_consumed_when_metrics_are_scraped_then_counts_watermarks_and_lag_are_exact(
) {
    const TOPIC: &str = "metered";
    const GROUP: &str = "metered-readers";
    const N: usize = 300;
    const SIZE: usize = 100;
    const CONSUMED: usize = 120;
    let broker = BrokerProcess::start(&[]);
    let http_addr = broker.http_addr.expect("the broker prints `http on`");
    let client = common::client::connect(&broker).await;
    client
        .admin()
        .create_topic(NewTopic::new(TOPIC, 3))
        .await
        .unwrap();
    let producer = client.producer(ProducerConfig::default()).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..N {
        let value = format!("{i:0width$}", width = SIZE);
        assert_eq!(value.len(), SIZE);
        let record = ProducerRecord::keyed(TOPIC, format!("key-{i}"), value);
        deliveries.push(producer.enqueue(record).await.unwrap());
    }
    producer.flush().await.unwrap();
    let mut per_partition = BTreeMap::new();
    for delivery in deliveries {
        let meta = delivery.await.unwrap();
        *per_partition.entry(meta.partition).or_insert(0usize) += 1;
    }
    assert!(
        per_partition.len() > 1,
        "keys spread over partitions: {per_partition:?}"
    );

    // Read CONSUMED records in a group, then commit exactly what was read
    // (offset 0 for a partition with nothing read, so every partition has
    // a committed offset and a lag).
    let mut member = client
        .group_consumer(
            GroupConsumerConfig::new(GROUP)
                .with_auto_commit(None)
                .with_auto_offset_reset(AutoOffsetReset::Earliest),
        )
        .unwrap();
    member.subscribe([TOPIC]).unwrap();
    let mut next: BTreeMap<i32, i64> = (0..3).map(|p| (p, 0)).collect();
    let mut consumed = 0;
    let deadline = Instant::now() + PATIENCE;
    while consumed < CONSUMED {
        assert!(Instant::now() < deadline, "read only {consumed} records");
        for record in member.poll().await.unwrap() {
            if consumed == CONSUMED {
                break;
            }
            assert_eq!(record.offset, next[&record.partition], "in order");
            next.insert(record.partition, record.offset + 1);
            consumed += 1;
        }
    }
    let offsets = next
        .iter()
        .map(|(&p, &o)| (TopicPartition::new(TOPIC, p), o))
        .collect();
    member.commit_offsets(offsets).await.unwrap();

    let response = http(http_addr, "GET", "/metrics");
    assert_eq!(response.status, Some(200), "{}", response.head);
    assert!(
        response
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{}",
        response.head
    );
    let samples = parse_exposition(&response.body);
    let topic = [("topic", TOPIC)];

    assert_eq!(
        sum(&samples, "sediment_messages_in_total", &topic),
        N as f64
    );
    assert!(sum(&samples, "sediment_bytes_in_total", &topic) >= (N * SIZE) as f64);
    assert!(sum(&samples, "sediment_bytes_out_total", &topic) >= (CONSUMED * SIZE) as f64);
    assert_eq!(
        count(&samples, "sediment_partition_high_watermark", &topic),
        3
    );
    assert_eq!(
        sum(&samples, "sediment_partition_high_watermark", &topic),
        N as f64
    );
    assert_eq!(
        sum(&samples, "sediment_partition_log_start_offset", &topic),
        0.0
    );
    assert!(sum(&samples, "sediment_partition_size_bytes", &topic) >= (N * SIZE) as f64);
    let group = [("group", GROUP), ("topic", TOPIC)];
    assert_eq!(count(&samples, "sediment_group_lag", &group), 3);
    assert_eq!(
        sum(&samples, "sediment_group_lag", &group),
        (N - CONSUMED) as f64
    );
    for api in ["Produce", "Fetch"] {
        assert!(
            sum(
                &samples,
                "sediment_request_duration_seconds_count",
                &[("api", api)]
            ) > 0.0,
            "{api} requests counted"
        );
    }
    assert!(sum(&samples, "sediment_fsync_duration_seconds_count", &[]) > 0.0);
    assert!(
        sum(&samples, "sediment_connections", &[]) >= 1.0,
        "this test's client is connected"
    );

    // The JSON API reports the same figures.
    let json = |path: &str| -> Value {
        let response = http(http_addr, "GET", path);
        assert_eq!(response.status, Some(200), "{path}: {}", response.head);
        assert!(response
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json"));
        serde_json::from_str(&response.body).expect("JSON")
    };
    let topics = json("/api/topics");
    let metered = topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == TOPIC)
        .expect("the topic is listed");
    assert_eq!(metered["messages_in"], N);
    let partitions = metered["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    let ends: i64 = partitions
        .iter()
        .map(|p| p["high_watermark"].as_i64().unwrap())
        .sum();
    assert_eq!(ends, N as i64);
    let groups = json("/api/groups");
    let readers = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == GROUP)
        .expect("the group is listed");
    assert_eq!(readers["lag"], N - CONSUMED);
    let committed: i64 = readers["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["committed"].as_i64().unwrap())
        .sum();
    assert_eq!(committed, CONSUMED as i64);
    let overview = json("/api/overview");
    assert!(overview["topics"].as_u64().unwrap() >= 1);
    assert!(overview["messages_in"].as_u64().unwrap() >= N as u64);
    assert_eq!(http(http_addr, "GET", "/api/nope").status, Some(404));
    member.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_bad_http_requests_and_silent_connections_then_they_are_refused_and_neither_port_stalls(
) {
    let broker = BrokerProcess::start(&[]);
    let http_addr = broker.http_addr.expect("the broker prints `http on`");

    assert_eq!(http(http_addr, "GET", "/nope").status, Some(404));
    assert_eq!(http(http_addr, "GET", "/").status, Some(200), "the console");
    let post = http(http_addr, "POST", "/metrics");
    assert_eq!(post.status, Some(405));
    assert!(post.head.to_ascii_lowercase().contains("allow: get"));
    assert_eq!(http(http_addr, "DELETE", "/metrics").status, Some(405));

    // A 64 KiB header: refused (431) or the connection closed, never served.
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: {http_addr}\r\nX-Huge: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let refused = http_exchange(http_addr, huge.as_bytes());
    assert!(
        matches!(refused.status, None | Some(431)),
        "a huge head got {:?}",
        refused.status
    );

    // More silent connections than the HTTP port admits: the Kafka port
    // keeps answering meanwhile.
    let silent: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(http_addr).expect("connect"))
        .collect();
    let client = common::client::connect(&broker).await;
    client
        .admin()
        .create_topic(NewTopic::new("after-http-abuse", 1))
        .await
        .unwrap();
    let producer = client.producer(ProducerConfig::default()).unwrap();
    let delivery = producer
        .enqueue(ProducerRecord::new("after-http-abuse", "still here"))
        .await
        .unwrap();
    producer.flush().await.unwrap();
    assert_eq!(delivery.await.unwrap().offset, 0);
    drop(silent);

    // And once they are gone, /metrics answers again.
    wait_until_async(
        PATIENCE,
        || async { http(http_addr, "GET", "/metrics").status == Some(200) },
        || "GET /metrics after the silent connections closed".to_string(),
    )
    .await;
    let body = http(http_addr, "GET", "/metrics").body;
    assert!(body.contains("sediment_messages_in_total{topic=\"after-http-abuse\"} 1"));
}

/// Starts `sediment serve` with `args`, waits for `listening on`, stops it
/// with SIGTERM and returns every stdout line.
fn serve_and_collect_stdout(args: &[&str]) -> Vec<String> {
    let temp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sediment"))
        .arg("serve")
        .arg("--data-dir")
        .arg(temp.path().join("data"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the sediment binary");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("the broker prints `listening on`");
        let ready = line.starts_with("listening on ");
        lines.push(line);
        if ready {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = common::wait_for_exit(&mut child, PATIENCE).expect("stops on SIGTERM");
    assert!(status.success(), "{status}");
    // The sender is gone once stdout closed: everything printed is here.
    lines.extend(rx.iter());
    lines
}

#[test]
fn given_http_off_over_a_config_file_address_then_no_http_line_and_nothing_listens() {
    let port = common::free_port();
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("sediment.toml");
    std::fs::write(&config, format!("http = \"127.0.0.1:{port}\"\n")).unwrap();
    let config = config.to_str().unwrap();
    let lines = serve_and_collect_stdout(&["--config", config, "--http", "off"]);
    assert!(!lines.iter().any(|l| l.starts_with("http on")), "{lines:?}");
    // The file's address alone is served (and announced)...
    let lines = serve_and_collect_stdout(&["--config", config]);
    assert!(
        lines.contains(&format!("http on 127.0.0.1:{port}")),
        "{lines:?}"
    );
    // ...and with `--http off` over it, the port stays unserved while running.
    let broker = BrokerProcess::start(&["--config", config, "--http", "off"]);
    assert!(broker.http_addr.is_none());
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_err());
}

#[test]
fn given_an_explicit_http_address_already_bound_then_startup_fails_naming_it() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let temp = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sediment"));
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(temp.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--http", &taken]);
    let Finished {
        status,
        stdout,
        stderr,
    } = run_bounded(command, None, PATIENCE);
    let status = status.expect("exits instead of serving");
    assert!(!status.success(), "{status}");
    assert!(
        stderr.contains(&taken) && stderr.contains("HTTP"),
        "stderr: {stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&stdout).contains("listening on"),
        "never announced as ready"
    );
    drop(holder);
}
