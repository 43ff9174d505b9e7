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

/// Arranges for `socket` to be inherited by the next process `command` spawns, and returns
/// the descriptor number it will have there (tell the child, e.g. in an environment
/// variable; [`take_inherited`] takes it on the other side).
///
/// Only that child inherits it: the descriptor stays close-on-exec in this process and is
/// made inheritable in the forked child just before exec, so processes spawned at the same
/// time by other threads do not get it. This process's copy of `socket` closes when
/// `command` is dropped; drop the command after spawning so that the child's end is held
/// by the child alone (then this process reads end of stream when the child exits).
///
/// ```no_run
/// use ferry_transport::os::unix::{pair_std, pass_to_child};
///
/// let (mine, theirs) = pair_std()?;
/// let mut command = std::process::Command::new("worker");
/// let fd = pass_to_child(&mut command, theirs)?;
/// command.env("WORKER_FD", fd.to_string());
/// let child = command.spawn();
/// drop(command);
/// # drop((mine, child));
/// # Ok::<(), ferry_transport::TransportError>(())
/// ```
pub fn pass_to_child(
    command: &mut std::process::Command,
    socket: UnixStream,
) -> Result<std::os::fd::RawFd, TransportError> {
    sys::pass_to_child(command, socket)
}

/// Takes ownership of the Unix socket at descriptor `fd`, which this process inherited
/// from its parent (see [`pass_to_child`]), as a blocking standard-library socket.
///
/// The descriptor must be one the parent handed over for this purpose, not one that other
/// code in this process owns. It is checked to be open and a Unix socket, it is marked
/// close-on-exec again (so this process's own children do not inherit it), and a second
/// call with the same number fails.
///
/// ```no_run
/// let fd: std::os::fd::RawFd = std::env::var("WORKER_FD").ok().and_then(|v| v.parse().ok()).unwrap_or(-1);
/// let socket = ferry_transport::os::unix::take_inherited(fd)?;
/// # drop(socket);
/// # Ok::<(), ferry_transport::TransportError>(())
/// ```
pub fn take_inherited(fd: std::os::fd::RawFd) -> Result<UnixStream, TransportError> {
    sys::take_inherited(fd)
}
