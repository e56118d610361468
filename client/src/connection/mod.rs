//! [`BrokerConnection`]: one TCP (or TLS) connection to one broker, with
//! pipelined requests.
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
//! - With TLS, the handshake (certificate verified against the host
//!   dialled) completes before the first request; with SASL, no request
//!   but ApiVersions and the SASL exchange is sent before authentication
//!   succeeded, and a connection whose authentication failed is closed.
//!
//! The socket loops themselves live in `io`; the SASL exchange in `sasl`.

mod io;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use sediment_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use sediment_protocol::{ApiKey, Message, Reader, Request, RequestHeader, ResponseHeader, Writer};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio_rustls::TlsConnector;

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::security::server_name;
use crate::versions::{api_name, NegotiatedVersions};

/// UNSUPPORTED_VERSION: the broker's answer to an ApiVersions version it does not know.
const UNSUPPORTED_VERSION: i16 = 35;

/// One request frame as the buffers to write in order: the size prefix,
/// then the header and body as the encoder left them (large record batches
/// stay shared slices rather than being copied into one buffer).
pub(crate) type Frame = Vec<Bytes>;

/// A handle to one broker connection; clones share the connection.
#[derive(Clone)]
pub(crate) struct BrokerConnection {
    inner: Arc<Inner>,
}

struct Inner {
    addr: String,
    client_id: String,
    request_timeout: Duration,
    frames: mpsc::UnboundedSender<Frame>,
    shared: Arc<Shared>,
    next_correlation_id: AtomicI32,
    versions: OnceLock<NegotiatedVersions>,
    /// When the SASL session the broker granted is close to its end
    /// (KIP-368): from then on the connection counts as closed, so callers
    /// open a new, freshly authenticated one before the broker hangs up.
    retire_at: OnceLock<tokio::time::Instant>,
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
    /// Opens a connection to `addr` (TCP, then the TLS handshake when the
    /// security protocol uses TLS), negotiates API versions and, when the
    /// protocol uses SASL, authenticates before anything else is sent
    /// (KIP-152). Every reconnect comes through here, so it authenticates
    /// again.
    pub(crate) async fn connect(addr: &str, config: &ClientConfig) -> Result<Self> {
        let connect_error = |source: std::io::Error| ClientError::Connect {
            addr: addr.to_string(),
            source: Arc::new(source),
        };
        let timed_out = |what: &str| {
            connect_error(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no {what} within {:?}", config.request_timeout),
            ))
        };
        let security = &config.security;
        // Checked before dialling: a name TLS cannot verify is a setting error.
        let tls = if security.protocol.uses_tls() {
            Some((config.tls_setup()?, server_name(addr)?))
        } else {
            None
        };
        let stream = tokio::time::timeout(config.request_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out("connection"))?
            .map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        let (frames, frame_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            state: Mutex::new(State::default()),
        });
        let (writer, reader) = match tls {
            None => {
                let (read_half, write_half) = stream.into_split();
                (
                    tokio::spawn(io::write_loop(frame_rx, write_half, Arc::clone(&shared))),
                    tokio::spawn(io::read_loop(read_half, Arc::clone(&shared))),
                )
            }
            Some((setup, name)) => {
                let handshake = TlsConnector::from(setup.0).connect(name, stream);
                let stream = tokio::time::timeout(config.request_timeout, handshake)
                    .await
                    .map_err(|_| timed_out("TLS handshake"))?
                    .map_err(|e| tls_error(addr, e))?;
                let (read_half, write_half) = tokio::io::split(stream);
                (
                    tokio::spawn(io::write_loop(frame_rx, write_half, Arc::clone(&shared))),
                    tokio::spawn(io::read_loop(read_half, Arc::clone(&shared))),
                )
            }
        };
        shared.lock().tasks = vec![writer.abort_handle(), reader.abort_handle()];
        let connection = Self {
            inner: Arc::new(Inner {
                addr: addr.to_string(),
                client_id: config.client_id.clone(),
                request_timeout: config.request_timeout,
                frames,
                shared,
                next_correlation_id: AtomicI32::new(1),
                versions: OnceLock::new(),
                retire_at: OnceLock::new(),
            }),
        };
        let versions = connection
            .negotiate()
            .await
            .map_err(|e| refused_after_handshake(addr, e))?;
        tracing::debug!(broker = addr, versions = %versions.summary(addr), "connected");
        let _ = connection.inner.versions.set(versions);
        let sasl = security.sasl.as_ref();
        if let Some(sasl) = sasl.filter(|_| security.protocol.uses_sasl()) {
            let lifetime = crate::sasl::authenticate(&connection, sasl).await?;
            tracing::debug!(
                broker = addr,
                user = %sasl.username,
                mechanism = %sasl.mechanism,
                ?lifetime,
                "authenticated"
            );
            if let Some(lifetime) = lifetime {
                // Kafka's Java client re-authenticates at 85–95 % of the
                // lifetime; retiring at 85 % leaves in-flight requests (a
                // long-poll fetch included) time to finish first.
                let _ = connection
                    .inner
                    .retire_at
                    .set(tokio::time::Instant::now() + lifetime.mul_f64(0.85));
            }
        }
        Ok(connection)
    }

    /// ApiVersions v3; if the broker does not know v3 it answers in the v0
    /// format with UNSUPPORTED_VERSION, and the client asks again with v0.
    async fn negotiate(&self) -> Result<NegotiatedVersions> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name("sediment-client".to_string())
            .with_client_software_version(env!("CARGO_PKG_VERSION").to_string());
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

    /// True once the connection failed or was closed (it then accepts
    /// nothing), or its SASL session is about to expire (it still answers
    /// what is in flight, but callers must open a new connection, which
    /// authenticates again).
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.shared.is_closed()
            || self
                .inner
                .retire_at
                .get()
                .is_some_and(|at| tokio::time::Instant::now() >= *at)
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

    /// Size prefix, request header and body, as the buffers to write.
    fn encode<R: Request>(&self, request: &R, version: i16) -> Result<(i32, Frame)> {
        let correlation_id = self
            .inner
            .next_correlation_id
            .fetch_add(1, Ordering::Relaxed);
        let what = format!("{} v{version} request", api_name(R::KEY));
        let header = RequestHeader {
            request_api_key: R::KEY as i16,
            request_api_version: version,
            correlation_id,
            client_id: Some(self.inner.client_id.clone()),
        };
        let mut w = Writer::new();
        header
            .encode(&mut w, R::KEY.request_header_version(version))
            .map_err(encode_error(&what))?;
        request
            .encode(&mut w, version)
            .map_err(encode_error(&what))?;
        let size = i32::try_from(w.len()).map_err(|_| ClientError::Encode {
            what: what.clone(),
            reason: format!("{} bytes exceed the protocol's frame size", w.len()),
        })?;
        let chunks = w.into_chunks();
        let mut frame = Vec::with_capacity(chunks.len() + 1);
        frame.push(Bytes::copy_from_slice(&size.to_be_bytes()));
        frame.extend(chunks);
        Ok((correlation_id, frame))
    }
}

