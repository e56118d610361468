//! [`BrokerConnection`]: one TCP connection to one broker, with pipelined
//! requests.
//!
//! Owns the socket (split between a writer task and a reader task), the
//! correlation-id counter, the table of requests waiting for an answer, and
//! the API versions negotiated when the connection opened.
//!
//! Invariants:
//! - A waiter is registered *before* its frame is queued for writing, so an
//!   answer can never arrive for a request the reader does not know.
//! - Once the connection is closed (end of stream, I/O error, a response
//!   that does not parse, a request timeout) every waiter gets the same
//!   error at once and no new request is accepted: callers reconnect through
//!   [`Cluster`](crate::cluster::Cluster). A request timeout closes the
//!   connection as the Java client does, because a broker that stopped
//!   answering one request is not trusted with the next.
//! - Frame sizes come from the network: a negative size or one above
//!   `io::MAX_RESPONSE_BYTES` closes the connection, and buffer space grows
//!   with the bytes that actually arrive, not with the declared size.
//!
//! The socket loops themselves live in `io`.

mod io;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::versions::{api_name, NegotiatedVersions};

/// UNSUPPORTED_VERSION: the broker's answer to an ApiVersions version it does not know.
const UNSUPPORTED_VERSION: i16 = 35;

/// A handle to one broker connection; clones share the connection.
#[derive(Clone)]
pub(crate) struct BrokerConnection {
    inner: Arc<Inner>,
}

struct Inner {
    addr: String,
    client_id: StrBytes,
    request_timeout: Duration,
    frames: mpsc::UnboundedSender<Bytes>,
    shared: Arc<Shared>,
    next_correlation_id: AtomicI32,
    versions: OnceLock<NegotiatedVersions>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.close(ClientError::ConnectionLost {
            addr: self.addr.clone(),
            reason: "connection dropped by the client".into(),
            source: None,
        });
    }
}

/// State the reader, the writer and the handles share.
struct Shared {
    addr: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiters: HashMap<i32, oneshot::Sender<Result<Bytes>>>,
    /// Set once; the error every later request gets.
    closed: Option<ClientError>,
    tasks: Vec<AbortHandle>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (single inserts and removes), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails every waiter with `error`, stops both tasks, refuses new requests.
    fn close(&self, error: ClientError) {
        let (waiters, tasks) = {
            let mut state = self.lock();
            if state.closed.is_some() {
                return;
            }
            tracing::debug!(broker = %self.addr, %error, "closing broker connection");
            state.closed = Some(error.clone());
            (
                std::mem::take(&mut state.waiters),
                std::mem::take(&mut state.tasks),
            )
        };
        for (_, waiter) in waiters {
            let _ = waiter.send(Err(error.clone()));
        }
        for task in tasks {
            task.abort();
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }
}

impl BrokerConnection {
    /// Opens a connection to `addr` and negotiates API versions.
    pub(crate) async fn connect(addr: &str, config: &ClientConfig) -> Result<Self> {
        let connect_error = |source: std::io::Error| ClientError::Connect {
            addr: addr.to_string(),
            source: Arc::new(source),
        };
        let stream = tokio::time::timeout(config.request_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                connect_error(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {:?}", config.request_timeout),
                ))
            })?
            .map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        let (read_half, write_half) = stream.into_split();
        let (frames, frame_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            state: Mutex::new(State::default()),
        });
        let writer = tokio::spawn(io::write_loop(frame_rx, write_half, Arc::clone(&shared)));
        let reader = tokio::spawn(io::read_loop(read_half, Arc::clone(&shared)));
        shared.lock().tasks = vec![writer.abort_handle(), reader.abort_handle()];
        let connection = Self {
            inner: Arc::new(Inner {
                addr: addr.to_string(),
                client_id: StrBytes::from_string(config.client_id.clone()),
                request_timeout: config.request_timeout,
                frames,
                shared,
                next_correlation_id: AtomicI32::new(1),
                versions: OnceLock::new(),
            }),
        };
        let versions = connection.negotiate().await?;
        tracing::debug!(broker = addr, versions = %versions.summary(addr), "connected");
        let _ = connection.inner.versions.set(versions);
        Ok(connection)
    }

    /// ApiVersions v3; if the broker does not know v3 it answers in the v0
    /// format with UNSUPPORTED_VERSION, and the client asks again with v0.
    async fn negotiate(&self) -> Result<NegotiatedVersions> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sediment-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let body = self.start(&request, 3)?.raw_body().await?;
        let code = body.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
        let (response, version) = if code == Some(UNSUPPORTED_VERSION) {
            tracing::debug!(broker = %self.inner.addr, "ApiVersions v3 refused; using v0");
            let v0 = ApiVersionsRequest::default();
            (self.start(&v0, 0)?.raw_body().await?, 0)
        } else {
            (body, 3)
        };
        let response: ApiVersionsResponse = decode_body(response, version, &self.inner.addr)?;
        if let Some(error) = ClientError::from_code(
            response.error_code,
            || format!("ApiVersions to {}", self.inner.addr),
            None,
        ) {
            return Err(error);
        }
        Ok(NegotiatedVersions::from_broker(&response.api_keys))
    }

    /// The broker's `host:port`.
    pub(crate) fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// True when both handles share one connection.
    pub(crate) fn same_connection(&self, other: &BrokerConnection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// True once the connection failed or was closed; it then accepts nothing.
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.shared.is_closed()
    }

    /// The version to use for `key` on this connection.
    pub(crate) fn version(&self, key: ApiKey) -> Result<i16> {
        match self.inner.versions.get() {
            Some(v) => v.version(key, &self.inner.addr),
            // Only ApiVersions itself is sent before negotiation, with fixed versions.
            None => Err(ClientError::Protocol {
                addr: self.inner.addr.clone(),
                reason: "API versions are not negotiated yet".into(),
            }),
        }
    }

    /// Sends `request` and waits for its response (request timeout applies).
    pub(crate) async fn send<R: Request>(&self, request: &R, version: i16) -> Result<R::Response> {
        self.start(request, version)?.response().await
    }

    /// Queues `request` and returns a handle on its response. The request is
    /// on the wire in call order, so callers that must keep requests ordered
    /// call this synchronously and await the responses elsewhere.
    pub(crate) fn start<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<PendingResponse<R>> {
        let (correlation_id, frame) = self.encode(request, version)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.inner.shared.lock();
            if let Some(error) = &state.closed {
                return Err(error.clone());
            }
            state.waiters.insert(correlation_id, tx);
        }
        if self.inner.frames.send(frame).is_err() {
            self.inner.shared.lock().waiters.remove(&correlation_id);
            return Err(self.lost("writer task stopped"));
        }
        Ok(PendingResponse {
            connection: self.clone(),
            rx,
            correlation_id,
            version,
            timeout: self.inner.request_timeout,
            _request: std::marker::PhantomData,
        })
    }

    /// Queues a request the broker does not answer (Produce with acks=0).
    pub(crate) fn send_without_response<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<()> {
        let (_, frame) = self.encode(request, version)?;
        if let Some(error) = &self.inner.shared.lock().closed {
            return Err(error.clone());
        }
        self.inner
            .frames
            .send(frame)
            .map_err(|_| self.lost("writer task stopped"))
    }

    fn lost(&self, reason: &str) -> ClientError {
        ClientError::ConnectionLost {
            addr: self.inner.addr.clone(),
            reason: reason.to_string(),
            source: None,
        }
    }

    /// Size prefix, request header and body in one buffer.
    fn encode<R: Request>(&self, request: &R, version: i16) -> Result<(i32, Bytes)> {
        let correlation_id = self
            .inner
            .next_correlation_id
            .fetch_add(1, Ordering::Relaxed);
        let api = ApiKey::try_from(R::KEY).map(api_name).unwrap_or("request");
        let what = format!("{api} v{version} request");
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.inner.client_id.clone()));
        let body_size = request.compute_size(version).map_err(encode_error(&what))?;
        let mut buf = BytesMut::with_capacity(body_size + 64 + self.inner.client_id.len());
        buf.put_i32(0);
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(encode_error(&what))?;
        request
            .encode(&mut buf, version)
            .map_err(encode_error(&what))?;
        let size = i32::try_from(buf.len() - 4).map_err(|_| ClientError::Encode {
            what: what.clone(),
            reason: format!("{} bytes exceed the protocol's frame size", buf.len()),
        })?;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        Ok((correlation_id, buf.freeze()))
    }
}

