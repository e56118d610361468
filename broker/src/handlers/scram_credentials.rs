//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554):
//! what `kafka-configs --bootstrap-server … --entity-type users --describe`
//! and `--alter --add-config 'SCRAM-SHA-512=[password=…]'` /
//! `--delete-config SCRAM-SHA-512` send. The users live in
//! [`CredentialStore`](crate::security::credentials::CredentialStore).
//!
//! Authorization, as Kafka: Describe needs DESCRIBE on the cluster (else the
//! whole response is CLUSTER_AUTHORIZATION_FAILED), Alter needs ALTER on the
//! cluster (else every user named gets CLUSTER_AUTHORIZATION_FAILED).
//!
//! Describe: a null or empty user list is every user. Per user, its
//! mechanisms with their iteration counts (never a salt or key); a user
//! without credentials is RESOURCE_NOT_FOUND, a user named twice
//! DUPLICATE_RESOURCE (once, for that user).
//!
//! Alter, as Kafka's controller (`ScramControlManager`) decides it: one
//! result per user named, in the order first named. Deletions are looked at
//! first, then upsertions; each user may be named once in the whole request
//! (a second mention, even for the other mechanism, is DUPLICATE_RESOURCE
//! and neither change is made; that is why `kafka-configs` must set the two
//! mechanisms in two calls, against Kafka as here). A user's first error
//! wins. Refusals:
//! - an empty (or over-long, or control-character) user name:
//!   UNACCEPTABLE_CREDENTIAL;
//! - a mechanism other than 1 (SCRAM-SHA-256) or 2 (SCRAM-SHA-512):
//!   UNSUPPORTED_SASL_MECHANISM;
//! - iterations outside 4096..=16384, or a salt or salted password that
//!   does not fit the mechanism: UNACCEPTABLE_CREDENTIAL;
//! - deleting a credential the user does not have: RESOURCE_NOT_FOUND;
//! - the users file failing to be written: UNKNOWN_SERVER_ERROR for that
//!   user, nothing changed for it.
//!
//! Each user's change is persisted on its own (Kafka commits the request's
//! changes as one batch): a write failure for one user leaves the users
//! before it changed. An upsertion stores the StoredKey and ServerKey
//! derived from the salted password ([`ScramCredential::from_salted_password`]);
//! the salted password itself is dropped. Neither it nor the salt is ever
//! logged: a change is logged at info with the user, the mechanism, the
//! iterations and the principal that asked.

use std::collections::HashMap;
use std::sync::Arc;

use sediment_protocol::messages::alter_user_scram_credentials::AlterUserScramCredentialsResult;
use sediment_protocol::messages::describe_user_scram_credentials::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use sediment_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use sediment_protocol::sasl::scram::{MAX_ITERATIONS, MIN_ITERATIONS};
use sediment_protocol::sasl::{ScramCredential, ScramMechanism};
use sediment_protocol::ErrorCode;

use crate::broker::Broker;
use crate::protocol::errors::Refusal;
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use crate::security::credentials::{validate_user_name, CredentialError, CredentialStore};
use crate::session::Session;

