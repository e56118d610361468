//! Kafka transactions with Apache Kafka's own Java client (`kafka-clients`
//! 4.3.1) and its `kafka-transactions` tool, against the real broker binary:
//! - a transactional producer commits, aborts, and is fenced by a second
//!   producer with the same transactional.id (ProducerFencedException on its
//!   commit, and on the next send of a fenced idle producer); a read_committed
//!   consumer reads exactly the committed records, at the offsets they were
//!   acknowledged at, while a read_uncommitted one reads the aborted ones
//!   too, and every transaction leaves one marker offset in each partition,
//!   as on Kafka;
//! - while a transaction is open, `kafka-transactions list` and `describe`
//!   show its transactional id with the producer id its batches carry and
//!   the state Ongoing, and `describe` its partitions; after the commit they
//!   show CompleteCommit and no partitions.
//!
//! The Java side is `tests/java/.../Transactions.java` (built by
//! `scripts/test` into `target/java/`); the expectations are Kafka's, seen by
//! the same scenario against Apache Kafka 4.3.1 (formatted with
//! transaction.version=1, the protocol the broker serves). The assertions
//! are here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::java::{scenario, tab_table, tool, tool_ok, Interactive};
use common::BrokerProcess;
use serde::Deserialize;

/// kafka-transactions.
const TRANSACTIONS: &str = "org.apache.kafka.tools.TransactionsCommand";

/// Longest the held transaction's JVM may take to start, produce and
/// report, and then to commit and exit.
const HOLD_DEADLINE: Duration = Duration::from_secs(240);

/// Records per transaction in the scenario (half to each partition).
const PER_TXN: i64 = 10;

/// The scenario's transactions in order, and whether each commits.
const TXNS: [(&str, bool); 6] = [
    ("committed-1", true),
    ("aborted-2", false),
    ("committed-3", true),
    ("fenced-4", false),
    ("committed-5", true),
    ("committed-6", true),
];

/// One record as the producer's ack or a consumer placed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
struct Placed {
    partition: i32,
    offset: i64,
    value: String,
}

#[derive(Debug, Deserialize)]
struct Acked {
    txn: String,
    #[serde(flatten)]
    record: Placed,
}

/// What the scenario saw while "fenced-4" was open.
#[derive(Debug, Deserialize)]
struct WhileOpen {
    read_committed_end: BTreeMap<String, i64>,
    read_uncommitted_end: BTreeMap<String, i64>,
    read_committed: Vec<Placed>,
}

/// What `Transactions … scenario` prints.
#[derive(Debug, Deserialize)]
struct Scenario {
    while_open: WhileOpen,
    outcomes: BTreeMap<String, String>,
    acked: Vec<Acked>,
    end_offsets: BTreeMap<String, i64>,
    read_committed_end: BTreeMap<String, i64>,
    read_committed: Vec<Placed>,
    read_uncommitted: Vec<Placed>,
}

/// Where Kafka puts the records of the scenario's transactions labelled
/// `wanted`: transaction k's five records of each partition at offsets
/// 6k..6k+4, its marker at 6k+5 (values "LABEL-I" go to partition I % 2).
fn layout(wanted: impl Fn(&str, bool) -> bool) -> Vec<Placed> {
    let mut out = Vec::new();
    for partition in 0..2 {
        for (k, (label, commits)) in TXNS.iter().enumerate() {
            if !wanted(label, *commits) {
                continue;
            }
            for (j, i) in (0..PER_TXN)
                .filter(|i| i % 2 == i64::from(partition))
                .enumerate()
            {
                out.push(Placed {
                    partition,
                    offset: 6 * k as i64 + j as i64,
                    value: format!("{label}-{i}"),
                });
            }
        }
    }
    out
}

/// `records` in partition order, each partition's in the order read (which
/// must already be offset order).
fn by_partition(records: &[Placed]) -> Vec<Placed> {
    let mut out: Vec<Placed> = records.to_vec();
    out.sort_by_key(|r| r.partition); // stable: keeps each partition's order
    out
}

fn offsets(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(p, o)| (p.to_string(), *o)).collect()
}