/// Classifies a failed TLS handshake: what rustls refused (an untrusted,
/// expired or misnamed certificate, a peer that is not speaking TLS) and a
/// peer that hung up mid-handshake (a plaintext listener does, on the
/// ClientHello it cannot frame, by closing or resetting the connection)
/// are [`ClientError::Tls`], which no retry can fix; anything else is an
/// ordinary, retriable connection failure. The TCP connection was already
/// accepted, so a listener that hangs up at this point is one that does
/// not speak TLS far more often than a broker that is restarting.
fn tls_error(addr: &str, error: std::io::Error) -> ClientError {
    let from_rustls = error
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
    if from_rustls {
        ClientError::Tls {
            addr: addr.to_string(),
            source: Arc::new(error),
        }
    } else if matches!(
        error.kind(),
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
    ) {
        ClientError::Tls {
            addr: addr.to_string(),
            source: Arc::new(std::io::Error::new(
                error.kind(),
                format!("the broker closed the connection during the TLS handshake ({error})"),
            )),
        }
    } else {
        ClientError::Connect {
            addr: addr.to_string(),
            source: Arc::new(error),
        }
    }
}

/// Classifies a failure of the first request on a new connection. With
/// TLS 1.3 the client's side of the handshake is over before the broker
/// has checked the client's certificate, so a broker that refuses it (or
/// its absence, under mutual TLS) says so with an alert that arrives as
/// the answer to ApiVersions: that is [`ClientError::Tls`], not a lost
/// connection to retry. Other errors pass through.
fn refused_after_handshake(addr: &str, error: ClientError) -> ClientError {
    match error {
        ClientError::ConnectionLost {
            source: Some(source),
            ..
        } if source
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) =>
        {
            ClientError::Tls {
                addr: addr.to_string(),
                source,
            }
        }
        error => error,
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
        let api = api_name(R::KEY);
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
        let mut frame = Reader::new(frame);
        let header =
            ResponseHeader::decode(&mut frame, R::KEY.response_header_version(self.version))
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
        Ok(frame.into_rest())
    }
}

