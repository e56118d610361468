//! Request handlers, one file per API family. Each takes the decoded request
//! and returns the response body; `dispatch` decodes, routes and encodes.
//!
//! Handlers never fail a whole request for one bad partition: errors are
//! per-partition (or per-topic) Kafka error codes, as clients expect.
//!
//! [`start`] is how a connection runs a request: it does the part that must
//! follow request order (a Produce's appends) at once, and returns the rest
//! as a future that may run concurrently with later requests.

pub mod acls;
pub mod admin;
pub mod api_versions;
pub mod client_quotas;
pub mod configs;
pub mod create_partitions;
pub mod delete_records;
pub mod describe_cluster;
pub mod describe_log_dirs;
pub mod fetch;
pub mod group;
pub mod metadata;
pub mod offset_delete;
pub mod offsets;
pub mod produce;
pub mod sasl;
pub mod scram_credentials;
pub mod txn;

#[cfg(test)]
pub(crate) mod test_support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use sediment_protocol::ApiKey;

use crate::broker::Broker;
use crate::protocol::codec::{encode_response, DecodeError, Request, ResponseFrame};
use crate::session::Session;

/// What a request produces on the wire.
#[derive(Debug)]
pub enum Reply {
    /// A response frame, as buffers to write in order (record slices shared).
    Frame(ResponseFrame),
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

/// The rest of a started request: its reply, once ready.
pub type Started = Pin<Box<dyn Future<Output = Result<Reply, HandlerError>> + Send + 'static>>;

/// Starts a request. Call it in request order, one request after the other:
/// a Produce's records are appended before this returns, so pipelined Produce
/// requests on one connection are appended in the order they were sent
/// (Kafka's guarantee) even though their durability waits, and every other
/// request, run concurrently as the returned futures.
///
/// The time from here until the reply is ready is observed in the API's
/// latency histogram ([`Telemetry`](crate::telemetry::Telemetry): an index
/// and two atomic additions, no lock).
pub fn start(broker: &Arc<Broker>, request: Request, session: Arc<Session>) -> Started {
    let began = Instant::now();
    let key = request.api_key;
    if key != ApiKey::Produce {
        let broker = Arc::clone(broker);
        return Box::pin(async move {
            let reply = dispatch(&broker, request, &session).await;
            broker.telemetry().observe_request(key, began.elapsed());
            reply
        });
    }
    let version = request.version;
    let correlation_id = request.header.correlation_id;
    let appended = match request.decode_body() {
        Ok(body) => produce::append_all(broker, body, version, &session),
        Err(error) => return Box::pin(std::future::ready(Err(error.into()))),
    };
    let broker = Arc::clone(broker);
    Box::pin(async move {
        let response = appended.finish().await;
        broker.telemetry().observe_request(key, began.elapsed());
        Ok(match response {
            Some(response) => Reply::Frame(
                encode_response(ApiKey::Produce, version, correlation_id, &response)
                    .map_err(HandlerError::Encode)?,
            ),
            None => Reply::Nothing,
        })
    })
}

/// Decodes the body, runs the handler and encodes its response.
pub async fn dispatch(
    broker: &Arc<Broker>,
    request: Request,
    session: &Session,
) -> Result<Reply, HandlerError> {
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
            metadata::handle(broker, request.decode_body()?, version, session)
        ),
        ApiKey::Produce => {
            match produce::handle(broker, request.decode_body()?, version, session).await {
                Some(response) => reply!(ApiKey::Produce, response),
                None => Reply::Nothing,
            }
        }
        ApiKey::Fetch => reply!(
            ApiKey::Fetch,
            fetch::handle(broker, request.decode_body()?, version, session).await
        ),
        ApiKey::ListOffsets => reply!(
            ApiKey::ListOffsets,
            offsets::list_offsets(broker, request.decode_body()?, version, session)
        ),
        ApiKey::CreateTopics => reply!(
            ApiKey::CreateTopics,
            admin::create_topics(broker, request.decode_body()?, version, session)
        ),
        ApiKey::DeleteTopics => reply!(
            ApiKey::DeleteTopics,
            admin::delete_topics(broker, request.decode_body()?, session)
        ),
        ApiKey::DescribeConfigs => reply!(
            ApiKey::DescribeConfigs,
            admin::describe_configs(broker, request.decode_body()?, session)
        ),
        ApiKey::AlterConfigs => reply!(
            ApiKey::AlterConfigs,
            configs::alter_configs(broker, request.decode_body()?, session).await
        ),
        ApiKey::IncrementalAlterConfigs => reply!(
            ApiKey::IncrementalAlterConfigs,
            configs::incremental_alter_configs(broker, request.decode_body()?, session).await
        ),
        ApiKey::DeleteRecords => reply!(
            ApiKey::DeleteRecords,
            delete_records::handle(broker, request.decode_body()?, session).await
        ),
        ApiKey::CreatePartitions => reply!(
            ApiKey::CreatePartitions,
            create_partitions::handle(broker, request.decode_body()?, session).await
        ),
        ApiKey::DescribeLogDirs => reply!(
            ApiKey::DescribeLogDirs,
            describe_log_dirs::handle(broker, request.decode_body()?, version, session).await
        ),
        ApiKey::DescribeCluster => reply!(
            ApiKey::DescribeCluster,
            describe_cluster::handle(broker, request.decode_body()?, session)
        ),
        ApiKey::FindCoordinator => reply!(
            ApiKey::FindCoordinator,
            group::find_coordinator(broker, request.decode_body()?, version, session)
        ),
        ApiKey::JoinGroup => {
            let client_id = request.header.client_id.clone();
            reply!(
                ApiKey::JoinGroup,
                group::join_group(broker, request.decode_body()?, client_id, version, session)
                    .await
            )
        }
        ApiKey::SyncGroup => reply!(
            ApiKey::SyncGroup,
            group::sync_group(broker, request.decode_body()?, version, session).await
        ),
        ApiKey::Heartbeat => reply!(
            ApiKey::Heartbeat,
            group::heartbeat(broker, request.decode_body()?, session).await
        ),
        ApiKey::LeaveGroup => reply!(
            ApiKey::LeaveGroup,
            group::leave_group(broker, request.decode_body()?, version, session).await
        ),
        ApiKey::OffsetCommit => reply!(
            ApiKey::OffsetCommit,
            group::offset_commit(broker, request.decode_body()?, version, session).await
        ),
        ApiKey::OffsetFetch => reply!(
            ApiKey::OffsetFetch,
            group::offset_fetch(broker, request.decode_body()?, version, session)
        ),
        ApiKey::DescribeGroups => reply!(
            ApiKey::DescribeGroups,
            group::describe_groups(broker, request.decode_body()?, version, session).await
        ),
        ApiKey::ListGroups => reply!(
            ApiKey::ListGroups,
            group::list_groups(broker, request.decode_body()?, version, session).await
        ),
        ApiKey::DeleteGroups => reply!(
            ApiKey::DeleteGroups,
            group::delete_groups(broker, request.decode_body()?, session).await
        ),
        ApiKey::OffsetDelete => reply!(
            ApiKey::OffsetDelete,
            offset_delete::handle(broker, request.decode_body()?, session).await
        ),
        ApiKey::InitProducerId => reply!(
            ApiKey::InitProducerId,
            admin::init_producer_id(broker, request.decode_body()?, session).await
        ),
        ApiKey::AddPartitionsToTxn => reply!(
            ApiKey::AddPartitionsToTxn,
            txn::add_partitions(broker, request.decode_body()?, session).await
        ),
        ApiKey::AddOffsetsToTxn => reply!(
            ApiKey::AddOffsetsToTxn,
            txn::add_offsets(broker, request.decode_body()?, session).await
        ),
        ApiKey::EndTxn => reply!(
            ApiKey::EndTxn,
            txn::end_txn(broker, request.decode_body()?, session).await
        ),
        ApiKey::TxnOffsetCommit => reply!(
            ApiKey::TxnOffsetCommit,
            txn::txn_offset_commit(broker, request.decode_body()?, version, session).await
        ),
        ApiKey::DescribeTransactions => reply!(
            ApiKey::DescribeTransactions,
            txn::describe_transactions(broker, request.decode_body()?, session).await
        ),
        ApiKey::ListTransactions => reply!(
            ApiKey::ListTransactions,
            txn::list_transactions(broker, request.decode_body()?, session).await
        ),
        ApiKey::SaslHandshake => reply!(
            ApiKey::SaslHandshake,
            sasl::sasl_handshake(broker, request.decode_body()?, session)
        ),
        ApiKey::SaslAuthenticate => reply!(
            ApiKey::SaslAuthenticate,
            sasl::sasl_authenticate(broker, request.decode_body()?, session)
        ),
        ApiKey::DescribeAcls => reply!(
            ApiKey::DescribeAcls,
            acls::describe_acls(broker, request.decode_body()?, session)
        ),
        ApiKey::CreateAcls => reply!(
            ApiKey::CreateAcls,
            acls::create_acls(broker, request.decode_body()?, session).await
        ),
        ApiKey::DeleteAcls => reply!(
            ApiKey::DeleteAcls,
            acls::delete_acls(broker, request.decode_body()?, session).await
        ),
        ApiKey::DescribeUserScramCredentials => reply!(
            ApiKey::DescribeUserScramCredentials,
            scram_credentials::describe_user_scram_credentials(
                broker,
                request.decode_body()?,
                session
            )
        ),
        ApiKey::AlterUserScramCredentials => reply!(
            ApiKey::AlterUserScramCredentials,
            scram_credentials::alter_user_scram_credentials(
                broker,
                request.decode_body()?,
                session
            )
            .await
        ),
        ApiKey::DescribeClientQuotas => reply!(
            ApiKey::DescribeClientQuotas,
            client_quotas::describe_client_quotas(broker, request.decode_body()?, session)
        ),
        key => return Err(DecodeError::UnsupportedApi { key }.into()),
    };
    Ok(reply)
}

