//! The broker's ACLs, persisted in `DATA/meta/acls.json`, and the
//! [`Authorizer`] that answers "may principal P, from host H, do operation O
//! on resource (T, N)?".
//!
//! Invariants:
//! - Every stored binding passed [`validate_binding`] (also when loaded: a
//!   file holding an invalid one is refused as damaged, not half-believed).
//! - The file and memory agree: a change is written (checksummed, temp file
//!   → fdatasync → rename → directory fsync) under the write lock *before* it
//!   is applied in memory, so a failed write changes nothing and a crash
//!   leaves either the old or the new set on disk, never a mix.
//! - The index holds exactly the bindings of the set, so [`Authorizer::authorize`]
//!   equals the linear-scan rule of [`super::acl`]
//!   ([`super::acl::binding_applies`] + [`super::acl::decide`]); a property
//!   test checks it.
//!
//! Cost: a check is one hash lookup for the literal name, one for the
//! literal `*` bindings of the type, and one per distinct prefix length of
//! the type's prefixed bindings that fits in the name, then a scan of the
//! (few) entries found; it never scans all bindings. Mutations write the
//! whole file once per request (ACL changes are rare; checks are not).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::acl::{
    parse_host, principal_matches, validate_binding, AclBinding, AclBindingFilter, AclError,
    AclOperation, AclPermission, HostPattern, PatternType, ResourceType, WILDCARD_RESOURCE,
};
use crate::basics::{read_lock, write_lock};
use crate::storage::checkpoint::{
    read_checksummed, sync_parent_dir, write_checksummed, ChecksummedFileError,
};
use crate::storage::log_manager::META_DIR;

/// File under `DATA/meta` holding the ACLs.
pub const ACLS_FILE: &str = "acls.json";

/// Super users and ACL bindings; decides every access check. Thread-safe:
/// checks share a read lock, changes take the write lock.
pub struct Authorizer {
    path: PathBuf,
    super_users: HashSet<String>,
    state: RwLock<AclState>,
}

/// The bindings and their index, always changed together.
#[derive(Default)]
struct AclState {
    /// Every binding, in a stable order (for list, describe and the file).
    bindings: BTreeSet<AclBinding>,
    /// The same bindings, indexed for checks.
    index: HashMap<ResourceType, TypeIndex>,
}

/// The bindings of one resource type, by how their name matches.
#[derive(Default)]
struct TypeIndex {
    /// Literal bindings by name (`*` excluded).
    literal: HashMap<String, Vec<Entry>>,
    /// Literal `*` bindings: apply to every name.
    wildcard: Vec<Entry>,
    /// Prefixed bindings by prefix.
    prefixed: HashMap<String, Vec<Entry>>,
    /// Byte length of each distinct prefix → how many prefixes have it, so a
    /// check looks up only the prefix lengths that exist.
    prefix_lengths: BTreeMap<usize, usize>,
}

/// What a check needs of a binding once its resource matched.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    principal: String,
    host: HostPattern,
    operation: AclOperation,
    permission: AclPermission,
}

impl Entry {
    /// `None` for a binding whose host does not parse (validation keeps those out).
    fn of(binding: &AclBinding) -> Option<Self> {
        Some(Self {
            principal: binding.principal.clone(),
            host: parse_host(&binding.host)?,
            operation: binding.operation,
            permission: binding.permission,
        })
    }
}

impl TypeIndex {
    fn slot(&mut self, binding: &AclBinding) -> Option<&mut Vec<Entry>> {
        match binding.pattern_type {
            PatternType::Literal if binding.resource_name == WILDCARD_RESOURCE => {
                Some(&mut self.wildcard)
            }
            PatternType::Literal => Some(
                self.literal
                    .entry(binding.resource_name.clone())
                    .or_default(),
            ),
            PatternType::Prefixed => {
                let name = &binding.resource_name;
                if !self.prefixed.contains_key(name) {
                    *self.prefix_lengths.entry(name.len()).or_default() += 1;
                }
                Some(self.prefixed.entry(name.clone()).or_default())
            }
            PatternType::Unknown | PatternType::Any | PatternType::Match => None,
        }
    }

