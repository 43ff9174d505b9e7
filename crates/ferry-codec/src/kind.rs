//! Frame kinds and frame flag bits.

use std::fmt;

/// The kind byte of a frame header.
///
/// Kinds `0x80..=0xFF` are ignorable extensions: a receiver that does not know one skips
/// the frame. An unknown kind below `0x80` is a protocol violation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameKind(pub u8);

impl FrameKind {
    /// A call from the client; `aux` is the method index.
    pub const REQUEST: FrameKind = FrameKind(0x01);
    /// The return value of a call.
    pub const RESPONSE: FrameKind = FrameKind(0x02);
    /// A failed call (or, with id 0, a connection-level error); `aux` is the status code.
    pub const ERROR: FrameKind = FrameKind(0x03);
    /// The client gives up on a call.
    pub const CANCEL: FrameKind = FrameKind(0x04);
    /// One item of a stream (a stream argument or a reply stream).
    pub const STREAM_ITEM: FrameKind = FrameKind(0x05);
    /// The normal end of a stream.
    pub const STREAM_END: FrameKind = FrameKind(0x06);
    /// Flow-control credit for a stream: a `u32` count of further items accepted.
    pub const CREDIT: FrameKind = FrameKind(0x07);
    /// Reserved: a server push on a subscription.
    pub const NOTIFY: FrameKind = FrameKind(0x08);
    /// The server has begun to shut down: it runs no new call (protocol version 2).
    pub const GOAWAY: FrameKind = FrameKind(0x09);
    /// Liveness probe, answered with PONG (protocol version 2).
    pub const PING: FrameKind = FrameKind(0x0A);
    /// The answer to a PING, carrying its bytes (protocol version 2).
    pub const PONG: FrameKind = FrameKind(0x0B);
    /// A request sent before the handshake's answer (protocol version 3, after a hello with
    /// [`Hello::EARLY`](crate::Hello::EARLY)): laid out like a REQUEST. An ignorable kind,
    /// so a server of an older version skips it and runs nothing.
    pub const EARLY_REQUEST: FrameKind = FrameKind(0x81);

    /// Whether this kind is defined by the protocol (including the reserved NOTIFY).
    pub fn is_known(self) -> bool {
        self.known_name().is_some()
    }

    /// Whether a receiver that does not know this kind may skip it (`0x80..=0xFF`).
    pub fn is_ignorable(self) -> bool {
        self.0 >= 0x80
    }

    /// The name of this kind, or `"UNKNOWN"`.
    pub fn name(self) -> &'static str {
        self.known_name().unwrap_or("UNKNOWN")
    }

    fn known_name(self) -> Option<&'static str> {
        Some(match self {
            FrameKind::REQUEST => "REQUEST",
            FrameKind::RESPONSE => "RESPONSE",
            FrameKind::ERROR => "ERROR",
            FrameKind::CANCEL => "CANCEL",
            FrameKind::STREAM_ITEM => "STREAM_ITEM",
            FrameKind::STREAM_END => "STREAM_END",
            FrameKind::CREDIT => "CREDIT",
            FrameKind::NOTIFY => "NOTIFY",
            FrameKind::GOAWAY => "GOAWAY",
            FrameKind::PING => "PING",
            FrameKind::PONG => "PONG",
            FrameKind::EARLY_REQUEST => "EARLY_REQUEST",
            _ => return None,
        })
    }
}

impl fmt::Debug for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.known_name() {
            Some(name) => f.write_str(name),
            None => write!(f, "FrameKind({:#04x})", self.0),
        }
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Bits of the frame header's flags byte. Unlisted bits are reserved, sent as 0 and ignored.
pub mod flags {
    /// Request: the body starts with a `u32` deadline in milliseconds.
    pub const DEADLINE: u8 = 0x01;
    /// Request: the call carries a stream (its reply or its stream argument).
    pub const STREAM: u8 = 0x02;
    /// Reserved: the last frame of a stream.
    pub const END: u8 = 0x04;
    /// REQUEST, RESPONSE, ERROR (protocol version 3): the body starts (after a REQUEST's
    /// deadline) with a [`Metadata`](crate::Metadata) block.
    pub const METADATA: u8 = 0x08;
    /// Version 3, REQUEST and RESPONSE: operating-system handles go with the frame; the
    /// body ends with the handle trailer ([`split_handle_trailer`](crate::split_handle_trailer)).
    pub const HANDLES: u8 = 0x10;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_ignorable() {
        for k in 0x01..=0x0B {
            assert!(FrameKind(k).is_known(), "{k:#x}");
            assert!(!FrameKind(k).is_ignorable());
        }
        assert!(!FrameKind(0x00).is_known());
        assert!(!FrameKind(0x0C).is_known());
        assert!(!FrameKind(0x7F).is_ignorable());
        assert!(FrameKind(0x80).is_ignorable());
        assert!(FrameKind::EARLY_REQUEST.is_known() && FrameKind::EARLY_REQUEST.is_ignorable());
        assert!(FrameKind(0xFF).is_ignorable());
        assert!(!FrameKind(0x80).is_known());
    }

    #[test]
    fn debug_prints_name() {
        assert_eq!(format!("{:?}", FrameKind::REQUEST), "REQUEST");
        assert_eq!(format!("{:?}", FrameKind::PONG), "PONG");
        assert_eq!(format!("{:?}", FrameKind(0x90)), "FrameKind(0x90)");
        assert_eq!(FrameKind(0x90).name(), "UNKNOWN");
    }
}
