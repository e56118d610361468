//! ACLs against the real broker binary (DESIGN §7), started with
//! `--sasl SCRAM-SHA-256 --authorizer --super-users User:admin` on its
//! plaintext listener (SASL_PLAINTEXT):
//! - users: admin and alice created offline before the start, bob online by
//!   admin; a user who is not a super user cannot create users
//!   (CLUSTER_AUTHORIZATION_FAILED);
//! - ACLs added with `sediment acl add` decide produce, consume
//!   (TOPIC_AUTHORIZATION_FAILED), group consume (GROUP_AUTHORIZATION_FAILED),
//!   topic creation (CREATE on the topic or the cluster), transactions
//!   (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and which topics Metadata shows;
//! - a DENY wins over an ALLOW; prefixed patterns cover the names under
//!   their prefix only; `sediment acl list` shows the bindings and
//!   `sediment acl remove` takes them away; ACLs survive `kill -9`;
//! - invalid bindings (a prefixed `*`, a cluster not named `kafka-cluster`,
//!   a principal without a type) are refused with a clear error, and the
//!   broker stays up.
//!
//! Error codes are checked exactly with confluent-kafka (librdkafka's
//! KafkaError codes are Kafka's), everything else through our CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use serde_json::{json, Value};

use common::security::{
    assert_exactly, codes, create_user_offline, librdkafka_config, messages, python_client,
    sediment_ok, sediment_refused, strings, Connect, User, CLUSTER_AUTHORIZATION_FAILED, GIVE_UP_S,
    GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
};
use common::{tail, BrokerProcess};

const MECHANISM: &str = "SCRAM-SHA-256";

