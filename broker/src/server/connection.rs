//! One client connection: read frames, run each request on its own task,
//! write the responses back strictly in request order (Kafka clients
//! pipeline and match by order as well as correlation id).
//!
//! Limits, each answering one way a client could hurt the broker:
//! - a new connection must deliver its first whole request within
//!   `connection_setup_timeout` (under SASL: finish authenticating within
//!   it), and until it has, a newcomer at the connection cap may take its
//!   slot (`server::admission`); a TLS handshake must finish within a
//!   deadline of the same length before that, and is evictable too;
//! - before authentication, frames are capped at `MAX_UNAUTHENTICATED_FRAME`
//!   and only ApiVersions and the SASL exchange are served (`server::sasl`);
//! - the frame size is checked before its body is buffered (`max_request_bytes`);
//! - a frame must arrive whole within `request_read_timeout` (slow-loris);
//! - a connection with no request for `idle_timeout` is closed;
//! - at most `max_in_flight_requests` requests are pipelined;
//! - response bytes not yet written are bounded by `max_unsent_response_bytes`:
//!   each request reserves room for its response *in request order* before it
//!   runs (a Fetch reserves its whole size limit), and the writer releases the
//!   room once the bytes are on the socket. A client that never reads stops
//!   being read from, and the broker's memory stays bounded;
//! - a response the client takes no byte of for `idle_timeout` closes the
//!   connection: a client that never reads would otherwise keep its
//!   connection slot forever, since its reader is parked on the room above and
//!   never reaches the idle timeout;
//! - once the writer stops (the client is gone, stalled, or a request was
//!   refused after its header), the reader stops too, so the connection's
//!   slot is released at once rather than when the client gets round to
//!   closing its end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::io::IoSlice;

use bytes::{Bytes, BytesMut};
use sediment_protocol::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::handlers::{self, api_versions, HandlerError, Reply};
use crate::protocol::codec::{decode_header, header_prefix, DecodeError, ResponseFrame};
use crate::protocol::frame::FrameDecoder;
use crate::protocol::versions;
use crate::server::admission::Ticket;
use crate::server::sasl::{Authenticator, Gate};
use crate::server::tls::{certificate_principal, TlsContext};
use crate::session::{ListenerKind, Session, ANONYMOUS};

/// Response room reserved for a request other than Fetch.
const SMALL_RESPONSE_RESERVE: usize = 64 * 1024;

/// Largest frame read before a connection has authenticated (Kafka's
/// `sasl.server.max.receive.size`): an unauthenticated client cannot make
/// the broker buffer a 100 MiB request.
const MAX_UNAUTHENTICATED_FRAME: usize = 512 * 1024;

enum Outcome {
    Running(JoinHandle<Result<Reply, HandlerError>>),
    Ready(Reply),
}

struct InFlight {
    outcome: Outcome,
    _room: OwnedSemaphorePermit,
}

/// Why the reader stopped.
enum Stop {
    Closed,
    Shutdown,
    /// The writer stopped first and logged why.
    WriterStopped,
    /// Closed by a limit that floods can trip by the thousand: logged at
    /// debug, the admission reports the limit itself at a bounded rate.
    Quiet(&'static str),
    Fatal(String),
}

/// Why a response could not be written; the connection is closed.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// The socket refused the bytes.
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
    /// The client took none of the bytes for this long.
    #[error("client read no response bytes for {0:?}")]
    Stalled(Duration),
}

/// Serves one plaintext connection until the client closes it, a limit or
/// protocol error closes it (one log line), or the broker shuts down.
pub async fn serve(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    ticket: Ticket,
) {
    let _ = stream.set_nodelay(true);
    // Counted in `sediment_connections` until this function returns.
    let counted = Arc::clone(&broker);
    let _open = counted.telemetry().connection_opened();
    let (reader, writer) = stream.into_split();
    let session = Session::new(ANONYMOUS, peer, ListenerKind::Plain);
    serve_stream(broker, reader, writer, session, stop, ticket).await;
}

