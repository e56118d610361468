//! Glue over the `kafka-protocol` codec: request headers in, framed
//! responses out. Sans-IO.
//!
//! The first eight bytes of every request header (api key, api version,
//! correlation id) have the same layout in every header version, so they are
//! read by hand first: that is enough to refuse an unknown API, and to answer
//! an ApiVersions request of a version we do not know in the v0 format, as
//! Kafka clients expect.
//!
//! Flexible (v2) headers end in a count of tagged fields. Kafka defines none
//! for request headers, and `kafka-protocol` keeps every unknown one in a map
//! entry of about 80 bytes for 2 bytes on the wire, so the count is checked
//! here before the header decoder sees it (`MAX_HEADER_TAGGED_FIELDS`).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

/// Unknown tagged fields tolerated in a request header. Kafka defines none,
/// so any real client sends zero; a few are allowed for forward
/// compatibility, millions would be a memory attack (see the module docs).
pub const MAX_HEADER_TAGGED_FIELDS: u32 = 16;

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

/// The tagged-field count of a v2 request header, if the frame holds one
/// (a frame too short to say is left for the header decoder to refuse).
fn header_tagged_field_count(frame: &[u8]) -> Option<u32> {
    // Api key, version and correlation id, then the client id: a
    // non-compact nullable string even in v2.
    let len_at = frame.get(8..10)?;
    let client_id_len = i16::from_be_bytes([len_at[0], len_at[1]]);
    let count_at = 10 + usize::try_from(client_id_len).unwrap_or(0);
    // Unsigned varint: 7 bits a byte, at most 5 bytes for a u32.
    let mut count = 0u32;
    for (i, &byte) in frame.get(count_at..)?.iter().take(5).enumerate() {
        let shift = 7 * i as u32;
        if shift == 28 && byte & 0xf0 != 0 {
            // Bits beyond 32: no count the decoder accepts, so refuse as "too many".
            return Some(u32::MAX);
        }
        count |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(count);
        }
    }
    None
}

/// Decodes the header of a request whose api key and version are served.
pub fn decode_header(
    mut frame: Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<Request, DecodeError> {
    let header_version = api_key.request_header_version(version);
    if header_version >= 2 {
        if let Some(count) = header_tagged_field_count(&frame) {
            if count > MAX_HEADER_TAGGED_FIELDS {
                return Err(DecodeError::Malformed {
                    key: api_key,
                    version,
                    reason: format!(
                        "header: {count} tagged fields (at most {MAX_HEADER_TAGGED_FIELDS})"
                    ),
                });
            }
        }
    }
    let header =
        RequestHeader::decode(&mut frame, header_version).map_err(|e| DecodeError::Malformed {
            key: api_key,
            version,
            reason: format!("header: {e}"),
        })?;
    Ok(Request {
        api_key,
        version,
        header,
        body: frame,
    })
}

impl Request {
    /// Decodes the body as `T`.
    pub fn decode_body<T: Decodable>(&self) -> Result<T, DecodeError> {
        let mut body = self.body.clone();
        T::decode(&mut body, self.version).map_err(|e| DecodeError::Malformed {
            key: self.api_key,
            version: self.version,
            reason: e.to_string(),
        })
    }
}

/// Encodes a whole response frame: size prefix, response header (v0, or v1
/// for flexible versions; ApiVersions always v0) and body.
pub fn encode_response<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, String> {
    let header_version = api_key.response_header_version(version);
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .map_err(|e| format!("encoding {api_key:?} v{version} response header: {e}"))?;
    body.encode(&mut buf, version)
        .map_err(|e| format!("encoding {api_key:?} v{version} response: {e}"))?;
    let size =
        i32::try_from(buf.len() - 4).map_err(|_| format!("{api_key:?} response too large"))?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsRequest;
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn given_encoded_request_then_prefix_and_header_decode() {
        let mut buf = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::ApiVersions as i16)
            .with_request_api_version(3)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        header.encode(&mut buf, 2).unwrap();
        ApiVersionsRequest::default().encode(&mut buf, 3).unwrap();
        let frame = buf.freeze();
        let prefix = header_prefix(&frame).unwrap();
        assert_eq!(
            (prefix.api_key, prefix.api_version, prefix.correlation_id),
            (18, 3, 42)
        );
        let request = decode_header(frame, ApiKey::ApiVersions, 3).unwrap();
        assert_eq!(request.header, header);
        assert!(request.decode_body::<ApiVersionsRequest>().is_ok());
    }

    fn flexible_header_with_tags(tags: u32) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(12)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("test")))
            .with_unknown_tagged_fields(
                (0..tags)
                    .map(|tag| (tag as i32, Bytes::from_static(b"x")))
                    .collect(),
            );
        let mut buf = BytesMut::new();
        header.encode(&mut buf, 2).unwrap();
        buf.freeze()
    }

    #[test]
    fn given_header_with_few_tagged_fields_then_decoded() {
        let frame = flexible_header_with_tags(MAX_HEADER_TAGGED_FIELDS);
        assert_eq!(
            header_tagged_field_count(&frame),
            Some(MAX_HEADER_TAGGED_FIELDS)
        );
        let request = decode_header(frame, ApiKey::Metadata, 12).unwrap();
        assert_eq!(
            request.header.unknown_tagged_fields.len(),
            MAX_HEADER_TAGGED_FIELDS as usize
        );
    }

    #[test]
    fn given_header_with_too_many_tagged_fields_then_refused_before_decoding() {
        let frame = flexible_header_with_tags(200);
        assert_eq!(header_tagged_field_count(&frame), Some(200));
        assert!(matches!(
            decode_header(frame, ApiKey::Metadata, 12),
            Err(DecodeError::Malformed { reason, .. }) if reason.contains("200 tagged fields")
        ));
        // A count claiming millions with nothing behind it is refused the same way.
        let mut frame = flexible_header_with_tags(0).to_vec();
        frame.pop();
        frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(header_tagged_field_count(&frame), Some(u32::MAX));
        assert!(decode_header(Bytes::from(frame), ApiKey::Metadata, 12).is_err());
    }

    #[test]
    fn given_truncated_or_null_client_id_header_then_count_is_read_or_left_to_decoder() {
        assert_eq!(header_tagged_field_count(&[0, 3, 0, 12, 0, 0, 0, 1]), None);
        // Null client id (-1), then a zero count.
        assert_eq!(
            header_tagged_field_count(&[0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0]),
            Some(0)
        );
        // A varint cut short is left to the decoder.
        assert_eq!(
            header_tagged_field_count(&[0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0x80, 0x80]),
            None
        );
        // One that runs past 32 bits counts as too many.
        assert_eq!(
            header_tagged_field_count(&[
                0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01
            ]),
            Some(u32::MAX)
        );
    }

    #[test]
    fn given_short_frame_then_too_short() {
        assert_eq!(header_prefix(&[0, 18, 0]), Err(DecodeError::TooShort(3)));
    }
}
