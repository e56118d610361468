//! sediment-client's idempotent and transactional producer, and its
//! read_committed consumers, against the real broker binary: retries across
//! a kill -9 store every record once and in order; committed and aborted
//! transactions are seen as read_committed and read_uncommitted consumers
//! should; offsets sent to a transaction reach the group only at its
//! commit, and a read_committed member joining meanwhile waits for them; a
//! second producer with the same transactional id fences the first; a
//! failed record makes the transaction abortable, not fatal.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{wait_until_async, BrokerProcess};
use sediment_client::{
    Client, ClientBuilder, ClientError, Consumer, ConsumerConfig, ConsumerRecord,
    GroupConsumerConfig, IsolationLevel, NewTopic, Offset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};

/// Generous bound for waits on observable conditions.
const PATIENCE: Duration = Duration::from_secs(60);

async fn client(broker: &BrokerProcess) -> Client {
    ClientBuilder::new(broker.bootstrap())
        .reconnect_backoff_max(Duration::from_millis(200))
        .build()
        .await
        .expect("client")
}

async fn create_topic(client: &Client, topic: &str, partitions: i32) {
    client
        .admin()
        .create_topic(NewTopic::new(topic, partitions))
        .await
        .expect("create topic");
}

/// A transactional producer with `transactional_id`, initialized.
async fn transactional(client: &Client, transactional_id: &str) -> Producer {
    let producer = client
        .producer(ProducerConfig {
            transactional_id: Some(transactional_id.to_string()),
            linger: Duration::from_millis(1),
            ..ProducerConfig::default()
        })
        .expect("transactional producer");
    producer
        .init_transactions()
        .await
        .expect("init_transactions");
    producer
}

/// Sends `values` to `topic`/`partition` and waits for each to be stored.
async fn send_all(producer: &Producer, topic: &str, partition: i32, values: &[String]) {
    let mut futures = Vec::new();
    for value in values {
        let record = ProducerRecord::new(topic, value.clone()).with_partition(partition);
        futures.push(producer.enqueue(record).await.expect("enqueue"));
    }
    for future in futures {
        future.await.expect("record stored");
    }
}

fn values(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i}")).collect()
}

/// Where a consumer with `isolation` starts at `Offset::Latest`: the high
/// watermark, or under read_committed the last stable offset.
async fn latest(client: &Client, topic: &str, partition: i32, isolation: IsolationLevel) -> i64 {
    let consumer = positioned(client, topic, partition, isolation, Offset::Latest).await;
    consumer.position(topic, partition).expect("position")
}

/// A consumer of `topic`/`partition` alone with `isolation`, at `start`.
async fn positioned(
    client: &Client,
    topic: &str,
    partition: i32,
    isolation: IsolationLevel,
    start: Offset,
) -> Consumer {
    let mut consumer = client
        .consumer(ConsumerConfig {
            isolation_level: isolation,
            fetch_max_wait: Duration::from_millis(100),
            ..ConsumerConfig::default()
        })
        .unwrap();
    consumer
        .assign([TopicPartition::new(topic, partition)])
        .await
        .unwrap();
    consumer.seek(topic, partition, start).await.unwrap();
    consumer
}

/// Every record `isolation` lets a consumer read from the start of
/// `topic`/`partition` up to where such a consumer's `Offset::Latest` is.
async fn read_all(
    client: &Client,
    topic: &str,
    partition: i32,
    isolation: IsolationLevel,
) -> Vec<ConsumerRecord> {
    let end = latest(client, topic, partition, isolation).await;
    let mut consumer = positioned(client, topic, partition, isolation, Offset::Earliest).await;
    let deadline = Instant::now() + PATIENCE;
    let mut records = Vec::new();
    while consumer.position(topic, partition).unwrap_or(-1) < end {
        assert!(
            Instant::now() < deadline,
            "{topic}-{partition} ({isolation:?}) read up to {:?} of {end}",
            consumer.position(topic, partition)
        );
        records.extend(consumer.poll().await.expect("poll"));
    }
    records
}

