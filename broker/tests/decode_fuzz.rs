//! Fuzz of the request path, from the socket's bytes to a decoded request
//! body, on our own codec (`sediment-protocol`): `FrameDecoder` →
//! `header_prefix` → `decode_header` → `Request::decode_body::<T>()` for
//! every request type the broker serves, at every advertised version
//! (`protocol::versions::ADVERTISED`), and for every request type the codec
//! knows that the broker does not advertise yet (the security APIs until
//! their handlers exist), at every version the codec knows
//! (`sediment_protocol::messages::CODEC_APIS`): those are decoded directly,
//! while the broker's own path must refuse them at its version gate. So a
//! new schema is fuzzed before anyone advertises it.
//!
//! The contracts (DESIGN §1.5, §4 "bound what reaches them"):
//! - arbitrary bytes, and valid requests with flipped bits, truncations,
//!   insertions and huge counts (`0x7fffffff`, `0xffffffff`, big varints)
//!   written over them, never panic: they decode or they are refused;
//! - decoding never asks the allocator for much more than the input: the
//!   largest single allocation while decoding one input, and the most it
//!   holds at once, are at most 64 × its length + 64 KiB (a counting global
//!   allocator measures both), so a frame under `max_request_bytes` cannot
//!   make the broker request gigabytes and abort.
//!
//! The seed requests carry every field their version has (nested arrays,
//! nullable strings, null values, and in flexible versions tagged fields:
//! those the schemas declare, plus an unknown one in the header and at the
//! top level of the body, which the codec must skip), so mutations reach the
//! count and size fields of each nesting level. `fuzz/` runs the same decode
//! path under libFuzzer.
// Tests fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The counting allocator below needs `unsafe impl GlobalAlloc`; nothing else does.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proptest::sample::Index;
use sediment_broker::protocol::codec::{decode_header, header_prefix, Request};
use sediment_broker::protocol::frame::FrameDecoder;
use sediment_broker::protocol::versions::{self, ADVERTISED};
use sediment_broker::storage::test_batches::batch_with_seed;
use sediment_protocol::messages::add_partitions_to_txn::AddPartitionsToTxnTopic;
use sediment_protocol::messages::alter_configs::{
    AlterConfigsResource, AlterableConfig as ReplacedConfig,
};
use sediment_protocol::messages::alter_user_scram_credentials::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use sediment_protocol::messages::create_acls::AclCreation;
use sediment_protocol::messages::create_partitions::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use sediment_protocol::messages::create_topics::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use sediment_protocol::messages::delete_acls::DeleteAclsFilter;
use sediment_protocol::messages::delete_records::{DeleteRecordsPartition, DeleteRecordsTopic};
use sediment_protocol::messages::delete_topics::DeleteTopicState;
use sediment_protocol::messages::describe_client_quotas::QuotaFilterComponent;
use sediment_protocol::messages::describe_configs::DescribeConfigsResource;
use sediment_protocol::messages::describe_log_dirs::DescribableLogDirTopic;
use sediment_protocol::messages::describe_user_scram_credentials::UserName;
use sediment_protocol::messages::fetch::{FetchPartition, FetchTopic, ForgottenTopic};
use sediment_protocol::messages::incremental_alter_configs::{
    AlterConfigsResource as IncrementalResource, AlterableConfig as ChangedConfig,
};
use sediment_protocol::messages::join_group::JoinGroupRequestProtocol;
use sediment_protocol::messages::leave_group::MemberIdentity;
use sediment_protocol::messages::list_offsets::{ListOffsetsPartition, ListOffsetsTopic};
use sediment_protocol::messages::metadata::MetadataRequestTopic;
use sediment_protocol::messages::offset_commit::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use sediment_protocol::messages::offset_delete::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use sediment_protocol::messages::offset_fetch::OffsetFetchRequestTopic;
use sediment_protocol::messages::produce::{PartitionProduceData, TopicProduceData};
use sediment_protocol::messages::sync_group::SyncGroupRequestAssignment;
use sediment_protocol::messages::txn_offset_commit::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use sediment_protocol::messages::DescribeClientQuotasRequest;
use sediment_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest,
    ListTransactionsRequest, TxnOffsetCommitRequest,
};
use sediment_protocol::messages::{AlterConfigsRequest, IncrementalAlterConfigsRequest};
use sediment_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
    DescribeUserScramCredentialsRequest, SaslAuthenticateRequest, SaslHandshakeRequest, CODEC_APIS,
};
use sediment_protocol::messages::{
    ApiVersionsRequest, CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest,
    DeleteRecordsRequest, DeleteTopicsRequest, DescribeConfigsRequest, DescribeGroupsRequest,
    FetchRequest, FindCoordinatorRequest, HeartbeatRequest, InitProducerIdRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest,
    OffsetCommitRequest, OffsetFetchRequest, ProduceRequest, SyncGroupRequest,
};
use sediment_protocol::messages::{
    DescribeClusterRequest, DescribeLogDirsRequest, OffsetDeleteRequest,
};
use sediment_protocol::{ApiKey, Message, Reader, RequestHeader, Writer};
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Allocation measurement

/// The system allocator, noting, while the current thread is "armed", the
/// largest single request and the peak of bytes allocated minus bytes freed
/// (what a decode holds at once). Per-thread, because the test harness runs
/// the tests of this binary on several threads at once.
struct CountingAllocator;

thread_local! {
    // `const` initialisers without destructors: touching them from inside the
    // allocator never allocates or registers a destructor.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static NET: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// Records a request for `requested` bytes that changes what is held by `delta`.
fn note(requested: usize, delta: isize) {
    // `try_with`: during thread teardown the slots may be gone; then don't count.
    let _ = ARMED.try_with(|armed| {
        if !armed.get() {
            return;
        }
        let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(requested)));
        let _ = NET.try_with(|net| {
            let now = net.get().saturating_add(delta);
            net.set(now);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
        });
    });
}

fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees (alignment, size, ownership of the
// returned blocks) carry over; the only extra work is thread-local `Cell`
// updates, which neither allocate nor unwind.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), signed(layout.size()));
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), signed(layout.size()));
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(0, -signed(layout.size()));
        // SAFETY: `ptr` was allocated by `System` (through this wrapper) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size, signed(new_size) - signed(layout.size()));
        // SAFETY: `ptr`/`layout` come from this allocator; the caller upholds
        // `realloc`'s contract for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Disarms the measurement even if the measured code panics.
struct Disarm;

impl Drop for Disarm {
    fn drop(&mut self) {
        ARMED.with(|armed| armed.set(false));
    }
}

/// What one measured run asked of the allocator.
#[derive(Debug, Clone, Copy)]
struct Allocations {
    /// The largest single allocation (or reallocation) request, in bytes.
    largest: usize,
    /// The most bytes held at once by allocations made during the run.
    peak: usize,
}

