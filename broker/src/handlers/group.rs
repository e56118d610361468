//! Consumer-group APIs: FindCoordinator (this broker coordinates every
//! group and every transactional id), the classic group protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) through the [`Coordinator`] task, committed offsets
//! (OffsetCommit through the coordinator, which checks the member; OffsetFetch
//! straight from the store), and DescribeGroups, ListGroups, DeleteGroups.
//!
//! Authorization, as Kafka: FindCoordinator DESCRIBE on the group or
//! transactional id; the group protocol and OffsetCommit READ on the group
//! (OffsetCommit also READ on each topic); OffsetFetch and DescribeGroups
//! DESCRIBE on the group (OffsetFetch also DESCRIBE on each topic, and an
//! all-topics fetch leaves out topics it may not describe); ListGroups lists
//! every group with DESCRIBE on the cluster, else the groups it may
//! describe; DeleteGroups DELETE on each group.
//!
//! Choices and their reasons:
//! - JoinGroup v4+ without a member id gets MEMBER_ID_REQUIRED with a fresh
//!   `client.id-uuid` id, as Kafka does; `group.instance.id` (static
//!   membership) is ignored, so a LeaveGroup naming only an instance id gets
//!   UNKNOWN_MEMBER_ID for it.
//! - OffsetCommit: partitions of unknown topics (or beyond a topic's
//!   partition count) get UNKNOWN_TOPIC_OR_PARTITION each and the rest are
//!   committed; metadata over 4096 bytes gets OFFSET_METADATA_TOO_LARGE
//!   (Kafka's `offset.metadata.max.bytes`); v2–4's `retention_time_ms` is
//!   ignored (offsets are kept until the group is deleted); the answer waits
//!   for fsync.
//! - OffsetFetch v1–7: a partition without a committed offset gets -1 and no
//!   error, as in Kafka; v2+ with null topics returns every committed offset.
//! - DescribeGroups of a group that does not exist answers state `Dead`
//!   without an error (Kafka before v6); its client host is empty (the
//!   handler does not see the peer address).
//! - DeleteGroups v0–2 (every version the codec knows): only Empty groups
//!   (NON_EMPTY_GROUP otherwise); unknown ones get GROUP_ID_NOT_FOUND.

use std::sync::Arc;

use bytes::Bytes;
use sediment_protocol::messages::delete_groups::DeletableGroupResult;
use sediment_protocol::messages::describe_groups::{DescribedGroup, DescribedGroupMember};
use sediment_protocol::messages::find_coordinator::Coordinator as CoordinatorNode;
use sediment_protocol::messages::join_group::JoinGroupResponseMember;
use sediment_protocol::messages::leave_group::MemberResponse;
use sediment_protocol::messages::list_groups::ListedGroup;
use sediment_protocol::messages::offset_commit::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use sediment_protocol::messages::offset_fetch::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use sediment_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
};

use sediment_protocol::ErrorCode;

use crate::basics::now_ms;
use crate::broker::Broker;
use crate::group::coordinator::{CommitRequest, Coordinator, CoordinatorError, SyncRequest};
use crate::group::offsets::CommittedOffset;
use crate::group::state::{GroupError, JoinRequest};
use crate::protocol::errors::{Refusal, ToErrorCode};
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use crate::security::gatekeeper::Denied;
use crate::session::Session;

