//! Handing a socket to a child process by inheritance, and taking it on the child's side.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Mutex;

use crate::error::TransportError;

/// Descriptors this process has already taken with [`take_inherited`].
static TAKEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

fn fd_error(fd: RawFd, op: &'static str, source: io::Error) -> TransportError {
    TransportError::io(op, &format!("inherited descriptor {fd}"), source)
}

/// Makes `socket` survive the exec of the next process `command` spawns, at the returned
/// descriptor number. The parent's copy stays open until `command` is dropped.
pub(crate) fn pass_to_child(
    command: &mut Command,
    socket: UnixStream,
) -> Result<RawFd, TransportError> {
    // The child sets up its standard streams (0, 1, 2) before our hook runs; keep the
    // socket clear of them. `try_clone` duplicates to a descriptor >= 3, close-on-exec.
    let socket = if socket.as_raw_fd() <= 2 {
        socket
            .try_clone()
            .map_err(|err| fd_error(socket.as_raw_fd(), "dup", err))?
    } else {
        socket
    };
    let fd = socket.as_raw_fd();
    let hook = move || {
        // Owning the socket here keeps `fd` open in the parent until the command goes.
        let fd = socket.as_raw_fd();
        // SAFETY: fcntl on a descriptor number touches no memory; `fd` is open in the
        // forked child because fork copies the parent's table, where `socket` holds it.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above; clearing FD_CLOEXEC only changes what exec keeps open.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec. It only calls fcntl, which is
    // async-signal-safe, and builds errors from errno without allocating; it takes no lock
    // and touches no state shared with other threads of the parent.
    unsafe {
        command.pre_exec(hook);
    }
    Ok(fd)
}

/// Takes ownership of the Unix socket at descriptor `fd`, inherited from the parent, and
/// marks it close-on-exec again so this process's own children do not inherit it.
pub(crate) fn take_inherited(fd: RawFd) -> Result<UnixStream, TransportError> {
    if fd < 0 {
        return Err(fd_error(
            fd,
            "take",
            io::Error::new(io::ErrorKind::InvalidInput, "negative descriptor"),
        ));
    }
    let mut taken = TAKEN.lock().unwrap_or_else(|poison| poison.into_inner());
    if taken.contains(&fd) {
        return Err(fd_error(
            fd,
            "take",
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "already taken by this process",
            ),
        ));
    }
    // SAFETY: fcntl on a descriptor number touches no memory; an invalid one gives EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(fd_error(fd, "fcntl", io::Error::last_os_error()));
    }
    // SAFETY: an all-zero sockaddr_storage is a valid value of this plain C struct.
    let mut address: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `address` and `len` are live locals; `len` holds the buffer size, so the
    // kernel writes at most that many bytes. A descriptor that is no socket gives ENOTSOCK.
    let rc = unsafe {
        libc::getsockname(
            fd,
            (&mut address as *mut libc::sockaddr_storage).cast::<libc::sockaddr>(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(fd_error(fd, "getsockname", io::Error::last_os_error()));
    }
    if libc::c_int::from(address.ss_family) != libc::AF_UNIX {
        return Err(fd_error(
            fd,
            "take",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a unix socket (address family {})", address.ss_family),
            ),
        ));
    }
    // SAFETY: fcntl on an open descriptor; setting FD_CLOEXEC touches no memory.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(fd_error(fd, "fcntl", io::Error::last_os_error()));
    }
    taken.push(fd);
    // SAFETY: `fd` is open and a Unix socket (checked above). It was named to this process
    // by its parent for this purpose, the contract of the public caller says nothing else
    // in the process owns it, and the TAKEN list makes sure this function hands it out once.
    Ok(unsafe { UnixStream::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::fd::IntoRawFd;

    use super::*;

    #[test]
    fn only_the_child_inherits_the_socket() {
        let (mut mine, theirs) = UnixStream::pair().expect("socketpair");
        let mut command = Command::new("sh");
        let fd = pass_to_child(&mut command, theirs).expect("pass");
        command
            .arg("-c")
            .arg("printf inherited >&\"$FD\"")
            .env("FD", fd.to_string());
        // SAFETY: fcntl on a descriptor number touches no memory.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert!(flags & libc::FD_CLOEXEC != 0, "still close-on-exec here");
        let status = command.status().expect("run sh");
        assert!(status.success(), "{status}");
        drop(command);
        let mut text = String::new();
        mine.read_to_string(&mut text).expect("read");
        assert_eq!(text, "inherited");
    }

    #[test]
    fn taking_checks_the_descriptor_and_takes_it_once() {
        let (a, _b) = UnixStream::pair().expect("socketpair");
        let fd = a.into_raw_fd();
        let socket = take_inherited(fd).expect("a unix socket");
        // SAFETY: fcntl on a descriptor number touches no memory.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert!(flags & libc::FD_CLOEXEC != 0);
        let again = take_inherited(fd).expect_err("second take");
        assert!(again.to_string().contains(&fd.to_string()), "{again}");

        assert!(take_inherited(-1).is_err());
        let file = std::fs::File::open("/dev/null").expect("open");
        drop(socket);
        let err = take_inherited(file.as_raw_fd()).expect_err("not a socket");
        assert!(
            matches!(
                err,
                TransportError::Io {
                    op: "getsockname",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