/// Runs `f` and returns its result with what it allocated.
fn allocations_during<R>(f: impl FnOnce() -> R) -> (R, Allocations) {
    LARGEST.with(|largest| largest.set(0));
    NET.with(|net| net.set(0));
    PEAK.with(|peak| peak.set(0));
    ARMED.with(|armed| armed.set(true));
    let disarm = Disarm;
    let result = f();
    drop(disarm);
    let allocations = Allocations {
        largest: LARGEST.with(Cell::get),
        peak: usize::try_from(PEAK.with(Cell::get)).unwrap_or(0),
    };
    (result, allocations)
}

/// The most a decode of `input_len` bytes may ask for in one allocation, or hold at once.
fn allocation_budget(input_len: usize) -> usize {
    64 * input_len + 64 * 1024
}

/// Frame cap for the fuzzed `FrameDecoder`: a started frame reserves up to
/// this much by design, so it is kept within the allocation budget's constant.
const FUZZ_MAX_FRAME: usize = 60 * 1024;

// ---------------------------------------------------------------------------
// The decode path under test

/// What the connection does with one frame body (server/connection.rs
/// `admit` + handlers `dispatch`): prefix, version gate, header, body.
fn decode_frame_like_the_broker(frame: Bytes) {
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
        // An advertised API without an arm is reported by
        // `given_advertised_api_table_then_every_api_is_fuzzed`.
        let _ = request.body_decodes();
    }
}

/// Splits `stream` into frames with a capped `FrameDecoder` and decodes each.
fn decode_stream(stream: &[u8]) {
    let decoder = FrameDecoder::new(FUZZ_MAX_FRAME);
    let mut buf = BytesMut::from(stream);
    // Each frame consumes at least its 4-byte prefix, so this bound is never reached.
    for _ in 0..=stream.len() / 4 {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => decode_frame_like_the_broker(frame),
            Ok(None) | Err(_) => return,
        }
    }
}

/// The header and body of `frame` decoded as `key`/`version` whatever its
/// prefix says, so every type meets every input at every version.
fn decode_as(frame: &Bytes, key: ApiKey, version: i16) {
    let _ = header_prefix(frame);
    if let Ok(request) = decode_header(frame.clone(), key, version) {
        request.body_decodes().expect("served API");
    }
    // The body alone, as if the header had parsed and ended anywhere.
    let request = Request {
        api_key: key,
        version,
        header: RequestHeader::default(),
        body: frame.clone(),
    };
    request.body_decodes().expect("served API");
}

/// Every path above on one input, with what it allocated.
fn decode_everything(input: &[u8], key: ApiKey, version: i16) -> Allocations {
    let ((), allocations) = allocations_during(|| {
        let frame = Bytes::copy_from_slice(input);
        decode_as(&frame, key, version);
        decode_frame_like_the_broker(frame);
        decode_stream(input);
        let mut framed = (input.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(input);
        decode_stream(&framed);
    });
    allocations
}

// ---------------------------------------------------------------------------
// Seed requests: every field each version carries

fn text(s: &str) -> String {
    s.to_string()
}

fn produce(version: i16) -> ProduceRequest {
    let batch = |seed: u64| Some(Bytes::from(batch_with_seed(2, 8, 1_700_000_000_000, seed)));
    let _ = version; // every field exists in v3–v11
    ProduceRequest::default()
        .with_transactional_id(Some(text("fuzz-txn")))
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(text("orders"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(batch(1)),
                    PartitionProduceData::default()
                        .with_index(1)
                        .with_records(batch(2)),
                ]),
            TopicProduceData::default()
                .with_name(text("payments"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(batch(7)),
                    // `records` is nullable in every version.
                    PartitionProduceData::default()
                        .with_index(1)
                        .with_records(None),
                ]),
        ])
}

fn fetch(version: i16) -> FetchRequest {
    let partition = |p: i32| {
        let mut partition = FetchPartition::default()
            .with_partition(p)
            .with_fetch_offset(1234 + i64::from(p))
            .with_partition_max_bytes(1 << 20);
        if version >= 5 {
            partition.log_start_offset = 7;
        }
        if version >= 9 {
            partition.current_leader_epoch = 3;
        }
        if version >= 12 {
            partition.last_fetched_epoch = 2;
        }
        partition
    };
    let mut request = FetchRequest::default()
        .with_replica_id(-1)
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(52_428_800)
        .with_isolation_level(1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(text("orders"))
                .with_partitions(vec![partition(0), partition(1)]),
            FetchTopic::default()
                .with_topic(text("payments"))
                .with_partitions(vec![partition(2)]),
        ]);
    if version >= 7 {
        request.session_id = 17;
        request.session_epoch = 4;
        request.forgotten_topics_data = vec![
            ForgottenTopic::default()
                .with_topic(text("old"))
                .with_partitions(vec![1, 2, 3]),
            ForgottenTopic::default()
                .with_topic(text("older"))
                .with_partitions(vec![0]),
        ];
    }
    if version >= 11 {
        request.rack_id = text("rack-a");
    }
    if version >= 12 {
        // Tagged field 0.
        request.cluster_id = Some(text("cluster-1"));
    }
    request
}

fn list_offsets(version: i16) -> ListOffsetsRequest {
    let partition = |p: i32, timestamp: i64| {
        let mut partition = ListOffsetsPartition::default()
            .with_partition_index(p)
            .with_timestamp(timestamp);
        if version >= 4 {
            partition.current_leader_epoch = 5;
        }
        partition
    };
    let mut request = ListOffsetsRequest::default()
        .with_replica_id(-1)
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(text("orders"))
                .with_partitions(vec![partition(0, -1), partition(1, -2)]),
            ListOffsetsTopic::default()
                .with_name(text("payments"))
                .with_partitions(vec![partition(0, 1_700_000_000_000)]),
        ]);
    if version >= 2 {
        request.isolation_level = 1;
    }
    request
}

fn metadata(version: i16) -> MetadataRequest {
    let mut topics: Vec<MetadataRequestTopic> = ["orders", "payments", "audit"]
        .iter()
        .map(|t| MetadataRequestTopic::default().with_name(Some(text(t))))
        .collect();
    if version >= 10 {
        // Looked up by id: a topic id and a null name.
        topics.push(
            MetadataRequestTopic::default()
                .with_topic_id(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef))
                .with_name(None),
        );
    }
    let mut request = MetadataRequest::default().with_topics(Some(topics));
    if version >= 4 {
        request.allow_auto_topic_creation = false;
    }
    if (8..=10).contains(&version) {
        request.include_cluster_authorized_operations = true;
    }
    if version >= 8 {
        request.include_topic_authorized_operations = true;
    }
    request
}

fn api_versions(version: i16) -> ApiVersionsRequest {
    let mut request = ApiVersionsRequest::default();
    if version >= 3 {
        request.client_software_name = text("sediment-fuzz");
        request.client_software_version = text("1.0.0");
    }
    request
}

