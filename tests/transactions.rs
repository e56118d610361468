//! Kafka transactions end to end with confluent-kafka (librdkafka) against
//! the real broker binary (issue 12):
//! - committed and aborted transactions: a read_committed consumer sees
//!   exactly the committed records, a read_uncommitted one every record; an
//!   open transaction holds the last stable offset at its first record: a
//!   read_committed consumer reaches that offset and reads nothing beyond it,
//!   and once the transaction commits its records are read too;
//! - consume-transform-produce with `send_offsets_to_transaction`, with the
//!   app SIGKILLed at several points (mid-run, with output flushed in an
//!   open transaction, with offsets staged) and the broker SIGKILLed once
//!   with a transaction open: in the end the read_committed output holds
//!   exactly one output per input and the group's committed offsets are the
//!   input's end;
//! - zombie fencing: once a second instance with the same transactional id
//!   initialises, the first one's produce + commit fails with a fatal fenced
//!   error, mid-transaction or between transactions, and nothing it wrote
//!   becomes visible to read_committed;
//! - a transaction left open past `transaction.timeout.ms` is aborted by the
//!   broker: the last stable offset moves past its records, which stay
//!   invisible to read_committed (visible to read_uncommitted), and the
//!   stalled producer can no longer commit;
//! - a kill -9 with a committed, an aborted and an open transaction: after
//!   the restart read_committed shows only the committed records, and the
//!   open transaction is aborted by its timeout so the last stable offset
//!   reaches the high watermark.
//!
//! The clients run as Python scripts (`tests/python/txn_*.py`) that print
//! JSON; the assertions are here. Waits are on observable conditions (script
//! events, offsets over the wire), never on time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::canary::{
    committed_offsets, create_topic, latest_offset_at, READ_COMMITTED, READ_UNCOMMITTED,
};
use common::python::{run_script, ScriptProcess};
use common::wire::WireClient;
use common::{tail, wait_until, BrokerProcess};
use serde::Deserialize;

/// Longest any awaited condition may take.
const WAIT: Duration = Duration::from_secs(90);

/// The broker's log line for a transaction aborted by its timeout.
const TIMEOUT_ABORT_LOG: &str = "aborting a transaction open past its timeout";

/// A record as the scripts print it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Record {
    partition: i32,
    offset: i64,
    key: String,
    value: String,
}

/// What `txn_produce.py` prints for commit / abort / open / no transaction.
#[derive(Debug, Deserialize)]
struct Produced {
    delivered: Vec<Record>,
    ended: String,
}

/// What `txn_read.py` prints.
#[derive(Debug, Deserialize)]
struct Read {
    records: Vec<Record>,
    positions: BTreeMap<String, i64>,
    ends: BTreeMap<String, i64>,
}

/// The error a script caught, as `compat_common.error_json` prints it.
#[derive(Debug, Clone, Deserialize)]
struct ClientError {
    name: String,
    fatal: bool,
    txn_requires_abort: bool,
}

fn new_topic(broker: &BrokerProcess, topic: &str, partitions: i32) {
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, topic, partitions), 0, "{topic}");
}

