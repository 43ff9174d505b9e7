//! The error type of this crate.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while naming, binding or connecting an endpoint.
///
/// Errors that come from the operating system keep it as their [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The string does not name an endpoint on this platform.
    #[error("invalid endpoint name {name:?}: {reason}")]
    InvalidName {
        /// The rejected input.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A live server already listens on the address; it was left alone.
    #[error("address {address} is in use by a running server")]
    AddressInUse {
        /// The platform address (socket path, `@name` or pipe name).
        address: String,
    },
    /// Nobody listens on the address (no socket file, connection refused, no such pipe).
    #[error("no server at {address}")]
    NotFound {
        /// The platform address.
        address: String,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// A connection attempt, or the wait for a server to appear, took too long.
    #[error("timed out after {waited:?} connecting to {address}")]
    ConnectTimeout {
        /// The platform address.
        address: String,
        /// How long the caller waited in total.
        waited: Duration,
    },
    /// The operating system refused access to the address.
    #[error("permission denied on {address}")]
    PermissionDenied {
        /// The platform address.
        address: String,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// The directory that holds sockets for plain names is not private to this user.
    #[error("unsafe runtime directory {path}: {reason}")]
    UnsafeDirectory {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other I/O failure.
    #[error("{op} failed on {address}")]
    Io {
        /// The operation that failed, e.g. `"bind"` or `"accept"`.
        op: &'static str,
        /// The platform address.
        address: String,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// The server is not the process the caller required
    /// ([`ConnectOptions::require_server_pid`](crate::ConnectOptions::require_server_pid)).
    #[error("server at {address} is process {actual:?}, expected process {expected}")]
    UnexpectedServer {
        /// The platform address.
        address: String,
        /// The process id the caller required.
        expected: u32,
        /// The process id the system reported, if any.
        actual: Option<u32>,
    },
    /// The feature does not exist on this platform.
    #[error("{0} is not supported on this platform")]
    Unsupported(&'static str),
}

impl TransportError {
    /// Maps an I/O error of `op` on `address`, keeping permission problems apart.
    pub(crate) fn io(op: &'static str, address: &str, source: io::Error) -> Self {
        let address = address.to_owned();
        match source.kind() {
            io::ErrorKind::PermissionDenied => Self::PermissionDenied { address, source },
            _ => Self::Io {
                op,
                address,
                source,
            },
        }
    }

    /// True when no server listens at the address ([`TransportError::NotFound`]).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// True for [`TransportError::ConnectTimeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::ConnectTimeout { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_values() {
        let err = TransportError::InvalidName {
            name: "a b".into(),
            reason: "bad".into(),
        };
        assert_eq!(err.to_string(), "invalid endpoint name \"a b\": bad");
        let err = TransportError::io("bind", "/x.sock", io::Error::other("boom"));
        assert_eq!(err.to_string(), "bind failed on /x.sock");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn permission_errors_are_their_own_variant() {
        let err = TransportError::io(
            "connect",
            "/x.sock",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(matches!(err, TransportError::PermissionDenied { .. }));
    }
}
