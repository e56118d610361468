//! DescribeCluster, DescribeLogDirs and OffsetDelete through the real
//! binary: the Kafka wire (encoded by the `kafka-protocol` oracle, not our
//! codec) and the CLI (`topic describe` sizes, `group delete-offsets`).
//! Not confluent-kafka: its `describe_cluster()` sends Metadata (librdkafka
//! builds the answer from it), and it has no `delete_consumer_group_offsets`,
//! so neither reaches these APIs. The cluster describes this one broker as
//! its own controller and refuses a controllers' listing as Kafka's broker
//! listeners do; partition sizes grow with produced data; a group's
//! offsets are kept while a member subscribes to their topic and deleted
//! for good (across restarts) once the group is empty.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use bytes::{Bytes, BytesMut};
use common::canary::{create_topic, produce_batches};
use common::wire::WireClient;
use common::BrokerProcess;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolSubscription, DescribeClusterRequest, DescribeClusterResponse,
    DescribeLogDirsRequest, DescribeLogDirsResponse, GroupId, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_GROUP_ID: i16 = 24;
const GROUP_ID_NOT_FOUND: i16 = 69;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn name(topic: &str) -> TopicName {
    TopicName(s(topic))
}

fn group(id: &str) -> GroupId {
    GroupId(s(id))
}

// ---- DescribeCluster ----

fn describe_cluster(
    client: &mut WireClient,
    version: i16,
    endpoint_type: i8,
    operations: bool,
) -> DescribeClusterResponse {
    let request = DescribeClusterRequest::default()
        .with_include_cluster_authorized_operations(operations)
        .with_endpoint_type(endpoint_type);
    client
        .call(ApiKey::DescribeCluster, version, &request)
        .unwrap()
}

#[test]
fn given_broker_when_described_then_it_is_the_one_broker_and_the_controller_and_controllers_are_refused_as_kafka_does(
) {
    let broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    for version in 0..=1 {
        let response = describe_cluster(&mut client, version, 1, false);
        assert_eq!(response.error_code, 0, "v{version}: {response:?}");
        assert!(!response.cluster_id.is_empty(), "v{version}");
        assert_eq!(response.controller_id.0, 0, "v{version}: this broker");
        assert_eq!(response.brokers.len(), 1, "v{version}");
        let me = &response.brokers[0];
        assert_eq!(me.broker_id.0, 0);
        assert_eq!(me.host.as_str(), broker.addr.ip().to_string());
        assert_eq!(me.port, i32::from(broker.addr.port()));
        assert_eq!(me.rack, None);
        assert_eq!(
            response.cluster_authorized_operations,
            i32::MIN,
            "not requested"
        );
    }
    let asked = describe_cluster(&mut client, 1, 1, true);
    assert_ne!(asked.cluster_authorized_operations, i32::MIN);

    let controllers = describe_cluster(&mut client, 1, 2, false);
    assert_eq!(controllers.error_code, MISMATCHED_ENDPOINT_TYPE);
    assert!(controllers.brokers.is_empty());
    assert!(controllers
        .error_message
        .as_ref()
        .is_some_and(|m| m.contains("endpoint of type BROKER")));
    for unknown in [0, 3] {
        let refused = describe_cluster(&mut client, 1, unknown, false);
        assert_eq!(
            refused.error_code, UNSUPPORTED_ENDPOINT_TYPE,
            "type {unknown}"
        );
    }
    // The connection is still usable.
    assert_eq!(describe_cluster(&mut client, 1, 1, false).error_code, 0);
}

// ---- DescribeLogDirs ----

fn describe_log_dirs(
    client: &mut WireClient,
    version: i16,
    topics: Option<&[(&str, &[i32])]>,
) -> DescribeLogDirsResponse {
    let topics = topics.map(|topics| {
        topics
            .iter()
            .map(|(topic, partitions)| {
                DescribableLogDirTopic::default()
                    .with_topic(name(topic))
                    .with_partitions(partitions.to_vec())
            })
            .collect()
    });
    let request = DescribeLogDirsRequest::default().with_topics(topics);
    client
        .call(ApiKey::DescribeLogDirs, version, &request)
        .unwrap()
}

/// (partition, size) of `topic` in the one log dir.
fn sizes(response: &DescribeLogDirsResponse, topic: &str) -> Vec<(i32, i64)> {
    assert_eq!(response.results.len(), 1, "{response:?}");
    let dir = &response.results[0];
    assert_eq!(dir.error_code, 0);
    let mut found: Vec<(i32, i64)> = dir
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            assert_eq!(p.offset_lag, 0);
            assert!(!p.is_future_key);
            (p.partition_index, p.partition_size)
        })
        .collect();
    found.sort_unstable();
    found
}

