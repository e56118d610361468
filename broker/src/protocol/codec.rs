//! Glue over the `sediment-protocol` codec: request headers in, framed
//! responses out. Sans-IO.
//!
//! The first eight bytes of every request header (api key, api version,
//! correlation id) have the same layout in every header version, so they are
//! read by hand first: that is enough to refuse an unknown API, and to answer
//! an ApiVersions request of a version we do not know in the v0 format, as
//! Kafka clients expect.
//!
//! Responses are encoded as a list of buffers: the codec keeps large record
//! slices (a Fetch's batches, straight from the segment mappings) as shared
//! `Bytes`, and the connection writes the list with vectored writes, so
//! record bytes are never copied on their way to the socket.

use bytes::Bytes;
use sediment_protocol::{ApiKey, Message, Reader, RequestHeader, ResponseHeader, Writer};

/// Why a request could not be decoded. The connection is closed with one log
/// line naming the reason (Kafka does the same for an invalid request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer than 8 bytes: not even a header prefix.
    #[error("request of {0} bytes is too short for a header")]
    TooShort(usize),
    /// The api key is not one Kafka defines.
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    /// The api key is known but not served by this broker.
    #[error("api {key:?} is not served by this broker")]
    UnsupportedApi {
        /// The API.
        key: ApiKey,
    },
    /// The API is served but not at this version.
    #[error("{key:?} v{version} is not supported")]
    UnsupportedVersion {
        /// The API.
        key: ApiKey,
        /// Requested version.
        version: i16,
    },
    /// The header or body does not parse.
    #[error("malformed {key:?} v{version} request: {reason}")]
    Malformed {
        /// The API.
        key: ApiKey,
        /// Requested version.
        version: i16,
        /// What the decoder said.
        reason: String,
    },
}

/// The fixed prefix of a request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    /// Raw api key.
    pub api_key: i16,
    /// Requested version.
    pub api_version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
}

/// Reads the api key, version and correlation id at the start of a request.
pub fn header_prefix(frame: &[u8]) -> Result<HeaderPrefix, DecodeError> {
    let Some(prefix) = frame.get(..8) else {
        return Err(DecodeError::TooShort(frame.len()));
    };
    Ok(HeaderPrefix {
        api_key: i16::from_be_bytes([prefix[0], prefix[1]]),
        api_version: i16::from_be_bytes([prefix[2], prefix[3]]),
        correlation_id: i32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]),
    })
}

/// A request whose header is decoded; the body is left for the handler.
#[derive(Debug, Clone)]
pub struct Request {
    /// The API.
    pub api_key: ApiKey,
    /// Its version.
    pub version: i16,
    /// The full header.
    pub header: RequestHeader,
    /// The undecoded body.
    pub body: Bytes,
}

/// Decodes the header of a request whose api key and version are served.
/// Unknown tagged fields in a v2 header are skipped, never stored, and at
/// most 16 are accepted (Kafka defines none).
pub fn decode_header(frame: Bytes, api_key: ApiKey, version: i16) -> Result<Request, DecodeError> {
    let header_version = api_key.request_header_version(version);
    let mut reader = Reader::new(frame);
    let header =
        RequestHeader::decode(&mut reader, header_version).map_err(|e| DecodeError::Malformed {
            key: api_key,
            version,
            reason: format!("header: {e}"),
        })?;
    Ok(Request {
        api_key,
        version,
        header,
        body: reader.into_rest(),
    })
}

