//! Shared harness for the end-to-end tests: runs the real `sediment` binary
//! on 127.0.0.1 with a temporary data directory, and finds the external
//! clients the compatibility tests need (failing with an install hint, never
//! skipping).
#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod apache_kafka;
pub mod canary;
pub mod certs;
pub mod client;
pub mod java;
pub mod python;
pub mod security;
pub mod wagg;
pub mod wire;

/// A running broker process.
pub struct BrokerProcess {
    child: Option<Child>,
    /// Where it listens: the plaintext listener, or the TLS one when the
    /// broker was started with `--listen off`.
    pub addr: SocketAddr,
    /// Where its TLS listener listens (`listening on HOST:PORT (tls)`), when
    /// it was started with `--tls-listen`.
    pub tls_addr: Option<SocketAddr>,
    /// Where its HTTP port (GET /metrics) listens: `--http 127.0.0.1:0`
    /// unless the test passed its own `--http`; `None` with `--http off`.
    pub http_addr: Option<SocketAddr>,
    /// Its data directory.
    pub data_dir: PathBuf,
    extra_args: Vec<String>,
    /// The `--listen` address passed at every (re)start.
    listen: String,
    stderr: Arc<Mutex<String>>,
    _temp: Option<Arc<tempfile::TempDir>>,
}

impl BrokerProcess {
    /// Starts a broker on a fresh temporary data directory.
    pub fn start(extra_args: &[&str]) -> Self {
        let temp = Arc::new(tempfile::tempdir().expect("temp dir"));
        let data_dir = temp.path().join("data");
        let mut broker = Self::start_in(&data_dir, extra_args);
        broker._temp = Some(temp);
        broker
    }

    /// Starts a broker on `data_dir` (kept after the broker stops).
    pub fn start_in(data_dir: &Path, extra_args: &[&str]) -> Self {
        Self::start_listening(data_dir, "127.0.0.1:0", extra_args)
    }

    /// Starts a broker on a fresh temporary data directory and a fixed free
    /// port, so that [`BrokerProcess::restart`] brings it back on the same
    /// address (clients can then reconnect without new metadata).
    pub fn start_on_fixed_port(extra_args: &[&str]) -> Self {
        let temp = Arc::new(tempfile::tempdir().expect("temp dir"));
        let data_dir = temp.path().join("data");
        let listen = format!("127.0.0.1:{}", free_port());
        let mut broker = Self::start_listening(&data_dir, &listen, extra_args);
        broker._temp = Some(temp);
        broker
    }

    fn start_listening(data_dir: &Path, listen: &str, extra_args: &[&str]) -> Self {
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let Spawned {
            child,
            addr,
            tls_addr,
            http_addr,
            stderr,
        } = spawn(data_dir, listen, &extra_args);
        Self {
            child: Some(child),
            addr,
            tls_addr,
            http_addr,
            data_dir: data_dir.to_path_buf(),
            extra_args,
            listen: listen.to_string(),
            stderr,
            _temp: None,
        }
    }

    /// `HOST:PORT` for client bootstrap settings.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// `HOST:PORT` of the TLS listener; panics if it has none.
    pub fn tls_bootstrap(&self) -> String {
        self.tls_addr
            .expect("the broker was started with --tls-listen")
            .to_string()
    }

