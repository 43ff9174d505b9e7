//! The client's opening message.

use bytes::{Buf, BufMut, BytesMut};

use super::{check_magic, text, u16_at, u32_at, u64_at, MAX_SERVICE_NAME};
use crate::{CodecError, FormatId, DEFAULT_MAX_FRAME, MAGIC, PROTOCOL_VERSION};

/// Length of the fixed part of a [`Hello`], before the service name.
const FIXED_LEN: usize = 21;

/// What a client sends first: which protocol, format and service it wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Highest protocol version the client speaks.
    pub version: u16,
    /// Payload format byte, see [`FormatId`].
    pub format: u8,
    /// Flag bits: [`Hello::BIND_BY_NAME`], [`Hello::EARLY`]; the others are reserved, sent
    /// as 0 and ignored.
    pub flags: u8,
    /// Largest frame body the client accepts.
    pub max_frame: u32,
    /// [`signature_hash`](crate::signature_hash) of the service as the client knows it.
    pub signature: u64,
    /// Name of the service, 1 to 255 bytes of UTF-8.
    pub service: String,
}

impl Hello {
    /// Flag: the client binds its methods by name against the server's method table
    /// (version 2 and later), so the server accepts it whatever its signature and leaves
    /// the comparison, method by method, to the client.
    pub const BIND_BY_NAME: u8 = 0x01;

    /// Flag: early requests may follow this hello before the [`Welcome`](crate::Welcome)
    /// (version 3 and later). Each is an [`EARLY_REQUEST`](crate::FrameKind::EARLY_REQUEST)
    /// frame carrying the client's own method index; a server of version 3 runs it only
    /// when this hello's signature equals its own (so the indices agree) and otherwise
    /// answers ERROR [`EARLY_REJECTED`](crate::StatusCode::EARLY_REJECTED), not run. Older
    /// servers skip the frame (an ignorable kind), so it never runs under a wrong index.
    pub const EARLY: u8 = 0x02;

