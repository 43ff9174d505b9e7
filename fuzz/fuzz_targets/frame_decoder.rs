//! The frame decoder on arbitrary bytes, fed in two pieces: it must not panic, must never
//! hand out a body over its limit, and every frame it returns must encode back to bytes
//! that decode to the same frame.
#![no_main]

use bytes::BytesMut;
use ferry_codec::{Frame, FrameDecoder, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

/// Small, so that bodies around the limit are within the fuzzer's reach.
const MAX_BODY: u32 = 4096;

fuzz_target!(|data: &[u8]| {
    // The first byte picks where the input is cut in two, to exercise partial frames.
    let cut = data
        .first()
        .map_or(0, |&byte| usize::from(byte))
        .min(data.len());
    let mut decoder = FrameDecoder::new(MAX_BODY);
    let mut buf = BytesMut::new();
    for piece in [&data[..cut], &data[cut..]] {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => check_round_trip(&frame),
                Ok(None) => break,
                Err(_) => return,
            }
            // Never more reserved than the input plus one largest frame.
            assert!(buf.capacity() <= data.len() + HEADER_LEN + MAX_BODY as usize + 64);
        }
    }
});

fn check_round_trip(frame: &Frame) {
    assert!(frame.body.len() <= MAX_BODY as usize);
    let mut out = BytesMut::new();
    frame.encode(&mut out);
    assert_eq!(out.len(), HEADER_LEN + frame.body.len());
    let again = FrameDecoder::new(MAX_BODY)
        .decode(&mut out)
        .expect("a decoded frame re-encodes to a valid frame")
        .expect("a re-encoded frame is complete");
    assert_eq!(&again, frame);
    assert!(out.is_empty());
}
