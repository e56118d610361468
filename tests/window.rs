//! `sediment window` end to end against the "wagg-1" contract (DESIGN §6):
//! a seeded, out-of-order event stream is produced to a 1-partition and a
//! 4-partition topic, the real job aggregates it (tumbling, hopping with an
//! advance that does not divide the size, session), and the set of emitted
//! windows must equal, exactly, what a brute-force reference written here
//! from §6 (not the library) closes. A crash test SIGKILLs the job and the
//! broker mid-stream: the de-duplicated output must still equal the
//! reference and every re-emitted window must carry identical aggregates.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::wagg::{dedup, generate, reference, split, Agg, Ev, Kind, WinId};
use common::{run_bounded, BrokerProcess};
use serde_json::Value;

const GRACE: i64 = 200;

// ---------------------------------------------------------------- the binary

fn sediment(broker: &BrokerProcess, args: &[&str], stdin: Option<String>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sediment"));
    cmd.arg("--bootstrap").arg(broker.bootstrap()).args(args);
    let done = run_bounded(cmd, stdin.map(String::into_bytes), Duration::from_secs(30));
    assert!(
        done.status.is_some_and(|s| s.success()),
        "sediment {args:?}: {:?}\nstderr: {}",
        done.status,
        done.stderr
    );
    String::from_utf8(done.stdout).unwrap()
}

fn create_topic(broker: &BrokerProcess, topic: &str, partitions: usize) {
    sediment(
        broker,
        &[
            "topic",
            "create",
            topic,
            "--partitions",
            &partitions.to_string(),
        ],
        None,
    );
}

/// Produces each partition's events, in order, to that partition.
fn produce(broker: &BrokerProcess, topic: &str, partitions: &[Vec<Ev>]) {
    for (p, events) in partitions.iter().enumerate() {
        if events.is_empty() {
            continue;
        }
        let lines: String = events.iter().map(|e| e.json() + "\n").collect();
        sediment(
            broker,
            &["produce", topic, "--partition", &p.to_string()],
            Some(lines),
        );
    }
}

/// Every record of `topic` as its parsed value.
fn read_all(broker: &BrokerProcess, topic: &str) -> Vec<Value> {
    read_all_as(broker, topic, "read_uncommitted")
}

/// Every record of `topic` a consumer with `isolation` reads, as its parsed value.
fn read_all_as(broker: &BrokerProcess, topic: &str, isolation: &str) -> Vec<Value> {
    let out = sediment(
        broker,
        &[
            "consume",
            topic,
            "--from-beginning",
            "--timeout-ms",
            "1000",
            "--format",
            "json",
            "--isolation-level",
            isolation,
        ],
        None,
    );
    out.lines()
        .map(|l| {
            let record: Value = serde_json::from_str(l).unwrap();
            let value = record["value"].as_str().expect("value is a string");
            serde_json::from_str(value).unwrap_or_else(|e| panic!("{value}: {e}"))
        })
        .collect()
}

struct Job {
    child: Child,
    log: std::path::PathBuf,
}

