//! A real Apache Kafka cluster (4.x, KRaft combined mode: every node is
//! broker and controller) on 127.0.0.1, started from the jars that
//! `scripts/test` copies into `target/java/lib/` (tests/java/pom.xml pins
//! `org.apache.kafka:kafka_2.13`). It is the scale-out target of DESIGN §1.3:
//! the tests that use it show that sediment-client and `sediment window`
//! run on Kafka unchanged.
//!
//! Invariants: every node listens on 127.0.0.1 only, on ports that were
//! free a moment before; its storage lives in a temp dir that goes away with
//! the cluster; the processes are SIGKILLed and reaped on drop, so a failing
//! test leaves no JVM behind. A missing `java` or missing jars fail with the
//! command that provides them, never a skip.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::fmt::Write as _;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{free_port, run_bounded};

/// How long a cluster may take to format and answer Metadata listing every
/// node (it takes a few seconds on an idle machine; generous for a busy one).
const START_DEADLINE: Duration = Duration::from_secs(180);

/// One JVM of the cluster.
struct Node {
    id: i32,
    child: Option<Child>,
    addr: SocketAddr,
    output: Arc<Mutex<String>>,
}

/// A running Apache Kafka cluster of one or more KRaft combined nodes.
pub struct ApacheKafka {
    nodes: Vec<Node>,
    /// The Kafka version of the jars (e.g. `4.3.1`).
    pub version: String,
    /// How long formatting and starting took, until Metadata listed every node.
    pub startup: Duration,
    _dir: tempfile::TempDir,
}

/// The version of the `kafka_2.13-<version>.jar` among the Maven-copied
/// jars, or a panic that says how to get them.
fn kafka_version() -> String {
    super::java::jar_version("kafka_2.13-").unwrap_or_else(|| {
        panic!(
            "the Apache Kafka server jars (kafka_2.13-*.jar and its dependencies) are missing \
             from {}: run `scripts/test` (it builds tests/java with Maven and copies them there), \
             or `mvn -q -f tests/java/pom.xml package`",
            super::java::lib_dir().display()
        )
    })
}

