//! `sediment acl add|list|remove`: ACL bindings through the Kafka admin APIs
//! (CreateAcls, DescribeAcls, DeleteAcls), so it works against any
//! Kafka-compatible broker with an authorizer.
//!
//! The flags map to the broker's own ACL model
//! ([`sediment_broker::security::acl`]): its operation words, its codes,
//! and its validation, which `add` and `remove` run before connecting, so
//! that a binding the broker would refuse (a principal without `User:`, a
//! host that is not an IP address) is one clear line without a round trip.
//! The value types are shared (`sediment_protocol::acl`), so a validated
//! binding goes to the client as it is.
//!
//! Refusals are one line each: a broker that does not let the caller
//! change ACLs says who the caller is and to run as a super user; an
//! invalid binding gives the broker's message. [`refusal`] does this for
//! `sediment user` too.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use sediment_broker::security::acl::{
    self, AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternType, ResourceType,
    CLUSTER_RESOURCE_NAME,
};
use sediment_client::{ClientError, ErrorCode};

use super::{OutputFormat, Target};

/// ACL commands.
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add one ACL binding.
    Add(BindingArgs),
    /// List ACL bindings, all of them or those the flags select.
    List(FilterArgs),
    /// Remove the ACL bindings equal to the one the flags describe.
    Remove(BindingArgs),
}

/// The resource flags shared by every ACL command (one of them is needed
/// by `add` and `remove`).
#[derive(Debug, Args)]
pub struct ResourceArgs {
    /// A topic (or, with --prefixed, every topic whose name starts with it; `*` = every topic).
    #[arg(long, group = "resource")]
    pub topic: Option<String>,
    /// A consumer group (or a prefix of group ids with --prefixed; `*` = every group).
    #[arg(long, group = "resource")]
    pub group: Option<String>,
    /// The cluster itself (creating topics, altering ACLs and users, …).
    #[arg(long, group = "resource")]
    pub cluster: bool,
    /// A transactional id (or a prefix with --prefixed; `*` = every one).
    #[arg(long, group = "resource")]
    pub transactional_id: Option<String>,
    /// The name is a prefix of the resources' names, not a name.
    #[arg(long, conflicts_with = "cluster")]
    pub prefixed: bool,
}

impl ResourceArgs {
    /// The resource type and name the flags give, if any.
    fn resource(&self) -> Option<(ResourceType, String)> {
        if let Some(topic) = &self.topic {
            Some((ResourceType::Topic, topic.clone()))
        } else if let Some(group) = &self.group {
            Some((ResourceType::Group, group.clone()))
        } else if self.cluster {
            Some((ResourceType::Cluster, CLUSTER_RESOURCE_NAME.to_string()))
        } else {
            self.transactional_id
                .as_ref()
                .map(|id| (ResourceType::TransactionalId, id.clone()))
        }
    }

    fn pattern(&self) -> PatternType {
        if self.prefixed {
            PatternType::Prefixed
        } else {
            PatternType::Literal
        }
    }
}

/// Flags of `acl add` and `acl remove`: one whole binding.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("resource").required(true).multiple(false)))]
pub struct BindingArgs {
    /// Who: `User:NAME` (`User:*` = every user).
    #[arg(long)]
    pub principal: String,
    /// What: read, write, create, describe, alter, delete, all (also
    /// describe_configs, alter_configs, cluster_action, idempotent_write).
    #[arg(long)]
    pub operation: AclOperation,
    /// The resource.
    #[command(flatten)]
    pub resource: ResourceArgs,
    /// Deny instead of allow (a DENY wins over every ALLOW).
    #[arg(long)]
    pub deny: bool,
    /// The client address the binding applies to (`*` = any).
    #[arg(long, default_value = acl::WILDCARD_HOST)]
    pub host: String,
}

