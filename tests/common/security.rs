//! Helpers for the security tests (`security_tls_sasl`, `security_acl`,
//! `compat_java_security`, `bad_input`): users created with
//! `sediment user create`, the `sediment` client with its security flags,
//! `tests/python/secure_client.py` (confluent-kafka) fed its request on
//! stdin (it holds passwords, which never go into arguments), and the
//! self-verifying message values every round trip checks.
#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use super::python::script_path;
use super::{python_with_confluent_kafka, run_bounded, tail, BrokerProcess, Finished};

/// Longest one client run (our CLI, a Python client, kcat) may take before
/// it is killed and the test fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// How long a client asked to give up on a refused connection may keep
/// trying (librdkafka's `message.timeout.ms`, the script's deadline).
pub const GIVE_UP_S: u64 = 60;

/// Kafka error codes the security contract names.
pub const TOPIC_AUTHORIZATION_FAILED: i64 = 29;
/// Kafka's GROUP_AUTHORIZATION_FAILED.
pub const GROUP_AUTHORIZATION_FAILED: i64 = 30;
/// Kafka's CLUSTER_AUTHORIZATION_FAILED.
pub const CLUSTER_AUTHORIZATION_FAILED: i64 = 31;
/// Kafka's TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i64 = 53;
/// librdkafka's local `_AUTHENTICATION` (a SASL failure the broker reported).
pub const LOCAL_AUTHENTICATION: i64 = -169;
/// librdkafka's local `_SSL` (the TLS handshake failed).
pub const LOCAL_SSL: i64 = -181;

/// A SASL user the tests log in as.
#[derive(Debug, Clone)]
pub struct User {
    /// The user name.
    pub name: String,
    /// Its password (distinctive bytes, so a leak is found by a search).
    pub password: String,
    /// The mechanism its credential is for (`SCRAM-SHA-512`, `SCRAM-SHA-256`).
    pub mechanism: String,
}

impl User {
    /// A user with a random, recognisable password.
    pub fn new(name: &str, mechanism: &str) -> Self {
        let password = format!(
            "pw-{name}-{}",
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..20)
                .unwrap_or("x")
        );
        Self {
            name: name.to_string(),
            password,
            mechanism: mechanism.to_string(),
        }
    }

    /// The principal the broker's ACLs see.
    pub fn principal(&self) -> String {
        format!("User:{}", self.name)
    }

    /// Writes the password into `dir/<name>.password` (no newline) and
    /// returns its path, for `--sasl-password-file`.
    pub fn password_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{}.password", self.name));
        std::fs::write(&path, &self.password).expect("write the password file");
        path
    }
}

/// `sediment user create NAME --mechanism M --password-stdin --data-dir DIR`
/// with the broker stopped; panics with its output unless it succeeds.
pub fn create_user_offline(data_dir: &Path, user: &User) {
    std::fs::create_dir_all(data_dir).expect("create the data directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_sediment"));
    command
        .args(["user", "create", &user.name, "--mechanism", &user.mechanism])
        .arg("--password-stdin")
        .arg("--data-dir")
        .arg(data_dir);
    let run = run_bounded(
        command,
        Some(format!("{}\n", user.password).into_bytes()),
        CLIENT_TIMEOUT,
    );
    assert!(
        run.status.is_some_and(|s| s.success()),
        "offline `sediment user create {}` failed ({:?})\nstdout: {}\nstderr: {}",
        user.name,
        run.status,
        String::from_utf8_lossy(&run.stdout),
        run.stderr
    );
}

/// How the `sediment` client connects: its security flags.
#[derive(Debug, Clone)]
pub struct Connect {
    /// `--bootstrap`.
    pub bootstrap: String,
    /// `--security-protocol`.
    pub protocol: &'static str,
    /// `--ca`.
    pub ca: Option<PathBuf>,
    /// The user (with `--sasl-mechanism` overridden by `mechanism` if set),
    /// and the file holding its password.
    pub user: Option<(User, PathBuf)>,
    /// `--sasl-mechanism` instead of the user's own.
    pub mechanism: Option<String>,
}

impl Connect {
    /// The flags, before the subcommand.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--bootstrap".to_string(),
            self.bootstrap.clone(),
            "--security-protocol".to_string(),
            self.protocol.to_string(),
        ];
        if let Some(ca) = &self.ca {
            args.push("--ca".into());
            args.push(super::certs::path_string(ca));
        }
        if let Some((user, file)) = &self.user {
            args.push("--sasl-mechanism".into());
            args.push(self.mechanism.clone().unwrap_or(user.mechanism.clone()));
            args.push("--sasl-username".into());
            args.push(user.name.clone());
            args.push("--sasl-password-file".into());
            args.push(super::certs::path_string(file));
        }
        args
    }
}

/// Runs `sediment <connect flags> args…` with `stdin`, bounded by
/// [`CLIENT_TIMEOUT`]; panics if it had to be killed.
pub fn sediment(connect: &Connect, args: &[&str], stdin: Option<&str>) -> Finished {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sediment"));
    command.args(connect.args()).args(args);
    let run = run_bounded(
        command,
        stdin.map(|s| s.as_bytes().to_vec()),
        CLIENT_TIMEOUT,
    );
    assert!(
        run.status.is_some(),
        "`sediment {args:?}` did not finish within {CLIENT_TIMEOUT:?} and was killed\nstderr: {}",
        tail(&run.stderr, 4000)
    );
    run
}

