//! The operators' commands through the real binary against a real broker:
//! `topic`, `produce`, `consume`, `bench`, their JSON output, and the one-line
//! errors for a missing topic, a bad flag and an unreachable broker.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::BrokerProcess;
use serde_json::Value;

fn sediment(broker: &BrokerProcess, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sediment"))
        .arg("--bootstrap")
        .arg(broker.bootstrap())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn json(output: &Output) -> Value {
    serde_json::from_str(ok(output).trim()).unwrap()
}

/// A failed command: non-zero exit, exactly one line on stderr, no panic.
fn one_line_error(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure, got success");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line on stderr: {stderr}"
    );
    stderr
}

#[test]
fn given_topic_commands_when_run_with_json_output_then_topics_are_created_described_listed_and_deleted(
) {
    let broker = BrokerProcess::start(&[]);
    let created = json(&sediment(
        &broker,
        &[
            "--output",
            "json",
            "topic",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
        None,
    ));
    assert_eq!(created["partitions"], 3);
    let listed = json(&sediment(
        &broker,
        &["--output", "json", "topic", "list"],
        None,
    ));
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "orders" && t["partitions"] == 3));
    let described = json(&sediment(
        &broker,
        &["--output", "json", "topic", "describe", "orders"],
        None,
    ));
    assert_eq!(described["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(described["configs"]["retention.ms"], "3600000");
    json(&sediment(
        &broker,
        &["--output", "json", "topic", "delete", "orders"],
        None,
    ));
    let listed = json(&sediment(
        &broker,
        &["--output", "json", "topic", "list"],
        None,
    ));
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["name"] != "orders"));
}

#[test]
fn given_lines_on_stdin_when_produced_then_consume_prints_them_back_with_keys_and_offsets() {
    let broker = BrokerProcess::start(&[]);
    ok(&sediment(
        &broker,
        &["topic", "create", "lines", "--partitions", "2"],
        None,
    ));
    let input: String = (0..500)
        .map(|i| format!("key-{}:value-{i}\n", i % 7))
        .collect();
    let produced = json(&sediment(
        &broker,
        &[
            "--output",
            "json",
            "produce",
            "lines",
            "--key-separator",
            ":",
        ],
        Some(&input),
    ));
    assert_eq!(produced["messages"], 500);
    let consumed = ok(&sediment(
        &broker,
        &[
            "consume",
            "lines",
            "--from-beginning",
            "--max-messages",
            "500",
            "--timeout-ms",
            "10000",
            "--format",
            "json",
        ],
        None,
    ));
    let records: Vec<Value> = consumed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 500);
    let mut values: Vec<String> = records
        .iter()
        .map(|r| r["value"].as_str().unwrap().to_string())
        .collect();
    values.sort();
    let mut expected: Vec<String> = (0..500).map(|i| format!("value-{i}")).collect();
    expected.sort();
    assert_eq!(values, expected);
    for record in &records {
        let value = record["value"].as_str().unwrap();
        let i: usize = value.trim_start_matches("value-").parse().unwrap();
        assert_eq!(
            record["key"],
            format!("key-{}", i % 7),
            "key travels with its value"
        );
    }
    // One key always lands on one partition.
    for key in 0..7 {
        let partitions: std::collections::BTreeSet<i64> = records
            .iter()
            .filter(|r| r["key"] == format!("key-{key}"))
            .map(|r| r["partition"].as_i64().unwrap())
            .collect();
        assert_eq!(partitions.len(), 1, "key-{key} spread over {partitions:?}");
    }

    // --partition/--offset reads one partition from an offset; --format value prints values.
    ok(&sediment(
        &broker,
        &["produce", "lines", "--partition", "1"],
        Some("x\ny\nz\n"),
    ));
    let from_offset = json(&sediment(
        &broker,
        &["--output", "json", "topic", "describe", "lines"],
        None,
    ));
    let end = from_offset["partitions"][1]["end_offset"].as_i64().unwrap();
    let tail = ok(&sediment(
        &broker,
        &[
            "consume",
            "lines",
            "--partition",
            "1",
            "--offset",
            &(end - 2).to_string(),
            "--timeout-ms",
            "1000",
        ],
        None,
    ));
    assert_eq!(tail, "y\nz\n");
}

