//! DescribeAcls, CreateAcls and DeleteAcls (KIP-11, prefixed patterns from
//! KIP-140/KIP-290): what `kafka-acls --bootstrap-server …` and
//! `Admin.{describe,create,delete}Acls` send.
//!
//! The ACLs are kept and served by these APIs whether or not `--authorizer`
//! enforces them. Kafka only serves them when an authorizer is configured
//! (else SECURITY_DISABLED); we always do, so that the ACLs can be prepared
//! and checked before enforcement is turned on, and turning it on does not
//! lock everyone out. Without `--authorizer` the cluster checks below pass
//! for everyone, as every other check does.
//!
//! Authorization, as Kafka: DescribeAcls needs DESCRIBE on the cluster (else
//! the whole response is CLUSTER_AUTHORIZATION_FAILED); CreateAcls and
//! DeleteAcls need ALTER on the cluster (else every creation / filter result
//! is CLUSTER_AUTHORIZATION_FAILED).
//!
//! Errors: a binding or filter holding a code this broker does not know, or
//! a binding that can never match (empty name, a cluster not named
//! `kafka-cluster`, a PREFIXED `*`, a principal not `Type:name`, a host
//! neither `*` nor an IP address, a filter-only ANY/MATCH value) is
//! INVALID_REQUEST with the validation's message, per creation or per
//! filter; the others in the request still apply. If the ACL file cannot be
//! written, nothing changes and the affected results are UNKNOWN_SERVER_ERROR
//! with the write error.
//!
//! Versions: v0 has no pattern type; the codec fills in LITERAL (3) for it,
//! so a v0 creation is literal and a v0 filter selects literal bindings
//! only, which is also all a v0 response can express.
//!
//! Every binding created or deleted is logged at info with the principal
//! that asked: a change of who may do what must leave a trace.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use sediment_protocol::messages::create_acls::AclCreationResult;
use sediment_protocol::messages::delete_acls::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use sediment_protocol::messages::describe_acls::{AclDescription, DescribeAclsResource};
use sediment_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use sediment_protocol::ErrorCode;

use crate::broker::Broker;
use crate::protocol::errors::Refusal;
use crate::security::acl::{
    validate_filter, AclBinding, AclBindingFilter, AclOperation, PatternType, ResourceType,
    CLUSTER_RESOURCE_NAME,
};
use crate::session::Session;