/// `key_type` of a consumer group.
const KEY_TYPE_GROUP: i8 = 0;
/// FindCoordinator `key_type` for a transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The FindCoordinator response: this broker for groups (one key before v4,
/// a batch of keys from v4).
pub fn find_coordinator(
    broker: &Arc<Broker>,
    request: FindCoordinatorRequest,
    version: i16,
    session: &Session,
) -> FindCoordinatorResponse {
    let (host, port) = broker.advertised_to(session.listener);
    let node = broker.config().broker_id;
    let answer = |key: String| {
        let mut coordinator = CoordinatorNode::default()
            .with_key(key)
            .with_node_id(-1)
            .with_port(-1);
        let resource_type = if request.key_type == KEY_TYPE_TRANSACTION {
            ResourceType::TransactionalId
        } else {
            ResourceType::Group
        };
        let denied = broker
            .authorize(
                session,
                AclOperation::Describe,
                resource_type,
                &coordinator.key,
            )
            .err();
        if let Some(denied) = denied {
            let refusal = Refusal::from(denied);
            coordinator.error_code = refusal.code;
            coordinator.error_message = Some(refusal.message);
        } else if request.key_type == KEY_TYPE_GROUP || request.key_type == KEY_TYPE_TRANSACTION {
            coordinator.node_id = node;
            coordinator.host = host.clone();
            coordinator.port = port;
        } else {
            coordinator.error_code = ErrorCode::InvalidRequest.code();
            coordinator.error_message =
                Some(format!("unknown coordinator key type {}", request.key_type));
        }
        coordinator
    };
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(
            request
                .coordinator_keys
                .iter()
                .cloned()
                .map(answer)
                .collect(),
        );
    }
    let single = answer(request.key.clone());
    let mut response = FindCoordinatorResponse::default()
        .with_error_code(single.error_code)
        .with_node_id(single.node_id)
        .with_host(single.host)
        .with_port(single.port);
    if version >= 1 {
        response.error_message = single.error_message;
    }
    response
}

/// Longest `committed_metadata` accepted (Kafka's `offset.metadata.max.bytes`).
pub const MAX_OFFSET_METADATA_BYTES: usize = 4096;

/// The operations a group takes (READ, DELETE, DESCRIBE), reported as bits
/// of Kafka's `AclOperation` in DescribeGroups v3+ when asked: those the
/// ACLs allow the client (all of them without `--authorizer`).
const GROUP_OPERATIONS: [AclOperation; 3] = [
    AclOperation::Read,
    AclOperation::Delete,
    AclOperation::Describe,
];

/// READ on the group, needed by the group protocol and OffsetCommit.
fn may_read_group(broker: &Broker, session: &Session, group: &str) -> Result<(), Denied> {
    broker.authorize(session, AclOperation::Read, ResourceType::Group, group)
}

/// An OffsetCommit refused as a whole: every partition gets `code`.
fn refuse_every_commit(request: OffsetCommitRequest, code: i16) -> OffsetCommitResponse {
    OffsetCommitResponse::default().with_topics(
        request
            .topics
            .into_iter()
            .map(|topic| {
                OffsetCommitResponseTopic::default()
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
                    .with_name(topic.name)
            })
            .collect(),
    )
}

/// The coordinator, or the error to answer without one.
fn coordinator(broker: &Broker) -> Result<&Coordinator, CoordinatorError> {
    broker.group_coordinator().ok_or(CoordinatorError::Stopped)
}

/// A group id, refused when empty.
fn group_id(id: &str) -> Result<String, CoordinatorError> {
    if id.is_empty() {
        return Err(GroupError::InvalidGroupId.into());
    }
    Ok(id.to_string())
}

