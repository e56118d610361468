//! Apache Kafka's own security tools (4.x, run as their main classes with a
//! client properties file over SASL_PLAINTEXT with SCRAM) work against the
//! real broker started with `--sasl SCRAM-SHA-256,SCRAM-SHA-512
//! --authorizer --super-users User:admin`:
//! - `kafka-configs` (`kafka.admin.ConfigCommand`, core jar) creates a SCRAM
//!   user through AlterUserScramCredentials and the new user then
//!   authenticates (with Kafka's `kafka-topics` and with our CLI); its
//!   `--describe` shows the credential's mechanism and iterations;
//! - `kafka-acls` (`org.apache.kafka.tools.AclCommand`) adds, lists and
//!   removes an ACL; `sediment acl list` shows what it added and the ACL is
//!   enforced; an ACL added with `sediment acl add` is listed by kafka-acls.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};

use common::java::{tool, tool_ok};
use common::security::{
    create_user_offline, messages, sediment_ok, sediment_refused, Connect, User,
};
use common::{tail, BrokerProcess};

const CONFIGS: &str = "kafka.admin.ConfigCommand";
const ACLS: &str = "org.apache.kafka.tools.AclCommand";
const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";

/// A broker enforcing ACLs with the super user admin created offline.
struct Secured {
    broker: BrokerProcess,
    admin: User,
    secrets: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Secured {
    fn start() -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let data_dir = data.path().join("data");
        let admin = User::new("admin", "SCRAM-SHA-512");
        create_user_offline(&data_dir, &admin);
        let broker = BrokerProcess::start_in(
            &data_dir,
            &[
                "--sasl",
                "SCRAM-SHA-256,SCRAM-SHA-512",
                "--authorizer",
                "--super-users",
                "User:admin",
            ],
        );
        Self {
            broker,
            admin,
            secrets: tempfile::tempdir().expect("temp dir"),
            _data: data,
        }
    }

    /// A Java client properties file logging in as `user` with its mechanism.
    fn properties(&self, user: &User) -> PathBuf {
        let path = self
            .secrets
            .path()
            .join(format!("{}.properties", user.name));
        std::fs::write(
            &path,
            format!(
                "security.protocol=SASL_PLAINTEXT\n\
                 sasl.mechanism={}\n\
                 sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
                 username=\"{}\" password=\"{}\";\n",
                user.mechanism, user.name, user.password
            ),
        )
        .expect("write the client properties");
        path
    }

    fn connect(&self, user: &User) -> Connect {
        Connect {
            bootstrap: self.broker.bootstrap(),
            protocol: "sasl_plaintext",
            ca: None,
            user: Some((user.clone(), user.password_file(self.secrets.path()))),
            mechanism: None,
        }
    }

    /// Runs a Kafka tool as `user` (`--command-config`), expecting success.
    fn tool_ok(&self, main: &str, user: &User, args: &[&str]) -> String {
        let config = self.properties(user);
        let mut all = vec!["--command-config", path(&config)];
        all.extend_from_slice(args);
        tool_ok(&self.broker, main, &all, None)
    }
}

/// A CLI error says the request was not authorized.
fn says_not_authorized(stderr: &str) -> bool {
    let lower = stderr.to_lowercase();
    ["authoriz", "not allowed", "denied"]
        .iter()
        .any(|w| lower.contains(w))
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

#[test]
fn given_kafka_configs_when_it_creates_a_scram_user_then_the_user_authenticates() {
    let secured = Secured::start();
    let alice = User::new("alice", "SCRAM-SHA-256");
    secured.tool_ok(
        CONFIGS,
        &secured.admin,
        &[
            "--alter",
            "--add-config",
            &format!(
                "SCRAM-SHA-256=[iterations=8192,password={}]",
                alice.password
            ),
            "--entity-type",
            "users",
            "--entity-name",
            "alice",
        ],
    );
    // alice logs in, with Kafka's own tool and with ours.
    secured.tool_ok(TOPICS, &alice, &["--list"]);
    sediment_ok(
        &secured.broker,
        &secured.connect(&alice),
        &["topic", "list"],
        None,
    );
    // A wrong password is still refused.
    let wrong = User {
        password: "not-the-password".into(),
        ..alice.clone()
    };
    let config = secured.properties(&wrong);
    let run = tool(
        &secured.broker,
        TOPICS,
        &["--command-config", path(&config), "--list"],
        None,
    );
    assert_ne!(
        run.code, 0,
        "kafka-topics with a wrong password succeeded:\n{}",
        run.stdout
    );
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("SaslAuthenticationException") || said.contains("Authentication failed"),
        "kafka-topics with a wrong password does not report an authentication failure:\n{}",
        tail(&said, 6000)
    );
    // The user shows up in `sediment user list`.
    let listed = sediment_ok(
        &secured.broker,
        &secured.connect(&secured.admin),
        &["user", "list"],
        None,
    );
    assert!(listed.contains("alice"), "{listed}");
}

