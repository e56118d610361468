//! The Java side of the compatibility tests: `tests/java/` built by
//! `scripts/test` (Maven) into `target/java/` — the scenarios' jar and, in
//! `lib/`, Apache Kafka's jars — and how the tests run it: a scenario class
//! printing one JSON line ([`scenario`]), one talking to the test while it
//! runs ([`Interactive`]), or one of Kafka's command-line tools ([`tool`]).
//! Missing or stale builds and a missing JDK fail with how to get them,
//! never a skip; every JVM is bounded in time and reaped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;

use super::{run_bounded, tail, wait_for_exit, BrokerProcess, Finished};

/// How to get a JDK when `java` is missing.
pub const JAVA_HINT: &str =
    "install a JDK 17 with `apt-get install openjdk-17-jdk-headless maven` (or run scripts/test)";

/// How to build the Java side when it is missing or stale.
const BUILD_HINT: &str =
    "run scripts/test, or build them with `mvn -q -f tests/java/pom.xml package`";

/// Where `mvn -f tests/java/pom.xml package` leaves its output.
pub fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/java")
}

/// The Maven-copied dependency jars: `target/java/lib/`.
pub fn lib_dir() -> PathBuf {
    target().join("lib")
}

/// `java` on PATH, or a panic with [`JAVA_HINT`].
pub fn java() -> PathBuf {
    super::require_tool("java", JAVA_HINT)
}

/// The version in the name of the jar `<prefix><version>.jar` in
/// [`lib_dir`], if there is one.
pub fn jar_version(prefix: &str) -> Option<String> {
    std::fs::read_dir(lib_dir())
        .ok()?
        .flatten()
        .find_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(".jar"))
                .map(str::to_string)
        })
}

/// Newest modification time under `path` (a file or a directory tree).
fn newest_mtime(path: &Path) -> SystemTime {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut newest = meta.modified().unwrap();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            newest = newest.max(newest_mtime(&entry.unwrap().path()));
        }
    }
    newest
}

/// The `-cp` argument for the built scenarios and Kafka's jars; panics with
/// how to build them when the scenarios' jar or a `<prefix>*.jar` of
/// `needed` is missing, or the jar is older than its sources.
pub fn classpath(needed: &[&str]) -> String {
    let jar = target().join("sediment-compat-java.jar");
    let lib = lib_dir();
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|prefix| jar_version(prefix).is_none())
        .collect();
    assert!(
        jar.is_file() && missing.is_empty(),
        "{} or {}/{{{}}}*.jar is missing: {BUILD_HINT}",
        jar.display(),
        lib.display(),
        missing.join(",")
    );
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java");
    let built = std::fs::metadata(&jar).unwrap().modified().unwrap();
    assert!(
        newest_mtime(&sources) <= built,
        "{} is older than tests/java/: {BUILD_HINT}",
        jar.display()
    );
    format!("{}:{}/*", jar.display(), lib.display())
}

/// Jar prefixes every run of the Java side needs: Kafka's client, tools and
/// Streams (one Maven build provides them all).
const KAFKA_JARS: &[&str] = &["kafka-clients-", "kafka-tools-", "kafka-streams-"];

/// Longest one JVM run (a scenario or a tool) may take before it is killed
/// and the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// `java -cp … main args…`, with the JVM flags every run uses.
fn command(main: &str, args: &[&str]) -> Command {
    let mut command = Command::new(java());
    command
        .arg("-cp")
        .arg(classpath(KAFKA_JARS))
        // Short runs: C1 only starts faster; a bounded heap keeps parallel JVMs small.
        .args(["-XX:TieredStopAtLevel=1", "-Xmx512m"])
        .arg(main)
        .args(args);
    command
}

/// Runs `java -cp … main args…` with `stdin`, bounded by [`RUN_TIMEOUT`].
pub fn run(main: &str, args: &[&str], stdin: Option<&[u8]>) -> Finished {
    run_bounded(command(main, args), stdin.map(<[u8]>::to_vec), RUN_TIMEOUT)
}

/// Runs the scenario class `dev.sediment.compat.<class>` with the broker's
/// address first, and parses the JSON line it prints; panics with its stderr
/// and the broker's log if it fails.
pub fn scenario<T: DeserializeOwned>(broker: &BrokerProcess, class: &str, args: &[&str]) -> T {
    let bootstrap = broker.bootstrap();
    let mut all = vec![bootstrap.as_str()];
    all.extend_from_slice(args);
    let Finished {
        status,
        stdout,
        stderr,
    } = run(&format!("dev.sediment.compat.{class}"), &all, None);
    let context = || {
        format!(
            "{class} {args:?}\nscenario stderr:\n{}\nbroker log:\n{}",
            tail(&stderr, 8000),
            tail(&broker.logs(), 20_000)
        )
    };
    super::json_outcome(status, &stdout, RUN_TIMEOUT, context)
}

