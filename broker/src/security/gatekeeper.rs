//! The broker's security state in one place: the SCRAM users, the ACLs and
//! whether they are enforced, and the record of failed authentications.
//!
//! Invariants:
//! - with `--authorizer` off every request is allowed (Kafka's default);
//!   on, a request is allowed only if an ACL allows it or its principal is
//!   a super user (deny wins over allow);
//! - failures are remembered per client address in a table of at most
//!   [`MAX_TRACKED_ADDRESSES`] entries (the oldest forgotten first), so a
//!   flood from many addresses cannot grow memory;
//! - failure log lines are rate-limited ([`LOG_LINES_PER_WINDOW`] per
//!   [`LOG_WINDOW`]); the ones left out are counted in the next line;
//! - a password or key never reaches a log line: only the principal, the
//!   peer address and what was wrong.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::security::acl::{AclOperation, ResourceType};
use crate::security::acl_store::Authorizer;
use crate::security::credentials::CredentialStore;
use crate::security_config::SecurityConfig;
use crate::session::Session;

/// Addresses whose failures are remembered at once.
pub const MAX_TRACKED_ADDRESSES: usize = 4096;
/// Failure log lines written per [`LOG_WINDOW`].
pub const LOG_LINES_PER_WINDOW: u32 = 20;
/// The window of the failure log's rate limit.
pub const LOG_WINDOW: Duration = Duration::from_secs(10);
/// Failures from one address are forgotten after this long without one.
const FAILURE_MEMORY: Duration = Duration::from_secs(300);
/// The longest a failed authentication's answer is held back.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(2);

