//! The error type of this crate.

use crate::StatusCode;

/// Everything that can go wrong while encoding or decoding ferry messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A frame body is larger than the limit of the side that would receive it.
    #[error("frame of {size} bytes exceeds limit of {limit}")]
    FrameTooLarge {
        /// Size of the frame body in bytes.
        size: u64,
        /// The limit it exceeds.
        limit: u32,
    },
    /// A handshake message does not start with [`MAGIC`](crate::MAGIC).
    #[error("bad magic {found:02x?}, expected {expected:02x?}")]
    BadMagic {
        /// The first four bytes received.
        found: [u8; 4],
        /// The bytes expected.
        expected: [u8; 4],
    },
    /// A handshake message is malformed (empty service name, message too long, ...).
    #[error("malformed handshake: {0}")]
    BadHandshake(String),
    /// A text field of a handshake message (the service name of a [`Hello`](crate::Hello),
    /// the message of a [`Welcome`](crate::Welcome)) is not valid UTF-8: the message is
    /// malformed, like one that fails with [`BadHandshake`](Self::BadHandshake).
    #[error("malformed handshake: {field} is not valid UTF-8")]
    HandshakeNotUtf8 {
        /// Which field: `"service name"` or `"welcome message"`.
        field: &'static str,
        /// Where the bytes stop being UTF-8.
        #[source]
        source: std::str::Utf8Error,
    },
    /// A frame body is shorter than its kind and flags require.
    #[error("{kind} frame body of {len} bytes is shorter than the {needed} bytes required")]
    ShortBody {
        /// Name of the frame kind.
        kind: &'static str,
        /// Length of the body received.
        len: usize,
        /// Number of bytes the body must have at least.
        needed: usize,
    },
    /// A frame body does not have the exact length its kind requires (GOAWAY, PING, PONG).
    #[error("{kind} frame body of {len} bytes; it must be exactly {expected} bytes")]
    BodyLength {
        /// Name of the frame kind.
        kind: &'static str,
        /// Length of the body received.
        len: usize,
        /// The length the kind requires.
        expected: usize,
    },
    /// [`finish_frame`](crate::finish_frame) found the output buffer shorter than the
    /// header written by [`begin_frame`](crate::begin_frame).
    #[error("frame started at offset {offset} but the buffer holds only {len} bytes")]
    FrameStartLost {
        /// Offset returned by `begin_frame`.
        offset: usize,
        /// Length of the buffer when the frame was finished.
        len: usize,
    },
    /// A frame carries more operating-system handles than one frame may (or a handle
    /// trailer announces none).
    #[error("{count} handles in one frame; 1 to {limit} may go with a frame")]
    TooManyHandles {
        /// How many handles.
        count: usize,
        /// The most one frame may carry.
        limit: usize,
    },
    /// A value could not be encoded in the payload format.
    #[error("failed to encode {format} payload")]
    Encode {
        /// Name of the payload format.
        format: &'static str,
        /// What the format's encoder reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A payload could not be decoded into the expected type.
    #[error("failed to decode {format} payload")]
    Decode {
        /// Name of the payload format.
        format: &'static str,
        /// What the format's decoder reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl CodecError {
    /// The wire status code that reports this error to a peer.
    ///
    /// [`FrameTooLarge`](Self::FrameTooLarge) maps to [`StatusCode::FRAME_TOO_LARGE`],
    /// [`Decode`](Self::Decode) to [`StatusCode::BAD_ARGUMENTS`], [`Encode`](Self::Encode)
    /// (a local value that cannot be serialized) to [`StatusCode::INTERNAL`], and every
    /// other error to [`StatusCode::PROTOCOL`].
    pub fn status(&self) -> StatusCode {
        match self {
            CodecError::FrameTooLarge { .. } => StatusCode::FRAME_TOO_LARGE,
            CodecError::Decode { .. } => StatusCode::BAD_ARGUMENTS,
            CodecError::Encode { .. } => StatusCode::INTERNAL,
            _ => StatusCode::PROTOCOL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_include_values() {
        let e = CodecError::FrameTooLarge {
            size: 9_000_000,
            limit: 8_388_608,
        };
        assert_eq!(
            e.to_string(),
            "frame of 9000000 bytes exceeds limit of 8388608"
        );
        let e = CodecError::BadMagic {
            found: *b"GET ",
            expected: crate::MAGIC,
        };
        assert_eq!(
            e.to_string(),
            "bad magic [47, 45, 54, 20], expected [46, 52, 52, 59]"
        );
    }

    #[test]
    fn status_mapping() {
        let too_large = CodecError::FrameTooLarge { size: 2, limit: 1 };
        assert_eq!(too_large.status(), StatusCode::FRAME_TOO_LARGE);
        let decode = CodecError::Decode {
            format: "json",
            source: "x".into(),
        };
        assert_eq!(decode.status(), StatusCode::BAD_ARGUMENTS);
        let encode = CodecError::Encode {
            format: "json",
            source: "x".into(),
        };
        assert_eq!(encode.status(), StatusCode::INTERNAL);
        assert_eq!(
            CodecError::BadHandshake("x".into()).status(),
            StatusCode::PROTOCOL
        );
        let not_utf8 = CodecError::HandshakeNotUtf8 {
            field: "service name",
            source: String::from_utf8(vec![0xFF]).unwrap_err().utf8_error(),
        };
        assert_eq!(not_utf8.status(), StatusCode::PROTOCOL);
    }

    #[test]
    fn not_utf8_leaves_the_offset_to_its_source() {
        use std::error::Error as _;
        let err = CodecError::HandshakeNotUtf8 {
            field: "service name",
            source: String::from_utf8(vec![b'a', b'b', 0xFF])
                .unwrap_err()
                .utf8_error(),
        };
        assert_eq!(
            err.to_string(),
            "malformed handshake: service name is not valid UTF-8"
        );
        let source = err.source().map(|s| s.to_string());
        assert_eq!(
            source.as_deref(),
            Some("invalid utf-8 sequence of 1 bytes from index 2")
        );
    }

    #[test]
    fn source_chain_is_kept() {
        use std::error::Error as _;
        let decode = CodecError::Decode {
            format: "json",
            source: "inner failure".into(),
        };
        let source = decode.source().map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("inner failure"));
    }
}
