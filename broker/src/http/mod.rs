//! The broker's HTTP port: read-only, `GET /metrics` (Prometheus/OpenMetrics
//! text, [`metrics`]), `GET /api/…` (JSON, [`api`]) and `GET /`, the web
//! console (one page embedded at build time that reads `/api/`). Every other path is 404 and every method but GET (and
//! HEAD, which hyper answers like GET without the body) is 405: nothing on
//! this port changes the broker, so it may be exposed more freely than the
//! Kafka port.
//!
//! Invariants, each answering one way an HTTP client could hurt the broker:
//! - the listener is its own task on the broker's runtime, and a scrape runs
//!   on the blocking pool: no HTTP client can stall the Kafka listener or
//!   its connections;
//! - at most [`MAX_CONNECTIONS`] HTTP connections at once; a further one is
//!   closed at once (a flood cannot queue up work);
//! - a request's head is buffered up to [`MAX_HEAD_BYTES`] (larger heads are
//!   refused by hyper with 431 and the connection closed), and must arrive
//!   within [`HEADER_READ_TIMEOUT`] (slow-loris);
//! - a connection lives at most [`CONNECTION_LIFETIME`], then is shut down
//!   gracefully (a response in flight is finished within
//!   [`SHUTDOWN_GRACE`]), so slots always come back;
//! - request bodies are never read or buffered.
//!
//! Binding follows [`HttpListen`]: the default address, when taken, gives
//! one warning and no HTTP; an explicit address that cannot be bound fails
//! startup.

pub mod api;
pub mod metrics;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::broker::Broker;
use crate::config::HttpListen;

/// Concurrent HTTP connections; further ones are closed at once. A
/// Prometheus server and a few operators need a handful.
pub const MAX_CONNECTIONS: usize = 64;
/// Largest request head (request line and headers) buffered, in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// A request head must arrive whole within this long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest an HTTP connection is kept, keep-alive included.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Time a connection past its lifetime gets to finish the response in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed accept (out of file descriptors, typically).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The content type of the exposition [`metrics::render`] writes.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An explicitly requested HTTP address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve HTTP on {addr}: {source} (choose another --http HOST:PORT, or --http off)")]
pub struct HttpBindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

/// Binds the HTTP listener as `listen` says: `None` when HTTP is off, or
/// when the default address is taken (logged once as a warning); an error
/// only when an explicit address cannot be bound.
pub async fn bind(listen: HttpListen) -> Result<Option<TcpListener>, HttpBindError> {
    match listen {
        HttpListen::Off => Ok(None),
        HttpListen::Explicit(addr) => TcpListener::bind(addr)
            .await
            .map(Some)
            .map_err(|source| HttpBindError { addr, source }),
        HttpListen::Default(addr) => match TcpListener::bind(addr).await {
            Ok(listener) => Ok(Some(listener)),
            Err(error) => {
                tracing::warn!(%addr, %error, "cannot bind the default HTTP address; running without HTTP metrics (set --http HOST:PORT, or --http off to silence this)");
                Ok(None)
            }
        },
    }
}

/// Accepts HTTP connections until the task is aborted (the broker's stop).
/// Each connection is served on its own task within the limits of the
/// module comment.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "HTTP accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, max = MAX_CONNECTIONS, "HTTP connection refused: too many open");
            drop(stream);
            continue;
        };
        let broker = Arc::clone(&broker);
        tokio::spawn(async move {
            let _slot = slot;
            serve_connection(stream, peer, broker).await;
        });
    }
}

/// Serves one HTTP/1.1 connection (keep-alive allowed) within its lifetime.
async fn serve_connection(stream: tokio::net::TcpStream, peer: SocketAddr, broker: Arc<Broker>) {
    let service = service_fn(move |request: Request<Incoming>| {
        let broker = Arc::clone(&broker);
        // Only the method and path matter; the body is never read.
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        async move { Ok::<_, Infallible>(route(&broker, &method, &path).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = tokio::time::sleep(CONNECTION_LIFETIME) => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => Ok(()), // dropped: the socket closes
            }
        }
    };
    if let Err(error) = result {
        // Bad requests, huge heads, timeouts: the client's problem, not an
        // operator's.
        tracing::debug!(%peer, %error, "HTTP connection closed");
    }
}

/// The web console: one self-contained page (HTML, CSS and JS inline),
/// embedded at build time.
const CONSOLE: &str = include_str!("console/index.html");

/// The console's Content-Security-Policy: its own inline code and requests
/// to this origin only, so it can load nothing from another host.
const CONSOLE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
    form-action 'none'";

/// Answers one request.
async fn route(broker: &Arc<Broker>, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if *method != Method::GET && *method != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "this port is read-only: only GET\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/" | "/index.html" => {
            let mut response = Response::new(Full::new(Bytes::from_static(CONSOLE.as_bytes())));
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            // The page may talk to this broker only, whatever it contains.
            headers.insert(
                hyper::header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONSOLE_POLICY),
            );
            response
        }
        "/metrics" => {
            // On the blocking pool: a scrape of many partitions must not
            // hold a runtime worker that Kafka connections need.
            let broker = Arc::clone(broker);
            match tokio::task::spawn_blocking(move || metrics::render(&broker)).await {
                Ok(Ok(text)) => {
                    let mut response = Response::new(Full::new(Bytes::from(text)));
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
                    response
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "cannot encode the metrics");
                    plain(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "cannot encode the metrics\n",
                    )
                }
                Err(error) => {
                    tracing::error!(%error, "the metrics scrape failed");
                    plain(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the metrics scrape failed\n",
                    )
                }
            }
        }
        api if api.starts_with("/api/") => match api::render(broker, api).await {
            Some(json) => {
                let mut response = Response::new(Full::new(Bytes::from(json)));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            None => plain(
                StatusCode::NOT_FOUND,
                "not found: GET /api/overview, /api/topics, /api/groups or \
                 /api/topics/{topic}/partitions/{p}/messages\n",
            ),
        },
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: GET /, /metrics or /api/overview, /api/topics, /api/groups\n",
        ),
    }
}

/// A short text/plain response.
fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn given_the_default_address_taken_when_bound_then_runs_without_http() {
        let holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let taken = holder.local_addr().unwrap();
        let bound = bind(HttpListen::Default(taken)).await.unwrap();
        assert!(bound.is_none());
    }

    #[tokio::test]
    async fn given_an_explicit_address_taken_when_bound_then_fails_naming_it() {
        let holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let taken = holder.local_addr().unwrap();
        let error = bind(HttpListen::Explicit(taken)).await.unwrap_err();
        assert_eq!(error.addr, taken);
        assert!(error.to_string().contains(&taken.to_string()), "{error}");
    }

    #[tokio::test]
    async fn given_off_or_a_free_address_when_bound_then_none_or_a_listener() {
        assert!(bind(HttpListen::Off).await.unwrap().is_none());
        let free = "127.0.0.1:0".parse().unwrap();
        let listener = bind(HttpListen::Default(free)).await.unwrap().unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0);
    }
}