/// What a command-line tool printed, and its exit code.
pub struct Tool {
    /// Its exit code.
    pub code: i32,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Runs one of Kafka's command-line tools (its main class) with
/// `--bootstrap-server` and `args`.
pub fn tool(broker: &BrokerProcess, main: &str, args: &[&str], stdin: Option<&[u8]>) -> Tool {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["--bootstrap-server", bootstrap.as_str()];
    all.extend_from_slice(args);
    let finished = run(main, &all, stdin);
    let stdout = String::from_utf8_lossy(&finished.stdout).into_owned();
    let code = finished.status.and_then(|s| s.code()).unwrap_or_else(|| {
        panic!(
            "{main} {args:?} was killed after {RUN_TIMEOUT:?}\nstdout:\n{stdout}\nstderr:\n{}",
            tail(&finished.stderr, 6000)
        )
    });
    Tool {
        code,
        stdout,
        stderr: finished.stderr,
    }
}

/// Like [`tool`], but panics with its output and the broker's log unless it
/// exits 0.
pub fn tool_ok(broker: &BrokerProcess, main: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    let run = tool(broker, main, args, stdin);
    assert_eq!(
        run.code,
        0,
        "{main} {args:?} failed\nstdout:\n{}\nstderr:\n{}\nbroker log:\n{}",
        run.stdout,
        tail(&run.stderr, 6000),
        tail(&broker.logs(), 20_000)
    );
    run.stdout
}

/// The rows of a table a Kafka tool prints (a header line of column names,
/// then one line per row, both split on whitespace), each as column → value.
pub fn table(out: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.split_whitespace().collect();
    lines
        .map(|line| {
            columns
                .iter()
                .map(|c| c.to_string())
                .zip(line.split_whitespace().map(str::to_string))
                .collect()
        })
        .collect()
}

/// The rows of a table a Kafka tool prints with tab-separated, padded
/// columns (kafka-transactions), each as column → trimmed value; an empty
/// cell is an empty string.
pub fn tab_table(out: &str) -> Vec<BTreeMap<String, String>> {
    let cells = |line: &str| -> Vec<String> {
        let mut cells: Vec<String> = line.split('\t').map(|c| c.trim().to_string()).collect();
        // Every line ends with a tab.
        if cells.last().is_some_and(String::is_empty) {
            cells.pop();
        }
        cells
    };
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns = cells(header);
    lines
        .map(|line| columns.iter().cloned().zip(cells(line)).collect())
        .collect()
}

/// A scenario JVM the test talks to while it runs: it reads the lines the
/// scenario prints as they come, writes lines to its stdin, and can SIGKILL
/// it. Killed and reaped on drop, so a failing test leaves no JVM behind.
pub struct Interactive {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    what: String,
}

impl Interactive {
    /// Starts the scenario class `dev.sediment.compat.<class>` with the
    /// broker's address first.
    pub fn start(broker: &BrokerProcess, class: &str, args: &[&str]) -> Self {
        let bootstrap = broker.bootstrap();
        let mut all = vec![bootstrap.as_str()];
        all.extend_from_slice(args);
        let mut child = command(&format!("dev.sediment.compat.{class}"), &all)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn java {class}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
            stderr,
            what: format!("{class} {args:?}"),
        }
    }

    /// Everything the scenario wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The next line the scenario prints, parsed as JSON; panics (with its
    /// stderr and the broker's log) if it exits or `within` passes first.
    pub fn next_json<T: DeserializeOwned>(
        &mut self,
        broker: &BrokerProcess,
        within: Duration,
    ) -> T {
        let line = match self.lines.recv_timeout(within) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "{} printed nothing within {within:?}: {}",
                    self.what,
                    self.context(broker)
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = wait_for_exit(&mut self.child, Duration::from_secs(30));
                panic!(
                    "{} exited ({status:?}): {}",
                    self.what,
                    self.context(broker)
                )
            }
        };
        serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "{} printed {line:?} ({e}): {}",
                self.what,
                self.context(broker)
            )
        })
    }

    /// Writes `line` and a newline to the scenario's stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("write to {}: {e}", self.what));
    }

    /// Waits for the scenario to exit and panics unless it exits 0.
    pub fn expect_success(&mut self, broker: &BrokerProcess, within: Duration) {
        self.stdin.take();
        match wait_for_exit(&mut self.child, within) {
            Some(status) if status.success() => {}
            status => panic!(
                "{} ended with {status:?}: {}",
                self.what,
                self.context(broker)
            ),
        }
    }

    /// SIGKILL, then reap: the JVM gets no chance to close anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn context(&self, broker: &BrokerProcess) -> String {
        format!(
            "\nscenario stderr:\n{}\nbroker log:\n{}",
            tail(&self.stderr(), 8000),
            tail(&broker.logs(), 20_000)
        )
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        self.kill9();
    }
}
