//! kcat (Debian's, on librdkafka 2.0.2) works against the real broker
//! binary: `kcat -L` sees broker 0 at the address it listens on and a topic
//! kcat's own producer auto-created; and 100,000 lines produced with
//! `kcat -P` come back from `kcat -C -o beginning -e` exactly, in order,
//! nothing lost, altered, duplicated or added. kcat runs with its defaults
//! (acks=all, pipelined Produce requests, batches of up to 10,000 messages).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{require_tool, run_bounded, BrokerProcess};

/// Longest any one kcat run may take before it is killed and the test fails.
const KCAT_TIMEOUT: Duration = Duration::from_secs(120);

const KCAT_HINT: &str = "install it with `apt-get install kcat` (or run scripts/test)";

/// What a finished kcat run printed.
struct Output {
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs kcat with `args` (stdin from `stdin`, if any), killing it after
/// [`KCAT_TIMEOUT`]; panics with its stderr and the broker's log unless it
/// exits 0.
fn kcat(broker: &BrokerProcess, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let kcat = require_tool("kcat", KCAT_HINT);
    let mut command = Command::new(&kcat);
    command.args(args);
    let finished = run_bounded(command, stdin.map(<[u8]>::to_vec), KCAT_TIMEOUT);
    let status = finished.status;
    let output = Output {
        stdout: finished.stdout,
        stderr: finished.stderr,
    };
    match status {
        None => panic!(
            "kcat {args:?} did not finish within {KCAT_TIMEOUT:?} and was killed\n\
             kcat stderr:\n{}\nbroker log:\n{}",
            output.stderr,
            broker.logs()
        ),
        Some(status) if !status.success() => panic!(
            "kcat {args:?} failed ({status})\nkcat stderr:\n{}\nbroker log:\n{}",
            output.stderr,
            broker.logs()
        ),
        Some(_) => output,
    }
}

/// FNV-1a 64: the per-line checksum (any corruption of the line shows).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `msg-000123-<16 hex digits of the checksum of "msg-000123">`.
fn line(seq: usize) -> String {
    let body = format!("msg-{seq:06}");
    format!("{body}-{:016x}", fnv1a(body.as_bytes()))
}

/// Says how `got` differs from `want`: counts of lost, extra and duplicated
/// lines, and the first position where they disagree.
fn describe_difference(want: &[String], got: &[&str]) -> String {
    use std::collections::{BTreeMap, BTreeSet};
    let wanted: BTreeSet<&str> = want.iter().map(String::as_str).collect();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for l in got {
        *seen.entry(l).or_default() += 1;
    }
    let lost = wanted.iter().filter(|l| !seen.contains_key(*l)).count();
    let extra = seen.keys().filter(|l| !wanted.contains(*l)).count();
    let duplicated = seen.values().filter(|&&n| n > 1).count();
    let first = want
        .iter()
        .zip(got)
        .position(|(w, g)| w != g)
        .unwrap_or(want.len().min(got.len()));
    let reordered = if lost == 0 && extra == 0 && duplicated == 0 {
        " (the same lines in another order: appends did not follow production order)"
    } else {
        ""
    };
    format!(
        "consumed {} lines for {} produced: {lost} lost, {extra} not produced, {duplicated} duplicated{reordered}; \
         first difference at line {first}: want {:?}, got {:?} (then {:?})",
        got.len(),
        want.len(),
        want.get(first),
        got.get(first),
        got.get(first + 1..(first + 4).min(got.len())),
    )
}

#[test]
fn given_topic_auto_created_by_kcat_producer_when_listed_then_broker_0_and_topic_are_shown() {
    let broker = BrokerProcess::start(&[]);
    let addr = broker.bootstrap();
    kcat(
        &broker,
        &["-P", "-b", &addr, "-t", "kcat-listed"],
        Some(b"one\ntwo\n"),
    );

    let text = kcat(&broker, &["-L", "-b", &addr], None);
    let text = String::from_utf8(text.stdout).expect("kcat -L prints text");
    assert!(
        text.contains(&format!("broker 0 at {addr} (controller)")),
        "kcat -L does not show broker 0 at {addr} as controller:\n{text}"
    );
    assert!(
        text.contains("topic \"kcat-listed\" with 1 partitions:")
            && text.contains("partition 0, leader 0, replicas: 0, isrs: 0"),
        "kcat -L does not show the auto-created topic led by broker 0:\n{text}"
    );

    let json = kcat(&broker, &["-L", "-J", "-b", &addr], None);
    let metadata: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("kcat -L -J prints JSON");
    assert_eq!(metadata["controllerid"], 0, "{metadata}");
    assert_eq!(
        metadata["brokers"],
        serde_json::json!([{ "id": 0, "name": addr }]),
        "{metadata}"
    );
    let topics = metadata["topics"].as_array().expect("topics array");
    let topic = topics
        .iter()
        .find(|t| t["topic"] == "kcat-listed")
        .unwrap_or_else(|| panic!("kcat-listed missing from {metadata}"));
    assert!(topic.get("error").is_none(), "{topic}");
    assert_eq!(
        topic["partitions"],
        serde_json::json!([{ "partition": 0, "leader": 0, "replicas": [{ "id": 0 }], "isrs": [{ "id": 0 }] }]),
        "{metadata}"
    );
}

#[test]
fn given_kcat_producing_100k_lines_when_consumed_from_beginning_then_identical() {
    const LINES: usize = 100_000;
    let broker = BrokerProcess::start(&[]);
    let addr = broker.bootstrap();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("lines.txt");
    let want: Vec<String> = (0..LINES).map(line).collect();
    std::fs::write(&input, want.join("\n") + "\n").expect("write the input file");

    let started = Instant::now();
    kcat(
        &broker,
        &["-P", "-b", &addr, "-t", "kcat-100k", "-l", path_str(&input)],
        None,
    );
    let produced_in = started.elapsed();

    let started = Instant::now();
    let consumed = kcat(
        &broker,
        &[
            "-C",
            "-b",
            &addr,
            "-t",
            "kcat-100k",
            "-o",
            "beginning",
            "-e",
            "-q",
        ],
        None,
    );
    let consumed_in = started.elapsed();
    let text = String::from_utf8(consumed.stdout).expect("lines are UTF-8");
    let got: Vec<&str> = text.lines().collect();
    assert!(
        got == want,
        "{}\n(produced in {produced_in:?}, consumed in {consumed_in:?})\nkcat -C stderr:\n{}\nbroker log:\n{}",
        describe_difference(&want, &got),
        consumed.stderr,
        broker.logs()
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}