/// A random KRaft cluster id: 16 random bytes in URL-safe base64 without
/// padding, what `kafka-storage random-uuid` prints. Like Kafka's own
/// `Uuid.randomUuid`, an id starting with `-` is drawn again: the storage
/// tool would read it as an option ("--cluster-id: expected one argument").
fn random_cluster_id() -> String {
    loop {
        let id = encode_cluster_id(uuid::Uuid::new_v4().into_bytes());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// URL-safe base64 without padding of a 16-byte id.
fn encode_cluster_id(bytes: [u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits: u32 = 0;
    let mut held = 0;
    let mut out = String::new();
    for byte in bytes {
        bits = (bits << 8) | u32::from(byte);
        held += 8;
        while held >= 6 {
            held -= 6;
            out.push(ALPHABET[((bits >> held) & 63) as usize] as char);
        }
    }
    if held > 0 {
        out.push(ALPHABET[((bits << (6 - held)) & 63) as usize] as char);
    }
    out
}

/// The `server.properties` of node `id` of a cluster of `count` nodes.
fn node_config(
    id: i32,
    count: usize,
    port: u16,
    controller_port: u16,
    voters: &str,
    log_dir: &Path,
) -> String {
    // Replicated internal topics on a multi-node cluster, as in production;
    // a single node can only hold one replica.
    let replicas = count.min(3);
    let min_isr = if replicas >= 3 { 2 } else { 1 };
    let mut config = String::new();
    let lines = [
        "process.roles=broker,controller".to_string(),
        format!("node.id={id}"),
        format!("controller.quorum.voters={voters}"),
        format!("listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"),
        format!("advertised.listeners=PLAINTEXT://127.0.0.1:{port}"),
        "controller.listener.names=CONTROLLER".to_string(),
        "inter.broker.listener.name=PLAINTEXT".to_string(),
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string(),
        format!("log.dirs={}", log_dir.display()),
        "num.partitions=1".to_string(),
        format!("default.replication.factor={replicas}"),
        format!("min.insync.replicas={min_isr}"),
        format!("offsets.topic.replication.factor={replicas}"),
        // Fewer than the default 50: the group coordinator is up sooner.
        "offsets.topic.num.partitions=4".to_string(),
        format!("transaction.state.log.replication.factor={replicas}"),
        format!("transaction.state.log.min.isr={min_isr}"),
        "transaction.state.log.num.partitions=4".to_string(),
        "group.initial.rebalance.delay.ms=0".to_string(),
        // The group scenarios use 3 s sessions; Kafka's floor is 6 s.
        "group.min.session.timeout.ms=1000".to_string(),
        "auto.create.topics.enable=true".to_string(),
        "delete.topic.enable=true".to_string(),
    ];
    for line in lines {
        let _ = writeln!(config, "{line}");
    }
    config
}

impl ApacheKafka {
    /// Formats and starts a cluster of `count` combined broker+controller
    /// nodes (ids 1..=count) and waits until Metadata lists every broker.
    /// Safe to call from inside a tokio runtime (it waits on its own thread).
    pub fn start(count: usize) -> Self {
        assert!(count >= 1, "a cluster has at least one node");
        let started = Instant::now();
        let java = super::java::java();
        let lib = super::java::lib_dir();
        let version = kafka_version();
        let classpath = format!("{}/*", lib.display());
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster_id = random_cluster_id();

        let ports: Vec<(u16, u16)> = (0..count).map(|_| (free_port(), free_port())).collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, (_, controller))| format!("{}@127.0.0.1:{controller}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut configs = Vec::new();
        for (i, (port, controller_port)) in ports.iter().enumerate() {
            let id = i as i32 + 1;
            let log_dir = dir.path().join(format!("node-{id}"));
            let config_path = dir.path().join(format!("server-{id}.properties"));
            std::fs::write(
                &config_path,
                node_config(id, count, *port, *controller_port, &voters, &log_dir),
            )
            .expect("write server.properties");
            configs.push(config_path);
        }
        // Static quorum (controller.quorum.voters): every node is formatted
        // with the same cluster id and no `--standalone`; one JVM per node,
        // all at once.
        std::thread::scope(|scope| {
            let formats: Vec<_> = configs
                .iter()
                .enumerate()
                .map(|(i, config_path)| {
                    let mut format = Command::new(&java);
                    format
                        .args([
                            "-Xmx256m",
                            "-cp",
                            &classpath,
                            "kafka.tools.StorageTool",
                            "format",
                        ])
                        .args(["--cluster-id", &cluster_id, "--config"])
                        .arg(config_path)
                        .arg("--ignore-formatted");
                    (
                        i + 1,
                        scope.spawn(move || run_bounded(format, None, Duration::from_secs(120))),
                    )
                })
                .collect();
            for (id, format) in formats {
                let done = format.join().expect("format thread");
                assert!(
                    done.status.is_some_and(|s| s.success()),
                    "formatting Kafka node {id} failed ({:?}):\n{}\n{}",
                    done.status,
                    String::from_utf8_lossy(&done.stdout),
                    done.stderr
                );
            }
        });

        let mut nodes = Vec::new();
        for (i, config_path) in configs.iter().enumerate() {
            let mut child = Command::new(&java)
                .args([
                    "-Xmx512m",
                    "-Xms128m",
                    "-XX:+UseSerialGC",
                    "-Djava.awt.headless=true",
                    "-cp",
                    &classpath,
                    "kafka.Kafka",
                ])
                .arg(config_path)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn java kafka.Kafka");
            let output = Arc::new(Mutex::new(String::new()));
            for pipe in [
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ]
            .into_iter()
            .flatten()
            {
                let sink = Arc::clone(&output);
                std::thread::spawn(move || drain(pipe, sink));
            }
            nodes.push(Node {
                id: i as i32 + 1,
                child: Some(child),
                addr: SocketAddr::from(([127, 0, 0, 1], ports[i].0)),
                output,
            });
        }
        let mut cluster = Self {
            nodes,
            version,
            startup: Duration::ZERO,
            _dir: dir,
        };
        cluster.wait_ready(started + START_DEADLINE);
        cluster.startup = started.elapsed();
        eprintln!(
            "Apache Kafka {} ({count} node(s)) ready at {} after {:?}",
            cluster.version,
            cluster.bootstrap(),
            cluster.startup
        );
        cluster
    }

    /// Waits until every node accepts connections and Metadata (through
    /// sediment-client) lists every broker.
    fn wait_ready(&mut self, deadline: Instant) {
        let within = deadline.saturating_duration_since(Instant::now());
        let bootstrap = self.bootstrap();
        let expected: Vec<i32> = self.nodes.iter().map(|n| n.id).collect();
        let mut listed = Err(String::from("not asked yet"));
        super::wait_until(
            within,
            || {
                self.assert_running();
                let listening = self.nodes.iter().all(|node| {
                    TcpStream::connect_timeout(&node.addr, Duration::from_secs(1)).is_ok()
                });
                if listening {
                    listed = brokers_listed(&bootstrap);
                }
                listening && listed.as_ref().is_ok_and(|ids| *ids == expected)
            },
            || {
                format!("Kafka at {bootstrap} did not list brokers {expected:?} within {START_DEADLINE:?}")
            },
        );
    }

    /// Panics with the output of any node that exited.
    fn assert_running(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let output = node.output.lock().map(|s| s.clone()).unwrap_or_default();
                    panic!("Kafka node {} exited ({status}):\n{output}", node.id);
                }
            }
        }
    }

    /// `HOST:PORT,HOST:PORT,…` of every node, for client bootstrap settings.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The first node's address (a bootstrap for tools taking one address).
    pub fn first_bootstrap(&self) -> String {
        self.nodes[0].addr.to_string()
    }

    /// Node ids (1..=count).
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// What the JVMs printed (the jars carry no SLF4J binding, so Kafka's
    /// own logging is silent; this holds JVM errors and fatal exits).
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for node in &self.nodes {
            let output = node.output.lock().map(|s| s.clone()).unwrap_or_default();
            let _ = writeln!(all, "--- Kafka node {} ---\n{output}", node.id);
        }
        all
    }
}

impl Drop for ApacheKafka {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn drain(mut pipe: Box<dyn Read + Send>, sink: Arc<Mutex<String>>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            break;
        }
        if let Ok(mut s) = sink.lock() {
            s.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
}

/// The broker ids that Metadata lists, asked through sediment-client on a
/// runtime of its own thread (so callers may be inside a runtime).
fn brokers_listed(bootstrap: &str) -> Result<Vec<i32>, String> {
    let bootstrap = bootstrap.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let ask = async {
                let client = sediment_client::ClientBuilder::new(bootstrap)
                    .build()
                    .await
                    .map_err(|e| e.to_string())?;
                let cluster = client
                    .admin()
                    .describe_cluster()
                    .await
                    .map_err(|e| e.to_string())?;
                let mut ids: Vec<i32> = cluster.brokers.iter().map(|b| b.id).collect();
                ids.sort_unstable();
                Ok(ids)
            };
            tokio::time::timeout(Duration::from_secs(10), ask)
                .await
                .map_err(|_| "no answer within 10 s".to_string())?
        })
    })
    .join()
    .map_err(|_| "the metadata probe panicked".to_string())?
}
