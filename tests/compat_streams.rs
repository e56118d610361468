//! Kafka Streams 4.3.1 (`kafka-streams`) runs against the real broker
//! binary.
//!
//! at_least_once: a tumbling windowed count with grace, once with
//! `groupByKey` and once re-keyed with `groupBy`, so Streams creates its own
//! repartition topic and windowed changelog topics with the configs it asks
//! for (cleanup.policy delete and compact,delete, retention.ms,
//! segment.bytes, message.timestamp.type). The application processes half of
//! a seeded input, closes, and restarts on an empty state.dir, so its window
//! stores come back only by restoring the changelogs from the broker, which
//! its log cleaner (run every 200 ms here) compacts while the test runs. The
//! final counts must equal the ones computed from the input, late records
//! beyond grace dropped and those within grace counted.
//!
//! exactly_once_v2: the same counts, the application SIGKILLed while a
//! transaction of its holds output records on the broker, then restarted on
//! an empty state.dir (a new transactional id: the broker's timeout aborts
//! the killed one's transaction). Read with read_committed, each output
//! holds exactly one update per input record and the final counts equal the
//! ones this test computes from the input; the aborted updates are there for
//! read_uncommitted only.
//!
//! The Java scenarios are `tests/java/.../StreamsWindowedCount.java` and
//! `StreamsExactlyOnce.java`; `scripts/test` builds them with Maven into
//! `target/java/`. The assertions are here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::java::Interactive;
use common::{tail, BrokerProcess};
use serde::Deserialize;

/// One Streams instance's life, as the scenario saw it.
#[derive(Debug, Deserialize)]
struct Run {
    closed_in_time: bool,
    state_after_close: String,
    /// The states the state listener saw (the last may come after close returns).
    states: Vec<String>,
    /// Store name → records restored from its changelog (StateRestoreListener).
    restored: BTreeMap<String, u64>,
}

/// What a reader of one changelog topic saw from its beginning.
#[derive(Debug, Deserialize)]
struct Changelog {
    records: u64,
    offsets: u64,
}

/// One internal topic Streams created.
#[derive(Debug, Deserialize)]
struct Topic {
    partitions: u32,
    /// The configs set on the topic (DescribeConfigs source DYNAMIC_TOPIC_CONFIG).
    configs: BTreeMap<String, String>,
}

/// What `StreamsWindowedCount` prints.
#[derive(Debug, Deserialize)]
struct Report {
    records: u64,
    lateness: BTreeMap<String, u64>,
    run1: Run,
    run2: Run,
    changelogs_after_run1: BTreeMap<String, Changelog>,
    changelogs_at_end: BTreeMap<String, Changelog>,
    /// "key@windowStart" → count.
    expected_by_key: BTreeMap<String, u64>,
    expected_by_group: BTreeMap<String, u64>,
    observed_by_key: BTreeMap<String, u64>,
    observed_by_group: BTreeMap<String, u64>,
    topics: BTreeMap<String, Topic>,
}

/// Runs `StreamsWindowedCount BOOTSTRAP APP_ID SEED` and parses its report;
/// panics with its stderr and the broker's log if it fails.
fn streams_scenario(broker: &BrokerProcess, app_id: &str, seed: u64) -> Report {
    common::java::scenario(broker, "StreamsWindowedCount", &[app_id, &seed.to_string()])
}

/// The entries of `observed` that differ from `expected` (missing, extra or
/// another count), for a readable failure.
fn differences(
    expected: &BTreeMap<String, u64>,
    observed: &BTreeMap<String, u64>,
) -> Vec<(String, Option<u64>, Option<u64>)> {
    let mut keys: Vec<&String> = expected.keys().chain(observed.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| expected.get(*k) != observed.get(*k))
        .map(|k| {
            (
                k.clone(),
                expected.get(k).copied(),
                observed.get(k).copied(),
            )
        })
        .collect()
}

