//! Property tests of the handshake messages.

use bytes::BytesMut;
use ferry_codec::{CodecError, HandshakeStatus, Hello, MethodEntry, MethodTable, Welcome, MAGIC};
use proptest::prelude::*;

fn any_hello() -> impl Strategy<Value = Hello> {
    (
        any::<u16>(),
        any::<u8>(),
        any::<u32>(),
        any::<u64>(),
        "[a-zA-Z0-9_.é€-]{1,60}",
        any::<u8>(),
    )
        .prop_map(
            |(version, format, max_frame, signature, service, flags)| Hello {
                version,
                format,
                flags,
                max_frame,
                signature,
                service,
            },
        )
}

fn any_welcome() -> impl Strategy<Value = Welcome> {
    (
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
        "\\PC{0,300}",
        proptest::option::of(proptest::collection::btree_map(
            "[a-z_]{1,20}",
            any::<u64>(),
            0..20,
        )),
    )
        .prop_map(
            |(version, status, format, max_frame, max_in_flight, message, methods)| Welcome {
                version,
                // Often an accepting one, so the method table is exercised.
                status: HandshakeStatus(status % 4),
                format,
                max_frame,
                max_in_flight,
                message,
                methods: methods.map(|methods| {
                    let entries = methods
                        .into_iter()
                        .map(|(name, hash)| MethodEntry { name, hash })
                        .collect();
                    MethodTable::new(entries).unwrap()
                }),
            },
        )
}

/// Feeds `wire` one byte at a time to `decode`, returning the first message and what is left.
fn byte_by_byte<T>(
    wire: &[u8],
    decode: impl Fn(&mut BytesMut) -> Result<Option<T>, CodecError>,
) -> (Option<T>, BytesMut) {
    let mut buf = BytesMut::new();
    let mut got = None;
    for b in wire {
        buf.extend_from_slice(&[*b]);
        if got.is_none() {
            got = decode(&mut buf).unwrap();
        }
    }
    (got, buf)
}

proptest! {
    #[test]
    fn hello_round_trips(hello in any_hello(), trailer in proptest::collection::vec(any::<u8>(), 0..8)) {
        let mut wire = BytesMut::new();
        hello.encode(&mut wire).unwrap();
        let len = wire.len();
        wire.extend_from_slice(&trailer);
        let (got, rest) = byte_by_byte(&wire, Hello::decode);
        prop_assert_eq!(got, Some(hello));
        prop_assert_eq!(&rest[..], &wire[len..]);
    }

    #[test]
    fn welcome_round_trips(welcome in any_welcome()) {
        let mut wire = BytesMut::new();
        welcome.encode(&mut wire);
        let (got, rest) = byte_by_byte(&wire, Welcome::decode);
        let got = got.unwrap();
        prop_assert!(rest.is_empty());
        prop_assert!(got.message.len() <= 1024);
        prop_assert!(welcome.message.starts_with(&got.message));
        let methods = if welcome.has_table_section() { welcome.methods.clone() } else { None };
        let expected = Welcome { message: got.message.clone(), methods, ..welcome.clone() };
        prop_assert_eq!(&got, &expected);
        if welcome.message.len() <= 1024 {
            prop_assert_eq!(got.message, welcome.message);
        }
    }

    /// Arbitrary bytes give a message, "need more" or a typed error; never a panic, and
    /// the buffer never grows past the largest message.
    #[test]
    fn arbitrary_input_to_handshake_decoders(
        mut input in proptest::collection::vec(any::<u8>(), 0..1200),
        with_magic in any::<bool>(),
    ) {
        if with_magic && input.len() >= 4 {
            input[..4].copy_from_slice(&MAGIC);
        }
        let mut buf = BytesMut::from(&input[..]);
        let before = buf.capacity();
        match Hello::decode(&mut buf) {
            Ok(Some(hello)) => prop_assert!(!hello.service.is_empty() && hello.service.len() <= 255),
            Ok(None)
            | Err(CodecError::BadMagic { .. }
            | CodecError::BadHandshake(_)
            | CodecError::HandshakeNotUtf8 { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
        prop_assert!(buf.capacity() <= before.max(2 * (21 + 255)));

        let mut buf = BytesMut::from(&input[..]);
        let before = buf.capacity();
        match Welcome::decode(&mut buf) {
            Ok(Some(welcome)) => prop_assert!(welcome.message.len() <= 1024),
            Ok(None)
            | Err(CodecError::BadMagic { .. }
            | CodecError::BadHandshake(_)
            | CodecError::HandshakeNotUtf8 { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
        prop_assert!(buf.capacity() <= before.max(2 * (18 + 1024)));
    }

    /// Whatever a decoder accepts encodes back to the bytes it came from (a `Hello`'s flags
    /// byte aside: it is ignored and sent as `0`), so decode, encode, decode never changes a
    /// message. The text fields are any characters, half the time with one byte made invalid.
    #[test]
    fn decoded_handshakes_encode_to_the_same_bytes(
        fixed in proptest::collection::vec(any::<u8>(), 16),
        text in "\\PC{0,400}",
        corrupt in proptest::option::of((any::<proptest::sample::Index>(), 0x80u8..=0xff)),
    ) {
        let mut text = text.into_bytes();
        if let Some((at, byte)) = corrupt.filter(|_| !text.is_empty()) {
            let at = at.index(text.len());
            text[at] = byte;
        }
        let mut hello = Vec::from(MAGIC);
        hello.extend_from_slice(&fixed);
        hello[7] = 0;
        let name = &text[..text.len().min(255)];
        hello.push(name.len() as u8);
        hello.extend_from_slice(name);
        let mut buf = BytesMut::from(&hello[..]);
        if let Ok(Some(decoded)) = Hello::decode(&mut buf) {
            let mut out = BytesMut::new();
            decoded.encode(&mut out).unwrap();
            prop_assert_eq!(&out[..], &hello[..]);
        }

        let mut welcome = Vec::from(MAGIC);
        welcome.extend_from_slice(&fixed[..12]);
        welcome.extend_from_slice(&(text.len() as u16).to_le_bytes());
        welcome.extend_from_slice(&text);
        let mut buf = BytesMut::from(&welcome[..]);
        if let Ok(Some(decoded)) = Welcome::decode(&mut buf) {
            let mut out = BytesMut::new();
            decoded.encode(&mut out);
            prop_assert_eq!(&out[..], &welcome[..]);
        }
    }

    #[test]
    fn bad_magic_is_reported(first in proptest::array::uniform4(any::<u8>())) {
        prop_assume!(first != MAGIC);
        let mut buf = BytesMut::from(&first[..]);
        let is_bad_magic = matches!(Hello::decode(&mut buf),
            Err(CodecError::BadMagic { found, expected }) if found == first && expected == MAGIC);
        prop_assert!(is_bad_magic);
        let is_bad_magic = matches!(Welcome::decode(&mut buf),
            Err(CodecError::BadMagic { found, .. }) if found == first);
        prop_assert!(is_bad_magic);
    }
}

#[test]
fn http_request_is_bad_magic() {
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
    let err = Hello::decode(&mut buf).unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad magic [47, 45, 54, 20], expected [46, 52, 52, 59]"
    );
    assert_eq!(err.status(), ferry_codec::StatusCode::PROTOCOL);
}
