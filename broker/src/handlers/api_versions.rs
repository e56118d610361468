//! ApiVersions: the advertised table, and the v0-format refusal for versions
//! this broker does not know.

use sediment_protocol::messages::ApiVersionsResponse;
use sediment_protocol::ApiKey;
use sediment_protocol::ErrorCode;

use crate::protocol::codec::{encode_response, ResponseFrame};
use crate::protocol::versions;

/// The ApiVersions response.
pub fn handle() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(versions::api_versions())
}

/// The reply to an ApiVersions request above our highest version: v0 format,
/// UNSUPPORTED_VERSION, and our ranges so the client can pick one (KIP-511).
pub fn unsupported_version_reply(correlation_id: i32) -> Result<ResponseFrame, String> {
    let body = ApiVersionsResponse::default()
        .with_error_code(ErrorCode::UnsupportedVersion.code())
        .with_api_keys(versions::api_versions());
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
}
