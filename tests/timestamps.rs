//! Timestamps end to end against the real binary (DESIGN §3, KIP-937): a
//! CreateTime batch too far in the future is refused with INVALID_TIMESTAMP
//! for its partition only, and a LogAppendTime topic answers Produce with the
//! broker's append time and stores batches stamped with it under a valid CRC.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::process::Command;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sediment_broker::storage::batch::BatchHeader;
use sediment_broker::storage::test_batches::batch_with_records;

use common::canary::{create_topic, fetch, latest_offset, now_ms};
use common::wire::WireClient;
use common::BrokerProcess;

const INVALID_TIMESTAMP: i16 = 32;
const HOUR_MS: i64 = 3_600_000;
/// DescribeConfigs config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Produces one record set per partition of `topic` in a single request
/// (acks=-1, v9) and returns the partition responses in order.
fn produce(
    client: &mut WireClient,
    topic: &str,
    sets: Vec<(i32, Vec<u8>)>,
) -> Vec<PartitionProduceResponse> {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text(topic)))
            .with_partition_data(
                sets.into_iter()
                    .map(|(partition, records)| {
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(Bytes::from(records)))
                    })
                    .collect(),
            )]);
    let response: ProduceResponse = client
        .call(ApiKey::Produce, 9, &request)
        .expect("Produce round trip");
    response
        .responses
        .into_iter()
        .next()
        .unwrap()
        .partition_responses
}

#[test]
fn given_create_time_2h_in_future_when_produced_then_invalid_timestamp_and_nothing_appended() {
    let broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "future", 2), 0);

    let responses = produce(
        &mut client,
        "future",
        vec![
            (0, batch_with_records(3, 20, now_ms() + 2 * HOUR_MS)),
            (1, batch_with_records(3, 20, now_ms())),
        ],
    );
    assert_eq!(responses[0].error_code, INVALID_TIMESTAMP);
    assert_eq!(responses[0].base_offset, -1);
    let message = responses[0].error_message.as_ref().map(|m| m.to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("message.timestamp.after.max.ms")),
        "{message:?}"
    );
    assert_eq!(
        latest_offset(&mut client, "future", 0),
        (0, 0),
        "nothing appended"
    );
    assert_eq!(
        responses[1].error_code, 0,
        "the other partition is unaffected"
    );
    assert_eq!(responses[1].log_append_time_ms, -1, "CreateTime topic");
    assert_eq!(latest_offset(&mut client, "future", 1), (0, 3));
}

#[test]
fn given_log_append_time_topic_when_produced_then_broker_time_stamped_and_log_verifies() {
    let mut broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(text("stamped")))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(text("message.timestamp.type"))
                .with_value(Some(text("LogAppendTime")))])]);
    let created: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &create).unwrap();
    assert_eq!(created.topics[0].error_code, 0, "{:?}", created.topics[0]);

    let describe =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text("stamped"))
            .with_configuration_keys(None)]);
    let described: DescribeConfigsResponse =
        client.call(ApiKey::DescribeConfigs, 4, &describe).unwrap();
    let config = |name: &str| {
        described.results[0]
            .configs
            .iter()
            .find(|c| c.name.as_str() == name)
            .map(|c| (c.value.as_ref().unwrap().to_string(), c.config_source))
            .unwrap_or_else(|| panic!("{name} not described"))
    };
    assert_eq!(
        config("message.timestamp.type"),
        ("LogAppendTime".to_string(), SOURCE_TOPIC)
    );
    assert_eq!(
        config("message.timestamp.after.max.ms"),
        ("3600000".to_string(), SOURCE_DEFAULT)
    );
    assert_eq!(
        config("message.timestamp.before.max.ms"),
        ("9223372036854775807".to_string(), SOURCE_DEFAULT)
    );

    // A client timestamp far in the future does not matter on this topic.
    let sent = batch_with_records(4, 30, now_ms() + 48 * HOUR_MS);
    let before = now_ms();
    let responses = produce(&mut client, "stamped", vec![(0, sent.clone())]);
    let after = now_ms();
    assert_eq!(responses[0].error_code, 0);
    let append_time = responses[0].log_append_time_ms;
    assert!(
        (before..=after).contains(&append_time),
        "log_append_time_ms {append_time} is the broker's clock during the produce [{before}, {after}]"
    );

    let fetched = fetch(&mut client, "stamped", 0, 0, 1 << 20);
    assert_eq!(fetched.error_code, 0);
    let header = BatchHeader::parse_verified(&fetched.records).expect("stored CRC is valid");
    assert!(header.is_log_append_time());
    assert_eq!(header.max_timestamp(), append_time);
    assert_eq!(header.base_offset(), 0);
    assert_eq!(
        &fetched.records[43..header.total_len()],
        &sent[43..],
        "records stored as sent"
    );

    assert_eq!(broker.terminate(), Some(0));
    let verify = Command::new(env!("CARGO_BIN_EXE_sediment"))
        .args(["log", "verify"])
        .arg(&broker.data_dir)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "log verify failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
