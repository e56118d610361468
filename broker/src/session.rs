//! Who is on the other end of a connection, and which listener it came in
//! on: what handlers need to authorize a request and to tell the client the
//! address of the listener it is using (Metadata, FindCoordinator).
//!
//! A session is made once a connection is authenticated (at once without
//! SASL) and never changes: requests other than ApiVersions and the SASL
//! exchange never run before it exists.

use std::net::SocketAddr;

/// The listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// The plaintext listener (`--listen`): PLAINTEXT or SASL_PLAINTEXT.
    Plain,
    /// The TLS listener (`--tls-listen`): SSL or SASL_SSL.
    Tls,
}

/// The principal of a client that did not authenticate (Kafka's name).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// An authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `Type:name`: `User:alice` after SASL, `User:CN=…` from a client
    /// certificate, else [`ANONYMOUS`].
    pub principal: String,
    /// The client's address (ACLs may name its host).
    pub peer: SocketAddr,
    /// Where it connected.
    pub listener: ListenerKind,
}

impl Session {
    /// A session for `principal`.
    pub fn new(principal: impl Into<String>, peer: SocketAddr, listener: ListenerKind) -> Self {
        Self {
            principal: principal.into(),
            peer,
            listener,
        }
    }

    /// An unauthenticated session on the plaintext listener, for in-process
    /// callers (benchmarks, tests) that call handlers directly.
    pub fn anonymous(peer: SocketAddr) -> Self {
        Self::new(ANONYMOUS, peer, ListenerKind::Plain)
    }
}
