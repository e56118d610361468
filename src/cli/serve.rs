//! `sediment serve`: the broker. Starts it (`Broker::start`: open and recover
//! the data directory, listen, start the background work), prints
//! `listening on HOST:PORT` once ready, then `http on HOST:PORT` when the
//! HTTP metrics port is on, and on SIGTERM or Ctrl-C stops it
//! (`RunningBroker::run_until`: stop accepting, finish in-flight requests,
//! flush, write the clean-shutdown marker so the next start skips recovery).
//!
//! Settings come from built-in defaults, then an optional TOML `--config`
//! file, then flags: a flag always wins.
//!
//! Output never stops the broker: the log goes to stderr through
//! [`LossyStderr`], which drops a line it cannot write (a full disk under a
//! redirected stderr, a closed pipe) instead of panicking, and a failed
//! `listening on` line is logged, not fatal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Deserialize;

use sediment_broker::security_config::{
    parse_listen, parse_principals, parse_sasl_mechanisms, TlsFlags,
};
use sediment_broker::{Broker, BrokerConfig, FlushPolicy, HttpListen};

/// Flags of `sediment serve`: the `--config` file, the log format, and every
/// setting of [`Settings`] (each overrides the file).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings (keys as the flags, with underscores).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The settings, as flags.
    #[command(flatten)]
    pub settings: Settings,
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

/// Declares every broker setting once: its flag and config-file key (the
/// field name), its type, its help text with its default, and how it sets
/// [`BrokerConfig`]. The defaults themselves are `BrokerConfig::default()`;
/// a test checks that every default stated here changes nothing when applied.
macro_rules! settings {
    ($(
        #[doc = $doc:literal]
        $([$($extra:tt)*])?
        $name:ident: $ty:ty => |$config:ident, $value:ident| $apply:expr;
    )*) => {
        /// Every setting of the broker, as flags and as `--config` file keys.
        #[derive(Debug, Default, Args, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Settings {
            $(
                #[doc = $doc]
                #[arg(long $(, $($extra)*)?)]
                pub $name: Option<$ty>,
            )*
        }

        impl Settings {
            /// Sets every setting this layer names; the others keep their values.
            fn apply_to(self, config: &mut Staged) -> anyhow::Result<()> {
                $(
                    if let Some($value) = self.$name {
                        let $config = &mut *config;
                        $apply;
                    }
                )*
                Ok(())
            }
        }
    };
}