/// A broker enforcing ACLs, its super user admin, alice (both created
/// offline) and bob (created online by admin).
struct Secured {
    broker: BrokerProcess,
    admin: User,
    alice: User,
    bob: User,
    secrets: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Secured {
    fn start() -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let data_dir = data.path().join("data");
        let admin = User::new("admin", MECHANISM);
        let alice = User::new("alice", MECHANISM);
        create_user_offline(&data_dir, &admin);
        create_user_offline(&data_dir, &alice);
        let broker = BrokerProcess::start_in(
            &data_dir,
            &[
                "--sasl",
                MECHANISM,
                "--authorizer",
                "--super-users",
                "User:admin",
            ],
        );
        let secured = Self {
            broker,
            admin,
            alice,
            bob: User::new("bob", MECHANISM),
            secrets: tempfile::tempdir().expect("temp dir"),
            _data: data,
        };
        secured.cli_ok(
            &secured.admin,
            &[
                "user",
                "create",
                "bob",
                "--mechanism",
                MECHANISM,
                "--password-stdin",
            ],
            Some(&format!("{}\n", secured.bob.password)),
        );
        secured
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

    fn cli_ok(&self, user: &User, args: &[&str], stdin: Option<&str>) -> String {
        sediment_ok(&self.broker, &self.connect(user), args, stdin)
    }

    /// A `sediment` run as `user` that must fail; a `produce` gets one
    /// line on stdin (with none there is nothing to refuse).
    fn cli_refused(&self, user: &User, args: &[&str]) -> String {
        let stdin = (args.first() == Some(&"produce")).then_some("refused\n");
        sediment_refused(&self.connect(user), args, stdin)
    }

    /// `sediment acl add` as admin with `args` (after `add`).
    fn acl_add(&self, args: &[&str]) {
        let mut all = vec!["acl", "add"];
        all.extend_from_slice(args);
        self.cli_ok(&self.admin, &all, None);
    }

    /// `sediment topic create` as admin.
    fn create_topic(&self, topic: &str) {
        self.cli_ok(
            &self.admin,
            &["topic", "create", topic, "--partitions", "1"],
            None,
        );
    }

    fn config(&self, user: &User) -> Value {
        librdkafka_config(
            &self.broker.bootstrap(),
            "SASL_PLAINTEXT",
            None,
            Some(user),
            None,
        )
    }

    fn python(&self, user: &User, mut request: Value) -> Value {
        request["config"] = self.config(user);
        if request.get("timeout_s").is_none() {
            request["timeout_s"] = json!(GIVE_UP_S);
        }
        python_client(&self.broker, request)
    }

    fn produce(&self, user: &User, topic: &str, count: usize) -> Value {
        self.python(
            user,
            json!({"action": "produce", "topic": topic, "messages": count, "prefix": topic}),
        )
    }

    fn consume(&self, user: &User, topic: &str, count: usize) -> Value {
        self.python(
            user,
            json!({"action": "consume", "topic": topic, "messages": count}),
        )
    }

    /// `user` produces `count` messages to `topic`, every one acknowledged.
    fn assert_produces(&self, user: &User, topic: &str, count: usize) {
        let run = self.produce(user, topic, count);
        assert_eq!(
            run["delivered"].as_array().map(Vec::len),
            Some(count),
            "{} producing to {topic}: not every message was acknowledged: {run}\nbroker log:\n{}",
            user.name,
            tail(&self.broker.logs(), 20_000)
        );
    }

    /// `user` reads back exactly what [`Secured::assert_produces`] wrote.
    fn assert_consumes(&self, user: &User, topic: &str, count: usize) {
        let run = self.consume(user, topic, count);
        assert_exactly(&messages(topic, count), &strings(&run["values"]), &|| {
            format!(
                "{} consuming {topic}: {run}\nbroker log:\n{}",
                user.name,
                tail(&self.broker.logs(), 20_000)
            )
        });
    }

    /// `run` (a python result) failed with Kafka error `code` and nothing
    /// was delivered or consumed.
    fn assert_failed_with(&self, run: &Value, code: i64, what: &str) {
        let seen: Vec<i64> = ["failed", "client_errors", "errors"]
            .iter()
            .flat_map(|field| codes(&run[*field]))
            .chain(run["error"]["code"].as_i64())
            .collect();
        assert!(
            seen.contains(&code),
            "{what}: want error code {code}, saw {seen:?}: {run}\nbroker log:\n{}",
            tail(&self.broker.logs(), 20_000)
        );
        for field in ["delivered", "values"] {
            assert!(
                run[field].as_array().is_none_or(Vec::is_empty),
                "{what}: {field} is not empty: {run}"
            );
        }
    }

    fn assert_running(&mut self, after: &str) {
        assert!(
            self.broker.is_running(),
            "the broker died after {after}; its log:\n{}",
            self.broker.logs()
        );
    }
}

/// The error a CLI refusal printed says it was about authorization.
fn assert_says_not_authorized(stderr: &str, what: &str) {
    let lower = stderr.to_lowercase();
    assert!(
        ["authoriz", "not allowed", "denied"]
            .iter()
            .any(|w| lower.contains(w)),
        "{what}: the CLI's error does not say the request was not authorized: {stderr}"
    );
}

#[test]
fn given_alice_may_write_and_read_one_topic_when_she_produces_and_consumes_then_that_topic_works_and_others_fail_with_topic_authorization_failed(
) {
    let secured = Secured::start();
    secured.create_topic("orders");
    secured.create_topic("secret");
    for operation in ["write", "read"] {
        secured.acl_add(&[
            "--principal",
            "User:alice",
            "--operation",
            operation,
            "--topic",
            "orders",
        ]);
    }

    secured.assert_produces(&secured.alice, "orders", 50);
    secured.assert_consumes(&secured.alice, "orders", 50);

    let run = secured.produce(&secured.alice, "secret", 1);
    secured.assert_failed_with(&run, TOPIC_AUTHORIZATION_FAILED, "alice produces to secret");
    // Reading a topic she may not read: as a group member (librdkafka
    // reports a subscribed topic's error; an assign()-only consumer just
    // waits), with READ on the group so that only the topic is refused.
    secured.acl_add(&[
        "--principal",
        "User:alice",
        "--operation",
        "read",
        "--group",
        "alice-readers",
    ]);
    let run = secured.python(
        &secured.alice,
        json!({"action": "group_consume", "topic": "secret", "group": "alice-readers", "messages": 1}),
    );
    secured.assert_failed_with(&run, TOPIC_AUTHORIZATION_FAILED, "alice consumes secret");
    let stderr = secured.cli_refused(
        &secured.alice,
        &[
            "consume",
            "secret",
            "--from-beginning",
            "--max-messages",
            "1",
            "--timeout-ms",
            "30000",
        ],
    );
    assert_says_not_authorized(&stderr, "alice's CLI consume of secret");
    let run = secured.produce(&secured.bob, "orders", 1);
    secured.assert_failed_with(&run, TOPIC_AUTHORIZATION_FAILED, "bob produces to orders");

    let stderr = secured.cli_refused(&secured.alice, &["produce", "secret"]);
    assert_says_not_authorized(&stderr, "alice's CLI produce to secret");

    // The super user needs no ACL.
    secured.assert_produces(&secured.admin, "secret", 5);
    secured.assert_consumes(&secured.admin, "secret", 5);
}

#[test]
fn given_read_on_the_topic_but_not_the_group_when_alice_consumes_in_a_group_then_group_authorization_failed_until_a_group_acl_allows_it(
) {
    let secured = Secured::start();
    secured.create_topic("grouped");
    secured.assert_produces(&secured.admin, "grouped", 20);
    secured.acl_add(&[
        "--principal",
        "User:alice",
        "--operation",
        "read",
        "--topic",
        "grouped",
    ]);

    let run = secured.python(
        &secured.alice,
        json!({"action": "group_consume", "topic": "grouped", "group": "alice-group", "messages": 20}),
    );
    secured.assert_failed_with(&run, GROUP_AUTHORIZATION_FAILED, "alice's group consume");
    let stderr = secured.cli_refused(
        &secured.alice,
        &[
            "consume",
            "grouped",
            "--group",
            "alice-group",
            "--from-beginning",
            "--max-messages",
            "20",
            "--timeout-ms",
            "30000",
        ],
    );
    assert_says_not_authorized(&stderr, "alice's CLI group consume");

    secured.acl_add(&[
        "--principal",
        "User:alice",
        "--operation",
        "read",
        "--group",
        "alice-group",
    ]);
    let run = secured.python(
        &secured.alice,
        json!({"action": "group_consume", "topic": "grouped", "group": "alice-group", "messages": 20}),
    );
    assert_exactly(&messages("grouped", 20), &strings(&run["values"]), &|| {
        format!(
            "alice's group consume with READ on the group: {run}\nbroker log:\n{}",
            tail(&secured.broker.logs(), 20_000)
        )
    });
}

#[test]
fn given_no_create_acl_when_alice_creates_a_topic_then_topic_authorization_failed_and_with_create_on_the_prefix_or_cluster_it_is_created(
) {
    let secured = Secured::start();
    let run = secured.python(
        &secured.alice,
        json!({"action": "create_topics", "topics": ["alice-new"]}),
    );
    assert_eq!(
        run["results"]["alice-new"]["code"].as_i64(),
        Some(TOPIC_AUTHORIZATION_FAILED),
        "creating a topic without CREATE: {run}"
    );
    let stderr = secured.cli_refused(
        &secured.alice,
        &["topic", "create", "alice-cli", "--partitions", "1"],
    );
    assert_says_not_authorized(&stderr, "alice's CLI topic create");

    secured.acl_add(&[
        "--principal",
        "User:alice",
        "--operation",
        "create",
        "--topic",
        "alice-",
        "--prefixed",
    ]);
    let run = secured.python(
        &secured.alice,
        json!({"action": "create_topics", "topics": ["alice-new", "bob-new"]}),
    );
    assert_eq!(
        run["results"]["alice-new"],
        Value::Null,
        "CREATE on the prefix alice-: {run}"
    );
    assert_eq!(
        run["results"]["bob-new"]["code"].as_i64(),
        Some(TOPIC_AUTHORIZATION_FAILED),
        "bob-new is outside alice's prefix: {run}"
    );

    // CREATE on the cluster covers every topic.
    secured.acl_add(&[
        "--principal",
        "User:bob",
        "--operation",
        "create",
        "--cluster",
    ]);
    secured.cli_ok(
        &secured.bob,
        &["topic", "create", "anything-bob-likes", "--partitions", "1"],
        None,
    );
    let listed = secured.cli_ok(&secured.admin, &["topic", "list"], None);
    for topic in ["alice-new", "anything-bob-likes"] {
        assert!(listed.contains(topic), "{topic} not listed:\n{listed}");
    }
    assert!(
        !listed.contains("bob-new") && !listed.contains("alice-cli"),
        "a refused topic was created:\n{listed}"
    );
}

#[test]
fn given_topics_alice_may_not_describe_when_she_asks_for_metadata_then_they_are_hidden() {
    let secured = Secured::start();
    for topic in ["visible-a", "hidden-b", "hidden-c"] {
        secured.create_topic(topic);
    }
    secured.acl_add(&[
        "--principal",
        "User:alice",
        "--operation",
        "describe",
        "--topic",
        "visible-a",
    ]);

    let topics = |user: &User| -> Value {
        let run = secured.python(user, json!({"action": "metadata"}));
        run["topics"].clone()
    };
    let alice_sees = topics(&secured.alice);
    assert!(
        alice_sees.get("visible-a").is_some(),
        "alice does not see visible-a: {alice_sees}"
    );
    for hidden in ["hidden-b", "hidden-c"] {
        assert!(
            alice_sees.get(hidden).is_none(),
            "alice sees {hidden} without DESCRIBE: {alice_sees}"
        );
    }
    let admin_sees = topics(&secured.admin);
    for topic in ["visible-a", "hidden-b", "hidden-c"] {
        assert!(
            admin_sees.get(topic).is_some(),
            "the super user does not see {topic}: {admin_sees}"
        );
    }
    let bob_sees = topics(&secured.bob);
    assert!(
        ["visible-a", "hidden-b", "hidden-c"]
            .iter()
            .all(|t| bob_sees.get(*t).is_none()),
        "bob has no ACL but sees topics: {bob_sees}"
    );

    // Asked for by name, a topic she may not describe is refused as Kafka does.
    let run = secured.python(
        &secured.alice,
        json!({"action": "metadata", "topic": "hidden-b"}),
    );
    assert_eq!(
        run["topics"]["hidden-b"]["code"].as_i64(),
        Some(TOPIC_AUTHORIZATION_FAILED),
        "Metadata for hidden-b by name: {run}"
    );

    let listed = secured.cli_ok(&secured.alice, &["topic", "list"], None);
    assert!(listed.contains("visible-a"), "{listed}");
    assert!(
        !listed.contains("hidden-"),
        "`topic list` shows alice hidden topics:\n{listed}"
    );
}

#[test]
fn given_allow_and_deny_for_the_same_operation_when_alice_produces_then_deny_wins() {
    let secured = Secured::start();
    for topic in ["contested", "team-public", "team-secret"] {
        secured.create_topic(topic);
    }
    secured.acl_add(&[
        "--principal",
        "User:alice",
        "--operation",
        "write",
        "--topic",
        "contested",
    ]);
    secured.assert_produces(&secured.alice, "contested", 3);
    secured.acl_add(&[
        "--principal",
        "User:alice",
        "--operation",
        "write",
        "--topic",
        "contested",
        "--deny",
    ]);
    let run = secured.produce(&secured.alice, "contested", 1);
    secured.assert_failed_with(
        &run,
        TOPIC_AUTHORIZATION_FAILED,
        "allow and deny WRITE on contested",
    );

    // A prefixed ALLOW of everything, a literal DENY of one topic under it.
    secured.acl_add(&[
        "--principal",
        "User:alice",
        "--operation",
        "all",
        "--topic",
        "team-",
        "--prefixed",
    ]);
    secured.acl_add(&[
        "--principal",
        "User:alice",
        "--operation",
        "all",
        "--topic",
        "team-secret",
        "--deny",
    ]);
    secured.assert_produces(&secured.alice, "team-public", 3);
    secured.assert_consumes(&secured.alice, "team-public", 3);
    let run = secured.produce(&secured.alice, "team-secret", 1);
    secured.assert_failed_with(
        &run,
        TOPIC_AUTHORIZATION_FAILED,
        "prefixed ALLOW all, literal DENY all on team-secret",
    );
}

#[test]
fn given_prefixed_write_acl_when_alice_produces_under_and_outside_the_prefix_then_only_topics_under_it_are_allowed(
) {
    let secured = Secured::start();
    for topic in ["logs-app", "logs-web", "logsx", "app-logs-"] {
        secured.create_topic(topic);
    }
    secured.acl_add(&[
        "--principal",
        "User:alice",
        "--operation",
        "write",
        "--topic",
        "logs-",
        "--prefixed",
    ]);
    secured.assert_produces(&secured.alice, "logs-app", 5);
    secured.assert_produces(&secured.alice, "logs-web", 5);
    for outside in ["logsx", "app-logs-"] {
        let run = secured.produce(&secured.alice, outside, 1);
        secured.assert_failed_with(
            &run,
            TOPIC_AUTHORIZATION_FAILED,
            &format!("{outside} is outside the prefix logs-"),
        );
    }
    // A literal ACL named like the prefix covers only that exact name.
    secured.acl_add(&[
        "--principal",
        "User:bob",
        "--operation",
        "write",
        "--topic",
        "logs-",
    ]);
    let run = secured.produce(&secured.bob, "logs-app", 1);
    secured.assert_failed_with(
        &run,
        TOPIC_AUTHORIZATION_FAILED,
        "a literal logs- ACL does not cover logs-app",
    );
}

/// The lines of `sediment acl list` that mention every one of `words`
/// (case-insensitive).
fn lines_with<'a>(listed: &'a str, words: &[&str]) -> Vec<&'a str> {
    listed
        .lines()
        .filter(|line| {
            let lower = line.to_lowercase();
            words.iter().all(|w| lower.contains(&w.to_lowercase()))
        })
        .collect()
}