#[test]
fn given_scram_user_when_kafka_configs_describes_users_then_it_shows_the_mechanism_and_iterations_but_no_password(
) {
    // `kafka-configs --describe --entity-type users` asks for the users'
    // SCRAM credentials (DescribeUserScramCredentials) and their client
    // quotas (DescribeClientQuotas) in one go.
    let secured = Secured::start();
    let alice = User::new("alice", "SCRAM-SHA-256");
    secured.tool_ok(
        CONFIGS,
        &secured.admin,
        &[
            "--alter",
            "--add-config",
            &format!(
                "SCRAM-SHA-256=[iterations=8192,password={}]",
                alice.password
            ),
            "--entity-type",
            "users",
            "--entity-name",
            "alice",
        ],
    );
    let described = secured.tool_ok(
        CONFIGS,
        &secured.admin,
        &[
            "--describe",
            "--entity-type",
            "users",
            "--entity-name",
            "alice",
        ],
    );
    assert!(
        described.contains("SCRAM-SHA-256=iterations=8192"),
        "kafka-configs --describe does not show alice's credential:\n{described}"
    );
    assert!(
        !described.contains(&alice.password),
        "kafka-configs --describe shows the password:\n{described}"
    );
}

#[test]
fn given_kafka_acls_when_it_adds_lists_and_removes_an_acl_then_sediment_acl_list_agrees_and_it_is_enforced(
) {
    let secured = Secured::start();
    let admin_connect = secured.connect(&secured.admin);
    let alice = User::new("alice", "SCRAM-SHA-512");
    sediment_ok(
        &secured.broker,
        &admin_connect,
        &[
            "user",
            "create",
            "alice",
            "--mechanism",
            "SCRAM-SHA-512",
            "--password-stdin",
        ],
        Some(&format!("{}\n", alice.password)),
    );
    sediment_ok(
        &secured.broker,
        &admin_connect,
        &["topic", "create", "java-orders", "--partitions", "1"],
        None,
    );
    let alice_connect = secured.connect(&alice);
    let lines = messages("java-orders", 10).join("\n") + "\n";
    let stderr = sediment_refused(&alice_connect, &["produce", "java-orders"], Some(&lines));
    assert!(
        says_not_authorized(&stderr),
        "alice's produce before any ACL: {stderr}"
    );

    secured.tool_ok(
        ACLS,
        &secured.admin,
        &[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Write",
            "--topic",
            "java-orders",
        ],
    );
    let listed = secured.tool_ok(ACLS, &secured.admin, &["--list", "--topic", "java-orders"]);
    assert!(
        listed.contains("principal=User:alice")
            && listed.contains("operation=WRITE")
            && listed.contains("permissionType=ALLOW"),
        "kafka-acls --list does not show the ACL it added:\n{listed}"
    );
    let ours = sediment_ok(&secured.broker, &admin_connect, &["acl", "list"], None);
    assert!(
        ours.lines().any(|l| {
            let l = l.to_lowercase();
            l.contains("user:alice") && l.contains("java-orders") && l.contains("write")
        }),
        "`sediment acl list` does not show the ACL kafka-acls added:\n{ours}"
    );
    sediment_ok(
        &secured.broker,
        &alice_connect,
        &["produce", "java-orders"],
        Some(&lines),
    );

    // One added with our CLI, listed by kafka-acls.
    sediment_ok(
        &secured.broker,
        &admin_connect,
        &[
            "acl",
            "add",
            "--principal",
            "User:bob",
            "--operation",
            "read",
            "--group",
            "java-group",
        ],
        None,
    );
    let listed = secured.tool_ok(ACLS, &secured.admin, &["--list", "--group", "java-group"]);
    assert!(
        listed.contains("principal=User:bob") && listed.contains("operation=READ"),
        "kafka-acls --list does not show the ACL `sediment acl add` added:\n{listed}"
    );

    secured.tool_ok(
        ACLS,
        &secured.admin,
        &[
            "--remove",
            "--force",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Write",
            "--topic",
            "java-orders",
        ],
    );
    let ours = sediment_ok(&secured.broker, &admin_connect, &["acl", "list"], None);
    assert!(
        !ours.lines().any(|l| {
            let l = l.to_lowercase();
            l.contains("user:alice") && l.contains("java-orders")
        }),
        "`sediment acl list` still shows the ACL kafka-acls removed:\n{ours}"
    );
    let stderr = sediment_refused(&alice_connect, &["produce", "java-orders"], Some(&lines));
    assert!(
        says_not_authorized(&stderr),
        "alice's produce after the ACL was removed: {stderr}"
    );
}