fn create_topics(_version: i16) -> CreateTopicsRequest {
    let topic = |t: &str| {
        CreatableTopic::default()
            .with_name(text(t))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![
                CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![0]),
                CreatableReplicaAssignment::default()
                    .with_partition_index(1)
                    .with_broker_ids(vec![0, 1]),
            ])
            .with_configs(vec![
                CreatableTopicConfig::default()
                    .with_name(text("retention.ms"))
                    .with_value(Some(text("60000"))),
                CreatableTopicConfig::default()
                    .with_name(text("cleanup.policy"))
                    .with_value(None),
            ])
    };
    CreateTopicsRequest::default()
        .with_topics(vec![topic("orders"), topic("payments")])
        .with_timeout_ms(30_000)
        .with_validate_only(true)
}

fn delete_topics(version: i16) -> DeleteTopicsRequest {
    let request = DeleteTopicsRequest::default().with_timeout_ms(30_000);
    if version >= 6 {
        request.with_topics(vec![
            DeleteTopicState::default().with_name(Some(text("orders"))),
            DeleteTopicState::default().with_name(Some(text("payments"))),
            // By id: a null name.
            DeleteTopicState::default()
                .with_name(None)
                .with_topic_id(Uuid::from_u128(0xfedc_ba98_7654_3210_fedc_ba98_7654_3210)),
        ])
    } else {
        request.with_topic_names(vec![text("orders"), text("payments")])
    }
}

fn describe_configs(version: i16) -> DescribeConfigsRequest {
    let mut request = DescribeConfigsRequest::default()
        .with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(text("orders"))
                .with_configuration_keys(Some(vec![text("retention.ms"), text("segment.bytes")])),
            DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(text("0"))
                .with_configuration_keys(None),
        ])
        .with_include_synonyms(true);
    if version >= 3 {
        request.include_documentation = true;
    }
    request
}

fn init_producer_id(version: i16) -> InitProducerIdRequest {
    let mut request = InitProducerIdRequest::default()
        .with_transactional_id(Some(text("fuzz-txn")))
        .with_transaction_timeout_ms(60_000);
    if version >= 3 {
        request.producer_id = 42;
        request.producer_epoch = 3;
    }
    request
}

fn group_id() -> String {
    text("fuzz-group")
}

fn find_coordinator(version: i16) -> FindCoordinatorRequest {
    let mut request = FindCoordinatorRequest::default();
    if version <= 3 {
        request.key = text("fuzz-group");
    } else {
        request.coordinator_keys = vec![text("fuzz-group"), text("other-group")];
    }
    if version >= 1 {
        request.key_type = 0;
    }
    request
}

fn join_group(version: i16) -> JoinGroupRequest {
    let mut request = JoinGroupRequest::default()
        .with_group_id(group_id())
        .with_session_timeout_ms(45_000)
        .with_member_id(text("member-1"))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(Bytes::from_static(
                    b"\x00\x01\x00\x00\x00\x01\x00\x06orders",
                )),
            JoinGroupRequestProtocol::default()
                .with_name(text("roundrobin"))
                .with_metadata(Bytes::from_static(b"\x00\x01")),
        ]);
    if version >= 1 {
        request.rebalance_timeout_ms = 300_000;
    }
    if version >= 5 {
        request.group_instance_id = Some(text("instance-1"));
    }
    request
}

fn sync_group(version: i16) -> SyncGroupRequest {
    let mut request = SyncGroupRequest::default()
        .with_group_id(group_id())
        .with_generation_id(3)
        .with_member_id(text("member-1"))
        .with_assignments(vec![
            SyncGroupRequestAssignment::default()
                .with_member_id(text("member-1"))
                .with_assignment(Bytes::from_static(b"\x00\x01\x00\x00\x00\x01")),
            SyncGroupRequestAssignment::default()
                .with_member_id(text("member-2"))
                .with_assignment(Bytes::new()),
        ]);
    if version >= 3 {
        request.group_instance_id = Some(text("instance-1"));
    }
    if version >= 5 {
        request.protocol_type = Some(text("consumer"));
        request.protocol_name = Some(text("range"));
    }
    request
}

fn heartbeat(version: i16) -> HeartbeatRequest {
    let mut request = HeartbeatRequest::default()
        .with_group_id(group_id())
        .with_generation_id(3)
        .with_member_id(text("member-1"));
    if version >= 3 {
        request.group_instance_id = Some(text("instance-1"));
    }
    request
}

fn leave_group(version: i16) -> LeaveGroupRequest {
    let request = LeaveGroupRequest::default().with_group_id(group_id());
    if version <= 2 {
        return request.with_member_id(text("member-1"));
    }
    let member = |id: &str, instance: Option<&str>| {
        let mut member = MemberIdentity::default()
            .with_member_id(text(id))
            .with_group_instance_id(instance.map(text));
        if version >= 5 {
            member.reason = Some(text("shutting down"));
        }
        member
    };
    request.with_members(vec![
        member("member-1", Some("instance-1")),
        member("member-2", None),
    ])
}

fn offset_commit(version: i16) -> OffsetCommitRequest {
    let partition = |p: i32| {
        let mut partition = OffsetCommitRequestPartition::default()
            .with_partition_index(p)
            .with_committed_offset(100 + i64::from(p))
            // Nullable: one partition has none.
            .with_committed_metadata((p != 1).then(|| text("meta")));
        if version >= 6 {
            partition.committed_leader_epoch = 2;
        }
        partition
    };
    let mut request = OffsetCommitRequest::default()
        .with_group_id(group_id())
        .with_generation_id_or_member_epoch(3)
        .with_member_id(text("member-1"))
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(text("orders"))
                .with_partitions(vec![partition(0), partition(1)]),
            OffsetCommitRequestTopic::default()
                .with_name(text("payments"))
                .with_partitions(vec![partition(0)]),
        ]);
    if version <= 4 {
        request.retention_time_ms = 86_400_000;
    }
    if version >= 7 {
        request.group_instance_id = Some(text("instance-1"));
    }
    request
}

/// OffsetFetch v1–v7 (the codec's range; v8+ batches groups and is not served).
fn offset_fetch(version: i16) -> OffsetFetchRequest {
    let mut request = OffsetFetchRequest::default()
        .with_group_id(group_id())
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(text("orders"))
                .with_partition_indexes(vec![0, 1, 2]),
            OffsetFetchRequestTopic::default()
                .with_name(text("payments"))
                .with_partition_indexes(vec![0]),
        ]));
    if version >= 7 {
        request.require_stable = true;
    }
    request
}

fn describe_groups(version: i16) -> DescribeGroupsRequest {
    let mut request = DescribeGroupsRequest::default().with_groups(vec![group_id(), text("other")]);
    if version >= 3 {
        request.include_authorized_operations = true;
    }
    request
}

