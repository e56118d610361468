//! ApiVersions: the advertised table, and the v0-format refusal for versions
//! this broker does not know.

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use crate::protocol::codec::encode_response;
use crate::protocol::versions;

/// The ApiVersions response.
pub fn handle() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(versions::api_versions())
}

/// The reply to an ApiVersions request above our highest version: v0 format,
/// UNSUPPORTED_VERSION, and our ranges so the client can pick one (KIP-511).
pub fn unsupported_version_reply(correlation_id: i32) -> Result<bytes::Bytes, String> {
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(versions::api_versions());
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
}
