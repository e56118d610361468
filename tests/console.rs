//! The web console in a real browser: headless Chromium (Debian's
//! `chromium`, installed by scripts/test) loads `GET /` from a real broker,
//! runs its scripts against `/api/`, and the rendered DOM must show the
//! topic, the group and its exact lag. Each page is screenshotted to
//! `target/console-screenshots/` and checked for non-blank content. The
//! browser runs with every host but 127.0.0.1 unresolvable, and the served
//! page must name no external URL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{cli_stdout, run_bounded, sediment_cli, BrokerProcess};
use sediment_client::{GroupConsumerConfig, ProducerConfig, ProducerRecord};

/// Generous bound for one browser run on a busy machine.
const BROWSER_DEADLINE: Duration = Duration::from_secs(180);

/// The Chromium binary, or a panic that says how to install it.
fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .map(PathBuf::from)
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|| {
            panic!("headless Chromium is missing: `apt-get install chromium` (scripts/test does)")
        })
}

/// Runs headless Chromium on `url` with networking limited to 127.0.0.1 and
/// the page's timers run for 10 s of virtual time; `extra` picks the output.
fn browse(url: &str, extra: &[&str]) -> Vec<u8> {
    let profile = tempfile::tempdir().unwrap();
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--virtual-time-budget=10000",
            "--window-size=1280,800",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url);
    let finished = run_bounded(command, None, BROWSER_DEADLINE);
    assert!(
        finished.status.is_some_and(|s| s.success()),
        "chromium failed or timed out: {}",
        finished.stderr
    );
    finished.stdout
}

/// How many distinct byte values the PNG's decompressed image data holds
/// (a blank page gives a handful; text and tables give many).
fn png_variety(path: &Path) -> usize {
    const SCRIPT: &str = r#"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    if kind == b"IDAT":
        idat += data[pos + 8:pos + 8 + length]
    pos += 12 + length
print(len(set(zlib.decompress(idat))))
"#;
    let output = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_topic_and_a_lagging_group_when_the_console_is_rendered_then_it_shows_them_and_the_exact_lag(
) {
    const TOPIC: &str = "browsed";
    const GROUP: &str = "browsers";
    const LIVE_GROUP: &str = "watchers";
    let broker = BrokerProcess::start(&[]);
    let http_addr = broker.http_addr.expect("the broker prints `http on`");
    cli_stdout(&sediment_cli(
        &broker,
        &[
            "topic",
            "create",
            TOPIC,
            "--partitions",
            "2",
            "--config",
            "retention.ms=3600000",
        ],
    ));
    let client = common::client::connect(&broker).await;
    let producer = client.producer(ProducerConfig::default()).unwrap();
    for (partition, count) in [(0, 25), (1, 15)] {
        for i in 0..count {
            let record =
                ProducerRecord::new(TOPIC, format!("message {i}")).with_partition(partition);
            drop(producer.enqueue(record).await.unwrap());
        }
    }
    producer.flush().await.unwrap();
    // Committed 10 on both partitions: lag (25 - 10) + (15 - 10) = 20.
    cli_stdout(&sediment_cli(
        &broker,
        &[
            "group",
            "reset-offsets",
            GROUP,
            "--topic",
            TOPIC,
            "--to-offset",
            "10",
        ],
    ));

    // A live member of another group: Stable, both partitions assigned.
    let mut watcher = client
        .group_consumer(GroupConsumerConfig::new(LIVE_GROUP))
        .unwrap();
    watcher.subscribe([TOPIC]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while watcher.assignment().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher was never assigned both partitions"
        );
        watcher.poll().await.unwrap();
    }

    // The page served names no other host.
    let page = String::from_utf8(browse(&format!("http://{http_addr}/"), &["--dump-dom"])).unwrap();
    assert!(
        page.contains("data-loaded=\"true\""),
        "the scripts ran: {page}"
    );
    let served = served_body(http_addr, "/");
    for external in ["http://", "https://", "//cdn", "@import"] {
        assert!(!served.contains(external), "the console names {external}");
    }

    let overview = String::from_utf8(browse(
        &format!("http://{http_addr}/#overview"),
        &["--dump-dom"],
    ))
    .unwrap();
    assert!(overview.contains("broker 0 of cluster"), "{overview}");
    let api: serde_json::Value =
        serde_json::from_str(&served_body(http_addr, "/api/overview")).unwrap();
    assert_eq!(api["broker_id"], 0);
    assert!(api["volume_total_bytes"].as_i64().unwrap() > 0);
    assert!(api["volume_usable_bytes"].as_i64().unwrap() > 0);
    assert!(overview.contains(api["data_dir"].as_str().unwrap()));

    let groups = String::from_utf8(browse(
        &format!("http://{http_addr}/#groups"),
        &["--dump-dom"],
    ))
    .unwrap();
    assert!(groups.contains(&format!("<b>{GROUP}</b>")), "{groups}");
    assert!(
        groups.contains(&format!("data-group-lag=\"{GROUP}\">20<")),
        "the group's exact lag: {groups}"
    );
    assert!(groups.contains(&format!("data-lag=\"{GROUP}/{TOPIC}/0\">15<")));
    assert!(groups.contains(&format!("data-lag=\"{GROUP}/{TOPIC}/1\">5<")));
    assert!(
        groups.contains(&format!("data-state=\"{LIVE_GROUP}\">Stable<")),
        "the live group's state: {groups}"
    );
    assert!(
        groups.contains(&format!("{TOPIC} [0, 1]")),
        "the live member's assignment: {groups}"
    );
    let topics = String::from_utf8(browse(
        &format!("http://{http_addr}/#topics"),
        &["--dump-dom"],
    ))
    .unwrap();
    assert!(topics.contains(&format!("<b>{TOPIC}</b>")), "{topics}");
    assert!(
        topics.contains("retention.ms=3600000"),
        "the topic's config override: {topics}"
    );
    // The message browser shows the first user topic's partition 0: all 25.
    assert!(
        topics.contains("<tr data-offset=\"24\">") && topics.contains("message 24"),
        "the latest message is browsed: {topics}"
    );
    assert!(topics.contains("<tr data-offset=\"0\">"));
    let browsed = served_body(
        http_addr,
        &format!("/api/topics/{TOPIC}/partitions/1/messages"),
    );
    let browsed: serde_json::Value = serde_json::from_str(&browsed).unwrap();
    let values: Vec<&str> = browsed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"]["text"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..15).map(|i| format!("message {i}")).collect();
    assert_eq!(values, expected);

    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for page in ["overview", "topics", "groups"] {
        let path = shots.join(format!("{page}.png"));
        let _ = std::fs::remove_file(&path);
        browse(
            &format!("http://{http_addr}/#{page}"),
            &[&format!("--screenshot={}", path.display())],
        );
        let variety = png_variety(&path);
        assert!(
            variety > 16,
            "{page}: a blank screenshot ({variety} byte values)"
        );
    }
}

/// `GET path` over a plain TCP connection: the body.
fn served_body(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    if path == "/" {
        assert!(
            head.to_ascii_lowercase()
                .contains("content-security-policy"),
            "{head}"
        );
    }
    body.to_string()
}