fn list_groups(version: i16) -> ListGroupsRequest {
    let mut request = ListGroupsRequest::default();
    if version >= 4 {
        request.states_filter = vec![text("Stable"), text("Empty")];
    }
    request
}

fn delete_groups(_version: i16) -> DeleteGroupsRequest {
    DeleteGroupsRequest::default().with_groups_names(vec![group_id(), text("other")])
}

fn delete_records(_version: i16) -> DeleteRecordsRequest {
    DeleteRecordsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(text("orders"))
            .with_partitions(vec![
                DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(42),
                DeleteRecordsPartition::default()
                    .with_partition_index(1)
                    .with_offset(-1),
            ])])
}

fn alter_configs(_version: i16) -> AlterConfigsRequest {
    AlterConfigsRequest::default()
        .with_validate_only(true)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text("orders"))
            .with_configs(vec![
                ReplacedConfig::default()
                    .with_name(text("retention.ms"))
                    .with_value(Some(text("3600000"))),
                ReplacedConfig::default()
                    .with_name(text("segment.ms"))
                    .with_value(None),
            ])])
}

fn incremental_alter_configs(_version: i16) -> IncrementalAlterConfigsRequest {
    IncrementalAlterConfigsRequest::default()
        .with_validate_only(false)
        .with_resources(vec![IncrementalResource::default()
            .with_resource_type(2)
            .with_resource_name(text("orders"))
            .with_configs(vec![
                ChangedConfig::default()
                    .with_name(text("cleanup.policy"))
                    .with_config_operation(2)
                    .with_value(Some(text("delete"))),
                ChangedConfig::default()
                    .with_name(text("retention.ms"))
                    .with_config_operation(1)
                    .with_value(None),
            ])])
}

fn create_partitions(_version: i16) -> CreatePartitionsRequest {
    CreatePartitionsRequest::default()
        .with_timeout_ms(30_000)
        .with_validate_only(true)
        .with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(text("orders"))
                .with_count(3)
                .with_assignments(None),
            CreatePartitionsTopic::default()
                .with_name(text("payments"))
                .with_count(2)
                .with_assignments(Some(vec![
                    CreatePartitionsAssignment::default().with_broker_ids(vec![0])
                ])),
        ])
}

fn describe_log_dirs(version: i16) -> DescribeLogDirsRequest {
    // Odd versions ask for every partition (null), even ones for a few.
    if version % 2 == 1 {
        return DescribeLogDirsRequest::default().with_topics(None);
    }
    DescribeLogDirsRequest::default().with_topics(Some(vec![
        DescribableLogDirTopic::default()
            .with_topic(text("orders"))
            .with_partitions(vec![0, 1, 2]),
        DescribableLogDirTopic::default()
            .with_topic(text("payments"))
            .with_partitions(vec![]),
    ]))
}

fn offset_delete(_version: i16) -> OffsetDeleteRequest {
    OffsetDeleteRequest::default()
        .with_group_id(group_id())
        .with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(text("orders"))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0),
                    OffsetDeleteRequestPartition::default().with_partition_index(3),
                ]),
            OffsetDeleteRequestTopic::default()
                .with_name(text("payments"))
                .with_partitions(vec![]),
        ])
}

fn describe_cluster(version: i16) -> DescribeClusterRequest {
    // v0 has no endpoint type: it stays at its default (brokers).
    DescribeClusterRequest::default()
        .with_include_cluster_authorized_operations(true)
        .with_endpoint_type(if version >= 1 { 2 } else { 1 })
}

fn transactional_id() -> String {
    text("fuzz-txn")
}

fn add_partitions_to_txn(_version: i16) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest::default()
        .with_transactional_id(transactional_id())
        .with_producer_id(42)
        .with_producer_epoch(3)
        .with_topics(vec![
            AddPartitionsToTxnTopic::default()
                .with_name(text("orders"))
                .with_partitions(vec![0, 1, 2]),
            AddPartitionsToTxnTopic::default()
                .with_name(text("payments"))
                .with_partitions(vec![]),
        ])
}

fn add_offsets_to_txn(_version: i16) -> AddOffsetsToTxnRequest {
    AddOffsetsToTxnRequest::default()
        .with_transactional_id(transactional_id())
        .with_producer_id(42)
        .with_producer_epoch(3)
        .with_group_id(group_id())
}

fn end_txn(_version: i16) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(transactional_id())
        .with_producer_id(42)
        .with_producer_epoch(3)
        .with_committed(true)
}

fn txn_offset_commit(version: i16) -> TxnOffsetCommitRequest {
    let partition = |p: i32| {
        let mut partition = TxnOffsetCommitRequestPartition::default()
            .with_partition_index(p)
            .with_committed_offset(100 + i64::from(p))
            // Nullable: one partition has none.
            .with_committed_metadata((p != 1).then(|| text("meta")));
        if version >= 2 {
            partition.committed_leader_epoch = 2;
        }
        partition
    };
    let mut request = TxnOffsetCommitRequest::default()
        .with_transactional_id(transactional_id())
        .with_group_id(group_id())
        .with_producer_id(42)
        .with_producer_epoch(3)
        .with_topics(vec![
            TxnOffsetCommitRequestTopic::default()
                .with_name(text("orders"))
                .with_partitions(vec![partition(0), partition(1)]),
            TxnOffsetCommitRequestTopic::default()
                .with_name(text("payments"))
                .with_partitions(vec![partition(0)]),
        ]);
    if version >= 3 {
        request.generation_id = 3;
        request.member_id = text("member-1");
        request.group_instance_id = Some(text("instance-1"));
    }
    request
}

fn describe_transactions(_version: i16) -> DescribeTransactionsRequest {
    DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![transactional_id(), text("other-txn")])
}

fn list_transactions(version: i16) -> ListTransactionsRequest {
    let mut request = ListTransactionsRequest::default()
        .with_state_filters(vec![text("Ongoing"), text("PrepareCommit")])
        .with_producer_id_filters(vec![42, 7]);
    if version >= 1 {
        request.duration_filter = 60_000;
    }
    request
}

fn sasl_handshake(_version: i16) -> SaslHandshakeRequest {
    SaslHandshakeRequest::default().with_mechanism(text("SCRAM-SHA-512"))
}