fn texts(records: &[ConsumerRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_an_idempotent_producer_when_the_broker_is_killed_and_restarted_mid_stream_then_each_record_is_stored_once_in_order(
) {
    const PARTITIONS: i32 = 2;
    const PER_PARTITION: u64 = 4000;
    let broker = BrokerProcess::start_on_fixed_port(&[]);
    let client = client(&broker).await;
    create_topic(&client, "idempotent", PARTITIONS).await;
    // Idempotence is the default; small batches keep several requests in
    // flight when the broker dies, and retries outlast the restart.
    let producer = client
        .producer(ProducerConfig {
            retries: 1_000_000,
            retry_backoff: Duration::from_millis(20),
            linger: Duration::from_millis(1),
            batch_size: 2048,
            ..ProducerConfig::default()
        })
        .unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let (restarted_tx, restarted_rx) = tokio::sync::watch::channel(false);

    // Records carry their partition and sequence number. The second half
    // is enqueued only after the restart, so records flow across it.
    let sender = {
        let producer = producer.clone();
        let acked = Arc::clone(&acked);
        tokio::spawn(async move {
            let mut futures = Vec::new();
            for seq in 0..PER_PARTITION {
                if seq == PER_PARTITION / 2 {
                    let mut restarted = restarted_rx.clone();
                    restarted.wait_for(|done| *done).await.unwrap();
                }
                for partition in 0..PARTITIONS {
                    let record = ProducerRecord::new("idempotent", format!("{partition}:{seq:06}"))
                        .with_partition(partition);
                    let future = producer.enqueue(record).await.unwrap();
                    let acked = Arc::clone(&acked);
                    futures.push(tokio::spawn(async move {
                        let result = future.await;
                        acked.fetch_add(1, Ordering::Relaxed);
                        result
                    }));
                }
            }
            let mut results = Vec::new();
            for future in futures {
                results.push(future.await.unwrap());
            }
            results
        })
    };

    // Kill -9 while the first half is being stored, then start again on the
    // same data directory and port.
    wait_until_async(
        PATIENCE,
        || async { acked.load(Ordering::Relaxed) >= PER_PARTITION / 4 },
        || format!("{} records acknowledged", acked.load(Ordering::Relaxed)),
    )
    .await;
    let broker = tokio::task::spawn_blocking(move || {
        let mut broker = broker;
        broker.restart();
        broker
    })
    .await
    .unwrap();
    restarted_tx.send(true).unwrap();

    let results = sender.await.unwrap();
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for result in results {
        let meta = result.expect("every record stored despite the restart");
        offsets.entry(meta.partition).or_default().push(meta.offset);
    }
    assert!(
        broker.logs().contains("no clean-shutdown marker"),
        "the broker restarted after SIGKILL: {}",
        broker.logs()
    );
    for partition in 0..PARTITIONS {
        let records = read_all(
            &client,
            "idempotent",
            partition,
            IsolationLevel::ReadUncommitted,
        )
        .await;
        let expected: Vec<String> = (0..PER_PARTITION)
            .map(|seq| format!("{partition}:{seq:06}"))
            .collect();
        let got = texts(&records);
        assert_eq!(
            got.len(),
            expected.len(),
            "partition {partition}: each record exactly once (first difference at {:?})",
            got.iter().zip(&expected).position(|(g, e)| g != e)
        );
        assert_eq!(got, expected, "partition {partition}: in order");
        // The offsets the producer was told are where the records are.
        let stored: Vec<i64> = records.iter().map(|r| r.offset).collect();
        let mut told = offsets.remove(&partition).unwrap_or_default();
        told.sort_unstable();
        assert_eq!(told, stored, "partition {partition}: acknowledged offsets");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_committed_aborted_and_open_transactions_when_read_committed_and_uncommitted_then_each_sees_what_kafka_shows(
) {
    let broker = BrokerProcess::start(&[]);
    let client = client(&broker).await;
    create_topic(&client, "txn-visibility", 1).await;
    let producer = transactional(&client, "visibility").await;

    producer.begin_transaction().unwrap();
    send_all(&producer, "txn-visibility", 0, &values("committed", 10)).await;
    producer.commit_transaction().await.unwrap();

    producer.begin_transaction().unwrap();
    send_all(&producer, "txn-visibility", 0, &values("aborted", 10)).await;
    producer.abort_transaction().await.unwrap();

    producer.begin_transaction().unwrap();
    send_all(&producer, "txn-visibility", 0, &values("again", 5)).await;
    producer.commit_transaction().await.unwrap();

    let committed = read_all(&client, "txn-visibility", 0, IsolationLevel::ReadCommitted).await;
    let mut expected = values("committed", 10);
    expected.extend(values("again", 5));
    assert_eq!(texts(&committed), expected, "read_committed");
    let uncommitted = read_all(
        &client,
        "txn-visibility",
        0,
        IsolationLevel::ReadUncommitted,
    )
    .await;
    let mut everything = values("committed", 10);
    everything.extend(values("aborted", 10));
    everything.extend(values("again", 5));
    assert_eq!(
        texts(&uncommitted),
        everything,
        "read_uncommitted: aborted records too, never the markers"
    );

    // An open transaction: stored, but beyond the last stable offset.
    let stable = latest(&client, "txn-visibility", 0, IsolationLevel::ReadCommitted).await;
    producer.begin_transaction().unwrap();
    send_all(&producer, "txn-visibility", 0, &values("open", 3)).await;
    assert_eq!(
        latest(&client, "txn-visibility", 0, IsolationLevel::ReadCommitted).await,
        stable,
        "read_committed stops before the open transaction"
    );
    let high_watermark = latest(
        &client,
        "txn-visibility",
        0,
        IsolationLevel::ReadUncommitted,
    )
    .await;
    assert_eq!(high_watermark, stable + 3);
    assert_eq!(
        texts(
            &read_all(
                &client,
                "txn-visibility",
                0,
                IsolationLevel::ReadUncommitted
            )
            .await
        )
        .last()
        .map(String::as_str),
        Some("open-2"),
        "read_uncommitted sees the open transaction"
    );
    producer.commit_transaction().await.unwrap();
    let committed = read_all(&client, "txn-visibility", 0, IsolationLevel::ReadCommitted).await;
    expected.extend(values("open", 3));
    assert_eq!(texts(&committed), expected, "visible once committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_offsets_sent_to_a_transaction_when_aborted_then_committed_then_the_group_sees_them_only_after_the_commit(
) {
    let broker = BrokerProcess::start(&[]);
    let client = client(&broker).await;
    create_topic(&client, "txn-in", 1).await;
    create_topic(&client, "txn-out", 1).await;
    let plain = client.producer(ProducerConfig::default()).unwrap();
    for i in 0..10 {
        plain
            .send(ProducerRecord::new("txn-in", format!("in-{i}")).with_partition(0))
            .await
            .unwrap();
    }
    let admin = client.admin();
    let producer = transactional(&client, "offsets").await;

    producer.begin_transaction().unwrap();
    send_all(&producer, "txn-out", 0, &values("out", 2)).await;
    producer
        .send_offsets_to_transaction(&[("txn-in".to_string(), 0, 4)], "txn-group")
        .await
        .unwrap();
    assert!(
        admin
            .committed_offsets("txn-group")
            .await
            .unwrap()
            .is_empty(),
        "pending in the open transaction"
    );
    producer.abort_transaction().await.unwrap();
    assert!(
        admin
            .committed_offsets("txn-group")
            .await
            .unwrap()
            .is_empty(),
        "dropped with the aborted transaction"
    );

    producer.begin_transaction().unwrap();
    send_all(&producer, "txn-out", 0, &values("out", 2)).await;
    producer
        .send_offsets_to_transaction(&[("txn-in".to_string(), 0, 7)], "txn-group")
        .await
        .unwrap();
    assert!(admin
        .committed_offsets("txn-group")
        .await
        .unwrap()
        .is_empty());
    producer.commit_transaction().await.unwrap();
    let expected: BTreeMap<TopicPartition, i64> = [(TopicPartition::new("txn-in", 0), 7)].into();
    wait_until_async(
        PATIENCE,
        || async { admin.committed_offsets("txn-group").await.ok().as_ref() == Some(&expected) },
        || "the group's offset committed with the transaction".to_string(),
    )
    .await;

    // A member of the group (read_committed by default) starts there.
    let mut member = client
        .group_consumer(GroupConsumerConfig::new("txn-group").with_auto_commit(None))
        .unwrap();
    member.subscribe(["txn-in"]).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let first = loop {
        assert!(Instant::now() < deadline, "the member read nothing");
        if let Some(record) = member.poll().await.unwrap().into_iter().next() {
            break record;
        }
    };
    assert_eq!(first.offset, 7);
    assert_eq!(first.value, Some(Bytes::from("in-7")));
    member.close().await.unwrap();
    // And the output of the aborted transaction is not read.
    assert_eq!(
        texts(&read_all(&client, "txn-out", 0, IsolationLevel::ReadCommitted).await),
        values("out", 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_second_producer_with_the_same_transactional_id_when_it_initializes_then_the_first_is_fenced_for_good(
) {
    let broker = BrokerProcess::start(&[]);
    let client = client(&broker).await;
    create_topic(&client, "txn-fence", 1).await;
    let first = transactional(&client, "fenced-id").await;
    first.begin_transaction().unwrap();
    send_all(&first, "txn-fence", 0, &values("zombie", 4)).await;

    let second = transactional(&client, "fenced-id").await;

    let error = first
        .commit_transaction()
        .await
        .expect_err("a fenced producer cannot commit");
    assert!(error.is_fatal(), "fatal: {error}");
    // Every later transactional call gives the same fatal error.
    for later in [
        first.begin_transaction(),
        first.abort_transaction().await,
        first.commit_transaction().await,
        first
            .enqueue(ProducerRecord::new("txn-fence", "late"))
            .await
            .map(drop),
    ] {
        let later = later.expect_err("the fenced producer stays fenced");
        assert!(later.is_fatal(), "{later}");
        assert_eq!(later.to_string(), error.to_string());
    }

    second.begin_transaction().unwrap();
    send_all(&second, "txn-fence", 0, &values("successor", 3)).await;
    second.commit_transaction().await.unwrap();
    assert_eq!(
        texts(&read_all(&client, "txn-fence", 0, IsolationLevel::ReadCommitted).await),
        values("successor", 3),
        "the fenced producer's open transaction was aborted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_record_refused_in_a_transaction_when_committing_then_abortable_and_after_the_abort_the_next_transaction_commits(
) {
    let broker = BrokerProcess::start(&["--message-max-bytes", "10000"]);
    let client = client(&broker).await;
    create_topic(&client, "txn-refused", 2).await;
    let producer = transactional(&client, "refused").await;

    producer.begin_transaction().unwrap();
    send_all(&producer, "txn-refused", 0, &values("before", 3)).await;
    let too_large = producer
        .enqueue(
            ProducerRecord::new("txn-refused", Bytes::from(vec![b'x'; 20_000])).with_partition(1),
        )
        .await
        .unwrap();
    assert!(too_large.await.is_err(), "above message.max.bytes");
    let error = producer
        .commit_transaction()
        .await
        .expect_err("a transaction with a failed record cannot commit");
    assert!(
        matches!(error, ClientError::TransactionAbortable { .. }) && !error.is_fatal(),
        "abortable, not fatal: {error}"
    );
    producer.abort_transaction().await.unwrap();

    // The producer goes on: the next transaction commits (after the abort it
    // took a new epoch, as the failed batch left a hole in its sequence).
    producer.begin_transaction().unwrap();
    send_all(&producer, "txn-refused", 0, &values("after", 3)).await;
    send_all(&producer, "txn-refused", 1, &values("after", 2)).await;
    producer.commit_transaction().await.unwrap();
    assert_eq!(
        texts(&read_all(&client, "txn-refused", 0, IsolationLevel::ReadCommitted).await),
        values("after", 3)
    );
    assert_eq!(
        texts(&read_all(&client, "txn-refused", 1, IsolationLevel::ReadCommitted).await),
        values("after", 2)
    );
    // A send outside a transaction is a usage error, not a lost record.
    assert!(matches!(
        producer
            .enqueue(ProducerRecord::new("txn-refused", "outside"))
            .await,
        Err(ClientError::TransactionState { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_offsets_pending_in_an_open_transaction_when_a_read_committed_member_joins_then_it_starts_at_them_once_committed(
) {
    let broker = BrokerProcess::start(&[]);
    let client = client(&broker).await;
    create_topic(&client, "pending-in", 1).await;
    let plain = client.producer(ProducerConfig::default()).unwrap();
    send_all(&plain, "pending-in", 0, &values("in", 10)).await;
    let producer = transactional(&client, "pending").await;
    producer.begin_transaction().unwrap();
    producer
        .send_offsets_to_transaction(&[("pending-in".to_string(), 0, 7)], "pending-group")
        .await
        .unwrap();

    // A member that would start at the beginning without a committed
    // offset joins while the offset is pending: its OffsetFetch asks for
    // stable offsets and waits out UNSTABLE_OFFSET_COMMIT.
    let mut member = client
        .group_consumer(
            GroupConsumerConfig::new("pending-group")
                .with_auto_offset_reset(sediment_client::AutoOffsetReset::Earliest)
                .with_auto_commit(None),
        )
        .unwrap();
    member.subscribe(["pending-in"]).unwrap();
    let reader = tokio::spawn(async move {
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(Instant::now() < deadline, "the member read nothing");
            if let Some(record) = member.poll().await.unwrap().into_iter().next() {
                member.close().await.unwrap();
                return record;
            }
        }
    });
    let admin = client.admin();
    wait_until_async(
        PATIENCE,
        || async {
            reader.is_finished()
                || admin
                    .describe_group("pending-group")
                    .await
                    .is_ok_and(|g| g.state == "Stable" && g.members.len() == 1)
        },
        || "the member joined".to_string(),
    )
    .await;
    producer.commit_transaction().await.unwrap();
    let first = reader.await.unwrap();
    assert_eq!(
        first.offset, 7,
        "started at the offset committed with the transaction"
    );
}
