//! The transactional APIs against the real binary over TCP, spoken by the
//! `kafka-protocol` oracle client with hand-built requests: what a
//! misbehaving or fenced client gets (Kafka's error codes, nothing changed),
//! that a retried transactional Produce is stored once, and that the admin
//! APIs show an ongoing transaction.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use bytes::Bytes;
use common::canary::{create_topic, latest_offset};
use common::wire::WireClient;
use common::BrokerProcess;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, ApiKey, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    InitProducerIdRequest, InitProducerIdResponse, JoinGroupRequest, JoinGroupResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, SyncGroupRequest,
    SyncGroupResponse, TopicName, TransactionalId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;
use sediment_broker::storage::encode::{encode_marker, TxnMarker};
use sediment_broker::storage::test_batches::{batch_with_records, transactional_batch};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const INVALID_RECORD: i16 = 87;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

/// The broker under test: transactions may last at most 60 s.
fn start() -> (BrokerProcess, WireClient) {
    let broker = BrokerProcess::start(&["--transaction-max-timeout-ms", "60000"]);
    let client = WireClient::connect(broker.addr).unwrap();
    (broker, client)
}

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// InitProducerId v4 for a transactional id.
fn init(client: &mut WireClient, id: &str, timeout_ms: i32) -> InitProducerIdResponse {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(txn_id(id)))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    client.call(ApiKey::InitProducerId, 4, &request).unwrap()
}

/// InitProducerId that must succeed: (producer id, epoch).
fn init_ok(client: &mut WireClient, id: &str) -> (i64, i16) {
    let response = init(client, id, 30_000);
    assert_eq!(response.error_code, 0, "InitProducerId {id}");
    (response.producer_id.0, response.producer_epoch)
}

/// AddPartitionsToTxn v3: every (topic, partition, error code) answered.
fn add_partitions(
    client: &mut WireClient,
    id: &str,
    (producer_id, epoch): (i64, i16),
    topics: &[(&str, &[i32])],
) -> Vec<(String, i32, i16)> {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id(id))
        .with_v3_and_below_producer_id(ProducerId(producer_id))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    AddPartitionsToTxnTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(partitions.to_vec())
                })
                .collect(),
        );
    let response: AddPartitionsToTxnResponse = client
        .call(ApiKey::AddPartitionsToTxn, 3, &request)
        .unwrap();
    let mut codes: Vec<(String, i32, i16)> = response
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|topic| {
            topic.results_by_partition.iter().map(|p| {
                (
                    topic.name.0.to_string(),
                    p.partition_index,
                    p.partition_error_code,
                )
            })
        })
        .collect();
    codes.sort();
    codes
}

/// EndTxn v3: the error code.
fn end_txn(
    client: &mut WireClient,
    id: &str,
    (producer_id, epoch): (i64, i16),
    commit: bool,
) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(txn_id(id))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    let response: EndTxnResponse = client.call(ApiKey::EndTxn, 3, &request).unwrap();
    response.error_code
}

fn describe(client: &mut WireClient, ids: &[&str]) -> DescribeTransactionsResponse {
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(ids.iter().map(|id| txn_id(id)).collect());
    client
        .call(ApiKey::DescribeTransactions, 0, &request)
        .unwrap()
}