/// JoinGroup v0–7: answered once the rebalance completes.
pub async fn join_group(
    broker: &Arc<Broker>,
    request: JoinGroupRequest,
    client_id: Option<String>,
    version: i16,
    session: &Session,
) -> JoinGroupResponse {
    let client_id = client_id.map(|c| c.to_string()).unwrap_or_default();
    let member_id = request.member_id.clone();
    let outcome = async {
        let group = group_id(&request.group_id)?;
        may_read_group(broker, session, &group)?;
        let prefix = if client_id.is_empty() {
            "member"
        } else {
            client_id.as_str()
        };
        let join = JoinRequest {
            member_id: request.member_id.to_string(),
            new_member_id: format!("{prefix}-{}", uuid::Uuid::new_v4()),
            client_id: client_id.clone(),
            client_host: String::new(),
            session_timeout_ms: request.session_timeout_ms,
            // v0 has no rebalance timeout: Kafka uses the session timeout
            // (and so does a client sending a negative one).
            rebalance_timeout_ms: if version >= 1 && request.rebalance_timeout_ms >= 0 {
                request.rebalance_timeout_ms
            } else {
                request.session_timeout_ms
            },
            protocol_type: request.protocol_type.to_string(),
            protocols: request
                .protocols
                .into_iter()
                .map(|p| (p.name.to_string(), p.metadata))
                .collect(),
            require_known_member_id: version >= 4,
        };
        coordinator(broker)?.join(group, join).await
    }
    .await;
    match outcome {
        Ok(joined) => JoinGroupResponse::default()
            .with_generation_id(joined.generation_id)
            .with_protocol_type((version >= 7).then_some(joined.protocol_type))
            .with_protocol_name(Some(joined.protocol_name))
            .with_leader(joined.leader)
            .with_member_id(joined.member_id)
            .with_members(
                joined
                    .members
                    .into_iter()
                    .map(|(id, metadata)| {
                        JoinGroupResponseMember::default()
                            .with_member_id(id)
                            .with_metadata(metadata)
                    })
                    .collect(),
            ),
        Err(error) => {
            let member_id = match &error {
                CoordinatorError::Group(GroupError::MemberIdRequired(id)) => id.clone(),
                _ => member_id,
            };
            JoinGroupResponse::default()
                .with_error_code(error.kafka_error_code())
                .with_generation_id(-1)
                // Nullable from v7; an empty string before.
                .with_protocol_name((version < 7).then(String::default))
                .with_member_id(member_id)
        }
    }
}

/// SyncGroup v0–5: a follower's answer waits for the leader's assignment.
pub async fn sync_group(
    broker: &Arc<Broker>,
    request: SyncGroupRequest,
    version: i16,
    session: &Session,
) -> SyncGroupResponse {
    let outcome = async {
        let group = group_id(&request.group_id)?;
        may_read_group(broker, session, &group)?;
        let sync = SyncRequest {
            member_id: request.member_id.to_string(),
            generation: request.generation_id,
            protocol_type: request.protocol_type.map(|t| t.to_string()),
            protocol_name: request.protocol_name.map(|p| p.to_string()),
            assignments: request
                .assignments
                .into_iter()
                .map(|a| (a.member_id.to_string(), a.assignment))
                .collect(),
        };
        coordinator(broker)?.sync(group, sync).await
    }
    .await;
    match outcome {
        Ok(synced) => {
            let response = SyncGroupResponse::default().with_assignment(synced.assignment);
            if version >= 5 {
                response
                    .with_protocol_type(Some(synced.protocol_type))
                    .with_protocol_name(Some(synced.protocol_name))
            } else {
                response
            }
        }
        Err(error) => SyncGroupResponse::default()
            .with_error_code(error.kafka_error_code())
            .with_assignment(Bytes::new()),
    }
}

/// Heartbeat v0–4.
pub async fn heartbeat(
    broker: &Arc<Broker>,
    request: HeartbeatRequest,
    session: &Session,
) -> HeartbeatResponse {
    let outcome = async {
        let group = group_id(&request.group_id)?;
        may_read_group(broker, session, &group)?;
        coordinator(broker)?
            .heartbeat(group, request.member_id.to_string(), request.generation_id)
            .await
    }
    .await;
    HeartbeatResponse::default().with_error_code(error_code(&outcome))
}