#[test]
fn given_acls_added_when_listed_then_acl_list_shows_each_and_after_remove_it_is_gone_and_enforced_again(
) {
    let secured = Secured::start();
    secured.create_topic("orders");
    let bindings: &[&[&str]] = &[
        &[
            "--principal",
            "User:alice",
            "--operation",
            "write",
            "--topic",
            "orders",
        ],
        &[
            "--principal",
            "User:alice",
            "--operation",
            "read",
            "--group",
            "billing",
        ],
        &[
            "--principal",
            "User:bob",
            "--operation",
            "describe",
            "--topic",
            "secret-",
            "--prefixed",
            "--deny",
        ],
        &[
            "--principal",
            "User:bob",
            "--operation",
            "create",
            "--cluster",
        ],
    ];
    for binding in bindings {
        secured.acl_add(binding);
    }
    let listed = secured.cli_ok(&secured.admin, &["acl", "list"], None);
    let expect: &[&[&str]] = &[
        &["User:alice", "orders", "write", "allow"],
        &["User:alice", "billing", "read", "allow"],
        &["User:bob", "secret-", "describe", "deny", "prefixed"],
        &["User:bob", "kafka-cluster", "create", "allow"],
    ];
    for words in expect {
        assert_eq!(
            lines_with(&listed, words).len(),
            1,
            "`sediment acl list` should show one binding with {words:?}:\n{listed}"
        );
    }
    let json_listed = secured.cli_ok(&secured.admin, &["--output", "json", "acl", "list"], None);
    assert!(
        serde_json::from_str::<Value>(json_listed.trim()).is_ok()
            || json_listed
                .lines()
                .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "`--output json acl list` is not JSON:\n{json_listed}"
    );

    secured.assert_produces(&secured.alice, "orders", 2);
    let mut remove = vec!["acl", "remove"];
    remove.extend_from_slice(bindings[0]);
    secured.cli_ok(&secured.admin, &remove, None);
    let listed = secured.cli_ok(&secured.admin, &["acl", "list"], None);
    assert!(
        lines_with(&listed, &["User:alice", "orders", "write"]).is_empty(),
        "the removed binding is still listed:\n{listed}"
    );
    assert_eq!(
        lines_with(&listed, &["User:alice", "billing", "read"]).len(),
        1,
        "removing one binding removed another:\n{listed}"
    );
    let run = secured.produce(&secured.alice, "orders", 1);
    secured.assert_failed_with(
        &run,
        TOPIC_AUTHORIZATION_FAILED,
        "after the WRITE ACL was removed",
    );
}