fn sasl_authenticate(_version: i16) -> SaslAuthenticateRequest {
    // A SCRAM client-first message, as a client sends it.
    SaslAuthenticateRequest::default()
        .with_auth_bytes(Bytes::from_static(b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL"))
}

/// Pattern types: v0 has none (literal); from v1 a seed names another one,
/// so the field is really on the wire.
fn acl_pattern_type(version: i16) -> i8 {
    if version >= 1 {
        4 // prefixed
    } else {
        3 // literal, the default
    }
}

fn describe_acls(version: i16) -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(2)
        .with_resource_name_filter(Some(text("orders")))
        .with_pattern_type_filter(acl_pattern_type(version))
        .with_principal_filter(Some(text("User:alice")))
        .with_host_filter(None)
        .with_operation(3)
        .with_permission_type(3)
}

fn create_acls(version: i16) -> CreateAclsRequest {
    let creation = |principal: &str, operation: i8| {
        AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(text("orders"))
            .with_resource_pattern_type(acl_pattern_type(version))
            .with_principal(text(principal))
            .with_host(text("*"))
            .with_operation(operation)
            .with_permission_type(3)
    };
    CreateAclsRequest::default()
        .with_creations(vec![creation("User:alice", 3), creation("User:bob", 4)])
}

fn delete_acls(version: i16) -> DeleteAclsRequest {
    DeleteAclsRequest::default().with_filters(vec![
        DeleteAclsFilter::default()
            .with_resource_type_filter(2)
            .with_resource_name_filter(Some(text("orders")))
            .with_pattern_type_filter(acl_pattern_type(version))
            .with_principal_filter(Some(text("User:alice")))
            .with_host_filter(Some(text("*")))
            .with_operation(3)
            .with_permission_type(3),
        // Null filters match anything.
        DeleteAclsFilter::default()
            .with_resource_type_filter(1)
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1),
    ])
}

fn describe_user_scram_credentials(_version: i16) -> DescribeUserScramCredentialsRequest {
    DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
        UserName::default().with_name(text("alice")),
        UserName::default().with_name(text("bob")),
    ]))
}

fn alter_user_scram_credentials(_version: i16) -> AlterUserScramCredentialsRequest {
    AlterUserScramCredentialsRequest::default()
        .with_deletions(vec![ScramCredentialDeletion::default()
            .with_name(text("bob"))
            .with_mechanism(1)])
        .with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(text("alice"))
                .with_mechanism(2)
                .with_iterations(4096)
                .with_salt(Bytes::from_static(b"0123456789abcdef"))
                .with_salted_password(Bytes::from(vec![0x5a; 64])),
            ScramCredentialUpsertion::default()
                .with_name(text("carol"))
                .with_mechanism(1)
                .with_iterations(8192)
                .with_salt(Bytes::new())
                .with_salted_password(Bytes::from(vec![0xa5; 32])),
        ])
}

/// Every match type and entity type `kafka-configs --describe` sends: an
/// exact user (with a name), the default client id (null name), any ip.
fn describe_client_quotas(version: i16) -> DescribeClientQuotasRequest {
    DescribeClientQuotasRequest::default()
        .with_components(vec![
            QuotaFilterComponent::default()
                .with_entity_type(text("user"))
                .with_match_type(0)
                .with_match_name(Some(text("alice"))),
            QuotaFilterComponent::default()
                .with_entity_type(text("client-id"))
                .with_match_type(1)
                .with_match_name(None),
            QuotaFilterComponent::default()
                .with_entity_type(text("ip"))
                .with_match_type(2)
                .with_match_name(None),
        ])
        .with_strict(version >= 1)
}

/// The tag of the unknown tagged field added to flexible seeds: above every
/// tag the request schemas declare, so tags stay in ascending order.
const UNKNOWN_TAG: u32 = 10;

/// The body of the unknown tagged field: a compact string and an i32 count,
/// so mutations inside it look like real fields.
fn unknown_tag_body() -> Writer {
    let mut w = Writer::new();
    w.put_string("unknown-tagged-field", true).unwrap();
    w.put_i32(3);
    w
}

/// `body` encoded in `version`; in a flexible version, with one more
/// top-level tagged field that the codec does not know and must skip.
/// `untagged` is `body` with its schema-declared top-level tagged fields at
/// their defaults: its encoding ends in an empty tagged section (a 0 count)
/// where `body`'s tagged section starts.
fn encode_seed<T: Message>(body: &T, untagged: &T, version: i16) -> Vec<u8> {
    fn encode<T: Message>(body: &T, version: i16) -> Vec<u8> {
        let mut w = Writer::new();
        body.encode(&mut w, version)
            .unwrap_or_else(|e| panic!("seed request does not encode at v{version}: {e}"));
        w.into_bytes().to_vec()
    }
    let mut encoded = encode(body, version);
    if T::FIRST_FLEXIBLE.is_none_or(|first| version < first) {
        return encoded;
    }
    let bare = encode(untagged, version);
    let at = bare.len() - 1;
    assert_eq!(
        bare[at],
        0,
        "{} v{version}: no empty tagged section at the end",
        std::any::type_name::<T>()
    );
    assert_eq!(
        encoded[..at],
        bare[..at],
        "{} v{version}: tagged fields are not last",
        std::any::type_name::<T>()
    );
    // The count is a one-byte varint here (a seed has few tagged fields).
    let count = encoded[at];
    assert!(count < 0x7f);
    encoded[at] = count + 1;
    let mut extra = Writer::new();
    extra.put_uvarint(UNKNOWN_TAG);
    let field = unknown_tag_body().into_bytes();
    extra.put_uvarint(u32::try_from(field.len()).unwrap());
    extra.put_slice(&field);
    encoded.extend_from_slice(&extra.into_bytes());
    encoded
}