/// The DescribeAcls response: the bindings the filter selects, grouped by
/// resource pattern.
pub fn describe_acls(
    broker: &Arc<Broker>,
    request: DescribeAclsRequest,
    session: &Session,
) -> DescribeAclsResponse {
    let refused = |refusal: Refusal| {
        DescribeAclsResponse::default()
            .with_error_code(refusal.code)
            .with_error_message(Some(refusal.message))
    };
    if let Err(denied) = broker.authorize(
        session,
        AclOperation::Describe,
        ResourceType::Cluster,
        CLUSTER_RESOURCE_NAME,
    ) {
        tracing::info!(principal = %session.principal, "DescribeAcls refused: not authorized");
        return refused(Refusal::from(denied));
    }
    let filter = AclBindingFilter::from(&request);
    if let Err(invalid) = validate_filter(&filter) {
        return refused(Refusal::from(invalid));
    }
    let mut resources: BTreeMap<(ResourceType, String, PatternType), Vec<AclDescription>> =
        BTreeMap::new();
    for binding in broker.security().acls().describe(&filter) {
        resources
            .entry((
                binding.resource_type,
                binding.resource_name,
                binding.pattern_type,
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(binding.principal)
                    .with_host(binding.host)
                    .with_operation(binding.operation.code())
                    .with_permission_type(binding.permission.code()),
            );
    }
    let resources = resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type.code())
                .with_resource_name(name)
                .with_pattern_type(pattern_type.code())
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

/// The CreateAcls response: one result per creation, in order. The ACL file
/// is written with fsync, so the work runs on the blocking pool.
pub async fn create_acls(
    broker: &Arc<Broker>,
    request: CreateAclsRequest,
    session: &Session,
) -> CreateAclsResponse {
    let count = request.creations.len();
    let broker = Arc::clone(broker);
    let session = session.clone();
    tokio::task::spawn_blocking(move || create_all(&broker, request, &session))
        .await
        .unwrap_or_else(|error| {
            tracing::error!(error = %error, "CreateAcls task failed");
            let refusal = panicked();
            CreateAclsResponse::default().with_results(
                (0..count)
                    .map(|_| creation_result(Err(refusal.clone())))
                    .collect(),
            )
        })
}

/// The DeleteAcls response: per filter, in order, the bindings it removed.
/// The ACL file is written with fsync, so the work runs on the blocking pool.
pub async fn delete_acls(
    broker: &Arc<Broker>,
    request: DeleteAclsRequest,
    session: &Session,
) -> DeleteAclsResponse {
    let count = request.filters.len();
    let broker = Arc::clone(broker);
    let session = session.clone();
    tokio::task::spawn_blocking(move || delete_all(&broker, request, &session))
        .await
        .unwrap_or_else(|error| {
            tracing::error!(error = %error, "DeleteAcls task failed");
            let refusal = panicked();
            DeleteAclsResponse::default().with_filter_results(
                (0..count)
                    .map(|_| filter_result(Err(refusal.clone())))
                    .collect(),
            )
        })
}

/// Adds the request's bindings (validated by the store, one write).
fn create_all(
    broker: &Broker,
    request: CreateAclsRequest,
    session: &Session,
) -> CreateAclsResponse {
    if let Err(denied) = broker.authorize(
        session,
        AclOperation::Alter,
        ResourceType::Cluster,
        CLUSTER_RESOURCE_NAME,
    ) {
        tracing::info!(principal = %session.principal, "CreateAcls refused: not authorized");
        let refusal = Refusal::from(denied);
        return CreateAclsResponse::default().with_results(
            request
                .creations
                .iter()
                .map(|_| creation_result(Err(refusal.clone())))
                .collect(),
        );
    }
    let acls = broker.security().acls();
    let bindings: Vec<AclBinding> = request.creations.iter().map(AclBinding::from).collect();
    // Only for the log: the store treats a binding already present as a
    // successful no-op, which should not read as a change.
    let present: HashSet<AclBinding> = acls.list().into_iter().collect();
    let outcomes = acls.create(bindings.clone());
    let results = bindings
        .iter()
        .zip(outcomes)
        .map(|(binding, outcome)| {
            let outcome = outcome.map_err(Refusal::from);
            match &outcome {
                Ok(()) if present.contains(binding) => {
                    log_binding(binding, &session.principal, Change::AlreadyPresent)
                }
                Ok(()) => log_binding(binding, &session.principal, Change::Created),
                Err(refusal) => tracing::info!(
                    principal = %session.principal,
                    error = %refusal.message,
                    "ACL creation refused"
                ),
            }
            creation_result(outcome)
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// Removes what the request's filters select (one write for all of them).
fn delete_all(
    broker: &Broker,
    request: DeleteAclsRequest,
    session: &Session,
) -> DeleteAclsResponse {
    if let Err(denied) = broker.authorize(
        session,
        AclOperation::Alter,
        ResourceType::Cluster,
        CLUSTER_RESOURCE_NAME,
    ) {
        tracing::info!(principal = %session.principal, "DeleteAcls refused: not authorized");
        let refusal = Refusal::from(denied);
        return DeleteAclsResponse::default().with_filter_results(
            request
                .filters
                .iter()
                .map(|_| filter_result(Err(refusal.clone())))
                .collect(),
        );
    }
    // Each filter: checked (an invalid one is refused on its own), or its
    // index among the valid filters handed to the store.
    let filters: Vec<AclBindingFilter> =
        request.filters.iter().map(AclBindingFilter::from).collect();
    let checked: Vec<Result<usize, Refusal>> = {
        let mut valid = 0;
        filters
            .iter()
            .map(|filter| {
                validate_filter(filter)
                    .map(|()| {
                        valid += 1;
                        valid - 1
                    })
                    .map_err(Refusal::from)
            })
            .collect()
    };
    let valid: Vec<AclBindingFilter> = filters
        .into_iter()
        .zip(&checked)
        .filter(|(_, checked)| checked.is_ok())
        .map(|(filter, _)| filter)
        .collect();
    let removed = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        broker
            .security()
            .acls()
            .delete(&valid)
            .map_err(Refusal::from)
    };
    let results = checked
        .into_iter()
        .map(|checked| {
            let outcome = checked.and_then(|index| match &removed {
                Ok(per_filter) => Ok(per_filter.get(index).cloned().unwrap_or_default()),
                Err(refusal) => Err(refusal.clone()),
            });
            match &outcome {
                Ok(bindings) => {
                    for binding in bindings {
                        log_binding(binding, &session.principal, Change::Deleted);
                    }
                }
                Err(refusal) => tracing::info!(
                    principal = %session.principal,
                    error = %refusal.message,
                    "ACL deletion refused"
                ),
            }
            filter_result(outcome)
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn creation_result(outcome: Result<(), Refusal>) -> AclCreationResult {
    match outcome {
        Ok(()) => AclCreationResult::default(),
        Err(refusal) => AclCreationResult::default()
            .with_error_code(refusal.code)
            .with_error_message(Some(refusal.message)),
    }
}

fn filter_result(outcome: Result<Vec<AclBinding>, Refusal>) -> DeleteAclsFilterResult {
    match outcome {
        Ok(bindings) => DeleteAclsFilterResult::default().with_matching_acls(
            bindings
                .into_iter()
                .map(|binding| {
                    DeleteAclsMatchingAcl::default()
                        .with_resource_type(binding.resource_type.code())
                        .with_resource_name(binding.resource_name)
                        .with_pattern_type(binding.pattern_type.code())
                        .with_principal(binding.principal)
                        .with_host(binding.host)
                        .with_operation(binding.operation.code())
                        .with_permission_type(binding.permission.code())
                })
                .collect(),
        ),
        Err(refusal) => DeleteAclsFilterResult::default()
            .with_error_code(refusal.code)
            .with_error_message(Some(refusal.message)),
    }
}

/// What a request's worker panicking answers (the panic itself is logged).
fn panicked() -> Refusal {
    Refusal::new(
        ErrorCode::UnknownServerError,
        "changing the ACLs failed unexpectedly; see the broker log",
    )
}

/// What happened to a binding, for its log line.
#[derive(Clone, Copy)]
enum Change {
    Created,
    AlreadyPresent,
    Deleted,
}

/// One info line per binding changed, naming who changed it. Client-given
/// strings are logged with `Debug` so that a control character cannot
/// forge a line.
fn log_binding(binding: &AclBinding, by: &str, change: Change) {
    macro_rules! line {
        ($message:literal) => {
            tracing::info!(
                by = %by,
                resource_type = %binding.resource_type,
                resource_name = ?binding.resource_name,
                pattern_type = %binding.pattern_type,
                principal = ?binding.principal,
                host = ?binding.host,
                operation = %binding.operation,
                permission = %binding.permission,
                $message
            )
        };
    }
    match change {
        Change::Created => line!("ACL created"),
        Change::AlreadyPresent => line!("ACL already present; nothing changed"),
        Change::Deleted => line!("ACL deleted"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::test_support::{broker, session, ADMIN};
    use sediment_protocol::acl::AclPermission;
    use sediment_protocol::messages::create_acls::AclCreation;
    use sediment_protocol::messages::delete_acls::DeleteAclsFilter;

    fn admin() -> Session {
        session(ADMIN)
    }

    fn alice() -> Session {
        session("User:alice")
    }

    /// ALLOW `principal` READ on a literal topic.
    fn read_topic(topic: &str, principal: &str) -> AclCreation {
        AclCreation::default()
            .with_resource_type(ResourceType::Topic.code())
            .with_resource_name(topic.to_string())
            .with_resource_pattern_type(PatternType::Literal.code())
            .with_principal(principal.to_string())
            .with_host("*".to_string())
            .with_operation(AclOperation::Read.code())
            .with_permission_type(AclPermission::Allow.code())
    }

    fn any_filter() -> DeleteAclsFilter {
        DeleteAclsFilter::default()
            .with_resource_type_filter(ResourceType::Any.code())
            .with_pattern_type_filter(PatternType::Any.code())
            .with_operation(AclOperation::Any.code())
            .with_permission_type(AclPermission::Any.code())
    }

    fn describe_all() -> DescribeAclsRequest {
        DescribeAclsRequest::default()
            .with_resource_type_filter(ResourceType::Any.code())
            .with_pattern_type_filter(PatternType::Any.code())
            .with_operation(AclOperation::Any.code())
            .with_permission_type(AclPermission::Any.code())
    }

    fn create(
        broker: &Arc<Broker>,
        creations: Vec<AclCreation>,
        session: &Session,
    ) -> CreateAclsResponse {
        create_all(
            broker,
            CreateAclsRequest::default().with_creations(creations),
            session,
        )
    }

    #[test]
    fn given_valid_and_invalid_creations_then_each_gets_its_own_code_and_valid_ones_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        let bad_host = read_topic("orders", "User:alice").with_host("localhost".to_string());
        let bad_principal = read_topic("orders", "alice");
        let response = create(
            &broker,
            vec![read_topic("orders", "User:alice"), bad_host, bad_principal],
            &alice(),
        );
        let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
        let invalid = ErrorCode::InvalidRequest.code();
        assert_eq!(codes, vec![0, invalid, invalid]);
        assert_eq!(response.results[0].error_message, None);
        let host_message = response.results[1].error_message.as_deref().unwrap();
        assert!(host_message.contains("localhost"), "{host_message}");
        let principal_message = response.results[2].error_message.as_deref().unwrap();
        assert!(
            principal_message.contains("Type:name"),
            "{principal_message}"
        );
        assert_eq!(broker.security().acls().list().len(), 1);
    }

    #[test]
    fn given_a_v0_creation_without_pattern_type_then_it_is_stored_literal() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        let creation = AclCreation::default()
            .with_resource_type(ResourceType::Group.code())
            .with_resource_name("billing".to_string())
            .with_principal("User:bob".to_string())
            .with_host("*".to_string())
            .with_operation(AclOperation::Read.code())
            .with_permission_type(AclPermission::Allow.code());
        let response = create(&broker, vec![creation], &alice());
        assert_eq!(response.results[0].error_code, 0);
        let stored = broker.security().acls().list();
        assert_eq!(stored[0].pattern_type, PatternType::Literal);
    }

    #[test]
    fn given_a_filter_only_pattern_in_a_creation_then_invalid_request_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        let matching = read_topic("orders", "User:alice")
            .with_resource_pattern_type(PatternType::Match.code());
        let response = create(&broker, vec![matching], &alice());
        assert_eq!(
            response.results[0].error_code,
            ErrorCode::InvalidRequest.code()
        );
        let message = response.results[0].error_message.as_deref().unwrap();
        assert!(message.contains("MATCH"), "{message}");
        assert!(broker.security().acls().list().is_empty());
    }

    #[test]
    fn given_acls_when_described_then_grouped_by_resource_with_their_entries() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        let prefixed = read_topic("orders-", "User:carol")
            .with_resource_pattern_type(PatternType::Prefixed.code());
        create(
            &broker,
            vec![
                read_topic("orders", "User:alice"),
                read_topic("orders", "User:bob"),
                prefixed,
            ],
            &alice(),
        );
        let response = describe_acls(&broker, describe_all(), &alice());
        assert_eq!(response.error_code, 0);
        assert_eq!(response.resources.len(), 2, "{response:?}");
        let literal = response
            .resources
            .iter()
            .find(|r| r.pattern_type == PatternType::Literal.code())
            .unwrap();
        assert_eq!(literal.resource_name, "orders");
        assert_eq!(literal.resource_type, ResourceType::Topic.code());
        let mut principals: Vec<&str> = literal.acls.iter().map(|a| a.principal.as_str()).collect();
        principals.sort_unstable();
        assert_eq!(principals, ["User:alice", "User:bob"]);
        assert!(literal.acls.iter().all(|a| a.host == "*"
            && a.operation == AclOperation::Read.code()
            && a.permission_type == AclPermission::Allow.code()));

        // A v0 request has no pattern filter: the codec's default, LITERAL.
        let v0 = DescribeAclsRequest::default()
            .with_resource_type_filter(ResourceType::Topic.code())
            .with_operation(AclOperation::Any.code())
            .with_permission_type(AclPermission::Any.code());
        let response = describe_acls(&broker, v0, &alice());
        assert_eq!(response.resources.len(), 1);
        assert_eq!(
            response.resources[0].pattern_type,
            PatternType::Literal.code()
        );
    }

    #[test]
    fn given_a_filter_with_an_unknown_code_when_described_then_invalid_request() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        let response = describe_acls(&broker, describe_all().with_operation(42), &alice());
        assert_eq!(response.error_code, ErrorCode::InvalidRequest.code());
        let message = response.error_message.unwrap();
        assert!(message.contains("operation"), "{message}");
    }

    #[test]
    fn given_enforcement_and_no_acl_when_acls_are_used_then_cluster_authorization_failed() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), true);
        let denied = ErrorCode::ClusterAuthorizationFailed.code();

        let response = describe_acls(&broker, describe_all(), &alice());
        assert_eq!(response.error_code, denied);
        assert!(response.error_message.unwrap().contains("User:alice"));

        let response = create(&broker, vec![read_topic("t", "User:alice"); 2], &alice());
        assert_eq!(
            response
                .results
                .iter()
                .map(|r| r.error_code)
                .collect::<Vec<_>>(),
            vec![denied, denied]
        );
        assert!(broker.security().acls().list().is_empty());

        let request = DeleteAclsRequest::default().with_filters(vec![any_filter()]);
        let response = delete_all(&broker, request, &alice());
        assert_eq!(response.filter_results[0].error_code, denied);
    }

    #[test]
    fn given_enforcement_when_a_super_user_changes_acls_then_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), true);
        let response = create(&broker, vec![read_topic("t", "User:alice")], &admin());
        assert_eq!(response.results[0].error_code, 0);
        let response = describe_acls(&broker, describe_all(), &admin());
        assert_eq!(response.error_code, 0);
        assert_eq!(response.resources.len(), 1);
    }

    #[test]
    fn given_filters_when_deleted_then_each_reports_what_it_removed_and_invalid_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        create(
            &broker,
            vec![
                read_topic("orders", "User:alice"),
                read_topic("payments", "User:alice"),
                read_topic("orders", "User:bob"),
            ],
            &alice(),
        );
        let bob = any_filter().with_principal_filter(Some("User:bob".to_string()));
        let unknown = any_filter().with_resource_type_filter(0);
        let nothing = any_filter().with_principal_filter(Some("User:nobody".to_string()));
        let orders = any_filter()
            .with_resource_type_filter(ResourceType::Topic.code())
            .with_resource_name_filter(Some("orders".to_string()));
        let request =
            DeleteAclsRequest::default().with_filters(vec![bob, unknown, nothing, orders]);
        let response = delete_all(&broker, request, &alice());
        let results = &response.filter_results;
        assert_eq!(results.len(), 4);

        assert_eq!(results[0].error_code, 0);
        assert_eq!(results[0].matching_acls.len(), 1);
        let removed = &results[0].matching_acls[0];
        assert_eq!(removed.principal, "User:bob");
        assert_eq!(removed.resource_name, "orders");
        assert_eq!(removed.pattern_type, PatternType::Literal.code());
        assert_eq!(removed.error_code, 0);

        assert_eq!(results[1].error_code, ErrorCode::InvalidRequest.code());
        assert!(results[1]
            .error_message
            .as_deref()
            .unwrap()
            .contains("resource type"));

        assert_eq!(results[2].error_code, 0);
        assert!(results[2].matching_acls.is_empty());

        // Bob's binding was reported under the first filter only, as Kafka does.
        assert_eq!(results[3].error_code, 0);
        let names: Vec<(&str, &str)> = results[3]
            .matching_acls
            .iter()
            .map(|a| (a.resource_name.as_str(), a.principal.as_str()))
            .collect();
        assert_eq!(names, [("orders", "User:alice")]);

        let left = broker.security().acls().list();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].resource_name, "payments");
    }

    #[tokio::test]
    async fn given_acls_created_without_enforcement_then_they_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let broker = broker(dir.path(), false);
            let request = CreateAclsRequest::default()
                .with_creations(vec![read_topic("orders", "User:alice")]);
            let response = create_acls(&broker, request, &alice()).await;
            assert_eq!(response.results[0].error_code, 0);
        }
        let broker = broker(dir.path(), true);
        assert!(broker.allows(&alice(), AclOperation::Read, ResourceType::Topic, "orders"));
        assert!(!broker.allows(
            &alice(),
            AclOperation::Read,
            ResourceType::Topic,
            "payments"
        ));
        let request = DeleteAclsRequest::default().with_filters(vec![any_filter()]);
        let response = delete_acls(&broker, request, &admin()).await;
        assert_eq!(response.filter_results[0].matching_acls.len(), 1);
        assert!(broker.security().acls().list().is_empty());
    }
}
