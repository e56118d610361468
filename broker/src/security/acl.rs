//! Kafka's ACL model (KIP-11, prefixed patterns from KIP-290) and the rules
//! that decide whether one binding applies to one request.
//!
//! Owns the validation CreateAcls / DescribeAcls / DeleteAcls need and the
//! rule deciding whether a binding applies to a request. The bindings and
//! filters (`AclBinding`, `AclBindingFilter`, with which bindings a filter
//! selects) and their value types (`ResourceType`, `PatternType`,
//! `AclOperation`, `AclPermission`), with Kafka's wire codes and which
//! operations an ALLOW or a DENY covers, are `sediment_protocol::acl`'s,
//! shared with the client, and re-exported here. The indexed store that answers "may P do O on
//! R" quickly lives in [`super::acl_store`]; it must agree with
//! [`binding_applies`] + [`decide`] here (a property test checks it does).
//!
//! Invariants:
//! - Codes are Kafka's: an unknown code decodes to `Unknown`, never to an
//!   error, as Kafka's `fromCode` does; validation then refuses it.
//! - A binding that passed [`validate_binding`] holds no `Unknown`, `Any` or
//!   `Match` value, a non-empty name (`kafka-cluster` for the cluster), a
//!   `Type:name` principal and a `*` or IP host. The store only ever holds
//!   such bindings, so matching never has to guess what `Any` would mean.
//! - Decision (Kafka's `StandardAuthorizer`): a request is allowed iff no
//!   applicable DENY binding covers the operation and some applicable ALLOW
//!   binding does. DENY covers only the operation itself or `All`; ALLOW also
//!   covers the operations it implies (`Describe` by `Read`, `Write`,
//!   `Delete`, `Alter`; `DescribeConfigs` by `AlterConfigs`). So denying
//!   `Read` leaves an allowed `Describe` allowed, as in Kafka.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The bindings, filters and value types are the wire codec's, shared with
/// the client; this module adds validation and the applies-to-a-request rule.
pub use sediment_protocol::acl::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternType, ResourceType,
    UnknownAclOperation, CLUSTER_RESOURCE_NAME, WILDCARD_RESOURCE,
};

/// A host matching every client address.
pub const WILDCARD_HOST: &str = "*";

/// A principal matching every user (Kafka's `User:*`).
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// Errors of the ACL model and its store. Validation variants map to Kafka's
/// `INVALID_REQUEST` (42) with their message; storage variants to an
/// unknown server error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AclError {
    /// A field held a code this broker does not know (decoded as `Unknown`).
    #[error("unknown {field} in ACL {what}")]
    UnknownValue {
        /// Which field (`resource type`, `pattern type`, `operation`, `permission`).
        field: &'static str,
        /// `binding` or `filter`.
        what: &'static str,
    },
    /// A binding held a filter-only value (`Any`, `Match`).
    #[error("{field} {value} is only valid in a filter, not in an ACL binding")]
    FilterOnlyValue {
        /// Which field.
        field: &'static str,
        /// The value, as Kafka names it (`ANY`, `MATCH`).
        value: &'static str,
    },
    /// The resource name was empty.
    #[error("resource name must not be empty")]
    EmptyResourceName,
    /// A cluster binding named something other than `kafka-cluster`.
    #[error("the cluster resource must be named {CLUSTER_RESOURCE_NAME:?}, not {name:?}")]
    InvalidClusterName {
        /// The name given.
        name: String,
    },
    /// A prefixed pattern with the wildcard name (use a literal `*` instead).
    #[error("a PREFIXED pattern cannot be the wildcard {WILDCARD_RESOURCE:?}; use a LITERAL {WILDCARD_RESOURCE:?} to match every resource")]
    PrefixedWildcard,
    /// The principal was not `Type:name`.
    #[error("principal {principal:?} must be in the form Type:name (for example User:alice)")]
    InvalidPrincipal {
        /// The principal given.
        principal: String,
    },
    /// The host was neither `*` nor an IP address.
    #[error("host {host:?} must be \"*\" or an IP address")]
    InvalidHost {
        /// The host given.
        host: String,
    },
    /// A CLI operation word was not recognised.
    #[error(transparent)]
    UnknownOperation(#[from] UnknownAclOperation),
    /// The ACL file could not be read.
    #[error("cannot read ACL file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error (shared so the error can be cloned per binding).
        source: Arc<std::io::Error>,
    },
    /// The ACL file exists but cannot be believed.
    #[error("ACL file {path} is damaged ({reason}); restore it from a backup, or move it aside to start with no ACLs (every request not from a super user will then be denied)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The ACL file could not be written; nothing was changed.
    #[error("cannot write ACL file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error (shared so the error can be cloned per binding).
        source: Arc<std::io::Error>,
    },
}