#[cfg(test)]
mod tests {
    //! The security APIs (and DescribeClientQuotas, which `kafka-configs`
    //! sends with DescribeUserScramCredentials) through `dispatch`: every
    //! advertised, decoded version is routed, answered and encodes.

    use bytes::Bytes;
    use sediment_protocol::messages::create_acls::AclCreation;
    use sediment_protocol::messages::describe_client_quotas::QuotaFilterComponent;
    use sediment_protocol::messages::{
        AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest,
        DescribeAclsRequest, DescribeClientQuotasRequest, DescribeUserScramCredentialsRequest,
        SaslAuthenticateRequest, SaslHandshakeRequest,
    };
    use sediment_protocol::{ErrorCode, Message, Reader, RequestHeader, ResponseHeader, Writer};

    use super::*;
    use crate::config::{BrokerConfig, HttpListen};
    use crate::protocol::codec::decode_header;
    use crate::protocol::versions;
    use crate::security_config::{SaslMechanism, SecurityConfig};

    /// Encodes `request` as a client would, dispatches it and decodes the answer.
    async fn round_trip<Q: sediment_protocol::Request>(
        broker: &Arc<Broker>,
        request: &Q,
        version: i16,
    ) -> Q::Response {
        let key = Q::KEY;
        let mut w = Writer::new();
        RequestHeader {
            request_api_key: key as i16,
            request_api_version: version,
            correlation_id: 7,
            client_id: Some("test".into()),
        }
        .encode(&mut w, key.request_header_version(version))
        .unwrap();
        request.encode(&mut w, version).unwrap();
        let request = decode_header(w.into_bytes(), key, version).unwrap();
        let session = Session::anonymous("127.0.0.1:50000".parse().unwrap());
        let Reply::Frame(frame) = dispatch(broker, request, &session).await.unwrap() else {
            panic!("{key:?} v{version}: no reply");
        };
        let bytes: Vec<u8> = frame.iter().flat_map(|b| b.iter().copied()).collect();
        let mut r = Reader::new(Bytes::from(bytes).slice(4..));
        let header = ResponseHeader::decode(&mut r, key.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, 7, "{key:?} v{version}");
        Q::Response::decode(&mut r, version).unwrap()
    }

