//! TLS and SASL against the real broker binary (DESIGN §7), with real
//! clients over real TCP:
//! - kcat and confluent-kafka (librdkafka) over SASL_SSL with SCRAM-SHA-512
//!   and SCRAM-SHA-256, and PLAIN over TLS: N self-verifying messages
//!   produced come back exactly, in order;
//! - our own `sediment produce/consume` with the security flags over
//!   SASL_SSL, on a TLS-only broker (`--listen off`);
//! - a wrong password, an unknown user and a plaintext client on the TLS
//!   port are refused, and the broker keeps serving a good client;
//! - clients refuse a self-signed and an expired broker certificate;
//! - mutual TLS: the client certificate's subject is the principal ACLs see
//!   (`User:CN=alice`), and a client without a certificate the CA signed is
//!   refused; our own `sediment` presents one with `--client-cert`/`--client-key`;
//! - no password bytes anywhere under the data directory or in the log;
//! - users survive `kill -9`.
//!
//! Users are created with `sediment user create` (offline before the broker
//! starts, or online through the broker); passwords reach clients through
//! files or stdin, never arguments.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use common::certs::{path_string, TestCerts};
use common::security::{
    assert_exactly, codes, create_user_offline, files_containing, librdkafka_config, messages,
    python_client, sediment_ok, sediment_refused, strings, with_client_cert, Connect, User,
    CLIENT_TIMEOUT, GIVE_UP_S, LOCAL_AUTHENTICATION, LOCAL_SSL, TOPIC_AUTHORIZATION_FAILED,
};
use common::{require_tool, run_bounded, tail, BrokerProcess};

/// Messages in each round trip.
const MESSAGES: usize = 2_000;

const KCAT_HINT: &str = "install it with `apt-get install kcat` (or run scripts/test)";

/// The mechanisms every broker here enables.
const ALL_MECHANISMS: &str = "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN";