#[test]
fn given_acls_when_broker_killed_9_and_restarted_then_they_still_apply() {
    let mut secured = Secured::start();
    secured.create_topic("durable");
    for operation in ["write", "read"] {
        secured.acl_add(&[
            "--principal",
            "User:alice",
            "--operation",
            operation,
            "--topic",
            "durable",
        ]);
    }
    secured.acl_add(&[
        "--principal",
        "User:bob",
        "--operation",
        "all",
        "--topic",
        "durable",
        "--deny",
    ]);
    // Acknowledged means durable: kill right after the last command returned.
    secured.broker.kill9();
    secured.broker.restart();
    assert!(
        secured.broker.data_dir.join("meta/acls.json").is_file(),
        "no meta/acls.json in the data directory"
    );
    secured.assert_produces(&secured.alice, "durable", 5);
    secured.assert_consumes(&secured.alice, "durable", 5);
    let run = secured.produce(&secured.bob, "durable", 1);
    secured.assert_failed_with(&run, TOPIC_AUTHORIZATION_FAILED, "bob's DENY after kill -9");
    let listed = secured.cli_ok(&secured.admin, &["acl", "list"], None);
    assert_eq!(
        lines_with(&listed, &["User:bob", "durable", "deny"]).len(),
        1,
        "{listed}"
    );
    // bob was created online before the kill, and still logs in.
    secured.cli_ok(&secured.bob, &["topic", "list"], None);
}

