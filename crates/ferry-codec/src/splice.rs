//! Large byte strings encoded by reference: [`encode_spliced`].
//!
//! A frame whose payload holds a large `Bytes` (through [`BulkRef`](crate::BulkRef),
//! [`BulkValue`](crate::BulkValue) or [`frame_bytes`](crate::frame_bytes)) need not copy it
//! into the output buffer: inside [`encode_spliced`], the compact format writes the byte
//! string's length prefix as usual and, instead of its bytes, records a [`Splice`]: the
//! `Bytes` itself and the offset in the buffer where its bytes belong. The frame's length
//! counts them. A writer then sends the buffer's parts and the spliced `Bytes` in order
//! (a vectored write), so the bytes on the wire are exactly those of a copied encoding.
//!
//! Everything else (small byte strings, human-readable formats, a `Bytes` not met through
//! the wrappers above, a buffer other than the frame's) is copied as before.

use std::cell::{Cell, RefCell};

use bytes::{Bytes, BytesMut};

use crate::{CodecError, HEADER_LEN};

/// The smallest byte string ever spliced, whatever `min` [`encode_spliced`] is given:
/// below it a copy is cheaper than a separate part to write.
pub const SPLICE_FLOOR: usize = 4096;

/// A byte string left out of an encoded buffer: its bytes belong at offset `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    /// The offset, in the buffer the frame was encoded into, where these bytes belong
    /// (the bytes of the buffer from `at` on come after them).
    pub at: usize,
    /// The bytes.
    pub bytes: Bytes,
}

