//! SASL/PLAIN (RFC 4616): one message, `[authzid] NUL authcid NUL passwd`.
//!
//! The server parses it with [`PlainCredentials::parse`] and checks the
//! password against the user's stored SCRAM credential (the broker keeps no
//! passwords); the client builds it with [`PlainCredentials::encode`].
//!
//! Invariants:
//! - each of the three fields is at most [`MAX_FIELD_BYTES`] (RFC 4616's
//!   255 octets), so the message is bounded before anything is copied;
//! - the user name (authcid) is non-empty UTF-8; the password is non-empty;
//! - an authorization id is accepted only when empty or equal to the user
//!   name: Sediment has no proxy users (as Kafka's PLAIN server);
//! - neither `Debug` nor any error shows the password.

use std::fmt;

/// The longest authzid, authcid or password, in bytes (RFC 4616 §2).
pub const MAX_FIELD_BYTES: usize = 255;

/// The longest PLAIN message: three fields and two separators.
pub const MAX_PLAIN_MESSAGE_BYTES: usize = 3 * MAX_FIELD_BYTES + 2;

/// Why a PLAIN message was refused. No variant carries the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlainError {
    /// The message is longer than three maximal fields could make it.
    #[error("SASL/PLAIN message of {actual} bytes is over the limit of {limit}")]
    TooLarge {
        /// Its length.
        actual: usize,
        /// [`MAX_PLAIN_MESSAGE_BYTES`].
        limit: usize,
    },
    /// Not `[authzid] NUL authcid NUL passwd`.
    #[error("malformed SASL/PLAIN message: expected [authzid] NUL username NUL password (found {separators} NUL separators)")]
    Malformed {
        /// How many NUL bytes the message had (two are expected).
        separators: usize,
    },
    /// One field is over [`MAX_FIELD_BYTES`].
    #[error("SASL/PLAIN {field} is over {limit} bytes")]
    FieldTooLong {
        /// `authorization id`, `username` or `password`.
        field: &'static str,
        /// [`MAX_FIELD_BYTES`].
        limit: usize,
    },
    /// The user name is empty.
    #[error("SASL/PLAIN username is empty")]
    EmptyUsername,
    /// The password is empty.
    #[error("SASL/PLAIN password is empty")]
    EmptyPassword,
    /// The user name or authorization id is not UTF-8.
    #[error("SASL/PLAIN {field} is not valid UTF-8")]
    NotUtf8 {
        /// `authorization id` or `username`.
        field: &'static str,
    },
    /// An authorization id other than the user name (proxy authentication
    /// is not supported).
    #[error("SASL/PLAIN authorization id must be empty or equal to the username")]
    AuthzidMismatch,
}

/// What a PLAIN message carries: who, and the password to check.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// The authentication identity (authcid).
    pub username: String,
    /// The password, as sent (RFC 4616 says UTF-8; checked as bytes).
    pub password: Vec<u8>,
}

impl fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl PlainCredentials {
    /// Parses `[authzid] NUL authcid NUL passwd` (the server side).
    pub fn parse(message: &[u8]) -> Result<Self, PlainError> {
        if message.len() > MAX_PLAIN_MESSAGE_BYTES {
            return Err(PlainError::TooLarge {
                actual: message.len(),
                limit: MAX_PLAIN_MESSAGE_BYTES,
            });
        }
        let fields: Vec<&[u8]> = message.split(|&b| b == 0).collect();
        let [authzid, authcid, password] = fields.as_slice() else {
            return Err(PlainError::Malformed {
                separators: fields.len().saturating_sub(1),
            });
        };
        for (field, bytes) in [
            ("authorization id", authzid),
            ("username", authcid),
            ("password", password),
        ] {
            if bytes.len() > MAX_FIELD_BYTES {
                return Err(PlainError::FieldTooLong {
                    field,
                    limit: MAX_FIELD_BYTES,
                });
            }
        }
        let username =
            std::str::from_utf8(authcid).map_err(|_| PlainError::NotUtf8 { field: "username" })?;
        let authzid = std::str::from_utf8(authzid).map_err(|_| PlainError::NotUtf8 {
            field: "authorization id",
        })?;
        if username.is_empty() {
            return Err(PlainError::EmptyUsername);
        }
        if password.is_empty() {
            return Err(PlainError::EmptyPassword);
        }
        if !authzid.is_empty() && authzid != username {
            return Err(PlainError::AuthzidMismatch);
        }
        Ok(Self {
            username: username.to_owned(),
            password: password.to_vec(),
        })
    }