#[test]
fn given_invalid_acl_bindings_when_added_then_each_is_refused_with_a_clear_error_and_broker_stays_up(
) {
    let mut secured = Secured::start();
    // Through our CLI.
    let stderr = secured.cli_refused(
        &secured.admin,
        &[
            "acl",
            "add",
            "--principal",
            "User:alice",
            "--operation",
            "read",
            "--topic",
            "*",
            "--prefixed",
        ],
    );
    let lower = stderr.to_lowercase();
    assert!(
        lower.contains("prefixed") || lower.contains("wildcard"),
        "a prefixed `*`: the error does not say what is wrong: {stderr}"
    );
    let stderr = secured.cli_refused(
        &secured.admin,
        &[
            "acl",
            "add",
            "--principal",
            "alice",
            "--operation",
            "read",
            "--topic",
            "orders",
        ],
    );
    assert!(
        stderr.to_lowercase().contains("principal"),
        "a principal without `User:`: the error does not say what is wrong: {stderr}"
    );
    secured.assert_running("invalid ACLs from the CLI");

    // Straight to CreateAcls, past any check our CLI makes.
    let run = secured.python(
        &secured.admin,
        json!({"action": "create_acls", "acls": [
            {"resource_type": "BROKER", "name": "my-cluster", "pattern": "LITERAL",
             "principal": "User:alice", "operation": "CREATE", "permission": "ALLOW"},
            {"resource_type": "TOPIC", "name": "*", "pattern": "PREFIXED",
             "principal": "User:alice", "operation": "READ", "permission": "ALLOW"},
            {"resource_type": "TOPIC", "name": "orders", "pattern": "LITERAL",
             "principal": "alice", "operation": "READ", "permission": "ALLOW"},
            {"resource_type": "TOPIC", "name": "orders", "pattern": "LITERAL",
             "principal": "User:alice", "operation": "READ", "permission": "ALLOW"}
        ]}),
    );
    let results = run["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 4, "{run}");
    for (i, what) in [
        "a cluster not named kafka-cluster",
        "a prefixed *",
        "a principal without a type",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            results[i].is_object(),
            "CreateAcls accepted {what}: {run}\nbroker log:\n{}",
            tail(&secured.broker.logs(), 20_000)
        );
        assert!(
            results[i]["str"].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: refused without a message: {run}"
        );
    }
    assert!(
        results[0]["str"]
            .as_str()
            .is_some_and(|s| s.contains("kafka-cluster")),
        "the cluster name error does not name kafka-cluster: {run}"
    );
    assert_eq!(
        results[3],
        Value::Null,
        "the valid binding beside the invalid ones was refused: {run}"
    );
    secured.assert_running("invalid ACLs through CreateAcls");

    let listed = secured.cli_ok(&secured.admin, &["acl", "list"], None);
    assert!(
        !listed.contains("my-cluster") && lines_with(&listed, &["*", "prefixed"]).is_empty(),
        "an invalid binding was stored:\n{listed}"
    );
    secured.create_topic("still-up");
    secured.assert_produces(&secured.admin, "still-up", 3);
}