/// Serves one connection of the TLS listener: the handshake must finish
/// within the connection setup timeout (and may be evicted at the
/// connection cap like any connection that has sent no request), then the
/// connection is served like a plaintext one, its principal the client
/// certificate's subject under mutual TLS.
pub async fn serve_tls(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    mut ticket: Ticket,
    tls: Arc<TlsContext>,
) {
    let _ = stream.set_nodelay(true);
    let counted = Arc::clone(&broker);
    let _open = counted.telemetry().connection_opened();
    let limit = broker.config().connection_setup_timeout;
    let handshake = tokio::select! {
        _ = ticket.evicted() => {
            tracing::debug!(%peer, "TLS handshake evicted: the connection limit was reached");
            return;
        }
        handshake = tokio::time::timeout(limit, tls.acceptor().accept(stream)) => handshake,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            broker.security().note_tls_failure(peer, &error.to_string());
            return;
        }
        Err(_) => {
            broker
                .security()
                .note_tls_failure(peer, &format!("handshake not finished within {limit:?}"));
            return;
        }
    };
    let principal = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(certificate_principal)
        .unwrap_or_else(|| ANONYMOUS.to_string());
    let session = Session::new(principal, peer, ListenerKind::Tls);
    let (reader, writer) = tokio::io::split(stream);
    serve_stream(broker, reader, writer, session, stop, ticket).await;
}

/// The request pipeline of one connection, over any byte stream.
async fn serve_stream<R, W>(
    broker: Arc<Broker>,
    mut reader: R,
    writer: W,
    transport: Session,
    mut stop: watch::Receiver<bool>,
    mut ticket: Ticket,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let peer = transport.peer;
    let config = broker.config().clone();
    let (tx, rx) = mpsc::channel::<InFlight>(config.max_in_flight_requests);
    let room = Arc::new(Semaphore::new(config.max_unsent_response_bytes));
    let write_task = tokio::spawn(write_responses(writer, rx, peer, config.idle_timeout));

    // Without SASL the transport's principal (anonymous, or the client
    // certificate's subject) is the session from the start; with SASL there
    // is none until the exchange succeeds, and until then only ApiVersions
    // and the exchange itself are served, in frames of at most
    // `MAX_UNAUTHENTICATED_FRAME` bytes.
    let mut authenticator = Authenticator::new(&broker, &transport);
    let unauthenticated = Arc::new(transport.clone());
    let mut session = authenticator
        .is_none()
        .then(|| Arc::clone(&unauthenticated));
    let decoder = FrameDecoder::new(config.max_request_bytes);
    let unauthenticated_decoder =
        FrameDecoder::new(config.max_request_bytes.min(MAX_UNAUTHENTICATED_FRAME));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    // Until its first request is in, the connection is "pending": it must
    // finish that request by the setup deadline, and may be evicted.
    let setup_deadline = Instant::now() + config.connection_setup_timeout;
    let mut established = false;
    let stop_reason = loop {
        // Wait for the first bytes of the next frame: idle (or setup)
        // timeout, eviction, or shutdown.
        if buf.is_empty() {
            let wait_until = if established {
                Instant::now() + config.idle_timeout
            } else {
                setup_deadline
            };
            let read = tokio::select! {
                _ = stop.wait_for(|stopping| *stopping) => break Stop::Shutdown,
                _ = tx.closed() => break Stop::WriterStopped,
                _ = ticket.evicted() => break Stop::Quiet("evicted: the connection limit was reached and it had sent no request"),
                read = tokio::time::timeout_at(wait_until, reader.read_buf(&mut buf)) => read,
            };
            match read {
                Err(_) if established => {
                    break Stop::Fatal(format!("idle for {:?}", config.idle_timeout))
                }
                Err(_) => break Stop::Quiet("no request within the connection setup timeout"),
                Ok(Ok(0)) => break Stop::Closed,
                Ok(Ok(_)) => {}
                Ok(Err(e)) if is_disconnect(&e) => break Stop::Closed,
                Ok(Err(e)) => break Stop::Fatal(format!("read failed: {e}")),
            }
        }
        // Then the whole frame within the read timeout (and, for the first
        // request, the setup deadline).
        let read_deadline = Instant::now() + config.request_read_timeout;
        let (deadline, limit) = if !established && setup_deadline < read_deadline {
            (setup_deadline, config.connection_setup_timeout)
        } else {
            (read_deadline, config.request_read_timeout)
        };
        let decoder = if session.is_some() {
            &decoder
        } else {
            &unauthenticated_decoder
        };
        let frame = loop {
            match decoder.decode(&mut buf) {
                Err(e) => break Err(Stop::Fatal(e.to_string())),
                Ok(Some(frame)) => break Ok(frame),
                Ok(None) => {
                    let read = tokio::select! {
                        _ = tx.closed() => break Err(Stop::WriterStopped),
                        _ = ticket.evicted() => break Err(Stop::Quiet("evicted: the connection limit was reached and it had sent no whole request")),
                        read = tokio::time::timeout_at(deadline, reader.read_buf(&mut buf)) => read,
                    };
                    match read {
                        Err(_) => {
                            break Err(Stop::Fatal(format!(
                                "request not complete after {limit:?} ({} bytes received)",
                                buf.len()
                            )))
                        }
                        Ok(Ok(0)) => {
                            break Err(Stop::Fatal(format!(
                                "closed mid-request ({} bytes received)",
                                buf.len()
                            )))
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) if is_disconnect(&e) => break Err(Stop::Closed),
                        Ok(Err(e)) => break Err(Stop::Fatal(format!("read failed: {e}"))),
                    }
                }
            }
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(stop) => break stop,
        };
        // A connection that must authenticate stays pending (bound by the
        // setup deadline, evictable at the cap) until it has.
        if !established && session.is_some() {
            established = true;
            ticket.established();
        }
        let request_session = match (&session, authenticator.as_mut()) {
            (Some(session), _) => Arc::clone(session),
            (None, None) => Arc::clone(&unauthenticated),
            (None, Some(authenticator)) => match authenticator.gate(&broker, &frame).await {
                Gate::Pass => Arc::clone(&unauthenticated),
                Gate::Reply(reply) => {
                    if send_ready(&tx, &room, reply).await.is_err() {
                        break Stop::Closed;
                    }
                    continue;
                }
                Gate::Authenticated(reply, principal) => {
                    session = Some(Arc::new(Session::new(
                        principal,
                        transport.peer,
                        transport.listener,
                    )));
                    established = true;
                    ticket.established();
                    if send_ready(&tx, &room, reply).await.is_err() {
                        break Stop::Closed;
                    }
                    continue;
                }
                Gate::Refuse(reply) => {
                    // Logged by the gatekeeper, at a bounded rate.
                    let _ = send_ready(&tx, &room, reply).await;
                    break Stop::Quiet("authentication failed");
                }
                Gate::Close(reason) => {
                    broker
                        .security()
                        .note_closed_before_authentication(peer, &reason);
                    break Stop::Quiet("closed before authentication (logged at a bounded rate)");
                }
            },
        };
        let in_flight = match admit(&broker, frame, &room, &config, request_session).await {
            Ok(in_flight) => in_flight,
            Err(reason) => break Stop::Fatal(reason),
        };
        if tx.send(in_flight).await.is_err() {
            break Stop::Closed; // the writer stopped: the socket is gone
        }
    };
    drop(tx);
    // Responses to everything already read are still written (graceful shutdown).
    let _ = write_task.await;
    match stop_reason {
        Stop::Closed | Stop::Shutdown | Stop::WriterStopped => {
            tracing::debug!(%peer, "connection closed")
        }
        Stop::Quiet(reason) => tracing::debug!(%peer, %reason, "closing connection"),
        Stop::Fatal(reason) => tracing::warn!(%peer, %reason, "closing connection"),
    }
}

