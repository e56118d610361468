//! What security costs on the broker's CPU, in-process:
//!
//! - `security/authorize/1000_acls/...`: one authorization decision with
//!   1,000 ACLs loaded (literal topic ACLs for 900 other principals, 50
//!   prefixed ones, 50 group ACLs), for a principal allowed by a literal
//!   ACL, one allowed by a prefixed ACL, and one with no ACL (denied). A
//!   Produce pays one decision per topic in the request, never per record.
//! - `security/authorize/off`: the same call with `--authorizer` off (the
//!   default), the cost every request pays when ACLs are not enforced.
//! - `security/scram_exchange/<mechanism>`: a whole SCRAM exchange, both
//!   sides (client-first, server-first, client-final, server-final) at
//!   4,096 iterations: the CPU a new SASL connection costs (the client's
//!   and the server's PBKDF2 dominate).
//!
//! Run: `cargo bench --bench security`.
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot set up should stop loudly

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, Criterion};
use sediment_broker::security::acl::{
    AclBinding, AclOperation, AclPermission, PatternType, ResourceType,
};
use sediment_broker::security::gatekeeper::Gatekeeper;
use sediment_broker::security_config::SecurityConfig;
use sediment_broker::session::{ListenerKind, Session};
use sediment_protocol::sasl::{ScramClient, ScramCredential, ScramMechanism, ScramServer};

fn binding(
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    operation: AclOperation,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.to_string(),
        pattern_type,
        principal: principal.to_string(),
        host: "*".to_string(),
        operation,
        permission: AclPermission::Allow,
    }
}

fn gatekeeper(enforce: bool, dir: &std::path::Path) -> Gatekeeper {
    let config = SecurityConfig {
        authorizer: enforce,
        ..SecurityConfig::default()
    };
    let gatekeeper = Gatekeeper::open(dir, &config).expect("open");
    let mut bindings = Vec::new();
    for i in 0..900 {
        bindings.push(binding(
            ResourceType::Topic,
            &format!("topic-{i}"),
            PatternType::Literal,
            &format!("User:other-{i}"),
            AclOperation::Write,
        ));
    }
    for i in 0..50 {
        bindings.push(binding(
            ResourceType::Topic,
            &format!("team-{i}."),
            PatternType::Prefixed,
            &format!("User:team-{i}"),
            AclOperation::Write,
        ));
        bindings.push(binding(
            ResourceType::Group,
            &format!("group-{i}"),
            PatternType::Literal,
            &format!("User:team-{i}"),
            AclOperation::Read,
        ));
    }
    // The ones the measured principals match.
    bindings[0] = binding(
        ResourceType::Topic,
        "events",
        PatternType::Literal,
        "User:alice",
        AclOperation::Write,
    );
    let created = gatekeeper.acls().create(bindings);
    assert!(created.iter().all(Result::is_ok));
    assert_eq!(gatekeeper.acls().list().len(), 1000);
    gatekeeper
}

fn authorize(c: &mut Criterion) {
    let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let session = |principal: &str| Session::new(principal, peer, ListenerKind::Plain);
    let dir = tempfile::tempdir().unwrap();
    let enforced = gatekeeper(true, dir.path());
    let mut group = c.benchmark_group("security/authorize");
    for (name, principal, topic, allowed) in [
        ("1000_acls/literal_allowed", "User:alice", "events", true),
        (
            "1000_acls/prefixed_allowed",
            "User:team-7",
            "team-7.orders",
            true,
        ),
        ("1000_acls/no_acl_denied", "User:mallory", "events", false),
    ] {
        let session = session(principal);
        assert_eq!(
            enforced.allows(&session, AclOperation::Write, ResourceType::Topic, topic),
            allowed
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(enforced.allows(
                    black_box(&session),
                    AclOperation::Write,
                    ResourceType::Topic,
                    black_box(topic),
                ))
            })
        });
    }
    let off_dir = tempfile::tempdir().unwrap();
    let off = gatekeeper(false, off_dir.path());
    let mallory = session("User:mallory");
    group.bench_function("off", |b| {
        b.iter(|| {
            black_box(off.allows(
                black_box(&mallory),
                AclOperation::Write,
                ResourceType::Topic,
                "events",
            ))
        })
    });
    group.finish();
}

fn scram_exchange(c: &mut Criterion) {
    let mut group = c.benchmark_group("security/scram_exchange");
    group.sample_size(20);
    for mechanism in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
        let stored = ScramCredential::generate(mechanism, b"secret", 4096).unwrap();
        group.bench_function(mechanism.name(), |b| {
            b.iter(|| {
                let (mut client, first) = ScramClient::new(mechanism, "alice", b"secret").unwrap();
                let mut server = ScramServer::new(mechanism);
                let server_first = server
                    .client_first(&first, |_| Some(stored.clone()))
                    .unwrap();
                let client_final = client.server_first(&server_first).unwrap();
                let (server_final, user) = server.client_final(&client_final).unwrap();
                client.server_final(&server_final).unwrap();
                black_box(user)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, authorize, scram_exchange);
criterion_main!(benches);