#[test]
fn given_users_when_a_non_super_user_creates_users_then_cluster_authorization_failed_and_the_super_user_can(
) {
    let secured = Secured::start();
    // bob was created online by admin in `start`, and logs in.
    secured.cli_ok(&secured.bob, &["topic", "list"], None);

    let run = secured.python(
        &secured.alice,
        json!({"action": "alter_scram", "users": [
            {"name": "eve", "mechanism": MECHANISM, "password": "eve-password-1"}]}),
    );
    assert_eq!(
        run["results"]["eve"]["code"].as_i64(),
        Some(CLUSTER_AUTHORIZATION_FAILED),
        "alice (no ALTER on the cluster) upserting a SCRAM credential: {run}"
    );
    let stderr = sediment_refused(
        &secured.connect(&secured.alice),
        &[
            "user",
            "create",
            "eve",
            "--mechanism",
            MECHANISM,
            "--password-stdin",
        ],
        Some("eve-password-2\n"),
    );
    assert_says_not_authorized(&stderr, "alice's `user create`");

    let listed = secured.cli_ok(&secured.admin, &["user", "list"], None);
    for name in ["admin", "alice", "bob"] {
        assert!(
            listed.contains(name),
            "`user list` misses {name}:\n{listed}"
        );
    }
    assert!(!listed.contains("eve"), "a refused user exists:\n{listed}");
    for user in [&secured.admin, &secured.alice, &secured.bob] {
        assert!(
            !listed.contains(&user.password),
            "`user list` prints a password"
        );
    }

    secured.cli_ok(&secured.admin, &["user", "delete", "bob"], None);
    let stderr = secured.cli_refused(&secured.bob, &["topic", "list"]);
    assert!(
        stderr.to_lowercase().contains("authentication"),
        "a deleted user's login: {stderr}"
    );
}