settings! {
    /// Where partitions and metadata live [default: ./sediment-data].
    data_dir: PathBuf => |c, v| c.config.data_dir = v;
    /// Address of the plaintext listener, or `off` to serve TLS only; port 0 picks a free one [default: 127.0.0.1:9092].
    listen: String => |c, v| c.config.listen = parse_listen(&v).map_err(|e| anyhow::anyhow!("--listen: {e}"))?;
    /// Address of the TLS listener (needs --tls-cert and --tls-key), or `off`; port 0 picks a free one [default: off].
    tls_listen: String => |c, v| c.tls.listen = parse_listen(&v).map_err(|e| anyhow::anyhow!("--tls-listen: {e}"))?;
    /// PEM certificate chain of the TLS listener [default: none].
    tls_cert: PathBuf => |c, v| c.tls.cert = Some(v);
    /// PEM private key of the TLS listener's certificate [default: none].
    tls_key: PathBuf => |c, v| c.tls.key = Some(v);
    /// PEM CA certificates for mutual TLS: clients must present a certificate they signed, and its subject is their principal [default: none].
    tls_client_ca: PathBuf => |c, v| c.tls.client_ca = Some(v);
    /// SASL mechanisms every listener requires, comma-separated (SCRAM-SHA-512,SCRAM-SHA-256,PLAIN), or `off` [default: off].
    sasl: String => |c, v| c.config.security.sasl = parse_sasl_mechanisms(&v).map_err(|e| anyhow::anyhow!("--sasl: {e}"))?;
    /// Authorize every request against ACLs: deny unless an ACL allows it; `--authorizer` alone means true [default: false].
    [num_args = 0..=1, default_missing_value = "true"]
    authorizer: bool => |c, v| c.config.security.authorizer = v;
    /// Principals that bypass ACLs, comma-separated (User:admin,User:ops), or `none` [default: none].
    super_users: String => |c, v| c.config.security.super_users = parse_principals(&v).map_err(|e| anyhow::anyhow!("--super-users: {e}"))?;
    /// HTTP address of the read-only GET /metrics, or `off`; port 0 picks a free one. If the default address is taken the broker warns and runs without HTTP; an address given here must bind [default: 127.0.0.1:9644].
    http: String => |c, v| c.config.http = v.parse::<HttpListen>().map_err(anyhow::Error::msg)?;
    /// `always` (acknowledge after fdatasync) or `interval:MS` [default: always].
    flush: String => |c, v| c.config.log.flush = v.parse::<FlushPolicy>().map_err(anyhow::Error::msg)?;
    /// Roll segments at this many bytes [default: 1073741824].
    segment_bytes: u64 => |c, v| c.config.log.segment_bytes = v;
    /// Roll a segment this many ms after it was opened; -1 never [default: -1].
    [allow_hyphen_values = true]
    segment_ms: i64 => |c, v| c.config.log.segment_ms = u64::try_from(v).ok().map(Duration::from_millis);
    /// Delete sealed segments whose newest record is older than this many ms; -1 keeps forever [default: 604800000].
    [allow_hyphen_values = true]
    retention_ms: i64 => |c, v| c.config.log.retention_ms = u64::try_from(v).ok().map(Duration::from_millis);
    /// Keep each partition at about this many bytes; -1 is unlimited [default: -1].
    [allow_hyphen_values = true]
    retention_bytes: i64 => |c, v| c.config.log.retention_bytes = u64::try_from(v).ok();
    /// Sealed segments held open (mapped) at once across all partitions, least recently read closed first [default: 1024].
    max_open_segments: usize => |c, v| c.config.log.max_open_segments = v;
    /// Durable bytes of a partition's active segment kept in the page cache behind its end; older pages are dropped after each sync so appends reuse them; -1 keeps all [default: -1].
    [allow_hyphen_values = true]
    page_cache_window: i64 => |c, v| c.config.log.page_cache_window = u64::try_from(v).ok();
    /// Largest record batch accepted, in bytes [default: 1048576].
    message_max_bytes: usize => |c, v| c.config.message_max_bytes = v;
    /// Largest request frame accepted, in bytes [default: 104857600].
    max_request_bytes: usize => |c, v| c.config.max_request_bytes = v;
    /// Largest request frame of any API but Produce, in bytes [default: 1048576].
    max_control_request_bytes: usize => |c, v| c.config.max_control_request_bytes = v;
    /// Concurrent connections; at the cap a newcomer takes the slot of the oldest connection that has sent no request [default: 1024].
    max_connections: usize => |c, v| c.config.max_connections = v;
    /// Concurrent connections from one IP address [default: 1024].
    max_connections_per_ip: usize => |c, v| c.config.max_connections_per_ip = v;
    /// A new connection must send its first whole request within this many ms [default: 10000].
    connection_setup_timeout_ms: u64 => |c, v| c.config.connection_setup_timeout = Duration::from_millis(v);
    /// Create unknown topics on Metadata and Produce [default: true].
    auto_create_topics: bool => |c, v| c.config.auto_create_topics = v;
    /// Partitions of auto-created topics [default: 1].
    default_partitions: i32 => |c, v| c.config.default_partitions = v;
    /// Most partitions one topic may have [default: 1000].
    max_partitions_per_topic: i32 => |c, v| c.config.max_partitions_per_topic = v;
    /// Close connections idle this many ms [default: 600000].
    idle_timeout_ms: u64 => |c, v| c.config.idle_timeout = Duration::from_millis(v);
    /// A started request must arrive whole within this many ms [default: 30000].
    request_read_timeout_ms: u64 => |c, v| c.config.request_read_timeout = Duration::from_millis(v);
    /// Response bytes a connection may have waiting to be written [default: 67108864].
    max_unsent_response_bytes: usize => |c, v| c.config.max_unsent_response_bytes = v;
    /// Requests a connection may have in flight [default: 64].
    max_in_flight_requests: usize => |c, v| c.config.max_in_flight_requests = v;
    /// Most record bytes in one Fetch response [default: 52428800].
    fetch_max_bytes: usize => |c, v| c.config.fetch_max_bytes = v;
    /// How often the log cleaner looks for compacted partitions to clean, in ms [default: 15000].
    log_cleaner_backoff_ms: u64 => |c, v| c.config.log_cleaner_backoff = Duration::from_millis(v);
    /// Forget an idempotent producer idle this many ms in a partition [default: 86400000].
    producer_id_expiration_ms: i64 => |c, v| c.config.producer_id_expiration_ms = v;
    /// Longest transaction.timeout.ms a transactional producer may ask for, in ms [default: 900000].
    transaction_max_timeout_ms: i32 => |c, v| c.config.transaction_max_timeout_ms = v;
    /// How often open transactions past their timeout are aborted, in ms [default: 1000].
    transaction_check_interval_ms: u64 => |c, v| c.config.transaction_check_interval = Duration::from_millis(v);
    /// Host advertised to clients in Metadata [default: the listen address].
    advertised_host: String => |c, v| c.config.advertised_host = Some(v);
    /// This broker's id in Metadata [default: 0].
    broker_id: i32 => |c, v| c.config.broker_id = v;
    /// Cluster id reported in Metadata [default: sediment].
    cluster_id: String => |c, v| c.config.cluster_id = v;
    /// How long a new group waits for more members before its first generation, in ms [default: 100].
    group_initial_rebalance_delay_ms: u64 => |c, v| c.config.group.initial_rebalance_delay_ms = v;
    /// Shortest session timeout a group member may ask for, in ms [default: 1000].
    group_min_session_timeout_ms: i32 => |c, v| c.config.group.min_session_timeout_ms = v;
    /// Longest session timeout a group member may ask for, in ms [default: 1800000].
    group_max_session_timeout_ms: i32 => |c, v| c.config.group.max_session_timeout_ms = v;
    /// Most members in one group [default: 1000].
    group_max_members: usize => |c, v| c.config.group.max_members = v;
}

