//! FindCoordinator: which broker coordinates a consumer group or a
//! transactional id. One lookup shared by the group consumer, the group
//! admin and the transactional producer, over any broker's shared
//! connection; what to connect to afterwards is the caller's choice.
//!
//! Versions: v4 asks in a batch of keys (`coordinator_keys`), v1–v3 with one
//! `key` and a `key_type`; v0 knows only groups, so a transactional id needs
//! v1 or later.

use sediment_protocol::messages::FindCoordinatorRequest;
use sediment_protocol::ApiKey;

use crate::cluster::Cluster;
use crate::error::{ClientError, Result};

/// What a coordinator is looked up for (FindCoordinator `key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CoordinatorType {
    /// A consumer group's coordinator.
    Group,
    /// A transactional id's transaction coordinator.
    Transaction,
}

impl CoordinatorType {
    fn key_type(self) -> i8 {
        match self {
            CoordinatorType::Group => 0,
            CoordinatorType::Transaction => 1,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            CoordinatorType::Group => "group",
            CoordinatorType::Transaction => "transactional id",
        }
    }
}

/// The broker that answered as coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Coordinator {
    /// Its broker id.
    pub node_id: i32,
    /// Its `host:port`.
    pub addr: String,
}

/// Asks any broker which broker coordinates `key`. A Kafka error code in the
/// answer (COORDINATOR_NOT_AVAILABLE while it loads, …) is returned as
/// [`ClientError::Kafka`], for the caller's retry loop to judge.
pub(crate) async fn find_coordinator(
    cluster: &Cluster,
    kind: CoordinatorType,
    key: &str,
) -> Result<Coordinator> {
    let connection = cluster.any_connection().await?;
    let version = connection.version(ApiKey::FindCoordinator)?;
    if version == 0 && kind != CoordinatorType::Group {
        return Err(ClientError::UnsupportedApi {
            addr: connection.addr().to_string(),
            api: "FindCoordinator",
            client_min: 1,
            client_max: 4,
            broker: "0-0".into(),
        });
    }
    let mut request = FindCoordinatorRequest::default();
    if version >= 4 {
        request.coordinator_keys = vec![key.to_string()];
    } else {
        request.key = key.to_string();
    }
    if version >= 1 {
        request.key_type = kind.key_type();
    }
    let response = connection.send(&request, version).await?;
    let (code, message, node_id, host, port) = if version >= 4 {
        let found = response
            .coordinators
            .into_iter()
            .find(|c| c.key == key)
            .ok_or_else(|| ClientError::Protocol {
                addr: connection.addr().to_string(),
                reason: format!(
                    "FindCoordinator answered no coordinator for {} `{key}`",
                    kind.noun()
                ),
            })?;
        (
            found.error_code,
            found.error_message,
            found.node_id,
            found.host,
            found.port,
        )
    } else {
        (
            response.error_code,
            response.error_message,
            response.node_id,
            response.host,
            response.port,
        )
    };
    if let Some(error) = ClientError::from_code(
        code,
        || format!("find the coordinator of {} `{key}`", kind.noun()),
        message.as_deref(),
    ) {
        return Err(error);
    }
    Ok(Coordinator {
        node_id,
        addr: format!("{host}:{port}"),
    })
}
