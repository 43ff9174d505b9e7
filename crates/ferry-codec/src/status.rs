//! Status codes carried by ERROR frames.

use std::fmt;

/// Why a call (or a connection) failed, as carried in the `aux` field of an ERROR frame.
///
/// Unknown codes are kept as their number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusCode(pub u16);

impl StatusCode {
    /// Success; never sent on the wire.
    pub const OK: StatusCode = StatusCode(0);
    /// The method index is not part of the service.
    pub const UNKNOWN_METHOD: StatusCode = StatusCode(1);
    /// The arguments could not be decoded.
    pub const BAD_ARGUMENTS: StatusCode = StatusCode(2);
    /// The server has too many calls in flight.
    pub const OVERLOADED: StatusCode = StatusCode(3);
    /// The handler failed or panicked, or its result could not be encoded.
    pub const INTERNAL: StatusCode = StatusCode(4);
    /// The call's deadline expired.
    pub const DEADLINE_EXCEEDED: StatusCode = StatusCode(5);
    /// The call was cancelled.
    pub const CANCELLED: StatusCode = StatusCode(6);
    /// A frame exceeded the receiver's limit.
    pub const FRAME_TOO_LARGE: StatusCode = StatusCode(7);
    /// The peer broke the protocol.
    pub const PROTOCOL: StatusCode = StatusCode(8);
    /// The caller may not make this call.
    pub const NOT_AUTHORIZED: StatusCode = StatusCode(9);
    /// The server is shutting down.
    pub const SHUTTING_DOWN: StatusCode = StatusCode(10);
    /// The service is unavailable.
    pub const UNAVAILABLE: StatusCode = StatusCode(11);
    /// An early request the server did not run: the hello's signature differs from the
    /// server's, so the method index may mean another method here (protocol version 3).
    /// The client sends the call again as a REQUEST with the method table's index.
    pub const EARLY_REJECTED: StatusCode = StatusCode(12);

    /// The name of this code, or `"UNKNOWN"`.
    pub fn name(self) -> &'static str {
        match self {
            StatusCode::OK => "OK",
            StatusCode::UNKNOWN_METHOD => "UNKNOWN_METHOD",
            StatusCode::BAD_ARGUMENTS => "BAD_ARGUMENTS",
            StatusCode::OVERLOADED => "OVERLOADED",
            StatusCode::INTERNAL => "INTERNAL",
            StatusCode::DEADLINE_EXCEEDED => "DEADLINE_EXCEEDED",
            StatusCode::CANCELLED => "CANCELLED",
            StatusCode::FRAME_TOO_LARGE => "FRAME_TOO_LARGE",
            StatusCode::PROTOCOL => "PROTOCOL",
            StatusCode::NOT_AUTHORIZED => "NOT_AUTHORIZED",
            StatusCode::SHUTTING_DOWN => "SHUTTING_DOWN",
            StatusCode::UNAVAILABLE => "UNAVAILABLE",
            StatusCode::EARLY_REJECTED => "EARLY_REJECTED",
            _ => "UNKNOWN",
        }
    }

    /// Whether this is one of the codes this crate defines (v1's, and v3's
    /// [`EARLY_REJECTED`](Self::EARLY_REJECTED)).
    pub fn is_known(self) -> bool {
        self.0 <= StatusCode::EARLY_REJECTED.0
    }
}

impl fmt::Debug for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            f.write_str(self.name())
        } else {
            write!(f, "StatusCode({})", self.0)
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            write!(f, "{} ({})", self.name(), self.0)
        } else {
            write!(f, "unknown status ({})", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(StatusCode::UNKNOWN_METHOD.0, 1);
        assert_eq!(StatusCode::UNAVAILABLE.0, 11);
        assert_eq!(StatusCode::FRAME_TOO_LARGE.name(), "FRAME_TOO_LARGE");
        assert_eq!(format!("{:?}", StatusCode::PROTOCOL), "PROTOCOL");
        assert_eq!(StatusCode::PROTOCOL.to_string(), "PROTOCOL (8)");
    }

    #[test]
    fn unknown_codes_keep_their_number() {
        let code = StatusCode(4242);
        assert!(!code.is_known());
        assert_eq!(code.name(), "UNKNOWN");
        assert_eq!(format!("{code:?}"), "StatusCode(4242)");
        assert_eq!(code.to_string(), "unknown status (4242)");
    }
}
