//! The SASL exchange of a new connection (KIP-152): right after
//! ApiVersions, a SaslHandshake v1 names the mechanism, then
//! SaslAuthenticate requests (the highest of v0–v2 the broker advertises)
//! carry the mechanism's messages — one round for PLAIN, two for SCRAM.
//!
//! The mechanisms themselves (SCRAM's proofs and its check of the
//! broker's signature, PLAIN's message) are `sediment_protocol::sasl`;
//! this module only carries their bytes and turns every refusal into
//! [`ClientError::Authentication`] with the broker's own message.
//!
//! Invariants:
//! - Nothing but this exchange is sent on the connection until it succeeded
//!   (`BrokerConnection::connect` runs it before returning the connection).
//! - A SCRAM exchange succeeds only once the broker proved it knows the
//!   password too (its server signature checked); a broker that skips or
//!   forges the final message fails authentication.
//! - No error or log line carries the password or a SCRAM proof.
//! - A session lifetime granted by the broker (KIP-368) is returned to the
//!   connection, which retires itself before it ends; the replacement
//!   connection authenticates again. (Re-authenticating in place on the
//!   same connection, as the Java client can, is not done.)

use std::time::Duration;

use bytes::Bytes;
use sediment_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use sediment_protocol::sasl::{PlainCredentials, ScramClient};
use sediment_protocol::{ApiKey, ErrorCode};

use crate::connection::BrokerConnection;
use crate::error::{ClientError, Result};
use crate::security::SaslConfig;

/// Authenticates `connection` with `sasl`; on failure the caller drops the
/// connection. Returns the session lifetime the broker granted (KIP-368,
/// SaslAuthenticate v1+), `None` for no limit: past it the broker closes
/// the connection, so the caller replaces it before then.
pub(crate) async fn authenticate(
    connection: &BrokerConnection,
    sasl: &SaslConfig,
) -> Result<Option<Duration>> {
    let exchange = Exchange { connection, sasl };
    exchange.handshake().await?;
    let version = exchange.version(ApiKey::SaslAuthenticate)?;
    let last = match sasl.mechanism.scram() {
        None => {
            let token = PlainCredentials::encode(&sasl.username, sasl.password.expose().as_bytes());
            exchange.round(token, version).await?
        }
        Some(mechanism) => {
            let (mut scram, client_first) =
                ScramClient::new(mechanism, &sasl.username, sasl.password.expose().as_bytes())
                    .map_err(|e| exchange.refused(format!("SCRAM: {e}")))?;
            let server_first = exchange.round(client_first, version).await?;
            let client_final = scram
                .server_first(&server_first.auth_bytes)
                .map_err(|e| exchange.refused(format!("SCRAM: {e}")))?;
            let server_final = exchange.round(client_final, version).await?;
            scram
                .server_final(&server_final.auth_bytes)
                .map_err(|e| exchange.refused(format!("SCRAM: the broker's final message: {e}")))?;
            server_final
        }
    };
    Ok(u64::try_from(last.session_lifetime_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis))
}

/// One connection's SASL exchange.
struct Exchange<'a> {
    connection: &'a BrokerConnection,
    sasl: &'a SaslConfig,
}

impl Exchange<'_> {
    /// [`ClientError::Authentication`] naming the user and mechanism.
    fn refused(&self, message: String) -> ClientError {
        ClientError::Authentication {
            addr: self.connection.addr().to_string(),
            message: format!(
                "{} as user `{}`: {message}",
                self.sasl.mechanism, self.sasl.username
            ),
        }
    }

    /// The version of a SASL API to use, or an authentication error saying
    /// that this broker (listener) does not do SASL the way we need.
    fn version(&self, key: ApiKey) -> Result<i16> {
        self.connection.version(key).map_err(|e| match e {
            ClientError::UnsupportedApi { api, broker, .. } => self.refused(format!(
                "the broker does not offer {api} in a version this client speaks \
                 (it advertises {broker}): is this a SASL listener, and is the \
                 security protocol right?"
            )),
            other => other,
        })
    }

    /// SaslHandshake v1: is the mechanism enabled?
    async fn handshake(&self) -> Result<()> {
        let version = self.version(ApiKey::SaslHandshake)?;
        let request =
            SaslHandshakeRequest::default().with_mechanism(self.sasl.mechanism.name().to_string());
        let response = self.connection.send(&request, version).await?;
        match response.error_code {
            0 => Ok(()),
            code if code == ErrorCode::UnsupportedSaslMechanism.code() => {
                Err(self.refused(format!(
                    "the broker does not enable this mechanism; it offers {}",
                    if response.mechanisms.is_empty() {
                        "none".to_string()
                    } else {
                        response.mechanisms.join(", ")
                    }
                )))
            }
            code => Err(self.refused(format!("SaslHandshake refused: {}", describe(code, None)))),
        }
    }

    /// One SaslAuthenticate round: sends `token`, returns the broker's
    /// answer (its token and, on the last round, the session lifetime).
    async fn round(&self, token: Vec<u8>, version: i16) -> Result<SaslAuthenticateResponse> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let response = self.connection.send(&request, version).await?;
        if response.error_code != 0 {
            return Err(self.refused(describe(
                response.error_code,
                response.error_message.as_deref(),
            )));
        }
        Ok(response)
    }
}

/// The broker's message (when it sent one) and the error's name and code.
fn describe(code: i16, message: Option<&str>) -> String {
    let name = ErrorCode::try_from_code(code)
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| "unknown error".to_string());
    match message.filter(|m| !m.is_empty()) {
        Some(message) => format!("{message} ({name}, code {code})"),
        None => format!("{name} (code {code})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_broker_message_then_it_leads_the_description() {
        assert_eq!(
            describe(58, Some("invalid credentials")),
            "invalid credentials (SaslAuthenticationFailed, code 58)"
        );
        assert_eq!(describe(34, None), "IllegalSaslState (code 34)");
        assert_eq!(describe(34, Some("")), "IllegalSaslState (code 34)");
        assert_eq!(describe(-7, None), "unknown error (code -7)");
    }
}
