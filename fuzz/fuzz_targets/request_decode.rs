//! libFuzzer target for the broker's request path on our own codec
//! (`sediment-protocol`), from socket bytes to a decoded request body:
//! `FrameDecoder` → `header_prefix` → `decode_header` →
//! `Request::decode_body::<T>()`, the way `server/connection.rs` and
//! `handlers::dispatch` run it. It also decodes the input as every served
//! request type at every advertised version, and every request type the
//! codec knows but the broker does not advertise yet (the security APIs
//! until their handlers exist) at every version the codec knows, whatever
//! its header says.
//!
//! The contract: no input panics or aborts. Run with `-malloc_limit_mb` to
//! catch decoders that allocate far more than the input (see README.md).
//! `broker/tests/decode_fuzz.rs` runs the same paths under proptest on stable.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sediment_broker::protocol::codec::{decode_header, header_prefix, Request};
use sediment_broker::protocol::frame::FrameDecoder;
use sediment_broker::protocol::versions::{self, ADVERTISED};
use sediment_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest,
    ListTransactionsRequest, TxnOffsetCommitRequest,
};
use sediment_protocol::messages::{
    AlterConfigsRequest, DescribeClusterRequest, DescribeLogDirsRequest,
    IncrementalAlterConfigsRequest, OffsetDeleteRequest,
};
use sediment_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
    DescribeUserScramCredentialsRequest, SaslAuthenticateRequest, SaslHandshakeRequest, CODEC_APIS,
};
use sediment_protocol::messages::DescribeClientQuotasRequest;
use sediment_protocol::messages::{
    ApiVersionsRequest, CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest,
    DeleteRecordsRequest, DeleteTopicsRequest, DescribeConfigsRequest, DescribeGroupsRequest,
    FetchRequest, FindCoordinatorRequest, HeartbeatRequest, InitProducerIdRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest,
    OffsetCommitRequest, OffsetFetchRequest, ProduceRequest, SyncGroupRequest,
};
use sediment_protocol::{ApiKey, RequestHeader};

/// Frame cap: small, so a declared size cannot reserve more than the
/// malloc limit suggested in README.md.
const MAX_FRAME: usize = 1 << 20;

/// Decodes the body as the type the broker uses for `key`. An advertised
/// API missing here is skipped (`broker/tests/decode_fuzz.rs` fails for it).
fn decode_body(key: ApiKey, request: &Request) {
    let _ = match key {
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
        ApiKey::AddPartitionsToTxn => request.decode_body::<AddPartitionsToTxnRequest>().is_ok(),
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
        ApiKey::DescribeClientQuotas => request.decode_body::<DescribeClientQuotasRequest>().is_ok(),
        _ => false,
    };
}

/// One frame body, as the connection handles it.
fn decode_frame(frame: Bytes) {
    let Ok(prefix) = header_prefix(&frame) else {
        return;
    };
    let Ok(key) = ApiKey::try_from(prefix.api_key) else {
        return;
    };
    if !versions::is_decoded(prefix.api_key, prefix.api_version) {
        return;
    }
    if let Ok(request) = decode_header(frame, key, prefix.api_version) {
        decode_body(key, &request);
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. The input as a byte stream off a socket: split into frames.
    let decoder = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::from(data);
    for _ in 0..=data.len() / 4 {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => decode_frame(frame),
            Ok(None) | Err(_) => break,
        }
    }

    // 2. The input as one frame body.
    let frame = Bytes::copy_from_slice(data);
    decode_frame(frame.clone());

    // 3. The input after its first byte, as header + body and as a bare body
    //    of the (API, version) the first byte picks.
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let not_yet_advertised = CODEC_APIS
        .iter()
        .filter(|(key, _, _)| versions::advertised(*key as i16).is_none())
        .flat_map(|(key, range, _)| (range.min..=range.max).map(move |v| (*key, v)));
    let pairs: Vec<(ApiKey, i16)> = ADVERTISED
        .iter()
        .flat_map(|r| (r.min..=r.max).map(move |v| (r.key, v)))
        .chain(not_yet_advertised)
        .collect();
    let (key, version) = pairs[usize::from(pick) % pairs.len()];
    let rest = Bytes::copy_from_slice(rest);
    if let Ok(request) = decode_header(rest.clone(), key, version) {
        decode_body(key, &request);
    }
    decode_body(
        key,
        &Request {
            api_key: key,
            version,
            header: RequestHeader::default(),
            body: rest,
        },
    );
});
