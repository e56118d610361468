//! AlterConfigs and IncrementalAlterConfigs: changing a topic's configs while
//! it runs (`kafka-configs --alter`, `Admin.incrementalAlterConfigs`,
//! `sediment topic alter --config`).
//!
//! Both compute the topic's new set of overrides and hand it to
//! [`Broker::alter_topic_configs`], which checks it against the one topic
//! config table, persists it and applies it to the open partitions at once.
//! AlterConfigs replaces the whole set (keys left out return to their
//! defaults, as in Kafka); IncrementalAlterConfigs sets, deletes, appends to
//! or subtracts from single keys. Broker configs are static here (flags and
//! the config file), so altering them is refused with a message saying so.

use std::collections::BTreeMap;
use std::sync::Arc;

use sediment_protocol::messages::alter_configs::AlterConfigsResourceResponse;
use sediment_protocol::messages::incremental_alter_configs::AlterConfigsResourceResponse as IncrementalResourceResponse;
use sediment_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use sediment_protocol::ErrorCode;

use crate::broker::Broker;
use crate::protocol::errors::Refusal;
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use crate::session::Session;
use crate::topic_config::{self, ConfigType};

/// Resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;
/// Resource type of a broker.
const RESOURCE_BROKER: i8 = 4;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// The AlterConfigs response: each topic's overrides replaced by the request's.
pub async fn alter_configs(
    broker: &Arc<Broker>,
    request: AlterConfigsRequest,
    session: &Session,
) -> AlterConfigsResponse {
    let validate_only = request.validate_only;
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.as_str().to_string();
        let entries: Vec<(String, Option<String>)> = resource
            .configs
            .into_iter()
            .map(|c| {
                (
                    c.name.as_str().to_string(),
                    c.value.map(|v| v.as_str().to_string()),
                )
            })
            .collect();
        let configs = may_alter(broker, session, resource.resource_type, &name)
            .and_then(|()| check_resource(resource.resource_type, &name))
            .and_then(|()| {
                no_duplicates(entries.iter().map(|(k, _)| k.as_str()))?;
                Ok(entries
                    .into_iter()
                    .filter_map(|(key, value)| value.map(|v| (key, v)))
                    .collect())
            });
        let outcome = persist(broker, &name, configs, validate_only).await;
        let (code, message) = split(outcome);
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// The IncrementalAlterConfigs response: single keys set, deleted, appended
/// to or subtracted from, the others left as they are.
pub async fn incremental_alter_configs(
    broker: &Arc<Broker>,
    request: IncrementalAlterConfigsRequest,
    session: &Session,
) -> IncrementalAlterConfigsResponse {
    let validate_only = request.validate_only;
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.as_str().to_string();
        let changes: Vec<Change> = resource
            .configs
            .into_iter()
            .map(|c| Change {
                key: c.name.as_str().to_string(),
                op: c.config_operation,
                value: c.value.map(|v| v.as_str().to_string()),
            })
            .collect();
        let configs = may_alter(broker, session, resource.resource_type, &name)
            .and_then(|()| check_resource(resource.resource_type, &name))
            .and_then(|()| {
                no_duplicates(changes.iter().map(|c| c.key.as_str()))?;
                let topic = broker.topics().get(&name).ok_or_else(|| {
                    Refusal::new(
                        ErrorCode::UnknownTopicOrPartition,
                        format!("topic {name} does not exist"),
                    )
                })?;
                let mut configs = topic.configs;
                for change in &changes {
                    change.apply_to(&mut configs, broker)?;
                }
                Ok(configs)
            });
        let outcome = persist(broker, &name, configs, validate_only).await;
        let (code, message) = split(outcome);
        responses.push(
            IncrementalResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// One IncrementalAlterConfigs change.
struct Change {
    key: String,
    op: i8,
    value: Option<String>,
}

impl Change {
    /// Applies the change to a topic's overrides (checked as a whole later).
    fn apply_to(
        &self,
        configs: &mut BTreeMap<String, String>,
        broker: &Broker,
    ) -> Result<(), Refusal> {
        let invalid = |message: String| Refusal::new(ErrorCode::InvalidConfig, message);
        let def = topic_config::find(&self.key)
            .ok_or_else(|| invalid(format!("unknown topic config {}", self.key)))?;
        match self.op {
            OP_SET => {
                let value = self
                    .value
                    .clone()
                    .ok_or_else(|| invalid(format!("SET {} needs a value", self.key)))?;
                configs.insert(self.key.clone(), value);
            }
            OP_DELETE => {
                configs.remove(&self.key);
            }
            OP_APPEND | OP_SUBTRACT => {
                if def.config_type != ConfigType::List {
                    return Err(invalid(format!(
                        "{} is not a list: use SET or DELETE, not APPEND or SUBTRACT",
                        self.key
                    )));
                }
                let current = configs
                    .get(&self.key)
                    .cloned()
                    .unwrap_or_else(|| def.default_value(broker.config()));
                let mut items: Vec<String> = list(&current);
                let operand = list(self.value.as_deref().unwrap_or_default());
                if self.op == OP_APPEND {
                    for item in operand {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                } else {
                    items.retain(|item| !operand.contains(item));
                }
                configs.insert(self.key.clone(), items.join(","));
            }
            other => {
                return Err(Refusal::new(
                    ErrorCode::InvalidRequest,
                    format!(
                    "unknown config operation {other}; use 0 set, 1 delete, 2 append or 3 subtract"
                ),
                ))
            }
        }
        Ok(())
    }
}

/// The items of a comma-separated list value.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// ALTER_CONFIGS on the topic (or the cluster, for broker configs).
fn may_alter(
    broker: &Broker,
    session: &Session,
    resource_type: i8,
    name: &str,
) -> Result<(), Refusal> {
    let (acl_type, acl_name) = match resource_type {
        RESOURCE_BROKER => (ResourceType::Cluster, CLUSTER_RESOURCE_NAME),
        _ => (ResourceType::Topic, name),
    };
    broker
        .authorize(session, AclOperation::AlterConfigs, acl_type, acl_name)
        .map_err(Refusal::from)
}

/// Only topics can be altered; broker configs are static.
fn check_resource(resource_type: i8, name: &str) -> Result<(), Refusal> {
    match resource_type {
        RESOURCE_TOPIC => Ok(()),
        RESOURCE_BROKER => Err(Refusal::new(
            ErrorCode::InvalidRequest,
            format!("broker {name}: broker configs are static on Sediment; set them with `sediment serve` flags or its config file"),
        )),
        other => Err(Refusal::new(
            ErrorCode::InvalidRequest,
            format!("resource type {other} cannot be altered; use 2 (topic)"),
        )),
    }
}

/// Kafka refuses a request naming one key twice for a resource.
fn no_duplicates<'a>(keys: impl Iterator<Item = &'a str>) -> Result<(), Refusal> {
    let mut seen = std::collections::BTreeSet::new();
    for key in keys {
        if !seen.insert(key) {
            return Err(Refusal::new(
                ErrorCode::InvalidRequest,
                format!("config {key} appears more than once"),
            ));
        }
    }
    Ok(())
}

/// Persists and applies a topic's new overrides on the blocking pool (the
/// registry is written with fsync), or passes a refusal through.
async fn persist(
    broker: &Arc<Broker>,
    name: &str,
    configs: Result<BTreeMap<String, String>, Refusal>,
    validate_only: bool,
) -> Result<(), Refusal> {
    let configs = configs?;
    let broker = Arc::clone(broker);
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        broker
            .alter_topic_configs(&name, configs, validate_only)
            .map(drop)
            .map_err(Refusal::from)
    })
    .await
    .unwrap_or_else(|_| {
        Err(Refusal::new(
            ErrorCode::UnknownServerError,
            "altering the configs panicked; see the broker log".to_string(),
        ))
    })
}

fn split(outcome: Result<(), Refusal>) -> (i16, Option<String>) {
    match outcome {
        Ok(()) => (0, None),
        Err(refusal) => {
            tracing::info!(error = %refusal.message, "config change refused");
            (refusal.code, Some(refusal.message))
        }
    }
}
