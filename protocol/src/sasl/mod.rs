//! SASL mechanisms shared by the broker (server side) and the client:
//! which ones there are ([`SaslMechanism`], named as SaslHandshake and
//! Kafka's `sasl.mechanism` name them), SCRAM-SHA-256 and SCRAM-SHA-512 ([`scram`], RFC 5802 / RFC 7677 as Kafka
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

use std::fmt;
use std::str::FromStr;

pub mod plain;
pub mod scram;

pub use plain::{PlainCredentials, PlainError};
pub use scram::{ScramClient, ScramCredential, ScramError, ScramMechanism, ScramServer};

/// The largest SASL message (SCRAM or PLAIN) this module accepts. Real
/// messages are a few hundred bytes; the bound keeps a hostile peer from
/// making either side parse or hash megabytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// A SASL mechanism Sediment speaks, on either side of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    /// RFC 4616 PLAIN: the password itself goes to the broker (which checks
    /// it against the stored salted credentials), so use it over TLS only.
    Plain,
    /// RFC 7677 SCRAM-SHA-256: a challenge-response; the password never
    /// crosses the network, and the broker proves it knows it too.
    ScramSha256,
    /// SCRAM-SHA-512 (RFC 5802 with SHA-512).
    ScramSha512,
}

impl SaslMechanism {
    /// The name on the wire (SaslHandshake) and in Kafka configuration
    /// (`SCRAM-SHA-512`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The SCRAM variant the mechanism runs; `None` for PLAIN.
    pub fn scram(self) -> Option<ScramMechanism> {
        match self {
            Self::Plain => None,
            Self::ScramSha256 => Some(ScramMechanism::Sha256),
            Self::ScramSha512 => Some(ScramMechanism::Sha512),
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is none of the [`SaslMechanism`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SASL mechanism `{0}`: use SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN")]
pub struct UnknownSaslMechanism(
    /// The name given.
    pub String,
);

impl FromStr for SaslMechanism {
    type Err = UnknownSaslMechanism;

    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`, in any case, around white space.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(Self::Plain),
            "SCRAM-SHA-256" => Ok(Self::ScramSha256),
            "SCRAM-SHA-512" => Ok(Self::ScramSha512),
            _ => Err(UnknownSaslMechanism(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_mechanism_names_in_any_case_when_parsed_then_round_trip_through_name() {
        let cases = [
            ("PLAIN", SaslMechanism::Plain, None),
            (
                "scram-sha-256",
                SaslMechanism::ScramSha256,
                Some(ScramMechanism::Sha256),
            ),
            (
                " SCRAM-SHA-512 ",
                SaslMechanism::ScramSha512,
                Some(ScramMechanism::Sha512),
            ),
        ];
        for (name, mechanism, scram) in cases {
            assert_eq!(name.parse(), Ok(mechanism), "{name}");
            assert_eq!(mechanism.to_string().parse(), Ok(mechanism));
            assert_eq!(mechanism.scram(), scram);
        }
    }

    #[test]
    fn given_unknown_mechanism_when_parsed_then_error_names_it_and_the_known_ones() {
        let error = "GSSAPI".parse::<SaslMechanism>().unwrap_err();
        assert_eq!(error, UnknownSaslMechanism("GSSAPI".to_string()));
        let message = error.to_string();
        assert!(
            message.contains("GSSAPI") && message.contains("SCRAM-SHA-512"),
            "{message}"
        );
    }
}