/// How `txn_produce.py` ends its transaction.
#[derive(Debug, Clone, Copy)]
enum End<'a> {
    /// No transaction: an idempotent producer.
    NoTransaction,
    /// `transactional_id` commits.
    Commit(&'a str),
    /// `transactional_id` aborts.
    Abort(&'a str),
    /// `transactional_id` leaves it open (the script exits at once) with
    /// this `transaction.timeout.ms`.
    Open(&'a str, u32),
}

/// Runs `txn_produce.py`: `records` records `prefix-i` to partition
/// i % `partitions` of `topic`, ended as `end` says; the delivered records
/// in (partition, offset) order.
fn produce(
    broker: &BrokerProcess,
    (topic, partitions): (&str, i32),
    prefix: &str,
    records: usize,
    end: End,
) -> Vec<Record> {
    let records = records.to_string();
    let partitions = partitions.to_string();
    let mut args = vec![
        topic,
        "--prefix",
        prefix,
        "--records",
        &records,
        "--partitions",
        &partitions,
    ];
    let timeout;
    let expected_end = match end {
        End::NoTransaction => "none",
        End::Commit(id) => {
            args.extend(["--transactional-id", id, "--end", "commit"]);
            "commit"
        }
        End::Abort(id) => {
            args.extend(["--transactional-id", id, "--end", "abort"]);
            "abort"
        }
        End::Open(id, timeout_ms) => {
            timeout = timeout_ms.to_string();
            args.extend(["--transactional-id", id, "--end", "open"]);
            args.extend(["--timeout-ms", &timeout]);
            "open"
        }
    };
    let produced: Produced = run_script(broker, "txn_produce.py", &args);
    assert_eq!(produced.ended, expected_end, "{prefix}");
    sorted(produced.delivered)
}

/// Starts `txn_produce.py --end hold`: it produces and flushes `records`
/// records in an open transaction, reports "produced" and waits for
/// "commit" or "abort" on stdin.
fn hold_open(
    broker: &BrokerProcess,
    topic: &str,
    partitions: i32,
    prefix: &str,
    records: usize,
    transactional_id: &str,
    timeout_ms: u32,
) -> ScriptProcess {
    let args: Vec<String> = [
        broker.bootstrap().as_str(),
        topic,
        "--prefix",
        prefix,
        "--records",
        &records.to_string(),
        "--partitions",
        &partitions.to_string(),
        "--transactional-id",
        transactional_id,
        "--timeout-ms",
        &timeout_ms.to_string(),
        "--end",
        "hold",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ScriptProcess::start(prefix, "txn_produce.py", &args)
}

/// Reads the whole topic at `isolation` ("read_committed" or
/// "read_uncommitted") with `txn_read.py`; its records in (partition,
/// offset) order.
fn read(broker: &BrokerProcess, topic: &str, partitions: i32, isolation: &str) -> Read {
    let partitions = partitions.to_string();
    let mut read: Read = run_script(
        broker,
        "txn_read.py",
        &[topic, "--partitions", &partitions, "--isolation", isolation],
    );
    read.records = sorted(read.records);
    read
}

fn sorted(mut records: Vec<Record>) -> Vec<Record> {
    records.sort_by_key(|r| (r.partition, r.offset));
    records
}

/// The union of record lists, in (partition, offset) order.
fn union(lists: &[&[Record]]) -> Vec<Record> {
    sorted(lists.iter().flat_map(|l| l.iter().cloned()).collect())
}

/// (last stable offset, high watermark) of a partition, over the wire.
fn lso_and_hw(broker: &BrokerProcess, topic: &str, partition: i32) -> (i64, i64) {
    let mut client = WireClient::connect(broker.addr).unwrap();
    let (code, lso) = latest_offset_at(&mut client, topic, partition, READ_COMMITTED);
    assert_eq!(code, 0, "ListOffsets read_committed {topic}-{partition}");
    let (code, hw) = latest_offset_at(&mut client, topic, partition, READ_UNCOMMITTED);
    assert_eq!(code, 0, "ListOffsets read_uncommitted {topic}-{partition}");
    (lso, hw)
}

/// The first offset of `records` in `partition`.
fn first_offset(records: &[Record], partition: i32) -> i64 {
    records
        .iter()
        .filter(|r| r.partition == partition)
        .map(|r| r.offset)
        .min()
        .unwrap_or_else(|| panic!("no record in partition {partition}: {records:?}"))
}

/// The offset after the last of `records` in `partition`.
fn end_offset(records: &[Record], partition: i32) -> i64 {
    records
        .iter()
        .filter(|r| r.partition == partition)
        .map(|r| r.offset + 1)
        .max()
        .unwrap_or_else(|| panic!("no record in partition {partition}: {records:?}"))
}

fn per_partition(offsets: impl Fn(i32) -> i64, partitions: i32) -> BTreeMap<String, i64> {
    (0..partitions)
        .map(|p| (p.to_string(), offsets(p)))
        .collect()
}

/// The error a "hold" producer reported when told to end its transaction.
fn ended_error(ended: &serde_json::Value) -> Option<ClientError> {
    serde_json::from_value(ended["error"].clone()).unwrap()
}

fn ended_records(ended: &serde_json::Value, field: &str) -> Vec<Record> {
    sorted(serde_json::from_value(ended[field].clone()).unwrap())
}

fn produced_records(event: &serde_json::Value) -> Vec<Record> {
    sorted(serde_json::from_value(event["delivered"].clone()).unwrap())
}

#[test]
fn given_committed_aborted_and_open_transactions_when_read_committed_then_only_committed_records_and_the_open_ones_after_their_commit(
) {
    const TOPIC: &str = "txn-visibility";
    const PARTITIONS: i32 = 2;
    let broker = BrokerProcess::start(&[]);
    new_topic(&broker, TOPIC, PARTITIONS);

    // Aborted records sit between two committed transactions in both
    // partitions: read_committed must skip them in the middle of the log.
    let (target, id) = ((TOPIC, PARTITIONS), "visibility");
    let first = produce(&broker, target, "c1", 10, End::Commit(id));
    let aborted = produce(&broker, target, "a", 6, End::Abort(id));
    let second = produce(&broker, target, "c2", 10, End::Commit(id));
    let committed = union(&[&first, &second]);

    // A transaction left open, its records flushed to the log.
    let mut open = hold_open(&broker, TOPIC, PARTITIONS, "o", 4, id, 60_000);
    let event = open.wait_for_event(WAIT, "produced", |_| true, || broker.logs());
    let open_records = produced_records(&event);
    assert_eq!(open_records.len(), 4, "{event}");

    let lso_at_open = per_partition(|p| first_offset(&open_records, p), PARTITIONS);
    let hw_at_open = per_partition(|p| end_offset(&open_records, p), PARTITIONS);
    for p in 0..PARTITIONS {
        assert_eq!(
            lso_and_hw(&broker, TOPIC, p),
            (lso_at_open[&p.to_string()], hw_at_open[&p.to_string()]),
            "partition {p}: the last stable offset is the open transaction's first record, \
             the high watermark after its last"
        );
    }

    let rc = read(&broker, TOPIC, PARTITIONS, "read_committed");
    assert_eq!(
        rc.records,
        committed,
        "read_committed with a transaction open sees exactly the committed records\nbroker log:\n{}",
        tail(&broker.logs(), 6000)
    );
    assert_eq!(
        rc.positions, lso_at_open,
        "the read_committed consumer reached the last stable offset and read nothing beyond it"
    );
    assert_eq!(rc.ends, lso_at_open, "list_offsets(read_committed)");

    let ru = read(&broker, TOPIC, PARTITIONS, "read_uncommitted");
    assert_eq!(
        ru.records,
        union(&[&first, &aborted, &second, &open_records]),
        "read_uncommitted sees every data record (markers are not handed over)"
    );
    assert_eq!(ru.positions, hw_at_open);
    assert_eq!(ru.ends, hw_at_open, "list_offsets(read_uncommitted)");

    // The open transaction commits (with two more records); now visible.
    open.send("commit");
    let ended = open.wait_for_event(WAIT, "ended", |_| true, || broker.logs());
    assert!(ended_error(&ended).is_none(), "the commit failed: {ended}");
    let late = ended_records(&ended, "late_delivered");
    assert_eq!(late.len(), 2, "{ended}");
    let rc = read(&broker, TOPIC, PARTITIONS, "read_committed");
    assert_eq!(
        rc.records,
        union(&[&committed, &open_records, &late]),
        "after the commit read_committed sees the transaction's records too"
    );
    for p in 0..PARTITIONS {
        let (lso, hw) = lso_and_hw(&broker, TOPIC, p);
        assert_eq!(lso, hw, "partition {p}: nothing is open any more");
        assert!(
            hw > end_offset(&late, p).max(hw_at_open[&p.to_string()]),
            "partition {p}: the commit marker follows the records"
        );
        assert_eq!(rc.positions[&p.to_string()], hw, "partition {p}");
    }
    assert!(
        open.close_and_wait(WAIT).is_some_and(|s| s.success()),
        "{}",
        open.report()
    );
}

// ---- consume-transform-produce ----

const CTP_INPUT: &str = "ctp-input";
const CTP_OUTPUT: &str = "ctp-output";
const CTP_GROUP: &str = "ctp-group";
const CTP_TRANSACTIONAL_ID: &str = "ctp-app";
const CTP_PARTITIONS: i32 = 3;
/// Input records, spread evenly over the partitions.
const CTP_RECORDS: usize = 600;
/// Input records per transaction (at most).
const CTP_BATCH: usize = 10;

/// A `txn_ctp_app.py` instance; `hold` = (phase, after N commits).
fn start_app(broker: &BrokerProcess, name: &str, hold: Option<(&str, usize)>) -> ScriptProcess {
    let mut args: Vec<String> = [
        broker.bootstrap().as_str(),
        CTP_GROUP,
        CTP_INPUT,
        CTP_OUTPUT,
        CTP_TRANSACTIONAL_ID,
        name,
        "--batch",
        &CTP_BATCH.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some((phase, after)) = hold {
        args.extend([
            "--hold".to_string(),
            phase.to_string(),
            "--hold-after".to_string(),
            after.to_string(),
        ]);
    }
    ScriptProcess::start(name, "txn_ctp_app.py", &args)
}

/// Input records the group has committed (0 while the broker cannot say).
fn ctp_progress(broker: &BrokerProcess) -> i64 {
    committed_offsets(broker, CTP_GROUP, CTP_INPUT, CTP_PARTITIONS)
        .map(|offsets| offsets.iter().map(|o| (*o).max(0)).sum())
        .unwrap_or(0)
}

/// Waits until `app` has reported `count` committed transactions.
fn wait_for_commits(app: &ScriptProcess, count: usize, broker: &BrokerProcess) {
    app.wait_for_event(
        WAIT,
        "committed",
        |_| app.events_named("committed").len() >= count,
        || tail(&broker.logs(), 6000).to_string(),
    );
}

/// Waits until `app` holds at its hold point; asserts input is left.
fn wait_for_hold(app: &ScriptProcess, phase: &str, broker: &BrokerProcess) {
    app.wait_for_event(
        WAIT,
        "holding",
        |e| e["phase"] == phase,
        || tail(&broker.logs(), 6000).to_string(),
    );
    assert_mid_run(broker, &app.name);
}

fn assert_mid_run(broker: &BrokerProcess, name: &str) {
    let done = ctp_progress(broker);
    assert!(
        done < CTP_RECORDS as i64,
        "{name} must be killed mid-run, but all {CTP_RECORDS} inputs are committed: raise CTP_RECORDS"
    );
}

#[test]
fn given_a_consume_transform_produce_app_killed_repeatedly_and_a_broker_kill9_when_it_finishes_then_exactly_one_output_per_input(
) {
    let started = Instant::now();
    let at = || format!("{:.1} s", started.elapsed().as_secs_f64());
    // A fixed port: the app's clients reconnect to the restarted broker.
    let mut broker = BrokerProcess::start_on_fixed_port(&[]);
    new_topic(&broker, CTP_INPUT, CTP_PARTITIONS);
    new_topic(&broker, CTP_OUTPUT, CTP_PARTITIONS);
    let input = produce(
        &broker,
        (CTP_INPUT, CTP_PARTITIONS),
        "in",
        CTP_RECORDS,
        End::NoTransaction,
    );
    assert_eq!(input.len(), CTP_RECORDS);
    let ends: Vec<i64> = (0..CTP_PARTITIONS).map(|p| end_offset(&input, p)).collect();
    eprintln!("[{}] {CTP_RECORDS} input records, ends {ends:?}", at());

    // 1. Killed while running freely, after a few commits.
    let mut app = start_app(&broker, "app-1", None);
    wait_for_commits(&app, 3, &broker);
    app.kill9();
    assert_mid_run(&broker, "app-1");
    eprintln!(
        "[{}] app-1 killed at {} inputs",
        at(),
        ctp_progress(&broker)
    );

    // 2. Killed with a transaction's output flushed to the log, uncommitted.
    let mut app = start_app(&broker, "app-2", Some(("produced", 2)));
    wait_for_hold(&app, "produced", &broker);
    app.kill9();
    eprintln!("[{}] app-2 killed with output in an open transaction", at());

    // 3. Killed with the offsets staged in the transaction too.
    let mut app = start_app(&broker, "app-3", Some(("offsets_sent", 2)));
    wait_for_hold(&app, "offsets_sent", &broker);
    app.kill9();
    eprintln!("[{}] app-3 killed with offsets staged", at());

    // 4. The broker is killed while the app holds an open transaction; the
    //    app then goes on against the restarted broker, and is killed later.
    let mut app = start_app(&broker, "app-4", Some(("produced", 2)));
    wait_for_hold(&app, "produced", &broker);
    broker.kill9();
    broker.restart();
    eprintln!(
        "[{}] broker killed and restarted under app-4's open transaction",
        at()
    );
    app.send("go");
    wait_for_commits(&app, 5, &broker);
    app.kill9();
    assert_mid_run(&broker, "app-4");
    eprintln!(
        "[{}] app-4 killed at {} inputs",
        at(),
        ctp_progress(&broker)
    );

    // 5. A last instance runs until the group has committed all the input.
    let mut app = start_app(&broker, "app-5", None);
    wait_until(
        WAIT,
        || committed_offsets(&broker, CTP_GROUP, CTP_INPUT, CTP_PARTITIONS).as_ref() == Some(&ends),
        || {
            format!(
                "the group's committed offsets {:?} did not reach the input's end {ends:?}\n{}\nbroker log:\n{}",
                committed_offsets(&broker, CTP_GROUP, CTP_INPUT, CTP_PARTITIONS),
                app.report(),
                tail(&broker.logs(), 6000)
            )
        },
    );
    let status = app.close_and_wait(WAIT);
    assert!(
        status.is_some_and(|s| s.success()),
        "app-5 did not stop cleanly ({status:?})\n{}",
        app.report()
    );
    eprintln!("[{}] app-5 committed everything and stopped", at());

    // Exactly one output per input, transformed, in the input's partition.
    let output = read(&broker, CTP_OUTPUT, CTP_PARTITIONS, "read_committed");
    let mut outputs: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for record in &output.records {
        outputs.entry(record.key.as_str()).or_default().push(record);
    }
    let duplicated: Vec<(&str, usize)> = outputs
        .iter()
        .filter(|(_, r)| r.len() > 1)
        .map(|(k, r)| (*k, r.len()))
        .collect();
    assert!(
        duplicated.is_empty(),
        "{} inputs have more than one committed output, e.g. {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(10)]
    );
    let missing: Vec<&str> = input
        .iter()
        .filter(|r| !outputs.contains_key(r.key.as_str()))
        .map(|r| r.key.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "{} inputs have no committed output, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(
        output.records.len(),
        CTP_RECORDS,
        "no output without an input"
    );
    for record in &input {
        let out = outputs[record.key.as_str()][0];
        assert_eq!(out.value, format!("out:{}", record.value), "{out:?}");
        assert_eq!(out.partition, record.partition, "{out:?}");
    }

    // The kills really left aborted output behind (app-2's and app-3's held
    // transactions at least), which read_committed skipped.
    let everything = read(&broker, CTP_OUTPUT, CTP_PARTITIONS, "read_uncommitted");
    assert!(
        everything.records.len() >= CTP_RECORDS + 2 * CTP_BATCH,
        "read_uncommitted shows {} output records: the aborted transactions' are missing",
        everything.records.len()
    );
    for p in 0..CTP_PARTITIONS {
        let (lso, hw) = lso_and_hw(&broker, CTP_OUTPUT, p);
        assert_eq!(lso, hw, "output partition {p}: a transaction is still open");
    }
    assert_eq!(
        committed_offsets(&broker, CTP_GROUP, CTP_INPUT, CTP_PARTITIONS),
        Some(ends),
        "the group's committed offsets are the input's end"
    );
    eprintln!(
        "[{}] {} committed outputs, {} in the log with the aborted ones",
        at(),
        output.records.len(),
        everything.records.len()
    );
}

// ---- fencing ----

/// One scenario of `txn_fencing.py`.
#[derive(Debug, Deserialize)]
struct Fencing {
    zombie_error: Option<ClientError>,
    zombie_delivered: Vec<Record>,
    successor_delivered: Vec<Record>,
}

#[derive(Debug, Deserialize)]
struct FencingRun {
    mid_transaction: Fencing,
    between_transactions: Fencing,
}

fn assert_fenced(scenario: &str, run: &Fencing) {
    let error = run
        .zombie_error
        .as_ref()
        .unwrap_or_else(|| panic!("{scenario}: the zombie's commit succeeded: {run:?}"));
    assert!(
        error.fatal || error.name == "_FENCED",
        "{scenario}: the zombie's error is not a fencing: {error:?}"
    );
    assert!(
        !error.txn_requires_abort,
        "{scenario}: a fenced producer cannot just abort and go on: {error:?}"
    );
}

#[test]
fn given_two_producers_with_one_transactional_id_when_the_first_commits_after_the_second_initialised_then_it_is_fenced_and_its_records_stay_invisible(
) {
    const TOPIC: &str = "txn-fencing";
    let broker = BrokerProcess::start(&[]);
    new_topic(&broker, TOPIC, 1);
    let run: FencingRun = run_script(&broker, "txn_fencing.py", &[TOPIC, "--records", "5"]);
    assert_fenced("mid_transaction", &run.mid_transaction);
    assert_fenced("between_transactions", &run.between_transactions);

    let mid = &run.mid_transaction;
    let between = &run.between_transactions;
    // What the zombie flushed before it was fenced is in the log (aborted);
    // the early transaction of the second scenario committed before the
    // successor existed.
    let zombie_open: Vec<Record> = sorted(
        mid.zombie_delivered
            .iter()
            .filter(|r| r.key.starts_with("zombie-open-") && !r.key.contains("late"))
            .cloned()
            .collect(),
    );
    assert_eq!(zombie_open.len(), 5, "{mid:?}");
    let early: Vec<Record> = sorted(between.zombie_delivered.clone());
    assert!(
        early.iter().all(|r| r.key.starts_with("early-")) && early.len() == 5,
        "only the early records of the between-transactions zombie were delivered: {early:?}"
    );
    let committed = union(&[
        &mid.successor_delivered,
        &early,
        &between.successor_delivered,
    ]);
    assert_eq!(committed.len(), 15);

    let rc = read(&broker, TOPIC, 1, "read_committed");
    assert_eq!(
        rc.records,
        committed,
        "read_committed sees the successors' and the early committed records, nothing of the zombies"
    );
    let ru = read(&broker, TOPIC, 1, "read_uncommitted");
    assert_eq!(
        ru.records,
        union(&[&committed, &zombie_open]),
        "the zombie's writes after its fencing were refused: none is in the log\nbroker log:\n{}",
        tail(&broker.logs(), 6000)
    );
    let (lso, hw) = lso_and_hw(&broker, TOPIC, 0);
    assert_eq!(lso, hw, "the zombies left no transaction open");
}

// ---- timeout ----

#[test]
fn given_a_transaction_idle_past_its_timeout_when_the_broker_checks_then_it_is_aborted_and_never_visible_to_read_committed(
) {
    const TOPIC: &str = "txn-timeout";
    let broker = BrokerProcess::start(&["--transaction-check-interval-ms", "100"]);
    new_topic(&broker, TOPIC, 1);
    let before = produce(&broker, (TOPIC, 1), "before", 5, End::Commit("prior"));

    // The stalled producer: alive, its transaction open, doing nothing.
    let mut stalled = hold_open(&broker, TOPIC, 1, "stalled", 5, "stalled", 3_000);
    let event = stalled.wait_for_event(WAIT, "produced", |_| true, || broker.logs());
    let open = produced_records(&event);
    assert_eq!(open.len(), 5, "{event}");
    let last_open = end_offset(&open, 0);

    // The broker aborts it: the last stable offset moves past its records.
    wait_until(
        WAIT,
        || lso_and_hw(&broker, TOPIC, 0).0 > last_open,
        || {
            format!(
                "(LSO, HW) {:?}: the stalled transaction (offsets {}..{last_open}) was not aborted\nbroker log:\n{}",
                lso_and_hw(&broker, TOPIC, 0),
                first_offset(&open, 0),
                tail(&broker.logs(), 6000)
            )
        },
    );
    assert!(
        broker.logs().contains(TIMEOUT_ABORT_LOG),
        "the abort was not the timeout's:\n{}",
        broker.logs()
    );
    let (lso, hw) = lso_and_hw(&broker, TOPIC, 0);
    assert_eq!(lso, hw, "nothing open after the abort marker");

    let rc = read(&broker, TOPIC, 1, "read_committed");
    assert_eq!(rc.records, before, "the aborted records are invisible");
    let ru = read(&broker, TOPIC, 1, "read_uncommitted");
    assert_eq!(ru.records, union(&[&before, &open]));

    // The stalled producer wakes up and tries to commit: refused.
    stalled.send("commit");
    let ended = stalled.wait_for_event(WAIT, "ended", |_| true, || broker.logs());
    assert!(
        ended_error(&ended).is_some(),
        "the stalled producer committed after its transaction was aborted: {ended}"
    );
    assert!(
        ended_records(&ended, "late_delivered").is_empty(),
        "records produced after the abort were stored: {ended}"
    );
    assert!(
        stalled.close_and_wait(WAIT).is_some_and(|s| s.success()),
        "{}",
        stalled.report()
    );

    // A new instance of the same transactional id works.
    let after = produce(&broker, (TOPIC, 1), "after", 5, End::Commit("stalled"));
    let rc = read(&broker, TOPIC, 1, "read_committed");
    assert_eq!(rc.records, union(&[&before, &after]));
    let ru = read(&broker, TOPIC, 1, "read_uncommitted");
    assert_eq!(
        ru.records,
        union(&[&before, &open, &after]),
        "nothing of the stalled producer after the abort is in the log"
    );
}

// ---- crash ----

#[test]
fn given_committed_aborted_and_open_transactions_when_the_broker_is_killed_then_after_restart_only_committed_are_visible_and_the_open_one_times_out(
) {
    const TOPIC: &str = "txn-crash";
    const PARTITIONS: i32 = 2;
    // No timeout check before the crash (the transaction stays open for
    // sure); every 100 ms after the restart.
    let mut broker = BrokerProcess::start(&["--transaction-check-interval-ms", "600000"]);
    new_topic(&broker, TOPIC, PARTITIONS);
    let target = (TOPIC, PARTITIONS);
    let first = produce(&broker, target, "c1", 6, End::Commit("crash-c"));
    let open = produce(&broker, target, "o", 6, End::Open("crash-o", 3_000));
    let second = produce(&broker, target, "c2", 6, End::Commit("crash-c"));
    let aborted = produce(&broker, target, "a", 6, End::Abort("crash-a"));
    let hw_before: Vec<i64> = (0..PARTITIONS)
        .map(|p| {
            let (lso, hw) = lso_and_hw(&broker, TOPIC, p);
            assert_eq!(
                lso,
                first_offset(&open, p),
                "partition {p}: the open transaction holds the last stable offset before the crash"
            );
            assert!(hw > end_offset(&aborted, p), "partition {p}");
            hw
        })
        .collect();

    broker.kill9();
    broker.restart_with(&["--transaction-check-interval-ms", "100"]);

    for p in 0..PARTITIONS {
        wait_until(
            WAIT,
            || {
                let (lso, hw) = lso_and_hw(&broker, TOPIC, p);
                lso == hw
            },
            || {
                format!(
                    "partition {p}: (LSO, HW) {:?}: the open transaction was not aborted after the restart\nbroker log:\n{}",
                    lso_and_hw(&broker, TOPIC, p),
                    tail(&broker.logs(), 6000)
                )
            },
        );
        let (_, hw) = lso_and_hw(&broker, TOPIC, p);
        assert_eq!(
            hw,
            hw_before[p as usize] + 1,
            "partition {p}: everything survived the crash, and the abort marker followed"
        );
    }
    assert!(
        broker.logs().contains(TIMEOUT_ABORT_LOG),
        "the open transaction was not aborted by its timeout:\n{}",
        broker.logs()
    );

    let rc = read(&broker, TOPIC, PARTITIONS, "read_committed");
    assert_eq!(
        rc.records,
        union(&[&first, &second]),
        "after the crash read_committed sees only the committed transactions"
    );
    let ru = read(&broker, TOPIC, PARTITIONS, "read_uncommitted");
    assert_eq!(ru.records, union(&[&first, &open, &second, &aborted]));

    // The open transaction's id is usable again.
    let after = produce(&broker, target, "after", 4, End::Commit("crash-o"));
    let rc = read(&broker, TOPIC, PARTITIONS, "read_committed");
    assert_eq!(rc.records, union(&[&first, &second, &after]));
}
