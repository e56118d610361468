//! Metadata v10+ looks topics up by id (what the Java AdminClient's
//! `describeTopics(TopicCollection.ofTopicIds(..))` sends: a topic entry
//! with the id and an empty name; a null name is valid too). Requests are encoded by the `kafka-protocol`
//! oracle, not our codec.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::canary::create_topic;
use common::wire::WireClient;
use common::BrokerProcess;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

const UNKNOWN_TOPIC_ID: i16 = 100;

fn metadata(
    client: &mut WireClient,
    version: i16,
    topics: Vec<MetadataRequestTopic>,
) -> MetadataResponse {
    let request = MetadataRequest::default()
        .with_topics(Some(topics))
        .with_allow_auto_topic_creation(false);
    client.call(ApiKey::Metadata, version, &request).unwrap()
}

#[test]
fn given_a_topic_when_metadata_asks_by_id_only_then_it_is_described_and_an_unknown_id_is_refused() {
    let broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "by-id", 3), 0);

    let by_name = metadata(
        &mut client,
        12,
        vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("by-id"))))],
    );
    let id = by_name.topics[0].topic_id;
    assert!(!id.is_nil(), "Metadata v12 reports the topic id");

    // A null name, or an empty one as the Java AdminClient sends: the id decides.
    for (version, name) in [
        (10, None),
        (11, None),
        (12, None),
        (10, Some("")),
        (12, Some("")),
    ] {
        let by_id = metadata(
            &mut client,
            version,
            vec![MetadataRequestTopic::default()
                .with_name(name.map(|n: &str| TopicName(StrBytes::from_string(n.to_string()))))
                .with_topic_id(id)],
        );
        let topic = &by_id.topics[0];
        assert_eq!(topic.error_code, 0, "v{version}: {topic:?}");
        assert_eq!(
            topic.name.as_ref().map(|n| n.0.as_str()),
            Some("by-id"),
            "v{version}"
        );
        assert_eq!(topic.topic_id, id, "v{version}");
        assert_eq!(topic.partitions.len(), 3, "v{version}");
    }

    let unknown = uuid::Uuid::from_u128(0x5ed1_6e17);
    let answer = metadata(
        &mut client,
        12,
        vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(""))))
            .with_topic_id(unknown)],
    );
    assert_eq!(answer.topics[0].error_code, UNKNOWN_TOPIC_ID);
    assert_eq!(answer.topics[0].topic_id, unknown);
}