#[test]
fn given_user_mistakes_when_run_then_one_clear_line_and_non_zero_exit() {
    let broker = BrokerProcess::start(&["--auto-create-topics", "false"]);
    let missing = one_line_error(&sediment(&broker, &["topic", "describe", "nope"], None));
    assert!(missing.contains("nope"), "{missing}");
    let missing = one_line_error(&sediment(
        &broker,
        &["consume", "nope", "--timeout-ms", "100"],
        None,
    ));
    assert!(missing.contains("nope"), "{missing}");

    let bad_flag = Command::new(env!("CARGO_BIN_EXE_sediment"))
        .args(["topic", "create", "t", "--partitions", "many"])
        .output()
        .unwrap();
    assert_eq!(bad_flag.status.code(), Some(2), "clap's usage exit code");
    let stderr = String::from_utf8_lossy(&bad_flag.stderr);
    assert!(stderr.contains("invalid value 'many'"), "{stderr}");

    let unreachable = Command::new(env!("CARGO_BIN_EXE_sediment"))
        .args(["--bootstrap", "127.0.0.1:1", "topic", "list"])
        .output()
        .unwrap();
    let line = one_line_error(&unreachable);
    assert!(
        line.contains("127.0.0.1:1") && line.contains("sediment serve"),
        "{line}"
    );
}

#[test]
fn given_bench_commands_when_run_small_then_json_summaries_report_throughput_and_latency() {
    let broker = BrokerProcess::start(&[]);
    for kind in ["produce", "consume", "e2e"] {
        let summary = json(&sediment(
            &broker,
            &[
                "--output",
                "json",
                "bench",
                kind,
                "--messages",
                "2000",
                "--size",
                "100",
                "--partitions",
                "2",
                "--rate",
                "20000",
            ],
            None,
        ));
        assert_eq!(summary["kind"], kind);
        assert!(summary["messages"].as_u64().unwrap() >= 2000, "{summary}");
        assert!(summary["msgs_per_sec"].as_f64().unwrap() > 0.0, "{summary}");
        let latency = &summary["latency_ms"];
        assert!(
            latency["p50"].as_f64().unwrap() <= latency["p99"].as_f64().unwrap(),
            "{summary}"
        );
        assert!(
            latency["p99"].as_f64().unwrap() <= latency["max"].as_f64().unwrap(),
            "{summary}"
        );
    }
}