/// The stdout of a `sediment` run that succeeded; panics with its output
/// and the broker's log otherwise.
pub fn sediment_ok(
    broker: &BrokerProcess,
    connect: &Connect,
    args: &[&str],
    stdin: Option<&str>,
) -> String {
    let run = sediment(connect, args, stdin);
    assert!(
        run.status.is_some_and(|s| s.success()),
        "`sediment {args:?}` failed ({:?})\nstdout: {}\nstderr: {}\nbroker log:\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        run.stderr,
        tail(&broker.logs(), 20_000)
    );
    String::from_utf8_lossy(&run.stdout).into_owned()
}

/// The stderr of a `sediment` run that failed as a user error should: a
/// non-zero exit, no panic; panics with its output otherwise.
pub fn sediment_refused(connect: &Connect, args: &[&str], stdin: Option<&str>) -> String {
    let run = sediment(connect, args, stdin);
    assert!(
        run.status.is_some_and(|s| !s.success()),
        "`sediment {args:?}` succeeded but should have been refused\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&run.stdout),
        run.stderr
    );
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "`sediment {args:?}` panicked instead of a clear error:\n{}",
        run.stderr
    );
    run.stderr
}

/// librdkafka settings for `bootstrap` with `protocol` (`SASL_SSL`, ...),
/// trusting `ca`, logging in as `user` with `mechanism` (its own by default).
pub fn librdkafka_config(
    bootstrap: &str,
    protocol: &str,
    ca: Option<&Path>,
    user: Option<&User>,
    mechanism: Option<&str>,
) -> Value {
    let mut config = json!({
        "bootstrap.servers": bootstrap,
        "security.protocol": protocol,
        // Broker addresses are 127.0.0.1: fail fast rather than cycle.
        "reconnect.backoff.max.ms": 1000,
    });
    if let Some(ca) = ca {
        config["ssl.ca.location"] = json!(super::certs::path_string(ca));
    }
    if let Some(user) = user {
        config["sasl.mechanisms"] = json!(mechanism.unwrap_or(&user.mechanism));
        config["sasl.username"] = json!(user.name);
        config["sasl.password"] = json!(user.password);
    }
    config
}

/// Adds a client certificate and key (mutual TLS) to a librdkafka config.
pub fn with_client_cert(mut config: Value, cert: &super::certs::CertFiles) -> Value {
    config["ssl.certificate.location"] = json!(super::certs::path_string(&cert.cert));
    config["ssl.key.location"] = json!(super::certs::path_string(&cert.key));
    config
}

/// Runs `tests/python/secure_client.py` with `request` (which holds
/// `action` and `config`) on stdin and returns the JSON it prints; panics
/// with its stderr and the broker's log if it fails or is killed.
pub fn python_client(broker: &BrokerProcess, request: Value) -> Value {
    let python = python_with_confluent_kafka();
    let mut command = Command::new(python);
    command.arg(script_path("secure_client.py"));
    let input = serde_json::to_vec(&request).expect("request JSON");
    let Finished {
        status,
        stdout,
        stderr,
    } = run_bounded(command, Some(input), CLIENT_TIMEOUT);
    let action = request["action"].clone();
    let context = || {
        format!(
            "secure_client.py {action}\nscript stderr:\n{}\nbroker log:\n{}",
            tail(&stderr, 4000),
            tail(&broker.logs(), 20_000)
        )
    };
    super::json_outcome(status, &stdout, CLIENT_TIMEOUT, context)
}

/// FNV-1a 64, the checksum inside every test message.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `seq`th self-verifying value with `prefix` (the same as
/// `secure_client.py` produces): `PREFIX-000123-<fnv1a hex>`.
pub fn message(prefix: &str, seq: usize) -> String {
    let body = format!("{prefix}-{seq:06}");
    format!("{body}-{:016x}", fnv1a(body.as_bytes()))
}

/// `count` values with `prefix`, in order.
pub fn messages(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|seq| message(prefix, seq)).collect()
}

/// Asserts `got` is exactly `want`, saying what was lost, added,
/// duplicated or reordered otherwise.
pub fn assert_exactly(want: &[String], got: &[String], context: &dyn Fn() -> String) {
    if want == got {
        return;
    }
    use std::collections::{BTreeMap, BTreeSet};
    let wanted: BTreeSet<&String> = want.iter().collect();
    let mut seen: BTreeMap<&String, usize> = BTreeMap::new();
    for value in got {
        *seen.entry(value).or_default() += 1;
    }
    let lost = wanted.iter().filter(|v| !seen.contains_key(*v)).count();
    let extra = seen.keys().filter(|v| !wanted.contains(*v)).count();
    let duplicated = seen.values().filter(|&&n| n > 1).count();
    let first = want
        .iter()
        .zip(got)
        .position(|(w, g)| w != g)
        .unwrap_or(want.len().min(got.len()));
    panic!(
        "consumed {} messages for {} produced: {lost} lost, {extra} never produced, {duplicated} duplicated; \
         first difference at #{first}: want {:?}, got {:?}\n{}",
        got.len(),
        want.len(),
        want.get(first),
        got.get(first),
        context()
    );
}

/// The string values of a JSON array field (`values` of a consume result).
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

/// The error codes in a JSON array of `{"code", ...}` objects.
pub fn codes(errors: &Value) -> Vec<i64> {
    errors
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["code"].as_i64()).collect())
        .unwrap_or_default()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The files under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| {
            std::fs::read(path)
                .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
        .collect()
}
