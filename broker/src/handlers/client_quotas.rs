//! DescribeClientQuotas (KIP-546): what `kafka-configs --bootstrap-server …
//! --describe --entity-type users` (or `clients`, `ips`) sends next to
//! DescribeUserScramCredentials.
//!
//! Sediment enforces no client quotas, so there are none to describe: a
//! valid, authorized request is answered with error 0 and an empty `entries`
//! list, never an error, so that the tool goes on to print what it did find
//! (the users' SCRAM credentials). AlterClientQuotas (49) is not offered:
//! accepting a quota that nothing enforces would mislead.
//!
//! Authorization, as Kafka: DESCRIBE_CONFIGS on the cluster, else the whole
//! response is CLUSTER_AUTHORIZATION_FAILED.
//!
//! The filter is still validated, so a client learns of a malformed filter
//! here rather than against Kafka. Each component names an entity type
//! (`user`, `client-id` or `ip`) at most once, and a match type: 0 exact (a
//! name is required), 1 the default entity, 2 any named entity (no name for
//! either). An `ip` component cannot be combined with `user` or `client-id`
//! ones (IP quotas are kept apart from user and client quotas). Anything else
//! is INVALID_REQUEST with a message saying what; an error response carries a
//! null `entries`, as Kafka's does.

use std::collections::BTreeSet;
use std::sync::Arc;

use sediment_protocol::messages::describe_client_quotas::QuotaFilterComponent;
use sediment_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use sediment_protocol::ErrorCode;

use crate::broker::Broker;
use crate::protocol::errors::Refusal;
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use crate::session::Session;

/// Entity type of a user principal's quotas.
const USER: &str = "user";
/// Entity type of a client id's quotas.
const CLIENT_ID: &str = "client-id";
/// Entity type of a client IP address's quotas (connection rate).
const IP: &str = "ip";

/// Match type: the entity with exactly the given name.
const MATCH_EXACT: i8 = 0;
/// Match type: the type's default entity.
const MATCH_DEFAULT: i8 = 1;
/// Match type: any entity with a name of this type.
const MATCH_ANY: i8 = 2;

/// The DescribeClientQuotas response: no entries (there are no quotas), or
/// the refusal.
pub fn describe_client_quotas(
    broker: &Arc<Broker>,
    request: DescribeClientQuotasRequest,
    session: &Session,
) -> DescribeClientQuotasResponse {
    if let Err(denied) = broker.authorize(
        session,
        AclOperation::DescribeConfigs,
        ResourceType::Cluster,
        CLUSTER_RESOURCE_NAME,
    ) {
        tracing::info!(principal = %session.principal, "DescribeClientQuotas refused: not authorized");
        return refused(Refusal::from(denied));
    }
    if let Err(message) = validate(&request.components) {
        tracing::debug!(principal = %session.principal, %message, "DescribeClientQuotas refused: invalid filter");
        return refused(Refusal::new(ErrorCode::InvalidRequest, message));
    }
    DescribeClientQuotasResponse::default()
        .with_error_code(0)
        .with_entries(Some(Vec::new()))
}

/// An error response: the code and message, and null entries.
fn refused(refusal: Refusal) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default()
        .with_error_code(refusal.code)
        .with_error_message(Some(refusal.message))
        .with_entries(None)
}