/// Flags of `acl list`: each one given narrows the list.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("resource").multiple(false)))]
pub struct FilterArgs {
    /// Only bindings of this principal (`User:NAME`; `User:*` bindings are not included).
    #[arg(long)]
    pub principal: Option<String>,
    /// Only bindings of this operation.
    #[arg(long)]
    pub operation: Option<AclOperation>,
    /// Only bindings of this resource (by default its LITERAL and PREFIXED
    /// bindings with exactly this name; with --prefixed only the PREFIXED ones).
    #[command(flatten)]
    pub resource: ResourceArgs,
    /// Every binding that applies to the named resource: its literal name,
    /// the `*` wildcard and every prefix of it.
    #[arg(long, conflicts_with = "prefixed")]
    pub matching: bool,
    /// Only DENY bindings.
    #[arg(long, conflicts_with = "allow")]
    pub deny: bool,
    /// Only ALLOW bindings.
    #[arg(long)]
    pub allow: bool,
    /// Only bindings of this host.
    #[arg(long)]
    pub host: Option<String>,
}

/// Runs an ACL command.
pub async fn run(
    command: AclCommand,
    target: Target,
    output: OutputFormat,
) -> anyhow::Result<ExitCode> {
    match command {
        AclCommand::Add(args) => {
            let binding = binding(&args)?;
            let admin = target.connect().await?.admin();
            admin
                .create_acls(std::slice::from_ref(&binding))
                .await
                .map_err(|e| refusal(&target, e, "add ACLs", "ALTER"))?;
            match output {
                OutputFormat::Table => outln!("added ACL {binding}"),
                OutputFormat::Json => outln!("{}", json!({ "added": binding_json(&binding) })),
            }
            Ok(ExitCode::SUCCESS)
        }
        AclCommand::Remove(args) => {
            let binding = binding(&args)?;
            let admin = target.connect().await?.admin();
            let filter = AclBindingFilter::from(&binding);
            let removed = admin
                .delete_acls(std::slice::from_ref(&filter))
                .await
                .map_err(|e| refusal(&target, e, "remove ACLs", "ALTER"))?;
            if removed.is_empty() {
                bail!("no ACL {binding} to remove (see `sediment acl list`)");
            }
            match output {
                OutputFormat::Table => {
                    for binding in &removed {
                        outln!("removed ACL {binding}");
                    }
                }
                OutputFormat::Json => {
                    let list: Vec<_> = removed.iter().map(binding_json).collect();
                    outln!("{}", json!({ "removed": list }));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AclCommand::List(args) => {
            let filter = filter(&args)?;
            let admin = target.connect().await?.admin();
            let mut bindings = admin
                .describe_acls(&filter)
                .await
                .map_err(|e| refusal(&target, e, "list ACLs", "DESCRIBE"))?;
            bindings.sort();
            print_bindings(&bindings, output);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The binding `add` or `remove` describes, checked as the broker checks it.
fn binding(args: &BindingArgs) -> anyhow::Result<AclBinding> {
    let Some((resource_type, resource_name)) = args.resource.resource() else {
        bail!("name a resource: --topic, --group, --cluster or --transactional-id");
    };
    let binding = AclBinding {
        resource_type,
        resource_name,
        pattern_type: args.resource.pattern(),
        principal: args.principal.clone(),
        host: args.host.clone(),
        operation: args.operation,
        permission: if args.deny {
            AclPermission::Deny
        } else {
            AclPermission::Allow
        },
    };
    acl::validate_binding(&binding).map_err(|e| anyhow!("invalid ACL: {e}"))?;
    Ok(binding)
}

/// The filter `list` describes: every flag not given matches anything.
fn filter(args: &FilterArgs) -> anyhow::Result<AclBindingFilter> {
    let resource = args.resource.resource();
    if args.matching && resource.is_none() {
        bail!("--matching needs a resource: --topic, --group, --cluster or --transactional-id");
    }
    let (resource_type, resource_name) = match resource {
        Some((kind, name)) => (kind, Some(name)),
        None => (ResourceType::Any, None),
    };
    let pattern_type = if args.matching {
        PatternType::Match
    } else if args.resource.prefixed {
        PatternType::Prefixed
    } else {
        PatternType::Any
    };
    let filter = AclBindingFilter {
        resource_type,
        resource_name,
        pattern_type,
        principal: args.principal.clone(),
        host: args.host.clone(),
        operation: args.operation.unwrap_or(AclOperation::Any),
        permission: if args.deny {
            AclPermission::Deny
        } else if args.allow {
            AclPermission::Allow
        } else {
            AclPermission::Any
        },
    };
    acl::validate_filter(&filter).map_err(|e| anyhow!("invalid ACL filter: {e}"))?;
    Ok(filter)
}

fn binding_json(binding: &AclBinding) -> serde_json::Value {
    json!({
        "principal": binding.principal,
        "permission": binding.permission.kafka_name(),
        "operation": binding.operation.kafka_name(),
        "resource_type": binding.resource_type.kafka_name(),
        "resource_name": binding.resource_name,
        "pattern_type": binding.pattern_type.kafka_name(),
        "host": binding.host,
    })
}

fn print_bindings(bindings: &[AclBinding], output: OutputFormat) {
    match output {
        OutputFormat::Table => {
            outln!(
                "{:<24} {:<10} {:<16} {:<16} {:<32} {:<9} {}",
                "PRINCIPAL",
                "PERMISSION",
                "OPERATION",
                "RESOURCE TYPE",
                "NAME",
                "PATTERN",
                "HOST"
            );
            for b in bindings {
                outln!(
                    "{:<24} {:<10} {:<16} {:<16} {:<32} {:<9} {}",
                    b.principal,
                    b.permission.kafka_name(),
                    b.operation.kafka_name(),
                    b.resource_type.kafka_name(),
                    b.resource_name,
                    b.pattern_type.kafka_name(),
                    b.host
                );
            }
        }
        OutputFormat::Json => {
            let list: Vec<_> = bindings.iter().map(binding_json).collect();
            outln!("{}", serde_json::Value::Array(list));
        }
    }
}

/// `error` from a security admin request as one line: a caller the broker
/// does not authorize is told who it is and what to do; a request the
/// broker refused gets its message; anything else keeps its cause.
/// `needs` is the operation on the cluster the request requires (ALTER for
/// changes, DESCRIBE for lists).
pub(crate) fn refusal(
    target: &Target,
    error: ClientError,
    action: &str,
    needs: &str,
) -> anyhow::Error {
    match error {
        ClientError::Kafka {
            error: ErrorCode::ClusterAuthorizationFailed,
            ..
        } => anyhow!(
            "{} is not allowed to {action}: run as a super user (a principal in \
             `sediment serve --super-users`), or have one grant it {needs} on the cluster \
             (`sediment acl add --cluster --operation {} …`)",
            caller(target),
            needs.to_ascii_lowercase()
        ),
        ClientError::Kafka {
            error: ErrorCode::SecurityDisabled,
            ..
        } => anyhow!("cannot {action}: the broker has no authorizer configured"),
        ClientError::Kafka {
            error,
            code,
            message: Some(message),
            ..
        } if !message.is_empty() => {
            anyhow!("cannot {action}: the broker refused: {message} ({error:?}, code {code})")
        }
        error => anyhow::Error::new(error).context(format!("cannot {action}")),
    }
}

/// The principal the broker sees for this command's connections.
fn caller(target: &Target) -> String {
    match &target.security.sasl {
        Some(sasl) => format!("User:{}", sasl.username),
        None => "User:ANONYMOUS (no SASL credentials were given)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Parses `sediment acl ARGS…` into its command.
    fn parse(args: &[&str]) -> Result<AclCommand, clap::Error> {
        #[derive(Debug, Parser)]
        struct Wrapper {
            #[command(subcommand)]
            command: AclCommand,
        }
        let argv = std::iter::once("acl").chain(args.iter().copied());
        Wrapper::try_parse_from(argv).map(|w| w.command)
    }

    fn binding_of(args: &[&str]) -> anyhow::Result<AclBinding> {
        match parse(args)? {
            AclCommand::Add(a) | AclCommand::Remove(a) => binding(&a),
            AclCommand::List(_) => bail!("not a binding command"),
        }
    }

    fn filter_of(args: &[&str]) -> anyhow::Result<AclBindingFilter> {
        match parse(args)? {
            AclCommand::List(a) => filter(&a),
            _ => bail!("not list"),
        }
    }

    #[test]
    fn given_add_with_topic_then_literal_allow_binding_on_every_host() -> anyhow::Result<()> {
        let b = binding_of(&[
            "add",
            "--principal",
            "User:alice",
            "--operation",
            "read",
            "--topic",
            "orders",
        ])?;
        assert_eq!(
            b,
            AclBinding {
                resource_type: ResourceType::Topic,
                resource_name: "orders".into(),
                pattern_type: PatternType::Literal,
                principal: "User:alice".into(),
                host: "*".into(),
                operation: AclOperation::Read,
                permission: AclPermission::Allow,
            }
        );
        let wire = &b;
        assert_eq!(
            (
                wire.resource_type.code(),
                wire.pattern_type.code(),
                wire.operation.code(),
                wire.permission.code()
            ),
            (2, 3, 3, 3)
        );
        Ok(())
    }

    #[test]
    fn given_remove_with_prefixed_group_deny_and_host_then_exact_filter_of_that_binding(
    ) -> anyhow::Result<()> {
        let b = binding_of(&[
            "remove",
            "--principal",
            "User:bob",
            "--operation",
            "ALL",
            "--group",
            "app-",
            "--prefixed",
            "--deny",
            "--host",
            "10.0.0.7",
        ])?;
        assert_eq!(b.resource_type, ResourceType::Group);
        assert_eq!(b.pattern_type, PatternType::Prefixed);
        assert_eq!(b.permission, AclPermission::Deny);
        assert_eq!(b.operation, AclOperation::All);
        let filter = AclBindingFilter::from(&b);
        assert_eq!(filter.resource_name.as_deref(), Some("app-"));
        assert_eq!(filter.pattern_type, PatternType::Prefixed);
        assert_eq!(filter.principal.as_deref(), Some("User:bob"));
        assert_eq!(filter.host.as_deref(), Some("10.0.0.7"));
        assert_eq!(filter.permission, AclPermission::Deny);
        Ok(())
    }

    #[test]
    fn given_cluster_or_transactional_id_then_kafka_cluster_name_and_type() -> anyhow::Result<()> {
        let b = binding_of(&[
            "add",
            "--principal",
            "User:ops",
            "--operation",
            "alter",
            "--cluster",
        ])?;
        assert_eq!(
            (b.resource_type, b.resource_name.as_str()),
            (ResourceType::Cluster, "kafka-cluster")
        );
        let b = binding_of(&[
            "add",
            "--principal",
            "User:ops",
            "--operation",
            "write",
            "--transactional-id",
            "tx-1",
        ])?;
        assert_eq!(b.resource_type, ResourceType::TransactionalId);
        Ok(())
    }

    #[test]
    fn given_binding_without_resource_or_with_two_then_usage_error() {
        let base = ["add", "--principal", "User:a", "--operation", "read"];
        assert!(parse(&base).is_err());
        let mut two = base.to_vec();
        two.extend(["--topic", "t", "--group", "g"]);
        assert!(parse(&two).is_err());
        let mut prefixed_cluster = base.to_vec();
        prefixed_cluster.extend(["--cluster", "--prefixed"]);
        assert!(parse(&prefixed_cluster).is_err());
        let mut bad_op = base.to_vec();
        bad_op[4] = "fly";
        bad_op.extend(["--topic", "t"]);
        assert!(parse(&bad_op).is_err());
    }

    #[test]
    fn given_invalid_principal_host_or_prefixed_wildcard_then_refused_before_connecting() {
        let refused = |args: &[&str]| {
            binding_of(args)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let no_type = refused(&[
            "add",
            "--principal",
            "alice",
            "--operation",
            "read",
            "--topic",
            "t",
        ]);
        assert!(no_type.contains("User:alice"), "{no_type}");
        let bad_host = refused(&[
            "add",
            "--principal",
            "User:a",
            "--operation",
            "read",
            "--topic",
            "t",
            "--host",
            "example.com",
        ]);
        assert!(bad_host.contains("IP address"), "{bad_host}");
        let wildcard = refused(&[
            "add",
            "--principal",
            "User:a",
            "--operation",
            "read",
            "--topic",
            "*",
            "--prefixed",
        ]);
        assert!(wildcard.contains("PREFIXED"), "{wildcard}");
    }

    #[test]
    fn given_list_without_flags_then_filter_selects_everything() -> anyhow::Result<()> {
        assert_eq!(filter_of(&["list"])?, AclBindingFilter::any());
        Ok(())
    }

    #[test]
    fn given_list_with_principal_and_topic_then_exact_name_of_either_pattern_type(
    ) -> anyhow::Result<()> {
        let f = filter_of(&["list", "--principal", "User:alice", "--topic", "orders"])?;
        assert_eq!(f.resource_type, ResourceType::Topic);
        assert_eq!(f.resource_name.as_deref(), Some("orders"));
        assert_eq!(f.pattern_type, PatternType::Any);
        assert_eq!(f.principal.as_deref(), Some("User:alice"));
        assert_eq!(f.host, None);
        assert_eq!(
            (f.operation, f.permission),
            (AclOperation::Any, AclPermission::Any)
        );
        let wire = &f;
        assert_eq!(
            (wire.resource_type.code(), wire.pattern_type.code()),
            (2, 1)
        );
        Ok(())
    }

    #[test]
    fn given_list_matching_prefixed_deny_then_pattern_and_permission_follow() -> anyhow::Result<()>
    {
        let f = filter_of(&["list", "--topic", "orders", "--matching"])?;
        assert_eq!(f.pattern_type, PatternType::Match);
        let f = filter_of(&["list", "--group", "app-", "--prefixed", "--deny"])?;
        assert_eq!(
            (f.pattern_type, f.permission),
            (PatternType::Prefixed, AclPermission::Deny)
        );
        assert!(filter_of(&["list", "--matching"]).is_err());
        assert!(parse(&["list", "--deny", "--allow"]).is_err());
        Ok(())
    }

    #[test]
    fn given_cluster_authorization_failure_then_one_line_naming_caller_and_super_user() {
        let target = Target::new(
            "127.0.0.1:1".into(),
            sediment_client::SecurityConfig::default(),
        );
        let error = ClientError::Kafka {
            error: ErrorCode::ClusterAuthorizationFailed,
            code: 31,
            context: "create ACL".into(),
            message: None,
        };
        let line = format!("{:#}", refusal(&target, error, "add ACLs", "ALTER"));
        assert!(line.starts_with("User:ANONYMOUS"), "{line}");
        assert!(
            line.contains("not allowed to add ACLs: run as a super user"),
            "{line}"
        );
        assert!(!line.contains('\n'));
        let invalid = ClientError::Kafka {
            error: ErrorCode::InvalidRequest,
            code: 42,
            context: "create ACL".into(),
            message: Some("resource name must not be empty".into()),
        };
        let line = format!("{:#}", refusal(&target, invalid, "add ACLs", "ALTER"));
        assert_eq!(
            line,
            "cannot add ACLs: the broker refused: resource name must not be empty \
             (InvalidRequest, code 42)"
        );
    }
}
