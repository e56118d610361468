//! Security administration through [`Admin`]: ACL bindings (DescribeAcls,
//! CreateAcls, DeleteAcls; KIP-11, prefixed patterns from KIP-290) and
//! users' SCRAM credentials (DescribeUserScramCredentials,
//! AlterUserScramCredentials; KIP-554).
//!
//! The ACL value types ([`ResourceType`], [`PatternType`], [`AclOperation`],
//! [`AclPermission`]) are `sediment_protocol::acl`'s, with Kafka's wire
//! codes: the client talks to any Kafka-protocol broker and must not depend
//! on Sediment's broker crate, and typed values (rather than bare `i8` codes)
//! keep a caller from swapping an operation for a permission. A code this
//! client does not know decodes to `Unknown`, as Kafka's `fromCode` does.
//!
//! Invariants:
//! - a password never leaves the process: [`ScramUpsertion::new`] draws a
//!   random salt and derives the salted password (PBKDF2, RFC 5802's
//!   `Hi`) here, and only salt, iterations and salted password are sent;
//!   neither the password nor the salted password is ever printed (`Debug`
//!   shows lengths);
//! - every request goes to any broker (Kafka brokers forward these to the
//!   controller) and is retried after a lost connection: creating the same
//!   binding or setting the same credential twice changes nothing, and a
//!   repeated delete only reports fewer removed bindings;
//! - a broker error code becomes [`ClientError::Kafka`] with the broker's
//!   message and a context naming the binding, filter or user.

use std::fmt;

use bytes::Bytes;
use sediment_protocol::messages::alter_user_scram_credentials::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use sediment_protocol::messages::create_acls::AclCreation;
use sediment_protocol::messages::delete_acls::DeleteAclsFilter;
use sediment_protocol::messages::describe_user_scram_credentials::UserName;
use sediment_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
    DescribeUserScramCredentialsRequest,
};
use sediment_protocol::sasl::scram::random_salt;
use sediment_protocol::sasl::ScramMechanism;
use sediment_protocol::ApiKey;

use crate::admin::Admin;
use crate::error::{ClientError, Result};

/// The ACL bindings, filters and value types, with Kafka's wire codes: the
/// wire codec's, shared with the broker.
pub use sediment_protocol::acl::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternType, ResourceType,
    CLUSTER_RESOURCE_NAME,
};

/// A user's SCRAM credentials as [`Admin::describe_user_scram_credentials`]
/// reports them: mechanisms and iteration counts, never salts or keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScramCredentials {
    /// The user name.
    pub user: String,
    /// One entry per mechanism the user has a credential for.
    pub credentials: Vec<ScramCredentialInfo>,
}

/// One mechanism of a [`UserScramCredentials`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    pub mechanism: ScramMechanism,
    /// The PBKDF2 iteration count the credential was made with.
    pub iterations: i32,
}

/// A credential to create or replace ([`Admin::alter_user_scram_credentials`]):
/// the user, mechanism, iterations, a random salt and the salted password,
/// made here from the password so that it never crosses the wire. `Debug`
/// does not show the salted password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramUpsertion {
    user: String,
    mechanism: ScramMechanism,
    iterations: u32,
    salt: Vec<u8>,
    salted_password: Vec<u8>,
}

impl ScramUpsertion {
    /// `user`'s new `mechanism` credential for `password`, salted with a
    /// fresh random salt and `iterations` PBKDF2 rounds (Kafka accepts
    /// 4096..=16384; 4096 is its tools' default). Fails with
    /// [`ClientError::Config`] for iterations out of range or when the
    /// system has no secure random numbers.
    pub fn new(
        user: impl Into<String>,
        mechanism: ScramMechanism,
        password: &str,
        iterations: u32,
    ) -> Result<Self> {
        let invalid = |e: sediment_protocol::sasl::ScramError| {
            ClientError::Config(format!("cannot make the {mechanism} credential: {e}"))
        };
        let salt = random_salt().map_err(invalid)?;
        let salted_password = mechanism
            .salted_password(password.as_bytes(), &salt, iterations)
            .map_err(invalid)?;
        Ok(Self {
            user: user.into(),
            mechanism,
            iterations,
            salt,
            salted_password,
        })
    }

    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The mechanism.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    fn to_wire(&self) -> ScramCredentialUpsertion {
        ScramCredentialUpsertion::default()
            .with_name(self.user.clone())
            .with_mechanism(self.mechanism.code())
            .with_iterations(i32::try_from(self.iterations).unwrap_or(i32::MAX))
            .with_salt(Bytes::from(self.salt.clone()))
            .with_salted_password(Bytes::from(self.salted_password.clone()))
    }
}

