//! Unix child links: a socketpair whose child end the child inherits.

use ferry_transport::os::unix::{pair_std, pass_to_child, take_inherited};
use ferry_transport::Stream;

use crate::child::PARENT_FD_ENV;
use crate::error::{Error, ErrorKind};

/// Spawns `command` holding one end of a fresh socketpair; returns the other end.
pub(super) fn spawn(
    mut command: tokio::process::Command,
) -> Result<(tokio::process::Child, Stream), Error> {
    let (mine, theirs) = pair_std()
        .map_err(|err| Error::transport(ErrorKind::Connect, "cannot create the child link", err))?;
    let fd = pass_to_child(command.as_std_mut(), theirs)
        .map_err(|err| Error::transport(ErrorKind::Connect, "cannot pass the child link", err))?;
    command.env(PARENT_FD_ENV, fd.to_string());
    let process = command
        .spawn()
        .map_err(|err| Error::io(ErrorKind::Connect, "cannot spawn the child process", err))?;
    // Closes this process's copy of the child's end: the child holds it alone now.
    drop(command);
    let stream = Stream::from_std(mine)
        .map_err(|err| Error::transport(ErrorKind::Connect, "cannot use the child link", err))?;
    Ok((process, stream))
}

/// The child's side: takes the descriptor named in [`PARENT_FD_ENV`].
pub(super) fn connect(value: &str) -> Result<Stream, Error> {
    let fd = value.trim().parse::<std::os::fd::RawFd>().map_err(|_| {
        Error::new(
            ErrorKind::Connect,
            format!("{PARENT_FD_ENV}={value:?} is not a descriptor number"),
        )
    })?;
    let socket = take_inherited(fd)
        .map_err(|err| Error::transport(ErrorKind::Connect, "cannot take the parent link", err))?;
    Stream::from_std(socket)
        .map_err(|err| Error::transport(ErrorKind::Connect, "cannot use the parent link", err))
}