/// Checks a binding CreateAcls wants to add (Kafka answers each refusal with
/// `INVALID_REQUEST` and this error's message).
pub fn validate_binding(binding: &AclBinding) -> Result<(), AclError> {
    const WHAT: &str = "binding";
    match binding.resource_type {
        ResourceType::Unknown => {
            return Err(AclError::UnknownValue {
                field: "resource type",
                what: WHAT,
            })
        }
        ResourceType::Any => {
            return Err(AclError::FilterOnlyValue {
                field: "resource type",
                value: "ANY",
            })
        }
        _ => {}
    }
    match binding.pattern_type {
        PatternType::Unknown => {
            return Err(AclError::UnknownValue {
                field: "pattern type",
                what: WHAT,
            })
        }
        PatternType::Any | PatternType::Match => {
            return Err(AclError::FilterOnlyValue {
                field: "pattern type",
                value: binding.pattern_type.kafka_name(),
            })
        }
        PatternType::Literal | PatternType::Prefixed => {}
    }
    match binding.operation {
        AclOperation::Unknown => {
            return Err(AclError::UnknownValue {
                field: "operation",
                what: WHAT,
            })
        }
        AclOperation::Any => {
            return Err(AclError::FilterOnlyValue {
                field: "operation",
                value: "ANY",
            })
        }
        _ => {}
    }
    match binding.permission {
        AclPermission::Unknown => {
            return Err(AclError::UnknownValue {
                field: "permission",
                what: WHAT,
            })
        }
        AclPermission::Any => {
            return Err(AclError::FilterOnlyValue {
                field: "permission",
                value: "ANY",
            })
        }
        AclPermission::Deny | AclPermission::Allow => {}
    }
    if binding.resource_name.is_empty() {
        return Err(AclError::EmptyResourceName);
    }
    if binding.resource_type == ResourceType::Cluster
        && binding.resource_name != CLUSTER_RESOURCE_NAME
    {
        return Err(AclError::InvalidClusterName {
            name: binding.resource_name.clone(),
        });
    }
    if binding.pattern_type == PatternType::Prefixed && binding.resource_name == WILDCARD_RESOURCE {
        return Err(AclError::PrefixedWildcard);
    }
    if !is_valid_principal(&binding.principal) {
        return Err(AclError::InvalidPrincipal {
            principal: binding.principal.clone(),
        });
    }
    if parse_host(&binding.host).is_none() {
        return Err(AclError::InvalidHost {
            host: binding.host.clone(),
        });
    }
    Ok(())
}

/// Checks a DescribeAcls / DeleteAcls filter: only `Unknown` codes are
/// refused (every other value, `Any` and `Match` included, has a meaning).
pub fn validate_filter(filter: &AclBindingFilter) -> Result<(), AclError> {
    const WHAT: &str = "filter";
    let unknown = |field| Err(AclError::UnknownValue { field, what: WHAT });
    if filter.resource_type == ResourceType::Unknown {
        return unknown("resource type");
    }
    if filter.pattern_type == PatternType::Unknown {
        return unknown("pattern type");
    }
    if filter.operation == AclOperation::Unknown {
        return unknown("operation");
    }
    if filter.permission == AclPermission::Unknown {
        return unknown("permission");
    }
    Ok(())
}

/// `Type:name` with both parts non-empty (the name may itself hold `:`).
fn is_valid_principal(principal: &str) -> bool {
    principal
        .split_once(':')
        .is_some_and(|(kind, name)| !kind.is_empty() && !name.is_empty())
}

/// Parses a binding's host; `None` if it is neither `*` nor an IP address
/// (validation refuses such a binding, so a stored one always parses).
pub(crate) fn parse_host(host: &str) -> Option<HostPattern> {
    if host == WILDCARD_HOST {
        return Some(HostPattern::Any);
    }
    host.parse::<IpAddr>().ok().map(HostPattern::Ip)
}

/// A binding's host, parsed once so a check compares addresses, not strings
/// (`::1` and `0:0:0:0:0:0:0:1` are the same client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// `*`.
    Any,
    /// One address.
    Ip(IpAddr),
}

impl HostPattern {
    /// Whether a client at `client` is covered.
    pub(crate) fn matches(self, client: IpAddr) -> bool {
        match self {
            Self::Any => true,
            Self::Ip(ip) => ip == client,
        }
    }
}

