//! Incremental frame decoder.

use bytes::{Buf, BytesMut};

use crate::{CodecError, Frame, FrameKind, DEFAULT_MAX_FRAME, HEADER_LEN};

/// Cuts frames out of a byte buffer as they arrive.
///
/// A pure state machine: feed it whatever bytes were read, call [`decode`](Self::decode)
/// until it returns `Ok(None)`, read more, repeat. The announced body length is checked
/// against the limit before any memory is reserved.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_body: u32,
}

impl FrameDecoder {
    /// A decoder that accepts bodies of at most `max_body` bytes.
    pub fn new(max_body: u32) -> Self {
        FrameDecoder { max_body }
    }

    /// The largest body this decoder accepts.
    pub fn max_body(&self) -> u32 {
        self.max_body
    }

    /// Whether `buf` starts with a whole frame (header and body), so that the next
    /// [`decode`](Self::decode) returns it (or an error) without more bytes.
    ///
    /// A reader uses it to tell a burst of pipelined frames from the last one read.
    pub fn has_whole_frame(&self, buf: &[u8]) -> bool {
        match buf.first_chunk::<4>() {
            Some(len) => {
                let body = u32::from_le_bytes(*len) as usize;
                buf.len() >= HEADER_LEN.saturating_add(body)
            }
            None => false,
        }
    }

    /// The body length announced by the header at the start of `buf`, checked against the
    /// limit: `Ok(None)` until the whole header is in. Reserves nothing, so a reader can
    /// decide where (and whether) to put the body before any memory is allocated for it.
    ///
    /// `Err(CodecError::FrameTooLarge { .. })` exactly when [`decode`](Self::decode) would
    /// return it.
    pub fn body_len(&self, buf: &[u8]) -> Result<Option<u32>, CodecError> {
        let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        if len > self.max_body {
            return Err(CodecError::FrameTooLarge {
                size: u64::from(len),
                limit: self.max_body,
            });
        }
        Ok(Some(len))
    }

    /// Takes the next complete frame off the front of `buf`.
    ///
    /// - `Ok(None)`: more bytes are needed. Once the header is in, `buf` is grown to hold
    ///   the whole frame (at most `max_body + HEADER_LEN` bytes are requested).
    /// - `Ok(Some(frame))`: the frame was removed from `buf`; its body shares the buffer's
    ///   memory (no copy).
    /// - `Err(CodecError::FrameTooLarge { .. })`: as soon as a header announces a body
    ///   larger than the limit; nothing is consumed or reserved. The connection cannot be
    ///   resynchronised after this.
    ///
    /// Frames of any kind are returned, including unknown ones; the caller applies the
    /// rules for unknown kinds (see [`FrameKind::is_ignorable`]).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let header = *header;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        if len > self.max_body {
            return Err(CodecError::FrameTooLarge {
                size: u64::from(len),
                limit: self.max_body,
            });
        }
        // `len <= max_body <= u32::MAX`, which fits in usize on every supported target.
        let total = HEADER_LEN + len as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let body = buf.split_to(total - HEADER_LEN).freeze();
        Ok(Some(Frame {
            kind: FrameKind(header[4]),
            flags: header[5],
            aux: u16::from_le_bytes([header[6], header[7]]),
            id: u64::from_le_bytes([
                header[8], header[9], header[10], header[11], header[12], header[13], header[14],
                header[15],
            ]),
            body,
        }))
    }
}

impl Default for FrameDecoder {
    /// A decoder with the [`DEFAULT_MAX_FRAME`] limit.
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn body_len_reads_the_header_only_and_checks_the_limit() {
        let mut wire = BytesMut::new();
        Frame::new(FrameKind::RESPONSE, 3, Bytes::from_static(b"abc")).encode(&mut wire);
        let dec = FrameDecoder::new(3);
        assert_eq!(dec.body_len(&wire[..HEADER_LEN - 1]).unwrap(), None);
        assert_eq!(dec.body_len(&wire[..HEADER_LEN]).unwrap(), Some(3));
        let err = FrameDecoder::new(2).body_len(&wire).unwrap_err();
        assert_eq!(err.to_string(), "frame of 3 bytes exceeds limit of 2");
    }

    #[test]
    fn needs_whole_header_then_body() {
        let mut wire = BytesMut::new();
        Frame::new(FrameKind::RESPONSE, 3, Bytes::from_static(b"abc")).encode(&mut wire);
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::new();
        for (i, b) in wire.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = dec.decode(&mut buf).unwrap();
            if i + 1 < wire.len() {
                assert!(got.is_none(), "frame decoded early at byte {i}");
            } else {
                let frame = got.unwrap();
                assert_eq!(frame.id, 3);
                assert_eq!(&frame.body[..], b"abc");
            }
        }
        assert!(buf.is_empty());
        assert!(dec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn whole_frame_is_told_apart_from_a_partial_one() {
        let mut wire = BytesMut::new();
        Frame::new(FrameKind::RESPONSE, 3, Bytes::from_static(b"abc")).encode(&mut wire);
        let dec = FrameDecoder::default();
        assert!(dec.has_whole_frame(&wire));
        assert!(!dec.has_whole_frame(&wire[..wire.len() - 1]));
        assert!(!dec.has_whole_frame(&wire[..3]));
        assert!(!dec.has_whole_frame(&[]));
    }

    #[test]
    fn two_frames_in_one_buffer() {
        let mut buf = BytesMut::new();
        Frame::new(FrameKind::CANCEL, 1, Bytes::new()).encode(&mut buf);
        Frame::error(0, crate::StatusCode::PROTOCOL, "bad").encode(&mut buf);
        buf.extend_from_slice(&[1, 2]);
        let mut dec = FrameDecoder::new(10);
        assert_eq!(
            dec.decode(&mut buf).unwrap().unwrap().kind,
            FrameKind::CANCEL
        );
        assert_eq!(dec.decode(&mut buf).unwrap().unwrap().message(), "bad");
        assert!(dec.decode(&mut buf).unwrap().is_none());
        assert_eq!(&buf[..], &[1, 2]);
    }

    #[test]
    fn oversized_header_is_rejected_before_reserving() {
        let mut buf = BytesMut::with_capacity(HEADER_LEN);
        buf.extend_from_slice(&[
            0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
        ]);
        let cap = buf.capacity();
        let mut dec = FrameDecoder::default();
        let err = dec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            CodecError::FrameTooLarge {
                size: 0xFFFF_FFFF,
                limit: DEFAULT_MAX_FRAME
            }
        ));
        assert_eq!(err.status(), crate::StatusCode::FRAME_TOO_LARGE);
        assert_eq!(buf.capacity(), cap);
        assert_eq!(buf.len(), HEADER_LEN);
    }

    #[test]
    fn limit_is_inclusive() {
        let mut buf = BytesMut::new();
        Frame::new(FrameKind::RESPONSE, 1, Bytes::from_static(b"12345")).encode(&mut buf);
        let mut copy = buf.clone();
        assert!(FrameDecoder::new(5).decode(&mut buf).unwrap().is_some());
        assert!(matches!(
            FrameDecoder::new(4).decode(&mut copy),
            Err(CodecError::FrameTooLarge { size: 5, limit: 4 })
        ));
    }

    #[test]
    fn reserves_for_announced_frame() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[100, 0, 0, 0, 0x02, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        let mut dec = FrameDecoder::new(1000);
        assert!(dec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() >= HEADER_LEN + 100);
    }
}
