//! `sediment-protocol`: Sediment's own Kafka wire codec, used by the broker
//! and the client.
//!
//! - [`messages`]: every request and response the broker serves and the
//!   client sends, at every version the project uses, plus the admin APIs
//!   DESIGN §4 lists for later work (CreatePartitions, DeleteRecords,
//!   AlterConfigs, IncrementalAlterConfigs, DescribeLogDirs, OffsetDelete,
//!   DescribeCluster) and transactions (AddPartitionsToTxn, AddOffsetsToTxn,
//!   EndTxn, TxnOffsetCommit, DescribeTransactions, ListTransactions),
//!   security (SaslHandshake, SaslAuthenticate, DescribeAcls, CreateAcls,
//!   DeleteAcls, DescribeUserScramCredentials, AlterUserScramCredentials)
//!   and DescribeClientQuotas (which `kafka-configs --describe` sends),
//!   which the codec knows before the broker advertises them; generated at build
//!   time from the declarations in `schema/` (one short file per API).
//! - [`wire`]: the primitive encodings, with the checks that make decoding
//!   safe against hostile frames (every count and length checked against
//!   the bytes left before anything is allocated).
//! - [`header`]: request and response headers.
//! - [`ApiKey`] and [`ErrorCode`]: the protocol's numbers, named once.
//! - [`TopicPartition`]: one partition of one topic, as broker and client name it.
//! - [`records`]: record batches (v2), encoded and decoded with every codec.
//! - [`acl`]: Kafka's ACL value types (resource and pattern types,
//!   operations, permissions) with their wire codes, shared by broker and client.
//! - [`sasl`]: the SASL mechanisms, and the SCRAM-SHA-256/512 and PLAIN
//!   exchanges, shared by broker and client.
//!
//! Record batches in Produce and Fetch stay opaque [`bytes::Bytes`] here: the
//! broker stores and serves them exactly as producers sent them.

pub mod acl;
pub mod api_key;
pub mod error_code;
pub mod header;
pub mod records;
pub mod sasl;
pub mod topic_partition;
pub mod wire;

#[cfg(test)]
mod sample;

pub use api_key::ApiKey;
pub use error_code::ErrorCode;
pub use header::{RequestHeader, ResponseHeader};
pub use topic_partition::TopicPartition;
pub use wire::{DecodeError, EncodeError, Reader, Writer};

use bytes::Bytes;

/// An inclusive range of versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    /// The lowest version.
    pub min: i16,
    /// The highest version.
    pub max: i16,
}

impl VersionRange {
    /// True when `version` is in the range.
    pub const fn contains(&self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

/// A versioned message: an API's request or response, or a versioned
/// structure carried inside one (the consumer protocol's subscription).
pub trait Message: Sized {
    /// The API, for requests and responses.
    const API_KEY: Option<ApiKey>;
    /// The versions the codec knows.
    const VERSIONS: VersionRange;
    /// The first version with the flexible (compact, tagged) encoding.
    const FIRST_FLEXIBLE: Option<i16>;

    /// Writes the body for `version`; callers go through [`Message::encode`].
    fn encode_body(&self, w: &mut Writer, version: i16) -> Result<(), EncodeError>;
    /// Reads the body for `version`; callers go through [`Message::decode`].
    fn decode_body(r: &mut Reader, version: i16) -> Result<Self, DecodeError>;

    /// Writes the message in `version`, refusing versions the codec does not know.
    fn encode(&self, w: &mut Writer, version: i16) -> Result<(), EncodeError> {
        if !Self::VERSIONS.contains(version) {
            return Err(EncodeError::UnsupportedVersion {
                what: std::any::type_name::<Self>(),
                version,
                min: Self::VERSIONS.min,
                max: Self::VERSIONS.max,
            });
        }
        self.encode_body(w, version)
    }

    /// Reads the message in `version` from the front of `r`, refusing
    /// versions the codec does not know.
    fn decode(r: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        if !Self::VERSIONS.contains(version) {
            return Err(DecodeError::UnsupportedVersion {
                what: std::any::type_name::<Self>(),
                version,
                min: Self::VERSIONS.min,
                max: Self::VERSIONS.max,
            });
        }
        Self::decode_body(r, version)
    }

    /// The message in `version` as one buffer.
    fn to_bytes(&self, version: i16) -> Result<Bytes, EncodeError> {
        let mut w = Writer::new();
        self.encode(&mut w, version)?;
        Ok(w.into_bytes())
    }

    /// Reads the message in `version` from `bytes`; bytes after it are ignored,
    /// as Kafka ignores them.
    fn from_bytes(bytes: Bytes, version: i16) -> Result<Self, DecodeError> {
        Self::decode(&mut Reader::new(bytes), version)
    }
}

/// A request, tied to its response type and API key.
pub trait Request: Message {
    /// The response to this request.
    type Response: Message;
    /// The API.
    const KEY: ApiKey;
}

/// Every message the codec knows, one module per API (generated from `schema/`).
#[allow(missing_docs, clippy::all)]
#[macro_use]
pub mod messages {
    use crate::{ApiKey, VersionRange};
    include!(concat!(env!("OUT_DIR"), "/messages.rs"));
}

#[cfg(test)]
mod oracle;
