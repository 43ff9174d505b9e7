//! Frames: a 16-byte header followed by a body.
//!
//! Header layout (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `u32` body length |
//! | 4 | 1 | `u8` kind |
//! | 5 | 1 | `u8` flags |
//! | 6 | 2 | `u16` aux (method index, status code, or 0) |
//! | 8 | 8 | `u64` request id |

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use crate::{flags, CodecError, FrameKind, StatusCode, HEADER_LEN};

/// One frame, as sent after the handshake in both directions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the frame is.
    pub kind: FrameKind,
    /// Flag bits, see [`flags`].
    pub flags: u8,
    /// Kind-specific: method index for REQUEST, status code for ERROR, else 0.
    pub aux: u16,
    /// Request id chosen by the client; 0 for connection-level frames.
    pub id: u64,
    /// Everything after the header.
    pub body: Bytes,
}

impl Frame {
    /// A frame with no flags and `aux` 0.
    pub fn new(kind: FrameKind, id: u64, body: Bytes) -> Frame {
        Frame {
            kind,
            flags: 0,
            aux: 0,
            id,
            body,
        }
    }

    /// A REQUEST frame calling method number `method` with already encoded arguments.
    ///
    /// No deadline: use [`Frame::with_deadline`] to add one.
    pub fn request(id: u64, method: u16, args: Bytes) -> Frame {
        Frame {
            kind: FrameKind::REQUEST,
            flags: 0,
            aux: method,
            id,
            body: args,
        }
    }

    /// This frame with the DEADLINE flag set and `millis` put in front of the body.
    ///
    /// If the flag is already set, the existing deadline is replaced.
    pub fn with_deadline(self, millis: u32) -> Frame {
        let rest = match self.split_deadline() {
            Ok((_, rest)) => rest,
            Err(_) => self.body.clone(),
        };
        let mut body = BytesMut::with_capacity(4 + rest.len());
        body.put_u32_le(millis);
        body.extend_from_slice(&rest);
        Frame {
            flags: self.flags | flags::DEADLINE,
            body: body.freeze(),
            ..self
        }
    }

    /// An ERROR frame with `status` in `aux` and `message` as its UTF-8 body.
    pub fn error(id: u64, status: StatusCode, message: &str) -> Frame {
        Frame {
            kind: FrameKind::ERROR,
            flags: 0,
            aux: status.0,
            id,
            body: Bytes::copy_from_slice(message.as_bytes()),
        }
    }

    /// A CANCEL frame: the client gives up on call `id`.
    pub fn cancel(id: u64) -> Frame {
        Frame::new(FrameKind::CANCEL, id, Bytes::new())
    }

    /// A STREAM_END frame: stream `id` ended normally.
    pub fn stream_end(id: u64) -> Frame {
        Frame::new(FrameKind::STREAM_END, id, Bytes::new())
    }

    /// A CREDIT frame granting the sender of stream `id` `items` more items.
    pub fn credit(id: u64, items: u32) -> Frame {
        Frame::new(
            FrameKind::CREDIT,
            id,
            Bytes::copy_from_slice(&items.to_le_bytes()),
        )
    }

    /// The item count of a CREDIT frame (the first 4 bytes of its body).
    ///
    /// Fails with [`CodecError::ShortBody`] when the body is shorter than 4 bytes.
    pub fn credit_items(&self) -> Result<u32, CodecError> {
        match self.body.first_chunk::<4>() {
            Some(count) => Ok(u32::from_le_bytes(*count)),
            None => Err(CodecError::ShortBody {
                kind: self.kind.name(),
                len: self.body.len(),
                needed: 4,
            }),
        }
    }

    /// A GOAWAY frame (server to client, id 0): the server has begun to shut down; the
    /// highest request id it has read is `last_id`.
    pub fn goaway(last_id: u64) -> Frame {
        Frame::new(
            FrameKind::GOAWAY,
            0,
            Bytes::copy_from_slice(&last_id.to_le_bytes()),
        )
    }