/// Decodes a response body, naming the broker and message in the error.
pub(crate) fn decode_body<T: Message>(body: Bytes, version: i16, addr: &str) -> Result<T> {
    T::from_bytes(body, version).map_err(|e| ClientError::Protocol {
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

#[cfg(test)]
mod tests {
    use super::*;
    use sediment_protocol::messages::api_versions::ApiVersion;
    use sediment_protocol::messages::produce::{
        PartitionProduceData, PartitionProduceResponse, TopicProduceData, TopicProduceResponse,
    };
    use sediment_protocol::messages::{ProduceRequest, ProduceResponse};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;

    mod tls_sasl;

    /// One request as the fake broker read it.
    struct Received {
        header: RequestHeader,
        body: Bytes,
    }

    async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Received> {
        let size = stream.read_i32().await.ok()?;
        let mut frame = vec![0u8; usize::try_from(size).ok()?];
        stream.read_exact(&mut frame).await.ok()?;
        let mut r = Reader::new(Bytes::from(frame));
        // The header version depends on the API and version, which come first.
        let peek = r.clone().into_rest();
        let api = ApiKey::try_from(i16::from_be_bytes([peek[0], peek[1]])).ok()?;
        let version = i16::from_be_bytes([peek[2], peek[3]]);
        let header = RequestHeader::decode(&mut r, api.request_header_version(version)).ok()?;
        Some(Received {
            header,
            body: r.into_rest(),
        })
    }

    async fn respond<M: Message, S: AsyncWrite + Unpin>(
        stream: &mut S,
        request: &Received,
        response: &M,
    ) {
        let api = ApiKey::try_from(request.header.request_api_key).unwrap();
        let version = request.header.request_api_version;
        let mut w = Writer::new();
        ResponseHeader {
            correlation_id: request.header.correlation_id,
        }
        .encode(&mut w, api.response_header_version(version));
        response.encode(&mut w, version).unwrap();
        let body = w.into_bytes();
        stream.write_i32(body.len() as i32).await.unwrap();
        stream.write_all(&body).await.unwrap();
    }

    fn api_versions() -> ApiVersionsResponse {
        ApiVersionsResponse::default().with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(ApiKey::ApiVersions as i16)
                .with_max_version(3),
            ApiVersion::default()
                .with_api_key(ApiKey::Produce as i16)
                .with_min_version(3)
                .with_max_version(11),
        ])
    }

    fn config(addr: &str) -> ClientConfig {
        let mut config = ClientConfig::new(addr);
        config.client_id = "test-client".into();
        config
    }

    #[tokio::test]
    async fn given_a_broker_then_requests_are_framed_and_answers_matched() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // Large enough to be written as a shared chunk of the frame.
        let records = Bytes::from(vec![7u8; 5000]);
        let expected = records.clone();
        let broker = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let hello = read_request(&mut stream).await.unwrap();
            assert_eq!(hello.header.request_api_key, ApiKey::ApiVersions as i16);
            assert_eq!(hello.header.request_api_version, 3);
            assert_eq!(hello.header.client_id.as_deref(), Some("test-client"));
            let request = ApiVersionsRequest::from_bytes(hello.body.clone(), 3).unwrap();
            assert_eq!(request.client_software_name, "sediment-client");
            respond(&mut stream, &hello, &api_versions()).await;

            let produce = read_request(&mut stream).await.unwrap();
            assert_eq!(produce.header.request_api_key, ApiKey::Produce as i16);
            assert_eq!(produce.header.request_api_version, 9);
            let request = ProduceRequest::from_bytes(produce.body.clone(), 9).unwrap();
            let data = &request.topic_data[0].partition_data[0];
            assert_eq!(request.topic_data[0].name, "t");
            assert_eq!(data.records.as_ref(), Some(&expected));
            let response =
                ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
                    .with_name("t".into())
                    .with_partition_responses(vec![PartitionProduceResponse::default()
                        .with_index(data.index)
                        .with_base_offset(42)])]);
            respond(&mut stream, &produce, &response).await;
        });

        let connection = BrokerConnection::connect(&addr, &config(&addr))
            .await
            .unwrap();
        let version = connection.version(ApiKey::Produce).unwrap();
        assert_eq!(version, 9);
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name("t".into())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(2)
                    .with_records(Some(records))])]);
        let response = connection.send(&request, version).await.unwrap();
        let answer = &response.responses[0].partition_responses[0];
        assert_eq!((answer.index, answer.base_offset), (2, 42));
        broker.await.unwrap();
    }

    #[tokio::test]
    async fn given_a_broker_without_api_versions_v3_then_the_client_falls_back_to_v0() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let broker = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let hello = read_request(&mut stream).await.unwrap();
            assert_eq!(hello.header.request_api_version, 3);
            // Kafka answers an unknown ApiVersions version in the v0 format.
            let refusal = ApiVersionsResponse::default().with_error_code(UNSUPPORTED_VERSION);
            let mut w = Writer::new();
            ResponseHeader {
                correlation_id: hello.header.correlation_id,
            }
            .encode(&mut w, 0);
            refusal.encode(&mut w, 0).unwrap();
            let body = w.into_bytes();
            stream.write_i32(body.len() as i32).await.unwrap();
            stream.write_all(&body).await.unwrap();

            let again = read_request(&mut stream).await.unwrap();
            assert_eq!(again.header.request_api_version, 0);
            respond(&mut stream, &again, &api_versions()).await;
        });
        let connection = BrokerConnection::connect(&addr, &config(&addr))
            .await
            .unwrap();
        assert_eq!(connection.version(ApiKey::Produce).ok(), Some(9));
        assert!(matches!(
            connection.version(ApiKey::Fetch),
            Err(ClientError::UnsupportedApi { .. })
        ));
        broker.await.unwrap();
    }
}
