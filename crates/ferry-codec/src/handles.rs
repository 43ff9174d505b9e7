//! The handle trailer: how a frame with the [`HANDLES`](crate::flags::HANDLES) flag says how
//! many operating-system handles go with it (protocol version 3, `docs/protocol.md` 8.4).
//!
//! The trailer ends the body, after the payload: on Windows the handle values (`u64`
//! each, handles the sender duplicated into the receiving process), then, on every
//! platform, a `u16` count. On Unix the descriptors themselves travel beside the bytes
//! (`SCM_RIGHTS`), so the trailer is the count alone. The payload refers to handles by
//! their index in the frame's list, `0..count`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{flags, CodecError, Frame, HEADER_LEN};

/// The first protocol version whose frames may carry handles.
pub const HANDLES_VERSION: u16 = 3;

/// The most handles one frame may carry.
pub const MAX_HANDLES: usize = 64;

/// Appends the handle trailer to the frame that starts at `frame_offset` in `out` (the
/// last frame in it, finished: its length field is read, so bytes of its body left out of
/// `out` by [`encode_spliced`](crate::encode_spliced) count), sets its HANDLES flag and
/// fixes its body length. `values` is empty (Unix) or holds one value per handle (Windows).
///
/// Fails, leaving `out` as it found it, with [`CodecError::TooManyHandles`] past
/// [`MAX_HANDLES`], or [`CodecError::FrameTooLarge`] when the trailer pushes the body past
/// `max_body`.
pub fn append_handle_trailer(
    out: &mut BytesMut,
    frame_offset: usize,
    count: usize,
    values: &[u64],
    max_body: u32,
) -> Result<(), CodecError> {
    if count > MAX_HANDLES || (!values.is_empty() && values.len() != count) {
        return Err(CodecError::TooManyHandles {
            count: count.max(values.len()),
            limit: MAX_HANDLES,
        });
    }
    if out.len() < frame_offset + HEADER_LEN {
        return Err(CodecError::FrameStartLost {
            offset: frame_offset,
            len: out.len(),
        });
    }
    let mut length = [0; 4];
    length.copy_from_slice(&out[frame_offset..frame_offset + 4]);
    let body = u64::from(u32::from_le_bytes(length));
    let size = body + 8 * values.len() as u64 + 2;
    if size > u64::from(max_body) {
        return Err(CodecError::FrameTooLarge {
            size,
            limit: max_body,
        });
    }
    for value in values {
        out.put_u64_le(*value);
    }
    out.put_u16_le(count as u16);
    out[frame_offset..frame_offset + 4].copy_from_slice(&(size as u32).to_le_bytes());
    out[frame_offset + 5] |= flags::HANDLES;
    Ok(())
}

/// The handle trailer of `frame`: the body without it, the handle count and (when
/// `with_values`, Windows) the handle values. A frame without the HANDLES flag has none.
///
/// Fails with [`CodecError::ShortBody`] when the body cannot hold the trailer it announces,
/// and [`CodecError::TooManyHandles`] past [`MAX_HANDLES`].
pub fn split_handle_trailer(
    frame: &Frame,
    with_values: bool,
) -> Result<(Bytes, usize, Vec<u64>), CodecError> {
    if !frame.has_flag(flags::HANDLES) {
        return Ok((frame.body.clone(), 0, Vec::new()));
    }
    let short = |needed| CodecError::ShortBody {
        kind: frame.kind.name(),
        len: frame.body.len(),
        needed,
    };
    let len = frame.body.len();
    let Some(count) = frame.body.get(len.wrapping_sub(2)..) else {
        return Err(short(2));
    };
    let count = usize::from(u16::from_le_bytes([count[0], count[1]]));
    if count == 0 || count > MAX_HANDLES {
        return Err(CodecError::TooManyHandles {
            count,
            limit: MAX_HANDLES,
        });
    }
    let trailer = 2 + if with_values { 8 * count } else { 0 };
    if len < trailer {
        return Err(short(trailer));
    }
    let values = frame.body[len - trailer..len - 2]
        .chunks_exact(8)
        .map(|value| {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(value);
            u64::from_le_bytes(bytes)
        })
        .collect();
    Ok((frame.body.slice(..len - trailer), count, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_frame_with, FrameDecoder, FrameKind};

    fn frame_with(count: usize, values: &[u64]) -> Frame {
        let mut out = BytesMut::new();
        encode_frame_with(&mut out, FrameKind::RESPONSE, 0, 0, 7, 100, |buf| {
            buf.put_slice(b"ab");
            Ok(())
        })
        .unwrap();
        append_handle_trailer(&mut out, 0, count, values, 100).unwrap();
        FrameDecoder::new(100).decode(&mut out).unwrap().unwrap()
    }

    #[test]
    fn unix_trailer_is_the_count() {
        let frame = frame_with(2, &[]);
        assert!(frame.has_flag(flags::HANDLES));
        assert_eq!(&frame.body[..], &[b'a', b'b', 2, 0]);
        let (body, count, values) = split_handle_trailer(&frame, false).unwrap();
        assert_eq!((&body[..], count, values), (&b"ab"[..], 2, vec![]));
    }

    #[test]
    fn windows_trailer_has_values() {
        let frame = frame_with(1, &[0x1234]);
        let (body, count, values) = split_handle_trailer(&frame, true).unwrap();
        assert_eq!((&body[..], count, values), (&b"ab"[..], 1, vec![0x1234]));
    }

    #[test]
    fn limits() {
        let mut out = BytesMut::new();
        encode_frame_with(&mut out, FrameKind::RESPONSE, 0, 0, 7, 100, |_| Ok(())).unwrap();
        let before = out.clone();
        assert!(matches!(
            append_handle_trailer(&mut out, 0, 65, &[], 100),
            Err(CodecError::TooManyHandles { count: 65, .. })
        ));
        assert!(matches!(
            append_handle_trailer(&mut out, 0, 1, &[1], 9),
            Err(CodecError::FrameTooLarge { size: 10, .. })
        ));
        assert_eq!(out, before);
        let mut frame = Frame::new(FrameKind::RESPONSE, 1, Bytes::from_static(&[0]));
        frame.flags = flags::HANDLES;
        assert!(matches!(
            split_handle_trailer(&frame, false),
            Err(CodecError::ShortBody { .. })
        ));
        frame.body = Bytes::from_static(&[0, 0]);
        assert!(matches!(
            split_handle_trailer(&frame, false),
            Err(CodecError::TooManyHandles { count: 0, .. })
        ));
        frame.body = Bytes::from_static(&[1, 0]);
        assert!(matches!(
            split_handle_trailer(&frame, true),
            Err(CodecError::ShortBody { needed: 10, .. })
        ));
    }
}