/// A broker with a TLS listener and SASL on every listener, and the users
/// created offline before it started: alice (SCRAM-SHA-512) and bob
/// (SCRAM-SHA-256).
struct Secured {
    broker: BrokerProcess,
    certs: TestCerts,
    alice: User,
    bob: User,
    /// Password files and client config files.
    secrets: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Secured {
    fn start(extra: &[&str]) -> Self {
        let certs = TestCerts::generate();
        let data = tempfile::tempdir().expect("temp dir");
        let data_dir = data.path().join("data");
        let alice = User::new("alice", "SCRAM-SHA-512");
        let bob = User::new("bob", "SCRAM-SHA-256");
        create_user_offline(&data_dir, &alice);
        create_user_offline(&data_dir, &bob);
        let mut args = certs.serve_args(&certs.broker);
        args.extend(["--sasl".to_string(), ALL_MECHANISMS.to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let broker = BrokerProcess::start_in(&data_dir, &args);
        assert!(
            broker.tls_addr.is_some(),
            "the broker announced no TLS listener; its log:\n{}",
            broker.logs()
        );
        Self {
            broker,
            certs,
            alice,
            bob,
            secrets: tempfile::tempdir().expect("temp dir"),
            _data: data,
        }
    }

    fn tls(&self) -> String {
        self.broker.tls_bootstrap()
    }

    /// librdkafka settings for `user` over SASL_SSL on the TLS listener.
    fn sasl_ssl(&self, user: &User, mechanism: Option<&str>) -> Value {
        librdkafka_config(
            &self.tls(),
            "SASL_SSL",
            Some(&self.certs.ca_pem),
            Some(user),
            mechanism,
        )
    }

    /// `sediment` client flags for `user` over SASL_SSL.
    fn connect(&self, user: &User) -> Connect {
        Connect {
            bootstrap: self.tls(),
            protocol: "sasl_ssl",
            ca: Some(self.certs.ca_pem.clone()),
            user: Some((user.clone(), user.password_file(self.secrets.path()))),
            mechanism: None,
        }
    }

    /// A good client is still served: alice produces and reads back one
    /// message on a fresh topic over SASL_SSL.
    fn assert_still_serving(&mut self, after: &str) {
        assert!(
            self.broker.is_running(),
            "the broker died after {after}; its log:\n{}",
            self.broker.logs()
        );
        let topic = format!("still-serving-{}", uuid::Uuid::new_v4().simple());
        let run = python_client(
            &self.broker,
            json!({"action": "produce", "config": self.sasl_ssl(&self.alice, None),
                   "topic": topic, "messages": 1, "prefix": "canary"}),
        );
        assert_eq!(
            run["delivered"].as_array().map(Vec::len),
            Some(1),
            "after {after}, a good client's produce was not acknowledged: {run}\nbroker log:\n{}",
            tail(&self.broker.logs(), 20_000)
        );
    }
}

/// Python (confluent-kafka) produces [`MESSAGES`] values to `topic` with
/// `config` and reads them back with assign(); asserts they come back exactly.
fn python_round_trip(broker: &BrokerProcess, config: Value, topic: &str) {
    let produced = python_client(
        broker,
        json!({"action": "produce", "config": config, "topic": topic, "messages": MESSAGES,
               "prefix": topic}),
    );
    assert_eq!(
        produced["delivered"].as_array().map(Vec::len),
        Some(MESSAGES),
        "not every message to {topic} was acknowledged: failed {}, client errors {}, stopped {}\nbroker log:\n{}",
        produced["failed"],
        produced["client_errors"],
        produced["stopped"],
        tail(&broker.logs(), 20_000)
    );
    let consumed = python_client(
        broker,
        json!({"action": "consume", "config": config, "topic": topic, "messages": MESSAGES}),
    );
    let got = strings(&consumed["values"]);
    assert_exactly(&messages(topic, MESSAGES), &got, &|| {
        format!(
            "consumer errors {}, client errors {}\nbroker log:\n{}",
            consumed["errors"],
            consumed["client_errors"],
            tail(&broker.logs(), 20_000)
        )
    });
}

/// Writes a kcat/librdkafka properties file (`-F`) so that no password is
/// an argument.
fn kcat_config(dir: &Path, name: &str, config: &Value) -> PathBuf {
    let path = dir.join(format!("{name}.kcat.properties"));
    let text: String = config
        .as_object()
        .expect("config object")
        .iter()
        .filter(|(key, _)| *key != "bootstrap.servers")
        .map(|(key, value)| match value {
            Value::String(s) => format!("{key}={s}\n"),
            other => format!("{key}={other}\n"),
        })
        .collect();
    std::fs::write(&path, text).expect("write the kcat config");
    path
}

/// Runs kcat with `-F config -b bootstrap args…`; panics with its stderr and
/// the broker's log unless it exits 0 within [`CLIENT_TIMEOUT`].
fn kcat(
    broker: &BrokerProcess,
    config: &Path,
    bootstrap: &str,
    args: &[&str],
    stdin: Option<Vec<u8>>,
) -> Vec<u8> {
    let kcat = require_tool("kcat", KCAT_HINT);
    let mut command = Command::new(kcat);
    command
        .arg("-F")
        .arg(config)
        .args(["-b", bootstrap])
        .args(args);
    let run = run_bounded(command, stdin, CLIENT_TIMEOUT);
    assert!(
        run.status.is_some_and(|s| s.success()),
        "kcat {args:?} failed or was killed ({:?})\nkcat stderr:\n{}\nbroker log:\n{}",
        run.status,
        tail(&run.stderr, 6000),
        tail(&broker.logs(), 20_000)
    );
    run.stdout
}

/// kcat produces [`MESSAGES`] lines to `topic` and reads them back to the
/// end of the partition: exactly the same lines, in order.
fn kcat_round_trip(secured: &Secured, config: &Value, topic: &str) {
    let file = kcat_config(secured.secrets.path(), topic, config);
    let want = messages(topic, MESSAGES);
    let input = secured.secrets.path().join(format!("{topic}.lines"));
    std::fs::write(&input, want.join("\n") + "\n").expect("write the input");
    let tls = secured.tls();
    kcat(
        &secured.broker,
        &file,
        &tls,
        &["-P", "-t", topic, "-l", &path_string(&input)],
        None,
    );
    let out = kcat(
        &secured.broker,
        &file,
        &tls,
        &["-C", "-t", topic, "-o", "beginning", "-e", "-q"],
        None,
    );
    let text = String::from_utf8(out).expect("lines are UTF-8");
    let got: Vec<String> = text.lines().map(str::to_string).collect();
    assert_exactly(&want, &got, &|| {
        tail(&secured.broker.logs(), 20_000).to_string()
    });
}

// ---------------------------------------------------------------------------
// Round trips over SASL_SSL
// ---------------------------------------------------------------------------

#[test]
fn given_scram_sha_512_user_when_kcat_produces_and_consumes_over_sasl_ssl_then_every_message_comes_back_exactly(
) {
    let secured = Secured::start(&[]);
    let config = secured.sasl_ssl(&secured.alice, None);
    kcat_round_trip(&secured, &config, "kcat-scram-512");
}

#[test]
fn given_scram_sha_256_user_when_kcat_produces_and_consumes_over_sasl_ssl_then_every_message_comes_back_exactly(
) {
    let secured = Secured::start(&[]);
    let config = secured.sasl_ssl(&secured.bob, None);
    kcat_round_trip(&secured, &config, "kcat-scram-256");
}

#[test]
fn given_scram_users_when_confluent_kafka_produces_and_consumes_over_sasl_ssl_then_every_message_comes_back_exactly(
) {
    let secured = Secured::start(&[]);
    python_round_trip(
        &secured.broker,
        secured.sasl_ssl(&secured.alice, None),
        "confluent-scram-512",
    );
    python_round_trip(
        &secured.broker,
        secured.sasl_ssl(&secured.bob, None),
        "confluent-scram-256",
    );
}

#[test]
fn given_plain_mechanism_over_tls_when_kcat_and_confluent_kafka_round_trip_then_every_message_comes_back_exactly(
) {
    let secured = Secured::start(&[]);
    let config = secured.sasl_ssl(&secured.alice, Some("PLAIN"));
    kcat_round_trip(&secured, &config, "kcat-plain");
    python_round_trip(&secured.broker, config, "confluent-plain");
}

#[test]
fn given_tls_only_broker_when_sediment_cli_produces_and_consumes_over_sasl_ssl_then_lines_come_back_exactly(
) {
    let secured = Secured::start(&["--listen", "off"]);
    assert_eq!(
        Some(secured.broker.addr),
        secured.broker.tls_addr,
        "with --listen off the TLS listener is the only one"
    );
    let connect = secured.connect(&secured.alice);
    sediment_ok(
        &secured.broker,
        &connect,
        &["topic", "create", "cli-secure", "--partitions", "1"],
        None,
    );
    let want = messages("cli-secure", 500);
    sediment_ok(
        &secured.broker,
        &connect,
        &["produce", "cli-secure"],
        Some(&(want.join("\n") + "\n")),
    );
    let read = |connect: &Connect| -> Vec<String> {
        sediment_ok(
            &secured.broker,
            connect,
            &[
                "consume",
                "cli-secure",
                "--from-beginning",
                "--max-messages",
                "500",
                "--timeout-ms",
                "60000",
                "--format",
                "value",
            ],
            None,
        )
        .lines()
        .map(str::to_string)
        .collect()
    };
    let got = read(&connect);
    assert_exactly(&want, &got, &|| {
        tail(&secured.broker.logs(), 20_000).to_string()
    });

    // bob reads them too, with SCRAM-SHA-256 and his credentials from the
    // environment instead of flags.
    let mut command = Command::new(env!("CARGO_BIN_EXE_sediment"));
    command
        .args([
            "--bootstrap",
            &secured.tls(),
            "--security-protocol",
            "sasl_ssl",
        ])
        .arg("--ca")
        .arg(&secured.certs.ca_pem)
        .args(["--sasl-mechanism", "SCRAM-SHA-256"])
        .args([
            "consume",
            "cli-secure",
            "--from-beginning",
            "--max-messages",
            "500",
            "--timeout-ms",
            "60000",
            "--format",
            "value",
        ])
        .env("SEDIMENT_SASL_USERNAME", &secured.bob.name)
        .env("SEDIMENT_SASL_PASSWORD", &secured.bob.password);
    let run = run_bounded(command, None, CLIENT_TIMEOUT);
    assert!(
        run.status.is_some_and(|s| s.success()),
        "bob's consume with credentials from the environment failed ({:?}): {}\nbroker log:\n{}",
        run.status,
        run.stderr,
        tail(&secured.broker.logs(), 20_000)
    );
    let got: Vec<String> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_exactly(&want, &got, &|| run.stderr.clone());
}

// ---------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------

/// librdkafka settings with `user`'s name and `password` instead of theirs.
fn with_password(user: &User, password: &str) -> User {
    User {
        password: password.to_string(),
        ..user.clone()
    }
}

/// A producer that must not get anywhere: it gives up at its first client
/// error; returns the result, asserting nothing was acknowledged.
fn refused_produce(broker: &BrokerProcess, config: Value, what: &str) -> Value {
    let run = python_client(
        broker,
        json!({"action": "produce", "config": config, "topic": "refused", "messages": 1,
               "stop_on_client_error": true, "timeout_s": GIVE_UP_S}),
    );
    assert_eq!(
        run["delivered"].as_array().map(Vec::len),
        Some(0),
        "{what}: a message was acknowledged: {run}"
    );
    assert!(
        !codes(&run["client_errors"]).is_empty() || !codes(&run["failed"]).is_empty(),
        "{what}: the client saw no error: {run}\nbroker log:\n{}",
        tail(&broker.logs(), 20_000)
    );
    run
}

#[test]
fn given_wrong_password_when_authenticating_with_scram_then_authentication_fails_and_broker_keeps_serving(
) {
    let mut secured = Secured::start(&[]);
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
        let wrong = with_password(&secured.alice, "not-alices-password");
        let config = secured.sasl_ssl(&wrong, Some(mechanism));
        let run = refused_produce(&secured.broker, config, mechanism);
        assert!(
            codes(&run["client_errors"]).contains(&LOCAL_AUTHENTICATION),
            "{mechanism} with a wrong password: want librdkafka's _AUTHENTICATION (the broker's \
             SASL_AUTHENTICATION_FAILED), got {}\nbroker log:\n{}",
            run["client_errors"],
            tail(&secured.broker.logs(), 20_000)
        );
        secured.assert_still_serving(&format!("a wrong {mechanism} password"));
    }
    // Our CLI says so in one line, without a panic.
    let mut connect = secured.connect(&secured.alice);
    let wrong_file = secured.secrets.path().join("wrong.password");
    std::fs::write(&wrong_file, "not-alices-password").unwrap();
    connect.user = Some((secured.alice.clone(), wrong_file));
    let stderr = sediment_refused(&connect, &["topic", "list"], None);
    assert!(
        stderr.to_lowercase().contains("authentication"),
        "the CLI's error does not say authentication failed: {stderr}"
    );
    secured.assert_still_serving("the CLI's wrong password");
}

#[test]
fn given_unknown_user_when_authenticating_then_authentication_fails_and_broker_keeps_serving() {
    let mut secured = Secured::start(&[]);
    let mallory = User::new("mallory", "SCRAM-SHA-512");
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
        let config = secured.sasl_ssl(&mallory, Some(mechanism));
        let run = refused_produce(&secured.broker, config, mechanism);
        assert!(
            codes(&run["client_errors"]).contains(&LOCAL_AUTHENTICATION),
            "{mechanism} as an unknown user: want _AUTHENTICATION, got {}\nbroker log:\n{}",
            run["client_errors"],
            tail(&secured.broker.logs(), 20_000)
        );
        secured.assert_still_serving(&format!("an unknown {mechanism} user"));
    }
}

#[test]
fn given_plaintext_client_on_the_tls_port_when_connecting_then_refused_and_broker_keeps_serving() {
    let mut secured = Secured::start(&[]);
    // SASL without TLS, and no security at all, both to the TLS port.
    let tls = secured.tls();
    let alice = secured.alice.clone();
    for (protocol, user) in [("SASL_PLAINTEXT", Some(&alice)), ("PLAINTEXT", None)] {
        let config = librdkafka_config(&tls, protocol, None, user, None);
        refused_produce(&secured.broker, config, protocol);
        secured.assert_still_serving(&format!("a {protocol} client on the TLS port"));
    }
    // And a client that speaks TLS but no SASL on a SASL listener: its
    // requests close the connection.
    let config = librdkafka_config(&tls, "SSL", Some(&secured.certs.ca_pem), None, None);
    refused_produce(&secured.broker, config, "SSL without SASL");
    secured.assert_still_serving("an SSL client without SASL");
}

/// A broker serving `which` on its TLS listener (no SASL), and a plaintext
/// listener to show it still serves.
fn broker_with_certificate(certs: &TestCerts, which: &common::certs::CertFiles) -> BrokerProcess {
    let args = certs.serve_args(which);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    BrokerProcess::start(&args)
}

/// Every client refuses the broker's certificate; the broker stays up.
fn assert_clients_refuse_certificate(certs: &TestCerts, broker: &mut BrokerProcess, what: &str) {
    let tls = broker.tls_bootstrap();
    let config = librdkafka_config(&tls, "SSL", Some(&certs.ca_pem), None, None);
    let run = refused_produce(broker, config, what);
    // librdkafka reports a failed verification as _SSL or as _TRANSPORT
    // ("SSL routines::certificate verify failed"), depending on when it sees it.
    let verify_failed = run["client_errors"].as_array().is_some_and(|errors| {
        errors.iter().any(|e| {
            e["code"].as_i64() == Some(LOCAL_SSL)
                || e["str"]
                    .as_str()
                    .is_some_and(|s| s.contains("certificate verify failed"))
        })
    });
    assert!(
        verify_failed,
        "{what}: want librdkafka's certificate verify failure, got {}",
        run["client_errors"]
    );

    let connect = Connect {
        bootstrap: tls.clone(),
        protocol: "ssl",
        ca: Some(certs.ca_pem.clone()),
        user: None,
        mechanism: None,
    };
    let stderr = sediment_refused(&connect, &["topic", "list"], None);
    assert!(
        stderr.to_lowercase().contains("certificate"),
        "{what}: the CLI's error does not name the certificate: {stderr}"
    );

    let kcat_path = require_tool("kcat", KCAT_HINT);
    let config_file = certs.dir().join("kcat-ssl.properties");
    std::fs::write(
        &config_file,
        format!(
            "security.protocol=SSL\nssl.ca.location={}\n",
            path_string(&certs.ca_pem)
        ),
    )
    .unwrap();
    let mut command = Command::new(kcat_path);
    command
        .arg("-F")
        .arg(&config_file)
        .args(["-b", &tls, "-L", "-m", "20"]);
    let run = run_bounded(command, None, CLIENT_TIMEOUT);
    assert!(
        run.status.is_some_and(|s| !s.success()),
        "{what}: kcat -L succeeded ({:?}):\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout)
    );

    assert!(
        broker.is_running(),
        "the broker died; its log:\n{}",
        broker.logs()
    );
    let plain = Connect {
        bootstrap: broker.bootstrap(),
        protocol: "plaintext",
        ca: None,
        user: None,
        mechanism: None,
    };
    sediment_ok(broker, &plain, &["topic", "list"], None);
}

#[test]
fn given_self_signed_broker_certificate_when_clients_connect_trusting_the_ca_then_they_refuse_it() {
    let certs = TestCerts::generate();
    let mut broker = broker_with_certificate(&certs, &certs.self_signed);
    assert_clients_refuse_certificate(&certs, &mut broker, "a self-signed broker certificate");
}

#[test]
fn given_expired_broker_certificate_when_clients_connect_then_they_refuse_it() {
    let certs = TestCerts::generate();
    let mut broker = broker_with_certificate(&certs, &certs.expired);
    assert_clients_refuse_certificate(&certs, &mut broker, "an expired broker certificate");
}

// ---------------------------------------------------------------------------
// Mutual TLS
// ---------------------------------------------------------------------------

#[test]
fn given_mutual_tls_when_an_acl_allows_the_certificate_subject_then_its_produce_works_and_without_it_topic_authorization_failed(
) {
    let certs = TestCerts::generate();
    let admin_cert = certs.client("admin");
    let alice_cert = certs.client("alice");
    let mut args = certs.serve_args(&certs.broker);
    args.extend(
        [
            "--tls-client-ca",
            &path_string(&certs.ca_pem),
            "--authorizer",
            "--super-users",
            "User:CN=admin",
        ]
        .map(str::to_string),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut broker = BrokerProcess::start(&args);
    let tls = broker.tls_bootstrap();
    let ssl = librdkafka_config(&tls, "SSL", Some(&certs.ca_pem), None, None);
    let admin = with_client_cert(ssl.clone(), &admin_cert);
    let alice = with_client_cert(ssl.clone(), &alice_cert);

    let created = python_client(
        &broker,
        json!({"action": "create_topics", "config": admin, "topics": ["mtls-orders"]}),
    );
    assert_eq!(
        created["results"]["mtls-orders"],
        Value::Null,
        "the super user CN=admin could not create a topic: {created}\nbroker log:\n{}",
        tail(&broker.logs(), 20_000)
    );

    // No ACL for User:CN=alice yet.
    let denied = python_client(
        &broker,
        json!({"action": "produce", "config": alice, "topic": "mtls-orders", "messages": 3,
               "prefix": "denied", "timeout_s": GIVE_UP_S}),
    );
    assert_eq!(denied["delivered"], json!([]), "{denied}");
    assert!(
        codes(&denied["failed"])
            .iter()
            .chain(codes(&denied["client_errors"]).iter())
            .any(|&c| c == TOPIC_AUTHORIZATION_FAILED),
        "without an ACL alice's produce must fail with TOPIC_AUTHORIZATION_FAILED: {denied}\nbroker log:\n{}",
        tail(&broker.logs(), 20_000)
    );

    let acl = python_client(
        &broker,
        json!({"action": "create_acls", "config": admin, "acls": [{
            "resource_type": "TOPIC", "name": "mtls-orders", "pattern": "LITERAL",
            "principal": "User:CN=alice", "host": "*", "operation": "WRITE", "permission": "ALLOW"}]}),
    );
    assert_eq!(acl["results"], json!([null]), "{acl}");
    let described = python_client(&broker, json!({"action": "describe_acls", "config": admin}));
    assert!(
        described["acls"]
            .as_array()
            .is_some_and(|a| a.iter().any(|b| b["principal"] == "User:CN=alice")),
        "DescribeAcls does not show User:CN=alice: {described}"
    );

    let allowed = python_client(
        &broker,
        json!({"action": "produce", "config": alice, "topic": "mtls-orders", "messages": 3,
               "prefix": "allowed"}),
    );
    assert_eq!(
        allowed["delivered"].as_array().map(Vec::len),
        Some(3),
        "with WRITE for User:CN=alice her produce must work: {allowed}\nbroker log:\n{}",
        tail(&broker.logs(), 20_000)
    );
    let read = python_client(
        &broker,
        json!({"action": "consume", "config": admin, "topic": "mtls-orders", "messages": 3}),
    );
    assert_exactly(&messages("allowed", 3), &strings(&read["values"]), &|| {
        read.to_string()
    });

    // No certificate, and a certificate from a CA the broker does not trust:
    // refused at the handshake.
    refused_produce(&broker, ssl, "no client certificate");
    let mallory = with_client_cert(
        librdkafka_config(&tls, "SSL", Some(&certs.ca_pem), None, None),
        &certs.untrusted_client,
    );
    refused_produce(
        &broker,
        mallory,
        "a client certificate from an untrusted CA",
    );
    assert!(
        broker.is_running(),
        "the broker died; its log:\n{}",
        broker.logs()
    );
    let again = python_client(
        &broker,
        json!({"action": "produce", "config": alice, "topic": "mtls-orders", "messages": 1,
               "prefix": "again"}),
    );
    assert_eq!(
        again["delivered"].as_array().map(Vec::len),
        Some(1),
        "{again}"
    );
}

/// `args` followed by `--client-cert`/`--client-key` for `cert` (the flags are
/// global, so they may follow the subcommand).
fn presenting(cert: &common::certs::CertFiles, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend([
        "--client-cert".to_string(),
        path_string(&cert.cert),
        "--client-key".to_string(),
        path_string(&cert.key),
    ]);
    all
}

#[test]
fn given_mutual_tls_when_sediment_cli_presents_carols_certificate_then_an_acl_for_her_subject_lets_her_produce_and_consume_and_without_it_topic_authorization_failed(
) {
    let certs = TestCerts::generate();
    let admin_cert = certs.client("admin");
    let carol_cert = certs.client("carol");
    let mut args = certs.serve_args(&certs.broker);
    args.extend(
        [
            "--tls-client-ca",
            &path_string(&certs.ca_pem),
            "--authorizer",
            "--super-users",
            "User:CN=admin",
        ]
        .map(str::to_string),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let broker = BrokerProcess::start(&args);
    let ssl = Connect {
        bootstrap: broker.tls_bootstrap(),
        protocol: "ssl",
        ca: Some(certs.ca_pem.clone()),
        user: None,
        mechanism: None,
    };
    let run_ok = |cert, args: &[&str], stdin: Option<&str>| {
        let args = presenting(cert, args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sediment_ok(&broker, &ssl, &args, stdin)
    };
    let run_refused = |cert, args: &[&str], stdin: Option<&str>| {
        let args = presenting(cert, args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sediment_refused(&ssl, &args, stdin)
    };
    run_ok(
        &admin_cert,
        &["topic", "create", "mtls-cli", "--partitions", "1"],
        None,
    );

    // No ACL for User:CN=carol yet.
    let stderr = run_refused(&carol_cert, &["produce", "mtls-cli"], Some("denied\n"));
    assert!(
        stderr.contains("TopicAuthorizationFailed")
            || stderr.contains("TOPIC_AUTHORIZATION_FAILED"),
        "without an ACL carol's produce must be refused with TOPIC_AUTHORIZATION_FAILED: \
         {stderr}\nbroker log:\n{}",
        tail(&broker.logs(), 20_000)
    );

    // WRITE and READ on the topic, nothing else: `sediment consume`
    // describes the topic first and leaves out the sizes and configs it
    // may not describe.
    let acls: [&[&str]; 2] = [
        &["--operation", "write", "--topic", "mtls-cli"],
        &["--operation", "read", "--topic", "mtls-cli"],
    ];
    for acl in acls {
        let mut args = vec!["acl", "add", "--principal", "User:CN=carol"];
        args.extend_from_slice(acl);
        run_ok(&admin_cert, &args, None);
    }
    let want = messages("mtls-cli", 200);
    run_ok(
        &carol_cert,
        &["produce", "mtls-cli"],
        Some(&(want.join("\n") + "\n")),
    );
    let got: Vec<String> = run_ok(
        &carol_cert,
        &[
            "consume",
            "mtls-cli",
            "--from-beginning",
            "--max-messages",
            "200",
            "--timeout-ms",
            "60000",
            "--format",
            "value",
        ],
        None,
    )
    .lines()
    .map(str::to_string)
    .collect();
    assert_exactly(&want, &got, &|| tail(&broker.logs(), 20_000).to_string());

    // Without a certificate the broker refuses the handshake.
    let stderr = sediment_refused(&ssl, &["topic", "list"], None);
    assert!(
        stderr.contains("TLS") && stderr.contains("--client-cert"),
        "the CLI's error without a client certificate does not say TLS refused it: {stderr}"
    );
}

// ---------------------------------------------------------------------------
// Secrets at rest, and durability of users
// ---------------------------------------------------------------------------

#[test]
fn given_users_created_offline_and_online_and_used_when_data_dir_and_log_are_searched_then_no_password_bytes_anywhere(
) {
    let mut secured = Secured::start(&[]);
    let carol = User::new("carol", "SCRAM-SHA-256");
    let alice_connect = secured.connect(&secured.alice);
    sediment_ok(
        &secured.broker,
        &alice_connect,
        &[
            "user",
            "create",
            &carol.name,
            "--mechanism",
            &carol.mechanism,
            "--password-stdin",
        ],
        Some(&format!("{}\n", carol.password)),
    );
    // Every user logs in with its mechanism, alice with PLAIN too, and a
    // wrong PLAIN password is tried (it must not be logged either).
    for (user, mechanism) in [
        (&secured.alice, None),
        (&secured.bob, None),
        (&carol, None),
        (&secured.alice, Some("PLAIN")),
    ] {
        let run = python_client(
            &secured.broker,
            json!({"action": "produce", "config": secured.sasl_ssl(user, mechanism),
                   "topic": "secrets", "messages": 1, "prefix": user.name}),
        );
        assert_eq!(
            run["delivered"].as_array().map(Vec::len),
            Some(1),
            "{} ({mechanism:?}) could not produce: {run}\nbroker log:\n{}",
            user.name,
            tail(&secured.broker.logs(), 20_000)
        );
    }
    let wrong_plain = "wrong-plain-password-5c1e7";
    refused_produce(
        &secured.broker,
        secured.sasl_ssl(&with_password(&secured.alice, wrong_plain), Some("PLAIN")),
        "a wrong PLAIN password",
    );

    let data_dir = secured.broker.data_dir.clone();
    let users_json = data_dir.join("meta/users.json");
    let passwords = [
        secured.alice.password.clone(),
        secured.bob.password.clone(),
        carol.password.clone(),
        wrong_plain.to_string(),
    ];
    let check = |when: &str, logs: &str| {
        assert!(
            users_json.is_file(),
            "{when}: {} does not exist",
            users_json.display()
        );
        for password in &passwords {
            let leaked = files_containing(&data_dir, password.as_bytes());
            assert!(
                leaked.is_empty(),
                "{when}: the password {password:?} is stored in {leaked:?}"
            );
            assert!(
                !logs.contains(password.as_str()),
                "{when}: the password {password:?} is in the broker's log"
            );
        }
    };
    check("while running", &secured.broker.logs());
    let logs_before_stop = secured.broker.logs();
    assert_eq!(
        secured.broker.terminate(),
        Some(0),
        "clean shutdown; its log:\n{logs_before_stop}"
    );
    check("after shutdown", &logs_before_stop);
}

#[test]
fn given_users_created_offline_and_online_when_broker_killed_9_and_restarted_then_they_still_authenticate(
) {
    let mut secured = Secured::start(&[]);
    let dave = User::new("dave", "SCRAM-SHA-512");
    sediment_ok(
        &secured.broker,
        &secured.connect(&secured.alice),
        &[
            "user",
            "create",
            &dave.name,
            "--mechanism",
            &dave.mechanism,
            "--password-stdin",
        ],
        Some(&format!("{}\n", dave.password)),
    );
    // Acknowledged means durable: kill right after the command returned.
    secured.broker.kill9();
    secured.broker.restart();
    for user in [&secured.alice, &secured.bob, &dave] {
        let connect = secured.connect(user);
        sediment_ok(&secured.broker, &connect, &["topic", "list"], None);
        let run = python_client(
            &secured.broker,
            json!({"action": "produce", "config": secured.sasl_ssl(user, None),
                   "topic": "after-kill", "messages": 1, "prefix": user.name}),
        );
        assert_eq!(
            run["delivered"].as_array().map(Vec::len),
            Some(1),
            "{} cannot produce after kill -9: {run}\nbroker log:\n{}",
            user.name,
            tail(&secured.broker.logs(), 20_000)
        );
    }
    // A wrong password is still refused after the restart.
    let wrong_file = secured.secrets.path().join("dave-wrong.password");
    std::fs::write(&wrong_file, "wrong").unwrap();
    let wrong = Connect {
        user: Some((dave.clone(), wrong_file)),
        ..secured.connect(&dave)
    };
    let stderr = sediment_refused(&wrong, &["topic", "list"], None);
    assert!(
        stderr.to_lowercase().contains("authentication"),
        "after kill -9, a wrong password's error: {stderr}"
    );
}

#[test]
fn given_tls_files_replaced_when_broker_gets_sighup_then_new_connections_get_the_new_certificate_and_a_bad_file_keeps_the_old(
) {
    let certs = TestCerts::generate();
    // The broker starts with a self-signed certificate, which a client
    // trusting only the CA refuses.
    let live = tempfile::tempdir().unwrap();
    let cert = live.path().join("cert.pem");
    let key = live.path().join("key.pem");
    std::fs::copy(&certs.self_signed.cert, &cert).unwrap();
    std::fs::copy(&certs.self_signed.key, &key).unwrap();
    let (cert_arg, key_arg) = (path_string(&cert), path_string(&key));
    let broker = BrokerProcess::start(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        &cert_arg,
        "--tls-key",
        &key_arg,
    ]);
    let connect = Connect {
        bootstrap: broker.tls_bootstrap(),
        protocol: "ssl",
        ca: Some(certs.ca_pem.clone()),
        user: None,
        mechanism: None,
    };
    sediment_refused(&connect, &["topic", "list"], None);
    let hangup = |broker: &BrokerProcess| {
        let status = Command::new("kill")
            .args(["-HUP", &broker.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };

    // The CA-signed pair replaces it; SIGHUP reloads it.
    std::fs::copy(&certs.broker.cert, &cert).unwrap();
    std::fs::copy(&certs.broker.key, &key).unwrap();
    hangup(&broker);
    common::wait_until(
        std::time::Duration::from_secs(GIVE_UP_S),
        || {
            broker
                .logs()
                .contains("TLS certificate, key and client CAs reloaded")
        },
        || format!("no reload logged:\n{}", tail(&broker.logs(), 4000)),
    );
    sediment_ok(&broker, &connect, &["topic", "list"], None);

    // A broken file is refused at reload: the log says why and the pair in
    // use stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    hangup(&broker);
    common::wait_until(
        std::time::Duration::from_secs(GIVE_UP_S),
        || broker.logs().contains("TLS files not reloaded"),
        || format!("no refused reload logged:\n{}", tail(&broker.logs(), 4000)),
    );
    sediment_ok(&broker, &connect, &["topic", "list"], None);
}
