//! SaslHandshake and SaslAuthenticate once they reach `dispatch`: on a
//! connection that has already authenticated, or on a broker without SASL.
//! The exchange that authenticates a connection happens before any request
//! is dispatched and lives in `server::sasl`; this file only answers what
//! comes after it, or instead of it.
//!
//! - SaslHandshake: with SASL on, ILLEGAL_SASL_STATE (34) and the enabled
//!   mechanisms (the connection is authenticated; a second handshake is out
//!   of order, as in Kafka). With SASL off, UNSUPPORTED_SASL_MECHANISM (33)
//!   and no mechanisms, so a client configured for SASL against a broker
//!   without it says "mechanism not enabled, enabled mechanisms are []".
//! - SaslAuthenticate: ILLEGAL_SASL_STATE with a message saying why.
//!   Re-authentication (KIP-368) is not supported: the broker never asks
//!   for it (session lifetime 0 in the first exchange), so a client only
//!   sends one out of order.
//!
//! SaslHandshake v0 (raw tokens outside Kafka framing after it) is
//! advertised but never decoded, see `protocol::versions`.

use std::sync::Arc;

use sediment_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use sediment_protocol::ErrorCode;

use crate::broker::Broker;
use crate::session::Session;

/// The SaslHandshake response.
pub fn sasl_handshake(
    broker: &Arc<Broker>,
    request: SaslHandshakeRequest,
    session: &Session,
) -> SaslHandshakeResponse {
    let enabled = &broker.config().security.sasl;
    if enabled.is_empty() {
        tracing::info!(
            peer = %session.peer,
            mechanism = ?request.mechanism,
            "SaslHandshake on a broker without SASL: the client is configured for SASL, this broker is not (--sasl off)"
        );
        return SaslHandshakeResponse::default()
            .with_error_code(ErrorCode::UnsupportedSaslMechanism.code());
    }
    tracing::debug!(
        peer = %session.peer,
        principal = %session.principal,
        "SaslHandshake on an authenticated connection"
    );
    SaslHandshakeResponse::default()
        .with_error_code(ErrorCode::IllegalSaslState.code())
        .with_mechanisms(enabled.iter().map(|m| m.name().to_string()).collect())
}

/// The SaslAuthenticate response. The token is never looked at or logged.
pub fn sasl_authenticate(
    broker: &Arc<Broker>,
    _request: SaslAuthenticateRequest,
    session: &Session,
) -> SaslAuthenticateResponse {
    let message = if broker.config().security.sasl.is_empty() {
        "SASL is not enabled on this broker (--sasl off), so there is nothing to authenticate; \
         configure the client without SASL"
    } else {
        "this connection is already authenticated and re-authentication is not supported; \
         open a new connection to authenticate again"
    };
    tracing::debug!(
        peer = %session.peer,
        principal = %session.principal,
        "SaslAuthenticate on an authenticated connection refused"
    );
    SaslAuthenticateResponse::default()
        .with_error_code(ErrorCode::IllegalSaslState.code())
        .with_error_message(Some(message.to_string()))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::Bytes;

    use super::*;
    use crate::config::{BrokerConfig, HttpListen};
    use crate::security_config::{SaslMechanism, SecurityConfig};

    fn broker(dir: &std::path::Path, sasl: Vec<SaslMechanism>) -> Arc<Broker> {
        let config = BrokerConfig {
            data_dir: dir.to_path_buf(),
            http: HttpListen::Off,
            security: SecurityConfig {
                sasl,
                ..SecurityConfig::default()
            },
            ..BrokerConfig::default()
        };
        Arc::new(Broker::open(config).unwrap())
    }

    fn session() -> Session {
        let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        Session::anonymous(peer)
    }

    fn handshake(mechanism: &str) -> SaslHandshakeRequest {
        SaslHandshakeRequest::default().with_mechanism(mechanism.to_string())
    }

    #[test]
    fn given_sasl_enabled_when_handshake_after_authentication_then_illegal_state_with_mechanisms() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(
            dir.path(),
            vec![SaslMechanism::ScramSha512, SaslMechanism::Plain],
        );
        let response = sasl_handshake(&broker, handshake("SCRAM-SHA-512"), &session());
        assert_eq!(response.error_code, ErrorCode::IllegalSaslState.code());
        assert_eq!(response.mechanisms, ["SCRAM-SHA-512", "PLAIN"]);
    }

    #[test]
    fn given_sasl_off_when_handshake_then_unsupported_mechanism_and_no_mechanisms() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), vec![]);
        let response = sasl_handshake(&broker, handshake("PLAIN"), &session());
        assert_eq!(
            response.error_code,
            ErrorCode::UnsupportedSaslMechanism.code()
        );
        assert!(response.mechanisms.is_empty());
    }

    #[test]
    fn given_any_broker_when_authenticate_reaches_dispatch_then_illegal_state_with_reason() {
        let dir = tempfile::tempdir().unwrap();
        let request =
            SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0alice\0pw"));
        let with_sasl = broker(dir.path(), vec![SaslMechanism::ScramSha256]);
        let response = sasl_authenticate(&with_sasl, request.clone(), &session());
        assert_eq!(response.error_code, ErrorCode::IllegalSaslState.code());
        let message = response.error_message.unwrap();
        assert!(
            message.contains("re-authentication is not supported"),
            "{message}"
        );
        assert!(response.auth_bytes.is_empty());
        assert_eq!(response.session_lifetime_ms, 0);
        drop(with_sasl);

        let without = broker(dir.path(), vec![]);
        let response = sasl_authenticate(&without, request, &session());
        assert_eq!(response.error_code, ErrorCode::IllegalSaslState.code());
        assert!(response.error_message.unwrap().contains("not enabled"));
    }
}
