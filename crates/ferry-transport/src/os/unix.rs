//! Unix-only extras.

use std::os::unix::net::UnixStream;

use crate::error::TransportError;
use crate::sys;

/// Two connected blocking standard-library sockets (`socketpair`), e.g. to hand one end
/// to a child process and wrap the other with [`Stream::from_std`](crate::Stream::from_std).
///
/// Both ends are close-on-exec; clear that flag on the end a child should inherit.
pub fn pair_std() -> Result<(UnixStream, UnixStream), TransportError> {
    sys::pair_std()
}
