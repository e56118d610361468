//! The command line: global options and one module per command group.

/// `println!` that survives a closed stdout pipe (see [`output::emit`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::emit(format_args!($($arg)*))
    };
}

mod acl;
mod bench;
mod consume;
mod group;
mod log;
mod output;
mod produce;
mod security;
mod serve;
mod topic;
mod user;
mod window;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sediment_client::{Client, ClientBuilder, ClientError, SecurityConfig};

pub use output::OutputFormat;

/// Sediment: a durable, Kafka-compatible message broker on one machine.
#[derive(Debug, Parser)]
#[command(name = "sediment", version, about)]
pub struct Cli {
    /// Broker address for client commands.
    #[arg(
        long,
        global = true,
        env = "SEDIMENT_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,
    /// How commands print their results.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// TLS and SASL of client commands.
    #[command(flatten)]
    pub security: security::SecurityArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker.
    Serve(Box<serve::ServeArgs>),
    /// Create, list, describe and delete topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Produce one message per stdin line.
    Produce(produce::ProduceArgs),
    /// Print messages from a topic.
    Consume(consume::ConsumeArgs),
    /// List, describe, reset and delete consumer groups.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Create, list and delete SCRAM users (through the broker, or offline with --data-dir).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Add, list and remove ACL bindings.
    #[command(subcommand)]
    Acl(acl::AclCommand),
    /// Run an event-time windowed aggregation job (tumbling, hopping or session windows).
    Window(Box<window::WindowArgs>),
    /// Measure throughput and latency through the real client and broker.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Inspect segment files offline (read-only; the same checks as recovery).
    #[command(subcommand)]
    Log(log::LogCommand),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let output = cli.output;
    // Only client commands read the security options (and may fail on them).
    let (bootstrap, security) = (cli.bootstrap, cli.security);
    let target = || -> anyhow::Result<Target> {
        let env = |name: &str| std::env::var(name).ok();
        Ok(Target::new(bootstrap, security::resolve(&security, &env)?))
    };
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Log(command) => log::run(command, output),
        Command::Topic(command) => block_on(topic::run(command, target()?, output)),
        Command::Produce(args) => block_on(produce::run(args, target()?, output)),
        Command::Consume(args) => block_on(consume::run(args, target()?)),
        Command::Window(args) => block_on(window::run(*args, target()?)),
        Command::Group(command) => block_on(group::run(command, target()?, output)),
        // Offline (--data-dir) user commands need no client settings.
        Command::User(command) => block_on(user::run(command, target, output)),
        Command::Acl(command) => block_on(acl::run(command, target()?, output)),
        Command::Bench(command) => block_on(bench::run(command, target()?, output)),
    }
}

/// Runs a client command on a fresh runtime.
fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    work: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")?
        .block_on(work)
}

/// How long a command waits for the broker to answer its first request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where client commands find the cluster, and the settings of every
/// client they open (client id `sediment-cli`, the security options).
/// Nothing is connected until a command asks.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    bootstrap: String,
    security: SecurityConfig,
}

impl Target {
    fn new(bootstrap: String, security: SecurityConfig) -> Self {
        Self {
            bootstrap,
            security,
        }
    }

    /// The settings every client of the command line starts from: every
    /// command (topic, produce, consume, group, window, bench) builds its
    /// clients from here, so all of them use TLS and SASL alike.
    pub(crate) fn builder(&self) -> ClientBuilder {
        ClientBuilder::new(self.bootstrap.clone())
            .client_id("sediment-cli")
            .security(self.security.clone())
    }

    /// `error` as one line saying what to check: refused credentials and an
    /// untrusted certificate are not an unreachable broker.
    pub(crate) fn explain(&self, error: ClientError) -> anyhow::Error {
        match error {
            ClientError::Authentication { .. } => anyhow::anyhow!(
                "{error} (check --sasl-username, the password from --sasl-password-file or \
                 SEDIMENT_SASL_PASSWORD, and --sasl-mechanism)"
            ),
            ClientError::Tls { .. } => anyhow::anyhow!(
                "{error} (set --ca to the CA file that signed the broker's certificate, and \
                 --client-cert/--client-key if it requires a client certificate; a plaintext port \
                 needs --security-protocol plaintext or sasl_plaintext)"
            ),
            ClientError::Config(_) => anyhow::Error::new(error),
            // A TLS listener hangs up on a plaintext client's first request.
            error if !self.security.protocol.uses_tls() => anyhow::Error::new(error).context(
                self.unreachable("; a TLS port needs --security-protocol ssl or sasl_ssl"),
            ),
            error => anyhow::Error::new(error).context(self.unreachable("")),
        }
    }

    /// "Cannot reach a broker" with where it looked and what to set, `hint`
    /// added to the advice.
    fn unreachable(&self, hint: &str) -> String {
        format!(
            "cannot reach a broker at {}: is `sediment serve` running there? \
             (set --bootstrap or SEDIMENT_BOOTSTRAP{hint})",
            self.bootstrap
        )
    }

    /// A client whose broker has answered, or an error saying where it
    /// looked and what to do.
    pub(crate) async fn connect(&self) -> anyhow::Result<Client> {
        let client = self.build().await?;
        match tokio::time::timeout(CONNECT_TIMEOUT, client.admin().list_topics()).await {
            Ok(Ok(_)) => Ok(client),
            Ok(Err(error)) => Err(self.explain(error)),
            Err(_) => Err(anyhow::anyhow!(
                "{}: no answer within {CONNECT_TIMEOUT:?}",
                self.unreachable("")
            )),
        }
    }

    /// A client built from [`Target::builder`], its errors explained.
    pub(crate) async fn build(&self) -> anyhow::Result<Client> {
        self.builder().build().await.map_err(|e| self.explain(e))
    }
}