/// The body of the seed request for `key` at `version`. Produce v0–v2 are
/// advertised but not decoded: they get the v3 body, which the decoder must
/// refuse cleanly.
fn seed_body(key: ApiKey, version: i16) -> Vec<u8> {
    /// A request without schema-declared top-level tagged fields.
    fn plain<T: Message>(body: T, version: i16) -> Vec<u8> {
        encode_seed(&body, &body, version)
    }
    match key {
        ApiKey::Produce => plain(produce(version.max(3)), version.max(3)),
        ApiKey::Fetch => {
            let body = fetch(version);
            let untagged = body.clone().with_cluster_id(None);
            encode_seed(&body, &untagged, version)
        }
        ApiKey::ListOffsets => plain(list_offsets(version), version),
        ApiKey::Metadata => plain(metadata(version), version),
        ApiKey::ApiVersions => plain(api_versions(version), version),
        ApiKey::CreateTopics => plain(create_topics(version), version),
        ApiKey::DeleteTopics => plain(delete_topics(version), version),
        ApiKey::DescribeConfigs => plain(describe_configs(version), version),
        ApiKey::InitProducerId => plain(init_producer_id(version), version),
        ApiKey::FindCoordinator => plain(find_coordinator(version), version),
        ApiKey::JoinGroup => plain(join_group(version), version),
        ApiKey::SyncGroup => plain(sync_group(version), version),
        ApiKey::Heartbeat => plain(heartbeat(version), version),
        ApiKey::LeaveGroup => plain(leave_group(version), version),
        ApiKey::OffsetCommit => plain(offset_commit(version), version),
        ApiKey::OffsetFetch => plain(offset_fetch(version), version),
        ApiKey::DescribeGroups => plain(describe_groups(version), version),
        ApiKey::ListGroups => plain(list_groups(version), version),
        ApiKey::DeleteGroups => plain(delete_groups(version), version),
        ApiKey::DeleteRecords => plain(delete_records(version), version),
        ApiKey::CreatePartitions => plain(create_partitions(version), version),
        ApiKey::AlterConfigs => plain(alter_configs(version), version),
        ApiKey::IncrementalAlterConfigs => plain(incremental_alter_configs(version), version),
        ApiKey::DescribeLogDirs => plain(describe_log_dirs(version), version),
        ApiKey::OffsetDelete => plain(offset_delete(version), version),
        ApiKey::DescribeCluster => plain(describe_cluster(version), version),
        ApiKey::AddPartitionsToTxn => plain(add_partitions_to_txn(version), version),
        ApiKey::AddOffsetsToTxn => plain(add_offsets_to_txn(version), version),
        ApiKey::EndTxn => plain(end_txn(version), version),
        ApiKey::TxnOffsetCommit => plain(txn_offset_commit(version), version),
        ApiKey::DescribeTransactions => plain(describe_transactions(version), version),
        ApiKey::ListTransactions => plain(list_transactions(version), version),
        ApiKey::SaslHandshake => plain(sasl_handshake(version), version),
        ApiKey::SaslAuthenticate => plain(sasl_authenticate(version), version),
        ApiKey::DescribeAcls => plain(describe_acls(version), version),
        ApiKey::CreateAcls => plain(create_acls(version), version),
        ApiKey::DeleteAcls => plain(delete_acls(version), version),
        ApiKey::DescribeUserScramCredentials => {
            plain(describe_user_scram_credentials(version), version)
        }
        ApiKey::AlterUserScramCredentials => plain(alter_user_scram_credentials(version), version),
        ApiKey::DescribeClientQuotas => plain(describe_client_quotas(version), version),
        other => panic!("{other:?} has no seed request: add one, and a body type"),
    }
}

/// Header + body of the seed request, without the size prefix. A v2
/// (flexible) header carries an unknown tagged field: Kafka defines none in
/// the request header, and the decoder must skip them.
fn seed_frame(key: ApiKey, version: i16) -> Vec<u8> {
    let header = RequestHeader {
        request_api_key: key as i16,
        request_api_version: version,
        correlation_id: 0x0102_0304,
        client_id: Some(text("fuzz-client")),
    };
    let header_version = key.request_header_version(version);
    let mut w = Writer::new();
    if header_version >= 2 {
        // v2 is v1 followed by a tagged section.
        header.encode(&mut w, 1).unwrap();
        w.put_tagged_fields(vec![(UNKNOWN_TAG, unknown_tag_body())])
            .unwrap();
    } else {
        header.encode(&mut w, header_version).unwrap();
    }
    let mut frame = w.into_bytes().to_vec();
    frame.extend(seed_body(key, version));
    frame
}

/// True when this file has a body type and a seed request for `key`.
fn is_covered(key: ApiKey) -> bool {
    let request = Request {
        api_key: key,
        version: 0,
        header: RequestHeader::default(),
        body: Bytes::new(),
    };
    request.body_decodes().is_some()
}

/// Every (API, version) pair fuzzed: each advertised one this file covers,
/// then every version the codec knows of each API it knows that is not
/// advertised yet (the rest fail `given_advertised_api_table_then_every_api_is_fuzzed`
/// and `given_every_codec_api_then_it_is_fuzzed_before_it_is_advertised`).
fn fuzzed_pairs() -> Vec<(ApiKey, i16)> {
    let advertised = ADVERTISED
        .iter()
        .filter(|r| is_covered(r.key))
        .flat_map(|r| (r.min..=r.max).map(move |v| (r.key, v)));
    let not_yet_advertised = CODEC_APIS
        .iter()
        .filter(|(key, _, _)| versions::advertised(*key as i16).is_none() && is_covered(*key))
        .flat_map(|(key, range, _)| (range.min..=range.max).map(move |v| (*key, v)));
    advertised.chain(not_yet_advertised).collect()
}

// ---------------------------------------------------------------------------
// Mutations

/// Values that wire counts and lengths must survive.
const BIG_COUNTS: [u32; 6] = [
    0x7fff_ffff,
    0xffff_ffff,
    0x8000_0000,
    0x0000_ffff,
    0x0100_0000,
    0x7fff_fffe,
];