#[test]
fn given_group_commands_when_consuming_in_a_group_then_offsets_are_committed_described_reset_and_deleted(
) {
    let broker = BrokerProcess::start(&[]);
    ok(&sediment(
        &broker,
        &["topic", "create", "work", "--partitions", "2"],
        None,
    ));
    let input: String = (0..20).map(|i| format!("k{i}:v{i}\n")).collect();
    ok(&sediment(
        &broker,
        &["produce", "work", "--key-separator", ":"],
        Some(&input),
    ));

    // A group consumer reads 12 and commits exactly what it printed.
    let first = ok(&sediment(
        &broker,
        &[
            "consume",
            "work",
            "--group",
            "g",
            "--from-beginning",
            "--max-messages",
            "12",
            "--timeout-ms",
            "10000",
        ],
        None,
    ));
    assert_eq!(first.lines().count(), 12);
    let listed = json(&sediment(
        &broker,
        &["--output", "json", "group", "list"],
        None,
    ));
    assert!(
        listed.as_array().unwrap().iter().any(|g| g["group"] == "g"),
        "{listed}"
    );
    let described = json(&sediment(
        &broker,
        &["--output", "json", "group", "describe", "g"],
        None,
    ));
    assert_eq!(described["state"], "Empty");
    let committed: i64 = described["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["committed"].as_i64().unwrap())
        .sum();
    let lag: i64 = described["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(committed, 12, "{described}");
    assert_eq!(lag, 8, "{described}");

    // The next member of the group resumes where the first stopped: the other 8.
    let rest = ok(&sediment(
        &broker,
        &["consume", "work", "--group", "g", "--timeout-ms", "3000"],
        None,
    ));
    let mut all: Vec<&str> = first.lines().chain(rest.lines()).collect();
    all.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(
        all, expected,
        "every message exactly once across the two runs"
    );

    // Reset to the start: everything again.
    json(&sediment(
        &broker,
        &[
            "--output",
            "json",
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "work",
            "--to-earliest",
        ],
        None,
    ));
    let again = ok(&sediment(
        &broker,
        &["consume", "work", "--group", "g", "--timeout-ms", "3000"],
        None,
    ));
    assert_eq!(again.lines().count(), 20);

    json(&sediment(
        &broker,
        &["--output", "json", "group", "delete", "g"],
        None,
    ));
    let missing = one_line_error(&sediment(&broker, &["group", "describe", "g"], None));
    assert!(missing.contains("does not exist"), "{missing}");
}

#[test]
fn given_active_member_when_resetting_offsets_then_refused_with_a_clear_error() {
    let broker = BrokerProcess::start(&[]);
    ok(&sediment(&broker, &["topic", "create", "busy"], None));
    let mut member = Command::new(env!("CARGO_BIN_EXE_sediment"))
        .args([
            "--bootstrap",
            &broker.bootstrap(),
            "consume",
            "busy",
            "--group",
            "live",
            "--timeout-ms",
            "20000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the member is in the group.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let described = sediment(
            &broker,
            &["--output", "json", "group", "describe", "live"],
            None,
        );
        if described.status.success()
            && json(&described)["members"]
                .as_array()
                .is_some_and(|m| !m.is_empty())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the member never joined"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let refused = one_line_error(&sediment(
        &broker,
        &[
            "group",
            "reset-offsets",
            "live",
            "--topic",
            "busy",
            "--to-latest",
        ],
        None,
    ));
    assert!(refused.contains("active members"), "{refused}");
    let _ = member.kill();
    let _ = member.wait();
}

#[test]
fn given_crc_damage_below_recovery_point_when_log_verify_then_reported_though_a_restart_trusts_it()
{
    use sediment_broker::basics::TopicPartition;
    use sediment_broker::storage::log_manager::LogManager;
    use sediment_broker::storage::recovery::list_partition_dir;
    use sediment_broker::storage::test_batches::batch_with_records;
    use sediment_broker::LogConfig;
    use std::os::unix::fs::FileExt;

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tp = TopicPartition::new("orders", 0);
    let open = || LogManager::open(&data, LogConfig::default(), |_| LogConfig::default()).unwrap();
    {
        let manager = open();
        let log = manager.get_or_create(&tp, LogConfig::default()).unwrap();
        for i in 0..3 {
            let outcome = log.append(&batch_with_records(2, 40, i)).unwrap();
            log.make_durable(outcome.next_offset).unwrap();
        }
        manager.checkpoint_recovery_points().unwrap();
        // Dropped without shutdown, as after kill -9: the recovery point is the log end.
    }
    let segment = list_partition_dir(&data.join("orders-0"))
        .unwrap()
        .segments
        .pop()
        .unwrap();
    // The last byte of the first batch lies inside its CRC.
    let first_len = {
        let bytes = std::fs::read(&segment.log).unwrap();
        u64::from(u32::from_be_bytes(bytes[8..12].try_into().unwrap())) + 12
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&segment.log)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, first_len - 1).unwrap();
    file.write_all_at(&[byte[0] ^ 0xff], first_len - 1).unwrap();

    let verify = Command::new(env!("CARGO_BIN_EXE_sediment"))
        .args(["log", "verify"])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(!verify.status.success(), "verify must fail: {stdout}");
    assert!(
        stdout.contains("CUT") && stdout.contains(&segment.log.display().to_string()),
        "verify names the damaged segment: {stdout}"
    );

    // A restart trusts what lies below the recovery point, as Kafka does.
    let manager = open();
    assert!(manager.offline_partitions().is_empty());
    assert_eq!(manager.get(&tp).unwrap().unwrap().high_watermark(), 6);
}
