//! The status byte of a [`Welcome`](crate::Welcome).

use std::fmt;

/// Whether the server accepted the connection, and if not, why.
///
/// Any value other than [`OK`](Self::OK) is a rejection, including values this crate
/// does not know.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandshakeStatus(pub u8);

impl HandshakeStatus {
    /// The connection is accepted.
    pub const OK: HandshakeStatus = HandshakeStatus(0);
    /// The server does not speak the requested protocol version.
    pub const UNSUPPORTED_VERSION: HandshakeStatus = HandshakeStatus(1);
    /// The server does not support the requested payload format.
    pub const UNSUPPORTED_FORMAT: HandshakeStatus = HandshakeStatus(2);
    /// The server serves no service of that name.
    pub const UNKNOWN_SERVICE: HandshakeStatus = HandshakeStatus(3);
    /// The service's signature hash differs between client and server.
    pub const SIGNATURE_MISMATCH: HandshakeStatus = HandshakeStatus(4);
    /// The client may not connect.
    pub const NOT_AUTHORIZED: HandshakeStatus = HandshakeStatus(5);
    /// The server has too many connections.
    pub const SERVER_BUSY: HandshakeStatus = HandshakeStatus(6);
    /// The server is shutting down.
    pub const SHUTTING_DOWN: HandshakeStatus = HandshakeStatus(7);
    /// The client's hello was malformed.
    pub const BAD_HELLO: HandshakeStatus = HandshakeStatus(8);

    /// Whether the connection was accepted.
    pub fn is_ok(self) -> bool {
        self == HandshakeStatus::OK
    }

    /// The name of this status, or `"UNKNOWN"`.
    pub fn name(self) -> &'static str {
        match self {
            HandshakeStatus::OK => "OK",
            HandshakeStatus::UNSUPPORTED_VERSION => "UNSUPPORTED_VERSION",
            HandshakeStatus::UNSUPPORTED_FORMAT => "UNSUPPORTED_FORMAT",
            HandshakeStatus::UNKNOWN_SERVICE => "UNKNOWN_SERVICE",
            HandshakeStatus::SIGNATURE_MISMATCH => "SIGNATURE_MISMATCH",
            HandshakeStatus::NOT_AUTHORIZED => "NOT_AUTHORIZED",
            HandshakeStatus::SERVER_BUSY => "SERVER_BUSY",
            HandshakeStatus::SHUTTING_DOWN => "SHUTTING_DOWN",
            HandshakeStatus::BAD_HELLO => "BAD_HELLO",
            _ => "UNKNOWN",
        }
    }

    fn is_known(self) -> bool {
        self.0 <= HandshakeStatus::BAD_HELLO.0
    }
}

impl fmt::Debug for HandshakeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            f.write_str(self.name())
        } else {
            write!(f, "HandshakeStatus({})", self.0)
        }
    }
}

impl fmt::Display for HandshakeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            write!(f, "{} ({})", self.name(), self.0)
        } else {
            write!(f, "unknown handshake status ({})", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(HandshakeStatus::OK.is_ok());
        assert!(!HandshakeStatus(200).is_ok());
        assert_eq!(HandshakeStatus::SIGNATURE_MISMATCH.0, 4);
        assert_eq!(HandshakeStatus::BAD_HELLO.0, 8);
        assert_eq!(format!("{:?}", HandshakeStatus::SERVER_BUSY), "SERVER_BUSY");
        assert_eq!(HandshakeStatus::SERVER_BUSY.to_string(), "SERVER_BUSY (6)");
        assert_eq!(format!("{:?}", HandshakeStatus(9)), "HandshakeStatus(9)");
        assert_eq!(
            HandshakeStatus(9).to_string(),
            "unknown handshake status (9)"
        );
    }
}
