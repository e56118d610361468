//! The SASL exchange of one connection (KIP-152): SaslHandshake names the
//! mechanism, then SaslAuthenticate frames carry its tokens, until the
//! client is authenticated or refused.
//!
//! Invariants:
//! - until the exchange succeeds, nothing but ApiVersions, SaslHandshake and
//!   SaslAuthenticate is served; any other request closes the connection,
//!   as Kafka does;
//! - the states only move forward (handshake → tokens → authenticated): a
//!   second handshake, or a token before the handshake, is ILLEGAL_SASL_STATE
//!   and closes the connection;
//! - a failure is answered SASL_AUTHENTICATION_FAILED with a message that
//!   does not tell an unknown user from a wrong password, after a delay that
//!   grows with the failures from that address (`security::gatekeeper`), and
//!   the connection is closed.

use std::sync::Arc;

use bytes::Bytes;
use sediment_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use sediment_protocol::sasl::{PlainCredentials, ScramCredential, ScramMechanism, ScramServer};
use sediment_protocol::{ApiKey, ErrorCode};

use crate::broker::Broker;
use crate::protocol::codec::{decode_header, encode_response, header_prefix, ResponseFrame};
use crate::protocol::versions;
use crate::security_config::SaslMechanism;
use crate::session::Session;

/// What the connection does with a request that arrived before
/// authentication.
pub enum Gate {
    /// Serve it as usual (ApiVersions).
    Pass,
    /// Answer it; the exchange goes on.
    Reply(ResponseFrame),
    /// Answer it; the client is now this principal.
    Authenticated(ResponseFrame, String),
    /// Answer it with the failure, then close the connection.
    Refuse(ResponseFrame),
    /// Close the connection without an answer, for this reason.
    Close(String),
}

enum State {
    /// No handshake yet.
    Start,
    /// The mechanism is chosen; its first token is next.
    Chosen(SaslMechanism),
    /// A SCRAM exchange is under way (its client-final message is next),
    /// for the user its client-first message named (for the log).
    Scram(ScramServer, String),
}

/// One connection's SASL exchange.
pub struct Authenticator {
    state: State,
    transport: Session,
}

impl Authenticator {
    /// The exchange for a new connection, or `None` when the broker requires
    /// no SASL.
    pub fn new(broker: &Broker, transport: &Session) -> Option<Self> {
        (!broker.config().security.sasl.is_empty()).then(|| Self {
            state: State::Start,
            transport: transport.clone(),
        })
    }

    /// Screens one whole request frame that arrived before authentication.
    pub async fn gate(&mut self, broker: &Arc<Broker>, frame: &Bytes) -> Gate {
        let prefix = match header_prefix(frame) {
            Ok(prefix) => prefix,
            Err(error) => return Gate::Close(error.to_string()),
        };
        let key = match ApiKey::try_from(prefix.api_key) {
            Ok(key @ (ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)) => key,
            Ok(ApiKey::ApiVersions) => return Gate::Pass,
            Ok(key) => {
                return Gate::Close(format!(
                    "{key:?} before authentication: this broker requires SASL ({}); \
                     configure the client's security protocol and mechanism",
                    mechanism_names(broker).join(", ")
                ))
            }
            Err(_) => return Gate::Close(format!("unknown API key {}", prefix.api_key)),
        };
        let version = prefix.api_version;
        if !versions::is_decoded(prefix.api_key, version) {
            return Gate::Close(format!("{key:?} v{version} is not supported"));
        }
        let request = match decode_header(frame.clone(), key, version) {
            Ok(request) => request,
            Err(error) => return Gate::Close(error.to_string()),
        };
        let correlation_id = request.header.correlation_id;
        match key {
            ApiKey::SaslHandshake => {
                let body: SaslHandshakeRequest = match request.decode_body() {
                    Ok(body) => body,
                    Err(error) => return Gate::Close(error.to_string()),
                };
                let (response, accepted) = self.handshake(broker, &body.mechanism);
                match encode_response(key, version, correlation_id, &response) {
                    Ok(frame) if accepted => Gate::Reply(frame),
                    Ok(frame) => {
                        broker.security().note_refused(
                            self.transport.peer,
                            None,
                            &format!("mechanism `{}` not enabled", body.mechanism),
                        );
                        Gate::Refuse(frame)
                    }
                    Err(error) => Gate::Close(error),
                }
            }
            _ => {
                let body: SaslAuthenticateRequest = match request.decode_body() {
                    Ok(body) => body,
                    Err(error) => return Gate::Close(error.to_string()),
                };
                let step = self.authenticate(broker, &body.auth_bytes).await;
                let response = match &step {
                    Step::Continue(bytes) | Step::Done(bytes, _) => {
                        SaslAuthenticateResponse::default().with_auth_bytes(bytes.clone().into())
                    }
                    Step::Failed(code, message, _) => SaslAuthenticateResponse::default()
                        .with_error_code(*code as i16)
                        .with_error_message(Some(message.clone())),
                };
                let frame = match encode_response(key, version, correlation_id, &response) {
                    Ok(frame) => frame,
                    Err(error) => return Gate::Close(error),
                };
                match step {
                    Step::Continue(_) => Gate::Reply(frame),
                    Step::Done(_, user) => {
                        broker.security().note_success(self.transport.peer);
                        Gate::Authenticated(frame, format!("User:{user}"))
                    }
                    Step::Failed(_, _, reason) => {
                        let delay = broker.security().note_refused(
                            self.transport.peer,
                            reason.user.as_deref(),
                            &reason.detail,
                        );
                        // Slows down guessing from one address; the
                        // connection is closed right after anyway.
                        tokio::time::sleep(delay).await;
                        Gate::Refuse(frame)
                    }
                }
            }
        }
    }

