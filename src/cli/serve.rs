//! `sediment serve`: the broker. Opens (and recovers) the data directory,
//! listens, prints `listening on HOST:PORT` once ready, runs the log's
//! maintenance (interval flushes, retention, recovery-point checkpoints), and
//! on SIGTERM or Ctrl-C stops accepting, finishes in-flight requests, flushes
//! and writes the clean-shutdown marker so the next start skips recovery.
//!
//! Settings come from built-in defaults, then an optional TOML `--config`
//! file, then flags: a flag always wins.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Deserialize;

use sediment_broker::server::Server;
use sediment_broker::{Broker, BrokerConfig, FlushPolicy};

/// Flags of `sediment serve`. Each overrides the `--config` file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where partitions and metadata live [default: ./sediment-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free one [default: 127.0.0.1:9092].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// `always` (acknowledge after fdatasync, the default) or `interval:MS`.
    #[arg(long)]
    pub flush: Option<FlushPolicy>,
    /// TOML file with any of the settings below (keys as the flags, with underscores).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Roll segments at this many bytes [default: 1073741824].
    #[arg(long)]
    pub segment_bytes: Option<u64>,
    /// Delete sealed segments whose newest record is older than this; -1 keeps forever [default: 604800000].
    #[arg(long, allow_hyphen_values = true)]
    pub retention_ms: Option<i64>,
    /// Keep each partition at about this many bytes; -1 is unlimited [default: -1].
    #[arg(long, allow_hyphen_values = true)]
    pub retention_bytes: Option<i64>,
    /// Largest record batch accepted [default: 1048576].
    #[arg(long)]
    pub message_max_bytes: Option<usize>,
    /// Largest request frame accepted [default: 104857600].
    #[arg(long)]
    pub max_request_bytes: Option<usize>,
    /// Concurrent connections [default: 1024].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Create unknown topics on Metadata and Produce [default: true].
    #[arg(long)]
    pub auto_create_topics: Option<bool>,
    /// Partitions of auto-created topics [default: 1].
    #[arg(long)]
    pub default_partitions: Option<i32>,
    /// Close connections idle this long, in ms [default: 600000].
    #[arg(long)]
    pub idle_timeout_ms: Option<u64>,
    /// A started request must arrive whole within this many ms [default: 30000].
    #[arg(long)]
    pub request_read_timeout_ms: Option<u64>,
    /// Host advertised to clients in Metadata [default: the listen address].
    #[arg(long)]
    pub advertised_host: Option<String>,
    /// How long a new group waits for more members before its first generation, in ms [default: 100].
    #[arg(long)]
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// Shortest session timeout a group member may ask for, in ms [default: 1000].
    #[arg(long)]
    pub group_min_session_timeout_ms: Option<i32>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The `--config` file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    flush: Option<String>,
    segment_bytes: Option<u64>,
    segment_ms: Option<u64>,
    retention_ms: Option<i64>,
    retention_bytes: Option<i64>,
    message_max_bytes: Option<usize>,
    max_request_bytes: Option<usize>,
    max_connections: Option<usize>,
    auto_create_topics: Option<bool>,
    default_partitions: Option<i32>,
    idle_timeout_ms: Option<u64>,
    request_read_timeout_ms: Option<u64>,
    max_unsent_response_bytes: Option<usize>,
    max_in_flight_requests: Option<usize>,
    fetch_max_bytes: Option<usize>,
    advertised_host: Option<String>,
    broker_id: Option<i32>,
    cluster_id: Option<String>,
    max_partitions_per_topic: Option<i32>,
    max_control_request_bytes: Option<usize>,
    group_initial_rebalance_delay_ms: Option<u64>,
    group_min_session_timeout_ms: Option<i32>,
    group_max_session_timeout_ms: Option<i32>,
    group_max_members: Option<usize>,
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

fn retention_ms(ms: i64) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