/// Turns a codec error into [`ClientError::Encode`] for `what`.
fn encode_error<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> ClientError + '_ {
    move |e| ClientError::Encode {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

/// A request on the wire whose response has not been read yet.
pub(crate) struct PendingResponse<R: Request> {
    connection: BrokerConnection,
    rx: oneshot::Receiver<Result<Bytes>>,
    correlation_id: i32,
    version: i16,
    timeout: Duration,
    _request: std::marker::PhantomData<fn() -> R>,
}

impl<R: Request> PendingResponse<R> {
    /// Waits longer than the request timeout (a long-poll Fetch adds its wait).
    pub(crate) fn extend_timeout(mut self, extra: Duration) -> Self {
        self.timeout += extra;
        self
    }

    /// Waits for the response and decodes it.
    pub(crate) async fn response(self) -> Result<R::Response> {
        let version = self.version;
        let addr = self.connection.inner.addr.clone();
        let body = self.raw_body().await?;
        decode_body(body, version, &addr)
    }

    /// Waits for the response; returns the bytes after the response header.
    pub(crate) async fn raw_body(self) -> Result<Bytes> {
        let shared = &self.connection.inner.shared;
        let addr = &self.connection.inner.addr;
        let api = ApiKey::try_from(R::KEY).map(api_name).unwrap_or("request");
        let frame = match tokio::time::timeout(self.timeout, self.rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(self.connection.lost("connection closed")),
            Err(_) => {
                shared.lock().waiters.remove(&self.correlation_id);
                let error = ClientError::Timeout {
                    addr: addr.clone(),
                    api,
                    timeout: self.timeout,
                };
                shared.close(ClientError::ConnectionLost {
                    addr: addr.clone(),
                    reason: error.to_string(),
                    source: None,
                });
                return Err(error);
            }
        };
        let mut frame = frame;
        let header = ResponseHeader::decode(
            &mut frame,
            <R::Response as HeaderVersion>::header_version(self.version),
        )
        .map_err(|e| ClientError::Protocol {
            addr: addr.clone(),
            reason: format!("{api} response header: {e}"),
        })?;
        if header.correlation_id != self.correlation_id {
            return Err(ClientError::Protocol {
                addr: addr.clone(),
                reason: format!(
                    "response carries correlation id {} for request {}",
                    header.correlation_id, self.correlation_id
                ),
            });
        }
        Ok(frame)
    }
}

/// Decodes a response body, naming the broker and message in the error.
pub(crate) fn decode_body<T: Decodable>(mut body: Bytes, version: i16, addr: &str) -> Result<T> {
    T::decode(&mut body, version).map_err(|e| ClientError::Protocol {
        addr: addr.to_string(),
        reason: format!(
            "{} v{version}: {e}",
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("response")
        ),
    })
}
