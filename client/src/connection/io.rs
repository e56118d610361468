//! The two tasks that own a connection's socket: the writer, which
//! coalesces queued frames into as few writes as it can, and the reader,
//! which splits the byte stream into response frames and hands each to the
//! request waiting for its correlation id.
//!
//! Both end by closing the connection's shared state (every waiter gets the
//! error) and never panic on what the broker sends: a frame size outside
//! `4..=MAX_RESPONSE_BYTES` closes the connection, and the read buffer grows
//! by at most `READ_CHUNK` ahead of the bytes received.
//!
//! Both are generic over the stream half, so a plain TCP connection runs
//! on tokio's owned TCP halves exactly as before (monomorphised, no boxing
//! or locking) and a TLS connection on the two halves of its `TlsStream`.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use super::{Frame, Shared};
use crate::error::{ClientError, Result};

/// Largest response frame accepted (a fetch answer is bounded by the
/// consumer's `fetch_max_bytes`, far below this).
pub(crate) const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// Largest buffer growth step while a big frame arrives.
const READ_CHUNK: usize = 8 << 20;

/// Writes queued frames until the handle side goes away or a write fails.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut frames: mpsc::UnboundedReceiver<Frame>,
    write_half: W,
    shared: Arc<Shared>,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, write_half);
    while let Some(frame) = frames.recv().await {
        let mut result = write_frame(&mut out, &frame).await;
        // Coalesce whatever else is queued into the same flush.
        while result.is_ok() {
            match frames.try_recv() {
                Ok(frame) => result = write_frame(&mut out, &frame).await,
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = out.flush().await;
        }
        if let Err(e) = result {
            shared.close(ClientError::ConnectionLost {
                addr: shared.addr.clone(),
                reason: format!("write failed: {e}"),
                source: Some(Arc::new(e)),
            });
            return;
        }
    }
    let _ = out.shutdown().await;
}

/// Writes one frame's buffers in order.
async fn write_frame<W: AsyncWrite + Unpin>(
    out: &mut BufWriter<W>,
    frame: &Frame,
) -> std::io::Result<()> {
    for chunk in frame {
        out.write_all(chunk).await?;
    }
    Ok(())
}

/// Reads responses until end of stream or an error, then closes the connection.
pub(super) async fn read_loop<R: AsyncRead + Unpin>(mut read_half: R, shared: Arc<Shared>) {
    let error = match read_frames(&mut read_half, &shared).await {
        Ok(()) => ClientError::ConnectionLost {
            addr: shared.addr.clone(),
            reason: "the broker closed the connection".into(),
            source: None,
        },
        Err(e) => e,
    };
    shared.close(error);
}

/// Reads frames until end of stream or an error, handing each to its waiter.
async fn read_frames<R: AsyncRead + Unpin>(read_half: &mut R, shared: &Shared) -> Result<()> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        // Split off every complete frame already buffered.
        let mut needed = 4;
        while buf.len() >= 4 {
            let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            let size = usize::try_from(size)
                .ok()
                .filter(|s| (4..=MAX_RESPONSE_BYTES).contains(s))
                .ok_or_else(|| ClientError::Protocol {
                    addr: shared.addr.clone(),
                    reason: format!("response frame size {size} is out of range"),
                })?;
            if buf.len() < 4 + size {
                needed = 4 + size;
                break;
            }
            buf.advance(4);
            let frame = buf.split_to(size).freeze();
            let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let waiter = shared.lock().waiters.remove(&correlation_id);
            match waiter {
                Some(waiter) => {
                    let _ = waiter.send(Ok(frame));
                }
                None => tracing::debug!(
                    broker = %shared.addr,
                    correlation_id,
                    "response for a request nobody waits for (timed out)"
                ),
            }
        }
        let missing = needed.saturating_sub(buf.len()).clamp(4096, READ_CHUNK);
        buf.reserve(missing);
        let n = read_half
            .read_buf(&mut buf)
            .await
            .map_err(|e| ClientError::ConnectionLost {
                addr: shared.addr.clone(),
                reason: format!("read failed: {e}"),
                source: Some(Arc::new(e)),
            })?;
        if n == 0 {
            return Ok(());
        }
    }
}
