//! `sediment window`: a windowed-aggregation job (DESIGN §6, "wagg-1") over
//! JSON events `{"key": str, "ts": int ms, "value": number}`, writing each
//! closed window as `{"kind","key","start","end","count","sum","min","max"}`
//! keyed by the group key. SIGTERM or Ctrl-C checkpoints and exits 0.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use sediment_stream::job::{json_extractor, JobConfig, JobStats, WindowJob};
use sediment_stream::Window;

use super::Target;

/// Flags of `sediment window`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["tumbling", "hopping", "session"])))]
pub struct WindowArgs {
    /// Input topic.
    #[arg(long)]
    pub input: String,
    /// Topic the closed windows are written to.
    #[arg(long, value_name = "TOPIC")]
    pub output_topic: String,
    /// Consumer group of the job (instances in one group split the input partitions).
    #[arg(long)]
    pub group: String,
    /// Tumbling windows of this many ms.
    #[arg(long, value_name = "MS")]
    pub tumbling: Option<i64>,
    /// Hopping windows: SIZE:ADVANCE in ms.
    #[arg(long, value_name = "SIZE:ADVANCE")]
    pub hopping: Option<String>,
    /// Session windows with this gap in ms.
    #[arg(long, value_name = "GAP")]
    pub session: Option<i64>,
    /// Allowed lateness in ms.
    #[arg(long, default_value_t = 0)]
    pub grace: i64,
    /// Topic for events that count in no window (too late or malformed).
    #[arg(long, value_name = "TOPIC")]
    pub late_topic: Option<String>,
    /// Checkpoint interval in ms.
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_ms: u64,
    /// Group session timeout in ms: how soon a crashed job's partitions move to another instance.
    #[arg(long, default_value_t = 10_000)]
    pub session_timeout_ms: u64,
    /// Exactly-once: each checkpoint's outputs, state and input offsets in one transaction
    /// (read the output with read_committed). Without it, at-least-once.
    #[arg(long)]
    pub exactly_once: bool,
    /// Advance the watermark of a partition with no event for this many ms with the wall
    /// clock (minus grace), so a quiet input's last windows close. Off by default: the
    /// result then depends on timing, not only on the input order.
    #[arg(long, value_name = "MS")]
    pub idle_timeout_ms: Option<u64>,
}

impl WindowArgs {
    fn window(&self) -> anyhow::Result<Window> {
        let window = match (&self.tumbling, &self.hopping, &self.session) {
            (Some(size), None, None) => Window::tumbling(*size),
            (None, Some(spec), None) => {
                let (size, advance) = spec
                    .split_once(':')
                    .with_context(|| format!("--hopping takes SIZE:ADVANCE in ms, got `{spec}`"))?;
                let size = size
                    .parse()
                    .with_context(|| format!("--hopping size `{size}` is not a number"))?;
                let advance = advance
                    .parse()
                    .with_context(|| format!("--hopping advance `{advance}` is not a number"))?;
                Window::hopping(size, advance)
            }
            (None, None, Some(gap)) => Window::session(*gap),
            _ => bail!("give exactly one of --tumbling, --hopping, --session"),
        };
        window.map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Runs the job until SIGTERM or Ctrl-C.
pub async fn run(args: WindowArgs, target: Target) -> anyhow::Result<ExitCode> {
    let window = args.window()?;
    if args.grace < 0 {
        bail!("--grace must be at least 0, got {}", args.grace);
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SEDIMENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let client = target.connect().await?;
    let config = JobConfig {
        inputs: vec![args.input.clone()],
        output: args.output_topic.clone(),
        late_output: args.late_topic.clone(),
        group: args.group.clone(),
        window,
        grace: args.grace,
        checkpoint_interval: Duration::from_millis(args.checkpoint_ms.max(1)),
        session_timeout: Duration::from_millis(args.session_timeout_ms.max(1000)),
        exactly_once: args.exactly_once,
        idle_timeout: args
            .idle_timeout_ms
            .map(|ms| Duration::from_millis(ms.max(1))),
    };
    let job = WindowJob::start(&client, config, json_extractor())
        .await
        .context("cannot start the window job")?;
    let terminal = std::io::stderr().is_terminal();
    let mut last_events = 0u64;
    let stats = job
        .run(stop_signal(), |stats: &JobStats| {
            if terminal {
                let lag = stats
                    .watermark_lag_ms
                    .iter()
                    .map(|(tp, lag)| format!("{tp}:{lag}ms"))
                    .collect::<Vec<_>>()
                    .join(" ");
                eprint!(
                    "\r{} events/s, {} open windows, {} emitted, {} late, watermark lag {lag}   ",
                    stats.events - last_events,
                    stats.open_windows,
                    stats.emitted,
                    stats.late
                );
                last_events = stats.events;
            }
        })
        .await
        .context("the window job stopped")?;
    if terminal {
        eprintln!();
    }
    tracing::info!(
        events = stats.events,
        emitted = stats.emitted,
        late = stats.late,
        "window job stopped"
    );
    Ok(ExitCode::SUCCESS)
}

async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