    /// A hello for protocol [`PROTOCOL_VERSION`] with the [`DEFAULT_MAX_FRAME`] limit.
    pub fn new(service: impl Into<String>, signature: u64, format: FormatId) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            format: format.as_u8(),
            flags: 0,
            max_frame: DEFAULT_MAX_FRAME,
            signature,
            service: service.into(),
        }
    }

    /// The payload format, if its byte names one this crate knows.
    pub fn format_id(&self) -> Option<FormatId> {
        FormatId::from_u8(self.format)
    }

    /// Appends the encoded hello to `out`.
    ///
    /// Fails with [`CodecError::BadHandshake`] (leaving `out` unchanged) when the service
    /// name is empty or longer than 255 bytes.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), CodecError> {
        let name = self.service.as_bytes();
        let name_len = match u8::try_from(name.len()) {
            Ok(0) => return Err(CodecError::BadHandshake("empty service name".to_owned())),
            Ok(len) => len,
            Err(_) => {
                return Err(CodecError::BadHandshake(format!(
                    "service name of {} bytes exceeds {MAX_SERVICE_NAME}",
                    name.len()
                )))
            }
        };
        out.reserve(FIXED_LEN + name.len());
        out.put_slice(&MAGIC);
        out.put_u16_le(self.version);
        out.put_u8(self.format);
        out.put_u8(self.flags);
        out.put_u32_le(self.max_frame);
        out.put_u64_le(self.signature);
        out.put_u8(name_len);
        out.put_slice(name);
        Ok(())
    }

    /// Takes a hello off the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed. Fails with [`CodecError::BadMagic`] as soon
    /// as four bytes are present and are not [`MAGIC`], with [`CodecError::BadHandshake`]
    /// for an empty service name and with [`CodecError::HandshakeNotUtf8`] for one that is
    /// not valid UTF-8. Nothing is consumed unless a whole hello is returned.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Hello>, CodecError> {
        check_magic(buf)?;
        if buf.len() < FIXED_LEN {
            return Ok(None);
        }
        let name_len = usize::from(buf[20]);
        if name_len == 0 {
            return Err(CodecError::BadHandshake("empty service name".to_owned()));
        }
        let total = FIXED_LEN + name_len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let service = text(&buf[FIXED_LEN..total], "service name")?;
        let hello = Hello {
            version: u16_at(buf, 4),
            format: buf[6],
            flags: buf[7],
            max_frame: u32_at(buf, 8),
            signature: u64_at(buf, 12),
            service,
        };
        buf.advance(total);
        Ok(Some(hello))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Hello {
        Hello {
            version: 1,
            format: 1,
            flags: 0,
            max_frame: 0x0102_0304,
            signature: 0x1122_3344_5566_7788,
            service: "calc".to_owned(),
        }
    }

    #[test]
    fn layout() {
        let mut out = BytesMut::new();
        sample().encode(&mut out).unwrap();
        assert_eq!(
            &out[..],
            &[
                b'F', b'R', b'R', b'Y', 1, 0, 1, 0, 4, 3, 2, 1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33,
                0x22, 0x11, 4, b'c', b'a', b'l', b'c'
            ]
        );
    }

    #[test]
    fn round_trip_byte_by_byte() {
        let mut wire = BytesMut::new();
        sample().encode(&mut wire).unwrap();
        wire.extend_from_slice(b"next");
        let mut buf = BytesMut::new();
        let mut got = None;
        for b in wire.iter() {
            buf.put_u8(*b);
            if got.is_none() {
                got = Hello::decode(&mut buf).unwrap();
            }
        }
        assert_eq!(got, Some(sample()));
        assert_eq!(&buf[..], b"next");
    }

    #[test]
    fn bad_magic_as_soon_as_four_bytes() {
        let mut buf = BytesMut::from(&b"GET"[..]);
        assert!(Hello::decode(&mut buf).unwrap().is_none());
        buf.put_u8(b' ');
        let err = Hello::decode(&mut buf).unwrap_err();
        assert!(matches!(err, CodecError::BadMagic { found, .. } if &found == b"GET "));
    }

    #[test]
    fn name_limits() {
        let mut out = BytesMut::new();
        let mut hello = sample();
        hello.service = String::new();
        assert!(matches!(
            hello.encode(&mut out),
            Err(CodecError::BadHandshake(_))
        ));
        hello.service = "x".repeat(256);
        let err = hello.encode(&mut out).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed handshake: service name of 256 bytes exceeds 255"
        );
        assert!(out.is_empty());
        hello.service = "é".repeat(127) + "x";
        hello.encode(&mut out).unwrap();
        assert_eq!(Hello::decode(&mut out).unwrap(), Some(hello));
    }

    #[test]
    fn empty_or_invalid_name_is_rejected() {
        let mut wire = BytesMut::new();
        sample().encode(&mut wire).unwrap();
        let mut empty = wire.clone();
        empty[20] = 0;
        assert!(matches!(
            Hello::decode(&mut empty),
            Err(CodecError::BadHandshake(_))
        ));
        let mut invalid = wire.clone();
        invalid[22] = 0xFF;
        let err = Hello::decode(&mut invalid).unwrap_err();
        assert!(matches!(
            err,
            CodecError::HandshakeNotUtf8 {
                field: "service name",
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "malformed handshake: service name is not valid UTF-8"
        );
        let source = std::error::Error::source(&err).map(|s| s.to_string());
        assert_eq!(
            source.as_deref(),
            Some("invalid utf-8 sequence of 1 bytes from index 1")
        );
        assert_eq!(invalid.len(), wire.len(), "nothing consumed");
    }

    #[test]
    fn new_uses_defaults() {
        let hello = Hello::new("calc", 5, FormatId::Json);
        assert_eq!(hello.version, PROTOCOL_VERSION);
        assert_eq!(hello.max_frame, DEFAULT_MAX_FRAME);
        assert_eq!(hello.format_id(), Some(FormatId::Json));
    }
}
