//! Unix domain sockets, on top of tokio's `UnixListener` / `UnixStream`.

mod dial;
mod inherit;
mod listener;
mod passing;
mod private_dir;
mod rights;
mod runtime_dir;
pub(crate) mod shm;
mod stream;
mod target;

pub(crate) use inherit::{pass_to_child, take_inherited};
pub(crate) use listener::Listener;
pub(crate) use stream::{pair, pair_std, ReadHalf, Stream, WriteHalf};
pub(crate) use target::Target;

use std::io;

/// The socket path a plain name maps to, as text.
pub(crate) fn plain_address(plain: &str) -> String {
    runtime_dir::plain_socket_path(plain).display().to_string()
}

/// The directory that holds the sockets of plain names.
pub(crate) fn plain_directory() -> std::path::PathBuf {
    runtime_dir::current_runtime_dir().path
}

/// The plain name whose socket is the entry `entry` of [`plain_directory`]: `x.sock` is `x`.
pub(crate) fn plain_name_of(entry: &str) -> Option<&str> {
    entry.strip_suffix(".sock").filter(|name| !name.is_empty())
}

/// Unix reports an absent server as `ENOENT` or `ECONNREFUSED`, which the portable
/// check already covers.
pub(crate) fn is_absent(_error: &io::Error) -> bool {
    false
}

/// Who this process runs as: its id and effective user and group ids.
pub(crate) fn own_credentials(
) -> Result<crate::credentials::PeerCredentials, crate::error::TransportError> {
    // SAFETY: getegid has no preconditions, touches no memory we own and cannot fail.
    let gid = unsafe { libc::getegid() };
    Ok(crate::credentials::PeerCredentials {
        pid: Some(std::process::id()),
        uid: Some(effective_uid()),
        gid: Some(gid),
        sid: None,
        administrator: false,
    })
}

/// The effective user id of this process.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions, touches no memory we own and cannot fail.
    unsafe { libc::geteuid() }
}