#[allow(clippy::too_many_arguments)]
fn start_job(
    broker: &BrokerProcess,
    dir: &std::path::Path,
    input: &str,
    output: &str,
    group: &str,
    kind: Kind,
    late: Option<&str>,
    checkpoint_ms: u64,
    extra_flags: &[&str],
) -> Job {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = dir.join(format!("{group}-{run}.log"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sediment"));
    cmd.arg("--bootstrap")
        .arg(broker.bootstrap())
        .args([
            "window",
            "--input",
            input,
            "--output-topic",
            output,
            "--group",
            group,
        ])
        .args(kind.flags())
        .args(["--grace", &GRACE.to_string()])
        .args(["--checkpoint-ms", &checkpoint_ms.to_string()]);
    if let Some(late) = late {
        cmd.args(["--late-topic", late]);
    }
    cmd.args(extra_flags);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .env(
            "SEDIMENT_LOG",
            std::env::var("WINDOW_TEST_LOG").unwrap_or("warn".into()),
        )
        .stderr(File::create(&log).unwrap())
        .spawn()
        .expect("spawn sediment window");
    Job { child, log }
}

impl Job {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn sigkill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    fn sigterm(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "window job did not exit within 20 s of SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("window job exited early ({status}); log:\n{}", self.log());
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `output` until it holds every expected window and stops growing.
fn wait_for_output(
    broker: &BrokerProcess,
    output: &str,
    expected: usize,
    job: &mut Job,
    within: Duration,
) -> Vec<Value> {
    wait_for_output_as(broker, output, "read_uncommitted", expected, job, within)
}

/// [`wait_for_output`] reading with `isolation`.
fn wait_for_output_as(
    broker: &BrokerProcess,
    output: &str,
    isolation: &str,
    expected: usize,
    job: &mut Job,
    within: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    let mut last_len = usize::MAX;
    loop {
        job.assert_running();
        let raw = read_all_as(broker, output, isolation);
        let distinct = dedup(&raw).len();
        if distinct >= expected && raw.len() == last_len {
            return raw;
        }
        if Instant::now() > deadline {
            return raw;
        }
        last_len = raw.len();
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `output` until it holds more than `than` records; returns how many.
fn wait_for_more_output(broker: &BrokerProcess, output: &str, than: usize, job: &mut Job) -> usize {
    wait_for_more_output_as(broker, output, "read_uncommitted", than, job)
}

/// [`wait_for_more_output`] reading with `isolation`.
fn wait_for_more_output_as(
    broker: &BrokerProcess,
    output: &str,
    isolation: &str,
    than: usize,
    job: &mut Job,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        job.assert_running();
        let now = read_all_as(broker, output, isolation).len();
        if now > than {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the job emitted nothing new within 120 s (still {now} records); log:\n{}",
            job.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn diff(expected: &BTreeMap<WinId, Agg>, got: &BTreeMap<WinId, Agg>) -> String {
    let missing: Vec<_> = expected
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .take(10)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|(k, v)| expected.get(*k) != Some(*v))
        .take(10)
        .collect();
    format!(
        "expected {} windows, got {}\nexpected but not emitted (first 10): {missing:#?}\nemitted but not expected (first 10): {extra:#?}",
        expected.len(),
        got.len()
    )
}

/// One kind over the 1- and the 4-partition topic: exact window set, exact
/// late count, exit 0 on SIGTERM.
fn run_kind(kind: Kind, seed: u64) {
    let started = Instant::now();
    let broker = BrokerProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let events = generate(seed, 2_000);
    for parts in [1usize, 4] {
        let input = format!("in{parts}");
        let output = format!("out-{}-{parts}", kind.name());
        let late = format!("late-{}-{parts}", kind.name());
        let group = format!("g-{}-{parts}", kind.name());
        create_topic(&broker, &input, parts);
        create_topic(&broker, &output, 1);
        create_topic(&broker, &late, 1);
        let split = split(&events, parts);
        produce(&broker, &input, &split);
        let expected = reference(kind, GRACE, &split);
        assert!(expected.windows.len() > 50, "too few windows to test");
        assert!(expected.late > 20, "too few late events to test");
        let mut job = start_job(
            &broker,
            dir.path(),
            &input,
            &output,
            &group,
            kind,
            Some(&late),
            200,
            &[],
        );
        let raw = wait_for_output(
            &broker,
            &output,
            expected.windows.len(),
            &mut job,
            Duration::from_secs(30),
        );
        let log = job.log();
        assert_eq!(job.sigterm(), Some(0), "exit code on SIGTERM; log:\n{log}");
        let got = dedup(&raw);
        assert!(
            got == expected.windows,
            "{} over {parts} partition(s): {}",
            kind.name(),
            diff(&expected.windows, &got)
        );
        assert_eq!(raw.len(), got.len(), "no duplicates without a crash");
        let late_records = read_all(&broker, &late);
        assert_eq!(
            late_records.len(),
            expected.late,
            "{} over {parts} partition(s): late-output count",
            kind.name()
        );
        eprintln!(
            "{} over {parts} partition(s): {} windows, {} late events; ok at {:?}",
            kind.name(),
            got.len(),
            expected.late,
            started.elapsed()
        );
    }
}

#[test]
fn given_out_of_order_events_when_tumbling_windows_close_then_output_equals_the_wagg1_reference() {
    run_kind(Kind::Tumbling(1_000), 0x5eed_0001);
}

#[test]
fn given_out_of_order_events_when_hopping_windows_with_non_dividing_advance_close_then_output_equals_the_wagg1_reference(
) {
    run_kind(Kind::Hopping(1_000, 300), 0x5eed_0002);
}

#[test]
fn given_out_of_order_events_when_session_windows_close_then_output_equals_the_wagg1_reference() {
    run_kind(Kind::Session(500), 0x5eed_0003);
}

#[test]
fn given_job_and_broker_sigkilled_mid_stream_when_restarted_then_deduplicated_output_equals_the_reference_with_identical_duplicates(
) {
    let started = Instant::now();
    let kind = Kind::Tumbling(1_000);
    let mut broker = BrokerProcess::start_on_fixed_port(&[]);
    let dir = tempfile::tempdir().unwrap();
    let events = generate(0x5eed_0004, 2_400);
    let parts = 4;
    create_topic(&broker, "in", parts);
    create_topic(&broker, "out", 1);
    let expected = reference(kind, GRACE, &split(&events, parts));
    let (output, group) = ("out", "g-crash");
    // No periodic checkpoint during the whole run: every kill then lands
    // after the last checkpoint, so the windows emitted since are emitted
    // again after the restart, which is what the identical-duplicates check
    // is about. Each kill waits until the job has emitted windows since the
    // previous one (an observable condition, never a sleep).
    let checkpoint_ms = 3_600_000;
    let restart_job = |broker: &BrokerProcess| {
        start_job(
            broker,
            dir.path(),
            "in",
            output,
            group,
            kind,
            None,
            checkpoint_ms,
            &[],
        )
    };
    let mut job = restart_job(&broker);
    let chunks: Vec<&[Ev]> = events.chunks(200).collect();
    let mut job_kills = 0;
    let mut broker_restarted = false;
    let mut emitted_at_last_kill = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        produce(&broker, "in", &split(chunk, parts));
        if i >= 3 && i % 2 == 1 && job_kills < 3 {
            let emitted = wait_for_more_output(&broker, output, emitted_at_last_kill, &mut job);
            job.sigkill();
            eprintln!(
                "crash: SIGKILL #{} after chunk {i} with {emitted} windows emitted, at {:?}",
                job_kills + 1,
                started.elapsed()
            );
            emitted_at_last_kill = emitted;
            job_kills += 1;
            job = restart_job(&broker);
        }
        if i == 6 {
            broker.restart();
            broker_restarted = true;
            // The job may or may not survive its broker going away; start a
            // fresh one either way, so nothing depends on when it notices.
            job.sigkill();
            job = restart_job(&broker);
        }
    }
    assert_eq!(job_kills, 3);
    assert!(broker_restarted);
    // A SIGKILLed member stays in the group until its session times out
    // (the job's default, 10 s), so the restarted job can stall that long
    // before it gets the partitions back.
    let raw = wait_for_output(
        &broker,
        output,
        expected.windows.len(),
        &mut job,
        Duration::from_secs(80),
    );
    eprintln!("crash: output complete at {:?}", started.elapsed());
    let log = job.log();
    assert_eq!(job.sigterm(), Some(0), "exit code on SIGTERM; log:\n{log}");
    let got = dedup(&raw);
    assert!(
        raw.len() > got.len(),
        "kills between checkpoints re-emit windows; none were re-emitted ({} records)",
        raw.len()
    );
    assert!(
        got == expected.windows,
        "after 3 job kills and a broker restart: {}\nlast job log:\n{}",
        diff(&expected.windows, &got),
        common::tail(&log, 3000)
    );
    eprintln!(
        "crash: {} windows ({} records incl. duplicates), broker restarted {broker_restarted}; ok at {:?}",
        got.len(),
        raw.len(),
        started.elapsed()
    );
}

/// Whether partition 0 of `topic` holds records of a transaction still
/// open (its last stable offset is below its end).
fn has_open_transaction(broker: &BrokerProcess, topic: &str) -> bool {
    let described: Value = serde_json::from_str(&sediment(
        broker,
        &["--output", "json", "topic", "describe", topic],
        None,
    ))
    .unwrap();
    let partition = &described["partitions"][0];
    partition["last_stable_offset"].as_i64() < partition["end_offset"].as_i64()
}

/// `--exactly-once`: the same kills as the at-least-once crash test (the
/// job SIGKILLed three times mid-stream, the broker killed and restarted
/// once), and the read_committed output equals the reference exactly, with
/// not one duplicate: what a killed job emitted after its last checkpoint
/// was in the transaction that the kill left open, and its successor aborted.
/// Each job kill waits until windows were committed since the last one and
/// the output holds windows of a transaction still open, so every kill
/// throws emitted windows away.
#[test]
fn given_exactly_once_job_and_broker_sigkilled_mid_stream_when_restarted_then_read_committed_output_equals_the_reference_without_duplicates(
) {
    let started = Instant::now();
    let kind = Kind::Tumbling(1_000);
    let mut broker = BrokerProcess::start_on_fixed_port(&[]);
    let dir = tempfile::tempdir().unwrap();
    let events = generate(0x5eed_0006, 2_400);
    let parts = 4;
    create_topic(&broker, "in", parts);
    create_topic(&broker, "out", 1);
    let expected = reference(kind, GRACE, &split(&events, parts));
    let (output, group) = ("out", "g-eos");
    let restart_job = |broker: &BrokerProcess| {
        start_job(
            broker,
            dir.path(),
            "in",
            output,
            group,
            kind,
            None,
            2_000,
            &["--exactly-once"],
        )
    };
    let mut job = restart_job(&broker);
    let mut chunks = events.chunks(200);
    let mut produce_next = |broker: &BrokerProcess| {
        let chunk = chunks.next().expect("enough chunks for the kills");
        produce(broker, "in", &split(chunk, parts));
    };
    let mut job_kills = 0;
    let mut committed_at_last_kill = 0;
    for kill in 0..3 {
        // Progress first: input, and windows committed by this job.
        produce_next(&broker);
        produce_next(&broker);
        let committed = wait_for_more_output_as(
            &broker,
            output,
            "read_committed",
            committed_at_last_kill,
            &mut job,
        );
        // Then more input, and the kill while its windows sit in an open
        // transaction (the job commits every 2 s).
        produce_next(&broker);
        common::wait_until(
            Duration::from_secs(60),
            || has_open_transaction(&broker, output),
            || format!("no transaction with outputs opened; log:\n{}", job.log()),
        );
        job.sigkill();
        eprintln!(
            "eos: SIGKILL #{} with {committed} windows committed and a transaction open, at {:?}",
            kill + 1,
            started.elapsed()
        );
        committed_at_last_kill = committed;
        job_kills += 1;
        if kill == 1 {
            broker.restart();
        }
        job = restart_job(&broker);
    }
    for chunk in chunks {
        produce(&broker, "in", &split(chunk, parts));
    }
    assert_eq!(job_kills, 3);
    let raw = wait_for_output_as(
        &broker,
        output,
        "read_committed",
        expected.windows.len(),
        &mut job,
        Duration::from_secs(80),
    );
    let log = job.log();
    assert_eq!(job.sigterm(), Some(0), "exit code on SIGTERM; log:\n{log}");
    let got = dedup(&raw);
    assert!(
        got == expected.windows,
        "exactly-once after 3 job kills and a broker restart: {}\nlast job log:\n{}",
        diff(&expected.windows, &got),
        common::tail(&log, 3000)
    );
    assert_eq!(
        raw.len(),
        got.len(),
        "read_committed output holds duplicate windows"
    );
    let uncommitted = read_all(&broker, output).len();
    assert!(
        uncommitted > raw.len(),
        "the kills were to abort emitted windows, but the log holds no more records ({uncommitted}) than read_committed reads"
    );
    eprintln!(
        "eos: {} windows exactly once ({uncommitted} records incl. aborted ones); ok at {:?}",
        got.len(),
        started.elapsed()
    );
}

/// `--idle-timeout-ms`: once input stops, the last windows (which no later
/// event will ever close) are emitted anyway, the watermark of each quiet
/// partition moving with the wall clock; the output is then every window
/// the events form, exactly.
fn run_idle(kind: Kind, seed: u64) {
    let broker = BrokerProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let events = generate(seed, 600);
    let parts = 2;
    let (input, output, group) = ("in", "out", format!("g-idle-{}", kind.name()));
    create_topic(&broker, input, parts);
    create_topic(&broker, output, 1);
    let split = split(&events, parts);
    // Every window closes: what the reference emits once a far-future event
    // (whose own window is left out) arrives in each partition.
    let mut closing = split.clone();
    for events in &mut closing {
        events.push(Ev {
            key: "end-of-input".into(),
            ts: i64::MAX / 4,
            value: 0,
        });
    }
    let mut expected = reference(kind, GRACE, &closing).windows;
    expected.retain(|id, _| id.1 != "end-of-input");
    let open_at_end = expected.len() - reference(kind, GRACE, &split).windows.len();
    assert!(open_at_end > 0, "the input must leave windows open");
    produce(&broker, input, &split);
    let mut job = start_job(
        &broker,
        dir.path(),
        input,
        output,
        &group,
        kind,
        None,
        200,
        &["--idle-timeout-ms", "300"],
    );
    let raw = wait_for_output(
        &broker,
        output,
        expected.len(),
        &mut job,
        Duration::from_secs(60),
    );
    let log = job.log();
    assert_eq!(job.sigterm(), Some(0), "exit code on SIGTERM; log:\n{log}");
    let got = dedup(&raw);
    assert!(
        got == expected,
        "{} with an idle timeout: {}",
        kind.name(),
        diff(&expected, &got)
    );
    eprintln!(
        "idle {}: {} windows, {open_at_end} closed by the idle timeout",
        kind.name(),
        got.len()
    );
}

#[test]
fn given_quiet_input_and_idle_timeout_when_tumbling_windows_remain_open_then_they_close_and_are_emitted(
) {
    run_idle(Kind::Tumbling(1_000), 0x5eed_0007);
}

#[test]
fn given_quiet_input_and_idle_timeout_when_sessions_remain_open_then_they_close_and_are_emitted() {
    run_idle(Kind::Session(500), 0x5eed_0008);
}

/// The job's state topic is compacted: however many checkpoints a long run
/// writes, the broker's cleaner keeps about one per input partition, so the
/// topic's size follows the live state, not checkpoints × time.
#[test]
fn given_a_job_checkpointing_many_times_when_the_cleaner_runs_then_its_state_topic_stays_bounded() {
    const SEGMENT_BYTES: u64 = 4 << 10;
    let broker = BrokerProcess::start(&[
        "--segment-bytes",
        &SEGMENT_BYTES.to_string(),
        "--log-cleaner-backoff-ms",
        "100",
    ]);
    let dir = tempfile::tempdir().unwrap();
    create_topic(&broker, "in", 1);
    let job = start_job(
        &broker,
        dir.path(),
        "in",
        "out",
        "g-bounded",
        Kind::Tumbling(1_000),
        None,
        1,
        &[],
    );
    let state = "g-bounded.window-state";
    let described = |topic: &str| -> Value {
        serde_json::from_str(&sediment(
            &broker,
            &["--output", "json", "topic", "describe", topic],
            None,
        ))
        .unwrap()
    };
    // Feed the job in chunks so it keeps checkpointing (about once a chunk).
    let events = generate(0x5eed_0005, 20_000);
    for chunk in events.chunks(125) {
        produce(&broker, "in", &[chunk.to_vec()]);
    }
    // Wait for the job to have read everything (its committed offset), then stop it.
    common::wait_until(
        Duration::from_secs(60),
        || {
            sediment(
                &broker,
                &["--output", "json", "group", "describe", "g-bounded"],
                None,
            )
            .contains(&format!("\"committed\":{}", events.len()))
        },
        || format!("the job did not catch up\n{}", job.log()),
    );
    job.sigkill();
    let checkpoints = broker_topic(&broker, state).unwrap_or(0);
    assert!(
        checkpoints >= 100,
        "only {checkpoints} checkpoints were written"
    );
    assert_eq!(described(state)["configs"]["cleanup.policy"], "compact");

    let state_dir = broker.data_dir.join(format!("{state}-0"));
    let log_bytes = || -> u64 {
        std::fs::read_dir(&state_dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|f| f.path().extension().is_some_and(|e| e == "log"))
            .map(|f| f.metadata().unwrap().len())
            .sum()
    };
    // Bounded: the active segment, at most one cleaned segment group and
    // what arrived since the last pass.
    let bound = 4 * SEGMENT_BYTES;
    common::wait_until(
        Duration::from_secs(60),
        || log_bytes() <= bound,
        || {
            format!(
                "{} bytes of state after {checkpoints} checkpoints (bound {bound})\n{}",
                log_bytes(),
                broker.logs()
            )
        },
    );
    let remaining = read_all(&broker, state).len();
    eprintln!(
        "{checkpoints} checkpoints, {remaining} left, state topic {} bytes on disk",
        log_bytes()
    );
    assert!(
        remaining * 4 <= checkpoints as usize,
        "{remaining} of {checkpoints} checkpoints left after cleaning"
    );
}

/// The end offset of partition 0 of `topic`, once it exists.
fn broker_topic(broker: &BrokerProcess, topic: &str) -> Option<i64> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sediment"));
    cmd.arg("--bootstrap")
        .arg(broker.bootstrap())
        .args(["--output", "json", "topic", "describe", topic]);
    let done = run_bounded(cmd, None, Duration::from_secs(30));
    if !done.status.is_some_and(|s| s.success()) {
        return None;
    }
    let described: Value = serde_json::from_slice(&done.stdout).ok()?;
    described["partitions"][0]["end_offset"].as_i64()
}
