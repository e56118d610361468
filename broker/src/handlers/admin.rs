//! Topic administration and producer ids: CreateTopics, DeleteTopics,
//! DescribeConfigs and InitProducerId.
//!
//! Authorization, as Kafka: CreateTopics needs CREATE on the cluster or the
//! topic; DeleteTopics DELETE on the topic; DescribeConfigs DESCRIBE_CONFIGS
//! on the topic or the cluster; InitProducerId WRITE on the transactional
//! id, or for an idempotent producer IDEMPOTENT_WRITE on the cluster or
//! WRITE on some topic (KIP-679).

use std::collections::BTreeMap;
use std::sync::Arc;

use sediment_protocol::messages::create_topics::{CreatableTopicConfigs, CreatableTopicResult};
use sediment_protocol::messages::delete_topics::DeletableTopicResult;
use sediment_protocol::messages::describe_configs::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use sediment_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, InitProducerIdRequest, InitProducerIdResponse,
};
use sediment_protocol::ErrorCode;

use crate::broker::Broker;
use crate::config::{BrokerConfig, FlushPolicy};
use crate::protocol::errors::{Refusal, ToErrorCode};
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use crate::session::Session;
use crate::topic_config::{ConfigType, TOPIC_CONFIGS};
use crate::topics::TopicMeta;

/// DescribeConfigs resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;
/// DescribeConfigs resource type of a broker.
const RESOURCE_BROKER: i8 = 4;
/// Config source: set on the topic.
const SOURCE_TOPIC: i8 = 1;
/// Config source: from the broker's static configuration.
const SOURCE_STATIC_BROKER: i8 = 4;
/// Config source: Kafka's default.
const SOURCE_DEFAULT: i8 = 5;
/// Config types (DescribeConfigs v3+), from the table's one definition.
const TYPE_BOOLEAN: i8 = ConfigType::Boolean.code();
const TYPE_INT: i8 = ConfigType::Int.code();
const TYPE_LONG: i8 = ConfigType::Long.code();

