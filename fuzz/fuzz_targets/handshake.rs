//! The handshake decoders (`Hello`, sent by clients, and `Welcome`, sent by servers) on
//! arbitrary bytes: they must not panic, and whatever they accept must encode back to bytes
//! that decode to the same message.
#![no_main]

use bytes::BytesMut;
use ferry_codec::{Hello, Welcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    if let Ok(Some(hello)) = Hello::decode(&mut buf) {
        assert!(buf.len() < data.len(), "a decoded hello consumed no bytes");
        let mut out = BytesMut::new();
        hello
            .encode(&mut out)
            .expect("a decoded hello encodes again");
        let again = Hello::decode(&mut out)
            .expect("a re-encoded hello decodes")
            .expect("a re-encoded hello is complete");
        assert_eq!(again, hello);
        assert!(out.is_empty());
    }

    let mut buf = BytesMut::from(data);
    if let Ok(Some(welcome)) = Welcome::decode(&mut buf) {
        assert!(
            buf.len() < data.len(),
            "a decoded welcome consumed no bytes"
        );
        let mut out = BytesMut::new();
        welcome.encode(&mut out);
        let again = Welcome::decode(&mut out)
            .expect("a re-encoded welcome decodes")
            .expect("a re-encoded welcome is complete");
        assert_eq!(again, welcome);
        assert!(out.is_empty());
    }
});