/// LeaveGroup v0–5: one member before v3, a batch with one result each from v3.
pub async fn leave_group(
    broker: &Arc<Broker>,
    request: LeaveGroupRequest,
    version: i16,
    session: &Session,
) -> LeaveGroupResponse {
    let identities: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
            .collect()
    } else {
        vec![(request.member_id.clone(), None)]
    };
    let outcome = async {
        let group = group_id(&request.group_id)?;
        may_read_group(broker, session, &group)?;
        let ids = identities.iter().map(|(id, _)| id.to_string()).collect();
        coordinator(broker)?.leave(group, ids).await
    }
    .await;
    let results = match outcome {
        Ok(results) => results,
        Err(error) => {
            return LeaveGroupResponse::default().with_error_code(error.kafka_error_code())
        }
    };
    let codes: Vec<i16> = results
        .iter()
        .map(|r| r.as_ref().err().map_or(0, GroupError::kafka_error_code))
        .collect();
    if version < 3 {
        return LeaveGroupResponse::default().with_error_code(codes.first().copied().unwrap_or(0));
    }
    LeaveGroupResponse::default().with_members(
        identities
            .into_iter()
            .zip(codes)
            .map(|((member_id, instance), code)| {
                MemberResponse::default()
                    .with_member_id(member_id)
                    .with_group_instance_id(instance)
                    .with_error_code(code)
            })
            .collect(),
    )
}