/// Whether `binding_principal` covers the request's principal: equal, or `User:*`.
pub fn principal_matches(binding_principal: &str, principal: &str) -> bool {
    binding_principal == principal || binding_principal == WILDCARD_PRINCIPAL
}

/// Whether `binding` applies to a request by `principal` from `host` on the
/// resource `(resource_type, name)`, whatever the operation: same type; name
/// equal (literal), literal `*`, or a prefix of `name` (prefixed); principal
/// equal or `User:*`; host `*` or the client's address.
pub fn binding_applies(
    binding: &AclBinding,
    principal: &str,
    host: IpAddr,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    let name_matches = match binding.pattern_type {
        PatternType::Literal => {
            binding.resource_name == name || binding.resource_name == WILDCARD_RESOURCE
        }
        PatternType::Prefixed => name.starts_with(binding.resource_name.as_str()),
        PatternType::Unknown | PatternType::Any | PatternType::Match => false,
    };
    binding.resource_type == resource_type
        && name_matches
        && principal_matches(&binding.principal, principal)
        && parse_host(&binding.host).is_some_and(|h| h.matches(host))
}

/// The decision over a set of applicable bindings, by linear scan: denied if
/// any DENY covers `operation`, else allowed iff some ALLOW covers it. The
/// reference the indexed store is tested against; super users are the
/// store's concern.
pub fn decide<'a>(
    applicable: impl IntoIterator<Item = &'a AclBinding>,
    operation: AclOperation,
) -> bool {
    let mut allowed = false;
    for binding in applicable {
        match binding.permission {
            AclPermission::Deny if binding.operation.deny_covers(operation) => return false,
            AclPermission::Allow if binding.operation.allow_covers(operation) => allowed = true,
            _ => {}
        }
    }
    allowed
}

