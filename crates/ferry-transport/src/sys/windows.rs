//! Windows named pipes, on top of tokio's `named_pipe` (overlapped I/O through IOCP).
//!
//! - [`listener`]: a pool of instances of one pipe name; the next instance is created
//!   before a connected one is handed out; the first one with
//!   `FILE_FLAG_FIRST_PIPE_INSTANCE`; remote clients rejected; an owner-only descriptor.
//! - [`target`]: the client side, retrying busy pipes.
//! - [`stream`]: a connected end, its halves and the peer's process id and user SID.
//! - [`security`]: security descriptors and SIDs.
//! - [`pair`]: two connected ends under a random name.
//! - [`shm`]: shared-memory sections.

mod handles;
mod listener;
mod pair;
mod security;
pub(crate) mod shm;
mod stream;
mod target;

pub(crate) use handles::{adopt, close_in, duplicate_into, open_process};
pub(crate) use listener::Listener;
pub(crate) use pair::pair;
pub(crate) use stream::{ReadHalf, Stream, WriteHalf};
pub(crate) use target::Target;

use std::io;

/// Who this process runs as: its id, and its token's user SID and groups.
pub(crate) fn own_credentials(
) -> Result<crate::credentials::PeerCredentials, crate::error::TransportError> {
    let identity = security::current_identity().map_err(|err| {
        crate::error::TransportError::io("read the process token", "this process", err)
    })?;
    Ok(crate::credentials::PeerCredentials {
        pid: Some(std::process::id()),
        uid: None,
        gid: None,
        sid: Some(identity.sid),
        administrator: identity.administrator,
    })
}

/// The pipe a plain name maps to.
pub(crate) fn plain_address(plain: &str) -> String {
    format!(r"\\.\pipe\{plain}")
}

/// The directory whose entries are the pipes of the machine, plain names among them.
pub(crate) fn plain_directory() -> std::path::PathBuf {
    std::path::PathBuf::from(r"\\.\pipe\")
}

/// The plain name whose pipe is the entry `entry` of [`plain_directory`]: the entry itself.
pub(crate) fn plain_name_of(entry: &str) -> Option<&str> {
    Some(entry).filter(|name| !name.is_empty())
}

/// A missing pipe is `ERROR_FILE_NOT_FOUND`, which std already maps to `NotFound`; a busy
/// one is retried inside [`Target::connect`], so nothing else means "absent".
pub(crate) fn is_absent(_error: &io::Error) -> bool {
    false
}
