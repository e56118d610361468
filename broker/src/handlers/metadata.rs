//! Metadata: this broker (at the address of the listener the client came
//! in on), and the topics asked for (all of them for a null list, or an
//! empty list at v0), auto-creating unknown ones when allowed.
//!
//! Authorization, as Kafka: listing all topics shows only those the client
//! may DESCRIBE; a named topic it may not DESCRIBE is
//! TOPIC_AUTHORIZATION_FAILED; auto-creating needs CREATE on the cluster or
//! the topic (without it an unknown topic stays UNKNOWN_TOPIC_OR_PARTITION).

use std::sync::Arc;

use sediment_protocol::messages::metadata::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use sediment_protocol::messages::{MetadataRequest, MetadataResponse};
use sediment_protocol::ErrorCode;

use crate::basics::TopicPartition;
use crate::broker::Broker;
use crate::protocol::errors::{Refusal, ToErrorCode};
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME as CLUSTER};
use crate::session::Session;
use crate::topics::TopicMeta;

/// The Metadata response.
pub fn handle(
    broker: &Arc<Broker>,
    request: MetadataRequest,
    version: i16,
    session: &Session,
) -> MetadataResponse {
    let broker_id = broker.config().broker_id;
    let (host, port) = broker.advertised_to(session.listener);
    let may_describe =
        |name: &str| broker.allows(session, AclOperation::Describe, ResourceType::Topic, name);
    // Before v4 there is no flag and Kafka auto-creates.
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    let topics = if all_topics {
        broker
            .topics()
            .list()
            .into_iter()
            .filter(|meta| may_describe(&meta.name))
            .map(|meta| describe(broker, &meta))
            .collect()
    } else {
        request
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|wanted| {
                // A topic named by id is shown only if it may be described
                // (one named by name was checked before the lookup).
                let described_by_id = |id| {
                    let found = by_id(broker, id);
                    match &found.name {
                        Some(name) if found.error_code == 0 && !may_describe(name) => {
                            MetadataResponseTopic::default()
                                .with_topic_id(found.topic_id)
                                .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                        }
                        _ => found,
                    }
                };
                // v10+: a non-zero id names the topic, whatever the name says
                // (the Java AdminClient sends an empty name with it), as Kafka does.
                if !wanted.topic_id.is_nil() {
                    described_by_id(wanted.topic_id)
                } else {
                    match wanted.name {
                        Some(name) if !may_describe(&name) => MetadataResponseTopic::default()
                            .with_name(Some(name))
                            .with_error_code(ErrorCode::TopicAuthorizationFailed.code()),
                        Some(name) => {
                            let may_create = allow_auto_create
                                && (broker.allows(
                                    session,
                                    AclOperation::Create,
                                    ResourceType::Cluster,
                                    CLUSTER,
                                ) || broker.allows(
                                    session,
                                    AclOperation::Create,
                                    ResourceType::Topic,
                                    &name,
                                ));
                            by_name(broker, name.as_str(), may_create)
                        }
                        None => described_by_id(wanted.topic_id),
                    }
                }
            })
            .collect()
    };
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(broker_id)
            .with_host(host)
            .with_port(port)])
        .with_cluster_id(Some(broker.config().cluster_id.clone()))
        .with_controller_id(broker_id)
        .with_topics(topics)
}

fn by_name(broker: &Arc<Broker>, name: &str, allow_auto_create: bool) -> MetadataResponseTopic {
    let found = if allow_auto_create {
        broker.topic_or_auto_create(name).map_err(Refusal::from)
    } else {
        broker.topics().get(name).ok_or(Refusal::new(
            ErrorCode::UnknownTopicOrPartition,
            name.to_string(),
        ))
    };
    match found {
        Ok(meta) => describe(broker, &meta),
        Err(refusal) => MetadataResponseTopic::default()
            .with_name(Some(String::from(name)))
            .with_error_code(refusal.code),
    }
}

fn by_id(broker: &Arc<Broker>, id: uuid::Uuid) -> MetadataResponseTopic {
    match broker
        .topics()
        .list()
        .into_iter()
        .find(|t| t.id == *id.as_bytes())
    {
        Some(meta) => describe(broker, &meta),
        None => MetadataResponseTopic::default()
            .with_topic_id(id)
            .with_error_code(ErrorCode::UnknownTopicId.code()),
    }
}

fn describe(broker: &Arc<Broker>, meta: &TopicMeta) -> MetadataResponseTopic {
    let broker_id = broker.config().broker_id;
    let partitions = (0..meta.partitions)
        .map(|index| {
            let online = broker
                .logs()
                .get(&TopicPartition::new(meta.name.clone(), index));
            let error_code = match online {
                Ok(Some(_)) => 0,
                Ok(None) => ErrorCode::LeaderNotAvailable.code(),
                Err(e) => e.kafka_error_code(),
            };
            MetadataResponsePartition::default()
                .with_error_code(error_code)
                .with_partition_index(index)
                .with_leader_id(broker_id)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![broker_id])
                .with_isr_nodes(vec![broker_id])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(meta.name.clone()))
        .with_topic_id(uuid::Uuid::from_bytes(meta.id))
        .with_is_internal(false)
        .with_partitions(partitions)
}