thread_local! {
    /// The address of the buffer an [`encode_spliced`] on this thread encodes into (only
    /// writes into it are spliced); 0 when none is under way.
    static TARGET: Cell<usize> = const { Cell::new(0) };
    /// The smallest byte string spliced there.
    static MIN: Cell<usize> = const { Cell::new(usize::MAX) };
    /// The `Bytes` whose bytes the format is about to write.
    static PENDING: RefCell<Option<Bytes>> = const { RefCell::new(None) };
    /// What was spliced so far (by the encodes under way on this thread, innermost last).
    static FOUND: RefCell<Vec<Splice>> = const { RefCell::new(Vec::new()) };
    /// The length of `FOUND` (read without touching it: the common case finds none).
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

/// Runs `encode`, which appends one whole frame to `out` (or nothing, failing), with byte
/// strings of at least `min` bytes (and [`SPLICE_FLOOR`]) held in a `Bytes` left out of
/// `out` and appended to `splices` instead; the frame's length field counts them.
///
/// On error, `out` and `splices` are as they were. Fails with
/// [`CodecError::FrameTooLarge`] when the frame with its spliced bytes exceeds `max_body`.
pub fn encode_spliced(
    out: &mut BytesMut,
    min: usize,
    max_body: u32,
    splices: &mut Vec<Splice>,
    encode: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let start = out.len();
    let mark = COUNT.get();
    let previous_target = TARGET.replace(std::ptr::from_ref(out) as usize);
    let previous_min = MIN.replace(min.max(SPLICE_FLOOR));
    let encoded = encode(out);
    TARGET.set(previous_target);
    MIN.set(previous_min);
    if COUNT.get() == mark {
        // The common case: nothing was spliced.
        return encoded;
    }
    let found: Vec<Splice> = FOUND.with_borrow_mut(|found| found.drain(mark..).collect());
    COUNT.set(mark);
    encoded?;
    if out.len() < start + HEADER_LEN {
        let len = out.len();
        out.truncate(start);
        return Err(CodecError::FrameStartLost { offset: start, len });
    }
    let mut length = [0; 4];
    length.copy_from_slice(&out[start..start + 4]);
    let spliced: u64 = found.iter().map(|splice| splice.bytes.len() as u64).sum();
    let size = u64::from(u32::from_le_bytes(length)) + spliced;
    if size > u64::from(max_body) {
        out.truncate(start);
        return Err(CodecError::FrameTooLarge {
            size,
            limit: max_body,
        });
    }
    // `size <= max_body <= u32::MAX`: the cast is exact.
    out[start..start + 4].copy_from_slice(&(size as u32).to_le_bytes());
    splices.extend(found);
    Ok(())
}

/// Runs `serialize` (which writes `bytes` as one byte string) with `bytes` offered for
/// splicing: when an [`encode_spliced`] is under way and `bytes` is large enough, the
/// format's write of its bytes records a [`Splice`] instead of copying.
#[inline]
pub(crate) fn offering<R>(bytes: &Bytes, serialize: impl FnOnce() -> R) -> R {
    if bytes.len() < SPLICE_FLOOR || TARGET.get() == 0 || bytes.len() < MIN.get() {
        return serialize();
    }
    let previous = PENDING.replace(Some(bytes.clone()));
    let result = serialize();
    PENDING.set(previous);
    result
}

/// Called by a format about to append `bytes` to `out`: when they are the bytes of the
/// offered `Bytes` and `out` is the frame's buffer, records a [`Splice`] and returns `true`
/// (the caller writes nothing).
#[inline]
pub(crate) fn take(out: &BytesMut, bytes: &[u8]) -> bool {
    if bytes.len() < SPLICE_FLOOR || TARGET.get() != std::ptr::from_ref(out) as usize {
        return false;
    }
    let pending = PENDING.with_borrow_mut(|pending| match pending {
        Some(p) if p.as_ptr() == bytes.as_ptr() && p.len() == bytes.len() => pending.take(),
        _ => None,
    });
    let Some(pending) = pending else {
        return false;
    };
    FOUND.with_borrow_mut(|found| {
        found.push(Splice {
            at: out.len(),
            bytes: pending,
        });
        COUNT.set(found.len());
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_frame_with, frame_bytes, BulkRef, FormatId, FrameKind};

    fn frame(
        value: &Bytes,
        min: usize,
        max: u32,
    ) -> (BytesMut, Vec<Splice>, Result<(), CodecError>) {
        let mut out = BytesMut::from(&b"before"[..]);
        let mut splices = Vec::new();
        let result = encode_spliced(&mut out, min, max, &mut splices, |out| {
            encode_frame_with(out, FrameKind::RESPONSE, 0, 0, 7, max, |out| {
                FormatId::Bincode.encode(&(5u8, BulkRef(value), 6u8), out)
            })
        });
        (out, splices, result)
    }

    /// The bytes a writer sends: the buffer with each splice put back at its offset.
    fn joined(out: &[u8], splices: &[Splice]) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut from = 0;
        for splice in splices {
            wire.extend_from_slice(&out[from..splice.at]);
            wire.extend_from_slice(&splice.bytes);
            from = splice.at;
        }
        wire.extend_from_slice(&out[from..]);
        wire
    }

    #[test]
    fn a_large_bytes_is_spliced_and_the_wire_is_unchanged() {
        let value = Bytes::from(vec![0xA7u8; 100_000]);
        let (out, splices, result) = frame(&value, 16 * 1024, 1 << 20);
        result.unwrap();
        assert_eq!(splices.len(), 1);
        assert_eq!(
            splices[0].bytes.as_ptr(),
            value.as_ptr(),
            "not by reference"
        );
        assert!(out.len() < 64, "the bytes were copied: {} bytes", out.len());
        let mut copied = BytesMut::from(&b"before"[..]);
        encode_frame_with(&mut copied, FrameKind::RESPONSE, 0, 0, 7, 1 << 20, |out| {
            FormatId::Bincode.encode(&(5u8, BulkRef(&value), 6u8), out)
        })
        .unwrap();
        assert_eq!(joined(&out, &splices), copied.to_vec());
    }

    #[test]
    fn small_ones_and_json_are_copied() {
        let value = Bytes::from(vec![1u8; 10_000]);
        let (out, splices, result) = frame(&value, 16 * 1024, 1 << 20);
        result.unwrap();
        assert!(splices.is_empty());
        assert!(out.len() > 10_000);
        let large = Bytes::from(vec![1u8; 20_000]);
        let mut out = BytesMut::new();
        let mut splices = Vec::new();
        encode_spliced(&mut out, 0, 1 << 20, &mut splices, |out| {
            encode_frame_with(out, FrameKind::RESPONSE, 0, 0, 7, 1 << 20, |out| {
                FormatId::Json.encode(&(BulkRef(&large),), out)
            })
        })
        .unwrap();
        assert!(splices.is_empty());
    }

    #[test]
    fn the_limit_counts_spliced_bytes_and_failure_leaves_all_as_it_was() {
        let value = Bytes::from(vec![2u8; 50_000]);
        let (out, splices, result) = frame(&value, 4096, 40_000);
        assert!(matches!(result, Err(CodecError::FrameTooLarge { .. })));
        assert_eq!(&out[..], b"before");
        assert!(splices.is_empty());
        assert_eq!(TARGET.get(), 0);
        assert!(FOUND.with_borrow(Vec::is_empty));
        assert_eq!(COUNT.get(), 0);
    }

    #[test]
    fn a_nested_frame_bytes_field_is_spliced() {
        #[derive(serde::Serialize)]
        struct Chunk {
            #[serde(with = "frame_bytes")]
            data: Bytes,
            tail: u32,
        }
        let chunk = Chunk {
            data: Bytes::from(vec![3u8; 70_000]),
            tail: 9,
        };
        let mut out = BytesMut::new();
        let mut splices = Vec::new();
        encode_spliced(&mut out, 0, 1 << 20, &mut splices, |out| {
            encode_frame_with(out, FrameKind::RESPONSE, 0, 0, 1, 1 << 20, |out| {
                FormatId::Bincode.encode(&chunk, out)
            })
        })
        .unwrap();
        assert_eq!(splices.len(), 1);
        let mut copied = BytesMut::new();
        encode_frame_with(&mut copied, FrameKind::RESPONSE, 0, 0, 1, 1 << 20, |out| {
            FormatId::Bincode.encode(&chunk, out)
        })
        .unwrap();
        assert_eq!(joined(&out, &splices), copied.to_vec());
    }

    #[test]
    fn outside_a_splicing_encode_everything_is_copied() {
        let value = Bytes::from(vec![4u8; 70_000]);
        let mut out = BytesMut::new();
        FormatId::Bincode
            .encode(&BulkRef(&value), &mut out)
            .unwrap();
        assert!(out.len() > 70_000);
    }
}