    fn insert(&mut self, binding: &AclBinding) {
        if let (Some(entry), Some(slot)) = (Entry::of(binding), self.slot(binding)) {
            slot.push(entry);
        }
    }

    /// Removes one entry equal to `binding`'s (two bindings whose hosts are
    /// spelled differently but parse alike have equal entries; removing
    /// either keeps the count, and the behaviour, right).
    fn remove(&mut self, binding: &AclBinding) {
        let Some(entry) = Entry::of(binding) else {
            return;
        };
        let name = &binding.resource_name;
        let remove_from = |entries: &mut Vec<Entry>| {
            if let Some(at) = entries.iter().position(|e| *e == entry) {
                entries.swap_remove(at);
            }
            entries.is_empty()
        };
        match binding.pattern_type {
            PatternType::Literal if name == WILDCARD_RESOURCE => {
                remove_from(&mut self.wildcard);
            }
            PatternType::Literal => {
                if self.literal.get_mut(name).is_some_and(remove_from) {
                    self.literal.remove(name);
                }
            }
            PatternType::Prefixed => {
                if self.prefixed.get_mut(name).is_some_and(remove_from) {
                    self.prefixed.remove(name);
                    if let Some(count) = self.prefix_lengths.get_mut(&name.len()) {
                        *count -= 1;
                        if *count == 0 {
                            self.prefix_lengths.remove(&name.len());
                        }
                    }
                }
            }
            PatternType::Unknown | PatternType::Any | PatternType::Match => {}
        }
    }

    /// Visits every entry whose resource pattern applies to `name`.
    fn for_each_candidate(
        &self,
        name: &str,
        mut visit: impl FnMut(&Entry) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let literal = self.literal.get(name).map(Vec::as_slice).unwrap_or(&[]);
        for entry in literal.iter().chain(&self.wildcard) {
            visit(entry)?;
        }
        for &len in self.prefix_lengths.range(..=name.len()).map(|(len, _)| len) {
            let Some(prefix) = name.get(..len) else {
                // Not a char boundary of `name`: no prefix of this length.
                continue;
            };
            for entry in self.prefixed.get(prefix).map(Vec::as_slice).unwrap_or(&[]) {
                visit(entry)?;
            }
        }
        ControlFlow::Continue(())
    }
}

impl AclState {
    fn insert(&mut self, binding: AclBinding) {
        self.index
            .entry(binding.resource_type)
            .or_default()
            .insert(&binding);
        self.bindings.insert(binding);
    }

    fn remove(&mut self, binding: &AclBinding) {
        if self.bindings.remove(binding) {
            if let Some(by_type) = self.index.get_mut(&binding.resource_type) {
                by_type.remove(binding);
            }
        }
    }
}

impl Authorizer {
    /// Loads `DATA/meta/acls.json` (none yet is no ACLs) with `super_users`
    /// (principals like `User:admin`, allowed everything). A damaged file is
    /// refused, naming the file and what to do, rather than read as "no
    /// ACLs": that would silently change who may do what.
    pub fn open(data_dir: &Path, super_users: Vec<String>) -> Result<Self, AclError> {
        let path = data_dir.join(META_DIR).join(ACLS_FILE);
        let corrupt = |reason: String| AclError::Corrupt {
            path: path.clone(),
            reason,
        };
        let mut state = AclState::default();
        match read_checksummed(&path) {
            Ok(None) => {}
            Ok(Some(bytes)) => {
                let list: Vec<AclBinding> = serde_json::from_slice(&bytes)
                    .map_err(|e| corrupt(format!("not a valid ACL list: {e}")))?;
                for (n, binding) in list.into_iter().enumerate() {
                    validate_binding(&binding)
                        .map_err(|e| corrupt(format!("binding {n} {binding:?} is invalid: {e}")))?;
                    state.insert(binding);
                }
            }
            Err(ChecksummedFileError::Io { path, source }) => {
                return Err(AclError::Read {
                    path,
                    source: Arc::new(source),
                })
            }
            Err(ChecksummedFileError::Damaged { reason, .. }) => return Err(corrupt(reason)),
        }
        Ok(Self {
            path,
            super_users: super_users.into_iter().collect(),
            state: RwLock::new(state),
        })
    }

