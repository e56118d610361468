//! SASL mechanisms shared by the broker (server side) and the client:
//! SCRAM-SHA-256 and SCRAM-SHA-512 ([`scram`], RFC 5802 / RFC 7677 as Kafka
//! uses them) and PLAIN ([`plain`], RFC 4616).
//!
//! Everything here is pure: bytes in, bytes out, no I/O, no clock. The
//! broker carries the messages in SaslAuthenticate requests; the client
//! sends them the same way.
//!
//! Invariants every parser here keeps:
//! - every message is bounded ([`MAX_MESSAGE_BYTES`]) before it is looked at;
//! - no input, however malformed, panics: it is refused with an error;
//! - errors say what was wrong with the exchange, never a password, a key,
//!   a proof or a salted password;
//! - a wrong password and an unknown user are the same error
//!   ([`ScramError::InvalidCredentials`]), reported at the same step.

pub mod plain;
pub mod scram;

pub use plain::{PlainCredentials, PlainError};
pub use scram::{ScramClient, ScramCredential, ScramError, ScramMechanism, ScramServer};

/// The largest SASL message (SCRAM or PLAIN) this module accepts. Real
/// messages are a few hundred bytes; the bound keeps a hostile peer from
/// making either side parse or hash megabytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;
