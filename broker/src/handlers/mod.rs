//! Request handlers, one file per API family. Each takes the decoded request
//! and returns the response body; `dispatch` decodes, routes and encodes.
//!
//! Handlers never fail a whole request for one bad partition: errors are
//! per-partition (or per-topic) Kafka error codes, as clients expect.
//!
//! [`start`] is how a connection runs a request: it does the part that must
//! follow request order (a Produce's appends) at once, and returns the rest
//! as a future that may run concurrently with later requests.

pub mod admin;
pub mod api_versions;
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
pub mod txn;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use sediment_protocol::ApiKey;

use crate::broker::Broker;
use crate::protocol::codec::{encode_response, DecodeError, Request, ResponseFrame};

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
pub fn start(broker: &Arc<Broker>, request: Request) -> Started {
    let began = Instant::now();
    let key = request.api_key;
    if key != ApiKey::Produce {
        let broker = Arc::clone(broker);
        return Box::pin(async move {
            let reply = dispatch(&broker, request).await;
            broker.telemetry().observe_request(key, began.elapsed());
            reply
        });
    }
    let version = request.version;
    let correlation_id = request.header.correlation_id;
    let appended = match request.decode_body() {
        Ok(body) => produce::append_all(broker, body, version),
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
        ApiKey::AlterConfigs => reply!(
            ApiKey::AlterConfigs,
            configs::alter_configs(broker, request.decode_body()?).await
        ),
        ApiKey::IncrementalAlterConfigs => reply!(
            ApiKey::IncrementalAlterConfigs,
            configs::incremental_alter_configs(broker, request.decode_body()?).await
        ),
        ApiKey::DeleteRecords => reply!(
            ApiKey::DeleteRecords,
            delete_records::handle(broker, request.decode_body()?).await
        ),
        ApiKey::CreatePartitions => reply!(
            ApiKey::CreatePartitions,
            create_partitions::handle(broker, request.decode_body()?).await
        ),
        ApiKey::DescribeLogDirs => reply!(
            ApiKey::DescribeLogDirs,
            describe_log_dirs::handle(broker, request.decode_body()?, version).await
        ),
        ApiKey::DescribeCluster => reply!(
            ApiKey::DescribeCluster,
            describe_cluster::handle(broker, request.decode_body()?)
        ),
        ApiKey::FindCoordinator => reply!(
            ApiKey::FindCoordinator,
            group::find_coordinator(broker, request.decode_body()?, version)
        ),
        ApiKey::JoinGroup => {
            let client_id = request.header.client_id.clone();
            reply!(
                ApiKey::JoinGroup,
                group::join_group(broker, request.decode_body()?, client_id, version).await
            )
        }
        ApiKey::SyncGroup => reply!(
            ApiKey::SyncGroup,
            group::sync_group(broker, request.decode_body()?, version).await
        ),
        ApiKey::Heartbeat => reply!(
            ApiKey::Heartbeat,
            group::heartbeat(broker, request.decode_body()?).await
        ),
        ApiKey::LeaveGroup => reply!(
            ApiKey::LeaveGroup,
            group::leave_group(broker, request.decode_body()?, version).await
        ),
        ApiKey::OffsetCommit => reply!(
            ApiKey::OffsetCommit,
            group::offset_commit(broker, request.decode_body()?, version).await
        ),
        ApiKey::OffsetFetch => reply!(
            ApiKey::OffsetFetch,
            group::offset_fetch(broker, request.decode_body()?, version)
        ),
        ApiKey::DescribeGroups => reply!(
            ApiKey::DescribeGroups,
            group::describe_groups(broker, request.decode_body()?, version).await
        ),
        ApiKey::ListGroups => reply!(
            ApiKey::ListGroups,
            group::list_groups(broker, request.decode_body()?, version).await
        ),
        ApiKey::DeleteGroups => reply!(
            ApiKey::DeleteGroups,
            group::delete_groups(broker, request.decode_body()?).await
        ),
        ApiKey::OffsetDelete => reply!(
            ApiKey::OffsetDelete,
            offset_delete::handle(broker, request.decode_body()?).await
        ),
        ApiKey::InitProducerId => reply!(
            ApiKey::InitProducerId,
            admin::init_producer_id(broker, request.decode_body()?).await
        ),
        ApiKey::AddPartitionsToTxn => reply!(
            ApiKey::AddPartitionsToTxn,
            txn::add_partitions(broker, request.decode_body()?).await
        ),
        ApiKey::AddOffsetsToTxn => reply!(
            ApiKey::AddOffsetsToTxn,
            txn::add_offsets(broker, request.decode_body()?).await
        ),
        ApiKey::EndTxn => reply!(
            ApiKey::EndTxn,
            txn::end_txn(broker, request.decode_body()?).await
        ),
        ApiKey::TxnOffsetCommit => reply!(
            ApiKey::TxnOffsetCommit,
            txn::txn_offset_commit(broker, request.decode_body()?, version).await
        ),
        ApiKey::DescribeTransactions => reply!(
            ApiKey::DescribeTransactions,
            txn::describe_transactions(broker, request.decode_body()?).await
        ),
        ApiKey::ListTransactions => reply!(
            ApiKey::ListTransactions,
            txn::list_transactions(broker, request.decode_body()?).await
        ),
        key => return Err(DecodeError::UnsupportedApi { key }.into()),
    };
    Ok(reply)
}
