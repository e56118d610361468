//! The accept loop of the plaintext and TLS listeners: connection limits
//! shared by both (`server::admission`: total, per IP, eviction of silent
//! connections at the cap), TLS files reloaded on SIGHUP, a back-off instead of a spin
//! when accept fails for lack of file descriptors, and a graceful shutdown
//! that stops accepting, lets every connection finish its in-flight
//! requests, and then returns.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::broker::Broker;
use crate::server::admission::Admission;
use crate::server::connection;
use crate::server::tls::{TlsConfigError, TlsContext};
use crate::session::ListenerKind;

/// Longest pause between accept retries after EMFILE/ENFILE.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// How long shutdown waits for connections to finish their in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound listeners: plaintext, TLS, or both. They share one set of
/// connection limits.
pub struct Server {
    broker: Arc<Broker>,
    plain: Option<TcpListener>,
    tls: Option<(TcpListener, Arc<TlsContext>)>,
}

/// Why the listeners could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// An address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The TLS certificate, key or client CA could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
}

impl Server {
    /// Loads the TLS configuration, binds the listen addresses and records
    /// each listener's advertised address.
    pub async fn bind(broker: Arc<Broker>) -> Result<Self, BindError> {
        let config = broker.config().clone();
        let tls = match &config.security.tls {
            Some(settings) => Some(Arc::new(TlsContext::load(settings.clone())?)),
            None => None,
        };
        let plain = match config.listen {
            Some(addr) => Some(Self::bind_one(&broker, addr, ListenerKind::Plain).await?),
            None => None,
        };
        let tls = match (tls, &config.security.tls) {
            (Some(context), Some(settings)) => Some((
                Self::bind_one(&broker, settings.listen, ListenerKind::Tls).await?,
                context,
            )),
            _ => None,
        };
        Ok(Self { broker, plain, tls })
    }

    async fn bind_one(
        broker: &Broker,
        addr: SocketAddr,
        kind: ListenerKind,
    ) -> Result<TcpListener, BindError> {
        let bind_error = |source| BindError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let host = broker
            .config()
            .advertised_host
            .clone()
            .unwrap_or_else(|| local.ip().to_string());
        broker.set_advertised(kind, host, local.port());
        Ok(listener)
    }

    /// The plaintext listener's address (port 0 resolved), if it is on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.plain.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The TLS listener's address (port 0 resolved), if it is on.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then drains connections. SIGHUP
    /// reloads the TLS certificate, key and client CAs.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let config = self.broker.config();
        let max_connections = config.max_connections;
        let admission = Admission::new(max_connections, config.max_connections_per_ip);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut backoff = Duration::from_millis(5);
        let mut hangups = self.tls.as_ref().and_then(|_| {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|error| tracing::warn!(%error, "cannot listen for SIGHUP; TLS files will not be reloaded"))
                .ok()
        });
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                accepted = accept(self.plain.as_ref()) => accepted.map(|(s, p)| (s, p, None)),
                accepted = accept(self.tls.as_ref().map(|(l, _)| l)) => {
                    accepted.map(|(s, p)| (s, p, self.tls.as_ref().map(|(_, c)| Arc::clone(c))))
                }
                Some(()) = hangup(hangups.as_mut()) => {
                    if let Some((_, context)) = &self.tls {
                        match context.reload() {
                            Ok(()) => tracing::info!("SIGHUP: TLS certificate, key and client CAs reloaded"),
                            Err(error) => tracing::error!(%error, "SIGHUP: TLS files not reloaded; the previous ones stay in use"),
                        }
                    }
                    continue;
                }
            };
            match accepted {
                Ok((stream, peer, tls)) => {
                    backoff = Duration::from_millis(5);
                    // At the cap this evicts a silent connection or waits for
                    // a slot; meanwhile newer clients queue in the kernel.
                    let ticket = tokio::select! {
                        _ = &mut shutdown => break,
                        ticket = admission.admit(peer) => ticket,
                    };
                    let Some(ticket) = ticket else {
                        continue; // refused: dropping the stream closes it
                    };
                    let broker = Arc::clone(&self.broker);
                    let stop = stop_rx.clone();
                    match tls {
                        None => {
                            tokio::spawn(connection::serve(broker, stream, peer, stop, ticket));
                        }
                        Some(tls) => {
                            tokio::spawn(connection::serve_tls(
                                broker, stream, peer, stop, ticket, tls,
                            ));
                        }
                    }
                }
                Err(error) if is_out_of_descriptors(&error) => {
                    tracing::warn!(error = %error, pause_ms = backoff.as_millis() as u64, "accept failed: out of file descriptors; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                }
                Err(error) => {
                    tracing::warn!(error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        // Parked JoinGroup/SyncGroup requests would otherwise hold their
        // connections open until the drain timeout.
        self.broker.stop_group_coordinator().await;
        let _ = stop_tx.send(true);
        if !admission.drained(max_connections, DRAIN_TIMEOUT).await {
            tracing::warn!(
                "some connections did not finish within {DRAIN_TIMEOUT:?}; closing them"
            );
        }
    }
}

/// Accepts from `listener`, or waits forever when it is off.
async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// The next SIGHUP, or never when it is not listened for.
async fn hangup(signal: Option<&mut tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

fn is_out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(code) if code == rustix::io::Errno::MFILE.raw_os_error() || code == rustix::io::Errno::NFILE.raw_os_error())
}
