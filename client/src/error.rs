//! The one error type of the client, [`ClientError`], and the classification
//! the retry loops use ([`ClientError::is_retriable`],
//! [`ClientError::needs_metadata_refresh`]) and the transactional producer
//! uses ([`ClientError::is_fatal`]).
//!
//! Every variant carries enough context to act on without a debugger: which
//! broker, which API, which topic-partition, and for a Kafka error code the
//! broker's own message. `io::Error`s are kept (behind an `Arc`, so that one
//! failure can be handed to every record of a batch) rather than turned into
//! strings.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use sediment_protocol::ErrorCode;

/// Everything that can go wrong in the client.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A setting is unusable (empty bootstrap list, zero batch size, …).
    #[error("invalid client configuration: {0}")]
    Config(String),

    /// A TCP connection could not be opened.
    #[error("cannot connect to broker {addr}: {source}")]
    Connect {
        /// The `host:port` dialled.
        addr: String,
        /// What the OS said.
        #[source]
        source: Arc<io::Error>,
    },

    /// The TLS handshake failed: the broker's certificate is not trusted
    /// (expired, self-signed, signed by a CA that is not the configured
    /// one, or issued for another name), the broker refused the client's
    /// certificate or its absence (mutual TLS), or the broker does not
    /// speak TLS on that port. Not retriable: trying again cannot change it.
    #[error("TLS with broker {addr} failed: {source}")]
    Tls {
        /// The `host:port` dialled.
        addr: String,
        /// What rustls said, as the I/O error it surfaced in.
        #[source]
        source: Arc<io::Error>,
    },

    /// The broker refused the SASL authentication: wrong user name or
    /// password, a mechanism it does not enable, or a broker without SASL on
    /// that port. Not retriable: trying again cannot change it.
    #[error("authentication with broker {addr} failed: {message}")]
    Authentication {
        /// The broker's `host:port`.
        addr: String,
        /// What failed, with the broker's own error message when it sent one.
        message: String,
    },

    /// An established connection failed; requests in flight on it have no answer.
    #[error("connection to broker {addr} lost: {reason}")]
    ConnectionLost {
        /// The broker's `host:port`.
        addr: String,
        /// Why (end of stream, I/O error, request timeout, …).
        reason: String,
        /// The I/O error, when there was one.
        #[source]
        source: Option<Arc<io::Error>>,
    },

    /// No answer within the request timeout.
    #[error("{api} request to broker {addr} timed out after {timeout:?}")]
    Timeout {
        /// The broker's `host:port`.
        addr: String,
        /// The API that got no answer.
        api: &'static str,
        /// How long the client waited.
        timeout: Duration,
    },

    /// The broker sent bytes that do not decode as the expected response.
    #[error("invalid response from broker {addr}: {reason}")]
    Protocol {
        /// The broker's `host:port`.
        addr: String,
        /// What was wrong.
        reason: String,
    },

    /// A request or record batch could not be encoded (for instance a field
    /// the negotiated version cannot carry).
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// What the encoder said.
        reason: String,
    },

    /// The broker supports no version of an API that this client speaks.
    #[error(
        "broker {addr} does not support {api} in a version this client speaks \
         (client {client_min}-{client_max}, broker {broker})"
    )]
    UnsupportedApi {
        /// The broker's `host:port`.
        addr: String,
        /// The API.
        api: &'static str,
        /// Lowest version this client speaks.
        client_min: i16,
        /// Highest version this client speaks.
        client_max: i16,
        /// What the broker advertised (`"none"` when it did not list the API).
        broker: String,
    },

    /// The broker answered with a Kafka error code.
    #[error("{context}: {} (code {code}){}", error_name(*.error, *.code), message_suffix(.message))]
    Kafka {
        /// The error code as the protocol names it; [`ErrorCode::UnknownServerError`]
        /// for a code the protocol crate does not know (`code` keeps it).
        error: ErrorCode,
        /// The raw code.
        code: i16,
        /// What the client was doing (`"produce to orders-3"`).
        context: String,
        /// The broker's error message, when the response version carries one.
        message: Option<String>,
    },

    /// The topic does not exist (and was not auto-created).
    #[error("unknown topic `{topic}`: create it first (e.g. `sediment topic create {topic}`)")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },

    /// The topic exists but has no such partition.
    #[error("topic `{topic}` has {partitions} partitions; partition {partition} does not exist")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        partitions: i32,
    },

    /// None of the bootstrap or known brokers could be reached.
    #[error("no broker reachable (bootstrap {bootstrap}): {last_error}")]
    NoBrokerAvailable {
        /// The configured bootstrap list.
        bootstrap: String,
        /// The last connection error.
        last_error: String,
    },

    /// A record is larger than the producer's whole buffer and could never be sent.
    #[error("record of {size} bytes exceeds the producer's buffer_memory of {limit} bytes")]
    RecordTooLarge {
        /// Estimated encoded size of the record.
        size: usize,
        /// The configured buffer.
        limit: usize,
    },

    /// A record's partition had no known leader for the whole delivery timeout.
    #[error(
        "no leader for {topic}-{partition} within {waited:?}: the partition is offline, \
         or the topic was deleted"
    )]
    DeliveryTimeout {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// How long the record waited.
        waited: Duration,
    },

    /// The producer's background tasks are gone (the runtime shut down).
    #[error("the producer is shut down")]
    ProducerClosed,

    /// A fetched record batch does not decode.
    #[error("corrupt record batch in {topic}-{partition} near offset {offset}: {reason}")]
    CorruptRecords {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The fetch position or batch base offset where decoding failed.
        offset: i64,
        /// What the decoder said.
        reason: String,
    },

    /// The group consumer's background work stopped before answering
    /// (its runtime is shutting down).
    #[error("the group consumer is closed")]
    ConsumerClosed,

    /// The consumer was asked about a partition it is not assigned.
    #[error("{topic}-{partition} is not assigned to this consumer")]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },

    /// A transactional method was called in a state that does not allow it
    /// (Kafka's `IllegalStateException`): `send` outside a transaction,
    /// `begin_transaction` before `init_transactions`, … A usage mistake;
    /// the producer's state is unchanged.
    #[error("cannot {operation}: the transactional producer is {state}")]
    TransactionState {
        /// What was attempted.
        operation: &'static str,
        /// The state the producer was in.
        state: &'static str,
    },

    /// The open transaction cannot commit, because one of its records or
    /// requests failed: call `abort_transaction`, then the transaction may
    /// be tried again (Kafka's abortable errors).
    #[error("the transaction must be aborted: {cause}")]
    TransactionAbortable {
        /// The first failure of the transaction.
        #[source]
        cause: Box<ClientError>,
    },

    /// The record was never sent: its transaction was aborted first.
    #[error("the record was not sent: its transaction was aborted")]
    TransactionAborted,
}