/// Decodes the header, reserves response room in request order, and starts
/// the handler. Errors close the connection.
async fn admit(
    broker: &Arc<Broker>,
    frame: bytes::Bytes,
    room: &Arc<Semaphore>,
    config: &crate::config::BrokerConfig,
    session: Arc<Session>,
) -> Result<InFlight, String> {
    let prefix = header_prefix(&frame).map_err(|e| e.to_string())?;
    let key = ApiKey::try_from(prefix.api_key)
        .map_err(|_| DecodeError::UnknownApiKey(prefix.api_key).to_string())?;
    let reserve = match key {
        ApiKey::Fetch => config.fetch_max_bytes,
        _ => SMALL_RESPONSE_RESERVE,
    }
    .min(config.max_unsent_response_bytes);
    let permits = u32::try_from(reserve).unwrap_or(u32::MAX);
    let room = Arc::clone(room)
        .acquire_many_owned(permits)
        .await
        .map_err(|_| "connection closing".to_string())?;
    if !versions::is_supported(prefix.api_key, prefix.api_version) {
        if key == ApiKey::ApiVersions {
            let frame = api_versions::unsupported_version_reply(prefix.correlation_id)?;
            return Ok(InFlight {
                outcome: Outcome::Ready(Reply::Frame(frame)),
                _room: room,
            });
        }
        let error = if versions::advertised(prefix.api_key).is_some() {
            DecodeError::UnsupportedVersion {
                key,
                version: prefix.api_version,
            }
        } else {
            DecodeError::UnsupportedApi { key }
        };
        return Err(error.to_string());
    }
    if !versions::is_decoded(prefix.api_key, prefix.api_version) {
        return Err(format!(
            "{key:?} v{} is advertised for old clients' sake but not accepted: use v3 or later (record batches v2)",
            prefix.api_version
        ));
    }
    if key != ApiKey::Produce && frame.len() > config.max_control_request_bytes {
        return Err(format!(
            "{key:?} request of {} bytes exceeds the {}-byte limit for requests without records (max_control_request_bytes)",
            frame.len(),
            config.max_control_request_bytes
        ));
    }
    let request = decode_header(frame, key, prefix.api_version).map_err(|e| e.to_string())?;
    // `start` appends a Produce's records here, in request order (Kafka keeps
    // the order of pipelined produces on a connection); only the rest (the
    // durability wait, every other request) runs concurrently.
    let handle = tokio::spawn(handlers::start(broker, request, session));
    Ok(InFlight {
        outcome: Outcome::Running(handle),
        _room: room,
    })
}