/// The CreateTopics response.
pub fn create_topics(
    broker: &Arc<Broker>,
    request: CreateTopicsRequest,
    version: i16,
    session: &Session,
) -> CreateTopicsResponse {
    let may_create_any = broker.allows(
        session,
        AclOperation::Create,
        ResourceType::Cluster,
        CLUSTER_RESOURCE_NAME,
    );
    let topics = request
        .topics
        .into_iter()
        .map(|wanted| {
            let name = wanted.name.as_str().to_string();
            let mut result = CreatableTopicResult::default()
                .with_name(wanted.name.clone())
                .with_num_partitions(-1)
                .with_replication_factor(-1);
            let configs: BTreeMap<String, String> = wanted
                .configs
                .iter()
                .filter_map(|c| c.value.as_ref().map(|v| (c.name.as_str().to_string(), v.as_str().to_string())))
                .collect();
            let partitions = match wanted.num_partitions {
                -1 => broker.config().default_partitions,
                n => n,
            };
            let denied = (!may_create_any)
                .then(|| broker.authorize(session, AclOperation::Create, ResourceType::Topic, &name).err())
                .flatten();
            let outcome = if let Some(denied) = denied {
                Err(Refusal::from(denied))
            } else if !matches!(wanted.replication_factor, -1 | 1) {
                Err(Refusal::new(
                    ErrorCode::InvalidReplicationFactor,
                    format!(
                        "replication factor {} is impossible on a single broker; use 1 or -1",
                        wanted.replication_factor
                    ),
                ))
            } else if !wanted.assignments.is_empty() {
                Err(Refusal::new(
                    ErrorCode::InvalidReplicaAssignment,
                    "manual replica assignment is not supported on a single broker",
                ))
            } else {
                broker.create_topic(&name, partitions, &configs, request.validate_only).map_err(Refusal::from)
            };
            match outcome {
                Ok(topic) => {
                    result.topic_id = uuid::Uuid::from_bytes(topic.id);
                    result.num_partitions = topic.partitions;
                    result.replication_factor = 1;
                    if version >= 5 {
                        result.configs = Some(
                            topic_configs(broker, &topic)
                                .into_iter()
                                .map(|entry| {
                                    CreatableTopicConfigs::default()
                                        .with_name(entry.name)
                                        .with_value(Some(entry.value))
                                        .with_config_source(entry.source)
                                })
                                .collect(),
                        );
                    }
                }
                Err(refusal) => {
                    tracing::info!(topic = %name, error = %refusal.message, "topic creation refused");
                    result.error_code = refusal.code;
                    result.error_message = Some(refusal.message);
                }
            }
            result
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// The DeleteTopics response (by name; v6 may also name topics by id).
pub fn delete_topics(
    broker: &Arc<Broker>,
    request: DeleteTopicsRequest,
    session: &Session,
) -> DeleteTopicsResponse {
    let mut names: Vec<(Option<String>, uuid::Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.as_str().to_string()), uuid::Uuid::nil()))
        .collect();
    names.extend(
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.as_str().to_string()), t.topic_id)),
    );
    let responses = names
        .into_iter()
        .map(|(name, id)| {
            let name = name.or_else(|| {
                broker
                    .topics()
                    .list()
                    .into_iter()
                    .find(|t| t.id == *id.as_bytes())
                    .map(|t| t.name)
            });
            let mut result = DeletableTopicResult::default().with_topic_id(id);
            match name {
                None => result.error_code = ErrorCode::UnknownTopicId.code(),
                Some(name) => {
                    result.name = Some(name.clone());
                    let deleted = broker
                        .authorize(session, AclOperation::Delete, ResourceType::Topic, &name)
                        .map_err(Refusal::from)
                        .and_then(|()| broker.delete_topic(&name).map_err(Refusal::from));
                    match deleted {
                        Ok(topic) => result.topic_id = uuid::Uuid::from_bytes(topic.id),
                        Err(refusal) => {
                            result.error_code = refusal.code;
                            result.error_message = Some(refusal.message);
                        }
                    }
                }
            }
            result
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

/// The DescribeConfigs response: topic configs with their source, and the
/// broker's own settings.
pub fn describe_configs(
    broker: &Arc<Broker>,
    request: DescribeConfigsRequest,
    session: &Session,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let mut result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let (acl_type, acl_name) = match resource.resource_type {
                RESOURCE_BROKER => (ResourceType::Cluster, CLUSTER_RESOURCE_NAME),
                _ => (ResourceType::Topic, resource.resource_name.as_str()),
            };
            let denied = broker
                .authorize(session, AclOperation::DescribeConfigs, acl_type, acl_name)
                .err();
            let entries = match (denied, resource.resource_type) {
                (Some(denied), _) => Err(Refusal::from(denied)),
                (None, RESOURCE_TOPIC) => {
                    match broker.topics().get(resource.resource_name.as_str()) {
                        Some(topic) => Ok(topic_configs(broker, &topic)),
                        None => Err(Refusal::new(
                            ErrorCode::UnknownTopicOrPartition,
                            format!("topic {} does not exist", resource.resource_name.as_str()),
                        )),
                    }
                }
                (None, RESOURCE_BROKER) => Ok(broker_configs(broker.config())),
                (None, other) => Err(Refusal::new(
                    ErrorCode::InvalidRequest,
                    format!("resource type {other} is not supported; use 2 (topic) or 4 (broker)"),
                )),
            };
            match entries {
                Ok(entries) => {
                    let wanted = resource.configuration_keys.as_ref();
                    result.configs = entries
                        .into_iter()
                        .filter(|entry| {
                            wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == entry.name))
                        })
                        .map(|entry| {
                            DescribeConfigsResourceResult::default()
                                .with_name(entry.name)
                                .with_value(Some(entry.value))
                                .with_read_only(false)
                                .with_config_source(entry.source)
                                .with_config_type(entry.config_type)
                                .with_documentation(
                                    entry
                                        .documentation
                                        .filter(|_| request.include_documentation),
                                )
                        })
                        .collect();
                }
                Err(refusal) => {
                    result.error_code = refusal.code;
                    result.error_message = Some(refusal.message);
                }
            }
            result
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// The InitProducerId response: for an idempotent producer a fresh id and
/// epoch 0; for a transactional id, the transaction coordinator's id and
/// bumped epoch (`txn::coordinator`).
pub async fn init_producer_id(
    broker: &Arc<Broker>,
    request: InitProducerIdRequest,
    session: &Session,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(-1)
        .with_producer_epoch(-1);
    if let Some(transactional_id) = request.transactional_id {
        if transactional_id.is_empty() {
            return response.with_error_code(ErrorCode::InvalidRequest.code());
        }
        if let Err(denied) = broker.authorize(
            session,
            AclOperation::Write,
            ResourceType::TransactionalId,
            &transactional_id,
        ) {
            return response.with_error_code(Refusal::from(denied).code);
        }
        let mut fresh = || broker.next_producer_id();
        let initialised = broker
            .txn_coordinator()
            .init_producer_id(
                broker.logs(),
                &transactional_id,
                request.transaction_timeout_ms,
                &mut fresh,
            )
            .await;
        return match initialised {
            Ok((producer_id, epoch)) => response
                .with_producer_id(producer_id)
                .with_producer_epoch(epoch),
            Err(error) => {
                tracing::info!(transactional_id = %transactional_id, error = %error, "InitProducerId refused");
                response.with_error_code(error.kafka_error_code())
            }
        };
    }
    if !broker.security().may_write_idempotently(session) {
        return response.with_error_code(ErrorCode::ClusterAuthorizationFailed.code());
    }
    match broker.next_producer_id() {
        Ok(id) => response.with_producer_id(id).with_producer_epoch(0),
        Err(error) => {
            tracing::error!(error = %error, "cannot reserve producer ids");
            response.with_error_code(Refusal::from(error).code)
        }
    }
}

/// (name, value, source, type, documentation) of every topic config,
/// override or default, from the one table in `crate::topic_config`.
fn topic_configs(broker: &Arc<Broker>, topic: &TopicMeta) -> Vec<ConfigEntry> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let (value, source) = match topic.configs.get(def.name) {
                Some(value) => (value.clone(), SOURCE_TOPIC),
                None => (def.default_value(broker.config()), SOURCE_DEFAULT),
            };
            ConfigEntry {
                name: def.name.to_string(),
                value,
                source,
                config_type: def.config_type.code(),
                documentation: Some(def.documentation()),
            }
        })
        .collect()
}