impl fmt::Debug for ScramUpsertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramUpsertion")
            .field("user", &self.user)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .field("salted_password", &"<redacted>")
            .finish()
    }
}

/// A credential to delete ([`Admin::alter_user_scram_credentials`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramDeletion {
    /// The user.
    pub user: String,
    /// Which of its credentials.
    pub mechanism: ScramMechanism,
}

impl ScramDeletion {
    /// `user`'s `mechanism` credential.
    pub fn new(user: impl Into<String>, mechanism: ScramMechanism) -> Self {
        Self {
            user: user.into(),
            mechanism,
        }
    }
}

impl Admin {
    /// Adds ACL bindings (CreateAcls). The broker applies each on its own:
    /// on an error (the first refused binding, with the broker's message)
    /// the others of the call may have been added. Adding a binding that
    /// exists changes nothing.
    pub async fn create_acls(&self, bindings: &[AclBinding]) -> Result<()> {
        if bindings.is_empty() {
            return Ok(());
        }
        self.cluster()
            .retry(&[], || self.create_acls_once(bindings))
            .await
    }

    async fn create_acls_once(&self, bindings: &[AclBinding]) -> Result<()> {
        let connection = self.cluster().any_connection().await?;
        let version = connection.version(ApiKey::CreateAcls)?;
        let request = CreateAclsRequest::default()
            .with_creations(bindings.iter().map(AclCreation::from).collect());
        let response = connection.send(&request, version).await?;
        if response.results.len() != bindings.len() {
            return Err(ClientError::Protocol {
                addr: connection.addr().to_string(),
                reason: format!(
                    "CreateAcls response has {} results for {} bindings",
                    response.results.len(),
                    bindings.len()
                ),
            });
        }
        for (binding, result) in bindings.iter().zip(&response.results) {
            if let Some(e) = ClientError::from_code(
                result.error_code,
                || format!("create ACL ({binding})"),
                result.error_message.as_deref(),
            ) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// The bindings `filter` selects (DescribeAcls), in the broker's order.
    pub async fn describe_acls(&self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        self.cluster()
            .retry(&[], || self.describe_acls_once(filter))
            .await
    }

    async fn describe_acls_once(&self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        let connection = self.cluster().any_connection().await?;
        let version = connection.version(ApiKey::DescribeAcls)?;
        let request = DescribeAclsRequest::from(filter);
        let response = connection.send(&request, version).await?;
        if let Some(e) = ClientError::from_code(
            response.error_code,
            || format!("describe ACLs ({filter})"),
            response.error_message.as_deref(),
        ) {
            return Err(e);
        }
        Ok(response
            .resources
            .into_iter()
            .flat_map(|resource| {
                let (resource_type, pattern_type) = (
                    ResourceType::from_code(resource.resource_type),
                    PatternType::from_code(resource.pattern_type),
                );
                let name = resource.resource_name;
                resource.acls.into_iter().map(move |acl| AclBinding {
                    resource_type,
                    resource_name: name.clone(),
                    pattern_type,
                    principal: acl.principal,
                    host: acl.host,
                    operation: AclOperation::from_code(acl.operation),
                    permission: AclPermission::from_code(acl.permission_type),
                })
            })
            .collect())
    }

    /// Removes every binding one of `filters` selects (DeleteAcls) and
    /// returns the removed bindings. On an error (the first refused filter
    /// or binding, with the broker's message) the other filters may have
    /// removed theirs. After a lost connection the request is sent again,
    /// and the bindings the first attempt removed are then not reported.
    pub async fn delete_acls(&self, filters: &[AclBindingFilter]) -> Result<Vec<AclBinding>> {
        if filters.is_empty() {
            return Ok(Vec::new());
        }
        self.cluster()
            .retry(&[], || self.delete_acls_once(filters))
            .await
    }

    async fn delete_acls_once(&self, filters: &[AclBindingFilter]) -> Result<Vec<AclBinding>> {
        let connection = self.cluster().any_connection().await?;
        let version = connection.version(ApiKey::DeleteAcls)?;
        let request = DeleteAclsRequest::default()
            .with_filters(filters.iter().map(DeleteAclsFilter::from).collect());
        let response = connection.send(&request, version).await?;
        if response.filter_results.len() != filters.len() {
            return Err(ClientError::Protocol {
                addr: connection.addr().to_string(),
                reason: format!(
                    "DeleteAcls response has {} results for {} filters",
                    response.filter_results.len(),
                    filters.len()
                ),
            });
        }
        let mut removed = Vec::new();
        for (filter, result) in filters.iter().zip(response.filter_results) {
            if let Some(e) = ClientError::from_code(
                result.error_code,
                || format!("delete ACLs ({filter})"),
                result.error_message.as_deref(),
            ) {
                return Err(e);
            }
            for acl in result.matching_acls {
                let binding = AclBinding {
                    resource_type: ResourceType::from_code(acl.resource_type),
                    resource_name: acl.resource_name,
                    pattern_type: PatternType::from_code(acl.pattern_type),
                    principal: acl.principal,
                    host: acl.host,
                    operation: AclOperation::from_code(acl.operation),
                    permission: AclPermission::from_code(acl.permission_type),
                };
                if let Some(e) = ClientError::from_code(
                    acl.error_code,
                    || format!("delete ACL ({binding})"),
                    acl.error_message.as_deref(),
                ) {
                    return Err(e);
                }
                removed.push(binding);
            }
        }
        Ok(removed)
    }

    /// The SCRAM mechanisms and iteration counts of `users` (`None`: of
    /// every user), in the broker's order (DescribeUserScramCredentials).
    /// A named user without credentials is an error
    /// ([`ErrorCode::ResourceNotFound`](crate::ErrorCode::ResourceNotFound));
    /// a mechanism this client does not know is left out.
    pub async fn describe_user_scram_credentials(
        &self,
        users: Option<Vec<String>>,
    ) -> Result<Vec<UserScramCredentials>> {
        let users = users.as_deref();
        self.cluster()
            .retry(&[], || self.describe_user_scram_credentials_once(users))
            .await
    }

    async fn describe_user_scram_credentials_once(
        &self,
        users: Option<&[String]>,
    ) -> Result<Vec<UserScramCredentials>> {
        let connection = self.cluster().any_connection().await?;
        let version = connection.version(ApiKey::DescribeUserScramCredentials)?;
        let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
            u.iter()
                .map(|name| UserName::default().with_name(name.clone()))
                .collect()
        }));
        let response = connection.send(&request, version).await?;
        if let Some(e) = ClientError::from_code(
            response.error_code,
            || "describe SCRAM credentials".to_string(),
            response.error_message.as_deref(),
        ) {
            return Err(e);
        }
        let mut described = Vec::with_capacity(response.results.len());
        for result in response.results {
            if let Some(e) = ClientError::from_code(
                result.error_code,
                || format!("describe the SCRAM credentials of user `{}`", result.user),
                result.error_message.as_deref(),
            ) {
                return Err(e);
            }
            described.push(UserScramCredentials {
                user: result.user,
                credentials: result
                    .credential_infos
                    .iter()
                    .filter_map(|info| {
                        Some(ScramCredentialInfo {
                            mechanism: ScramMechanism::from_code(info.mechanism)?,
                            iterations: info.iterations,
                        })
                    })
                    .collect(),
            });
        }
        Ok(described)
    }

    /// Creates or replaces, and deletes, users' SCRAM credentials
    /// (AlterUserScramCredentials). Kafka (and Sediment) refuse a request
    /// naming one user twice, even for the two mechanisms
    /// (DUPLICATE_RESOURCE): change a user's two mechanisms in two calls.
    /// Deleting a credential the user does not have is
    /// [`ErrorCode::ResourceNotFound`](crate::ErrorCode::ResourceNotFound).
    /// Each user's change stands on its own: on an error (the first refused
    /// user, with the broker's message) the other users may have changed.
    pub async fn alter_user_scram_credentials(
        &self,
        upsertions: &[ScramUpsertion],
        deletions: &[ScramDeletion],
    ) -> Result<()> {
        if upsertions.is_empty() && deletions.is_empty() {
            return Ok(());
        }
        self.cluster()
            .retry(&[], || {
                self.alter_user_scram_credentials_once(upsertions, deletions)
            })
            .await
    }

    async fn alter_user_scram_credentials_once(
        &self,
        upsertions: &[ScramUpsertion],
        deletions: &[ScramDeletion],
    ) -> Result<()> {
        let connection = self.cluster().any_connection().await?;
        let version = connection.version(ApiKey::AlterUserScramCredentials)?;
        let request = AlterUserScramCredentialsRequest::default()
            .with_deletions(
                deletions
                    .iter()
                    .map(|d| {
                        ScramCredentialDeletion::default()
                            .with_name(d.user.clone())
                            .with_mechanism(d.mechanism.code())
                    })
                    .collect(),
            )
            .with_upsertions(upsertions.iter().map(ScramUpsertion::to_wire).collect());
        let response = connection.send(&request, version).await?;
        for result in &response.results {
            if let Some(e) = ClientError::from_code(
                result.error_code,
                || format!("alter the SCRAM credentials of user `{}`", result.user),
                result.error_message.as_deref(),
            ) {
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sediment_protocol::sasl::ScramCredential;

    use super::*;

    fn binding() -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Prefixed,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Deny,
        }
    }

    #[test]
    fn given_binding_when_made_a_filter_then_every_field_is_exact_and_wire_codes_are_kafkas() {
        let filter = AclBindingFilter::from(&binding());
        let wire = DeleteAclsFilter::from(&filter);
        assert_eq!(wire.resource_type_filter, 2);
        assert_eq!(wire.resource_name_filter.as_deref(), Some("orders"));
        assert_eq!(wire.pattern_type_filter, 4);
        assert_eq!(wire.principal_filter.as_deref(), Some("User:alice"));
        assert_eq!(wire.host_filter.as_deref(), Some("*"));
        assert_eq!((wire.operation, wire.permission_type), (3, 2));
        let creation = AclCreation::from(&binding());
        assert_eq!(
            (
                creation.resource_type,
                creation.resource_pattern_type,
                creation.operation,
                creation.permission_type
            ),
            (2, 4, 3, 2)
        );
        let any = DeleteAclsFilter::from(&AclBindingFilter::any());
        assert_eq!(
            (
                any.resource_type_filter,
                any.pattern_type_filter,
                any.operation,
                any.permission_type
            ),
            (1, 1, 1, 1)
        );
        assert!(any.resource_name_filter.is_none() && any.principal_filter.is_none());
    }

    #[test]
    fn given_password_when_upserted_then_salted_password_verifies_and_is_never_printed() {
        for mechanism in ScramMechanism::ALL {
            let upsertion = ScramUpsertion::new("alice", mechanism, "s3cret-pw", 4096)
                .unwrap_or_else(|e| panic!("{e}"));
            let wire = upsertion.to_wire();
            assert_eq!(wire.name, "alice");
            assert_eq!(wire.mechanism, mechanism.code());
            assert_eq!(wire.iterations, 4096);
            assert_eq!(wire.salted_password.len(), mechanism.hash_len());
            // What the broker stores from the salted password checks the password.
            let credential = ScramCredential::from_salted_password(
                mechanism,
                &wire.salted_password,
                &wire.salt,
                4096,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(credential.verify_password(mechanism, b"s3cret-pw"));
            assert!(!credential.verify_password(mechanism, b"other"));
            let printed = format!("{upsertion:?}");
            assert!(printed.contains("<redacted>") && !printed.contains("s3cret"));
        }
    }

    #[test]
    fn given_two_upsertions_of_one_password_then_salts_differ() {
        let a = ScramUpsertion::new("a", ScramMechanism::Sha256, "pw", 4096);
        let b = ScramUpsertion::new("a", ScramMechanism::Sha256, "pw", 4096);
        match (a, b) {
            (Ok(a), Ok(b)) => assert_ne!(a.salt, b.salt),
            (a, b) => panic!("{a:?} {b:?}"),
        }
    }

    #[test]
    fn security_admin_futures_can_move_between_tasks() {
        fn assert_send<T: Send>(_: &T) {}
        let _ = |admin: Admin| async move {
            let filter = AclBindingFilter::any();
            assert_send(&admin.describe_acls(&filter));
            assert_send(&admin.create_acls(&[]));
            assert_send(&admin.delete_acls(&[]));
            assert_send(&admin.describe_user_scram_credentials(None));
            assert_send(&admin.alter_user_scram_credentials(&[], &[]));
        };
    }

    #[test]
    fn given_iterations_out_of_range_when_upserted_then_config_error_naming_the_bounds() {
        let err = ScramUpsertion::new("alice", ScramMechanism::Sha512, "pw", 100);
        assert!(
            matches!(&err, Err(ClientError::Config(m)) if m.contains("4096..=16384")),
            "{err:?}"
        );
    }
}