#[test]
fn given_an_unknown_transactional_id_when_it_ends_or_adds_then_invalid_producer_id_mapping() {
    let (_broker, mut client) = start();
    assert_eq!(create_topic(&mut client, "t", 1), 0);
    assert_eq!(
        end_txn(&mut client, "never-initialised", (1000, 0), true),
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(
        add_partitions(&mut client, "never-initialised", (1000, 0), &[("t", &[0])]),
        vec![("t".to_string(), 0, INVALID_PRODUCER_ID_MAPPING)]
    );
    // A known transactional id with a producer id that does not serve it.
    let (producer_id, epoch) = init_ok(&mut client, "known");
    assert_eq!(
        end_txn(&mut client, "known", (producer_id + 1, epoch), true),
        INVALID_PRODUCER_ID_MAPPING
    );
    let described = describe(&mut client, &["never-initialised"]);
    assert_eq!(
        described.transaction_states[0].error_code, TRANSACTIONAL_ID_NOT_FOUND,
        "the refusals created nothing"
    );
}

#[test]
fn given_an_unknown_partition_when_added_to_a_transaction_then_it_is_unknown_the_others_not_attempted_and_nothing_is_added(
) {
    let (_broker, mut client) = start();
    assert_eq!(create_topic(&mut client, "known", 2), 0);
    let producer = init_ok(&mut client, "tx-add");
    let codes = add_partitions(
        &mut client,
        "tx-add",
        producer,
        &[("known", &[0, 1, 7]), ("missing", &[0])],
    );
    assert_eq!(
        codes,
        vec![
            ("known".to_string(), 0, OPERATION_NOT_ATTEMPTED),
            ("known".to_string(), 1, OPERATION_NOT_ATTEMPTED),
            ("known".to_string(), 7, UNKNOWN_TOPIC_OR_PARTITION),
            ("missing".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    let described = describe(&mut client, &["tx-add"]);
    let state = &described.transaction_states[0];
    assert_eq!(state.error_code, 0);
    assert_eq!(state.transaction_state.as_str(), "Empty");
    assert!(state.topics.is_empty(), "{:?}", state.topics);
    assert_eq!(
        end_txn(&mut client, "tx-add", producer, true),
        INVALID_TXN_STATE,
        "nothing was added, so no transaction is ongoing"
    );
    assert_eq!(
        latest_offset(&mut client, "missing", 0).0,
        UNKNOWN_TOPIC_OR_PARTITION,
        "naming a topic in AddPartitionsToTxn does not create it"
    );
    // The same request without the unknown partitions is accepted.
    let codes = add_partitions(&mut client, "tx-add", producer, &[("known", &[0, 1])]);
    assert!(codes.iter().all(|(_, _, code)| *code == 0), "{codes:?}");
    assert_eq!(end_txn(&mut client, "tx-add", producer, true), 0);
}

#[test]
fn given_a_transaction_timeout_above_the_brokers_maximum_when_init_producer_id_then_invalid_transaction_timeout(
) {
    let (_broker, mut client) = start();
    for timeout_ms in [60_001, i32::MAX, 0, -1] {
        let response = init(&mut client, "tx-timeout", timeout_ms);
        assert_eq!(
            response.error_code, INVALID_TRANSACTION_TIMEOUT,
            "timeout {timeout_ms}"
        );
        assert_eq!(response.producer_id.0, -1);
    }
    let described = describe(&mut client, &["tx-timeout"]);
    assert_eq!(
        described.transaction_states[0].error_code,
        TRANSACTIONAL_ID_NOT_FOUND
    );
    let response = init(&mut client, "tx-timeout", 60_000);
    assert_eq!(response.error_code, 0, "the maximum itself is allowed");
    assert_eq!(response.producer_epoch, 0);
}

#[test]
fn given_a_control_batch_when_a_client_produces_it_then_invalid_record_and_nothing_appended() {
    let (_broker, mut client) = start();
    assert_eq!(create_topic(&mut client, "ctl", 1), 0);
    let (producer_id, epoch) = init_ok(&mut client, "tx-ctl");
    assert_eq!(
        add_partitions(
            &mut client,
            "tx-ctl",
            (producer_id, epoch),
            &[("ctl", &[0])]
        ),
        vec![("ctl".to_string(), 0, 0)]
    );
    // A commit marker as the coordinator would write it, sent by a client.
    let forged = encode_marker(
        TxnMarker {
            producer_id,
            producer_epoch: epoch,
            commit: true,
            coordinator_epoch: 0,
        },
        1_000,
    )
    .unwrap();
    let (code, _) = client.produce("ctl", 0, Bytes::from(forged)).unwrap();
    assert_eq!(code, INVALID_RECORD);
    let (code, _) = client
        .produce("ctl", 0, Bytes::from(transactional_batch(1, -1, -1, -1, 1)))
        .unwrap();
    assert_eq!(
        code, INVALID_RECORD,
        "a transactional batch needs a producer id"
    );
    assert_eq!(
        latest_offset(&mut client, "ctl", 0),
        (0, 0),
        "nothing appended"
    );
    let described = describe(&mut client, &["tx-ctl"]);
    assert_eq!(
        described.transaction_states[0].transaction_state.as_str(),
        "Ongoing",
        "a forged marker ends nothing"
    );
    let ok = client
        .produce("ctl", 0, Bytes::from(batch_with_records(2, 8, 1_000)))
        .unwrap();
    assert_eq!(ok, (0, 0), "the partition still takes valid batches");
}

#[test]
fn given_a_transactional_id_when_find_coordinator_asks_with_key_type_1_then_this_broker_answers() {
    let (broker, mut client) = start();
    let request = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![
            StrBytes::from_static_str("tx-1"),
            StrBytes::from_static_str("tx-2"),
        ]);
    let response: FindCoordinatorResponse =
        client.call(ApiKey::FindCoordinator, 4, &request).unwrap();
    assert_eq!(response.coordinators.len(), 2);
    for (coordinator, key) in response.coordinators.iter().zip(["tx-1", "tx-2"]) {
        assert_eq!(coordinator.key.as_str(), key);
        assert_eq!(coordinator.error_code, 0);
        assert_eq!(coordinator.node_id.0, 0);
        assert_eq!(coordinator.port, i32::from(broker.addr.port()));
        assert_eq!(coordinator.host.as_str(), broker.addr.ip().to_string());
    }
    let request = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_key(StrBytes::from_static_str("tx-1"));
    let response: FindCoordinatorResponse =
        client.call(ApiKey::FindCoordinator, 3, &request).unwrap();
    assert_eq!(response.error_code, 0);
    assert_eq!(response.node_id.0, 0);
    assert_eq!(response.port, i32::from(broker.addr.port()));
}

#[test]
fn given_a_transactional_produce_when_retried_then_stored_once_and_both_answers_carry_its_offset() {
    let (_broker, mut client) = start();
    assert_eq!(create_topic(&mut client, "dup", 1), 0);
    client
        .produce("dup", 0, Bytes::from(batch_with_records(2, 8, 1_000)))
        .unwrap();
    let producer = init_ok(&mut client, "tx-dup");
    assert_eq!(
        add_partitions(&mut client, "tx-dup", producer, &[("dup", &[0])]),
        vec![("dup".to_string(), 0, 0)]
    );
    let batch = Bytes::from(transactional_batch(3, producer.0, producer.1, 0, 7));
    let first = client.produce("dup", 0, batch.clone()).unwrap();
    let retry = client.produce("dup", 0, batch).unwrap();
    assert_eq!(first, (0, 2));
    assert_eq!(
        retry, first,
        "the retry is answered with the original offset"
    );
    assert_eq!(latest_offset(&mut client, "dup", 0), (0, 5), "stored once");
    assert_eq!(end_txn(&mut client, "tx-dup", producer, true), 0);
    assert_eq!(
        latest_offset(&mut client, "dup", 0),
        (0, 6),
        "the commit marker follows the batch"
    );
}

#[test]
fn given_a_zombie_whose_epoch_was_bumped_when_it_adds_produces_or_ends_then_fenced_and_nothing_changes(
) {
    let (_broker, mut client) = start();
    assert_eq!(create_topic(&mut client, "z", 1), 0);
    let zombie = init_ok(&mut client, "tx-z");
    assert_eq!(zombie.1, 0);
    assert_eq!(
        add_partitions(&mut client, "tx-z", zombie, &[("z", &[0])]),
        vec![("z".to_string(), 0, 0)]
    );
    let (code, _) = client
        .produce(
            "z",
            0,
            Bytes::from(transactional_batch(3, zombie.0, zombie.1, 0, 1)),
        )
        .unwrap();
    assert_eq!(code, 0);

    // A new instance: the ongoing transaction is aborted with the bumped epoch.
    let fresh = init_ok(&mut client, "tx-z");
    assert_eq!(fresh, (zombie.0, 1));
    assert_eq!(
        latest_offset(&mut client, "z", 0),
        (0, 4),
        "the abort marker was written"
    );

    assert_eq!(
        add_partitions(&mut client, "tx-z", zombie, &[("z", &[0])]),
        vec![("z".to_string(), 0, PRODUCER_FENCED)]
    );
    let (code, _) = client
        .produce(
            "z",
            0,
            Bytes::from(transactional_batch(1, zombie.0, zombie.1, 3, 2)),
        )
        .unwrap();
    assert_eq!(code, INVALID_PRODUCER_EPOCH);
    let (code, _) = client
        .produce(
            "z",
            0,
            Bytes::from(transactional_batch(1, zombie.0, zombie.1, 0, 3)),
        )
        .unwrap();
    assert_eq!(
        code, INVALID_PRODUCER_EPOCH,
        "not even as a new transaction"
    );
    assert_eq!(end_txn(&mut client, "tx-z", zombie, true), PRODUCER_FENCED);
    assert_eq!(
        latest_offset(&mut client, "z", 0),
        (0, 4),
        "nothing appended"
    );
    let described = describe(&mut client, &["tx-z"]);
    let state = &described.transaction_states[0];
    assert_eq!(
        (state.transaction_state.as_str(), state.producer_epoch),
        ("Empty", 1)
    );

    // The new instance works.
    assert_eq!(
        add_partitions(&mut client, "tx-z", fresh, &[("z", &[0])]),
        vec![("z".to_string(), 0, 0)]
    );
    let appended = client
        .produce(
            "z",
            0,
            Bytes::from(transactional_batch(1, fresh.0, fresh.1, 0, 4)),
        )
        .unwrap();
    assert_eq!(appended, (0, 4));
    assert_eq!(end_txn(&mut client, "tx-z", fresh, true), 0);
    assert_eq!(latest_offset(&mut client, "z", 0), (0, 6));
}

#[test]
fn given_an_ongoing_transaction_when_listed_and_described_then_its_state_and_partitions_show() {
    let (_broker, mut client) = start();
    assert_eq!(create_topic(&mut client, "l", 2), 0);
    assert_eq!(create_topic(&mut client, "m", 1), 0);
    let producer = init_ok(&mut client, "tx-list");
    let idle = init_ok(&mut client, "tx-idle");
    let codes = add_partitions(
        &mut client,
        "tx-list",
        producer,
        &[("l", &[1, 0]), ("m", &[0])],
    );
    assert!(codes.iter().all(|(_, _, code)| *code == 0), "{codes:?}");

    let list = |client: &mut WireClient, states: &[&'static str], producers: &[i64]| {
        let request = ListTransactionsRequest::default()
            .with_state_filters(
                states
                    .iter()
                    .map(|s| StrBytes::from_static_str(s))
                    .collect(),
            )
            .with_producer_id_filters(producers.iter().map(|p| ProducerId(*p)).collect())
            .with_duration_filter(-1);
        let response: ListTransactionsResponse =
            client.call(ApiKey::ListTransactions, 1, &request).unwrap();
        assert_eq!(response.error_code, 0);
        let mut listed: Vec<(String, i64, String)> = response
            .transaction_states
            .iter()
            .map(|t| {
                (
                    t.transactional_id.0.to_string(),
                    t.producer_id.0,
                    t.transaction_state.to_string(),
                )
            })
            .collect();
        listed.sort();
        (listed, response.unknown_state_filters)
    };
    let (all, _) = list(&mut client, &[], &[]);
    assert_eq!(
        all,
        vec![
            ("tx-idle".to_string(), idle.0, "Empty".to_string()),
            ("tx-list".to_string(), producer.0, "Ongoing".to_string()),
        ]
    );
    let (ongoing, _) = list(&mut client, &["Ongoing"], &[]);
    assert_eq!(
        ongoing,
        vec![("tx-list".to_string(), producer.0, "Ongoing".to_string())]
    );
    let (by_producer, _) = list(&mut client, &[], &[idle.0]);
    assert_eq!(by_producer.len(), 1);
    assert_eq!(by_producer[0].0, "tx-idle");
    let (none, unknown) = list(&mut client, &["CompleteCommit", "Sleeping"], &[]);
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(
        unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        vec!["Sleeping"]
    );

    let described = describe(&mut client, &["tx-list", "tx-nope"]);
    let state = &described.transaction_states[0];
    assert_eq!(state.error_code, 0);
    assert_eq!(state.transactional_id.0.as_str(), "tx-list");
    assert_eq!(state.transaction_state.as_str(), "Ongoing");
    assert_eq!((state.producer_id.0, state.producer_epoch), producer);
    assert_eq!(state.transaction_timeout_ms, 30_000);
    assert!(state.transaction_start_time_ms > 0);
    let mut topics: Vec<(String, Vec<i32>)> = state
        .topics
        .iter()
        .map(|t| {
            let mut partitions = t.partitions.clone();
            partitions.sort_unstable();
            (t.topic.0.to_string(), partitions)
        })
        .collect();
    topics.sort();
    assert_eq!(
        topics,
        vec![("l".to_string(), vec![0, 1]), ("m".to_string(), vec![0])]
    );
    assert_eq!(
        described.transaction_states[1].error_code,
        TRANSACTIONAL_ID_NOT_FOUND
    );

    assert_eq!(end_txn(&mut client, "tx-list", producer, false), 0);
    let described = describe(&mut client, &["tx-list"]);
    let state = &described.transaction_states[0];
    assert_eq!(state.transaction_state.as_str(), "CompleteAbort");
    assert!(state.topics.is_empty());
    assert_eq!(
        latest_offset(&mut client, "l", 0),
        (0, 1),
        "an abort marker per partition"
    );
    assert_eq!(latest_offset(&mut client, "m", 0), (0, 1));
}

/// A group with one member (JoinGroup v3 and SyncGroup v3 as its leader):
/// (member id, generation).
fn join_group(client: &mut WireClient, group: &str) -> (String, i32) {
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(StrBytes::from_static_str(""))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))]);
    let joined: JoinGroupResponse = client.call(ApiKey::JoinGroup, 3, &join).unwrap();
    assert_eq!(joined.error_code, 0, "JoinGroup");
    let member = joined.member_id.to_string();
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(joined.member_id.clone())
            .with_assignment(Bytes::new())]);
    let synced: SyncGroupResponse = client.call(ApiKey::SyncGroup, 3, &sync).unwrap();
    assert_eq!(synced.error_code, 0, "SyncGroup");
    (member, joined.generation_id)
}

