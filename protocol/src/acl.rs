//! Kafka's ACL value types (KIP-11, prefixed patterns from KIP-290), named
//! once for the broker, which stores and enforces bindings, and the client,
//! which sends them in CreateAcls / DescribeAcls / DeleteAcls.
//!
//! Owns [`ResourceType`], [`PatternType`], [`AclOperation`] and
//! [`AclPermission`] with their Kafka wire codes and names, the operation
//! words the command line accepts, and which operations an ALLOW or a DENY
//! covers, and the bindings and filters built from them ([`AclBinding`],
//! [`AclBindingFilter`], with Kafka's rule for which bindings a filter
//! selects). Validation of whole bindings and the rule deciding whether a
//! binding applies to a request live in the broker
//! (`sediment_broker::security::acl`).
//!
//! Invariants:
//! - Codes and names are Kafka's: an unknown code decodes to `Unknown`,
//!   never to an error, as Kafka's `fromCode` does, so that a newer peer's
//!   value can be carried and then refused by whoever validates it.
//! - The serde form is the variant name (`Topic`, `Prefixed`, …) and the
//!   binding's field names: the broker's ACL file holds them, so renaming a
//!   variant or a field breaks that file.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::messages::create_acls::AclCreation;
use crate::messages::delete_acls::DeleteAclsFilter;
use crate::messages::DescribeAclsRequest;

/// An operation word that names no grantable operation (see
/// [`AclOperation::from_str`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ACL operation {0:?}; expected one of read, write, create, delete, alter, describe, cluster_action, describe_configs, alter_configs, idempotent_write, all")]
pub struct UnknownAclOperation(
    /// The word given.
    pub String,
);

/// Declares a Kafka enum with its wire codes; unknown codes decode to `Unknown`.
macro_rules! kafka_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $kafka:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self { $( Self::$variant => $code ),+ }
            }

            /// Decodes a wire code; codes this side does not know are `Unknown`.
            pub fn from_code(code: i8) -> Self {
                match code {
                    $( $code => Self::$variant, )+
                    _ => Self::Unknown,
                }
            }

            /// Kafka's upper-case name (`TOPIC`, `PREFIXED`, …).
            pub fn kafka_name(self) -> &'static str {
                match self { $( Self::$variant => $kafka ),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.kafka_name())
            }
        }
    };
}

kafka_enum! {
    /// What kind of resource a binding protects.
    ResourceType {
        /// A code this side does not know.
        Unknown = 0 => "UNKNOWN",
        /// In a filter: any type.
        Any = 1 => "ANY",
        /// A topic.
        Topic = 2 => "TOPIC",
        /// A consumer group.
        Group = 3 => "GROUP",
        /// The cluster (name `kafka-cluster`).
        Cluster = 4 => "CLUSTER",
        /// A transactional id.
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        /// A delegation token.
        DelegationToken = 6 => "DELEGATION_TOKEN",
        /// A user (for quotas and token creation on behalf of others).
        User = 7 => "USER",
    }
}

kafka_enum! {
    /// How a binding's resource name is matched.
    PatternType {
        /// A code this side does not know.
        Unknown = 0 => "UNKNOWN",
        /// In a filter: any pattern type, name compared exactly.
        Any = 1 => "ANY",
        /// In a filter: every binding that would apply to the named resource
        /// (literal exact, literal `*`, prefixed prefixes of the name).
        Match = 2 => "MATCH",
        /// The name is the resource's name, or `*` for all resources of the type.
        Literal = 3 => "LITERAL",
        /// The name is a prefix of the resource names it applies to.
        Prefixed = 4 => "PREFIXED",
    }
}

kafka_enum! {
    /// What a request wants to do; what a binding allows or denies.
    AclOperation {
        /// A code this side does not know.
        Unknown = 0 => "UNKNOWN",
        /// In a filter: any operation.
        Any = 1 => "ANY",
        /// In a binding: every operation.
        All = 2 => "ALL",
        /// Read (fetch, offset fetch, join a group).
        Read = 3 => "READ",
        /// Write (produce).
        Write = 4 => "WRITE",
        /// Create (topics).
        Create = 5 => "CREATE",
        /// Delete (topics, records, groups).
        Delete = 6 => "DELETE",
        /// Alter (partitions, ACLs).
        Alter = 7 => "ALTER",
        /// Describe (metadata, offsets, groups).
        Describe = 8 => "DESCRIBE",
        /// Broker-to-broker actions.
        ClusterAction = 9 => "CLUSTER_ACTION",
        /// Describe configs.
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        /// Alter configs.
        AlterConfigs = 11 => "ALTER_CONFIGS",
        /// Idempotent produce (InitProducerId without a transactional id).
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
    }
}

