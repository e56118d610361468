//! DescribeCluster v0–1: the cluster id, the controller (this broker: a
//! single node is its own controller) and the one broker, described the way
//! Metadata describes it (advertised host and port, no rack).
//!
//! As Kafka's broker listeners answer (`AuthHelper.computeDescribeClusterResponse`):
//! - an endpoint type Kafka does not define (not 1 or 2) is
//!   UNSUPPORTED_ENDPOINT_TYPE, checked first;
//! - endpoint type 2 (controllers) is MISMATCHED_ENDPOINT_TYPE: this is a
//!   broker endpoint, and there is no separate controller endpoint to list;
//! - both refusals carry only the code and a message (empty cluster id, no
//!   broker), and v0 (which has no endpoint type field) can meet neither.
//!
//! `cluster_authorized_operations` is Kafka's "not requested" value
//! (`i32::MIN`) unless the client asks for it; then it holds the cluster
//! operations the ACLs allow the client (all of them without `--authorizer`).
//! The broker listed is the listener the client came in on.

use std::sync::Arc;

use sediment_protocol::messages::describe_cluster::DescribeClusterBroker;
use sediment_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
use sediment_protocol::ErrorCode;

use crate::broker::Broker;
use crate::protocol::errors::Refusal;
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use crate::session::Session;

/// Kafka's `EndpointType.BROKER`.
const ENDPOINT_TYPE_BROKER: i8 = 1;
/// Kafka's `EndpointType.CONTROLLER`.
const ENDPOINT_TYPE_CONTROLLER: i8 = 2;
/// `cluster_authorized_operations` when the client did not ask for them.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;
/// The operations Kafka's CLUSTER resource takes.
const CLUSTER_OPERATIONS: [AclOperation; 7] = [
    AclOperation::Create,
    AclOperation::Alter,
    AclOperation::Describe,
    AclOperation::ClusterAction,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
    AclOperation::IdempotentWrite,
];

/// The DescribeCluster response.
pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeClusterRequest,
    session: &Session,
) -> DescribeClusterResponse {
    if let Some(refusal) = refuse_endpoint_type(request.endpoint_type) {
        return DescribeClusterResponse::default()
            .with_error_code(refusal.code)
            .with_error_message(Some(refusal.message));
    }
    let broker_id = broker.config().broker_id;
    let (host, port) = broker.advertised_to(session.listener);
    let operations = if request.include_cluster_authorized_operations {
        CLUSTER_OPERATIONS
            .iter()
            .filter(|op| broker.allows(session, **op, ResourceType::Cluster, CLUSTER_RESOURCE_NAME))
            .fold(0, |bits, op| bits | (1 << op.code()))
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_TYPE_BROKER)
        .with_cluster_id(broker.config().cluster_id.clone())
        .with_controller_id(broker_id)
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(broker_id)
            .with_host(host)
            .with_port(port)
            .with_rack(None)])
        .with_cluster_authorized_operations(operations)
}

/// Kafka's refusal of an endpoint type a broker listener does not serve.
fn refuse_endpoint_type(endpoint_type: i8) -> Option<Refusal> {
    match endpoint_type {
        ENDPOINT_TYPE_BROKER => None,
        ENDPOINT_TYPE_CONTROLLER => Some(Refusal::new(
            ErrorCode::MismatchedEndpointType,
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
        )),
        other => Some(Refusal::new(
            ErrorCode::UnsupportedEndpointType,
            format!("Unsupported endpoint type {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_controller_endpoint_type_then_mismatched_and_unknown_types_unsupported() {
        assert_eq!(refuse_endpoint_type(1), None);
        assert_eq!(
            refuse_endpoint_type(2).map(|r| r.code),
            Some(ErrorCode::MismatchedEndpointType.code())
        );
        for other in [0, 3, -1] {
            assert_eq!(
                refuse_endpoint_type(other).map(|r| r.code),
                Some(ErrorCode::UnsupportedEndpointType.code())
            );
        }
    }
}
