//! Consumer-group APIs. For now only FindCoordinator: this broker is the
//! coordinator of every group. It is advertised before the rest of the group
//! protocol because librdkafka enables LZ4 only for brokers that advertise
//! FindCoordinator (its feature table ties the two), and answering it is
//! already correct on a single broker. Transaction coordinators are refused:
//! transactions are not supported.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::Broker;

use super::str_bytes;

/// `key_type` of a consumer group.
const KEY_TYPE_GROUP: i8 = 0;

/// The FindCoordinator response: this broker for groups (one key before v4,
/// a batch of keys from v4).
pub fn find_coordinator(
    broker: &Arc<Broker>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let (host, port) = broker.advertised();
    let node = BrokerId(broker.config().broker_id);
    let answer = |key: StrBytes| {
        let mut coordinator = Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(-1))
            .with_port(-1);
        if request.key_type == KEY_TYPE_GROUP {
            coordinator.node_id = node;
            coordinator.host = str_bytes(host.clone());
            coordinator.port = port;
        } else {
            coordinator.error_code = ResponseError::CoordinatorNotAvailable.code();
            coordinator.error_message =
                Some(str_bytes("transactions are not supported by this broker"));
        }
        coordinator
    };
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(
            request
                .coordinator_keys
                .iter()
                .cloned()
                .map(answer)
                .collect(),
        );
    }
    let single = answer(request.key.clone());
    let mut response = FindCoordinatorResponse::default()
        .with_error_code(single.error_code)
        .with_node_id(single.node_id)
        .with_host(single.host)
        .with_port(single.port);
    if version >= 1 {
        response.error_message = single.error_message;
    }
    response
}
