//! The server's answer to a [`Hello`](crate::Hello).

use bytes::{Buf, BufMut, BytesMut};

use super::{
    check_magic, text, u16_at, u32_at, HandshakeStatus, MethodTable, MAX_METHOD_TABLE,
    MAX_WELCOME_MESSAGE,
};
use crate::{CodecError, MAGIC, METHOD_TABLE_VERSION, PROTOCOL_VERSION};

/// Length of the fixed part of a [`Welcome`], before the message.
const FIXED_LEN: usize = 18;

/// What the server answers: accepted or not, and the limits of the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// Protocol version used on this connection.
    pub version: u16,
    /// Accepted, or why not.
    pub status: HandshakeStatus,
    /// Payload format used on this connection (the client's, on success).
    pub format: u8,
    /// Largest frame body the server accepts.
    pub max_frame: u32,
    /// Most calls the server runs at once on this connection.
    pub max_in_flight: u32,
    /// Empty on success; on rejection, says why.
    pub message: String,
    /// The accepted service's method table. Travels only in an accepting welcome of version
    /// 2 or later (ignored otherwise); `None` there means the service has no table and was
    /// checked as a whole, by its signature.
    pub methods: Option<MethodTable>,
}

impl Welcome {
    /// An accepting welcome for protocol [`PROTOCOL_VERSION`].
    pub fn accept(format: u8, max_frame: u32, max_in_flight: u32) -> Welcome {
        Welcome {
            version: PROTOCOL_VERSION,
            status: HandshakeStatus::OK,
            format,
            max_frame,
            max_in_flight,
            message: String::new(),
            methods: None,
        }
    }

    /// A rejecting welcome for protocol [`PROTOCOL_VERSION`], with zero limits.
    pub fn reject(status: HandshakeStatus, format: u8, message: impl Into<String>) -> Welcome {
        Welcome {
            version: PROTOCOL_VERSION,
            status,
            format,
            max_frame: 0,
            max_in_flight: 0,
            message: message.into(),
            methods: None,
        }
    }

    /// Whether this welcome carries a method table section: accepting, version 2 or later.
    pub fn has_table_section(&self) -> bool {
        self.status == HandshakeStatus::OK && self.version >= METHOD_TABLE_VERSION
    }

    /// Appends the encoded welcome to `out`.
    ///
    /// A message longer than 1024 bytes is cut at the last character boundary at or
    /// before 1024 bytes. An accepting welcome of version 2 or later ends with the method
    /// table's length (0 for none) and the table.
    pub fn encode(&self, out: &mut BytesMut) {
        let message = truncate_at_char_boundary(&self.message, MAX_WELCOME_MESSAGE).as_bytes();
        let table = if self.has_table_section() {
            Some(self.methods.as_ref())
        } else {
            None
        };
        let table_len = table.flatten().map_or(0, MethodTable::encoded_len);
        out.reserve(FIXED_LEN + message.len() + 4 + table_len);
        out.put_slice(&MAGIC);
        out.put_u16_le(self.version);
        out.put_u8(self.status.0);
        out.put_u8(self.format);
        out.put_u32_le(self.max_frame);
        out.put_u32_le(self.max_in_flight);
        // `message.len() <= 1024`, so it fits in a u16.
        out.put_u16_le(message.len() as u16);
        out.put_slice(message);
        if let Some(table) = table {
            // `MethodTable::new` keeps a table within MAX_METHOD_TABLE bytes.
            out.put_u32_le(table_len as u32);
            if let Some(table) = table {
                table.encode(out);
            }
        }
    }