/// The name of a Kafka error for messages: the variant's name, or the raw
/// number for a code the protocol crate does not know.
fn error_name(error: ErrorCode, code: i16) -> String {
    if error.code() == code {
        format!("{error:?}")
    } else {
        format!("Unknown error code: {code}")
    }
}

fn message_suffix(message: &Option<String>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

/// The client's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A `sasl.mechanism` the client does not speak is a configuration error.
impl From<sediment_protocol::sasl::UnknownSaslMechanism> for ClientError {
    fn from(error: sediment_protocol::sasl::UnknownSaslMechanism) -> Self {
        ClientError::Config(error.to_string())
    }
}

impl ClientError {
    /// A Kafka error code from a response, or `None` for code 0.
    pub(crate) fn from_code(
        code: i16,
        context: impl FnOnce() -> String,
        message: Option<&str>,
    ) -> Option<Self> {
        if code == 0 {
            return None;
        }
        Some(ClientError::Kafka {
            error: ErrorCode::try_from_code(code).unwrap_or(ErrorCode::UnknownServerError),
            code,
            context: context(),
            message: message.map(str::to_string),
        })
    }

    /// The Kafka error, if the broker answered with one
    /// ([`ErrorCode::UnknownServerError`] for a code the protocol crate does not know).
    pub fn kafka_error(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { error, .. } => Some(*error),
            _ => None,
        }
    }

    /// The raw Kafka error code, if the broker answered with one.
    pub(crate) fn kafka_code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when trying again (after a metadata refresh and a back-off) may
    /// succeed: lost connections, timeouts, and the Kafka codes Kafka itself
    /// marks retriable.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::ConnectionLost { .. }
            | ClientError::Timeout { .. }
            | ClientError::NoBrokerAvailable { .. } => true,
            ClientError::Kafka { error, .. } => error.is_retriable(),
            _ => false,
        }
    }

    /// True when the transactional (or idempotent) producer that saw this
    /// error can never be used again and must be dropped (Kafka's fatal
    /// errors): another producer with the same transactional id fenced it
    /// (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH), the coordinator does not
    /// know its producer id (INVALID_PRODUCER_ID_MAPPING), it may not use
    /// its transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), the
    /// broker does not speak the transaction APIs (UNSUPPORTED_VERSION), or
    /// the coordinator refused a step as out of order (INVALID_TXN_STATE).
    /// After a fatal error every later transactional call returns it again.
    /// Any other error met inside a transaction is abortable: abort, then
    /// the transaction may be tried again.
    pub fn is_fatal(&self) -> bool {
        match self {
            ClientError::Kafka { error, .. } => matches!(
                error,
                ErrorCode::ProducerFenced
                    | ErrorCode::InvalidProducerEpoch
                    | ErrorCode::InvalidProducerIdMapping
                    | ErrorCode::TransactionalIdAuthorizationFailed
                    | ErrorCode::UnsupportedVersion
                    | ErrorCode::InvalidTxnState
            ),
            ClientError::UnsupportedApi { api, .. } => matches!(
                *api,
                "InitProducerId"
                    | "AddPartitionsToTxn"
                    | "AddOffsetsToTxn"
                    | "EndTxn"
                    | "TxnOffsetCommit"
            ),
            ClientError::TransactionAbortable { cause } => cause.is_fatal(),
            _ => false,
        }
    }

    /// True when the cached metadata (leaders, partitions) is probably stale.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::ConnectionLost { .. }
            | ClientError::Timeout { .. }
            | ClientError::NoBrokerAvailable { .. } => true,
            ClientError::Kafka { error, .. } => is_leadership_error(*error),
            _ => false,
        }
    }
}

