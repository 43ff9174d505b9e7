//! The handshake decoders (`Hello`, sent by clients, and `Welcome`, sent by servers) on
//! arbitrary bytes: they must not panic, whatever they accept must be within the limits,
//! and it must encode back to the bytes it was decoded from (a hello's flags byte aside),
//! which decode to the same message.
#![no_main]

use bytes::BytesMut;
use ferry_codec::{Hello, Welcome, MAX_SERVICE_NAME, MAX_WELCOME_MESSAGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    if let Ok(Some(hello)) = Hello::decode(&mut buf) {
        let consumed = data.len() - buf.len();
        assert!(consumed > 0, "a decoded hello consumed no bytes");
        assert!(!hello.service.is_empty() && hello.service.len() <= MAX_SERVICE_NAME);
        let mut out = BytesMut::new();
        hello
            .encode(&mut out)
            .expect("a decoded hello encodes again");
        // Byte for byte, but for the flags byte (offset 7): ignored, sent as 0.
        assert_eq!(out[..7], data[..7]);
        assert_eq!(out[8..], data[8..consumed]);
        let again = Hello::decode(&mut out)
            .expect("a re-encoded hello decodes")
            .expect("a re-encoded hello is complete");
        assert_eq!(again, hello);
        assert!(out.is_empty());
    }

    let mut buf = BytesMut::from(data);
    if let Ok(Some(welcome)) = Welcome::decode(&mut buf) {
        let consumed = data.len() - buf.len();
        assert!(consumed > 0, "a decoded welcome consumed no bytes");
        assert!(welcome.message.len() <= MAX_WELCOME_MESSAGE);
        let mut out = BytesMut::new();
        welcome.encode(&mut out);
        assert_eq!(out[..], data[..consumed]);
        let again = Welcome::decode(&mut out)
            .expect("a re-encoded welcome decodes")
            .expect("a re-encoded welcome is complete");
        assert_eq!(again, welcome);
        assert!(out.is_empty());
    }
});
