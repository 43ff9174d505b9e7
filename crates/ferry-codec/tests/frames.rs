//! Property tests of framing: round trips, arbitrary splits, arbitrary input, size limits.

use bytes::{Bytes, BytesMut};
use ferry_codec::{
    begin_frame, finish_frame, CodecError, Frame, FrameDecoder, FrameKind, DEFAULT_MAX_FRAME,
    HEADER_LEN,
};
use proptest::prelude::*;

fn any_frame() -> impl Strategy<Value = Frame> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(kind, flags, aux, id, body)| Frame {
            kind: FrameKind(kind),
            flags,
            aux,
            id,
            body: Bytes::from(body),
        })
}

fn encode_all(frames: &[Frame]) -> BytesMut {
    let mut wire = BytesMut::new();
    for frame in frames {
        frame.encode(&mut wire);
    }
    wire
}

/// Feeds `wire` to a decoder in chunks that end at `cuts`, collecting every frame.
fn decode_in_chunks(wire: &[u8], cuts: &[usize], max: u32) -> Result<Vec<Frame>, CodecError> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    cuts.push(wire.len());
    cuts.sort_unstable();
    let mut decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut from = 0;
    for cut in cuts {
        buf.extend_from_slice(&wire[from..cut]);
        from = cut;
        while let Some(frame) = decoder.decode(&mut buf)? {
            frames.push(frame);
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(frames)
}

/// The most capacity a buffer may have after a decode call: the decoder asks for at most
/// `max + HEADER_LEN` bytes in total, and a growing buffer at most doubles.
fn capacity_bound(before: usize, max: u32) -> usize {
    before.max(2 * (max as usize + HEADER_LEN))
}

proptest! {
    #[test]
    fn frames_round_trip_whole(frames in proptest::collection::vec(any_frame(), 0..20)) {
        let wire = encode_all(&frames);
        let decoded = decode_in_chunks(&wire, &[], DEFAULT_MAX_FRAME).unwrap();
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn frames_round_trip_split_anywhere(
        frames in proptest::collection::vec(any_frame(), 1..10),
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let wire = encode_all(&frames);
        let decoded = decode_in_chunks(&wire, &cuts, DEFAULT_MAX_FRAME).unwrap();
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn frames_round_trip_byte_by_byte(frames in proptest::collection::vec(any_frame(), 1..5)) {
        let wire = encode_all(&frames);
        let cuts: Vec<usize> = (0..wire.len()).collect();
        let decoded = decode_in_chunks(&wire, &cuts, 200).unwrap();
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn begin_finish_equals_encode(frame in any_frame()) {
        let mut direct = BytesMut::new();
        let start = begin_frame(&mut direct, frame.kind, frame.flags, frame.aux, frame.id);
        direct.extend_from_slice(&frame.body);
        finish_frame(&mut direct, start, DEFAULT_MAX_FRAME).unwrap();
        let mut encoded = BytesMut::new();
        frame.encode(&mut encoded);
        prop_assert_eq!(direct, encoded);
    }

    #[test]
    fn finish_frame_enforces_limit(frame in any_frame(), max in 0u32..200) {
        let mut out = BytesMut::from(&b"earlier"[..]);
        let start = begin_frame(&mut out, frame.kind, frame.flags, frame.aux, frame.id);
        out.extend_from_slice(&frame.body);
        let result = finish_frame(&mut out, start, max);
        if frame.body.len() as u64 > u64::from(max) {
            let is_too_large = matches!(
                result,
                Err(CodecError::FrameTooLarge { size, limit })
                    if size == frame.body.len() as u64 && limit == max
            );
            prop_assert!(is_too_large);
            prop_assert_eq!(&out[..], b"earlier");
        } else {
            prop_assert!(result.is_ok());
            prop_assert_eq!(out.len(), 7 + HEADER_LEN + frame.body.len());
        }
    }

    /// Arbitrary bytes give frames or a typed error, never a panic, and the buffer never
    /// grows past what the limit allows.
    #[test]
    fn arbitrary_input_never_panics_or_overreserves(
        input in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        max in 0u32..300,
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.push(input.len());
        cuts.sort_unstable();
        let mut decoder = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut from = 0;
        'feed: for cut in cuts {
            buf.extend_from_slice(&input[from..cut]);
            from = cut;
            loop {
                let before = buf.capacity();
                let result = decoder.decode(&mut buf);
                prop_assert!(buf.capacity() <= capacity_bound(before, max));
                match result {
                    Ok(Some(frame)) => prop_assert!(frame.body.len() <= max as usize),
                    Ok(None) => break,
                    Err(CodecError::FrameTooLarge { size, limit }) => {
                        prop_assert!(size > u64::from(limit));
                        prop_assert_eq!(limit, max);
                        prop_assert_eq!(buf.capacity(), before);
                        break 'feed;
                    }
                    Err(other) => prop_assert!(false, "unexpected error {other}"),
                }
            }
        }
    }

    /// Any length above the limit is refused as soon as the header is complete.
    #[test]
    fn oversized_length_refused_before_allocation(len in 1u32.., max in 0u32..1_000_000) {
        prop_assume!(len > max);
        let mut buf = BytesMut::with_capacity(HEADER_LEN);
        Frame::new(FrameKind::REQUEST, 1, Bytes::new()).encode(&mut buf);
        buf[..4].copy_from_slice(&len.to_le_bytes());
        let capacity = buf.capacity();
        let err = FrameDecoder::new(max).decode(&mut buf).unwrap_err();
        let matches = matches!(err, CodecError::FrameTooLarge { size, limit }
            if size == u64::from(len) && limit == max);
        prop_assert!(matches);
        prop_assert_eq!(buf.capacity(), capacity);
        prop_assert_eq!(buf.len(), HEADER_LEN);
    }
}

#[test]
fn four_gib_length_prefix_is_refused() {
    let mut buf = BytesMut::with_capacity(HEADER_LEN);
    buf.extend_from_slice(&u32::MAX.to_le_bytes());
    buf.extend_from_slice(&[0x02, 0, 0, 0]);
    buf.extend_from_slice(&7u64.to_le_bytes());
    let capacity = buf.capacity();
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let err = decoder.decode(&mut buf).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("frame of 4294967295 bytes exceeds limit of {DEFAULT_MAX_FRAME}")
    );
    assert_eq!(buf.capacity(), capacity);
    // Asking again gives the same answer: nothing was consumed.
    assert!(decoder.decode(&mut buf).is_err());
}

#[test]
fn length_at_limit_reserves_at_most_the_frame() {
    let max: u32 = 1024 * 1024;
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&max.to_le_bytes());
    buf.extend_from_slice(&[0x02, 0, 0, 0]);
    buf.extend_from_slice(&1u64.to_le_bytes());
    let mut decoder = FrameDecoder::new(max);
    assert!(decoder.decode(&mut buf).unwrap().is_none());
    let needed = HEADER_LEN + max as usize;
    assert!(buf.capacity() >= needed);
    assert!(buf.capacity() <= 2 * needed);
}

#[test]
fn unknown_kinds_are_delivered_for_the_caller_to_judge() {
    let mut buf = BytesMut::new();
    Frame::new(FrameKind(0x90), 0, Bytes::from_static(b"ext")).encode(&mut buf);
    Frame::new(FrameKind(0x20), 0, Bytes::new()).encode(&mut buf);
    let mut decoder = FrameDecoder::default();
    let ext = decoder.decode(&mut buf).unwrap().unwrap();
    assert!(ext.kind.is_ignorable());
    let bad = decoder.decode(&mut buf).unwrap().unwrap();
    assert!(!bad.kind.is_ignorable() && !bad.kind.is_known());
}