    /// Builds the client's message: `NUL username NUL password` (no
    /// authorization id). A NUL inside either makes a message every server
    /// refuses as malformed, never one naming another user.
    pub fn encode(username: &str, password: &[u8]) -> Vec<u8> {
        let mut message = Vec::with_capacity(username.len() + password.len() + 2);
        message.push(0);
        message.extend_from_slice(username.as_bytes());
        message.push(0);
        message.extend_from_slice(password);
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn given_encoded_credentials_when_parsed_then_round_trip() {
        let message = PlainCredentials::encode("alice", b"s3cret");
        assert_eq!(message, b"\0alice\0s3cret");
        let parsed = PlainCredentials::parse(&message).unwrap();
        assert_eq!(parsed.username, "alice");
        assert_eq!(parsed.password, b"s3cret");
    }

    #[test]
    fn given_authzid_equal_to_username_then_accepted() {
        let parsed = PlainCredentials::parse(b"alice\0alice\0pw").unwrap();
        assert_eq!(parsed.username, "alice");
    }

    #[test]
    fn given_authzid_of_another_user_then_refused() {
        assert_eq!(
            PlainCredentials::parse(b"admin\0alice\0pw"),
            Err(PlainError::AuthzidMismatch)
        );
    }

    #[test]
    fn given_wrong_number_of_separators_then_malformed() {
        assert_eq!(
            PlainCredentials::parse(b"alice\0pw"),
            Err(PlainError::Malformed { separators: 1 })
        );
        assert_eq!(
            PlainCredentials::parse(b"\0alice\0pw\0x"),
            Err(PlainError::Malformed { separators: 3 })
        );
        assert_eq!(
            PlainCredentials::parse(b""),
            Err(PlainError::Malformed { separators: 0 })
        );
    }

    #[test]
    fn given_empty_username_or_password_then_refused() {
        assert_eq!(
            PlainCredentials::parse(b"\0\0pw"),
            Err(PlainError::EmptyUsername)
        );
        assert_eq!(
            PlainCredentials::parse(b"\0alice\0"),
            Err(PlainError::EmptyPassword)
        );
    }

    #[test]
    fn given_non_utf8_username_then_refused() {
        assert_eq!(
            PlainCredentials::parse(b"\0\xff\xfe\0pw"),
            Err(PlainError::NotUtf8 { field: "username" })
        );
    }

    #[test]
    fn given_oversized_field_or_message_then_refused() {
        let long = vec![b'a'; MAX_FIELD_BYTES + 1];
        let message = PlainCredentials::encode("alice", &long);
        assert_eq!(
            PlainCredentials::parse(&message),
            Err(PlainError::FieldTooLong {
                field: "password",
                limit: MAX_FIELD_BYTES
            })
        );
        let huge = vec![b'a'; MAX_PLAIN_MESSAGE_BYTES + 1];
        assert!(matches!(
            PlainCredentials::parse(&huge),
            Err(PlainError::TooLarge { .. })
        ));
    }

    #[test]
    fn given_credentials_when_debug_printed_then_password_hidden() {
        let parsed = PlainCredentials::parse(b"\0alice\0hunter2").unwrap();
        let shown = format!("{parsed:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("hunter2"));
    }

    proptest! {
        #[test]
        fn given_arbitrary_bytes_when_parsed_then_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..1024)
        ) {
            if let Ok(parsed) = PlainCredentials::parse(&bytes) {
                prop_assert!(!parsed.username.is_empty());
                prop_assert!(!parsed.password.is_empty());
            }
        }
    }
}
