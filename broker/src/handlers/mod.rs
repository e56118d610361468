//! Request handlers, one file per API family. Each takes the decoded request
//! and returns the response body; `dispatch` decodes, routes and encodes.
//!
//! Handlers never fail a whole request for one bad partition: errors are
//! per-partition (or per-topic) Kafka error codes, as clients expect.

pub mod admin;
pub mod api_versions;
pub mod fetch;
pub mod metadata;
pub mod offsets;
pub mod produce;

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::protocol::codec::{encode_response, DecodeError, Request};

/// What a request produces on the wire.
#[derive(Debug)]
pub enum Reply {
    /// A response frame.
    Frame(Bytes),
    /// Nothing (Produce with acks=0).
    Nothing,
}

/// Why a request got no answer; the connection is closed with one log line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The request could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The response could not be encoded (a bug: logged loudly).
    #[error("{0}")]
    Encode(String),
}

/// Decodes the body, runs the handler and encodes its response.
pub async fn dispatch(broker: &Arc<Broker>, request: Request) -> Result<Reply, HandlerError> {
    let version = request.version;
    let correlation_id = request.header.correlation_id;
    macro_rules! reply {
        ($key:expr, $body:expr) => {
            Reply::Frame(
                encode_response($key, version, correlation_id, &$body)
                    .map_err(HandlerError::Encode)?,
            )
        };
    }
    let reply = match request.api_key {
        ApiKey::ApiVersions => reply!(ApiKey::ApiVersions, api_versions::handle()),
        ApiKey::Metadata => reply!(
            ApiKey::Metadata,
            metadata::handle(broker, request.decode_body()?, version)
        ),
        ApiKey::Produce => match produce::handle(broker, request.decode_body()?, version).await {
            Some(response) => reply!(ApiKey::Produce, response),
            None => Reply::Nothing,
        },
        ApiKey::Fetch => reply!(
            ApiKey::Fetch,
            fetch::handle(broker, request.decode_body()?, version).await
        ),
        ApiKey::ListOffsets => reply!(
            ApiKey::ListOffsets,
            offsets::list_offsets(broker, request.decode_body()?, version)
        ),
        ApiKey::CreateTopics => reply!(
            ApiKey::CreateTopics,
            admin::create_topics(broker, request.decode_body()?, version)
        ),
        ApiKey::DeleteTopics => reply!(
            ApiKey::DeleteTopics,
            admin::delete_topics(broker, request.decode_body()?)
        ),
        ApiKey::DescribeConfigs => reply!(
            ApiKey::DescribeConfigs,
            admin::describe_configs(broker, request.decode_body()?)
        ),
        ApiKey::InitProducerId => reply!(
            ApiKey::InitProducerId,
            admin::init_producer_id(broker, request.decode_body()?)
        ),
        key => return Err(DecodeError::UnsupportedApi { key }.into()),
    };
    Ok(reply)
}

/// A `StrBytes` from an owned string.
pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
