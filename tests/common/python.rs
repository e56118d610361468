//! The confluent-kafka scripts under `tests/python/`, run with the venv's
//! Python ([`super::python_with_confluent_kafka`]): one-shot scripts that
//! print one JSON document ([`run_script`]), and long-running ones that
//! report JSON events line by line and take commands on stdin
//! ([`ScriptProcess`]).
#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    python_with_confluent_kafka, run_bounded, tail, wait_for_exit, wait_until, BrokerProcess,
    Finished,
};

/// Longest a one-shot script may run before it is killed and the test fails.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Path of `tests/python/<script>`.
pub fn script_path(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script)
}

/// Runs `tests/python/<script> BOOTSTRAP args…` with the venv's Python and
/// parses the JSON it prints; panics with its stderr and the broker's log if
/// it fails or runs longer than [`SCRIPT_TIMEOUT`].
pub fn run_script<T: DeserializeOwned>(broker: &BrokerProcess, script: &str, args: &[&str]) -> T {
    let python = python_with_confluent_kafka();
    let mut command = Command::new(&python);
    command
        .arg(script_path(script))
        .arg(broker.bootstrap())
        .args(args);
    let Finished {
        status,
        stdout,
        stderr,
    } = run_bounded(command, None, SCRIPT_TIMEOUT);
    let context = || {
        format!(
            "{script} {args:?}\nscript stderr:\n{}\nbroker log:\n{}",
            tail(&stderr, 4000),
            broker.logs()
        )
    };
    super::json_outcome(status, &stdout, SCRIPT_TIMEOUT, context)
}

/// A running `tests/python/<script>` whose stdout is JSON, one event per
/// line (a line that is not JSON is kept as `{"event": "unparsed"}`), with
/// its stdin open for commands. Killed when dropped.
pub struct ScriptProcess {
    /// Names it in failure messages.
    pub name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    events: Arc<Mutex<Vec<Value>>>,
    stdout_closed: Arc<AtomicBool>,
    stderr: Arc<Mutex<String>>,
}

impl ScriptProcess {
    /// Starts `tests/python/<script> args…` (the caller passes the
    /// bootstrap address among `args` if the script wants one).
    pub fn start(name: &str, script: &str, args: &[String]) -> Self {
        let python = python_with_confluent_kafka();
        let mut child = Command::new(python)
            .arg(script_path(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {script}: {e}"));
        let stdin = child.stdin.take();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let stdout_closed = Arc::new(AtomicBool::new(false));
        let closed = Arc::clone(&stdout_closed);
        let stdout = child.stdout.take().expect("stdout piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "event": "unparsed", "line": line }));
                if let Ok(mut events) = sink.lock() {
                    events.push(event);
                }
            }
            closed.store(true, Ordering::SeqCst);
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut err_pipe = child.stderr.take().expect("stderr piped");
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut text) = sink.lock() {
                    text.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Self {
            name: name.to_string(),
            child: Some(child),
            stdin,
            events,
            stdout_closed,
            stderr,
        }
    }

    /// Every event reported so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The events named `event` reported so far.
    pub fn events_named(&self, event: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == event)
            .collect()
    }

    /// Waits until an event named `event` for which `matches` holds has been
    /// reported and returns the first one; panics with `context()` and this
    /// process's report if none comes within `within`, or if its stdout
    /// closes first (it exited).
    pub fn wait_for_event(
        &self,
        within: Duration,
        event: &str,
        matches: impl Fn(&Value) -> bool,
        context: impl Fn() -> String,
    ) -> Value {
        let mut found = None;
        wait_until(
            within,
            || {
                // Read "closed" first: the events seen after it are complete.
                let closed = self.stdout_closed.load(Ordering::SeqCst);
                found = self
                    .events()
                    .into_iter()
                    .find(|e| e["event"] == event && matches(e));
                assert!(
                    found.is_some() || !closed,
                    "{} closed its stdout (exited) without reporting `{event}`\n{}\n{}",
                    self.name,
                    self.report(),
                    context()
                );
                found.is_some()
            },
            || {
                format!(
                    "{} did not report `{event}`\n{}\n{}",
                    self.name,
                    self.report(),
                    context()
                )
            },
        );
        found.expect("found when the wait ends")
    }

    /// Writes one command line to its stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("write to {}: {e}\n{}", self.name, self.report()));
    }

    /// Closes its stdin and waits up to `within` for it to exit; its status,
    /// or `None` if it had to be killed.
    pub fn close_and_wait(&mut self, within: Duration) -> Option<ExitStatus> {
        drop(self.stdin.take());
        let mut child = self.child.take()?;
        wait_for_exit(&mut child, within)
    }

    /// SIGKILL, then wait for the process.
    pub fn kill9(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its last events and stderr, for failure messages.
    pub fn report(&self) -> String {
        let events = self.events();
        let lines: Vec<String> = events[events.len().saturating_sub(40)..]
            .iter()
            .map(Value::to_string)
            .collect();
        format!(
            "{}: {} events, the last ones:\n  {}\nstderr:\n{}",
            self.name,
            events.len(),
            lines.join("\n  "),
            tail(
                &self.stderr.lock().map(|s| s.clone()).unwrap_or_default(),
                3000
            )
        )
    }
}

impl Drop for ScriptProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