/// The DescribeUserScramCredentials response.
pub fn describe_user_scram_credentials(
    broker: &Arc<Broker>,
    request: DescribeUserScramCredentialsRequest,
    session: &Session,
) -> DescribeUserScramCredentialsResponse {
    if let Err(denied) = broker.authorize(
        session,
        AclOperation::Describe,
        ResourceType::Cluster,
        CLUSTER_RESOURCE_NAME,
    ) {
        tracing::info!(principal = %session.principal, "DescribeUserScramCredentials refused: not authorized");
        let refusal = Refusal::from(denied);
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(refusal.code)
            .with_error_message(Some(refusal.message));
    }
    let credentials = broker.security().credentials();
    let results = match request.users.filter(|users| !users.is_empty()) {
        None => credentials
            .list()
            .into_iter()
            .map(|user| described(user.name, user.mechanisms))
            .collect(),
        Some(users) => {
            let names: Vec<String> = users.into_iter().map(|user| user.name).collect();
            let mut mentions: HashMap<&str, usize> = HashMap::new();
            for name in &names {
                *mentions.entry(name.as_str()).or_default() += 1;
            }
            let mut reported = std::collections::HashSet::new();
            names
                .iter()
                .filter(|name| reported.insert(name.as_str()))
                .map(|name| {
                    if mentions.get(name.as_str()).copied().unwrap_or(0) > 1 {
                        return user_error(
                            name,
                            Refusal::new(
                                ErrorCode::DuplicateResource,
                                format!("user {name:?} is named more than once in the request"),
                            ),
                        );
                    }
                    match credentials.describe(name) {
                        Some(user) => described(user.name, user.mechanisms),
                        None => user_error(
                            name,
                            Refusal::new(
                                ErrorCode::ResourceNotFound,
                                format!("user {name:?} has no SCRAM credentials"),
                            ),
                        ),
                    }
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

/// The AlterUserScramCredentials response. The users file is written with
/// fsync, so the work runs on the blocking pool.
pub async fn alter_user_scram_credentials(
    broker: &Arc<Broker>,
    request: AlterUserScramCredentialsRequest,
    session: &Session,
) -> AlterUserScramCredentialsResponse {
    let users = users_named(&request);
    let broker = Arc::clone(broker);
    let session = session.clone();
    tokio::task::spawn_blocking(move || alter_all(&broker, request, &session))
        .await
        .unwrap_or_else(|error| {
            tracing::error!(error = %error, "AlterUserScramCredentials task failed");
            let refusal = Refusal::new(
                ErrorCode::UnknownServerError,
                "changing the SCRAM credentials failed unexpectedly; see the broker log",
            );
            AlterUserScramCredentialsResponse::default().with_results(
                users
                    .iter()
                    .map(|user| alter_result(user, Err(refusal.clone())))
                    .collect(),
            )
        })
}

/// One user's change, once it passed the checks.
enum Change {
    Delete(ScramMechanism),
    Upsert(ScramMechanism, ScramCredential),
}

/// Checks every change, then applies the accepted ones in the order their
/// users were first named.
fn alter_all(
    broker: &Broker,
    request: AlterUserScramCredentialsRequest,
    session: &Session,
) -> AlterUserScramCredentialsResponse {
    let users = users_named(&request);
    if let Err(denied) = broker.authorize(
        session,
        AclOperation::Alter,
        ResourceType::Cluster,
        CLUSTER_RESOURCE_NAME,
    ) {
        tracing::info!(principal = %session.principal, "AlterUserScramCredentials refused: not authorized");
        let refusal = Refusal::from(denied);
        return AlterUserScramCredentialsResponse::default().with_results(
            users
                .iter()
                .map(|user| alter_result(user, Err(refusal.clone())))
                .collect(),
        );
    }
    let credentials = broker.security().credentials();
    let mut plan: HashMap<&str, Result<Change, Refusal>> = HashMap::new();
    let deletions = request.deletions.iter().map(|d| {
        (
            d.name.as_str(),
            check_deletion(credentials, &d.name, d.mechanism),
        )
    });
    let upsertions = request.upsertions.iter().map(|u| {
        let checked = check_upsertion(
            &u.name,
            u.mechanism,
            u.iterations,
            &u.salt,
            &u.salted_password,
        );
        (u.name.as_str(), checked)
    });
    for (user, checked) in deletions.chain(upsertions) {
        match plan.get(user) {
            None => {
                plan.insert(user, checked);
            }
            Some(Ok(_)) => {
                plan.insert(
                    user,
                    Err(Refusal::new(
                        ErrorCode::DuplicateResource,
                        format!(
                            "user {user:?} is named more than once in the request; \
                             change one credential per request (nothing was changed for it)"
                        ),
                    )),
                );
            }
            // The user's first error stands, as in Kafka.
            Some(Err(_)) => {}
        }
    }
    let results = users
        .iter()
        .map(|user| {
            let outcome = match plan.remove(user.as_str()) {
                Some(Ok(change)) => apply(credentials, user, change, &session.principal),
                Some(Err(refusal)) => Err(refusal),
                None => Err(Refusal::new(
                    ErrorCode::UnknownServerError,
                    "user lost from the plan",
                )),
            };
            if let Err(refusal) = &outcome {
                tracing::info!(
                    principal = %session.principal,
                    user = ?user,
                    error = %refusal.message,
                    "SCRAM credential change refused"
                );
            }
            alter_result(user, outcome)
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// A deletion's checks: a valid user name, a known mechanism, and a
/// credential to delete.
fn check_deletion(
    credentials: &CredentialStore,
    user: &str,
    mechanism: i8,
) -> Result<Change, Refusal> {
    validate_user_name(user).map_err(Refusal::from)?;
    let mechanism = mechanism_of(mechanism)?;
    if credentials.get(user, mechanism).is_none() {
        return Err(not_found(user, mechanism));
    }
    Ok(Change::Delete(mechanism))
}

/// An upsertion's checks, then its credential (StoredKey and ServerKey
/// derived from the salted password, which is not kept).
fn check_upsertion(
    user: &str,
    mechanism: i8,
    iterations: i32,
    salt: &[u8],
    salted_password: &[u8],
) -> Result<Change, Refusal> {
    validate_user_name(user).map_err(Refusal::from)?;
    let mechanism = mechanism_of(mechanism)?;
    let iterations = u32::try_from(iterations)
        .ok()
        .filter(|n| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(n))
        .ok_or_else(|| {
            Refusal::new(
                ErrorCode::UnacceptableCredential,
                format!(
                    "{iterations} iterations for {mechanism} is outside \
                     {MIN_ITERATIONS}..={MAX_ITERATIONS}"
                ),
            )
        })?;
    let credential =
        ScramCredential::from_salted_password(mechanism, salted_password, salt, iterations)
            .map_err(|source| {
                Refusal::from(CredentialError::InvalidCredential { mechanism, source })
            })?;
    Ok(Change::Upsert(mechanism, credential))
}

/// Persists one user's accepted change.
fn apply(
    credentials: &CredentialStore,
    user: &str,
    change: Change,
    by: &str,
) -> Result<(), Refusal> {
    match change {
        Change::Delete(mechanism) => match credentials.delete(user, mechanism) {
            Ok(true) => {
                tracing::info!(by = %by, user = ?user, mechanism = %mechanism, "SCRAM credential deleted");
                Ok(())
            }
            // Deleted by a concurrent request since it was checked.
            Ok(false) => Err(not_found(user, mechanism)),
            Err(error) => Err(Refusal::from(error)),
        },
        Change::Upsert(mechanism, credential) => {
            let iterations = credential.iterations;
            credentials
                .upsert(user, mechanism, credential)
                .map_err(Refusal::from)?;
            tracing::info!(by = %by, user = ?user, mechanism = %mechanism, iterations, "SCRAM credential set");
            Ok(())
        }
    }
}

/// Kafka's mechanism code as a mechanism.
fn mechanism_of(code: i8) -> Result<ScramMechanism, Refusal> {
    ScramMechanism::from_code(code).ok_or_else(|| {
        Refusal::new(
            ErrorCode::UnsupportedSaslMechanism,
            format!("unknown SCRAM mechanism {code}: use 1 (SCRAM-SHA-256) or 2 (SCRAM-SHA-512)"),
        )
    })
}

fn not_found(user: &str, mechanism: ScramMechanism) -> Refusal {
    Refusal::new(
        ErrorCode::ResourceNotFound,
        format!("user {user:?} has no {mechanism} credential to delete"),
    )
}

/// Every user the request names, each once, in the order first named
/// (deletions first).
fn users_named(request: &AlterUserScramCredentialsRequest) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    request
        .deletions
        .iter()
        .map(|d| &d.name)
        .chain(request.upsertions.iter().map(|u| &u.name))
        .filter(|name| seen.insert(name.as_str()))
        .cloned()
        .collect()
}

fn described(
    user: String,
    mechanisms: Vec<(ScramMechanism, u32)>,
) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult::default()
        .with_user(user)
        .with_credential_infos(
            mechanisms
                .into_iter()
                .map(|(mechanism, iterations)| {
                    CredentialInfo::default()
                        .with_mechanism(mechanism.code())
                        .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
                })
                .collect(),
        )
}

fn user_error(user: &str, refusal: Refusal) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult::default()
        .with_user(user.to_string())
        .with_error_code(refusal.code)
        .with_error_message(Some(refusal.message))
}

fn alter_result(user: &str, outcome: Result<(), Refusal>) -> AlterUserScramCredentialsResult {
    let result = AlterUserScramCredentialsResult::default().with_user(user.to_string());
    match outcome {
        Ok(()) => result,
        Err(refusal) => result
            .with_error_code(refusal.code)
            .with_error_message(Some(refusal.message)),
    }
}

#[cfg(test)]
mod tests {

    use bytes::Bytes;
    use sediment_protocol::messages::alter_user_scram_credentials::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };
    use sediment_protocol::messages::describe_user_scram_credentials::UserName;

    use super::*;
    use crate::handlers::test_support::{broker, session};

    const SHA256: i8 = 1;
    const SHA512: i8 = 2;

    /// An upsertion as a client sends it: the salted password has the
    /// mechanism's hash length (its bytes do not matter to the broker).
    fn upsertion(user: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
        let len = ScramMechanism::from_code(mechanism).map_or(32, |m| m.hash_len());
        ScramCredentialUpsertion::default()
            .with_name(user.to_string())
            .with_mechanism(mechanism)
            .with_iterations(iterations)
            .with_salt(Bytes::from_static(b"some salt"))
            .with_salted_password(Bytes::from(vec![7u8; len]))
    }

    fn deletion(user: &str, mechanism: i8) -> ScramCredentialDeletion {
        ScramCredentialDeletion::default()
            .with_name(user.to_string())
            .with_mechanism(mechanism)
    }

    fn alter(
        broker: &Broker,
        deletions: Vec<ScramCredentialDeletion>,
        upsertions: Vec<ScramCredentialUpsertion>,
    ) -> Vec<(String, i16)> {
        let request = AlterUserScramCredentialsRequest::default()
            .with_deletions(deletions)
            .with_upsertions(upsertions);
        alter_all(broker, request, &session("User:admin"))
            .results
            .into_iter()
            .map(|r| {
                assert_eq!(r.error_code != 0, r.error_message.is_some(), "{r:?}");
                (r.user, r.error_code)
            })
            .collect()
    }

    fn describe(
        broker: &Arc<Broker>,
        users: Option<&[&str]>,
    ) -> DescribeUserScramCredentialsResponse {
        let users = users.map(|names| {
            names
                .iter()
                .map(|n| UserName::default().with_name(n.to_string()))
                .collect()
        });
        let request = DescribeUserScramCredentialsRequest::default().with_users(users);
        describe_user_scram_credentials(broker, request, &session("User:admin"))
    }

    fn pair(user: &str, code: ErrorCode) -> (String, i16) {
        (user.to_string(), code.code())
    }

    fn ok(user: &str) -> (String, i16) {
        (user.to_string(), 0)
    }

    #[test]
    fn given_an_upsertion_then_it_is_stored_as_keys_and_described_with_its_iterations() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        let results = alter(&broker, vec![], vec![upsertion("alice", SHA512, 8192)]);
        assert_eq!(results, [ok("alice")]);
        let stored = broker
            .security()
            .credentials()
            .get("alice", ScramMechanism::Sha512)
            .unwrap();
        let expected = ScramCredential::from_salted_password(
            ScramMechanism::Sha512,
            &[7u8; 64],
            b"some salt",
            8192,
        )
        .unwrap();
        assert_eq!(stored, expected);

        let response = describe(&broker, Some(&["alice"]));
        assert_eq!(response.error_code, 0);
        assert_eq!(response.results.len(), 1);
        let alice = &response.results[0];
        assert_eq!((alice.user.as_str(), alice.error_code), ("alice", 0));
        let infos: Vec<(i8, i32)> = alice
            .credential_infos
            .iter()
            .map(|c| (c.mechanism, c.iterations))
            .collect();
        assert_eq!(infos, [(SHA512, 8192)]);
    }

    #[test]
    fn given_bad_upsertions_then_each_user_gets_kafkas_code_and_nothing_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        let short = upsertion("short", SHA256, 4096).with_salted_password(Bytes::from_static(b"x"));
        let results = alter(
            &broker,
            vec![],
            vec![
                upsertion("few", SHA256, 4095),
                upsertion("many", SHA512, 16385),
                upsertion("negative", SHA512, -1),
                upsertion("odd", 3, 4096),
                upsertion("", SHA512, 4096),
                short,
                upsertion("edge", SHA256, 16384),
            ],
        );
        assert_eq!(
            results,
            [
                pair("few", ErrorCode::UnacceptableCredential),
                pair("many", ErrorCode::UnacceptableCredential),
                pair("negative", ErrorCode::UnacceptableCredential),
                pair("odd", ErrorCode::UnsupportedSaslMechanism),
                pair("", ErrorCode::UnacceptableCredential),
                pair("short", ErrorCode::UnacceptableCredential),
                ok("edge"),
            ]
        );
        let users: Vec<String> = broker
            .security()
            .credentials()
            .list()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(users, ["edge"]);
    }

    #[test]
    fn given_a_user_named_twice_then_duplicate_resource_and_neither_change_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        alter(&broker, vec![], vec![upsertion("bob", SHA256, 4096)]);
        let results = alter(
            &broker,
            vec![deletion("bob", SHA256)],
            vec![
                upsertion("alice", SHA256, 4096),
                upsertion("alice", SHA512, 4096),
                upsertion("bob", SHA512, 4096),
                upsertion("carol", SHA512, 4096),
            ],
        );
        assert_eq!(
            results,
            [
                pair("bob", ErrorCode::DuplicateResource),
                pair("alice", ErrorCode::DuplicateResource),
                ok("carol"),
            ]
        );
        let credentials = broker.security().credentials();
        assert!(credentials.describe("alice").is_none());
        assert!(credentials.get("bob", ScramMechanism::Sha256).is_some());
        assert!(credentials.get("bob", ScramMechanism::Sha512).is_none());
        assert!(credentials.describe("carol").is_some());
    }

    #[test]
    fn given_deletions_then_missing_credentials_are_not_found_and_present_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        alter(&broker, vec![], vec![upsertion("alice", SHA256, 4096)]);
        alter(&broker, vec![], vec![upsertion("alice", SHA512, 4096)]);
        let results = alter(
            &broker,
            vec![
                deletion("alice", SHA256),
                deletion("nobody", SHA512),
                deletion("ghost", 9),
            ],
            vec![],
        );
        assert_eq!(
            results,
            [
                ok("alice"),
                pair("nobody", ErrorCode::ResourceNotFound),
                pair("ghost", ErrorCode::UnsupportedSaslMechanism),
            ]
        );
        let alice = broker.security().credentials().describe("alice").unwrap();
        assert_eq!(alice.mechanisms, [(ScramMechanism::Sha512, 4096)]);
        // A deletion that failed its check counts as the user's first
        // mention: the error stands and the later upsertion is not made.
        let results = alter(
            &broker,
            vec![deletion("alice", SHA256)],
            vec![upsertion("alice", SHA256, 4096)],
        );
        assert_eq!(results, [pair("alice", ErrorCode::ResourceNotFound)]);
        assert!(broker
            .security()
            .credentials()
            .get("alice", ScramMechanism::Sha256)
            .is_none());
    }

    #[test]
    fn given_users_when_described_then_unknown_and_duplicate_names_are_refused_and_null_is_all() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), false);
        alter(
            &broker,
            vec![],
            vec![
                upsertion("alice", SHA256, 4096),
                upsertion("bob", SHA512, 8192),
            ],
        );
        let response = describe(&broker, Some(&["alice", "nobody", "bob", "bob"]));
        let codes: Vec<(&str, i16)> = response
            .results
            .iter()
            .map(|r| (r.user.as_str(), r.error_code))
            .collect();
        assert_eq!(
            codes,
            [
                ("alice", 0),
                ("nobody", ErrorCode::ResourceNotFound.code()),
                ("bob", ErrorCode::DuplicateResource.code()),
            ]
        );
        assert!(response.results[1]
            .error_message
            .as_deref()
            .unwrap()
            .contains("nobody"));
        assert!(response.results[2].credential_infos.is_empty());

        for all in [None, Some(&[][..])] {
            let response = describe(&broker, all);
            let users: Vec<&str> = response.results.iter().map(|r| r.user.as_str()).collect();
            assert_eq!(users, ["alice", "bob"]);
            assert_eq!(response.results[1].credential_infos[0].iterations, 8192);
        }
    }

    #[tokio::test]
    async fn given_enforcement_without_acls_then_describe_and_alter_are_cluster_authorization_failed(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), true);
        let alice = session("User:alice");
        let denied = ErrorCode::ClusterAuthorizationFailed.code();

        let request = DescribeUserScramCredentialsRequest::default();
        let response = describe_user_scram_credentials(&broker, request, &alice);
        assert_eq!(response.error_code, denied);
        assert!(response.results.is_empty());

        let request = AlterUserScramCredentialsRequest::default()
            .with_deletions(vec![deletion("bob", SHA256)])
            .with_upsertions(vec![
                upsertion("alice", SHA512, 4096),
                upsertion("bob", SHA512, 4096),
            ]);
        let response = alter_user_scram_credentials(&broker, request, &alice).await;
        let codes: Vec<(&str, i16)> = response
            .results
            .iter()
            .map(|r| (r.user.as_str(), r.error_code))
            .collect();
        assert_eq!(codes, [("bob", denied), ("alice", denied)]);
        assert!(broker.security().credentials().list().is_empty());

        let request = AlterUserScramCredentialsRequest::default()
            .with_upsertions(vec![upsertion("alice", SHA512, 4096)]);
        let response = alter_user_scram_credentials(&broker, request, &session("User:admin")).await;
        assert_eq!(response.results[0].error_code, 0);
    }
}
