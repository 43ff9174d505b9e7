//! The error type of this crate.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while naming, binding or connecting an endpoint.
///
/// Errors that come from the operating system say which operation failed on which address
/// ("create directory failed on /proc/ferry") and keep what the system reported, the
/// [`io::Error`], as their [`source`](std::error::Error::source), whose text they do not
/// repeat: print the chain (`ferry::ErrorChain`) to see both ("create directory failed
/// on /proc/ferry: No such file or directory (os error 2)").
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
    /// A live server already listens on the address; it was left alone. Which process
    /// holds it is read from the peer credentials of a probe connection, where the platform
    /// reports them (Unix socket paths).
    #[error("address {address} is in use by a running server{}", holder(*.pid, *.uid))]
    AddressInUse {
        /// The platform address (socket path, `@name` or pipe name).
        address: String,
        /// The process id of the server that holds the address, when known.
        pid: Option<u32>,
        /// The user id that server runs as, when known.
        uid: Option<u32>,
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
    #[error("{op} denied on {address}")]
    PermissionDenied {
        /// The operation that was refused, e.g. `"connect"` or `"create directory"`.
        op: &'static str,
        /// The platform address.
        address: String,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// The directory that holds the sockets of plain names could be controlled by another
    /// user (it is a symbolic link, belongs to someone else, or lets group or others write),
    /// so a socket in it may not be the server's. Refused by servers and clients alike.
    #[error("unsafe runtime directory {path}: {reason}; {advice}")]
    UnsafeDirectory {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// What to do about it.
        advice: String,
    },
    /// An environment variable names a directory that does not exist, so the plain names'
    /// runtime directory cannot be placed in it. ferry does not create it.
    #[error(
        "{variable} names {path}, which does not exist: create it (owned by you, mode 0700) \
         or unset {variable}"
    )]
    MissingRuntimeDirectory {
        /// The variable, e.g. `"XDG_RUNTIME_DIR"`.
        variable: &'static str,
        /// The directory it names.
        path: PathBuf,
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

/// ` (process 1234, user 1000)`: who holds an address, as far as it is known.
fn holder(pid: Option<u32>, uid: Option<u32>) -> String {
    match (pid, uid) {
        (Some(pid), Some(uid)) => format!(" (process {pid}, user {uid})"),
        (Some(pid), None) => format!(" (process {pid})"),
        (None, Some(uid)) => format!(" (user {uid})"),
        (None, None) => String::new(),
    }
}

impl TransportError {
    /// Maps an I/O error of `op` on `address`, keeping permission problems apart.
    pub(crate) fn io(op: &'static str, address: &str, source: io::Error) -> Self {
        let address = address.to_owned();
        match source.kind() {
            io::ErrorKind::PermissionDenied => Self::PermissionDenied {
                op,
                address,
                source,
            },
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

    /// True when the runtime directory of plain names cannot be trusted
    /// ([`TransportError::UnsafeDirectory`]): someone else may control what answers there.
    pub fn is_unsafe_directory(&self) -> bool {
        matches!(self, Self::UnsafeDirectory { .. })
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
        assert_eq!(chain(&err), ["bind failed on /x.sock", "boom"]);
    }

    /// The text of `err` and of each of its sources, outermost first.
    fn chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
        let mut texts = vec![err.to_string()];
        let mut source = err.source();
        while let Some(cause) = source {
            texts.push(cause.to_string());
            source = cause.source();
        }
        texts
    }

    /// The operating system's text is the source's, and only the source's.
    #[cfg(target_os = "linux")]
    #[test]
    fn messages_leave_the_os_cause_to_the_source() {
        let err = TransportError::io(
            "create directory",
            "/proc/ferry",
            io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert_eq!(
            chain(&err),
            [
                "create directory failed on /proc/ferry",
                "No such file or directory (os error 2)"
            ]
        );
        let err = TransportError::io(
            "connect",
            "/x.sock",
            io::Error::from_raw_os_error(libc::EACCES),
        );
        assert_eq!(
            chain(&err),
            [
                "connect denied on /x.sock",
                "Permission denied (os error 13)"
            ]
        );
        let err = TransportError::NotFound {
            address: "/x.sock".into(),
            source: io::Error::from_raw_os_error(libc::ECONNREFUSED),
        };
        assert_eq!(
            chain(&err),
            ["no server at /x.sock", "Connection refused (os error 111)"]
        );
    }

    #[test]
    fn address_in_use_names_the_process_when_known() {
        let in_use = |pid, uid| TransportError::AddressInUse {
            address: "/x.sock".into(),
            pid,
            uid,
        };
        assert_eq!(
            in_use(Some(42), Some(1000)).to_string(),
            "address /x.sock is in use by a running server (process 42, user 1000)"
        );
        assert_eq!(
            in_use(Some(42), None).to_string(),
            "address /x.sock is in use by a running server (process 42)"
        );
        assert_eq!(
            in_use(None, None).to_string(),
            "address /x.sock is in use by a running server"
        );
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
