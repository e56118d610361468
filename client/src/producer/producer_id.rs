//! InitProducerId: how a producer obtains the producer id and epoch its
//! idempotent batches carry. An idempotent-only producer asks any broker
//! (null transactional id) before its first send, and again for a fresh id
//! when a failed batch left a hole in its sequences; a transactional one
//! asks its transaction coordinator (see `txn_client`), which also fences
//! older producers with the same transactional id.
//!
//! A broker without InitProducerId (or refusing it as UNSUPPORTED_VERSION)
//! means no idempotence there: [`is_unsupported`] tells the caller to fall
//! back to plain at-least-once batches rather than fail every record.

use sediment_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use sediment_protocol::{ApiKey, ErrorCode};

use crate::cluster::Cluster;
use crate::connection::BrokerConnection;
use crate::error::{ClientError, Result};
use crate::producer::sequence::ProducerIdentity;

/// InitProducerId for `transactional_id` (or none) on `connection`;
/// `current` is the identity to bump (sent from v3 on, so that a
/// transactional producer renews its own epoch without being fenced).
pub(crate) async fn init_producer_id(
    connection: &BrokerConnection,
    transactional_id: Option<&str>,
    timeout_ms: i32,
    current: Option<ProducerIdentity>,
) -> Result<ProducerIdentity> {
    let version = connection.version(ApiKey::InitProducerId)?;
    let mut request = InitProducerIdRequest::default()
        .with_transactional_id(transactional_id.map(str::to_string))
        .with_transaction_timeout_ms(timeout_ms);
    if version >= 3 {
        if let Some(current) = current {
            request.producer_id = current.producer_id;
            request.producer_epoch = current.epoch;
        }
    }
    let response = connection.send(&request, version).await?;
    identity_from(&response, connection.addr(), transactional_id)
}

/// InitProducerId without a transactional id, on any broker.
pub(crate) async fn init_idempotent(
    cluster: &Cluster,
    timeout_ms: i32,
) -> Result<ProducerIdentity> {
    let connection = cluster.any_connection().await?;
    init_producer_id(&connection, None, timeout_ms, None).await
}

/// The identity an answer gives, or its error.
fn identity_from(
    response: &InitProducerIdResponse,
    addr: &str,
    transactional_id: Option<&str>,
) -> Result<ProducerIdentity> {
    let context = || match transactional_id {
        Some(id) => format!("get a producer id for transactional id `{id}`"),
        None => "get a producer id".to_string(),
    };
    if let Some(error) = ClientError::from_code(response.error_code, context, None) {
        return Err(error);
    }
    if response.producer_id < 0 || response.producer_epoch < 0 {
        return Err(ClientError::Protocol {
            addr: addr.to_string(),
            reason: format!(
                "InitProducerId answered producer id {} epoch {} without an error",
                response.producer_id, response.producer_epoch
            ),
        });
    }
    Ok(ProducerIdentity {
        producer_id: response.producer_id,
        epoch: response.producer_epoch,
    })
}

/// True when the broker does not do InitProducerId at all.
pub(crate) fn is_unsupported(error: &ClientError) -> bool {
    match error {
        ClientError::UnsupportedApi { api, .. } => *api == "InitProducerId",
        other => other.kafka_error() == Some(ErrorCode::UnsupportedVersion),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_answers_then_identity_or_error() {
        let ok = InitProducerIdResponse::default()
            .with_producer_id(12)
            .with_producer_epoch(3);
        assert_eq!(
            identity_from(&ok, "b", None).ok(),
            Some(ProducerIdentity {
                producer_id: 12,
                epoch: 3
            })
        );
        let fenced = InitProducerIdResponse::default().with_error_code(90);
        let error = identity_from(&fenced, "b", Some("tx")).err();
        assert!(
            error.as_ref().is_some_and(ClientError::is_fatal),
            "{error:?}"
        );
        let nonsense = InitProducerIdResponse::default().with_producer_id(-1);
        assert!(matches!(
            identity_from(&nonsense, "b", None),
            Err(ClientError::Protocol { .. })
        ));
        assert!(is_unsupported(&ClientError::UnsupportedApi {
            addr: "b".into(),
            api: "InitProducerId",
            client_min: 0,
            client_max: 4,
            broker: "none".into(),
        }));
        assert!(!is_unsupported(&ClientError::ProducerClosed));
    }
}
