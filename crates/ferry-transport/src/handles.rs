//! Operating-system handles passed to the peer process.
//!
//! On Windows, a handle is duplicated into the peer's process (`PeerProcess`) and its
//! value there travels in the bytes; the receiver takes ownership with `adopt` (both exist
//! only on Windows).
//!
//! On Unix, file descriptors travel as `SCM_RIGHTS` control data. A stream knows bytes,
//! not frames, so handles are tied to byte positions (counted from the first byte the half
//! read or wrote):
//!
//! - **Sending**: [`HandleQueue::attach`] ties descriptors to the byte at a position
//!   (counted from the moment the queue was installed with
//!   [`WriteHalf::send_handles`](crate::WriteHalf::send_handles)). The write half sends
//!   them with that byte: a write that reaches it stops just before it, and the next one
//!   starts with it, in a `sendmsg` that carries the descriptors.
//! - **Receiving**: once [`ReadHalf::receive_handles`](crate::ReadHalf::receive_handles)
//!   is on, each read takes the descriptors that came with it; they are kept as
//!   [`ReceivedHandles`] with the byte range of that read until
//!   [`ReadHalf::take_handles`](crate::ReadHalf::take_handles) hands them out. A read
//!   that brings descriptors holds the byte they were sent with, and holds no other
//!   byte sent with descriptors; but where that byte lies in the read depends on the
//!   kernel: macOS and the BSDs stop a read before it (so it is the read's first byte),
//!   Linux runs on into it and stops after the bytes sent with it (so bytes sent before
//!   it may come first). A frame that carries descriptors claims those of the read that
//!   holds its first byte ([`ReadHalf::take_handles`](crate::ReadHalf::take_handles));
//!   one that carries none may only check that no read which ended at or before its last
//!   byte brought descriptors no frame claimed
//!   ([`ReadHalf::take_handles_before`](crate::ReadHalf::take_handles_before)).
//!
//! At most [`MAX_HANDLES`] descriptors go with one byte, and at most that many wait in a
//! read half to be taken: more is an error of the read (a peer cannot make this process
//! hold descriptors without bound).

#[cfg(unix)]
use std::collections::VecDeque;
#[cfg(unix)]
use std::os::fd::OwnedFd;
#[cfg(unix)]
use std::sync::{Arc, Mutex, MutexGuard};

/// The most descriptors sent with one byte, and the most a read half holds untaken.
pub const MAX_HANDLES: usize = 64;

#[cfg(unix)]
/// Groups of descriptors, each with the position of the byte it goes with, in order.
pub(crate) type Pending = VecDeque<(u64, Vec<OwnedFd>)>;

/// Descriptors waiting to be sent, each group with the byte position it goes with.
///
/// Cloning gives another reference to the same queue.
#[cfg(unix)]
#[derive(Clone, Debug, Default)]
pub struct HandleQueue {
    inner: Arc<Mutex<Pending>>,
}

#[cfg(unix)]
impl HandleQueue {
    /// An empty queue.
    pub fn new() -> Self {
        HandleQueue::default()
    }

    /// Ties `fds` to the byte at `position`. Positions must be attached in increasing
    /// order, each at most once; the descriptors are closed here once sent (the peer has
    /// its own), or when the queue is dropped.
    pub fn attach(&self, position: u64, fds: Vec<OwnedFd>) {
        if !fds.is_empty() {
            self.lock().push_back((position, fds));
        }
    }

    /// How many groups wait to be sent.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Pending> {
        // Only plain pushes and pops happen under this lock: a poisoned queue is whole.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(unix)]
/// Descriptors that came with one read, and which bytes that read brought.
#[derive(Debug)]
pub struct ReceivedHandles {
    /// Position of the read's first byte.
    pub start: u64,
    /// Position just past the read's last byte.
    pub end: u64,
    /// The descriptors, owned and close-on-exec.
    pub fds: Vec<OwnedFd>,
    /// The sender's control data did not fit: descriptors were lost (the kernel closed them).
    pub truncated: bool,
}

/// A peer process that this process duplicates handles into (Windows).
#[cfg(windows)]
#[derive(Debug)]
pub struct PeerProcess {
    process: std::os::windows::io::OwnedHandle,
}

#[cfg(windows)]
impl PeerProcess {
    /// Opens process `pid` with the right to duplicate handles into it
    /// (`PROCESS_DUP_HANDLE`).
    pub fn open(pid: u32) -> std::io::Result<PeerProcess> {
        Ok(PeerProcess {
            process: crate::sys::open_process(pid)?,
        })
    }

    /// Duplicates `handle` into the peer with the same access rights, not inheritable;
    /// returns its value there, which the peer owns from now on.
    pub fn duplicate(
        &self,
        handle: std::os::windows::io::BorrowedHandle<'_>,
    ) -> std::io::Result<u64> {
        crate::sys::duplicate_into(&self.process, handle)
    }

    /// Closes the handle `value` in the peer: one duplicated into it that it will never
    /// learn of (its frame was not sent).
    pub fn close(&self, value: u64) {
        crate::sys::close_in(&self.process, value);
    }
}

/// Takes ownership of the handle `value` of this process, duplicated into it by a peer
/// (Windows). Fails for values that cannot be handles (0, `INVALID_HANDLE_VALUE`); any
/// other value is trusted to be what the peer says it is.
#[cfg(windows)]
pub fn adopt(value: u64) -> std::io::Result<std::os::windows::io::OwnedHandle> {
    crate::sys::adopt(value)
}
