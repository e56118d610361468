//! The accept loop: connection limits (`server::admission`: total, per IP,
//! eviction of silent connections at the cap), a back-off instead of a spin
//! when accept fails for lack of file descriptors, and a graceful shutdown
//! that stops accepting, lets every connection finish its in-flight
//! requests, and then returns.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::server::admission::Admission;
use crate::server::connection;

/// Longest pause between accept retries after EMFILE/ENFILE.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// How long shutdown waits for connections to finish their in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound listener.
pub struct Server {
    broker: Arc<Broker>,
    listener: TcpListener,
}

impl Server {
    /// Binds the broker's listen address and records the advertised address.
    pub async fn bind(broker: Arc<Broker>) -> io::Result<Self> {
        let listener = TcpListener::bind(broker.config().listen).await?;
        let local = listener.local_addr()?;
        let host = broker
            .config()
            .advertised_host
            .clone()
            .unwrap_or_else(|| local.ip().to_string());
        broker.set_advertised(host, local.port());
        Ok(Self { broker, listener })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then drains connections.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let config = self.broker.config();
        let max_connections = config.max_connections;
        let admission = Admission::new(max_connections, config.max_connections_per_ip);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut backoff = Duration::from_millis(5);
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
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
                    tokio::spawn(connection::serve(broker, stream, peer, stop, ticket));
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

fn is_out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(code) if code == rustix::io::Errno::MFILE.raw_os_error() || code == rustix::io::Errno::NFILE.raw_os_error())
}