/// Unsigned varints (compact arrays/strings, tagged-field counts) that decode huge.
const BIG_VARINTS: [&[u8]; 3] = [
    &[0xff, 0xff, 0xff, 0xff, 0x07],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0x80, 0x80, 0x80, 0x80, 0x08],
];

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    OverwriteCount(Index, usize),
    InsertCount(Index, usize),
    OverwriteVarint(Index, usize),
    Insert(Index, Vec<u8>),
    Delete(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 0..BIG_COUNTS.len()).prop_map(|(i, c)| Mutation::OverwriteCount(i, c)),
        (any::<Index>(), 0..BIG_COUNTS.len()).prop_map(|(i, c)| Mutation::InsertCount(i, c)),
        (any::<Index>(), 0..BIG_VARINTS.len()).prop_map(|(i, c)| Mutation::OverwriteVarint(i, c)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), 1u8..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn overwrite(bytes: &mut Vec<u8>, at: usize, with: &[u8]) {
    for (k, b) in with.iter().enumerate() {
        match bytes.get_mut(at + k) {
            Some(slot) => *slot = *b,
            None => bytes.push(*b),
        }
    }
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len();
    let at = |i: &Index| if len == 0 { 0 } else { i.index(len) };
    match mutation {
        Mutation::FlipBit(i, bit) if len > 0 => bytes[at(i)] ^= 1 << bit,
        Mutation::SetByte(i, v) if len > 0 => bytes[at(i)] = *v,
        Mutation::FlipBit(..) | Mutation::SetByte(..) => {}
        Mutation::Truncate(i) => bytes.truncate(at(i)),
        Mutation::OverwriteCount(i, c) => overwrite(bytes, at(i), &BIG_COUNTS[*c].to_be_bytes()),
        Mutation::InsertCount(i, c) => {
            let pos = at(i);
            bytes.splice(pos..pos, BIG_COUNTS[*c].to_be_bytes());
        }
        Mutation::OverwriteVarint(i, c) => overwrite(bytes, at(i), BIG_VARINTS[*c]),
        Mutation::Insert(i, extra) => {
            let pos = at(i);
            bytes.splice(pos..pos, extra.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let pos = at(i);
            let end = (pos + usize::from(*n)).min(len);
            bytes.drain(pos..end);
        }
    }
}

/// A fuzzed (API, version), uniformly over all pairs.
fn fuzzed_pair() -> impl Strategy<Value = (ApiKey, i16)> {
    let pairs = fuzzed_pairs();
    any::<Index>().prop_map(move |i| pairs[i.index(pairs.len())])
}

/// Why `allocations` break the budget for `input`, if they do.
fn over_budget(
    input: &[u8],
    key: ApiKey,
    version: i16,
    allocations: Allocations,
) -> Option<String> {
    let budget = allocation_budget(input.len());
    if allocations.largest <= budget && allocations.peak <= budget {
        return None;
    }
    Some(format!(
        "decoding {} bytes as {key:?} v{version}: largest single allocation {} bytes, \
         peak held {} bytes (budget {budget} for each); input starts {:02x?}",
        input.len(),
        allocations.largest,
        allocations.peak,
        &input[..input.len().min(48)],
    ))
}

fn check_budget(input: &[u8], key: ApiKey, version: i16, allocations: Allocations) {
    if let Some(why) = over_budget(input, key, version, allocations) {
        panic!("{why}");
    }
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn given_advertised_api_table_then_every_api_is_fuzzed() {
    let missing: Vec<ApiKey> = ADVERTISED
        .iter()
        .map(|r| r.key)
        .filter(|key| !is_covered(*key))
        .collect();
    assert!(
        missing.is_empty(),
        "advertised but not fuzzed: {missing:?}; add each to `Request::body_decodes`, `seed_body` \
         and the round-trip test here, and to fuzz/fuzz_targets/request_decode.rs"
    );
}

#[test]
fn given_every_codec_api_then_it_is_fuzzed_before_it_is_advertised() {
    let missing: Vec<ApiKey> = CODEC_APIS
        .iter()
        .map(|(key, _, _)| *key)
        .filter(|key| !is_covered(*key))
        .collect();
    assert!(
        missing.is_empty(),
        "known to the codec but not fuzzed: {missing:?}; add each to `Request::body_decodes`, \
         `seed_body` and the round-trip test here, and to fuzz/fuzz_targets/request_decode.rs"
    );
    let pairs = fuzzed_pairs();
    for (key, range, _) in CODEC_APIS {
        if versions::advertised(*key as i16).is_none() {
            for version in range.min..=range.max {
                assert!(
                    pairs.contains(&(*key, version)),
                    "{key:?} v{version} is not fuzzed"
                );
            }
        }
    }
}

#[test]
fn given_api_not_advertised_yet_when_framed_then_the_broker_path_refuses_it_at_the_version_gate() {
    // What makes fuzzing an unadvertised API safe to add: the broker never
    // decodes its body until it is advertised (and has a handler).
    for (key, version) in fuzzed_pairs() {
        if versions::advertised(key as i16).is_none() {
            assert!(
                !versions::is_decoded(key as i16, version),
                "{key:?} v{version}"
            );
        }
    }
}

#[test]
fn given_seed_request_of_every_served_api_and_version_then_it_decodes_back_to_itself() {
    // The mutation corpus starts from valid requests; prove they are.
    for (key, version) in fuzzed_pairs() {
        let frame = Bytes::from(seed_frame(key, version));
        let prefix = header_prefix(&frame).unwrap();
        assert_eq!((prefix.api_key, prefix.api_version), (key as i16, version));
        if versions::advertised(key as i16).is_some() && !versions::is_decoded(key as i16, version)
        {
            continue; // Produce v0–v2: advertised, never decoded
        }
        let request = decode_header(frame, key, version).unwrap();
        assert_eq!(request.header.client_id.as_deref(), Some("fuzz-client"));
        macro_rules! round_trip {
            ($ty:ty, $build:expr) => {{
                let decoded = request.decode_body::<$ty>().unwrap();
                assert_eq!(decoded, $build(version), "{key:?} v{version}");
                // Every byte is read: the unknown tagged fields were skipped,
                // not left over.
                let mut reader = Reader::new(request.body.clone());
                <$ty>::decode(&mut reader, version).unwrap();
                assert_eq!(reader.remaining(), 0, "{key:?} v{version}: bytes left over");
            }};
        }
        match key {
            ApiKey::Produce => round_trip!(ProduceRequest, produce),
            ApiKey::Fetch => round_trip!(FetchRequest, fetch),
            ApiKey::ListOffsets => round_trip!(ListOffsetsRequest, list_offsets),
            ApiKey::Metadata => round_trip!(MetadataRequest, metadata),
            ApiKey::ApiVersions => round_trip!(ApiVersionsRequest, api_versions),
            ApiKey::CreateTopics => round_trip!(CreateTopicsRequest, create_topics),
            ApiKey::DeleteTopics => round_trip!(DeleteTopicsRequest, delete_topics),
            ApiKey::DescribeConfigs => round_trip!(DescribeConfigsRequest, describe_configs),
            ApiKey::InitProducerId => round_trip!(InitProducerIdRequest, init_producer_id),
            ApiKey::FindCoordinator => round_trip!(FindCoordinatorRequest, find_coordinator),
            ApiKey::JoinGroup => round_trip!(JoinGroupRequest, join_group),
            ApiKey::SyncGroup => round_trip!(SyncGroupRequest, sync_group),
            ApiKey::Heartbeat => round_trip!(HeartbeatRequest, heartbeat),
            ApiKey::LeaveGroup => round_trip!(LeaveGroupRequest, leave_group),
            ApiKey::OffsetCommit => round_trip!(OffsetCommitRequest, offset_commit),
            ApiKey::OffsetFetch => round_trip!(OffsetFetchRequest, offset_fetch),
            ApiKey::DescribeGroups => round_trip!(DescribeGroupsRequest, describe_groups),
            ApiKey::ListGroups => round_trip!(ListGroupsRequest, list_groups),
            ApiKey::DeleteGroups => round_trip!(DeleteGroupsRequest, delete_groups),
            ApiKey::DeleteRecords => round_trip!(DeleteRecordsRequest, delete_records),
            ApiKey::CreatePartitions => round_trip!(CreatePartitionsRequest, create_partitions),
            ApiKey::AlterConfigs => round_trip!(AlterConfigsRequest, alter_configs),
            ApiKey::IncrementalAlterConfigs => {
                round_trip!(IncrementalAlterConfigsRequest, incremental_alter_configs)
            }
            ApiKey::DescribeLogDirs => round_trip!(DescribeLogDirsRequest, describe_log_dirs),
            ApiKey::OffsetDelete => round_trip!(OffsetDeleteRequest, offset_delete),
            ApiKey::DescribeCluster => round_trip!(DescribeClusterRequest, describe_cluster),
            ApiKey::AddPartitionsToTxn => {
                round_trip!(AddPartitionsToTxnRequest, add_partitions_to_txn)
            }
            ApiKey::AddOffsetsToTxn => round_trip!(AddOffsetsToTxnRequest, add_offsets_to_txn),
            ApiKey::EndTxn => round_trip!(EndTxnRequest, end_txn),
            ApiKey::TxnOffsetCommit => round_trip!(TxnOffsetCommitRequest, txn_offset_commit),
            ApiKey::DescribeTransactions => {
                round_trip!(DescribeTransactionsRequest, describe_transactions)
            }
            ApiKey::ListTransactions => round_trip!(ListTransactionsRequest, list_transactions),
            ApiKey::SaslHandshake => round_trip!(SaslHandshakeRequest, sasl_handshake),
            ApiKey::SaslAuthenticate => round_trip!(SaslAuthenticateRequest, sasl_authenticate),
            ApiKey::DescribeAcls => round_trip!(DescribeAclsRequest, describe_acls),
            ApiKey::CreateAcls => round_trip!(CreateAclsRequest, create_acls),
            ApiKey::DeleteAcls => round_trip!(DeleteAclsRequest, delete_acls),
            ApiKey::DescribeUserScramCredentials => round_trip!(
                DescribeUserScramCredentialsRequest,
                describe_user_scram_credentials
            ),
            ApiKey::AlterUserScramCredentials => {
                round_trip!(
                    AlterUserScramCredentialsRequest,
                    alter_user_scram_credentials
                )
            }
            ApiKey::DescribeClientQuotas => {
                round_trip!(DescribeClientQuotasRequest, describe_client_quotas)
            }
            other => panic!("{other:?} has no round-trip case"),
        }
    }
}

#[test]
fn given_huge_count_in_each_array_of_seed_requests_then_decode_refuses_without_large_allocation() {
    // Deterministic sweep: a big count at every byte position of every seed.
    for (key, version) in fuzzed_pairs() {
        let seed = seed_frame(key, version);
        for at in 0..seed.len() {
            for count in BIG_COUNTS {
                let mut input = seed.clone();
                overwrite(&mut input, at, &count.to_be_bytes());
                let allocations = decode_everything(&input, key, version);
                check_budget(&input, key, version, allocations);
            }
            for varint in BIG_VARINTS {
                let mut input = seed.clone();
                overwrite(&mut input, at, varint);
                let allocations = decode_everything(&input, key, version);
                check_budget(&input, key, version, allocations);
            }
        }
    }
}

#[test]
fn given_count_of_one_element_per_remaining_byte_then_preallocation_stays_within_budget() {
    // The codec refuses a count above the bytes left; a count just below it
    // is plausible, and an array decoder that reserved count ×
    // size_of::<element>() up front would ask for more than the budget (64 ×
    // FILL + 64 KiB with `FILL` bytes left) for any element type larger than
    // ~68 bytes. `sediment_protocol::wire` caps what it reserves at
    // `MAX_PREALLOCATED_ELEMENTS`; this holds it to that.
    const FILL: usize = 16 * 1024;
    let count = FILL as u32;
    // Compact arrays store count + 1 as an unsigned varint.
    let varint = {
        let mut v = count + 1;
        let mut out = Vec::new();
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out
    };
    let mut failures = Vec::new();
    for (key, version) in fuzzed_pairs() {
        let seed = seed_frame(key, version);
        for at in 0..seed.len() {
            for encoded in [&count.to_be_bytes()[..], &varint[..]] {
                let mut input = seed[..at].to_vec();
                input.extend_from_slice(encoded);
                // 0xff filler: the first element fails fast, after the allocation.
                input.resize(input.len() + FILL, 0xff);
                let ((), Allocations { largest, .. }) =
                    allocations_during(|| decode_as(&Bytes::copy_from_slice(&input), key, version));
                if largest > allocation_budget(input.len()) {
                    failures.push(format!(
                        "{key:?} v{version}: count {count} at byte {at} of the frame: \
                         {largest} bytes in one allocation for a {}-byte input (budget {})",
                        input.len(),
                        allocation_budget(input.len())
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} over-budget pre-allocations (an array decoder reserving count × size_of::<element>() \
         bytes: a count up to the bytes left passes the codec's length check), e.g.:\n{}",
        failures.len(),
        failures
            .iter()
            .step_by((failures.len() / 20).max(1))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn given_oversized_or_negative_frame_length_then_frame_decoder_refuses_before_buffering() {
    let decoder = FrameDecoder::new(100 << 20);
    for size in [i32::MAX, (100 << 20) + 1, -1, i32::MIN] {
        let mut buf = BytesMut::from(&size.to_be_bytes()[..]);
        buf.extend_from_slice(b"some bytes");
        let (result, allocations) = allocations_during(|| decoder.decode(&mut buf));
        assert!(result.is_err(), "size {size} accepted");
        assert!(
            allocations.largest < 1024,
            "size {size}: allocated {allocations:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn given_arbitrary_bytes_when_decoded_as_any_served_request_then_no_panic_and_bounded_allocation(
        (key, version) in fuzzed_pair(),
        input in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let allocations = decode_everything(&input, key, version);
        let why = over_budget(&input, key, version, allocations);
        prop_assert!(why.is_none(), "{}", why.unwrap_or_default());
    }

    #[test]
    fn given_arbitrary_bytes_after_valid_header_prefix_then_no_panic_and_bounded_allocation(
        (key, version) in fuzzed_pair(),
        rest in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        // A real prefix gets arbitrary bytes past the version gate.
        let mut input = (key as i16).to_be_bytes().to_vec();
        input.extend_from_slice(&version.to_be_bytes());
        input.extend_from_slice(&7i32.to_be_bytes());
        input.extend_from_slice(&rest);
        let allocations = decode_everything(&input, key, version);
        let why = over_budget(&input, key, version, allocations);
        prop_assert!(why.is_none(), "{}", why.unwrap_or_default());
    }

    #[test]
    fn given_mutated_valid_request_then_no_panic_and_bounded_allocation(
        (key, version) in fuzzed_pair(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let mut input = seed_frame(key, version);
        for m in &mutations {
            apply(&mut input, m);
        }
        let allocations = decode_everything(&input, key, version);
        let why = over_budget(&input, key, version, allocations);
        prop_assert!(why.is_none(), "{}", why.unwrap_or_default());
    }

    #[test]
    fn given_valid_frames_split_at_any_points_then_frame_decoder_yields_them_whole(
        pairs in prop::collection::vec(fuzzed_pair(), 1..4),
        cuts in prop::collection::vec(any::<Index>(), 0..6),
    ) {
        let frames: Vec<Vec<u8>> = pairs.iter().map(|&(k, v)| seed_frame(k, v)).collect();
        let mut stream = Vec::new();
        for frame in &frames {
            stream.extend_from_slice(&(frame.len() as u32).to_be_bytes());
            stream.extend_from_slice(frame);
        }
        let mut cut_points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        cut_points.push(stream.len());
        cut_points.sort_unstable();
        let decoder = FrameDecoder::new(FUZZ_MAX_FRAME);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut from = 0;
        for to in cut_points {
            buf.extend_from_slice(&stream[from..to]);
            from = to;
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                out.push(frame.to_vec());
            }
        }
        prop_assert_eq!(out, frames);
        prop_assert!(buf.is_empty());
    }
}