/// Checks the filter's components; the reason it is invalid, if it is.
fn validate(components: &[QuotaFilterComponent]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for component in components {
        let entity_type = component.entity_type.as_str();
        if ![USER, CLIENT_ID, IP].contains(&entity_type) {
            return Err(format!(
                "unknown entity type {entity_type:?}: expected {USER:?}, {CLIENT_ID:?} or {IP:?}"
            ));
        }
        if !seen.insert(entity_type) {
            return Err(format!(
                "entity type {entity_type:?} appears more than once in the filter"
            ));
        }
        match (component.match_type, &component.match_name) {
            (MATCH_EXACT, Some(_)) | (MATCH_DEFAULT | MATCH_ANY, None) => {}
            (MATCH_EXACT, None) => {
                return Err(format!(
                    "an exact match on {entity_type:?} needs a name to match, got null"
                ))
            }
            (MATCH_DEFAULT | MATCH_ANY, Some(_)) => {
                return Err(format!(
                    "match type {} on {entity_type:?} takes no name to match",
                    component.match_type
                ))
            }
            (other, _) => {
                return Err(format!(
                    "unknown match type {other} on {entity_type:?}: expected 0 (exact), 1 (default) or 2 (any)"
                ))
            }
        }
    }
    if seen.contains(IP) && (seen.contains(USER) || seen.contains(CLIENT_ID)) {
        return Err(format!(
            "an {IP:?} filter component cannot be combined with {USER:?} or {CLIENT_ID:?} ones"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::test_support::{broker, session};

    fn component(entity_type: &str, match_type: i8, name: Option<&str>) -> QuotaFilterComponent {
        QuotaFilterComponent::default()
            .with_entity_type(entity_type.to_string())
            .with_match_type(match_type)
            .with_match_name(name.map(str::to_string))
    }

    fn describe(
        broker: &Arc<Broker>,
        components: Vec<QuotaFilterComponent>,
        strict: bool,
    ) -> DescribeClientQuotasResponse {
        let request = DescribeClientQuotasRequest::default()
            .with_components(components)
            .with_strict(strict);
        describe_client_quotas(broker, request, &session("User:admin"))
    }

    #[test]
    fn given_the_filters_kafka_configs_sends_when_described_then_no_error_and_no_entries() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        for (components, strict) in [
            // --describe --entity-type users
            (vec![component(USER, MATCH_ANY, None)], true),
            // --describe --entity-type users --entity-name alice
            (vec![component(USER, MATCH_EXACT, Some("alice"))], true),
            // --describe --entity-type users --entity-default --entity-type clients
            (
                vec![
                    component(USER, MATCH_DEFAULT, None),
                    component(CLIENT_ID, MATCH_ANY, None),
                ],
                false,
            ),
            // --describe --entity-type ips
            (vec![component(IP, MATCH_ANY, None)], true),
            // An empty filter: every entity.
            (vec![], false),
        ] {
            let response = describe(&broker, components.clone(), strict);
            assert_eq!(response.error_code, 0, "{components:?}: {response:?}");
            assert_eq!(response.error_message, None, "{components:?}");
            assert_eq!(response.entries, Some(vec![]), "{components:?}");
        }
    }

    #[test]
    fn given_an_unknown_entity_or_match_type_when_described_then_invalid_request_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        for (components, says) in [
            (
                vec![component("users", MATCH_ANY, None)],
                "unknown entity type \"users\"",
            ),
            (
                vec![component("", MATCH_ANY, None)],
                "unknown entity type \"\"",
            ),
            (vec![component(USER, 3, None)], "unknown match type 3"),
            (
                vec![component(CLIENT_ID, -1, Some("x"))],
                "unknown match type -1",
            ),
            (vec![component(USER, MATCH_EXACT, None)], "needs a name"),
            (
                vec![component(USER, MATCH_DEFAULT, Some("alice"))],
                "takes no name",
            ),
            (
                vec![component(USER, MATCH_ANY, Some("alice"))],
                "takes no name",
            ),
            (
                vec![
                    component(USER, MATCH_ANY, None),
                    component(USER, MATCH_EXACT, Some("alice")),
                ],
                "more than once",
            ),
            (
                vec![
                    component(IP, MATCH_ANY, None),
                    component(USER, MATCH_ANY, None),
                ],
                "cannot be combined",
            ),
        ] {
            let response = describe(&broker, components.clone(), true);
            assert_eq!(
                response.error_code,
                ErrorCode::InvalidRequest.code(),
                "{components:?}"
            );
            let message = response.error_message.unwrap_or_default();
            assert!(message.contains(says), "{components:?}: {message}");
            assert_eq!(response.entries, None, "{components:?}");
        }
    }

    #[test]
    fn given_authorizer_when_principal_lacks_describe_configs_on_cluster_then_cluster_authorization_failed(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), true);
        let request = DescribeClientQuotasRequest::default()
            .with_components(vec![component(USER, MATCH_ANY, None)])
            .with_strict(true);

        let response = describe_client_quotas(&broker, request.clone(), &session("User:alice"));
        assert_eq!(
            response.error_code,
            ErrorCode::ClusterAuthorizationFailed.code()
        );
        assert!(response.error_message.is_some());
        assert_eq!(response.entries, None);

        // Refused before the filter is looked at: an invalid one is no oracle.
        let invalid = DescribeClientQuotasRequest::default()
            .with_components(vec![component("nope", 9, None)]);
        let response = describe_client_quotas(&broker, invalid, &session("User:alice"));
        assert_eq!(
            response.error_code,
            ErrorCode::ClusterAuthorizationFailed.code()
        );

        let response = describe_client_quotas(&broker, request, &session("User:admin"));
        assert_eq!(response.error_code, 0);
        assert_eq!(response.entries, Some(vec![]));
    }
}