fn load_file(path: &Path) -> anyhow::Result<Settings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

/// The configuration while layers are applied: the TLS listener's flags are
/// assembled once every layer is in (the file may name the certificate and
/// a flag the address).
#[derive(Default)]
struct Staged {
    config: BrokerConfig,
    tls: TlsFlags,
}

/// Defaults, then the file, then the flags (each layer overrides the one before).
fn broker_config(args: ServeArgs) -> anyhow::Result<BrokerConfig> {
    let mut staged = Staged::default();
    if let Some(path) = &args.config {
        load_file(path)?.apply_to(&mut staged)?;
    }
    args.settings.apply_to(&mut staged)?;
    let mut config = staged.config;
    config.security.tls = staged.tls.assemble().map_err(anyhow::Error::msg)?;
    config.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

/// The broker's stderr for its log: a write that fails (no space, a closed
/// pipe) drops that line and reports success, so logging can neither stop
/// nor crash the broker (tracing-subscriber would otherwise report the failure
/// with `eprintln!`, which panics on the same stderr).
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().lock().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().lock().flush();
        Ok(())
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEDIMENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(|| LossyStderr)
        .log_internal_errors(false)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs the broker until SIGTERM or Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let log_format = args.log_format;
    let config = broker_config(args)?;
    init_logging(log_format);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let flush = config.log.flush;
        let running = Broker::start(config).await?;
        // Listen for SIGTERM before announcing the address: a supervisor may
        // stop the broker the moment it reads `listening on`.
        let stop = shutdown_signal();
        let broker = running.broker();
        let listeners: Vec<String> = running
            .local_addr()
            .map(|addr| addr.to_string())
            .into_iter()
            .chain(running.tls_addr().map(|addr| format!("{addr} (tls)")))
            .collect();
        tracing::info!(
            data_dir = %data_dir.display(),
            listeners = %listeners.join(", "),
            partitions = broker.logs().partitions().len(),
            offline = broker.logs().offline_partitions().len(),
            flush = %flush,
            sasl = %broker.config().security.sasl.iter().map(|m| m.name()).collect::<Vec<_>>().join(","),
            authorizer = broker.config().security.authorizer,
            "broker ready"
        );
        // A full disk under a redirected stdout must not stop a broker that
        // is ready to serve: the address is in the log line above as well.
        for listener in &listeners {
            if let Err(error) = super::output::try_emit(format_args!("listening on {listener}")) {
                tracing::warn!(error = %error, addr = %listener, "cannot print the listening address to stdout");
            }
        }
        if let Some(http) = running.http_addr() {
            tracing::info!(addr = %http, "serving GET /metrics over HTTP");
            if let Err(error) = super::output::try_emit(format_args!("http on {http}")) {
                tracing::warn!(error = %error, addr = %http, "cannot print the HTTP address to stdout");
            }
        }
        running.run_until(stop).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// A future that completes on SIGTERM or Ctrl-C (SIGINT). Both handlers are
/// installed when this is called, not when the future is first polled, so a
/// signal arriving in between stops the broker cleanly instead of killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        match (term, interrupt) {
            (Ok(mut term), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(error = %error, "cannot listen for SIGTERM or SIGINT; stop with Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
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
        let config = broker_config(args).unwrap();
        assert_eq!(
            config.log.flush,
            FlushPolicy::Interval(Duration::from_millis(5))
        );
        assert_eq!(config.log.retention_ms, Some(Duration::from_secs(3600)));
        assert_eq!(config.log.retention_bytes, None);
        assert_eq!(config.group.max_members, 7);
        assert_eq!(
            config.listen,
            Some("127.0.0.1:7000".parse::<std::net::SocketAddr>().unwrap())
        );
    }

    #[test]
    fn given_http_flag_or_file_key_then_off_an_address_or_a_clear_error() {
        let args = Harness::parse_from(["serve", "--http", "off"]).serve;
        assert_eq!(broker_config(args).unwrap().http, HttpListen::Off);
        let args = Harness::parse_from(["serve", "--http", "127.0.0.1:0"]).serve;
        assert_eq!(
            broker_config(args).unwrap().http,
            HttpListen::Explicit("127.0.0.1:0".parse().unwrap())
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sediment.toml");
        std::fs::write(&file, "http = \"127.0.0.1:9700\"\n").unwrap();
        let args = Harness::parse_from(["serve", "--config", file.to_str().unwrap()]).serve;
        assert_eq!(
            broker_config(args).unwrap().http,
            HttpListen::Explicit("127.0.0.1:9700".parse().unwrap())
        );
        let args = Harness::parse_from(["serve", "--http", "nine"]).serve;
        let error = broker_config(args).unwrap_err().to_string();
        assert!(
            error.contains("HOST:PORT") && error.contains("nine"),
            "{error}"
        );
    }

    #[test]
    fn given_unknown_key_in_config_file_then_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sediment.toml");
        std::fs::write(&file, "retention_hours = 3\n").unwrap();
        let args = Harness::parse_from(["serve", "--config", file.to_str().unwrap()]).serve;
        assert!(broker_config(args).is_err());
    }

    #[test]
    fn every_setting_has_a_flag_a_file_key_and_a_true_stated_default() {
        use clap::CommandFactory;
        let command = Harness::command();
        let mut checked = 0;
        for arg in command.get_arguments() {
            let name = arg.get_id().as_str();
            if matches!(name, "config" | "log_format" | "help") {
                continue;
            }
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let stated = help
                .rsplit_once("[default: ")
                .and_then(|(_, rest)| rest.strip_suffix(']'))
                .unwrap_or_else(|| panic!("--{name} states no default: {help}"));
            if stated == "the listen address" || stated == "none" && !name.starts_with("super") {
                continue;
            }
            // The stated default, given as a flag and as a file key, changes nothing.
            // An address given for `http` is explicit (it must bind), unlike
            // the built-in default: the same address, a different promise.
            let same_as_default = |mut config: BrokerConfig| {
                if name == "http" {
                    assert_eq!(
                        config.http,
                        HttpListen::Explicit(sediment_broker::DEFAULT_HTTP)
                    );
                    config.http = BrokerConfig::default().http;
                }
                config
            };
            let flag = format!("--{}", name.replace('_', "-"));
            let args = Harness::parse_from(["serve", flag.as_str(), stated]).serve;
            assert_eq!(
                same_as_default(broker_config(args).unwrap()),
                BrokerConfig::default(),
                "--{name}"
            );
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("sediment.toml");
            let value = match stated.parse::<i64>() {
                Ok(_) => stated.to_string(),
                Err(_) if stated == "true" || stated == "false" => stated.to_string(),
                Err(_) => format!("{stated:?}"),
            };
            std::fs::write(&file, format!("{name} = {value}\n")).unwrap();
            let args = Harness::parse_from(["serve", "--config", file.to_str().unwrap()]).serve;
            assert_eq!(
                same_as_default(broker_config(args).unwrap()),
                BrokerConfig::default(),
                "{name} in a file"
            );
            checked += 1;
        }
        assert!(checked >= 25, "only {checked} settings checked");
    }
}