    /// Everything the broker logged so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(|c| c.id())
            .expect("broker is running")
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// Resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// SIGKILL, then wait for the process.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        match wait_for_exit(&mut child, Duration::from_secs(30)) {
            Some(status) => status.code(),
            None => panic!("broker did not exit within 30 s of SIGTERM"),
        }
    }

    /// [`BrokerProcess::restart`] with `extra_args` instead of the flags it
    /// was started with (kept for later restarts).
    pub fn restart_with(&mut self, extra_args: &[&str]) {
        self.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        self.restart();
    }

    /// Starts the broker again on the same data directory and flags (a new
    /// port, unless it was started with [`BrokerProcess::start_on_fixed_port`]).
    pub fn restart(&mut self) {
        self.kill9();
        let Spawned {
            child,
            addr,
            tls_addr,
            http_addr,
            stderr,
        } = spawn(&self.data_dir, &self.listen, &self.extra_args);
        self.child = Some(child);
        self.addr = addr;
        self.tls_addr = tls_addr;
        self.http_addr = http_addr;
        self.stderr = stderr;
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that no other
/// `free_port` call in this process returns.
pub fn free_port() -> u16 {
    // Fixed ports come from below the kernel's ephemeral range (32768 and
    // up on Linux): a port from `bind(:0)` could be handed to some other
    // test's outgoing connection or `:0` listener between the probe and the
    // broker's bind, or while the broker is down for a restart. Below the
    // range only another `free_port` call can take it, and each process
    // walks its own slice of the range once, starting at an offset from its
    // pid, so two calls never return the same port.
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let start = (std::process::id() % 40) * (COUNT / 40);
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 127.0.0.1:{FIRST}..{}", FIRST + COUNT);
}

/// What a started broker printed on stdout.
enum Announced {
    Listening(String),
    ListeningTls(String),
    Http(String),
}

/// A broker process [`spawn`] started, and the addresses it announced.
struct Spawned {
    child: Child,
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    stderr: Arc<Mutex<String>>,
}

/// The value following `flag` in `args`, if the flag is there.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// Starts `sediment serve` and waits for its `listening on` line (and its
/// `listening on HOST:PORT (tls)` line with `--tls-listen`, and its
/// `http on` line, unless HTTP is off). The HTTP port is `127.0.0.1:0`
/// unless `extra_args` has its own `--http`, so parallel tests never fight
/// over the default port. A `--listen` in `extra_args` replaces `listen`;
/// with `--listen off` only the TLS listener is announced, and it becomes
/// the broker's `addr`.
fn spawn(data_dir: &Path, listen: &str, extra_args: &[String]) -> Spawned {
    let http_flag = flag_value(extra_args, "--http");
    let http_on = http_flag.is_none_or(|v| v != "off");
    let default_http: &[&str] = if http_flag.is_none() {
        &["--http", "127.0.0.1:0"]
    } else {
        &[]
    };
    let listen_flag = flag_value(extra_args, "--listen");
    let plain_on = listen_flag.is_none_or(|v| v != "off");
    let default_listen: &[&str] = if listen_flag.is_none() {
        &["--listen", listen]
    } else {
        &[]
    };
    let tls_on = flag_value(extra_args, "--tls-listen").is_some_and(|v| v != "off");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sediment"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(default_listen)
        .args(default_http)
        .args(extra_args)
        .env("SEDIMENT_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the sediment binary");
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
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let addr = addr.trim();
                let announced = match addr.strip_suffix("(tls)") {
                    Some(tls) => Announced::ListeningTls(tls.trim().to_string()),
                    None => Announced::Listening(addr.to_string()),
                };
                let _ = tx.send(announced);
            } else if let Some(addr) = line.strip_prefix("http on ") {
                let _ = tx.send(Announced::Http(addr.trim().to_string()));
            }
        }
    });
    // The broker prints `listening on` (plaintext, then TLS), then `http on`.
    let mut addr = None;
    let mut tls_addr = None;
    let mut http_addr = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while (plain_on && addr.is_none())
        || (tls_on && tls_addr.is_none())
        || (http_on && http_addr.is_none())
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let waiting_for = if plain_on && addr.is_none() {
            "listening on"
        } else if tls_on && tls_addr.is_none() {
            "listening on HOST:PORT (tls)"
        } else {
            "http on"
        };
        match rx.recv_timeout(left) {
            Ok(Announced::Listening(a)) => {
                addr = Some(a.parse::<SocketAddr>().expect("listening address"))
            }
            Ok(Announced::ListeningTls(a)) => {
                tls_addr = Some(a.parse::<SocketAddr>().expect("TLS listening address"))
            }
            Ok(Announced::Http(a)) => {
                http_addr = Some(a.parse::<SocketAddr>().expect("http address"))
            }
            Err(_) => not_started(&mut child, &stderr, waiting_for),
        }
    }
    let addr = match (addr, tls_addr) {
        (Some(addr), _) => addr,
        (None, Some(tls)) => tls,
        (None, None) => not_started(&mut child, &stderr, "listening on"),
    };
    Spawned {
        child,
        addr,
        tls_addr,
        http_addr,
        stderr,
    }
}

/// Kills a broker that did not announce `what` and fails with its log.
fn not_started(child: &mut Child, stderr: &Mutex<String>, what: &str) -> ! {
    let _ = child.kill();
    let logs = stderr.lock().map(|s| s.clone()).unwrap_or_default();
    panic!("broker did not print `{what}` within 60 s; its log:\n{logs}");
}