#[test]
fn given_produced_records_when_log_dirs_are_described_then_sizes_grow_and_topic_describe_shows_them(
) {
    let broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "sized", 2), 0);

    let before = describe_log_dirs(&mut client, 4, Some(&[("sized", &[0, 1, 7])]));
    assert_eq!(before.error_code, 0);
    let dir = &before.results[0];
    let data_dir = std::fs::canonicalize(&broker.data_dir).unwrap();
    assert_eq!(
        std::fs::canonicalize(dir.log_dir.as_str()).unwrap(),
        data_dir,
        "the log dir is the data directory"
    );
    assert!(std::path::Path::new(dir.log_dir.as_str()).is_absolute());
    assert!(dir.total_bytes > 0 && (0..=dir.total_bytes).contains(&dir.usable_bytes));
    assert_eq!(
        sizes(&before, "sized"),
        vec![(0, 0), (1, 0)],
        "empty partitions; an unknown partition is left out"
    );

    produce_batches(&mut client, "sized", 0, 3);
    let after = describe_log_dirs(&mut client, 4, Some(&[("sized", &[0, 1])]));
    let grown = sizes(&after, "sized");
    assert!(grown[0].1 > 0, "{grown:?}");
    assert_eq!(grown[1], (1, 0), "partition 1 got nothing");
    let on_disk: u64 = std::fs::read_dir(broker.data_dir.join("sized-0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(
        u64::try_from(grown[0].1).unwrap() <= on_disk,
        "the written bytes fit in the segment files ({} > {on_disk})",
        grown[0].1
    );

    produce_batches(&mut client, "sized", 0, 2);
    // v1 (no volume sizes) and null topics (every partition) agree.
    let all = describe_log_dirs(&mut client, 1, None);
    let larger = sizes(&all, "sized");
    assert!(larger[0].1 > grown[0].1, "{larger:?} after {grown:?}");
    assert_eq!(all.results[0].total_bytes, -1, "v1 has no volume sizes");
    assert!(
        all.results[0]
            .topics
            .iter()
            .any(|t| t.name.0.as_str() == "__consumer_offsets"),
        "null lists internal topics too"
    );
    assert!(
        sizes(
            &describe_log_dirs(&mut client, 2, Some(&[("absent", &[0])])),
            "absent"
        )
        .is_empty(),
        "an unknown topic is left out"
    );

    let described = common::cli_json(&common::sediment_cli(
        &broker,
        &["--output", "json", "topic", "describe", "sized"],
    ));
    let partitions = described["partitions"].as_array().unwrap();
    assert_eq!(partitions[0]["size_bytes"], larger[0].1, "{described}");
    assert_eq!(partitions[1]["size_bytes"], 0, "{described}");

    let table = common::sediment_cli(&broker, &["topic", "describe", "sized"]);
    assert!(table.status.success(), "{table:?}");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("SIZE (BYTES)"), "{text}");
    assert!(text.contains(&larger[0].1.to_string()), "{text}");
}

// ---- OffsetDelete ----

/// Consumer-protocol metadata (version 1) subscribing to `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&1i16.to_be_bytes());
    ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| s(t)).collect())
        .encode(&mut buf, 1)
        .unwrap();
    buf.freeze()
}

/// A one-member Stable group subscribed to `topics` (JoinGroup v3 joins at
/// once); returns (member id, generation).
fn stable_member(client: &mut WireClient, group_id: &str, topics: &[&str]) -> (String, i32) {
    let join = JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(s(""))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(subscription(topics))]);
    let joined: JoinGroupResponse = client.call(ApiKey::JoinGroup, 3, &join).unwrap();
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let member = joined.member_id.to_string();
    let sync = SyncGroupRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id(joined.generation_id)
        .with_member_id(s(&member))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(Bytes::new())]);
    let synced: SyncGroupResponse = client.call(ApiKey::SyncGroup, 3, &sync).unwrap();
    assert_eq!(synced.error_code, 0, "{synced:?}");
    (member, joined.generation_id)
}

fn leave(client: &mut WireClient, group_id: &str, member: &str) {
    let request = LeaveGroupRequest::default()
        .with_group_id(group(group_id))
        .with_members(vec![MemberIdentity::default().with_member_id(s(member))]);
    let left: LeaveGroupResponse = client.call(ApiKey::LeaveGroup, 3, &request).unwrap();
    assert_eq!(left.error_code, 0, "{left:?}");
}

/// Commits `offset` for each (topic, partition); all must succeed.
fn commit(
    client: &mut WireClient,
    group_id: &str,
    member: &str,
    generation: i32,
    offsets: &[(&str, i32, i64)],
) {
    let topics = offsets
        .iter()
        .map(|(topic, partition, offset)| {
            OffsetCommitRequestTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(*partition)
                    .with_committed_offset(*offset)])
        })
        .collect();
    let request = OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(topics);
    let response: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 8, &request).unwrap();
    for topic in &response.topics {
        for p in &topic.partitions {
            assert_eq!(p.error_code, 0, "commit {topic:?}");
        }
    }
}