/// The codes after which Kafka clients refresh metadata before retrying.
pub(crate) fn is_leadership_error(error: ErrorCode) -> bool {
    matches!(
        error,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::NotController
            | ErrorCode::ReplicaNotAvailable
            | ErrorCode::KafkaStorageError
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_kafka_code_then_message_names_error_and_broker_text() {
        let err = ClientError::from_code(6, || "produce to t-0".into(), Some("moved"))
            .unwrap_or(ClientError::ProducerClosed);
        assert!(err.is_retriable());
        assert!(err.needs_metadata_refresh());
        assert_eq!(
            err.to_string(),
            "produce to t-0: NotLeaderOrFollower (code 6): moved"
        );
        assert!(ClientError::from_code(0, String::new, None).is_none());
    }

    #[test]
    fn given_fencing_and_txn_state_codes_then_fatal_and_others_not() {
        let kafka = |code| ClientError::from_code(code, || "x".into(), None);
        for code in [90, 47, 49, 53, 35, 48] {
            assert!(kafka(code).is_some_and(|e| e.is_fatal()), "code {code}");
        }
        for code in [6, 15, 16, 51, 10, 87] {
            assert!(kafka(code).is_some_and(|e| !e.is_fatal()), "code {code}");
        }
        let unsupported = |api| ClientError::UnsupportedApi {
            addr: "b".into(),
            api,
            client_min: 0,
            client_max: 3,
            broker: "none".into(),
        };
        assert!(unsupported("EndTxn").is_fatal());
        assert!(!unsupported("CreateTopics").is_fatal());
        assert!(!ClientError::TransactionAborted.is_fatal());
    }

    #[test]
    fn given_unknown_code_then_not_retriable_and_raw_code_kept() {
        let err = ClientError::from_code(999, || "x".into(), None);
        assert!(matches!(err, Some(ref e) if !e.is_retriable()));
        let err = err.unwrap_or(ClientError::ProducerClosed);
        assert_eq!(err.kafka_error(), Some(ErrorCode::UnknownServerError));
        assert_eq!(err.kafka_code(), Some(999));
        assert_eq!(err.to_string(), "x: Unknown error code: 999 (code 999)");
    }
}