#[test]
fn given_transactional_id_without_acl_when_alice_initializes_transactions_then_transactional_id_authorization_failed_and_with_it_commits(
) {
    let secured = Secured::start();
    secured.create_topic("txn-orders");
    secured.acl_add(&[
        "--principal",
        "User:alice",
        "--operation",
        "write",
        "--topic",
        "txn-orders",
    ]);
    let transaction = || {
        secured.python(
            &secured.alice,
            json!({"action": "transaction", "transactional_id": "alice-tx",
                   "topic": "txn-orders", "messages": 3}),
        )
    };
    let run = transaction();
    assert_eq!(
        run["error"]["code"].as_i64(),
        Some(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
        "a transaction without WRITE on its transactional id: {run}\nbroker log:\n{}",
        tail(&secured.broker.logs(), 20_000)
    );
    // `sediment acl` has no transactional-id resource: CreateAcls directly.
    let created = secured.python(
        &secured.admin,
        json!({"action": "create_acls", "acls": [
            {"resource_type": "TRANSACTIONAL_ID", "name": "alice-tx", "pattern": "LITERAL",
             "principal": "User:alice", "operation": "WRITE", "permission": "ALLOW"}]}),
    );
    assert_eq!(created["results"], json!([null]), "{created}");
    let run = transaction();
    assert_eq!(
        run["step"],
        "committed",
        "with WRITE on alice-tx: {run}\nbroker log:\n{}",
        tail(&secured.broker.logs(), 20_000)
    );
}
