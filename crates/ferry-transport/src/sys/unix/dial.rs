//! Connecting without waiting for readiness. A Unix socket's `connect(2)` on a non-blocking
//! socket connects at once or fails at once (a full backlog says `EAGAIN`): there is no
//! handshake in flight to wait for. tokio's connect waits for the socket to be reported
//! writable all the same, which costs a round through the runtime's I/O driver (on a
//! multi-thread runtime, a wake-up from another thread) and arms the attempt's timeout.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tokio::net::{UnixSocket, UnixStream};

/// Connects to `path` (abstract names start with NUL) if the system connects at once.
/// `Ok(None)` when it would have to wait (`EAGAIN`, `EINPROGRESS`, `EINTR`) or the path
/// does not fit a socket address: the caller then tries with tokio's connect. Any other
/// failure is the `connect(2)` error, as tokio's connect would report it.
pub(crate) fn connect_now(path: &Path) -> io::Result<Option<UnixStream>> {
    let Some((address, length)) = socket_address(path) else {
        return Ok(None);
    };
    // tokio's socket is created non-blocking and close-on-exec.
    let socket = UnixSocket::new_stream()?;
    // SAFETY: the descriptor is the open socket `socket` owns for this whole call, and
    // `address` is a valid `sockaddr_un` of which `length` bytes are in use; it outlives
    // the call.
    let connected = unsafe {
        libc::connect(
            socket.as_raw_fd(),
            std::ptr::addr_of!(address).cast::<libc::sockaddr>(),
            length,
        )
    };
    if connected != 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN | libc::EINPROGRESS | libc::EINTR) => Ok(None),
            _ => Err(err),
        };
    }
    // SAFETY: `into_raw_fd` hands over the open, connected descriptor `socket` owned;
    // nothing else owns or closes it.
    let stream = unsafe { std::os::unix::net::UnixStream::from_raw_fd(socket.into_raw_fd()) };
    UnixStream::from_std(stream).map(Some)
}

/// The socket address of `path` and the length of it in use: a path ends with NUL, an
/// abstract name (leading NUL, Linux) is exactly its bytes. `None` when it does not fit.
fn socket_address(path: &Path) -> Option<(libc::sockaddr_un, libc::socklen_t)> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: `sockaddr_un` is plain old data, for which all zeroes is a valid value.
    let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let used = match bytes.first() {
        None => return None,
        Some(0) => bytes.len(),
        // The zeroed buffer provides the terminating NUL.
        Some(_) => bytes.len() + 1,
    };
    if used > address.sun_path.len() {
        return None;
    }
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (slot, byte) in address.sun_path.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    let length = std::mem::offset_of!(libc::sockaddr_un, sun_path) + used;
    Some((address, libc::socklen_t::try_from(length).ok()?))
}
