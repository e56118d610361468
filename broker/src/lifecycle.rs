//! The broker's lifecycle: bind the HTTP port (first, so an explicit
//! address that is taken fails before any recovery work), open the data
//! directory, bind the listener, start the background work (the group
//! coordinator; interval flushes, retention and recovery-point checkpoints;
//! the HTTP server), serve until told to stop, then stop it all in order and
//! leave the clean-shutdown marker.
//!
//! The CLI only calls [`Broker::start`] and [`RunningBroker::run_until`];
//! nothing here depends on how the process was asked to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::broker::{Broker, StartupError};
use crate::config::{BrokerConfig, FlushPolicy};
use crate::error::StorageError;
use crate::http::HttpBindError;
use crate::server::listener::BindError;
use crate::server::Server;

/// How often retention runs (Kafka's `log.retention.check.interval.ms` default).
const RETENTION_EVERY: Duration = Duration::from_secs(300);
/// How often recovery points are checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);
/// A partition that appended nothing for this long returns the segment space
/// reserved ahead of its appends.
const RESERVATION_IDLE: Duration = Duration::from_secs(30);
/// How often partitions are checked for idle reservations, so one is
/// returned at most this long after it became idle.
const RESERVATION_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Why the broker could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// The data directory could not be opened.
    #[error("cannot open data directory {dir}: {source}")]
    Open {
        /// The data directory.
        dir: String,
        /// Why.
        #[source]
        source: StartupError,
    },
    /// A listen address could not be bound, or the TLS files not loaded.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// An explicit `--http` address could not be bound.
    #[error(transparent)]
    HttpBind(#[from] HttpBindError),
    /// The final flush or the clean-shutdown marker failed; the next start
    /// runs recovery.
    #[error("clean shutdown failed; the next start will recover: {0}")]
    Shutdown(#[source] StorageError),
    /// A blocking start or stop task died.
    #[error("{0} task failed: {1}")]
    Task(&'static str, String),
}

/// A started broker: open, listening, its background work running.
pub struct RunningBroker {
    broker: Arc<Broker>,
    server: Server,
    local_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    maintenance: JoinHandle<()>,
    transactions: JoinHandle<()>,
    /// The HTTP server task and its bound address, when HTTP is on.
    http: Option<(JoinHandle<()>, SocketAddr)>,
}

impl Broker {
    /// Opens the data directory (recovering it on the blocking pool), binds
    /// the listener and starts the background work. Call inside a tokio
    /// runtime.
    pub async fn start(config: BrokerConfig) -> Result<RunningBroker, LifecycleError> {
        let http_listener = crate::http::bind(config.http).await?;
        let dir = config.data_dir.display().to_string();
        let broker = tokio::task::spawn_blocking(move || Broker::open(config))
            .await
            .map_err(|e| LifecycleError::Task("startup", e.to_string()))?
            .map_err(|source| LifecycleError::Open { dir, source })?;
        let broker = Arc::new(broker);
        let server = Server::bind(Arc::clone(&broker)).await?;
        let local_addr = server.local_addr();
        let tls_addr = server.tls_addr();
        // Group timers (session expiry, rebalance deadlines) run from now on.
        broker.start_group_coordinator();
        let maintenance = tokio::spawn(maintain(Arc::clone(&broker)));
        let transactions = tokio::spawn(check_transactions(Arc::clone(&broker)));
        let http = match http_listener {
            Some(listener) => match listener.local_addr() {
                Ok(addr) => {
                    let task = tokio::spawn(crate::http::serve(listener, Arc::clone(&broker)));
                    Some((task, addr))
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the HTTP listener's address; running without HTTP");
                    None
                }
            },
            None => None,
        };
        Ok(RunningBroker {
            broker,
            server,
            local_addr,
            tls_addr,
            maintenance,
            transactions,
            http,
        })
    }
}

impl RunningBroker {
    /// The plaintext listener's address (port 0 resolved), `None` with
    /// `--listen off`.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The TLS listener's address (port 0 resolved), if it is on.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The HTTP address actually bound (port 0 resolved), or `None` when
    /// HTTP is off or the default address was taken.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(_, addr)| *addr)
    }

    /// The shared broker state.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Serves until `shutdown` completes; then stops accepting, finishes
    /// in-flight requests, stops the background work, flushes every
    /// partition and writes the clean-shutdown marker.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), LifecycleError> {
        self.server.run(shutdown).await;
        if let Some((http, _)) = self.http {
            // Connections already accepted end on their own within
            // `http::CONNECTION_LIFETIME`, or with the runtime.
            http.abort();
            let _ = http.await;
        }
        self.maintenance.abort();
        let _ = self.maintenance.await;
        self.transactions.abort();
        let _ = self.transactions.await;
        let broker = Arc::clone(&self.broker);
        tokio::task::spawn_blocking(move || broker.shutdown())
            .await
            .map_err(|e| LifecycleError::Task("shutdown", e.to_string()))?
            .map_err(LifecycleError::Shutdown)?;
        tracing::info!("clean shutdown complete");
        Ok(())
    }
}