/// OffsetCommit v2–9: durable before the answer.
pub async fn offset_commit(
    broker: &Arc<Broker>,
    request: OffsetCommitRequest,
    version: i16,
    session: &Session,
) -> OffsetCommitResponse {
    let now = now_ms();
    if !request.group_id.is_empty() {
        if let Err(denied) = may_read_group(broker, session, &request.group_id) {
            return refuse_every_commit(request, denied.kafka_error_code());
        }
    }
    // Each partition's code, known now (refused) or after the commit (None).
    let mut codes: Vec<Vec<Option<i16>>> = Vec::with_capacity(request.topics.len());
    let mut offsets = Vec::new();
    for topic in &request.topics {
        let meta = broker.topics().get(topic.name.as_str());
        let may_read = broker.allows(
            session,
            AclOperation::Read,
            ResourceType::Topic,
            &topic.name,
        );
        let mut topic_codes = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let exists = meta
                .as_ref()
                .is_some_and(|m| (0..m.partitions).contains(&partition.partition_index));
            let metadata_len = partition.committed_metadata.as_ref().map_or(0, |m| m.len());
            if !may_read {
                topic_codes.push(Some(ErrorCode::TopicAuthorizationFailed.code()));
            } else if !exists {
                topic_codes.push(Some(ErrorCode::UnknownTopicOrPartition.code()));
            } else if metadata_len > MAX_OFFSET_METADATA_BYTES {
                topic_codes.push(Some(ErrorCode::OffsetMetadataTooLarge.code()));
            } else {
                topic_codes.push(None);
                offsets.push((
                    topic.name.to_string(),
                    partition.partition_index,
                    CommittedOffset {
                        offset: partition.committed_offset,
                        leader_epoch: if version >= 6 {
                            partition.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: partition.committed_metadata.as_ref().map(|m| m.to_string()),
                        commit_timestamp: now,
                    },
                ));
            }
        }
        codes.push(topic_codes);
    }
    let group_code = if offsets.is_empty() {
        0
    } else {
        let outcome = async {
            let group = group_id(&request.group_id)?;
            let commit = CommitRequest {
                member_id: request.member_id.to_string(),
                generation: request.generation_id_or_member_epoch,
                offsets,
            };
            coordinator(broker)?.commit(group, commit).await
        }
        .await;
        error_code(&outcome)
    };
    let topics = request
        .topics
        .into_iter()
        .zip(codes)
        .map(|(topic, topic_codes)| {
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .zip(topic_codes)
                        .map(|(partition, code)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(partition.partition_index)
                                .with_error_code(code.unwrap_or(group_code))
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// OffsetFetch v1–7: each partition's committed offset, or -1.
pub fn offset_fetch(
    broker: &Arc<Broker>,
    request: OffsetFetchRequest,
    version: i16,
    session: &Session,
) -> OffsetFetchResponse {
    let store = broker.offsets();
    let group = request.group_id.to_string();
    let may_describe_topic =
        |name: &str| broker.allows(session, AclOperation::Describe, ResourceType::Topic, name);
    let partition = |index: i32, committed: Option<CommittedOffset>| {
        let mut response = OffsetFetchResponsePartition::default()
            .with_partition_index(index)
            .with_committed_offset(-1)
            .with_metadata(Some(String::default()));
        if let Some(committed) = committed {
            response.committed_offset = committed.offset;
            response.metadata = Some(committed.metadata.unwrap_or_default());
            if version >= 5 {
                response.committed_leader_epoch = committed.leader_epoch;
            }
        }
        response
    };
    let group_denied = (!group.is_empty())
        .then(|| {
            broker
                .authorize(session, AclOperation::Describe, ResourceType::Group, &group)
                .err()
        })
        .flatten();
    if group.is_empty() || group_denied.is_some() {
        let code = match group_denied {
            Some(denied) => Refusal::from(denied).code,
            None => ErrorCode::InvalidGroupId.code(),
        };
        if version >= 2 {
            return OffsetFetchResponse::default().with_error_code(code);
        }
        // v1 has no top-level error: every partition carries it.
        let topics = request
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                OffsetFetchResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|&p| partition(p, None).with_error_code(code))
                            .collect(),
                    )
            })
            .collect();
        return OffsetFetchResponse::default().with_topics(topics);
    }
    let topics = match request.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| {
                let name = t.name.to_string();
                let may_describe = may_describe_topic(&name);
                OffsetFetchResponseTopic::default()
                    .with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|&p| {
                                if !may_describe {
                                    return partition(p, None).with_error_code(
                                        ErrorCode::TopicAuthorizationFailed.code(),
                                    );
                                }
                                // A read_committed consumer asks for stable
                                // offsets: one a transaction may still
                                // change is retried, as Kafka answers.
                                if request.require_stable
                                    && store.has_pending_txn_offset(&group, &name, p)
                                {
                                    return partition(p, None)
                                        .with_error_code(ErrorCode::UnstableOffsetCommit.code());
                                }
                                partition(p, store.fetch(&group, &name, p))
                            })
                            .collect(),
                    )
                    .with_name(t.name)
            })
            .collect(),
        // v2+: null topics = every committed offset of the group.
        None => {
            let mut by_topic: std::collections::BTreeMap<
                String,
                Vec<OffsetFetchResponsePartition>,
            > = std::collections::BTreeMap::new();
            let mut all = store.group_offsets(&group);
            all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            all.retain(|(topic, _, _)| may_describe_topic(topic));
            for (topic, index, committed) in all {
                by_topic
                    .entry(topic)
                    .or_default()
                    .push(partition(index, Some(committed)));
            }
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(topic)
                        .with_partitions(partitions)
                })
                .collect()
        }
    };
    OffsetFetchResponse::default().with_topics(topics)
}