    fn handshake(&mut self, broker: &Broker, name: &str) -> (SaslHandshakeResponse, bool) {
        let enabled = &broker.config().security.sasl;
        let names = mechanism_names(broker);
        let response = SaslHandshakeResponse::default().with_mechanisms(names);
        if !matches!(self.state, State::Start) {
            return (
                response.with_error_code(ErrorCode::IllegalSaslState as i16),
                false,
            );
        }
        match name.parse::<SaslMechanism>() {
            Ok(mechanism) if enabled.contains(&mechanism) => {
                self.state = State::Chosen(mechanism);
                (response, true)
            }
            _ => (
                response.with_error_code(ErrorCode::UnsupportedSaslMechanism as i16),
                false,
            ),
        }
    }

    async fn authenticate(&mut self, broker: &Broker, token: &[u8]) -> Step {
        let credentials = broker.security().credentials();
        match std::mem::replace(&mut self.state, State::Start) {
            State::Start => Step::Failed(
                ErrorCode::IllegalSaslState,
                "SaslAuthenticate before SaslHandshake".to_string(),
                Reason::new(None, "SaslAuthenticate before SaslHandshake"),
            ),
            State::Chosen(chosen) => match chosen.scram() {
                None => {
                    let plain = match PlainCredentials::parse(token) {
                        Ok(plain) => plain,
                        Err(error) => return Step::failed(None, &error.to_string()),
                    };
                    let known = credentials.any(&plain.username);
                    let password = plain.password.clone();
                    // Thousands of PBKDF2 rounds: off the runtime's workers,
                    // so a client's login never stalls other connections.
                    let verified = tokio::task::spawn_blocking(move || match known {
                        Some((mechanism, credential)) => {
                            credential.verify_password(mechanism, &password)
                        }
                        None => {
                            // The same key derivation as for a known user,
                            // so the time taken does not tell which names
                            // exist.
                            if let Some(decoy) = decoy_credential() {
                                let _ = decoy.verify_password(ScramMechanism::Sha512, &password);
                            }
                            false
                        }
                    })
                    .await
                    .unwrap_or(false);
                    if verified {
                        Step::Done(Vec::new(), plain.username)
                    } else {
                        Step::failed(Some(plain.username), "invalid username or password")
                    }
                }
                Some(mechanism) => {
                    let mut server = ScramServer::new(mechanism);
                    let mut user = None;
                    let first = server.client_first(token, |name| {
                        user = Some(name.to_string());
                        credentials.get(name, mechanism)
                    });
                    match first {
                        Ok(server_first) => {
                            self.state = State::Scram(server, user.unwrap_or_default());
                            Step::Continue(server_first)
                        }
                        Err(error) => Step::failed(user, &error.to_string()),
                    }
                }
            },
            State::Scram(mut server, named) => match server.client_final(token) {
                Ok((server_final, user)) => Step::Done(server_final, user),
                Err(error) => Step::failed(Some(named), &error.to_string()),
            },
        }
    }
}

/// Why an exchange failed, for the operator's log.
struct Reason {
    user: Option<String>,
    detail: String,
}

impl Reason {
    fn new(user: Option<String>, detail: &str) -> Self {
        Self {
            user,
            detail: detail.to_string(),
        }
    }
}

/// One step of the exchange.
enum Step {
    /// Send these bytes; the client answers.
    Continue(Vec<u8>),
    /// Send these bytes; the user is authenticated.
    Done(Vec<u8>, String),
    /// Refuse with this code and client-facing message.
    Failed(ErrorCode, String, Reason),
}

impl Step {
    /// The one failure a client sees, whatever went wrong (an unknown user
    /// and a wrong password look the same); the detail goes to the log.
    fn failed(user: Option<String>, detail: &str) -> Self {
        Step::Failed(
            ErrorCode::SaslAuthenticationFailed,
            "Authentication failed: invalid credentials".to_string(),
            Reason::new(user, detail),
        )
    }
}

/// A credential no password matches in practice, checked against a PLAIN
/// password for an unknown user (made once per process).
fn decoy_credential() -> Option<&'static ScramCredential> {
    static DECOY: std::sync::OnceLock<Option<ScramCredential>> = std::sync::OnceLock::new();
    DECOY
        .get_or_init(|| ScramCredential::generate(ScramMechanism::Sha512, b"decoy", 4096).ok())
        .as_ref()
}

fn mechanism_names(broker: &Broker) -> Vec<String> {
    broker
        .config()
        .security
        .sasl
        .iter()
        .map(|m| m.name().to_string())
        .collect()
}
