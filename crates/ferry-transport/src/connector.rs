//! Connecting to a named endpoint.

use std::io;
use std::time::Duration;

use tokio::time::{self, Instant};

use crate::error::TransportError;
use crate::name::Name;
use crate::stream::Stream;
use crate::sys;

/// First pause between attempts while waiting for a server to appear.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(5);
/// Longest pause between attempts while waiting for a server to appear.
const MAX_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Options for [`connect_with`].
///
/// The default fails at once when no server is there, and bounds one attempt to 5 seconds.
#[derive(Clone, Debug)]
#[must_use = "options do nothing until they are passed on"]
pub struct ConnectOptions {
    pub(crate) wait: Option<Duration>,
    pub(crate) timeout: Duration,
    pub(crate) server_pid: Option<u32>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            wait: None,
            timeout: Duration::from_secs(5),
            server_pid: None,
        }
    }
}

impl ConnectOptions {
    /// The default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps retrying for up to `d` while no server is there (no socket file, connection
    /// refused, no pipe), then fails with [`TransportError::ConnectTimeout`].
    pub fn wait(mut self, d: Duration) -> Self {
        self.wait = Some(d);
        self
    }

    /// Bound for one connection attempt (default 5 s); passing it gives
    /// [`TransportError::ConnectTimeout`]. (Not a call's deadline: that is
    /// `ferry::ClientOptions::timeout`.)
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// The former name of [`ConnectOptions::attempt_timeout`].
    #[deprecated(note = "renamed `attempt_timeout`: it bounds one connection attempt")]
    pub fn timeout(self, d: Duration) -> Self {
        self.attempt_timeout(d)
    }

    /// Accepts only a server running as process `pid`; any other gives
    /// [`TransportError::UnexpectedServer`] and the connection is dropped.
    ///
    /// The id comes from the system (`GetNamedPipeServerProcessId` on Windows, the socket's
    /// peer credentials on Unix), so a server squatting the name cannot fake it.
    pub fn require_server_pid(mut self, pid: u32) -> Self {
        self.server_pid = Some(pid);
        self
    }
}

/// Connects to `name` with the default [`ConnectOptions`].
pub async fn connect(name: &Name) -> Result<Stream, TransportError> {
    connect_with(name, &ConnectOptions::default()).await
}

/// Connects to `name`. Must be called inside a tokio runtime with time enabled.
///
/// For a plain name on Unix, the runtime directory is checked before every attempt exactly
/// as a server checks it before binding (a real directory, owned by this user or root, that
/// neither group nor others may write); a directory that fails gives
/// [`TransportError::UnsafeDirectory`] and nothing is connected.
///
/// Cancel-safe: dropping the future abandons the attempt and leaves nothing behind.
pub async fn connect_with(name: &Name, options: &ConnectOptions) -> Result<Stream, TransportError> {
    // The address only for errors and logs: formatting it costs more than the connect.
    let address = || name.address();
    let target = sys::Target::resolve(name)?;
    let start = Instant::now();
    let deadline = options.wait.map(|wait| start + wait);
    let mut delay = FIRST_RETRY_DELAY;
    loop {
        let error = if !target.check()? {
            // No runtime directory yet: no server has run there.
            io::Error::new(
                io::ErrorKind::NotFound,
                "the runtime directory does not exist (no server has run there)",
            )
        } else {
            match time::timeout(options.timeout, target.connect()).await {
                Err(_elapsed) => {
                    return Err(TransportError::ConnectTimeout {
                        address: address(),
                        waited: start.elapsed(),
                    })
                }
                Ok(Ok((stream, credentials))) => {
                    if let Some(expected) = options.server_pid {
                        if credentials.pid != Some(expected) {
                            return Err(TransportError::UnexpectedServer {
                                address: address(),
                                expected,
                                actual: credentials.pid,
                            });
                        }
                    }
                    return Ok(Stream::new(stream, credentials));
                }
                Ok(Err(error)) => error,
            }
        };
        if !is_absent(&error) {
            return Err(TransportError::io("connect", &address(), error));
        }
        let Some(deadline) = deadline else {
            return Err(TransportError::NotFound {
                address: address(),
                source: error,
            });
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(TransportError::ConnectTimeout {
                address: address(),
                waited: now - start,
            });
        }
        tracing::trace!(address = %address(), ?delay, "no server yet, retrying");
        time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}

/// True when the error means nobody listens there (yet).
fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    ) || sys::is_absent(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_builders() {
        let o = ConnectOptions::new();
        assert_eq!(o.wait, None);
        assert_eq!(o.timeout, Duration::from_secs(5));
        let o = o
            .wait(Duration::from_secs(1))
            .attempt_timeout(Duration::from_secs(2));
        assert_eq!(o.wait, Some(Duration::from_secs(1)));
        assert_eq!(o.timeout, Duration::from_secs(2));
        assert_eq!(o.server_pid, None);
        assert_eq!(o.require_server_pid(7).server_pid, Some(7));
    }

    #[test]
    fn absent_errors() {
        assert!(is_absent(&io::Error::from(io::ErrorKind::NotFound)));
        assert!(is_absent(&io::Error::from(
            io::ErrorKind::ConnectionRefused
        )));
        assert!(!is_absent(&io::Error::from(
            io::ErrorKind::PermissionDenied
        )));
    }
}