fn retention_bytes(bytes: i64) -> Option<u64> {
    u64::try_from(bytes).ok()
}

/// Sets every setting `file` names; the others keep their values.
fn apply(config: &mut BrokerConfig, file: FileConfig) -> anyhow::Result<()> {
    macro_rules! set {
        ($target:expr, $value:expr) => {
            if let Some(value) = $value {
                $target = value;
            }
        };
    }
    set!(config.data_dir, file.data_dir);
    set!(config.listen, file.listen);
    if let Some(flush) = &file.flush {
        config.log.flush = flush.parse().map_err(anyhow::Error::msg)?;
    }
    set!(config.log.segment_bytes, file.segment_bytes);
    if let Some(ms) = file.segment_ms {
        config.log.segment_ms = Some(Duration::from_millis(ms));
    }
    set!(config.log.retention_ms, file.retention_ms.map(retention_ms));
    set!(
        config.log.retention_bytes,
        file.retention_bytes.map(retention_bytes)
    );
    set!(config.message_max_bytes, file.message_max_bytes);
    set!(config.max_request_bytes, file.max_request_bytes);
    set!(config.max_connections, file.max_connections);
    set!(config.auto_create_topics, file.auto_create_topics);
    set!(config.default_partitions, file.default_partitions);
    set!(
        config.idle_timeout,
        file.idle_timeout_ms.map(Duration::from_millis)
    );
    set!(
        config.request_read_timeout,
        file.request_read_timeout_ms.map(Duration::from_millis)
    );
    set!(
        config.max_unsent_response_bytes,
        file.max_unsent_response_bytes
    );
    set!(config.max_in_flight_requests, file.max_in_flight_requests);
    set!(config.fetch_max_bytes, file.fetch_max_bytes);
    if file.advertised_host.is_some() {
        config.advertised_host = file.advertised_host;
    }
    set!(config.broker_id, file.broker_id);
    set!(config.cluster_id, file.cluster_id);
    set!(
        config.max_partitions_per_topic,
        file.max_partitions_per_topic
    );
    set!(
        config.max_control_request_bytes,
        file.max_control_request_bytes
    );
    set!(
        config.group.initial_rebalance_delay_ms,
        file.group_initial_rebalance_delay_ms
    );
    set!(
        config.group.min_session_timeout_ms,
        file.group_min_session_timeout_ms
    );
    set!(
        config.group.max_session_timeout_ms,
        file.group_max_session_timeout_ms
    );
    set!(config.group.max_members, file.group_max_members);
    Ok(())
}

impl ServeArgs {
    /// The flags as one more configuration layer.
    fn overrides(&self) -> FileConfig {
        FileConfig {
            data_dir: self.data_dir.clone(),
            listen: self.listen,
            flush: self.flush.map(|f| f.to_string()),
            segment_bytes: self.segment_bytes,
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
            message_max_bytes: self.message_max_bytes,
            max_request_bytes: self.max_request_bytes,
            max_connections: self.max_connections,
            auto_create_topics: self.auto_create_topics,
            default_partitions: self.default_partitions,
            idle_timeout_ms: self.idle_timeout_ms,
            request_read_timeout_ms: self.request_read_timeout_ms,
            advertised_host: self.advertised_host.clone(),
            group_initial_rebalance_delay_ms: self.group_initial_rebalance_delay_ms,
            group_min_session_timeout_ms: self.group_min_session_timeout_ms,
            ..FileConfig::default()
        }
    }
}

