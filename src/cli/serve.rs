//! `sediment serve`: opens (and recovers) the data directory, runs the log's
//! maintenance (interval flushes, retention, recovery-point checkpoints) and,
//! on SIGTERM or Ctrl-C, shuts down cleanly so the next start skips recovery.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use sediment_broker::storage::log_manager::LogManager;
use sediment_broker::{FlushPolicy, LogConfig};

/// Flags of `sediment serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where partitions and metadata live.
    #[arg(long, default_value = "./sediment-data")]
    pub data_dir: PathBuf,
    /// When appends are made durable: `always` (ack after fdatasync) or `interval:MS`.
    #[arg(long, default_value = "always")]
    pub flush: FlushPolicy,
    /// Roll segments at this size.
    #[arg(long)]
    pub segment_bytes: Option<u64>,
    /// Delete sealed segments older than this (ms).
    #[arg(long)]
    pub retention_ms: Option<u64>,
    /// Keep at most about this many bytes per partition.
    #[arg(long)]
    pub retention_bytes: Option<u64>,
}

impl ServeArgs {
    fn log_config(&self) -> LogConfig {
        let mut config = LogConfig {
            flush: self.flush,
            ..LogConfig::default()
        };
        if let Some(bytes) = self.segment_bytes {
            config.segment_bytes = bytes;
        }
        if let Some(ms) = self.retention_ms {
            config.retention_ms = Some(Duration::from_millis(ms));
        }
        if self.retention_bytes.is_some() {
            config.retention_bytes = self.retention_bytes;
        }
        config
    }
}

/// Runs the broker until SIGTERM or Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let config = args.log_config();
    config.validate().map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let manager = Arc::new(
            LogManager::open(&args.data_dir, config.clone()).with_context(|| {
                format!("cannot open data directory {}", args.data_dir.display())
            })?,
        );
        tracing::info!(
            data_dir = %args.data_dir.display(),
            partitions = manager.partitions().len(),
            offline = manager.offline_partitions().len(),
            "data directory open"
        );
        let maintenance = tokio::spawn(maintain(Arc::clone(&manager), config.flush));
        shutdown_signal().await;
        maintenance.abort();
        let manager_for_close = Arc::clone(&manager);
        tokio::task::spawn_blocking(move || manager_for_close.shutdown())
            .await
            .context("shutdown task failed")?
            .context("clean shutdown failed; the next start will recover")?;
        tracing::info!("clean shutdown complete");
        Ok(ExitCode::SUCCESS)
    })
}

/// Interval flushes, retention every 5 minutes (Kafka's default check
/// interval) and recovery-point checkpoints every minute.
async fn maintain(manager: Arc<LogManager>, flush: FlushPolicy) {
    let tick = match flush {
        FlushPolicy::Interval(every) => every.min(Duration::from_secs(1)),
        FlushPolicy::Always => Duration::from_secs(1),
    };
    let mut ticker = tokio::time::interval(tick);
    let mut elapsed = Duration::ZERO;
    loop {
        ticker.tick().await;
        elapsed += tick;
        let manager = Arc::clone(&manager);
        let run_retention = elapsed.as_millis() % 300_000 < tick.as_millis();
        let run_checkpoint = elapsed.as_millis() % 60_000 < tick.as_millis();
        let work = tokio::task::spawn_blocking(move || {
            if matches!(flush, FlushPolicy::Interval(_)) {
                manager.flush_all();
            }
            if run_retention {
                manager.enforce_retention();
            }
            if run_checkpoint {
                if let Err(error) = manager.checkpoint_recovery_points() {
                    tracing::error!(error = %error, "cannot write the recovery-point checkpoint");
                }
            }
        });
        let _ = work.await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::error!(error = %error, "cannot listen for SIGTERM; stop with Ctrl-C");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