/// Queues a reply made by the connection itself (the SASL exchange) in
/// request order, with room reserved like any other small response.
async fn send_ready(
    tx: &mpsc::Sender<InFlight>,
    room: &Arc<Semaphore>,
    reply: ResponseFrame,
) -> Result<(), ()> {
    let permits = u32::try_from(SMALL_RESPONSE_RESERVE).unwrap_or(u32::MAX);
    let room = Arc::clone(room)
        .acquire_many_owned(permits)
        .await
        .map_err(|_| ())?;
    tx.send(InFlight {
        outcome: Outcome::Ready(Reply::Frame(reply)),
        _room: room,
    })
    .await
    .map_err(|_| ())
}

/// Writes responses in request order; each one's reserved room is released
/// once its bytes are written. Gives up on a client that takes no byte for
/// `stall`.
async fn write_responses<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<InFlight>,
    peer: SocketAddr,
    stall: Duration,
) {
    while let Some(in_flight) = rx.recv().await {
        let reply = match in_flight.outcome {
            Outcome::Ready(reply) => Ok(reply),
            Outcome::Running(handle) => match handle.await {
                Ok(result) => result,
                Err(join) => {
                    tracing::error!(%peer, error = %join, "request handler failed; closing connection");
                    break;
                }
            },
        };
        match reply {
            Ok(Reply::Frame(chunks)) => {
                match write_with_progress(&mut writer, &chunks, stall).await {
                    Ok(()) => {}
                    Err(error @ WriteError::Stalled(_)) => {
                        tracing::warn!(%peer, reason = %error, "closing connection");
                        break;
                    }
                    Err(error) => {
                        tracing::debug!(%peer, %error, "write failed");
                        break;
                    }
                }
            }
            Ok(Reply::Nothing) => {}
            Err(error) => {
                tracing::warn!(%peer, %error, "closing connection");
                break;
            }
        }
    }
    // Dropping the receiver (and the responses still queued in it, with their
    // reserved room) wakes the reader wherever it waits, and it stops.
    drop(rx);
    let _ = writer.shutdown().await;
}

/// Writes every buffer of a response with vectored writes (record slices go
/// from the segment mappings to the socket without a copy), failing when the
/// socket takes none of the bytes for `stall` (a slow reader that keeps
/// taking bytes is never cut off).
async fn write_with_progress<W: AsyncWrite + Unpin>(
    writer: &mut W,
    chunks: &[Bytes],
    stall: Duration,
) -> Result<(), WriteError> {
    /// Buffers handed to one `writev`: enough for a fetch of many partitions.
    const MAX_IO_SLICES: usize = 64;
    let mut chunk = 0;
    let mut offset = 0;
    while chunk < chunks.len() {
        let slices: Vec<IoSlice<'_>> = chunks[chunk..]
            .iter()
            .take(MAX_IO_SLICES)
            .enumerate()
            .map(|(i, c)| {
                IoSlice::new(if i == 0 {
                    c.get(offset..).unwrap_or_default()
                } else {
                    c
                })
            })
            .collect();
        let mut written = match tokio::time::timeout(stall, writer.write_vectored(&slices)).await {
            Err(_) => return Err(WriteError::Stalled(stall)),
            Ok(Ok(0)) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()),
            Ok(Ok(written)) => written,
            Ok(Err(error)) => return Err(error.into()),
        };
        // Advance past what the socket took.
        while chunk < chunks.len() && written > 0 {
            let left = chunks[chunk].len() - offset;
            if written >= left {
                written -= left;
                chunk += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
        while chunk < chunks.len() && chunks[chunk].len() == offset {
            chunk += 1;
            offset = 0;
        }
    }
    Ok(())
}

/// A client going away (a reset is how librdkafka closes; over TLS, a close
/// without close_notify is an unexpected EOF) is not worth a warning.
fn is_disconnect(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::UnexpectedEof
    )
}