/// Defaults, then the file, then the flags (each layer overrides the one before).
fn broker_config(args: &ServeArgs) -> anyhow::Result<BrokerConfig> {
    let file = match &args.config {
        Some(path) => load_file(path)?,
        None => FileConfig::default(),
    };
    let mut config = BrokerConfig::default();
    apply(&mut config, file)?;
    apply(&mut config, args.overrides())?;
    config.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEDIMENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs the broker until SIGTERM or Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = broker_config(&args)?;
    init_logging(args.log_format);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let flush = config.log.flush;
        let broker = Arc::new(
            tokio::task::spawn_blocking(move || Broker::open(config))
                .await
                .context("startup task failed")?
                .with_context(|| format!("cannot open data directory {}", data_dir.display()))?,
        );
        let server = Server::bind(Arc::clone(&broker))
            .await
            .with_context(|| format!("cannot listen on {}", broker.config().listen))?;
        let local = server
            .local_addr()
            .context("cannot read the bound address")?;
        tracing::info!(
            data_dir = %data_dir.display(),
            partitions = broker.logs().partitions().len(),
            offline = broker.logs().offline_partitions().len(),
            flush = %flush,
            "broker ready"
        );
        outln!("listening on {local}");

        let maintenance = tokio::spawn(maintain(Arc::clone(&broker), flush));
        server.run(shutdown_signal()).await;
        maintenance.abort();
        let closing = Arc::clone(&broker);
        tokio::task::spawn_blocking(move || closing.shutdown())
            .await
            .context("shutdown task failed")?
            .context("clean shutdown failed; the next start will recover")?;
        tracing::info!("clean shutdown complete");
        Ok(ExitCode::SUCCESS)
    })
}

/// Interval flushes, retention every 5 minutes (Kafka's default check
/// interval) and recovery-point checkpoints every minute.
async fn maintain(broker: Arc<Broker>, flush: FlushPolicy) {
    let tick = match flush {
        FlushPolicy::Interval(every) => every.min(Duration::from_secs(1)),
        FlushPolicy::Always => Duration::from_secs(1),
    };
    let mut ticker = tokio::time::interval(tick);
    let mut last_retention = tokio::time::Instant::now();
    let mut last_checkpoint = tokio::time::Instant::now();
    loop {
        ticker.tick().await;
        let run_retention = last_retention.elapsed() >= Duration::from_secs(300);
        let run_checkpoint = last_checkpoint.elapsed() >= Duration::from_secs(60);
        if run_retention {
            last_retention = tokio::time::Instant::now();
        }
        if run_checkpoint {
            last_checkpoint = tokio::time::Instant::now();
        }
        let broker = Arc::clone(&broker);
        let work = tokio::task::spawn_blocking(move || {
            if matches!(flush, FlushPolicy::Interval(_)) {
                broker.logs().flush_all();
            }
            if run_retention {
                broker.logs().enforce_retention();
            }
            if run_checkpoint {
                if let Err(error) = broker.logs().checkpoint_recovery_points() {
                    tracing::error!(error = %error, "cannot write the recovery-point checkpoint");
                }
            }
        });
        let _ = work.await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Harness {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn given_config_file_and_flags_then_flags_win_and_file_fills_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sediment.toml");
        std::fs::write(
            &file,
            "flush = \"always\"\nretention_ms = 3600000\ngroup_max_members = 7\nlisten = \"127.0.0.1:7000\"\n",
        )
        .unwrap();
        let args = Harness::parse_from([
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--flush",
            "interval:5",
            "--retention-bytes",
            "-1",
        ])
        .serve;
        let config = broker_config(&args).unwrap();
        assert_eq!(
            config.log.flush,
            FlushPolicy::Interval(Duration::from_millis(5))
        );
        assert_eq!(config.log.retention_ms, Some(Duration::from_secs(3600)));
        assert_eq!(config.log.retention_bytes, None);
        assert_eq!(config.group.max_members, 7);
        assert_eq!(
            config.listen,
            "127.0.0.1:7000".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn given_unknown_key_in_config_file_then_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sediment.toml");
        std::fs::write(&file, "retention_hours = 3\n").unwrap();
        let args = Harness::parse_from(["serve", "--config", file.to_str().unwrap()]).serve;
        assert!(broker_config(&args).is_err());
    }
}