    fn decoded_versions(key: ApiKey) -> std::ops::RangeInclusive<i16> {
        let range = versions::advertised(key as i16).unwrap_or_else(|| panic!("{key:?}"));
        range.decode_min..=range.max
    }

    #[tokio::test]
    async fn given_each_security_api_and_decoded_version_when_dispatched_then_answered() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            data_dir: dir.path().to_path_buf(),
            http: HttpListen::Off,
            security: SecurityConfig {
                sasl: vec![SaslMechanism::ScramSha512],
                ..SecurityConfig::default()
            },
            ..BrokerConfig::default()
        };
        let broker = Arc::new(Broker::open(config).unwrap());
        let illegal_state = ErrorCode::IllegalSaslState.code();

        for version in decoded_versions(ApiKey::SaslHandshake) {
            let request = SaslHandshakeRequest::default().with_mechanism("PLAIN".into());
            let response = round_trip(&broker, &request, version).await;
            assert_eq!(response.error_code, illegal_state);
            assert_eq!(response.mechanisms, ["SCRAM-SHA-512"]);
        }
        for version in decoded_versions(ApiKey::SaslAuthenticate) {
            let request = SaslAuthenticateRequest::default();
            let response = round_trip(&broker, &request, version).await;
            assert_eq!(response.error_code, illegal_state, "v{version}");
        }
        for version in decoded_versions(ApiKey::CreateAcls) {
            let creation = AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(format!("topic-{version}"))
                .with_principal("User:alice".into())
                .with_host("*".into())
                .with_operation(3)
                .with_permission_type(3);
            let request = CreateAclsRequest::default().with_creations(vec![creation]);
            let response = round_trip(&broker, &request, version).await;
            assert_eq!(response.results.len(), 1);
            assert_eq!(response.results[0].error_code, 0, "v{version}");
        }
        for version in decoded_versions(ApiKey::DescribeAcls) {
            // v0 has no pattern filter: it selects literal bindings, all there are.
            let request = DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1);
            let response = round_trip(&broker, &request, version).await;
            assert_eq!(response.error_code, 0, "v{version}");
            assert_eq!(response.resources.len(), 4, "v{version}");
        }
        for version in decoded_versions(ApiKey::DeleteAcls) {
            let filter = sediment_protocol::messages::delete_acls::DeleteAclsFilter::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(format!("topic-{version}")))
                .with_operation(1)
                .with_permission_type(1);
            let request = DeleteAclsRequest::default().with_filters(vec![filter]);
            let response = round_trip(&broker, &request, version).await;
            let matched = &response.filter_results[0].matching_acls;
            assert_eq!(matched.len(), 1, "v{version}");
            assert_eq!(matched[0].resource_name, format!("topic-{version}"));
        }
        for version in decoded_versions(ApiKey::AlterUserScramCredentials) {
            let upsertion =
                sediment_protocol::messages::alter_user_scram_credentials::ScramCredentialUpsertion::default()
                    .with_name("alice".into())
                    .with_mechanism(2)
                    .with_iterations(4096)
                    .with_salt(Bytes::from_static(b"salt"))
                    .with_salted_password(Bytes::from(vec![1u8; 64]));
            let request =
                AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]);
            let response = round_trip(&broker, &request, version).await;
            assert_eq!(response.results[0].error_code, 0, "{response:?}");
        }
        for version in decoded_versions(ApiKey::DescribeUserScramCredentials) {
            let request = DescribeUserScramCredentialsRequest::default();
            let response = round_trip(&broker, &request, version).await;
            assert_eq!(response.results.len(), 1);
            assert_eq!(response.results[0].user, "alice");
            assert_eq!(response.results[0].credential_infos[0].mechanism, 2);
        }
        for version in decoded_versions(ApiKey::DescribeClientQuotas) {
            let component = QuotaFilterComponent::default()
                .with_entity_type("user".into())
                .with_match_type(2)
                .with_match_name(None);
            let request = DescribeClientQuotasRequest::default()
                .with_components(vec![component])
                .with_strict(true);
            let response = round_trip(&broker, &request, version).await;
            assert_eq!(response.error_code, 0, "v{version}");
            assert_eq!(response.entries, Some(vec![]), "v{version}");
        }
    }
}
