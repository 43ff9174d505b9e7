//! `sendmsg` / `recvmsg` with `SCM_RIGHTS`: file descriptors passed with the bytes of a
//! Unix stream socket.
//!
//! The kernel attaches the descriptors of one `sendmsg` to the first byte it sends, and
//! hands them over with the read that takes that byte. A `recvmsg` never brings the
//! descriptors of two `sendmsg` calls: macOS and the BSDs stop a read that already holds
//! bytes before a message that carries descriptors; Linux reads on into it and stops
//! after it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::handles::MAX_HANDLES;

/// Bytes of control data for `count` descriptors.
fn space_for(count: usize) -> usize {
    let bytes = (count * std::mem::size_of::<RawFd>()) as libc::c_uint;
    // SAFETY: CMSG_SPACE only computes a size from its argument.
    unsafe { libc::CMSG_SPACE(bytes) as usize }
}

/// Words of a control buffer: room for [`MAX_HANDLES`] descriptors and a `cmsghdr` of up
/// to 64 bytes (16 on Linux, 12 on macOS and the BSDs).
const CONTROL_WORDS: usize = (MAX_HANDLES * std::mem::size_of::<RawFd>() + 64) / 8;

/// A control buffer, aligned for `cmsghdr`, large enough for [`MAX_HANDLES`] descriptors.
/// It lives on the stack of one read: a connection holds none while it waits.
pub(crate) struct ControlBuffer([u64; CONTROL_WORDS]);

impl ControlBuffer {
    pub(crate) fn new() -> Self {
        debug_assert!(space_for(MAX_HANDLES) <= CONTROL_WORDS * 8);
        ControlBuffer([0; CONTROL_WORDS])
    }

    fn len(&self) -> usize {
        // Never more than the kernel needs for MAX_HANDLES descriptors, so it cannot hand
        // over more.
        space_for(MAX_HANDLES).min(CONTROL_WORDS * 8)
    }
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
)))]
const SEND_FLAGS: libc::c_int = 0;

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
))]
const RECV_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
)))]
const RECV_FLAGS: libc::c_int = 0;

/// Whether a read that brings fewer bytes than it asked for, and no descriptors, has
/// emptied the socket.
///
/// On Linux it has: a stream read stops early only when the socket has no more bytes,
/// right after bytes that came with descriptors (so such a read is never taken as the
/// last), or at an out-of-band byte or a change of sender's credentials (neither of
/// which ferry's peers send; tokio's own reads take every short read as the last). The
/// BSDs and macOS stop a read *before* bytes that carry descriptors, so there a short
/// read tells nothing and the next read is made anyway.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SHORT_READ_DRAINS: bool = true;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SHORT_READ_DRAINS: bool = false;

/// Whether `received`, read into a buffer of `asked` bytes, leaves the socket empty (see
/// [`SHORT_READ_DRAINS`]). An end of stream (no bytes) is never taken as drained: the
/// next read must see it again.
pub(crate) fn drains(received: &Received, asked: usize) -> bool {
    SHORT_READ_DRAINS
        && received.len > 0
        && received.len < asked
        && received.fds.is_empty()
        && !received.truncated
}

/// Sends `data` with `fds` attached to its first byte; returns how many bytes went.
/// Non-blocking sockets give `WouldBlock` when nothing could be sent (then no descriptor
/// went either).
pub(crate) fn send_with_fds(
    socket: BorrowedFd<'_>,
    data: &[u8],
    fds: &[OwnedFd],
) -> io::Result<usize> {
    if fds.is_empty() || fds.len() > MAX_HANDLES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} descriptors in one message; 1 to {MAX_HANDLES} can be sent",
                fds.len()
            ),
        ));
    }
    let payload = std::mem::size_of_val(fds) as libc::c_uint;
    let mut control = vec![0u64; space_for(fds.len()).div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty message header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space_for(fds.len()) as _;
    // SAFETY: `msg` points at `control`, which holds CMSG_SPACE(payload) bytes, so the first
    // header and its data fit; the raw descriptors are copied unaligned into the data.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(io::Error::other("no room for control data"));
        }
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as _;
        let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
        for (i, fd) in fds.iter().enumerate() {
            data.add(i).write_unaligned(fd.as_raw_fd());
        }
    }
    // SAFETY: `msg` describes `data` (read-only for sendmsg) and the control buffer, both
    // alive for the call; the descriptors are open (owned by `fds`).
    let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, SEND_FLAGS) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// What one `recvmsg` brought.
#[derive(Debug)]
pub(crate) struct Received {
    /// Bytes read into the buffer.
    pub(crate) len: usize,
    /// Descriptors that came with them, owned (close-on-exec).
    pub(crate) fds: Vec<OwnedFd>,
    /// The control data did not fit: some descriptors were dropped by the kernel.
    pub(crate) truncated: bool,
}

/// Reads into `buf` with `recvmsg`, taking the descriptors that come with the bytes.
///
/// # Safety
/// `buf` must point at `len` writable bytes (they need not be initialized).
pub(crate) unsafe fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: *mut u8,
    len: usize,
    control: &mut ControlBuffer,
) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.cast(),
        iov_len: len,
    };
    // SAFETY: an all-zero msghdr is a valid empty message header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.len() as _;
    // SAFETY: `msg` describes `buf` (writable for `len` bytes, by the caller's contract) and
    // the control buffer, both alive for the call.
    let read = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, RECV_FLAGS) };
    if read < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `msg_controllen` bytes of the control buffer with
    // well-formed headers; CMSG_FIRSTHDR/NXTHDR stay within it, and each SCM_RIGHTS
    // header's data holds (cmsg_len - CMSG_LEN(0)) / size_of::<RawFd>() descriptors that
    // this process now owns, read unaligned and owned at once so none can leak.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let header = libc::CMSG_LEN(0) as usize;
                let bytes = ((*cmsg).cmsg_len as usize).saturating_sub(header);
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if RECV_FLAGS == 0 {
        for fd in &fds {
            set_cloexec(fd)?;
        }
    }
    Ok(Received {
        len: read as usize,
        fds,
        truncated: msg.msg_flags & libc::MSG_CTRUNC != 0,
    })
}

/// Marks `fd` close-on-exec (where `recvmsg` cannot do it as the descriptor arrives).
fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on an open descriptor we own; F_GETFD/F_SETFD touch no memory.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFD);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags | libc::FD_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