/// DescribeGroups v0–5.
pub async fn describe_groups(
    broker: &Arc<Broker>,
    request: DescribeGroupsRequest,
    version: i16,
    session: &Session,
) -> DescribeGroupsResponse {
    let with_operations = version >= 3 && request.include_authorized_operations;
    let ids: Vec<String> = request.groups.iter().map(|g| g.to_string()).collect();
    let denied: Vec<Option<i16>> = ids
        .iter()
        .map(|id| {
            broker
                .authorize(session, AclOperation::Describe, ResourceType::Group, id)
                .err()
                .map(|denied| Refusal::from(denied).code)
        })
        .collect();
    let described = match coordinator(broker) {
        Ok(coordinator) => coordinator.describe(ids).await,
        Err(error) => Err(error),
    };
    let groups = request
        .groups
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let mut group = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_group_state(String::from("Dead"));
            if id.is_empty() {
                return group.with_error_code(ErrorCode::InvalidGroupId.code());
            }
            if let Some(code) = denied.get(i).copied().flatten() {
                return group.with_error_code(code);
            }
            let description = match &described {
                Err(error) => return group.with_error_code(error.kafka_error_code()),
                Ok(all) => all.get(i).cloned().flatten(),
            };
            if with_operations {
                group.authorized_operations = GROUP_OPERATIONS
                    .iter()
                    .filter(|op| broker.allows(session, **op, ResourceType::Group, &id))
                    .fold(0, |bits, op| bits | (1 << op.code()));
            }
            let Some(description) = description else {
                return group;
            };
            group
                .with_group_state(String::from(description.state.name()))
                .with_protocol_type(description.protocol_type)
                .with_protocol_data(description.protocol)
                .with_members(
                    description
                        .members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(m.member_id)
                                .with_client_id(m.client_id)
                                .with_client_host(m.client_host)
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// ListGroups v0–4 (v4 filters by state, case-insensitively as Kafka).
pub async fn list_groups(
    broker: &Arc<Broker>,
    request: ListGroupsRequest,
    version: i16,
    session: &Session,
) -> ListGroupsResponse {
    let may_describe_all = broker.allows(
        session,
        AclOperation::Describe,
        ResourceType::Cluster,
        CLUSTER_RESOURCE_NAME,
    );
    let listed = match coordinator(broker) {
        Ok(coordinator) => coordinator.list().await,
        Err(error) => Err(error),
    };
    let groups = match listed {
        Ok(groups) => groups,
        Err(error) => {
            return ListGroupsResponse::default().with_error_code(error.kafka_error_code())
        }
    };
    let states: Vec<String> = if version >= 4 {
        request
            .states_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    ListGroupsResponse::default().with_groups(
        groups
            .into_iter()
            .filter(|g| states.is_empty() || states.contains(&g.state.name().to_ascii_lowercase()))
            .filter(|g| {
                may_describe_all
                    || broker.allows(
                        session,
                        AclOperation::Describe,
                        ResourceType::Group,
                        &g.group_id,
                    )
            })
            .map(|g| {
                ListedGroup::default()
                    .with_group_id(g.group_id)
                    .with_protocol_type(g.protocol_type)
                    .with_group_state(String::from(g.state.name()))
            })
            .collect(),
    )
}

/// DeleteGroups v0–2: empty groups only; their offsets are deleted durably.
pub async fn delete_groups(
    broker: &Arc<Broker>,
    request: DeleteGroupsRequest,
    session: &Session,
) -> DeleteGroupsResponse {
    let may_delete =
        |id: &str| broker.allows(session, AclOperation::Delete, ResourceType::Group, id);
    let ids: Vec<String> = request
        .groups_names
        .iter()
        .filter(|g| !g.is_empty() && may_delete(g))
        .map(|g| g.to_string())
        .collect();
    let deleted = match coordinator(broker) {
        Ok(coordinator) => coordinator.delete(ids).await,
        Err(error) => Err(error),
    };
    let mut results = match &deleted {
        Ok(results) => results.iter(),
        Err(_) => [].iter(),
    };
    let results = request
        .groups_names
        .into_iter()
        .map(|id| {
            let code = if id.is_empty() {
                ErrorCode::InvalidGroupId.code()
            } else if !may_delete(&id) {
                ErrorCode::GroupAuthorizationFailed.code()
            } else {
                match (&deleted, results.next()) {
                    (Err(error), _) => error.kafka_error_code(),
                    (Ok(_), Some(result)) => error_code(result),
                    (Ok(_), None) => ErrorCode::CoordinatorNotAvailable.code(),
                }
            };
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}

/// 0, or the error's Kafka code.
fn error_code<T>(outcome: &Result<T, CoordinatorError>) -> i16 {
    outcome
        .as_ref()
        .err()
        .map_or(0, CoordinatorError::kafka_error_code)
}
