//! Request headers (v0–v2) and response headers (v0–v1).
//!
//! Written by hand rather than declared: the request header's client id
//! stays a classic nullable string even in the flexible v2 header. Kafka
//! defines no tagged fields for request headers, so a v2 header may carry at
//! most [`MAX_REQUEST_HEADER_TAGGED_FIELDS`] unknown ones (skipped, never
//! stored); more is refused as a malformed header.

use crate::wire::{DecodeError, EncodeError, Reader, Writer};

/// Unknown tagged fields tolerated in a request header: any real client
/// sends none, a few are allowed for forward compatibility.
pub const MAX_REQUEST_HEADER_TAGGED_FIELDS: u32 = 16;

/// The header of every request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHeader {
    /// The API key of the request.
    pub request_api_key: i16,
    /// The API version of the request.
    pub request_api_version: i16,
    /// Echoed in the response, so pipelined requests can be matched.
    pub correlation_id: i32,
    /// The client's name for itself, for logs and quotas (v1+).
    pub client_id: Option<String>,
}

impl RequestHeader {
    /// Writes the header in `header_version` (0, 1 or 2).
    pub fn encode(&self, w: &mut Writer, header_version: i16) -> Result<(), EncodeError> {
        w.put_i16(self.request_api_key);
        w.put_i16(self.request_api_version);
        w.put_i32(self.correlation_id);
        if header_version >= 1 {
            match &self.client_id {
                Some(id) => w.put_string(id, false)?,
                None => w.put_null_string(false),
            }
        }
        if header_version >= 2 {
            w.put_uvarint(0);
        }
        Ok(())
    }

    /// Reads a header of `header_version` from the front of `r`.
    pub fn decode(r: &mut Reader, header_version: i16) -> Result<Self, DecodeError> {
        let mut header = RequestHeader {
            request_api_key: r.i16()?,
            request_api_version: r.i16()?,
            correlation_id: r.i32()?,
            client_id: None,
        };
        if header_version >= 1 {
            header.client_id = r.string(false)?;
        }
        if header_version >= 2 {
            skip_tagged_fields(r, MAX_REQUEST_HEADER_TAGGED_FIELDS)?;
        }
        Ok(header)
    }
}

/// The header of every response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The correlation id of the request answered.
    pub correlation_id: i32,
}

impl ResponseHeader {
    /// Writes the header in `header_version` (0 or 1).
    pub fn encode(&self, w: &mut Writer, header_version: i16) {
        w.put_i32(self.correlation_id);
        if header_version >= 1 {
            w.put_uvarint(0);
        }
    }

    /// Reads a header of `header_version` from the front of `r`.
    pub fn decode(r: &mut Reader, header_version: i16) -> Result<Self, DecodeError> {
        let header = ResponseHeader {
            correlation_id: r.i32()?,
        };
        if header_version >= 1 {
            skip_tagged_fields(r, u32::MAX)?;
        }
        Ok(header)
    }
}

/// Skips a tagged-fields section whose fields this codec does not know.
/// Nothing is stored; each field's size is checked against the bytes left.
fn skip_tagged_fields(r: &mut Reader, max: u32) -> Result<(), DecodeError> {
    let count = r.uvarint()?;
    if count > max {
        return Err(DecodeError::Invalid(format!(
            "{count} tagged fields (at most {max})"
        )));
    }
    for _ in 0..count {
        r.uvarint()?;
        r.sub_reader()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_headers_round_trip_in_every_version() {
        for version in 0..=2 {
            let header = RequestHeader {
                request_api_key: 3,
                request_api_version: 12,
                correlation_id: -7,
                client_id: (version >= 1).then(|| "client".to_string()),
            };
            let mut w = Writer::new();
            header.encode(&mut w, version).unwrap();
            let mut r = Reader::new(w.into_bytes());
            assert_eq!(RequestHeader::decode(&mut r, version).unwrap(), header);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn a_hostile_tagged_field_count_is_an_error_not_an_allocation() {
        let mut w = Writer::new();
        RequestHeader::default().encode(&mut w, 1).unwrap();
        w.put_uvarint(u32::MAX);
        let mut r = Reader::new(w.into_bytes());
        assert!(RequestHeader::decode(&mut r, 2).is_err());
    }
}