/// The committed offset of one partition (-1: none).
fn committed(client: &mut WireClient, group_id: &str, topic: &str, partition: i32) -> i64 {
    let request = OffsetFetchRequest::default()
        .with_group_id(group(group_id))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(name(topic))
            .with_partition_indexes(vec![partition])]));
    let response: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, 7, &request).unwrap();
    assert_eq!(response.error_code, 0);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.committed_offset
}

/// OffsetDelete v0: (group error, [(topic, partition, error)]).
fn offset_delete(
    client: &mut WireClient,
    group_id: &str,
    partitions: &[(&str, &[i32])],
) -> (i16, Vec<(String, i32, i16)>) {
    let request = OffsetDeleteRequest::default()
        .with_group_id(group(group_id))
        .with_topics(
            partitions
                .iter()
                .map(|(topic, indexes)| {
                    OffsetDeleteRequestTopic::default()
                        .with_name(name(topic))
                        .with_partitions(
                            indexes
                                .iter()
                                .map(|p| {
                                    OffsetDeleteRequestPartition::default().with_partition_index(*p)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let response: OffsetDeleteResponse = client.call(ApiKey::OffsetDelete, 0, &request).unwrap();
    let results = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index, p.error_code))
        })
        .collect();
    (response.error_code, results)
}

#[test]
fn given_subscribed_member_then_offset_delete_is_refused_and_once_empty_offsets_are_deleted_for_good(
) {
    let mut broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "watched", 2), 0);
    assert_eq!(create_topic(&mut client, "other", 1), 0);

    let (member, generation) = stable_member(&mut client, "readers", &["watched"]);
    commit(
        &mut client,
        "readers",
        &member,
        generation,
        &[("watched", 0, 5), ("watched", 1, 6), ("other", 0, 7)],
    );

    // The member subscribes to `watched`: its offsets stay; `other` goes.
    let (code, results) = offset_delete(
        &mut client,
        "readers",
        &[("watched", &[0]), ("other", &[0]), ("absent", &[0])],
    );
    assert_eq!(code, 0);
    assert_eq!(
        results,
        vec![
            ("watched".to_string(), 0, GROUP_SUBSCRIBED_TO_TOPIC),
            ("other".to_string(), 0, 0),
            ("absent".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    assert_eq!(committed(&mut client, "readers", "watched", 0), 5);
    assert_eq!(committed(&mut client, "readers", "other", 0), -1);
    let refused = common::sediment_cli(
        &broker,
        &["group", "delete-offsets", "readers", "--topic", "watched"],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("code 86"), "{stderr}");
    assert_eq!(committed(&mut client, "readers", "watched", 0), 5);

    // Unknown and invalid groups are group-level errors.
    assert_eq!(
        offset_delete(&mut client, "nobody", &[("watched", &[0])]).0,
        GROUP_ID_NOT_FOUND
    );
    assert_eq!(
        offset_delete(&mut client, "", &[("watched", &[0])]).0,
        INVALID_GROUP_ID
    );

    // Once the group is Empty, the CLI deletes one partition's offset...
    leave(&mut client, "readers", &member);
    let deleted = common::cli_json(&common::sediment_cli(
        &broker,
        &[
            "--output",
            "json",
            "group",
            "delete-offsets",
            "readers",
            "--topic",
            "watched",
            "--partition",
            "0",
        ],
    ));
    assert_eq!(deleted["partitions"], serde_json::json!([0]), "{deleted}");
    assert_eq!(committed(&mut client, "readers", "watched", 0), -1);
    assert_eq!(committed(&mut client, "readers", "watched", 1), 6);

    // ... and the deletion survives kill -9 and a clean restart.
    broker.restart();
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(committed(&mut client, "readers", "watched", 0), -1);
    assert_eq!(committed(&mut client, "readers", "other", 0), -1);
    assert_eq!(committed(&mut client, "readers", "watched", 1), 6);
    assert_eq!(broker.terminate(), Some(0), "clean stop");
    broker.restart();
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(committed(&mut client, "readers", "watched", 0), -1);

    // Every partition of the topic, from the table form.
    let table = common::sediment_cli(
        &broker,
        &["group", "delete-offsets", "readers", "--topic", "watched"],
    );
    assert!(table.status.success(), "{table:?}");
    assert!(String::from_utf8_lossy(&table.stdout).contains("[0, 1]"));
    assert_eq!(committed(&mut client, "readers", "watched", 1), -1);
}
