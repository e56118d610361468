//! Kafka Streams 4.3.1 (`kafka-streams`, at_least_once) runs against the
//! real broker binary: a tumbling windowed count with grace, once with
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
//! The Java scenario is `tests/java/.../StreamsWindowedCount.java` (it prints
//! one JSON line); `scripts/test` builds it with Maven into `target/java/`.
//! The assertions are here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::{run_bounded, tail, BrokerProcess, Finished};
use serde::Deserialize;

/// Longest the scenario's JVM may run before it is killed and the test fails
/// (it takes about 20 s; each of its own waits is bounded at 90 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

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
    let java = common::java::java();
    let mut command = Command::new(java);
    command
        .arg("-cp")
        .arg(common::java::classpath(&[
            "kafka-clients-",
            "kafka-streams-",
        ]))
        // C1 only starts faster; a bounded heap keeps parallel JVMs small.
        .args(["-XX:TieredStopAtLevel=1", "-Xmx512m"])
        .arg("dev.sediment.compat.StreamsWindowedCount")
        .args([broker.bootstrap(), app_id.to_string(), seed.to_string()]);
    let Finished {
        status,
        stdout,
        stderr,
    } = run_bounded(command, None, RUN_TIMEOUT);
    let context = || {
        format!(
            "StreamsWindowedCount {app_id} {seed}\nscenario stderr:\n{}\nbroker log:\n{}",
            tail(&stderr, 8000),
            tail(&broker.logs(), 20_000)
        )
    };
    match status {
        None => panic!("killed after {RUN_TIMEOUT:?}: {}", context()),
        Some(status) if !status.success() => panic!("failed ({status}): {}", context()),
        Some(_) => serde_json::from_slice(&stdout).unwrap_or_else(|e| {
            panic!(
                "unexpected output ({e}): {:?}\n{}",
                String::from_utf8_lossy(&stdout[..stdout.len().min(2000)]),
                context()
            )
        }),
    }
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