/// Why the security state could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatekeeperError {
    /// The users file could not be read.
    #[error(transparent)]
    Credentials(#[from] crate::security::credentials::CredentialError),
    /// The ACL file could not be read.
    #[error(transparent)]
    Acls(#[from] crate::security::acl::AclError),
}

/// A request refused by the ACLs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{principal} is not authorized to {} {} `{name}`: an ACL must allow it (sediment acl add)", operation.kafka_name(), resource_type.kafka_name())]
pub struct Denied {
    /// Who asked.
    pub principal: String,
    /// What for.
    pub operation: AclOperation,
    /// On what kind of resource.
    pub resource_type: ResourceType,
    /// Its name.
    pub name: String,
}

/// Users, ACLs and failed-authentication tracking.
pub struct Gatekeeper {
    credentials: CredentialStore,
    authorizer: Authorizer,
    enforce: bool,
    failures: Mutex<Failures>,
}

impl Gatekeeper {
    /// Opens the users and ACL files of the data directory (DATA/meta).
    pub fn open(data_dir: &Path, config: &SecurityConfig) -> Result<Self, GatekeeperError> {
        Ok(Self {
            credentials: CredentialStore::open(data_dir)?,
            authorizer: Authorizer::open(data_dir, config.super_users.clone())?,
            enforce: config.authorizer,
            failures: Mutex::new(Failures::default()),
        })
    }

    /// The SCRAM users.
    pub fn credentials(&self) -> &CredentialStore {
        &self.credentials
    }

    /// The ACLs (kept and served by the ACL APIs even while not enforced).
    pub fn acls(&self) -> &Authorizer {
        &self.authorizer
    }

    /// Whether requests are authorized against the ACLs.
    pub fn enforcing(&self) -> bool {
        self.enforce
    }

    /// `Ok` if `session` may do `operation` on the resource, else what was
    /// refused (mapped to the resource type's *_AUTHORIZATION_FAILED code at
    /// the protocol edge).
    pub fn authorize(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> Result<(), Denied> {
        if self.allows(session, operation, resource_type, name) {
            Ok(())
        } else {
            Err(Denied {
                principal: session.principal.clone(),
                operation,
                resource_type,
                name: name.to_string(),
            })
        }
    }

    /// Whether `session` may do `operation` on the resource.
    pub fn allows(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        !self.enforce
            || self.authorizer.authorize(
                &session.principal,
                session.peer.ip(),
                operation,
                resource_type,
                name,
            )
    }

    /// Whether `session` may produce idempotently (InitProducerId without a
    /// transactional id): IDEMPOTENT_WRITE on the cluster, or an ACL
    /// allowing it WRITE on some topic (KIP-679, Kafka 3.0+).
    pub fn may_write_idempotently(&self, session: &Session) -> bool {
        self.allows(
            session,
            AclOperation::IdempotentWrite,
            ResourceType::Cluster,
            crate::security::acl::CLUSTER_RESOURCE_NAME,
        ) || crate::security::acl::allows_some_resource(
            &self.authorizer.list(),
            &session.principal,
            session.peer.ip(),
            AclOperation::Write,
            ResourceType::Topic,
        )
    }

    /// Records a refused authentication from `peer`, logs it at a bounded
    /// rate, and says how long to hold back the answer: nothing for the
    /// first failure, then doubling from 100 ms up to 2 s while failures
    /// from that address keep coming.
    pub fn note_refused(&self, peer: SocketAddr, user: Option<&str>, detail: &str) -> Duration {
        let mut failures = crate::basics::lock(&self.failures);
        let count = failures.record(peer.ip(), Instant::now());
        if let Some(suppressed) = failures.may_log(Instant::now()) {
            tracing::warn!(
                %peer,
                principal = user.map(|u| format!("User:{u}")).unwrap_or_else(|| "unknown".to_string()),
                reason = %detail,
                failures_from_address = count,
                suppressed_lines = suppressed,
                "authentication failed"
            );
        }
        failure_delay(count)
    }

    /// Logs a connection closed before authenticating (a request other than
    /// the SASL exchange, a malformed or oversized frame) at the same
    /// bounded rate: such closes come by the thousand in a flood.
    pub fn note_closed_before_authentication(&self, peer: SocketAddr, detail: &str) {
        let mut failures = crate::basics::lock(&self.failures);
        if let Some(suppressed) = failures.may_log(Instant::now()) {
            tracing::warn!(%peer, reason = %detail, suppressed_lines = suppressed, "closing connection before authentication");
        }
    }

    /// Logs a failed TLS handshake at the same bounded rate.
    pub fn note_tls_failure(&self, peer: SocketAddr, detail: &str) {
        let mut failures = crate::basics::lock(&self.failures);
        if let Some(suppressed) = failures.may_log(Instant::now()) {
            tracing::warn!(%peer, reason = %detail, suppressed_lines = suppressed, "TLS handshake failed");
        }
    }

    /// Forgets the failures of an address that has now authenticated.
    pub fn note_success(&self, peer: SocketAddr) {
        crate::basics::lock(&self.failures)
            .by_address
            .remove(&peer.ip());
    }
}

/// How long to hold back the answer to the `count`th failure in a row.
fn failure_delay(count: u32) -> Duration {
    if count <= 1 {
        return Duration::ZERO;
    }
    let doublings = (count - 2).min(5);
    (Duration::from_millis(100) * (1 << doublings)).min(MAX_FAILURE_DELAY)
}

#[derive(Default)]
struct Failures {
    by_address: HashMap<IpAddr, (u32, Instant)>,
    window_start: Option<Instant>,
    lines_in_window: u32,
    suppressed: u64,
}

impl Failures {
    /// Counts a failure from `ip`; returns how many in a row.
    fn record(&mut self, ip: IpAddr, now: Instant) -> u32 {
        if !self.by_address.contains_key(&ip) && self.by_address.len() >= MAX_TRACKED_ADDRESSES {
            self.by_address
                .retain(|_, (_, last)| now.duration_since(*last) < FAILURE_MEMORY);
            if self.by_address.len() >= MAX_TRACKED_ADDRESSES {
                if let Some(oldest) = self
                    .by_address
                    .iter()
                    .min_by_key(|(_, (_, last))| *last)
                    .map(|(ip, _)| *ip)
                {
                    self.by_address.remove(&oldest);
                }
            }
        }
        let entry = self.by_address.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_MEMORY {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        entry.0
    }

    /// Whether a line may be logged now; if so, how many were left out
    /// since the last one.
    fn may_log(&mut self, now: Instant) -> Option<u64> {
        let start = *self.window_start.get_or_insert(now);
        if now.duration_since(start) >= LOG_WINDOW {
            self.window_start = Some(now);
            self.lines_in_window = 0;
        }
        if self.lines_in_window >= LOG_LINES_PER_WINDOW {
            self.suppressed += 1;
            return None;
        }
        self.lines_in_window += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_repeated_failures_then_the_delay_grows_to_a_bound() {
        assert_eq!(failure_delay(1), Duration::ZERO);
        assert_eq!(failure_delay(2), Duration::from_millis(100));
        assert_eq!(failure_delay(3), Duration::from_millis(200));
        assert_eq!(failure_delay(100), MAX_FAILURE_DELAY);
    }

    #[test]
    fn given_failures_from_more_addresses_than_tracked_then_memory_stays_bounded() {
        let mut failures = Failures::default();
        let now = Instant::now();
        for i in 0..(MAX_TRACKED_ADDRESSES as u32 * 3) {
            let ip = IpAddr::from(i.to_be_bytes());
            failures.record(ip, now);
        }
        assert!(failures.by_address.len() <= MAX_TRACKED_ADDRESSES);
        let ip = IpAddr::from([10, 0, 0, 1]);
        assert_eq!(failures.record(ip, now), 1);
        assert_eq!(failures.record(ip, now), 2);
    }

    #[test]
    fn given_a_burst_of_failures_then_lines_are_limited_and_the_rest_counted() {
        let mut failures = Failures::default();
        let now = Instant::now();
        let logged = (0..100).filter(|_| failures.may_log(now).is_some()).count();
        assert_eq!(logged, LOG_LINES_PER_WINDOW as usize);
        assert_eq!(failures.may_log(now + LOG_WINDOW), Some(80));
    }
}