impl Request {
    /// Whether the body decodes as the type the handlers decode this API's
    /// requests as; `None` for an API without a request type here. The
    /// decode fuzz test and the fuzz target use it, so they decode every
    /// body exactly as the broker would.
    pub fn body_decodes(&self) -> Option<bool> {
        use sediment_protocol::messages::*;
        let request = self;
        Some(match self.api_key {
            ApiKey::Produce => request.decode_body::<ProduceRequest>().is_ok(),
            ApiKey::Fetch => request.decode_body::<FetchRequest>().is_ok(),
            ApiKey::ListOffsets => request.decode_body::<ListOffsetsRequest>().is_ok(),
            ApiKey::Metadata => request.decode_body::<MetadataRequest>().is_ok(),
            ApiKey::ApiVersions => request.decode_body::<ApiVersionsRequest>().is_ok(),
            ApiKey::CreateTopics => request.decode_body::<CreateTopicsRequest>().is_ok(),
            ApiKey::DeleteTopics => request.decode_body::<DeleteTopicsRequest>().is_ok(),
            ApiKey::DescribeConfigs => request.decode_body::<DescribeConfigsRequest>().is_ok(),
            ApiKey::InitProducerId => request.decode_body::<InitProducerIdRequest>().is_ok(),
            ApiKey::FindCoordinator => request.decode_body::<FindCoordinatorRequest>().is_ok(),
            ApiKey::JoinGroup => request.decode_body::<JoinGroupRequest>().is_ok(),
            ApiKey::SyncGroup => request.decode_body::<SyncGroupRequest>().is_ok(),
            ApiKey::Heartbeat => request.decode_body::<HeartbeatRequest>().is_ok(),
            ApiKey::LeaveGroup => request.decode_body::<LeaveGroupRequest>().is_ok(),
            ApiKey::OffsetCommit => request.decode_body::<OffsetCommitRequest>().is_ok(),
            ApiKey::OffsetFetch => request.decode_body::<OffsetFetchRequest>().is_ok(),
            ApiKey::DescribeGroups => request.decode_body::<DescribeGroupsRequest>().is_ok(),
            ApiKey::ListGroups => request.decode_body::<ListGroupsRequest>().is_ok(),
            ApiKey::DeleteGroups => request.decode_body::<DeleteGroupsRequest>().is_ok(),
            ApiKey::DeleteRecords => request.decode_body::<DeleteRecordsRequest>().is_ok(),
            ApiKey::CreatePartitions => request.decode_body::<CreatePartitionsRequest>().is_ok(),
            ApiKey::AlterConfigs => request.decode_body::<AlterConfigsRequest>().is_ok(),
            ApiKey::IncrementalAlterConfigs => request
                .decode_body::<IncrementalAlterConfigsRequest>()
                .is_ok(),
            ApiKey::DescribeLogDirs => request.decode_body::<DescribeLogDirsRequest>().is_ok(),
            ApiKey::OffsetDelete => request.decode_body::<OffsetDeleteRequest>().is_ok(),
            ApiKey::DescribeCluster => request.decode_body::<DescribeClusterRequest>().is_ok(),
            ApiKey::AddPartitionsToTxn => {
                request.decode_body::<AddPartitionsToTxnRequest>().is_ok()
            }
            ApiKey::AddOffsetsToTxn => request.decode_body::<AddOffsetsToTxnRequest>().is_ok(),
            ApiKey::EndTxn => request.decode_body::<EndTxnRequest>().is_ok(),
            ApiKey::TxnOffsetCommit => request.decode_body::<TxnOffsetCommitRequest>().is_ok(),
            ApiKey::DescribeTransactions => {
                request.decode_body::<DescribeTransactionsRequest>().is_ok()
            }
            ApiKey::ListTransactions => request.decode_body::<ListTransactionsRequest>().is_ok(),
            ApiKey::SaslHandshake => request.decode_body::<SaslHandshakeRequest>().is_ok(),
            ApiKey::SaslAuthenticate => request.decode_body::<SaslAuthenticateRequest>().is_ok(),
            ApiKey::DescribeAcls => request.decode_body::<DescribeAclsRequest>().is_ok(),
            ApiKey::CreateAcls => request.decode_body::<CreateAclsRequest>().is_ok(),
            ApiKey::DeleteAcls => request.decode_body::<DeleteAclsRequest>().is_ok(),
            ApiKey::DescribeUserScramCredentials => request
                .decode_body::<DescribeUserScramCredentialsRequest>()
                .is_ok(),
            ApiKey::AlterUserScramCredentials => request
                .decode_body::<AlterUserScramCredentialsRequest>()
                .is_ok(),
            ApiKey::DescribeClientQuotas => {
                request.decode_body::<DescribeClientQuotasRequest>().is_ok()
            }
            _ => return None,
        })
    }

    /// Decodes the body as `T`.
    pub fn decode_body<T: Message>(&self) -> Result<T, DecodeError> {
        T::from_bytes(self.body.clone(), self.version).map_err(|e| DecodeError::Malformed {
            key: self.api_key,
            version: self.version,
            reason: e.to_string(),
        })
    }
}

