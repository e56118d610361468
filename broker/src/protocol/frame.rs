//! Length-prefixed Kafka frames, sans-IO: a frame is a big-endian i32 size
//! followed by that many bytes. The size is checked against the cap before a
//! single byte of the body is buffered, so a client cannot make the broker
//! allocate more than `max_frame_bytes` for one request.

use bytes::{Buf, Bytes, BytesMut};

/// Why a frame was refused; the connection is closed with one log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix is negative.
    #[error("negative frame length {0}")]
    Negative(i32),
    /// The length prefix exceeds the broker's `max_request_bytes`.
    #[error("frame of {size} bytes exceeds the {max}-byte limit (max_request_bytes)")]
    TooLarge {
        /// Declared size.
        size: usize,
        /// The cap.
        max: usize,
    },
}

/// Splits complete frames off a read buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames larger than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self { max_frame_bytes }
    }

    /// Takes the next complete frame body off the front of `buf`, `Ok(None)`
    /// if more bytes are needed. Reserves room for the rest of a started frame
    /// only once its size has passed the cap.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(size) = self.peek_size(buf)? else {
            return Ok(None);
        };
        if buf.len() < 4 + size {
            buf.reserve(4 + size - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(size).freeze()))
    }

    /// The validated size of the frame at the front of `buf`, if its prefix is there.
    pub fn peek_size(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = buf.get(..4) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let size = usize::try_from(size).map_err(|_| FrameError::Negative(size))?;
        if size > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                size,
                max: self.max_frame_bytes,
            });
        }
        Ok(Some(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn given_partial_then_complete_frames_then_split_in_order() {
        let decoder = FrameDecoder::new(1024);
        let mut buf = BytesMut::new();
        let mut wire = framed(b"first");
        wire.extend(framed(b"second"));
        buf.extend_from_slice(&wire[..3]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&wire[3..7]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&wire[7..]);
        assert_eq!(
            decoder.decode(&mut buf).unwrap().as_deref(),
            Some(&b"first"[..])
        );
        assert_eq!(
            decoder.decode(&mut buf).unwrap().as_deref(),
            Some(&b"second"[..])
        );
        assert_eq!(decoder.decode(&mut buf), Ok(None));
    }

    #[test]
    fn given_negative_or_huge_length_then_refused_before_buffering() {
        let decoder = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert_eq!(decoder.decode(&mut buf), Err(FrameError::Negative(-1)));
        let mut buf = BytesMut::from(&i32::MAX.to_be_bytes()[..]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(
            buf.capacity() < 1024,
            "nothing reserved for a refused frame"
        );
    }

    #[test]
    fn given_empty_frame_then_empty_body() {
        let decoder = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&framed(b"")[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap().as_deref(), Some(&b""[..]));
    }
}