#[test]
fn given_java_transactional_producers_when_committing_aborting_and_fenced_then_read_committed_sees_exactly_the_committed_records(
) {
    let broker = BrokerProcess::start(&[]);
    let topic = "java-txn";
    let run: Scenario = scenario(&broker, "Transactions", &[topic, "java-txn-id", "scenario"]);
    let ctx = || {
        format!(
            "{run:#?}\nbroker log:\n{}",
            common::tail(&broker.logs(), 20_000)
        )
    };

    // Each step did what it does on Kafka: B's initTransactions fenced A
    // (its commit fails), C's fenced the idle B (its next send and commit fail).
    let want: BTreeMap<String, String> = [
        ("a_init", "ok"),
        ("a_commit_1", "ok"),
        ("a_abort_2", "ok"),
        ("a_commit_3", "ok"),
        ("a_send_4", "ok"),
        ("b_init", "ok"),
        ("a_commit_4_after_b_init", "ProducerFencedException"),
        ("b_commit_5", "ok"),
        ("c_init", "ok"),
        ("b_begin_after_c_init", "ok"),
        ("b_send_after_c_init", "ProducerFencedException"),
        ("b_commit_after_c_init", "ProducerFencedException"),
        ("c_commit_6", "ok"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(run.outcomes, want, "{}", ctx());

    // Every record acknowledged where Kafka puts it: each transaction, aborted
    // or committed, takes one more offset per partition for its marker.
    let mut acked: Vec<Placed> = run.acked.iter().map(|a| a.record.clone()).collect();
    acked.sort();
    assert_eq!(acked, layout(|_, _| true), "{}", ctx());
    for a in &run.acked {
        assert!(a.record.value.starts_with(&format!("{}-", a.txn)), "{a:?}");
    }

    // While "fenced-4" was open its records were stored (the high watermark
    // is past them) but the last stable offset stayed at its first record,
    // and a read_committed consumer got only what was committed before.
    let open = &run.while_open;
    assert_eq!(
        open.read_uncommitted_end,
        offsets(&[("0", 23), ("1", 23)]),
        "{}",
        ctx()
    );
    assert_eq!(
        open.read_committed_end,
        offsets(&[("0", 18), ("1", 18)]),
        "{}",
        ctx()
    );
    assert_eq!(
        by_partition(&open.read_committed),
        layout(|label, commits| commits && ["committed-1", "committed-3"].contains(&label)),
        "{}",
        ctx()
    );

    // At the end nothing is open; read_committed gets exactly the committed
    // transactions, read_uncommitted the aborted ones too (and never the
    // fenced producer's record, which was not written).
    let end = offsets(&[("0", 36), ("1", 36)]);
    assert_eq!(run.end_offsets, end, "{}", ctx());
    assert_eq!(run.read_committed_end, end, "{}", ctx());
    assert_eq!(
        by_partition(&run.read_committed),
        layout(|_, commits| commits),
        "{}",
        ctx()
    );
    assert_eq!(
        by_partition(&run.read_uncommitted),
        layout(|_, _| true),
        "{}",
        ctx()
    );

    // Stored: each marker is a batch of its own at offset 6k+5, and every
    // batch, data or marker, carries the one producer id the three producers
    // shared (the transactional id keeps its producer id; fencing bumps the epoch).
    let batches = common::dumped_batches(&broker, topic, 2);
    let producer_ids: BTreeSet<i64> = batches
        .iter()
        .map(|b| b["producer_id"].as_i64().unwrap())
        .collect();
    assert_eq!(producer_ids.len(), 1, "{batches:?}");
    assert!(producer_ids.iter().all(|&id| id >= 0), "{batches:?}");
    for k in 0..6 {
        let marker = 6 * k + 5;
        let batches_there = batches
            .iter()
            .filter(|b| b["base_offset"] == marker && b["last_offset"] == marker)
            .count();
        assert_eq!(
            batches_there, 2,
            "one marker batch at offset {marker} in each partition: {batches:?}"
        );
    }
}

/// The `kafka-transactions` row of `transactional_id`, and how many rows
/// there were.
fn row_of(out: &str, column: &str, transactional_id: &str) -> (BTreeMap<String, String>, usize) {
    let rows = tab_table(out);
    let found: Vec<&BTreeMap<String, String>> = rows
        .iter()
        .filter(|r| r.get(column).map(String::as_str) == Some(transactional_id))
        .collect();
    assert_eq!(found.len(), 1, "one row for {transactional_id}:\n{out}");
    (found[0].clone(), rows.len())
}

#[test]
fn given_an_open_java_transaction_when_kafka_transactions_lists_and_describes_it_then_it_shows_its_producer_id_state_and_partitions(
) {
    let broker = BrokerProcess::start(&[]);
    let topic = "held-txn";
    let id = "held-txn-id";

    // A producer with a transaction open on partitions 0 and 2.
    #[derive(Debug, Deserialize)]
    struct Event {
        event: String,
        #[serde(default)]
        acked: Vec<BTreeMap<String, i64>>,
    }
    let mut held = Interactive::start(&broker, "Transactions", &[topic, id, "hold"]);
    let open: Event = held.next_json(&broker, HOLD_DEADLINE);
    assert_eq!(open.event, "open", "{open:?}");
    let acked_partitions: BTreeSet<i64> = open.acked.iter().map(|a| a["partition"]).collect();
    assert_eq!(acked_partitions, BTreeSet::from([0, 2]), "{open:?}");

    // Its producer id, as its stored batches carry it.
    let batches = common::dumped_batches(&broker, topic, 3);
    let producer_ids: BTreeSet<i64> = batches
        .iter()
        .map(|b| b["producer_id"].as_i64().unwrap())
        .collect();
    assert_eq!(producer_ids.len(), 1, "{batches:?}");
    let producer_id = producer_ids.into_iter().next().unwrap().to_string();

    // list: the id with its producer id and Ongoing, on coordinator 0.
    let out = tool_ok(&broker, TRANSACTIONS, &["list"], None);
    let (row, rows) = row_of(&out, "TransactionalId", id);
    assert_eq!(rows, 1, "{out}");
    assert_eq!(row["Coordinator"], "0", "{out}");
    assert_eq!(row["ProducerId"], producer_id, "{out}");
    assert_eq!(row["TransactionState"], "Ongoing", "{out}");

    // describe: the same, with the epoch, the timeout and the partitions.
    let describe = |state: &str| {
        let out = tool_ok(
            &broker,
            TRANSACTIONS,
            &["describe", "--transactional-id", id],
            None,
        );
        let (row, _) = row_of(&out, "TransactionalId", id);
        assert_eq!(row["CoordinatorId"], "0", "{out}");
        assert_eq!(row["ProducerId"], producer_id, "{out}");
        assert_eq!(row["ProducerEpoch"], "0", "{out}");
        assert_eq!(row["TransactionState"], state, "{out}");
        assert_eq!(row["TransactionTimeoutMs"], "60000", "{out}");
        row["TopicPartitions"]
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect::<BTreeSet<String>>()
    };
    assert_eq!(
        describe("Ongoing"),
        BTreeSet::from([format!("{topic}-0"), format!("{topic}-2")])
    );

    // Committed: CompleteCommit, no partitions left.
    held.send_line("commit");
    let committed: Event = held.next_json(&broker, HOLD_DEADLINE);
    assert_eq!(committed.event, "committed", "{committed:?}");
    held.expect_success(&broker, HOLD_DEADLINE);
    assert_eq!(describe("CompleteCommit"), BTreeSet::new());
    let out = tool_ok(&broker, TRANSACTIONS, &["list"], None);
    let (row, _) = row_of(&out, "TransactionalId", id);
    assert_eq!(row["TransactionState"], "CompleteCommit", "{out}");

    // An unknown id: Kafka's error, and a failing exit.
    let unknown = tool(
        &broker,
        TRANSACTIONS,
        &["describe", "--transactional-id", "no-such-id"],
        None,
    );
    assert_ne!(unknown.code, 0, "{}", unknown.stdout);
    assert!(
        unknown.stderr.contains("could not be found"),
        "{}",
        unknown.stderr
    );
}