kafka_enum! {
    /// Whether a binding grants or refuses.
    AclPermission {
        /// A code this side does not know.
        Unknown = 0 => "UNKNOWN",
        /// In a filter: either permission.
        Any = 1 => "ANY",
        /// Refuses; wins over any ALLOW.
        Deny = 2 => "DENY",
        /// Grants.
        Allow = 3 => "ALLOW",
    }
}

impl AclOperation {
    /// Whether an ALLOW of `self` grants `requested`: the operation itself,
    /// `All`, or an operation it implies (`Describe` by `Read`, `Write`,
    /// `Delete`, `Alter`; `DescribeConfigs` by `AlterConfigs`).
    pub fn allow_covers(self, requested: AclOperation) -> bool {
        use AclOperation::*;
        self == requested
            || self == All
            || (requested == Describe && matches!(self, Read | Write | Delete | Alter))
            || (requested == DescribeConfigs && self == AlterConfigs)
    }

    /// Whether a DENY of `self` refuses `requested`: the operation itself or
    /// `All` only (a denied `Read` does not deny `Describe`, as in Kafka).
    pub fn deny_covers(self, requested: AclOperation) -> bool {
        self == requested || self == AclOperation::All
    }
}

impl FromStr for AclOperation {
    type Err = UnknownAclOperation;

    /// Parses a CLI word (`read`, `describe_configs`, `DescribeConfigs`,
    /// `IDEMPOTENT_WRITE`, …), ignoring case, `_` and `-`. `any` and
    /// `unknown` are not accepted: they are not operations one can grant.
    fn from_str(word: &str) -> Result<Self, UnknownAclOperation> {
        let normalised: String = word
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Ok(match normalised.as_str() {
            "all" => Self::All,
            "read" => Self::Read,
            "write" => Self::Write,
            "create" => Self::Create,
            "delete" => Self::Delete,
            "alter" => Self::Alter,
            "describe" => Self::Describe,
            "clusteraction" => Self::ClusterAction,
            "describeconfigs" => Self::DescribeConfigs,
            "alterconfigs" => Self::AlterConfigs,
            "idempotentwrite" => Self::IdempotentWrite,
            _ => return Err(UnknownAclOperation(word.to_string())),
        })
    }
}

/// The resource name every cluster-level binding carries (Kafka's
/// `Resource.CLUSTER_NAME`).
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// A literal resource name matching every resource of its type.
pub const WILDCARD_RESOURCE: &str = "*";