/// The broker's own settings, named as Kafka names them.
fn broker_configs(config: &BrokerConfig) -> Vec<ConfigEntry> {
    let flush_ms = match config.log.flush {
        FlushPolicy::Always => "0".to_string(),
        FlushPolicy::Interval(every) => every.as_millis().to_string(),
    };
    [
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            TYPE_BOOLEAN,
        ),
        ("broker.id", config.broker_id.to_string(), TYPE_INT),
        ("log.flush.interval.ms", flush_ms, TYPE_LONG),
        (
            "log.retention.bytes",
            optional(config.log.retention_bytes),
            TYPE_LONG,
        ),
        (
            "log.retention.ms",
            optional(config.log.retention_ms.map(|d| d.as_millis())),
            TYPE_LONG,
        ),
        (
            "log.segment.bytes",
            config.log.segment_bytes.to_string(),
            TYPE_INT,
        ),
        (
            "message.max.bytes",
            config.message_max_bytes.to_string(),
            TYPE_INT,
        ),
        (
            "num.partitions",
            config.default_partitions.to_string(),
            TYPE_INT,
        ),
        (
            "socket.request.max.bytes",
            config.max_request_bytes.to_string(),
            TYPE_INT,
        ),
    ]
    .into_iter()
    .map(|(key, value, config_type)| ConfigEntry {
        name: key.to_string(),
        value,
        source: SOURCE_STATIC_BROKER,
        config_type,
        documentation: None,
    })
    .collect()
}

/// One config as DescribeConfigs reports it.
struct ConfigEntry {
    name: String,
    value: String,
    source: i8,
    config_type: i8,
    documentation: Option<String>,
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-1".to_string(), |v| v.to_string())
}