    /// Takes a welcome off the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed. Fails with [`CodecError::BadMagic`] as soon
    /// as four bytes are present and are not [`MAGIC`], and with
    /// [`CodecError::BadHandshake`] if the message is longer than 1024 bytes, and with
    /// [`CodecError::HandshakeNotUtf8`] if it is not valid UTF-8 (the welcome is malformed,
    /// whatever its status), and with [`CodecError::BadHandshake`] for a method table longer
    /// than [`MAX_METHOD_TABLE`] bytes or malformed. Nothing is consumed unless a whole
    /// welcome is returned.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Welcome>, CodecError> {
        check_magic(buf)?;
        if buf.len() < FIXED_LEN {
            return Ok(None);
        }
        let message_len = usize::from(u16_at(buf, 16));
        if message_len > MAX_WELCOME_MESSAGE {
            return Err(CodecError::BadHandshake(format!(
                "welcome message of {message_len} bytes exceeds {MAX_WELCOME_MESSAGE}"
            )));
        }
        let total = FIXED_LEN + message_len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let message = text(&buf[FIXED_LEN..total], "welcome message")?;
        let mut welcome = Welcome {
            version: u16_at(buf, 4),
            status: HandshakeStatus(buf[6]),
            format: buf[7],
            max_frame: u32_at(buf, 8),
            max_in_flight: u32_at(buf, 12),
            message,
            methods: None,
        };
        let mut total = total;
        if welcome.has_table_section() {
            if buf.len() < total + 4 {
                buf.reserve(total + 4 - buf.len());
                return Ok(None);
            }
            let table_len = u32_at(buf, total) as usize;
            if table_len > MAX_METHOD_TABLE {
                return Err(CodecError::BadHandshake(format!(
                    "method table of {table_len} bytes exceeds {MAX_METHOD_TABLE}"
                )));
            }
            let start = total + 4;
            total = start + table_len;
            if buf.len() < total {
                buf.reserve(total - buf.len());
                return Ok(None);
            }
            if table_len > 0 {
                welcome.methods = Some(MethodTable::decode(&buf[start..total])?);
            }
        }
        buf.advance(total);
        Ok(Some(welcome))
    }
}