/// TxnOffsetCommit v3 of offset 5 of `topic`-0 as `member` of `generation`:
/// the partition's error code.
fn txn_offset_commit(
    client: &mut WireClient,
    id: &str,
    (producer_id, epoch): (i64, i16),
    group: &str,
    (member, generation): (&str, i32),
    topic: &str,
) -> i16 {
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(txn_id(id))
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(5)])]);
    let response: TxnOffsetCommitResponse =
        client.call(ApiKey::TxnOffsetCommit, 3, &request).unwrap();
    response.topics[0].partitions[0].error_code
}

/// KIP-447: a transactional offset commit names the member it is made for;
/// the broker refuses it for a generation the group has moved past or a
/// member it does not know, and accepts it for the current member (or with
/// no generation at all, as older clients send).
#[test]
fn given_a_group_member_when_a_transaction_commits_offsets_for_a_stale_generation_or_unknown_member_then_refused(
) {
    const ILLEGAL_GENERATION: i16 = 22;
    const UNKNOWN_MEMBER_ID: i16 = 25;
    let (_broker, mut client) = start();
    assert_eq!(create_topic(&mut client, "kip447", 1), 0);
    let (member, generation) = join_group(&mut client, "g447");
    let producer = init_ok(&mut client, "t447");
    let add = AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn_id("t447"))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_group_id(GroupId(StrBytes::from_static_str("g447")));
    let added: AddOffsetsToTxnResponse = client.call(ApiKey::AddOffsetsToTxn, 3, &add).unwrap();
    assert_eq!(added.error_code, 0, "AddOffsetsToTxn");
    let commit = |client: &mut WireClient, who: (&str, i32)| {
        txn_offset_commit(client, "t447", producer, "g447", who, "kip447")
    };
    assert_eq!(
        commit(&mut client, (&member, generation + 1)),
        ILLEGAL_GENERATION
    );
    assert_eq!(
        commit(&mut client, ("someone-else", generation)),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(commit(&mut client, (&member, generation)), 0);
    assert_eq!(
        commit(&mut client, ("", -1)),
        0,
        "no generation: not checked"
    );
}