#[test]
fn given_kafka_streams_windowed_counts_when_restarted_on_empty_state_then_restores_from_compacted_changelogs_and_counts_exactly(
) {
    const APP: &str = "windowed-count";
    let broker = BrokerProcess::start(&["--log-cleaner-backoff-ms", "200"]);
    let report = streams_scenario(&broker, APP, 20_240_601);

    // The input exercises grace both ways.
    assert_eq!(report.records, 3000);
    for kind in ["on_time", "late_within_grace", "later_than_grace"] {
        assert!(
            report.lateness.get(kind).copied().unwrap_or(0) > 0,
            "the generated input has no {kind} records: {:?}",
            report.lateness
        );
    }

    // Exact counts, through the repartition topic too.
    for (path, expected, observed) in [
        (
            "groupByKey",
            &report.expected_by_key,
            &report.observed_by_key,
        ),
        (
            "groupBy",
            &report.expected_by_group,
            &report.observed_by_group,
        ),
    ] {
        assert!(!expected.is_empty());
        let diff = differences(expected, observed);
        assert!(
            diff.is_empty(),
            "{path}: (window, expected, observed) that differ: {diff:?}\nbroker log:\n{}",
            tail(&broker.logs(), 20_000)
        );
    }
    // Dropped records are really dropped: fewer counted than produced.
    let dropped = report.lateness["later_than_grace"];
    for counts in [&report.observed_by_key, &report.observed_by_group] {
        assert_eq!(counts.values().sum::<u64>(), report.records - dropped);
    }

    // Both runs reached RUNNING and closed cleanly; only the second restored,
    // every store, from the changelogs the first one wrote.
    for (name, run) in [("run 1", &report.run1), ("run 2", &report.run2)] {
        assert!(run.closed_in_time, "{name}: {run:?}");
        assert_eq!(run.state_after_close, "NOT_RUNNING", "{name}: {run:?}");
        assert!(run.states.iter().any(|s| s == "RUNNING"), "{name}: {run:?}");
    }
    assert!(
        report.run1.restored.values().all(|&n| n == 0),
        "{:?}",
        report.run1
    );
    let written_by_run1: u64 = report
        .changelogs_after_run1
        .values()
        .map(|c| c.offsets)
        .sum();
    for store in ["count-by-key", "count-by-group"] {
        let restored = report.run2.restored.get(store).copied().unwrap_or(0);
        assert!(
            restored > 0,
            "{store} was not restored from its changelog: {:?}",
            report.run2
        );
        assert!(restored <= written_by_run1, "{:?}", report.run2);
    }

    // The internal topics, with the configs Streams asked for.
    let expected_topics = [
        format!("{APP}-by-group-repartition"),
        format!("{APP}-count-by-group-changelog"),
        format!("{APP}-count-by-key-changelog"),
    ];
    assert_eq!(
        report.topics.keys().cloned().collect::<Vec<_>>(),
        expected_topics,
        "{:?}",
        report.topics
    );
    let repartition = &report.topics[&expected_topics[0]];
    assert_eq!(repartition.partitions, 3);
    let want: BTreeMap<String, String> = [
        ("cleanup.policy", "delete"),
        ("message.timestamp.type", "CreateTime"),
        ("retention.ms", "-1"),
        ("segment.bytes", "52428800"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(repartition.configs, want);
    for changelog in &expected_topics[1..] {
        let topic = &report.topics[changelog];
        assert_eq!(topic.partitions, 3, "{changelog}");
        // Window size + grace (15 s) + Streams' default additional
        // changelog retention (1 day).
        let want: BTreeMap<String, String> = [
            ("cleanup.policy", "compact,delete"),
            ("message.timestamp.type", "CreateTime"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("retention.ms", "86415000"),
            ("segment.ms", "1000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(topic.configs, want, "{changelog}");
    }

    // The broker's cleaner compacted every changelog: a reader sees fewer
    // records than the offsets they span.
    assert_eq!(
        report.changelogs_at_end.keys().collect::<Vec<_>>(),
        expected_topics[1..].iter().collect::<Vec<_>>()
    );
    for (name, log) in &report.changelogs_at_end {
        assert!(
            log.records > 0 && log.records < log.offsets,
            "{name}: {log:?}"
        );
    }
}

/// Window size of the scenarios' tumbling windows, in ms.
const WINDOW_MS: i64 = 10_000;

/// Input records the exactly-once scenario generates.
const EOS_RECORDS: u64 = 3000;

/// Longest the first exactly-once run may take to process the first half
/// and block with a transaction open (about 10 s on an idle machine).
const OPEN_TRANSACTION_DEADLINE: Duration = Duration::from_secs(240);

/// One generated input record.
#[derive(Debug, Deserialize)]
struct Input {
    key: String,
    timestamp: i64,
}

/// What `StreamsExactlyOnce … first` prints once its transaction is open.
#[derive(Debug, Deserialize)]
struct OpenTransaction {
    event: String,
    input: Vec<Input>,
    groups: BTreeMap<String, String>,
    /// Input partition → offset the application committed.
    committed_input: BTreeMap<String, u64>,
    /// By-key output partition → high watermark.
    output_end: BTreeMap<String, u64>,
    /// By-key output partition → last stable offset.
    output_lso: BTreeMap<String, u64>,
}

/// Records of one output topic each isolation level reads.
#[derive(Debug, Deserialize)]
struct OutputRecords {
    read_committed: u64,
    read_uncommitted: u64,
}

/// One transactional id as ListTransactions shows it.
#[derive(Debug, Deserialize)]
struct Transaction {
    transactional_id: String,
    state: String,
}

/// What `StreamsExactlyOnce … finish` prints.
#[derive(Debug, Deserialize)]
struct Finish {
    run: Run,
    observed_by_key: BTreeMap<String, u64>,
    observed_by_group: BTreeMap<String, u64>,
    output_records: BTreeMap<String, OutputRecords>,
    transactions: Vec<Transaction>,
}

/// Every input record counted once in its window ("NAME@WINDOW_START"),
/// under the name `name_of` gives its key.
fn expected_counts(input: &[Input], name_of: impl Fn(&str) -> String) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for record in input {
        let start = record.timestamp - record.timestamp.rem_euclid(WINDOW_MS);
        *counts
            .entry(format!("{}@{start}", name_of(&record.key)))
            .or_insert(0) += 1;
    }
    counts
}

#[test]
fn given_kafka_streams_exactly_once_v2_windowed_counts_when_killed_with_a_transaction_open_and_restarted_on_empty_state_then_read_committed_counts_are_exact(
) {
    const APP: &str = "eos-count";
    let broker = BrokerProcess::start(&[]);
    let state = tempfile::tempdir().unwrap();
    let state_dir = |run: &str| {
        let dir = state.path().join(run);
        std::fs::create_dir(&dir).unwrap();
        dir.to_str().unwrap().to_string()
    };

    // Run 1: the first half committed, then blocked mid-way through the
    // second half with its by-key updates in an open transaction; SIGKILL.
    let first_dir = state_dir("run1");
    let mut first = Interactive::start(
        &broker,
        "StreamsExactlyOnce",
        &[APP, &first_dir, "first", "20240612"],
    );
    let open: OpenTransaction = first.next_json(&broker, OPEN_TRANSACTION_DEADLINE);
    first.kill9();
    assert_eq!(open.event, "open_transaction");
    assert_eq!(open.input.len() as u64, EOS_RECORDS);
    let committed: u64 = open.committed_input.values().sum();
    assert!(
        (EOS_RECORDS / 2..EOS_RECORDS).contains(&committed),
        "killed mid-stream: the first half committed, not all: {:?}",
        open.committed_input
    );
    assert!(
        open.output_end
            .iter()
            .any(|(p, end)| *end > open.output_lso[p]),
        "killed with uncommitted output on the broker: ends {:?}, last stable offsets {:?}",
        open.output_end,
        open.output_lso
    );

    // Run 2: a fresh state.dir (stores restored from the changelogs, a new
    // transactional id), to the end of the input.
    let second_dir = state_dir("run2");
    let finish: Finish =
        common::java::scenario(&broker, "StreamsExactlyOnce", &[APP, &second_dir, "finish"]);
    let ctx = || {
        format!(
            "run 2: {:?}\noutputs: {:?}\ntransactions: {:?}\nbroker log:\n{}",
            finish.run,
            finish.output_records,
            finish.transactions,
            tail(&broker.logs(), 20_000)
        )
    };

    // Exact counts, computed here from the input.
    let expected_by_key = expected_counts(&open.input, |key| key.to_string());
    let expected_by_group = expected_counts(&open.input, |key| open.groups[key].clone());
    for (path, expected, observed) in [
        ("groupByKey", &expected_by_key, &finish.observed_by_key),
        ("groupBy", &expected_by_group, &finish.observed_by_group),
    ] {
        let diff = differences(expected, observed);
        assert!(
            diff.is_empty(),
            "{path}: (window, expected, observed) that differ: {diff:?}\n{}",
            ctx()
        );
    }

    // Exactly once: one committed update per input record in each output
    // (no cache, nothing dropped), while the killed run's aborted updates
    // are there for read_uncommitted only.
    assert_eq!(
        finish.output_records.keys().cloned().collect::<Vec<_>>(),
        vec![format!("{APP}-out-by-group"), format!("{APP}-out-by-key")]
    );
    for (topic, records) in &finish.output_records {
        assert_eq!(records.read_committed, EOS_RECORDS, "{topic}: {}", ctx());
    }
    let by_key = &finish.output_records[&format!("{APP}-out-by-key")];
    assert!(
        by_key.read_uncommitted > by_key.read_committed,
        "the killed run's open transaction was aborted, not lost: {}",
        ctx()
    );

    // Run 2 restored every store from its changelog and closed cleanly.
    for store in ["count-by-key", "count-by-group"] {
        assert!(
            finish.run.restored.get(store).copied().unwrap_or(0) > 0,
            "{store} was not restored from its changelog: {}",
            ctx()
        );
    }
    assert!(finish.run.closed_in_time, "{}", ctx());
    assert_eq!(finish.run.state_after_close, "NOT_RUNNING", "{}", ctx());

    // Two transactional ids: the killed run's, aborted by the broker's
    // timeout, and the restarted run's, committed.
    let mut states: Vec<&str> = finish
        .transactions
        .iter()
        .filter(|t| t.transactional_id.starts_with(&format!("{APP}-")))
        .map(|t| t.state.as_str())
        .collect();
    states.sort();
    assert_eq!(states, vec!["CompleteAbort", "CompleteCommit"], "{}", ctx());
}