/// Interval flushes, retention, recovery-point checkpoints and the release of
/// idle partitions' reserved space, on the
/// blocking pool, one round at a time. The log cleaner runs beside them on
/// its own blocking task (a cleaning pass may take long and must not hold up
/// interval flushes), one pass at a time, started every
/// The transaction coordinator's periodic work: finish decisions a restart
/// or a storage error interrupted (at once on start), then abort
/// transactions open past their timeout, every
/// `transaction_check_interval`.
async fn check_transactions(broker: Arc<Broker>) {
    let mut ticks = tokio::time::interval(broker.config().transaction_check_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        broker.txn_coordinator().run_checks(broker.logs()).await;
    }
}

/// `log_cleaner_backoff` once the previous pass ended.
async fn maintain(broker: Arc<Broker>) {
    let flush = broker.config().log.flush;
    let tick = match flush {
        FlushPolicy::Interval(every) => every.min(Duration::from_secs(1)),
        FlushPolicy::Always => Duration::from_secs(1),
    };
    let mut ticker = tokio::time::interval(tick);
    let mut last_retention = tokio::time::Instant::now();
    let mut last_checkpoint = tokio::time::Instant::now();
    let mut last_release = tokio::time::Instant::now();
    let cleaner_backoff = broker.config().log_cleaner_backoff;
    let mut last_clean = tokio::time::Instant::now();
    let mut cleaning: Option<JoinHandle<()>> = None;
    loop {
        ticker.tick().await;
        if cleaning.as_ref().is_none_or(JoinHandle::is_finished)
            && last_clean.elapsed() >= cleaner_backoff
        {
            last_clean = tokio::time::Instant::now();
            let broker = Arc::clone(&broker);
            cleaning = Some(tokio::task::spawn_blocking(move || {
                broker.logs().clean_due_partitions(crate::basics::now_ms());
            }));
        }
        let run_retention = last_retention.elapsed() >= RETENTION_EVERY;
        let run_checkpoint = last_checkpoint.elapsed() >= CHECKPOINT_EVERY;
        let run_release = last_release.elapsed() >= RESERVATION_CHECK_EVERY;
        if run_release {
            last_release = tokio::time::Instant::now();
        }
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
            if run_release {
                broker.logs().release_idle_reservations(RESERVATION_IDLE);
            }
            if run_checkpoint {
                // Idle producers are expired at the checkpoint's cadence:
                // cheap, and far finer than any sensible expiration.
                let expiration_ms = broker.config().producer_id_expiration_ms;
                broker
                    .logs()
                    .expire_producers(crate::basics::now_ms(), expiration_ms);
                if let Err(error) = broker.logs().checkpoint_recovery_points() {
                    tracing::error!(error = %error, "cannot write the recovery-point checkpoint");
                }
            }
        });
        let _ = work.await;
    }
}
