//! Kafka's ACL value types (KIP-11, prefixed patterns from KIP-290), named
//! once for the broker, which stores and enforces bindings, and the client,
//! which sends them in CreateAcls / DescribeAcls / DeleteAcls.
//!
//! Owns [`ResourceType`], [`PatternType`], [`AclOperation`] and
//! [`AclPermission`] with their Kafka wire codes and names, the operation
//! words the command line accepts, and which operations an ALLOW or a DENY
//! covers. Validation of whole bindings and their matching live in the
//! broker (`sediment_broker::security::acl`).
//!
//! Invariants:
//! - Codes and names are Kafka's: an unknown code decodes to `Unknown`,
//!   never to an error, as Kafka's `fromCode` does, so that a newer peer's
//!   value can be carried and then refused by whoever validates it.
//! - The serde form is the variant name (`Topic`, `Prefixed`, …): the
//!   broker's ACL file holds it, so renaming a variant breaks that file.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