/// One ACL: `permission` for `principal` from `host` to `operation` on the
/// resources `(resource_type, resource_name, pattern_type)` designates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    /// Kind of resource.
    pub resource_type: ResourceType,
    /// Resource name, prefix, or `*` (literal only, every resource of the
    /// type); [`CLUSTER_RESOURCE_NAME`] for the cluster.
    pub resource_name: String,
    /// `Literal` or `Prefixed`.
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice`; `User:*` is every user.
    pub principal: String,
    /// `*` or a client IP address.
    pub host: String,
    /// The operation granted or refused.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} on {} {} `{}` from host {}",
            self.principal,
            self.permission,
            self.operation,
            self.resource_type,
            self.pattern_type,
            self.resource_name,
            self.host
        )
    }
}

/// What DescribeAcls and DeleteAcls select bindings with: every field must
/// match; `None` and the `Any` values match anything (see
/// [`AclBindingFilter::matches`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AclBindingFilter {
    /// Resource type, or `Any`.
    pub resource_type: ResourceType,
    /// Resource name, or `None` for any.
    pub resource_name: Option<String>,
    /// `Literal`/`Prefixed` (exact), `Any` (any type, exact name) or
    /// `Match` (every binding applying to the named resource).
    pub pattern_type: PatternType,
    /// Principal (compared exactly), or `None` for any.
    pub principal: Option<String>,
    /// Host (compared exactly), or `None` for any.
    pub host: Option<String>,
    /// Operation (compared exactly), or `Any`.
    pub operation: AclOperation,
    /// Permission, or `Any`.
    pub permission: AclPermission,
}

impl AclBindingFilter {
    /// The filter matching every binding.
    pub fn any() -> Self {
        Self {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }

    /// Whether `binding` is selected, with Kafka's rules: every concrete field
    /// must be equal (principal and host exactly: a `User:alice` filter does
    /// not select `User:*` bindings). For the name: with `Any` or the
    /// binding's own pattern type it must be equal; with `Match` a literal
    /// binding is selected if its name equals the filter's or is `*`, and a
    /// prefixed one if the filter's name starts with it.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding)
            && self
                .principal
                .as_ref()
                .is_none_or(|p| *p == binding.principal)
            && self.host.as_ref().is_none_or(|h| *h == binding.host)
            && (self.operation == AclOperation::Any || self.operation == binding.operation)
            && (self.permission == AclPermission::Any || self.permission == binding.permission)
    }

    /// Kafka's `ResourcePatternFilter.matches`.
    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != binding.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != binding.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == binding.pattern_type {
            return *name == binding.resource_name;
        }
        // Match: the bindings that would apply to the resource `name`.
        match binding.pattern_type {
            PatternType::Literal => {
                *name == binding.resource_name || binding.resource_name == WILDCARD_RESOURCE
            }
            PatternType::Prefixed => name.starts_with(binding.resource_name.as_str()),
            // Never stored (validation refuses them); selecting them would be a guess.
            PatternType::Unknown | PatternType::Any | PatternType::Match => false,
        }
    }
}

impl From<&AclBinding> for AclBindingFilter {
    /// The filter that selects exactly `binding`.
    fn from(binding: &AclBinding) -> Self {
        Self {
            resource_type: binding.resource_type,
            resource_name: Some(binding.resource_name.clone()),
            pattern_type: binding.pattern_type,
            principal: Some(binding.principal.clone()),
            host: Some(binding.host.clone()),
            operation: binding.operation,
            permission: binding.permission,
        }
    }
}

impl fmt::Display for AclBindingFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_any = |v: &Option<String>| v.clone().unwrap_or_else(|| "any".into());
        write!(
            f,
            "principal {} permission {} operation {} resource {} {} `{}` host {}",
            or_any(&self.principal),
            self.permission,
            self.operation,
            self.resource_type,
            self.pattern_type,
            or_any(&self.resource_name),
            or_any(&self.host)
        )
    }
}

// The bindings and filters as the ACL messages carry them (their fields as
// wire codes), both ways, for the client that sends them and the broker
// that reads them.

impl From<&AclBinding> for AclCreation {
    fn from(binding: &AclBinding) -> Self {
        AclCreation::default()
            .with_resource_type(binding.resource_type.code())
            .with_resource_name(binding.resource_name.clone())
            .with_resource_pattern_type(binding.pattern_type.code())
            .with_principal(binding.principal.clone())
            .with_host(binding.host.clone())
            .with_operation(binding.operation.code())
            .with_permission_type(binding.permission.code())
    }
}

impl From<&AclCreation> for AclBinding {
    fn from(creation: &AclCreation) -> Self {
        AclBinding {
            resource_type: ResourceType::from_code(creation.resource_type),
            resource_name: creation.resource_name.clone(),
            pattern_type: PatternType::from_code(creation.resource_pattern_type),
            principal: creation.principal.clone(),
            host: creation.host.clone(),
            operation: AclOperation::from_code(creation.operation),
            permission: AclPermission::from_code(creation.permission_type),
        }
    }
}

impl From<&AclBindingFilter> for DeleteAclsFilter {
    fn from(filter: &AclBindingFilter) -> Self {
        DeleteAclsFilter::default()
            .with_resource_type_filter(filter.resource_type.code())
            .with_resource_name_filter(filter.resource_name.clone())
            .with_pattern_type_filter(filter.pattern_type.code())
            .with_principal_filter(filter.principal.clone())
            .with_host_filter(filter.host.clone())
            .with_operation(filter.operation.code())
            .with_permission_type(filter.permission.code())
    }
}

impl From<&DeleteAclsFilter> for AclBindingFilter {
    fn from(filter: &DeleteAclsFilter) -> Self {
        AclBindingFilter {
            resource_type: ResourceType::from_code(filter.resource_type_filter),
            resource_name: filter.resource_name_filter.clone(),
            pattern_type: PatternType::from_code(filter.pattern_type_filter),
            principal: filter.principal_filter.clone(),
            host: filter.host_filter.clone(),
            operation: AclOperation::from_code(filter.operation),
            permission: AclPermission::from_code(filter.permission_type),
        }
    }
}

impl From<&AclBindingFilter> for DescribeAclsRequest {
    fn from(filter: &AclBindingFilter) -> Self {
        DescribeAclsRequest::default()
            .with_resource_type_filter(filter.resource_type.code())
            .with_resource_name_filter(filter.resource_name.clone())
            .with_pattern_type_filter(filter.pattern_type.code())
            .with_principal_filter(filter.principal.clone())
            .with_host_filter(filter.host.clone())
            .with_operation(filter.operation.code())
            .with_permission_type(filter.permission.code())
    }
}

impl From<&DescribeAclsRequest> for AclBindingFilter {
    fn from(request: &DescribeAclsRequest) -> Self {
        AclBindingFilter {
            resource_type: ResourceType::from_code(request.resource_type_filter),
            resource_name: request.resource_name_filter.clone(),
            pattern_type: PatternType::from_code(request.pattern_type_filter),
            principal: request.principal_filter.clone(),
            host: request.host_filter.clone(),
            operation: AclOperation::from_code(request.operation),
            permission: AclPermission::from_code(request.permission_type),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_binding_and_a_filter_then_the_acl_messages_carry_them_back_unchanged() {
        let binding = AclBinding {
            resource_type: ResourceType::Group,
            resource_name: "app-".to_string(),
            pattern_type: PatternType::Prefixed,
            principal: "User:bob".to_string(),
            host: "10.0.0.7".to_string(),
            operation: AclOperation::Read,
            permission: AclPermission::Deny,
        };
        assert_eq!(AclBinding::from(&AclCreation::from(&binding)), binding);
        let filter = AclBindingFilter {
            resource_name: None,
            ..AclBindingFilter::from(&binding)
        };
        assert_eq!(
            AclBindingFilter::from(&DeleteAclsFilter::from(&filter)),
            filter
        );
        assert_eq!(
            AclBindingFilter::from(&DescribeAclsRequest::from(&filter)),
            filter
        );
        let any = AclBindingFilter::any();
        assert_eq!(AclBindingFilter::from(&DeleteAclsFilter::from(&any)), any);
    }

    #[test]
    fn given_every_code_when_round_tripped_then_same_value() {
        for code in 0..=7 {
            assert_eq!(ResourceType::from_code(code).code(), code);
        }
        for code in 0..=4 {
            assert_eq!(PatternType::from_code(code).code(), code);
        }
        for code in 0..=12 {
            assert_eq!(AclOperation::from_code(code).code(), code);
        }
        for code in 0..=3 {
            assert_eq!(AclPermission::from_code(code).code(), code);
        }
        assert_eq!(ResourceType::TransactionalId.code(), 5);
        assert_eq!(ResourceType::User.code(), 7);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(AclOperation::IdempotentWrite.code(), 12);
        assert_eq!(AclPermission::Allow.code(), 3);
        assert_eq!(
            ResourceType::TransactionalId.to_string(),
            "TRANSACTIONAL_ID"
        );
    }

    #[test]
    fn given_code_from_a_newer_peer_when_decoded_then_unknown() {
        assert_eq!(ResourceType::from_code(42), ResourceType::Unknown);
        assert_eq!(PatternType::from_code(-1), PatternType::Unknown);
        assert_eq!(AclOperation::from_code(13), AclOperation::Unknown);
        assert_eq!(AclOperation::from_code(-1), AclOperation::Unknown);
        assert_eq!(AclPermission::from_code(4), AclPermission::Unknown);
    }

    #[test]
    fn given_cli_words_when_parsed_then_operations_ignoring_case_and_underscores() {
        let cases = [
            ("read", AclOperation::Read),
            ("WRITE", AclOperation::Write),
            ("Create", AclOperation::Create),
            ("describe", AclOperation::Describe),
            ("alter", AclOperation::Alter),
            ("delete", AclOperation::Delete),
            ("all", AclOperation::All),
            ("describe_configs", AclOperation::DescribeConfigs),
            ("DescribeConfigs", AclOperation::DescribeConfigs),
            ("alter_configs", AclOperation::AlterConfigs),
            ("idempotent_write", AclOperation::IdempotentWrite),
            ("CLUSTER_ACTION", AclOperation::ClusterAction),
        ];
        for (word, op) in cases {
            assert_eq!(word.parse::<AclOperation>(), Ok(op), "{word}");
        }
    }

    #[test]
    fn given_unknown_or_filter_only_word_when_parsed_then_refused_with_word() {
        for word in ["any", "unknown", "", "reed"] {
            assert_eq!(
                word.parse::<AclOperation>(),
                Err(UnknownAclOperation(word.to_string())),
                "{word}"
            );
        }
    }

    #[test]
    fn given_allow_read_when_describe_requested_then_implied_but_deny_read_does_not_deny_describe()
    {
        for op in [
            AclOperation::Read,
            AclOperation::Write,
            AclOperation::Delete,
            AclOperation::Alter,
            AclOperation::All,
        ] {
            assert!(op.allow_covers(AclOperation::Describe), "{op}");
        }
        assert!(AclOperation::AlterConfigs.allow_covers(AclOperation::DescribeConfigs));
        assert!(!AclOperation::Create.allow_covers(AclOperation::Describe));
        assert!(!AclOperation::Read.allow_covers(AclOperation::Write));
        assert!(!AclOperation::Read.deny_covers(AclOperation::Describe));
        assert!(AclOperation::All.deny_covers(AclOperation::Describe));
    }
}