    /// Whether `principal` (e.g. `User:admin`) is a super user (compared exactly).
    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.contains(principal)
    }

    /// Whether `principal` from `host` may do `operation` on the resource
    /// `(resource_type, name)`: a super user may do anything; anyone else
    /// needs an applicable ALLOW covering the operation and no applicable
    /// DENY covering it (see [`super::acl`] for "applicable" and "covering").
    /// No ACLs at all means denied.
    pub fn authorize(
        &self,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        let state = read_lock(&self.state);
        let Some(by_type) = state.index.get(&resource_type) else {
            return false;
        };
        let mut allowed = false;
        let flow = by_type.for_each_candidate(name, |entry| {
            if !principal_matches(&entry.principal, principal) || !entry.host.matches(host) {
                return ControlFlow::Continue(());
            }
            match entry.permission {
                AclPermission::Deny if entry.operation.deny_covers(operation) => {
                    return ControlFlow::Break(());
                }
                AclPermission::Allow if entry.operation.allow_covers(operation) => allowed = true,
                _ => {}
            }
            ControlFlow::Continue(())
        });
        flow.is_continue() && allowed
    }

    /// Adds bindings (CreateAcls): one result per binding, in order. Invalid
    /// ones get their validation error; bindings already present are
    /// successful no-ops. The new ones are persisted with one write; if it
    /// fails, none is added and each gets the write error.
    pub fn create(&self, bindings: Vec<AclBinding>) -> Vec<Result<(), AclError>> {
        let mut results: Vec<Result<(), AclError>> =
            bindings.iter().map(validate_binding).collect();
        let mut state = write_lock(&self.state);
        let mut seen = HashSet::new();
        let new: Vec<(usize, AclBinding)> = bindings
            .into_iter()
            .enumerate()
            .filter(|(i, b)| results[*i].is_ok() && !state.bindings.contains(b))
            .filter(|(_, b)| seen.insert(b.clone()))
            .collect();
        if new.is_empty() {
            return results;
        }
        let all: Vec<&AclBinding> = state
            .bindings
            .iter()
            .chain(new.iter().map(|(_, b)| b))
            .collect();
        if let Err(error) = self.persist(&all) {
            for (i, _) in &new {
                results[*i] = Err(error.clone());
            }
            return results;
        }
        for (_, binding) in new {
            state.insert(binding);
        }
        results
    }

    /// The bindings `filter` selects (DescribeAcls), in a stable order.
    /// Callers check the filter with [`super::acl::validate_filter`] first;
    /// a filter with an `Unknown` field selects nothing.
    pub fn describe(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        read_lock(&self.state)
            .bindings
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// Removes every binding any of `filters` selects (DeleteAcls) and
    /// returns, per filter, the bindings it removed. As in Kafka, a binding
    /// several filters select is reported once, under the first. Persisted
    /// with one write (none if nothing matched); if it fails, nothing is
    /// removed. Callers validate filters first (an `Unknown` field selects
    /// nothing).
    pub fn delete(&self, filters: &[AclBindingFilter]) -> Result<Vec<Vec<AclBinding>>, AclError> {
        let mut state = write_lock(&self.state);
        let mut removed: HashSet<&AclBinding> = HashSet::new();
        let mut per_filter = Vec::with_capacity(filters.len());
        for filter in filters {
            let matched: Vec<&AclBinding> = state
                .bindings
                .iter()
                .filter(|b| filter.matches(b) && !removed.contains(b))
                .collect();
            removed.extend(matched.iter().copied());
            per_filter.push(matched);
        }
        let per_filter: Vec<Vec<AclBinding>> = per_filter
            .into_iter()
            .map(|matched| matched.into_iter().cloned().collect())
            .collect();
        if removed.is_empty() {
            return Ok(per_filter);
        }
        let remaining: Vec<&AclBinding> = state
            .bindings
            .iter()
            .filter(|b| !removed.contains(b))
            .collect();
        self.persist(&remaining)?;
        for binding in per_filter.iter().flatten() {
            state.remove(binding);
        }
        Ok(per_filter)
    }

    /// Every binding, in a stable order.
    pub fn list(&self) -> Vec<AclBinding> {
        read_lock(&self.state).bindings.iter().cloned().collect()
    }

    /// Writes `bindings` as the whole file, creating `DATA/meta` if needed
    /// (durably: its parent is fsynced so the directory survives a crash).
    fn persist(&self, bindings: &[&AclBinding]) -> Result<(), AclError> {
        let write_error = |source: io::Error| AclError::Write {
            path: self.path.clone(),
            source: Arc::new(source),
        };
        if let Some(meta) = self.path.parent() {
            if !meta.is_dir() {
                std::fs::create_dir_all(meta).map_err(write_error)?;
                sync_parent_dir(meta).map_err(write_error)?;
            }
        }
        let json = serde_json::to_vec_pretty(bindings).map_err(|e| write_error(e.into()))?;
        write_checksummed(&self.path, &json).map_err(write_error)
    }
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("path", &self.path)
            .field("super_users", &self.super_users)
            .field("bindings", &read_lock(&self.state).bindings.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::{binding_applies, decide, validate_filter};
    use proptest::prelude::*;

    const ALICE: &str = "User:alice";
    const BOB: &str = "User:bob";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn local() -> IpAddr {
        ip("10.0.0.1")
    }

    fn acl(
        principal: &str,
        permission: AclPermission,
        operation: AclOperation,
        pattern_type: PatternType,
        name: &str,
    ) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.to_string(),
            pattern_type,
            principal: principal.to_string(),
            host: "*".to_string(),
            operation,
            permission,
        }
    }

    fn allow(principal: &str, operation: AclOperation, name: &str) -> AclBinding {
        acl(
            principal,
            AclPermission::Allow,
            operation,
            PatternType::Literal,
            name,
        )
    }

    fn deny(principal: &str, operation: AclOperation, name: &str) -> AclBinding {
        acl(
            principal,
            AclPermission::Deny,
            operation,
            PatternType::Literal,
            name,
        )
    }

    fn open(dir: &Path) -> Authorizer {
        Authorizer::open(dir, vec!["User:admin".to_string()]).unwrap()
    }

    fn with(bindings: Vec<AclBinding>) -> (tempfile::TempDir, Authorizer) {
        let dir = tempfile::tempdir().unwrap();
        let authorizer = open(dir.path());
        for result in authorizer.create(bindings) {
            result.unwrap();
        }
        (dir, authorizer)
    }

    fn can(a: &Authorizer, principal: &str, op: AclOperation, topic: &str) -> bool {
        a.authorize(principal, local(), op, ResourceType::Topic, topic)
    }

    #[test]
    fn given_no_acls_when_checked_then_denied() {
        let (_dir, a) = with(vec![]);
        assert!(!can(&a, ALICE, AclOperation::Read, "orders"));
    }

    #[test]
    fn given_allow_read_when_checked_then_read_allowed_and_other_operations_denied() {
        let (_dir, a) = with(vec![allow(ALICE, AclOperation::Read, "orders")]);
        assert!(can(&a, ALICE, AclOperation::Read, "orders"));
        assert!(!can(&a, ALICE, AclOperation::Write, "orders"));
        assert!(!can(&a, ALICE, AclOperation::Read, "payments"));
        assert!(!can(&a, BOB, AclOperation::Read, "orders"));
        assert!(!a.authorize(
            ALICE,
            local(),
            AclOperation::Read,
            ResourceType::Group,
            "orders"
        ));
    }

    #[test]
    fn given_allow_and_deny_when_checked_then_deny_wins() {
        let (_dir, a) = with(vec![
            allow("User:*", AclOperation::All, "*"),
            deny(BOB, AclOperation::Write, "orders"),
        ]);
        assert!(can(&a, BOB, AclOperation::Read, "orders"));
        assert!(!can(&a, BOB, AclOperation::Write, "orders"));
        assert!(can(&a, ALICE, AclOperation::Write, "orders"));
        assert!(can(&a, BOB, AclOperation::Write, "payments"));
    }

    #[test]
    fn given_wildcard_principal_and_resource_when_checked_then_apply_to_everyone_and_every_name() {
        let (_dir, a) = with(vec![
            allow("User:*", AclOperation::Read, "orders"),
            allow(ALICE, AclOperation::Write, "*"),
        ]);
        assert!(can(&a, BOB, AclOperation::Read, "orders"));
        assert!(can(&a, ALICE, AclOperation::Write, "anything"));
        assert!(!can(&a, BOB, AclOperation::Write, "anything"));
        // A literal "*" topic name is not special on the request side.
        assert!(!can(&a, BOB, AclOperation::Read, "*"));
    }

    #[test]
    fn given_prefixed_acl_when_checked_then_applies_to_names_starting_with_prefix() {
        let (_dir, a) = with(vec![
            acl(
                ALICE,
                AclPermission::Allow,
                AclOperation::Read,
                PatternType::Prefixed,
                "orders-",
            ),
            acl(
                ALICE,
                AclPermission::Deny,
                AclOperation::Read,
                PatternType::Prefixed,
                "orders-secret",
            ),
        ]);
        assert!(can(&a, ALICE, AclOperation::Read, "orders-"));
        assert!(can(&a, ALICE, AclOperation::Read, "orders-eu"));
        assert!(!can(&a, ALICE, AclOperation::Read, "orders"));
        assert!(!can(&a, ALICE, AclOperation::Read, "my-orders-eu"));
        assert!(!can(&a, ALICE, AclOperation::Read, "orders-secret-2"));
    }

    #[test]
    fn given_multibyte_names_when_prefix_length_splits_a_char_then_no_panic_and_no_match() {
        let (_dir, a) = with(vec![acl(
            ALICE,
            AclPermission::Allow,
            AclOperation::Read,
            PatternType::Prefixed,
            "ab",
        )]);
        // "é" is two bytes: length 2 is inside it.
        assert!(!can(&a, ALICE, AclOperation::Read, "éx"));
        assert!(can(&a, ALICE, AclOperation::Read, "abé"));
    }

    #[test]
    fn given_allow_read_when_describe_checked_then_implied_and_deny_read_keeps_it() {
        let (_dir, a) = with(vec![
            allow(ALICE, AclOperation::Read, "orders"),
            deny(ALICE, AclOperation::Read, "orders"),
            allow(BOB, AclOperation::AlterConfigs, "orders"),
        ]);
        assert!(!can(&a, ALICE, AclOperation::Read, "orders"));
        assert!(can(&a, ALICE, AclOperation::Describe, "orders"));
        assert!(can(&a, BOB, AclOperation::DescribeConfigs, "orders"));
        assert!(!can(&a, BOB, AclOperation::Describe, "orders"));
    }

    #[test]
    fn given_deny_all_when_any_operation_checked_then_denied() {
        let (_dir, a) = with(vec![
            allow(ALICE, AclOperation::All, "orders"),
            deny(ALICE, AclOperation::All, "orders"),
        ]);
        for op in [
            AclOperation::Read,
            AclOperation::Describe,
            AclOperation::AlterConfigs,
        ] {
            assert!(!can(&a, ALICE, op, "orders"), "{op}");
        }
    }

    #[test]
    fn given_host_acl_when_checked_from_other_host_then_not_applied() {
        let mut b = allow(ALICE, AclOperation::Read, "orders");
        b.host = "10.0.0.1".to_string();
        let mut v6 = allow(BOB, AclOperation::Read, "orders");
        v6.host = "::1".to_string();
        let (_dir, a) = with(vec![b, v6]);
        let read = AclOperation::Read;
        let topic = ResourceType::Topic;
        assert!(a.authorize(ALICE, ip("10.0.0.1"), read, topic, "orders"));
        assert!(!a.authorize(ALICE, ip("10.0.0.2"), read, topic, "orders"));
        assert!(a.authorize(BOB, ip("0:0:0:0:0:0:0:1"), read, topic, "orders"));
    }

    #[test]
    fn given_super_user_when_checked_then_allowed_without_and_despite_acls() {
        let (_dir, a) = with(vec![deny("User:*", AclOperation::All, "*")]);
        assert!(a.is_super_user("User:admin"));
        assert!(!a.is_super_user("User:Admin"));
        assert!(can(&a, "User:admin", AclOperation::Delete, "orders"));
        assert!(a.authorize(
            "User:admin",
            local(),
            AclOperation::ClusterAction,
            ResourceType::Cluster,
            "kafka-cluster"
        ));
        assert!(!can(&a, ALICE, AclOperation::Read, "orders"));
    }

    #[test]
    fn given_create_batch_when_some_invalid_or_duplicate_then_per_binding_results() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path());
        let good = allow(ALICE, AclOperation::Read, "orders");
        let mut bad = good.clone();
        bad.principal = "alice".to_string();
        let results = a.create(vec![good.clone(), bad, good.clone()]);
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(AclError::InvalidPrincipal { .. })));
        assert!(results[2].is_ok());
        assert_eq!(a.list(), vec![good.clone()]);
        assert!(a.create(vec![good.clone()])[0].is_ok());
        assert_eq!(a.list(), vec![good]);
    }

    #[test]
    fn given_filters_when_described_then_match_and_any_semantics_apply() {
        let literal = allow(ALICE, AclOperation::Read, "orders-eu");
        let wildcard = allow(BOB, AclOperation::Read, "*");
        let prefixed = acl(
            ALICE,
            AclPermission::Deny,
            AclOperation::Write,
            PatternType::Prefixed,
            "orders-",
        );
        let other = allow(ALICE, AclOperation::Read, "payments");
        let (_dir, a) = with(vec![
            literal.clone(),
            wildcard.clone(),
            prefixed.clone(),
            other.clone(),
        ]);
        let filter = |pattern_type, name: &str| AclBindingFilter {
            resource_type: ResourceType::Topic,
            resource_name: Some(name.to_string()),
            pattern_type,
            ..AclBindingFilter::any()
        };
        let sorted = |mut v: Vec<AclBinding>| {
            v.sort();
            v
        };
        assert_eq!(
            a.describe(&filter(PatternType::Match, "orders-eu")),
            sorted(vec![literal.clone(), wildcard.clone(), prefixed.clone()])
        );
        assert_eq!(
            a.describe(&filter(PatternType::Any, "orders-")),
            vec![prefixed.clone()]
        );
        assert_eq!(a.describe(&AclBindingFilter::any()).len(), 4);
        let by_principal = AclBindingFilter {
            principal: Some(BOB.to_string()),
            ..AclBindingFilter::any()
        };
        assert_eq!(a.describe(&by_principal), vec![wildcard]);
        let mut unknown = AclBindingFilter::any();
        unknown.resource_type = ResourceType::Unknown;
        assert!(validate_filter(&unknown).is_err());
        assert!(a.describe(&unknown).is_empty());
    }

    #[test]
    fn given_overlapping_filters_when_deleted_then_each_binding_reported_once_and_access_removed() {
        let read = allow(ALICE, AclOperation::Read, "orders");
        let write = allow(ALICE, AclOperation::Write, "orders");
        let keep = allow(BOB, AclOperation::Read, "orders");
        let (dir, a) = with(vec![read.clone(), write.clone(), keep.clone()]);
        let by_alice = AclBindingFilter {
            principal: Some(ALICE.to_string()),
            ..AclBindingFilter::any()
        };
        let by_read = AclBindingFilter {
            operation: AclOperation::Read,
            ..by_alice.clone()
        };
        let nothing = AclBindingFilter {
            principal: Some("User:carol".to_string()),
            ..AclBindingFilter::any()
        };
        let removed = a.delete(&[by_read, by_alice, nothing]).unwrap();
        assert_eq!(removed, vec![vec![read], vec![write], vec![]]);
        assert_eq!(a.list(), vec![keep]);
        assert!(!can(&a, ALICE, AclOperation::Read, "orders"));
        assert!(can(&a, BOB, AclOperation::Read, "orders"));
        assert_eq!(open(dir.path()).list(), a.list());
    }

    #[test]
    fn given_created_acls_when_reopened_then_same_bindings_and_decisions() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = allow(ALICE, AclOperation::Write, "orders");
        host.host = "192.168.1.7".to_string();
        let bindings = vec![
            allow(ALICE, AclOperation::Read, "orders"),
            deny(BOB, AclOperation::All, "*"),
            acl(
                ALICE,
                AclPermission::Allow,
                AclOperation::Describe,
                PatternType::Prefixed,
                "pay",
            ),
            host,
        ];
        let a = open(dir.path());
        assert!(a.create(bindings).iter().all(Result::is_ok));
        let before = a.list();
        drop(a);
        assert!(dir.path().join(META_DIR).join(ACLS_FILE).is_file());
        let b = open(dir.path());
        assert_eq!(b.list(), before);
        assert!(can(&b, ALICE, AclOperation::Describe, "payments"));
        assert!(!can(&b, BOB, AclOperation::Read, "orders"));
        assert!(b.authorize(
            ALICE,
            ip("192.168.1.7"),
            AclOperation::Write,
            ResourceType::Topic,
            "orders"
        ));
    }

    #[test]
    fn given_damaged_file_when_opened_then_refused_naming_file_and_remedy() {
        let (dir, a) = with(vec![allow(ALICE, AclOperation::Read, "orders")]);
        drop(a);
        let path = dir.path().join(META_DIR).join(ACLS_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let err = Authorizer::open(dir.path(), vec![]).unwrap_err();
        assert!(matches!(err, AclError::Corrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("backup"), "{message}");
    }

    #[test]
    fn given_checksummed_file_with_invalid_content_when_opened_then_refused() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join(META_DIR);
        std::fs::create_dir_all(&meta).unwrap();
        write_checksummed(&meta.join(ACLS_FILE), b"{not json").unwrap();
        assert!(matches!(
            Authorizer::open(dir.path(), vec![]),
            Err(AclError::Corrupt { .. })
        ));
        let mut bad = allow(ALICE, AclOperation::Read, "orders");
        bad.host = "not-an-ip".to_string();
        let json = serde_json::to_vec(&vec![bad]).unwrap();
        write_checksummed(&meta.join(ACLS_FILE), &json).unwrap();
        let err = Authorizer::open(dir.path(), vec![]).unwrap_err();
        assert!(err.to_string().contains("not-an-ip"), "{err}");
    }

    #[test]
    fn given_unwritable_meta_when_changed_then_error_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let a = open(&data);
        let kept = allow(ALICE, AclOperation::Read, "orders");
        assert!(a.create(vec![kept.clone()])[0].is_ok());
        // A file where the meta directory should be: every write fails.
        std::fs::remove_dir_all(data.join(META_DIR)).unwrap();
        std::fs::write(data.join(META_DIR), b"in the way").unwrap();
        let results = a.create(vec![allow(BOB, AclOperation::Read, "orders")]);
        assert!(matches!(results[0], Err(AclError::Write { .. })));
        assert!(!can(&a, BOB, AclOperation::Read, "orders"));
        assert!(a.delete(&[AclBindingFilter::any()]).is_err());
        assert_eq!(a.list(), vec![kept]);
        assert!(can(&a, ALICE, AclOperation::Read, "orders"));
    }

    #[test]
    fn given_thousands_of_acls_when_checked_then_each_resolves_through_the_index() {
        let mut bindings = Vec::new();
        for i in 0..2_000 {
            bindings.push(allow(
                &format!("User:u{i}"),
                AclOperation::Read,
                &format!("t{i}"),
            ));
            bindings.push(acl(
                &format!("User:u{i}"),
                AclPermission::Allow,
                AclOperation::Write,
                PatternType::Prefixed,
                &format!("p{i}-"),
            ));
        }
        let (_dir, a) = with(bindings);
        assert_eq!(a.list().len(), 4_000);
        assert!(can(&a, "User:u1234", AclOperation::Read, "t1234"));
        assert!(!can(&a, "User:u1234", AclOperation::Read, "t1235"));
        assert!(can(&a, "User:u77", AclOperation::Write, "p77-x"));
        assert!(!can(&a, "User:u77", AclOperation::Write, "p7-x"));
        let removed = a
            .delete(&[AclBindingFilter {
                principal: Some("User:u77".to_string()),
                ..AclBindingFilter::any()
            }])
            .unwrap();
        assert_eq!(removed[0].len(), 2);
        assert!(!can(&a, "User:u77", AclOperation::Write, "p77-x"));
    }

    #[test]
    fn given_authorizer_when_shared_then_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Authorizer>();
    }

    const NAMES: [&str; 6] = ["a", "ab", "abc", "b", "bc", "é"];
    const PRINCIPALS: [&str; 3] = [ALICE, BOB, "User:*"];
    const HOSTS: [&str; 3] = ["*", "10.0.0.1", "10.0.0.2"];
    const OPERATIONS: [AclOperation; 11] = [
        AclOperation::All,
        AclOperation::Read,
        AclOperation::Write,
        AclOperation::Create,
        AclOperation::Delete,
        AclOperation::Alter,
        AclOperation::Describe,
        AclOperation::ClusterAction,
        AclOperation::DescribeConfigs,
        AclOperation::AlterConfigs,
        AclOperation::IdempotentWrite,
    ];
    const TYPES: [ResourceType; 2] = [ResourceType::Topic, ResourceType::Group];

    fn arb_binding() -> impl Strategy<Value = AclBinding> {
        (
            0..TYPES.len(),
            0..NAMES.len() + 1,
            any::<bool>(),
            0..PRINCIPALS.len(),
            0..HOSTS.len(),
            0..OPERATIONS.len(),
            any::<bool>(),
        )
            .prop_map(|(t, n, prefixed, p, h, o, allow)| {
                let prefixed = prefixed && n < NAMES.len();
                AclBinding {
                    resource_type: TYPES[t],
                    resource_name: NAMES.get(n).copied().unwrap_or("*").to_string(),
                    pattern_type: if prefixed {
                        PatternType::Prefixed
                    } else {
                        PatternType::Literal
                    },
                    principal: PRINCIPALS[p].to_string(),
                    host: HOSTS[h].to_string(),
                    operation: OPERATIONS[o],
                    permission: if allow {
                        AclPermission::Allow
                    } else {
                        AclPermission::Deny
                    },
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn given_random_acls_when_checked_then_index_equals_linear_scan(
            bindings in proptest::collection::vec(arb_binding(), 0..40),
            deletions in proptest::collection::vec(0..NAMES.len(), 0..3),
            requests in proptest::collection::vec(
                (0..TYPES.len(), 0..NAMES.len(), 0..2usize, 1..HOSTS.len(), 0..OPERATIONS.len()),
                1..40,
            ),
        ) {
            let (_dir, a) = with(bindings);
            // Exercise removal from the index too.
            let filters: Vec<AclBindingFilter> = deletions
                .iter()
                .map(|&n| AclBindingFilter {
                    resource_name: Some(NAMES[n].to_string()),
                    ..AclBindingFilter::any()
                })
                .collect();
            a.delete(&filters).unwrap();
            let remaining = a.list();
            for (t, n, p, h, o) in requests {
                let host = ip(HOSTS[h]);
                let (principal, name) = (PRINCIPALS[p], NAMES[n]);
                let applicable = remaining
                    .iter()
                    .filter(|b| binding_applies(b, principal, host, TYPES[t], name));
                let expected = decide(applicable, OPERATIONS[o]);
                prop_assert_eq!(
                    a.authorize(principal, host, OPERATIONS[o], TYPES[t], name),
                    expected,
                    "{} {} {} {:?} {}", principal, host, OPERATIONS[o], TYPES[t], name
                );
            }
        }
    }
}