/// Path of an external tool, or a panic that says how to install it.
pub fn require_tool(name: &str, install_hint: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{name}` is required by this test but is not installed: {install_hint}")
    })
}

/// The Python interpreter of the venv `scripts/test` creates, with
/// confluent-kafka installed.
pub fn python_with_confluent_kafka() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `scripts/test` (it creates target/venv and installs confluent-kafka), \
         or `python3 -m venv target/venv && target/venv/bin/pip install confluent-kafka`",
        python.display()
    );
    let ok = Command::new(&python)
        .args(["-c", "import confluent_kafka"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "confluent-kafka is not importable in {}: run `target/venv/bin/pip install confluent-kafka`",
        python.display()
    );
    python
}

/// What a child process left behind.
pub struct Finished {
    /// Its exit status, or `None` when it was killed at the deadline.
    pub status: Option<std::process::ExitStatus>,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Runs `command` with piped stdout/stderr, feeding it `stdin` (or none),
/// and kills it if it has not exited within `timeout`.
pub fn run_bounded(mut command: Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Finished {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", command.get_program()));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        // A thread, so a child that writes while we write cannot deadlock us.
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut pipe, &input);
        });
    }
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let stdout = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let stderr = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = err_pipe.read_to_string(&mut buf);
        buf
    });
    let status = wait_for_exit(&mut child, timeout);
    Finished {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// The last `max` bytes of `text` (client debug logs can be long).
pub fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Pause between two checks of a condition in [`wait_until`] and
/// [`wait_until_async`]: it paces the polling and never stands in for the
/// condition, so a slow machine only makes a wait take longer.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Waits until `done` observes what the test waits for; panics with
/// `what()` (say what was seen) once `within` has passed without it.
pub fn wait_until(within: Duration, mut done: impl FnMut() -> bool, what: impl Fn() -> String) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "not within {within:?}: {}",
            what()
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// [`wait_until`] for conditions checked by async code.
pub async fn wait_until_async<F>(
    within: Duration,
    mut done: impl FnMut() -> F,
    what: impl Fn() -> String,
) where
    F: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "not within {within:?}: {}",
            what()
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Waits for `child` to exit and returns its status, or `None` (the child
/// killed and reaped) if it is still running after `within`.
pub fn wait_for_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Runs the `sediment` binary as a client of `broker` (`--bootstrap`), with
/// stdin closed, and returns what it did.
pub fn sediment_cli(broker: &BrokerProcess, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sediment"))
        .arg("--bootstrap")
        .arg(broker.bootstrap())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the sediment binary")
}

/// The stdout of a command that succeeded; panics with its exit code,
/// stdout and stderr if it did not.
pub fn cli_stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The JSON a command that succeeded printed (`--output json`).
pub fn cli_json(output: &Output) -> serde_json::Value {
    let stdout = cli_stdout(output);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Every batch stored for `topic`'s partitions `0..partitions` under the
/// broker's data directory, as `sediment --output json log dump` prints it
/// (one JSON object per batch: offsets, compression, producer id, ...), in
/// partition then offset order; panics if a dump fails.
pub fn dumped_batches(
    broker: &BrokerProcess,
    topic: &str,
    partitions: i32,
) -> Vec<serde_json::Value> {
    let mut batches = Vec::new();
    for partition in 0..partitions {
        let dir = broker.data_dir.join(format!("{topic}-{partition}"));
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("read the partition directory").path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        for log in logs {
            let output = Command::new(env!("CARGO_BIN_EXE_sediment"))
                .args(["--output", "json", "log", "dump"])
                .arg(&log)
                .output()
                .expect("run sediment log dump");
            assert!(
                output.status.success(),
                "sediment log dump {}: {}",
                log.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            for line in String::from_utf8_lossy(&output.stdout).lines() {
                let batch: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", log.display()));
                batches.push(batch);
            }
        }
    }
    batches
}

/// The JSON a bounded helper process printed on success; panics with
/// `context()` if it was killed after `timeout`, failed, or printed
/// something else.
pub fn json_outcome<T: serde::de::DeserializeOwned>(
    status: Option<std::process::ExitStatus>,
    stdout: &[u8],
    timeout: Duration,
    context: impl Fn() -> String,
) -> T {
    match status {
        None => panic!("killed after {timeout:?}: {}", context()),
        Some(status) if !status.success() => panic!("failed ({status}): {}", context()),
        Some(_) => serde_json::from_slice(stdout).unwrap_or_else(|e| {
            panic!(
                "unexpected output ({e}): {:?}\n{}",
                String::from_utf8_lossy(&stdout[..stdout.len().min(2000)]),
                context()
            )
        }),
    }
}