    /// A PING frame (either side, id 0) carrying 8 opaque bytes.
    pub fn ping(data: [u8; 8]) -> Frame {
        Frame::new(FrameKind::PING, 0, Bytes::copy_from_slice(&data))
    }

    /// A PONG frame (either side, id 0) answering the PING that carried `data`.
    pub fn pong(data: [u8; 8]) -> Frame {
        Frame::new(FrameKind::PONG, 0, Bytes::copy_from_slice(&data))
    }

    /// The highest request id of a GOAWAY frame (its 8-byte body, little-endian).
    ///
    /// Fails with [`CodecError::BodyLength`] when the body is not exactly 8 bytes.
    pub fn goaway_last_id(&self) -> Result<u64, CodecError> {
        self.body_8().map(u64::from_le_bytes)
    }

    /// The 8 opaque bytes of a PING or PONG frame.
    ///
    /// Fails with [`CodecError::BodyLength`] when the body is not exactly 8 bytes.
    pub fn ping_data(&self) -> Result<[u8; 8], CodecError> {
        self.body_8()
    }

    fn body_8(&self) -> Result<[u8; 8], CodecError> {
        <[u8; 8]>::try_from(&self.body[..]).map_err(|_| CodecError::BodyLength {
            kind: self.kind.name(),
            len: self.body.len(),
            expected: 8,
        })
    }

    /// Whether all bits of `flag` are set.
    pub fn has_flag(&self, flag: u8) -> bool {
        self.flags & flag == flag
    }

    /// The status code of an ERROR frame (its `aux` field).
    pub fn status(&self) -> StatusCode {
        StatusCode(self.aux)
    }