fn truncate_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let welcome = Welcome {
            version: 1,
            status: HandshakeStatus::SIGNATURE_MISMATCH,
            format: 0,
            max_frame: 0x0102_0304,
            max_in_flight: 0x0A0B_0C0D,
            message: "no".to_owned(),
            methods: None,
        };
        let mut out = BytesMut::new();
        welcome.encode(&mut out);
        assert_eq!(
            &out[..],
            &[
                b'F', b'R', b'R', b'Y', 1, 0, 4, 0, 4, 3, 2, 1, 0x0D, 0x0C, 0x0B, 0x0A, 2, 0, b'n',
                b'o'
            ]
        );
        assert_eq!(Welcome::decode(&mut out).unwrap(), Some(welcome));
        assert!(out.is_empty());
    }

    #[test]
    fn version_2_accept_carries_the_method_table() {
        use super::super::MethodEntry;
        let table = MethodTable::new(vec![MethodEntry {
            name: "add".to_owned(),
            hash: 0x1122_3344_5566_7788,
        }])
        .unwrap();
        let mut welcome = Welcome::accept(0, 1000, 64);
        welcome.methods = Some(table);
        let mut wire = BytesMut::new();
        welcome.encode(&mut wire);
        assert_eq!(
            &wire[FIXED_LEN..],
            &[
                14, 0, 0, 0, 1, 0, 3, b'a', b'd', b'd', 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22,
                0x11
            ]
        );
        // Byte by byte: nothing until the whole table is there.
        let mut buf = BytesMut::new();
        for (at, b) in wire.iter().enumerate() {
            buf.put_u8(*b);
            let got = Welcome::decode(&mut buf).unwrap();
            assert_eq!(got.is_some(), at == wire.len() - 1, "at byte {at}");
            if let Some(got) = got {
                assert_eq!(got, welcome);
            }
        }
        // No table: length 0.
        let mut bare = BytesMut::new();
        Welcome::accept(0, 1000, 64).encode(&mut bare);
        assert_eq!(&bare[FIXED_LEN..], &[0, 0, 0, 0]);
        // Version 1, or a refusal: no table section at all.
        let mut v1 = welcome.clone();
        v1.version = 1;
        let mut out = BytesMut::new();
        v1.encode(&mut out);
        assert_eq!(out.len(), FIXED_LEN);
        let back = Welcome::decode(&mut out).unwrap().unwrap();
        assert_eq!(back.methods, None);
        // An announced table over the limit is refused before it is read.
        let mut huge = BytesMut::new();
        Welcome::accept(0, 1000, 64).encode(&mut huge);
        huge[FIXED_LEN..].copy_from_slice(&(MAX_METHOD_TABLE as u32 + 1).to_le_bytes());
        assert!(matches!(
            Welcome::decode(&mut huge),
            Err(CodecError::BadHandshake(_))
        ));
    }

    #[test]
    fn partial_then_complete() {
        let welcome = Welcome::accept(1, 1000, 64);
        let mut wire = BytesMut::new();
        welcome.encode(&mut wire);
        let mut buf = BytesMut::from(&wire[..FIXED_LEN - 1]);
        assert!(Welcome::decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&wire[FIXED_LEN - 1..]);
        assert_eq!(Welcome::decode(&mut buf).unwrap(), Some(welcome));
    }

    #[test]
    fn long_message_is_truncated_at_char_boundary() {
        // 1023 ASCII bytes then a 2-byte character: byte 1024 is inside the character.
        let message = "a".repeat(1023) + "é" + "tail";
        let welcome = Welcome::reject(HandshakeStatus::UNKNOWN_SERVICE, 0, message);
        let mut out = BytesMut::new();
        welcome.encode(&mut out);
        assert_eq!(out.len(), FIXED_LEN + 1023);
        let back = Welcome::decode(&mut out).unwrap().unwrap();
        assert_eq!(back.message, "a".repeat(1023));
        assert_eq!(back.status, HandshakeStatus::UNKNOWN_SERVICE);

        let exact = "b".repeat(1024 + 10);
        let mut out = BytesMut::new();
        Welcome::reject(HandshakeStatus::BAD_HELLO, 0, exact).encode(&mut out);
        assert_eq!(out.len(), FIXED_LEN + 1024);
    }

    #[test]
    fn oversized_message_length_is_rejected() {
        let mut buf = BytesMut::new();
        Welcome::reject(HandshakeStatus::BAD_HELLO, 0, "").encode(&mut buf);
        buf[16..18].copy_from_slice(&1025u16.to_le_bytes());
        let cap = buf.capacity();
        assert!(matches!(
            Welcome::decode(&mut buf),
            Err(CodecError::BadHandshake(_))
        ));
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn bad_magic() {
        let mut buf = BytesMut::from(&b"FRRX"[..]);
        assert!(matches!(
            Welcome::decode(&mut buf),
            Err(CodecError::BadMagic { found, expected: MAGIC }) if &found == b"FRRX"
        ));
    }

    #[test]
    fn invalid_utf8_message_is_refused() {
        let mut buf = BytesMut::new();
        Welcome::reject(HandshakeStatus::NOT_AUTHORIZED, 0, "ab").encode(&mut buf);
        buf[FIXED_LEN + 1] = 0xFF;
        let len = buf.len();
        let err = Welcome::decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            CodecError::HandshakeNotUtf8 {
                field: "welcome message",
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "malformed handshake: welcome message is not valid UTF-8"
        );
        let source = std::error::Error::source(&err).map(|s| s.to_string());
        assert_eq!(
            source.as_deref(),
            Some("invalid utf-8 sequence of 1 bytes from index 1")
        );
        assert_eq!(buf.len(), len, "nothing consumed");
    }

    /// Found by the `handshake` fuzz target (issue 17): a message of invalid bytes used to
    /// decode to U+FFFD replacements, three bytes each, so the decoded message grew past
    /// 1024 bytes, and encoding it again cut it: decode, encode, decode changed it.
    #[test]
    fn fuzz_found_non_utf8_message_is_refused_not_grown() {
        let input = base64(concat!(
            "RlJSWQEAWQFZAQADdmlGUlkBx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fH",
            "x8fHx///////////////////////////////////////////////////x8fHx8fHx8fHx8fHx8fHx8fHx8fH",
            "x8fHx8fHAIaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaG",
            "hoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoYD",
            "x8fHx8fHxwCGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaG",
            "hoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaG",
            "A2FsaQ==",
        ));
        assert_eq!(input.len(), 382);
        let mut buf = BytesMut::from(&input[..]);
        let err = Welcome::decode(&mut buf).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::HandshakeNotUtf8 {
                    field: "welcome message",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(buf.len(), input.len(), "nothing consumed");
    }

    /// Decodes standard base64 (with `=` padding); enough for the test inputs above.
    fn base64(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0u32);
        for c in text.bytes().take_while(|&c| c != b'=') {
            let value = ALPHABET.iter().position(|&a| a == c).expect("base64 digit");
            acc = (acc << 6) | value as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }
}