/// Whether `principal` from `host` may do `operation` on *some* resource of
/// `resource_type` (Kafka's `authorizeByResourceType`, used for KIP-679's
/// idempotent produce with WRITE on any topic): some ALLOW pattern covering
/// the operation names resources that no DENY covering it takes back. A
/// DENY on the literal `*` takes back everything; a DENY on a literal name
/// takes back that literal; a DENY prefix takes back the literals and
/// prefixes it starts.
pub fn allows_some_resource<'a>(
    bindings: impl IntoIterator<Item = &'a AclBinding>,
    principal: &str,
    host: IpAddr,
    operation: AclOperation,
    resource_type: ResourceType,
) -> bool {
    let applicable: Vec<&AclBinding> = bindings
        .into_iter()
        .filter(|b| {
            b.resource_type == resource_type
                && principal_matches(&b.principal, principal)
                && parse_host(&b.host).is_some_and(|h| h.matches(host))
        })
        .collect();
    let denies = |b: &&&AclBinding| {
        b.permission == AclPermission::Deny && b.operation.deny_covers(operation)
    };
    let denied = |name: &str, prefixed: bool| {
        applicable
            .iter()
            .filter(denies)
            .any(|d| match d.pattern_type {
                PatternType::Literal => {
                    d.resource_name == WILDCARD_RESOURCE || (!prefixed && d.resource_name == name)
                }
                PatternType::Prefixed => name.starts_with(d.resource_name.as_str()),
                PatternType::Unknown | PatternType::Any | PatternType::Match => false,
            })
    };
    applicable.iter().any(|a| {
        a.permission == AclPermission::Allow
            && a.operation.allow_covers(operation)
            && match a.pattern_type {
                PatternType::Literal => !denied(&a.resource_name, false),
                PatternType::Prefixed => !denied(&a.resource_name, true),
                PatternType::Unknown | PatternType::Any | PatternType::Match => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(pattern: PatternType, name: &str, op: AclOperation) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.to_string(),
            pattern_type: pattern,
            principal: "User:alice".to_string(),
            host: "*".to_string(),
            operation: op,
            permission: AclPermission::Allow,
        }
    }

    #[test]
    fn given_write_on_one_topic_then_some_topic_is_writable_unless_a_deny_takes_it_back() {
        let ip: IpAddr = "::1".parse().unwrap();
        let mut allow = binding(PatternType::Literal, "orders", AclOperation::Write);
        allow.host = "0:0:0:0:0:0:0:1".to_string();
        let some = |bindings: &[AclBinding]| {
            allows_some_resource(
                bindings,
                "User:alice",
                ip,
                AclOperation::Write,
                ResourceType::Topic,
            )
        };
        assert!(
            some(std::slice::from_ref(&allow)),
            "host compared as an address"
        );
        let deny = |pattern, name: &str| AclBinding {
            permission: AclPermission::Deny,
            ..binding(pattern, name, AclOperation::All)
        };
        assert!(!some(&[allow.clone(), deny(PatternType::Literal, "*")]));
        assert!(!some(&[
            allow.clone(),
            deny(PatternType::Literal, "orders")
        ]));
        assert!(!some(&[allow.clone(), deny(PatternType::Prefixed, "ord")]));
        assert!(some(&[
            allow.clone(),
            deny(PatternType::Literal, "payments")
        ]));
        let read_only = binding(PatternType::Literal, "orders", AclOperation::Read);
        assert!(!some(&[read_only]));
    }

    fn valid() -> AclBinding {
        binding(PatternType::Literal, "orders", AclOperation::Read)
    }

    #[test]
    fn given_valid_bindings_when_validated_then_accepted() {
        validate_binding(&valid()).unwrap();
        let mut prefixed = binding(PatternType::Prefixed, "orders-", AclOperation::Write);
        prefixed.host = "10.0.0.1".to_string();
        validate_binding(&prefixed).unwrap();
        let mut v6 = valid();
        v6.host = "::1".to_string();
        v6.resource_name = "*".to_string();
        validate_binding(&v6).unwrap();
        let mut cluster = valid();
        cluster.resource_type = ResourceType::Cluster;
        cluster.resource_name = CLUSTER_RESOURCE_NAME.to_string();
        validate_binding(&cluster).unwrap();
    }

    #[test]
    fn given_unknown_or_filter_only_values_when_validated_then_refused_per_field() {
        let mut b = valid();
        b.resource_type = ResourceType::Unknown;
        assert!(matches!(
            validate_binding(&b),
            Err(AclError::UnknownValue {
                field: "resource type",
                ..
            })
        ));
        let mut b = valid();
        b.resource_type = ResourceType::Any;
        assert!(matches!(
            validate_binding(&b),
            Err(AclError::FilterOnlyValue {
                field: "resource type",
                ..
            })
        ));
        let mut b = valid();
        b.pattern_type = PatternType::Match;
        assert!(matches!(
            validate_binding(&b),
            Err(AclError::FilterOnlyValue {
                field: "pattern type",
                value: "MATCH"
            })
        ));
        let mut b = valid();
        b.operation = AclOperation::Any;
        assert!(matches!(
            validate_binding(&b),
            Err(AclError::FilterOnlyValue {
                field: "operation",
                ..
            })
        ));
        let mut b = valid();
        b.permission = AclPermission::Unknown;
        assert!(matches!(
            validate_binding(&b),
            Err(AclError::UnknownValue {
                field: "permission",
                ..
            })
        ));
    }

    #[test]
    fn given_bad_names_principals_or_hosts_when_validated_then_refused_with_reason() {
        let mut b = valid();
        b.resource_name = String::new();
        assert!(matches!(
            validate_binding(&b),
            Err(AclError::EmptyResourceName)
        ));

        let mut b = valid();
        b.resource_type = ResourceType::Cluster;
        b.resource_name = "my-cluster".to_string();
        let err = validate_binding(&b).unwrap_err();
        assert!(matches!(&err, AclError::InvalidClusterName { name } if name == "my-cluster"));
        assert!(err.to_string().contains("kafka-cluster"), "{err}");

        let b = binding(PatternType::Prefixed, "*", AclOperation::Read);
        assert!(matches!(
            validate_binding(&b),
            Err(AclError::PrefixedWildcard)
        ));

        for principal in ["alice", ":alice", "User:", ""] {
            let mut b = valid();
            b.principal = principal.to_string();
            assert!(
                matches!(validate_binding(&b), Err(AclError::InvalidPrincipal { .. })),
                "{principal:?}"
            );
        }

        for host in ["localhost", "10.0.0", "", "10.0.0.1/24"] {
            let mut b = valid();
            b.host = host.to_string();
            assert!(
                matches!(validate_binding(&b), Err(AclError::InvalidHost { .. })),
                "{host:?}"
            );
        }
    }

    #[test]
    fn given_filter_with_unknown_when_validated_then_refused_but_any_and_match_accepted() {
        validate_filter(&AclBindingFilter::any()).unwrap();
        let mut f = AclBindingFilter::any();
        f.pattern_type = PatternType::Match;
        validate_filter(&f).unwrap();
        let mut f = AclBindingFilter::any();
        f.operation = AclOperation::Unknown;
        assert!(matches!(
            validate_filter(&f),
            Err(AclError::UnknownValue {
                field: "operation",
                what: "filter"
            })
        ));
        let mut f = AclBindingFilter::any();
        f.resource_type = ResourceType::Unknown;
        assert!(validate_filter(&f).is_err());
    }

    fn name_filter(pattern: PatternType, name: &str) -> AclBindingFilter {
        AclBindingFilter {
            resource_type: ResourceType::Topic,
            resource_name: Some(name.to_string()),
            pattern_type: pattern,
            ..AclBindingFilter::any()
        }
    }

    #[test]
    fn given_match_filter_when_matched_then_selects_literal_wildcard_and_prefixes_of_name() {
        let filter = name_filter(PatternType::Match, "orders-eu");
        let read = AclOperation::Read;
        assert!(filter.matches(&binding(PatternType::Literal, "orders-eu", read)));
        assert!(filter.matches(&binding(PatternType::Literal, "*", read)));
        assert!(filter.matches(&binding(PatternType::Prefixed, "orders-", read)));
        assert!(filter.matches(&binding(PatternType::Prefixed, "orders-eu", read)));
        assert!(!filter.matches(&binding(PatternType::Literal, "orders", read)));
        assert!(!filter.matches(&binding(PatternType::Prefixed, "orders-eu-1", read)));
        assert!(!filter.matches(&binding(PatternType::Prefixed, "payments", read)));
    }

    #[test]
    fn given_any_or_exact_pattern_filter_when_matched_then_names_compared_exactly() {
        let read = AclOperation::Read;
        let any = name_filter(PatternType::Any, "orders-");
        assert!(any.matches(&binding(PatternType::Literal, "orders-", read)));
        assert!(any.matches(&binding(PatternType::Prefixed, "orders-", read)));
        assert!(!any.matches(&binding(PatternType::Literal, "*", read)));
        assert!(!any.matches(&binding(PatternType::Prefixed, "orders", read)));

        let literal = name_filter(PatternType::Literal, "orders-");
        assert!(literal.matches(&binding(PatternType::Literal, "orders-", read)));
        assert!(!literal.matches(&binding(PatternType::Prefixed, "orders-", read)));

        let mut all_prefixed = AclBindingFilter::any();
        all_prefixed.pattern_type = PatternType::Prefixed;
        assert!(all_prefixed.matches(&binding(PatternType::Prefixed, "x", read)));
        assert!(!all_prefixed.matches(&binding(PatternType::Literal, "x", read)));
    }

    #[test]
    fn given_filter_fields_when_matched_then_each_concrete_field_must_equal() {
        let b = valid();
        assert!(AclBindingFilter::any().matches(&b));
        let cases: [fn(&mut AclBindingFilter); 5] = [
            |f| f.resource_type = ResourceType::Group,
            |f| f.principal = Some("User:*".to_string()),
            |f| f.host = Some("10.0.0.1".to_string()),
            |f| f.operation = AclOperation::All,
            |f| f.permission = AclPermission::Deny,
        ];
        for change in cases {
            let mut f = AclBindingFilter::any();
            change(&mut f);
            assert!(!f.matches(&b), "{f:?}");
        }
        let f = AclBindingFilter {
            resource_type: ResourceType::Topic,
            principal: Some("User:alice".to_string()),
            host: Some("*".to_string()),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
            ..AclBindingFilter::any()
        };
        assert!(f.matches(&b));
    }

    #[test]
    fn given_binding_when_request_differs_then_applies_only_on_type_name_principal_host() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut b = binding(PatternType::Prefixed, "orders-", AclOperation::Read);
        let topic = ResourceType::Topic;
        assert!(binding_applies(&b, "User:alice", ip, topic, "orders-eu"));
        assert!(!binding_applies(&b, "User:alice", ip, topic, "order"));
        assert!(!binding_applies(&b, "User:bob", ip, topic, "orders-eu"));
        assert!(!binding_applies(
            &b,
            "User:alice",
            ip,
            ResourceType::Group,
            "orders-eu"
        ));
        b.host = "10.0.0.2".to_string();
        assert!(!binding_applies(&b, "User:alice", ip, topic, "orders-eu"));
        b.host = "::1".to_string();
        let v6: IpAddr = "0:0:0:0:0:0:0:1".parse().unwrap();
        assert!(binding_applies(&b, "User:alice", v6, topic, "orders-eu"));
        b.principal = WILDCARD_PRINCIPAL.to_string();
        assert!(binding_applies(&b, "User:bob", v6, topic, "orders-eu"));
    }

    #[test]
    fn given_binding_when_serialised_then_round_trips_as_json() {
        let b = valid();
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<AclBinding>(&json).unwrap(), b);
    }
}