/// A response frame as buffers to write in order (size prefix and header
/// first); record slices among them are shared, not copied.
pub type ResponseFrame = Vec<Bytes>;

/// Encodes a whole response frame: size prefix, response header (v0, or v1
/// for flexible versions; ApiVersions always v0) and body.
pub fn encode_response<T: Message>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<ResponseFrame, String> {
    let header_version = api_key.response_header_version(version);
    let mut w = Writer::new();
    w.put_i32(0);
    ResponseHeader { correlation_id }.encode(&mut w, header_version);
    body.encode(&mut w, version)
        .map_err(|e| format!("encoding {api_key:?} v{version} response: {e}"))?;
    let size = i32::try_from(w.len() - 4).map_err(|_| format!("{api_key:?} response too large"))?;
    let mut chunks = w.into_chunks();
    // The size prefix sits at the start of the first chunk, which is never a
    // shared record slice (the header comes before any record).
    if let Some(first) = chunks.first_mut() {
        let mut head = first.to_vec();
        head[..4].copy_from_slice(&size.to_be_bytes());
        *first = Bytes::from(head);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sediment_protocol::messages::fetch::{FetchableTopicResponse, PartitionData};
    use sediment_protocol::messages::{ApiVersionsRequest, FetchResponse};

    #[test]
    fn given_encoded_request_then_prefix_and_header_decode() {
        let mut w = Writer::new();
        let header = RequestHeader {
            request_api_key: ApiKey::ApiVersions as i16,
            request_api_version: 3,
            correlation_id: 42,
            client_id: Some("test".into()),
        };
        header.encode(&mut w, 2).unwrap();
        ApiVersionsRequest::default().encode(&mut w, 3).unwrap();
        let frame = w.into_bytes();
        let prefix = header_prefix(&frame).unwrap();
        assert_eq!(
            (prefix.api_key, prefix.api_version, prefix.correlation_id),
            (18, 3, 42)
        );
        let request = decode_header(frame, ApiKey::ApiVersions, 3).unwrap();
        assert_eq!(request.header, header);
        assert!(request.decode_body::<ApiVersionsRequest>().is_ok());
    }

    #[test]
    fn given_header_with_too_many_tagged_fields_then_refused() {
        let mut w = Writer::new();
        RequestHeader {
            request_api_key: ApiKey::Metadata as i16,
            request_api_version: 12,
            correlation_id: 7,
            client_id: None,
        }
        .encode(&mut w, 1)
        .unwrap();
        w.put_uvarint(10_000);
        for tag in 0..10_000 {
            w.put_uvarint(tag);
            w.put_uvarint(1);
            w.put_i8(0);
        }
        assert!(matches!(
            decode_header(w.into_bytes(), ApiKey::Metadata, 12),
            Err(DecodeError::Malformed { reason, .. }) if reason.contains("10000 tagged fields (at most 16)")
        ));
        // A count claiming billions with nothing behind it is an error.
        let mut w = Writer::new();
        RequestHeader::default().encode(&mut w, 1).unwrap();
        w.put_uvarint(u32::MAX);
        assert!(decode_header(w.into_bytes(), ApiKey::Metadata, 12).is_err());
    }

    #[test]
    fn given_fetch_response_then_record_slices_are_not_copied() {
        let records = Bytes::from(vec![1u8; 64 * 1024]);
        let response =
            FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                .with_topic("t".into())
                .with_partitions(vec![
                    PartitionData::default().with_records(Some(records.clone()))
                ])]);
        let chunks = encode_response(ApiKey::Fetch, 12, 9, &response).unwrap();
        assert!(chunks.iter().any(|c| c.as_ptr() == records.as_ptr()));
        let total: usize = chunks.iter().map(Bytes::len).sum();
        let size = i32::from_be_bytes([chunks[0][0], chunks[0][1], chunks[0][2], chunks[0][3]]);
        assert_eq!(size as usize, total - 4);
    }

    #[test]
    fn given_short_frame_then_too_short() {
        assert_eq!(header_prefix(&[0, 18, 0]), Err(DecodeError::TooShort(3)));
    }
}