    /// The body read as UTF-8 text, invalid sequences replaced; meant for ERROR frames.
    pub fn message(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// Splits a REQUEST body into its deadline (if the DEADLINE flag is set) and the
    /// encoded arguments. The returned [`Bytes`] shares memory with the body.
    ///
    /// Fails with [`CodecError::ShortBody`] when the flag is set but the body is shorter
    /// than 4 bytes.
    pub fn split_deadline(&self) -> Result<(Option<u32>, Bytes), CodecError> {
        if !self.has_flag(flags::DEADLINE) {
            return Ok((None, self.body.clone()));
        }
        match self.body.first_chunk::<4>() {
            Some(prefix) => Ok((Some(u32::from_le_bytes(*prefix)), self.body.slice(4..))),
            None => Err(CodecError::ShortBody {
                kind: self.kind.name(),
                len: self.body.len(),
                needed: 4,
            }),
        }
    }

    /// Appends header and body to `out`.
    ///
    /// The body length must fit in a `u32` (a longer body is written with its length
    /// saturated to `u32::MAX`, which no receiver accepts); use [`Frame::encode_checked`]
    /// to check it against the peer's limit first.
    pub fn encode(&self, out: &mut BytesMut) {
        let len = u32::try_from(self.body.len()).unwrap_or(u32::MAX);
        out.reserve(HEADER_LEN + self.body.len());
        put_header(out, len, self.kind, self.flags, self.aux, self.id);
        out.extend_from_slice(&self.body);
    }

    /// Appends header and body to `out` if the body is at most `max_body` bytes, else
    /// leaves `out` unchanged and returns [`CodecError::FrameTooLarge`].
    pub fn encode_checked(&self, out: &mut BytesMut, max_body: u32) -> Result<(), CodecError> {
        let size = self.body.len() as u64;
        if size > u64::from(max_body) {
            return Err(CodecError::FrameTooLarge {
                size,
                limit: max_body,
            });
        }
        self.encode(out);
        Ok(())
    }
}

/// Where a frame started in an output buffer; returned by [`begin_frame`], consumed by
/// [`finish_frame`].
#[derive(Debug, Clone, Copy)]
pub struct FrameStart {
    offset: usize,
}

impl FrameStart {
    /// Offset of the frame header in the output buffer.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// Appends a frame header with a placeholder length to `out`.
///
/// Write the body straight after it (for example with [`FormatId::encode`](crate::FormatId::encode)),
/// then call [`finish_frame`] to fill in the length. The body is never copied.
pub fn begin_frame(
    out: &mut BytesMut,
    kind: FrameKind,
    flags: u8,
    aux: u16,
    id: u64,
) -> FrameStart {
    let offset = out.len();
    put_header(out, 0, kind, flags, aux, id);
    FrameStart { offset }
}

/// Appends the header of a REQUEST frame, and the deadline prefix when `deadline_ms` is
/// `Some` (setting the DEADLINE flag). Write the encoded arguments next, then call
/// [`finish_frame`]. The deadline counts towards the body length.
pub fn begin_request(
    out: &mut BytesMut,
    id: u64,
    method: u16,
    deadline_ms: Option<u32>,
) -> FrameStart {
    let frame_flags = if deadline_ms.is_some() {
        flags::DEADLINE
    } else {
        0
    };
    let start = begin_frame(out, FrameKind::REQUEST, frame_flags, method, id);
    if let Some(millis) = deadline_ms {
        out.put_u32_le(millis);
    }
    start
}

/// Appends one whole frame whose body `body` writes straight into `out`: the header, then
/// the body, then the length is filled in ([`begin_frame`] + [`finish_frame`] in one step).
///
/// When `body` fails, or writes more than `max_body` bytes, `out` is left as it was (earlier
/// frames stay) and the error is returned. This is how payload frames (RESPONSE,
/// STREAM_ITEM) are encoded without an intermediate buffer:
///
/// ```
/// use bytes::BytesMut;
/// use ferry_codec::{encode_frame_with, FormatId, FrameKind};
///
/// let mut out = BytesMut::new();
/// encode_frame_with(&mut out, FrameKind::RESPONSE, 0, 0, 7, 1024, |buf| {
///     FormatId::Bincode.encode(&3i64, buf)
/// })
/// .unwrap();
/// assert_eq!(&out[..], &[1, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 6]);
/// ```
pub fn encode_frame_with(
    out: &mut BytesMut,
    kind: FrameKind,
    flags: u8,
    aux: u16,
    id: u64,
    max_body: u32,
    body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let start = begin_frame(out, kind, flags, aux, id);
    if let Err(err) = body(out) {
        out.truncate(start.offset);
        return Err(err);
    }
    finish_frame(out, start, max_body)
}

/// Appends one whole REQUEST frame ([`begin_request`] + body + [`finish_frame`]):
/// `extra_flags` are or-ed into the header (for example [`flags::STREAM`]); the deadline
/// prefix and the DEADLINE flag are written when `deadline_ms` is `Some`.
///
/// When `args` fails, or the body exceeds `max_body`, `out` is left as it was.
pub fn encode_request_with(
    out: &mut BytesMut,
    id: u64,
    method: u16,
    extra_flags: u8,
    deadline_ms: Option<u32>,
    max_body: u32,
    args: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let start = begin_request(out, id, method, deadline_ms);
    // The flags byte follows the 4-byte length and the kind byte.
    out[start.offset + 5] |= extra_flags;
    if let Err(err) = args(out) {
        out.truncate(start.offset);
        return Err(err);
    }
    finish_frame(out, start, max_body)
}

/// Appends one whole EARLY_REQUEST frame: a REQUEST ([`encode_request_with`]) under kind
/// [`FrameKind::EARLY_REQUEST`], sent right behind a [`Hello`](crate::Hello) with
/// [`Hello::EARLY`](crate::Hello::EARLY), before the [`Welcome`](crate::Welcome).
///
/// When `args` fails, or the body exceeds `max_body`, `out` is left as it was.
pub fn encode_early_request_with(
    out: &mut BytesMut,
    id: u64,
    method: u16,
    deadline_ms: Option<u32>,
    max_body: u32,
    args: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let offset = out.len();
    encode_request_with(out, id, method, 0, deadline_ms, max_body, args)?;
    // The kind byte follows the 4-byte length.
    out[offset + 4] = FrameKind::EARLY_REQUEST.0;
    Ok(())
}

/// Fills in the body length of the frame begun at `start`: everything written to `out`
/// since the header is the body.
///
/// If the body is larger than `max_body`, `out` is truncated back to where the frame
/// began (earlier frames stay) and [`CodecError::FrameTooLarge`] is returned. If `out` was
/// truncated below the header in the meantime, the frame is dropped and
/// [`CodecError::FrameStartLost`] is returned.
pub fn finish_frame(
    out: &mut BytesMut,
    start: FrameStart,
    max_body: u32,
) -> Result<(), CodecError> {
    let Some(size) = out.len().checked_sub(start.offset + HEADER_LEN) else {
        let len = out.len();
        out.truncate(start.offset);
        return Err(CodecError::FrameStartLost {
            offset: start.offset,
            len,
        });
    };
    let size = size as u64;
    if size > u64::from(max_body) {
        out.truncate(start.offset);
        return Err(CodecError::FrameTooLarge {
            size,
            limit: max_body,
        });
    }
    // `size <= max_body <= u32::MAX`, so the cast is exact.
    let len = (size as u32).to_le_bytes();
    out[start.offset..start.offset + 4].copy_from_slice(&len);
    Ok(())
}

fn put_header(out: &mut BytesMut, len: u32, kind: FrameKind, flags: u8, aux: u16, id: u64) {
    out.put_u32_le(len);
    out.put_u8(kind.0);
    out.put_u8(flags);
    out.put_u16_le(aux);
    out.put_u64_le(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_layout() {
        let frame = Frame {
            kind: FrameKind::REQUEST,
            flags: 0x01,
            aux: 0x0203,
            id: 0x0102_0304_0506_0708,
            body: Bytes::from_static(b"xyz"),
        };
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        assert_eq!(
            &out[..],
            &[3, 0, 0, 0, 0x01, 0x01, 0x03, 0x02, 8, 7, 6, 5, 4, 3, 2, 1, b'x', b'y', b'z']
        );
    }

    #[test]
    fn error_frame() {
        let frame = Frame::error(9, StatusCode::UNKNOWN_METHOD, "no method 7");
        assert_eq!(frame.kind, FrameKind::ERROR);
        assert_eq!(frame.status(), StatusCode::UNKNOWN_METHOD);
        assert_eq!(frame.aux, 1);
        assert_eq!(frame.id, 9);
        assert_eq!(frame.message(), "no method 7");
    }

    #[test]
    fn begin_finish_matches_encode() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        let start = begin_frame(&mut out, FrameKind::RESPONSE, 0, 0, 77);
        assert_eq!(start.offset(), 6);
        out.extend_from_slice(b"hello");
        finish_frame(&mut out, start, 5).unwrap();

        let mut expected = BytesMut::from(&b"prefix"[..]);
        Frame::new(FrameKind::RESPONSE, 77, Bytes::from_static(b"hello")).encode(&mut expected);
        assert_eq!(out, expected);
    }

    #[test]
    fn finish_too_large_truncates_to_frame_start() {
        let mut out = BytesMut::new();
        Frame::new(FrameKind::CANCEL, 1, Bytes::new()).encode(&mut out);
        let before = out.clone();
        let start = begin_frame(&mut out, FrameKind::RESPONSE, 0, 0, 2);
        out.extend_from_slice(&[0u8; 11]);
        let err = finish_frame(&mut out, start, 10).unwrap_err();
        assert!(matches!(
            err,
            CodecError::FrameTooLarge {
                size: 11,
                limit: 10
            }
        ));
        assert_eq!(err.to_string(), "frame of 11 bytes exceeds limit of 10");
        assert_eq!(out, before);
    }

    #[test]
    fn finish_after_truncation_is_an_error() {
        let mut out = BytesMut::new();
        let start = begin_frame(&mut out, FrameKind::RESPONSE, 0, 0, 2);
        out.truncate(3);
        let err = finish_frame(&mut out, start, 10).unwrap_err();
        assert!(matches!(
            err,
            CodecError::FrameStartLost { offset: 0, len: 3 }
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn request_with_deadline() {
        let mut out = BytesMut::new();
        let start = begin_request(&mut out, 5, 3, Some(1500));
        out.extend_from_slice(&[0x02, 0x04]);
        finish_frame(&mut out, start, 100).unwrap();

        let mut expected = BytesMut::new();
        Frame::request(5, 3, Bytes::from_static(&[0x02, 0x04]))
            .with_deadline(1500)
            .encode(&mut expected);
        assert_eq!(out, expected);

        let frame = Frame::request(5, 3, Bytes::from_static(&[0x02, 0x04])).with_deadline(1500);
        assert!(frame.has_flag(flags::DEADLINE));
        let (deadline, args) = frame.split_deadline().unwrap();
        assert_eq!(deadline, Some(1500));
        assert_eq!(&args[..], &[0x02, 0x04]);

        let replaced = frame.with_deadline(10);
        assert_eq!(replaced.split_deadline().unwrap().0, Some(10));
        assert_eq!(replaced.body.len(), 6);
    }

    #[test]
    fn split_deadline_without_flag_and_short_body() {
        let frame = Frame::request(1, 0, Bytes::from_static(b"ab"));
        assert_eq!(
            frame.split_deadline().unwrap(),
            (None, Bytes::from_static(b"ab"))
        );
        let short = Frame {
            flags: flags::DEADLINE,
            ..frame
        };
        let err = short.split_deadline().unwrap_err();
        assert!(matches!(
            err,
            CodecError::ShortBody {
                len: 2,
                needed: 4,
                ..
            }
        ));
    }

    #[test]
    fn encode_with_rolls_back_on_failure() {
        let mut out = BytesMut::new();
        Frame::cancel(1).encode(&mut out);
        let before = out.clone();
        let err = encode_frame_with(&mut out, FrameKind::RESPONSE, 0, 0, 2, 100, |buf| {
            buf.extend_from_slice(b"partial");
            Err(CodecError::ShortBody {
                kind: "RESPONSE",
                len: 0,
                needed: 1,
            })
        })
        .unwrap_err();
        assert!(matches!(err, CodecError::ShortBody { .. }));
        assert_eq!(out, before);
        let err = encode_request_with(&mut out, 3, 0, flags::STREAM, None, 2, |buf| {
            buf.extend_from_slice(b"abc");
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(
            err,
            CodecError::FrameTooLarge { size: 3, limit: 2 }
        ));
        assert_eq!(out, before);
    }

    #[test]
    fn request_with_flags_matches_the_frame() {
        let mut out = BytesMut::new();
        encode_request_with(&mut out, 5, 3, flags::STREAM, Some(9), 100, |buf| {
            buf.extend_from_slice(&[1, 2]);
            Ok(())
        })
        .unwrap();
        let mut frame = Frame::request(5, 3, Bytes::from_static(&[1, 2])).with_deadline(9);
        frame.flags |= flags::STREAM;
        let mut expected = BytesMut::new();
        frame.encode(&mut expected);
        assert_eq!(out, expected);
    }

    #[test]
    fn control_frames() {
        let credit = Frame::credit(4, 32);
        assert_eq!(credit.kind, FrameKind::CREDIT);
        assert_eq!(credit.credit_items().unwrap(), 32);
        assert!(Frame::cancel(4).credit_items().is_err());
        assert_eq!(Frame::cancel(4).kind, FrameKind::CANCEL);
        assert_eq!(Frame::stream_end(4).kind, FrameKind::STREAM_END);
    }

    #[test]
    fn encode_checked_respects_limit() {
        let frame = Frame::new(FrameKind::RESPONSE, 1, Bytes::from_static(b"abcd"));
        let mut out = BytesMut::new();
        assert!(matches!(
            frame.encode_checked(&mut out, 3),
            Err(CodecError::FrameTooLarge { size: 4, limit: 3 })
        ));
        assert!(out.is_empty());
        frame.encode_checked(&mut out, 4).unwrap();
        assert_eq!(out.len(), HEADER_LEN + 4);
    }
}
