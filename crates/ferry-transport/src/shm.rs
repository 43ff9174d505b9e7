//! Shared-memory segments: a block of bytes one process writes once and another maps.
//!
//! The creator makes a [`SegmentWriter`] of a fixed length, fills it, and [`seal`]s it into
//! a [`Segment`]: from then on nobody can change or resize the bytes, and the creator keeps
//! no writable view. The segment's OS handle ([`SegmentHandle`]) is what travels to the
//! other process (on a ferry connection, with the frame that names it); the receiver opens it
//! with [`receive`], which checks it before a single byte is read.
//!
//! | platform | created with | sealed by | the receiver |
//! |---|---|---|---|
//! | Linux, Android, FreeBSD | `memfd_create(MFD_CLOEXEC \| MFD_ALLOW_SEALING)` | `F_SEAL_WRITE \| F_SEAL_SHRINK \| F_SEAL_GROW \| F_SEAL_SEAL` | maps it read-only if sealed against writing and shrinking, copies it otherwise |
//! | macOS and other Unix | a file of a random name in the temporary directory, unlinked at once | handing out only a read-only descriptor (opened before the unlink) | copies it |
//! | Windows | `CreateFileMappingW` on the paging file | keeping only a `FILE_MAP_READ` handle | maps it read-only |
//!
//! **Why a receiver checks.** A mapping of a file that shrinks under it faults
//! (`SIGBUS`) on the first read past the new end; a hostile peer could send a descriptor it
//! truncates later. [`receive`] therefore reads the real size first and refuses a segment
//! smaller than claimed ([`SegmentError::Truncated`]); it maps only a segment sealed against
//! shrinking and writing, whose size and bytes can no longer change. Any other descriptor
//! (unsealed, or from a platform without seals, or not shared memory at all) is **copied**
//! into ordinary memory with `pread`, which returns short instead of faulting; a short read
//! is `Truncated` too. A copy costs the time and the heap of the bytes; sealed segments,
//! which every ferry sender on Linux and FreeBSD makes, never take that path.
//!
//! On macOS, whose shared-memory objects support neither seals nor `read(2)`, the sender
//! uses an unlinked temporary file instead of `shm_open`, so that the receiver's copy works.
//!
//! On Windows a section backed by the paging file cannot change its size, so a view never
//! faults on a short section: [`receive`] maps the claimed length and checks with
//! `VirtualQuery` that the whole view is committed memory. A receiver cannot check that the
//! sender gave up write access (a ferry sender keeps only a read-only handle after
//! [`seal`]): a hostile sender may change the bytes it sent, never make the receiver fault.
//!
//! [`seal`]: SegmentWriter::seal

use std::fmt;
use std::io;
use std::ops::Deref;

use crate::sys::shm as sys;

/// The OS handle that carries a segment between processes: an [`OwnedFd`] on Unix, an
/// `OwnedHandle` (a section) on Windows.
///
/// [`OwnedFd`]: std::os::fd::OwnedFd
#[cfg(unix)]
pub type SegmentHandle = std::os::fd::OwnedFd;
/// The OS handle that carries a segment between processes: an `OwnedFd` on Unix, an
/// [`OwnedHandle`](std::os::windows::io::OwnedHandle) (a section) on Windows.
#[cfg(windows)]
pub type SegmentHandle = std::os::windows::io::OwnedHandle;

/// What can go wrong creating, sealing, mapping or receiving a segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// The segment holds fewer bytes than its sender claimed.
    #[error("shared segment of {actual} bytes is shorter than the {claimed} bytes claimed")]
    Truncated {
        /// The length the sender announced.
        claimed: u64,
        /// The bytes actually there.
        actual: u64,
    },
    /// The length does not fit this process's address space.
    #[error("shared segment of {len} bytes does not fit in memory here")]
    TooLarge {
        /// The length asked for.
        len: u64,
    },
    /// The operating system refused an operation.
    #[error("shared segment: {operation} failed")]
    Os {
        /// What was attempted (`memfd_create`, `mmap`, `MapViewOfFile`, ...).
        operation: &'static str,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
}

impl SegmentError {
    pub(crate) fn os(operation: &'static str, source: io::Error) -> Self {
        SegmentError::Os { operation, source }
    }
}

/// A new segment of a fixed length, writable by its creator only, until [`seal`](Self::seal).
pub struct SegmentWriter {
    inner: sys::Writer,
}

impl SegmentWriter {
    /// Creates a zero-filled segment of `len` bytes and maps it writable.
    pub fn create(len: usize) -> Result<Self, SegmentError> {
        Ok(SegmentWriter {
            inner: sys::Writer::create(len)?,
        })
    }

    /// The segment's length in bytes.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the segment is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, to fill.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.inner.as_mut_slice()
    }

    /// Unmaps the writable view and seals the segment: its bytes and size are final.
    pub fn seal(self) -> Result<Segment, SegmentError> {
        let len = self.inner.len();
        let handle = self.inner.seal()?;
        Ok(Segment { handle, len })
    }
}

impl fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// A sealed segment made by this process: its handle and its length.
pub struct Segment {
    handle: SegmentHandle,
    len: usize,
}

impl Segment {
    /// The segment's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the segment is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maps the segment read-only in this process.
    ///
    /// Meant for the creator's own segment, whose size cannot change; a handle from another
    /// process goes through [`receive`] instead.
    pub fn map(&self) -> Result<SegmentView, SegmentError> {
        Ok(SegmentView {
            inner: sys::View::map(&self.handle, self.len)?,
        })
    }

    /// The handle, borrowed (to duplicate it for a peer).
    pub fn handle(&self) -> &SegmentHandle {
        &self.handle
    }

    /// A second handle to the same segment.
    pub fn try_clone(&self) -> Result<Segment, SegmentError> {
        let handle = self
            .handle
            .try_clone()
            .map_err(|e| SegmentError::os("duplicate handle", e))?;
        Ok(Segment {
            handle,
            len: self.len,
        })
    }

    /// The handle, to send; the receiver needs [`len`](Self::len) too.
    pub fn into_handle(self) -> SegmentHandle {
        self.handle
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("handle", &self.handle)
            .field("len", &self.len)
            .finish()
    }
}

/// A read-only mapping of a segment; unmapped when dropped.
pub struct SegmentView {
    inner: sys::View,
}

impl SegmentView {
    /// The mapped bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.inner.as_slice()
    }
}

impl Deref for SegmentView {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for SegmentView {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for SegmentView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentView")
            .field("address", &self.inner.as_slice().as_ptr())
            .field("len", &self.inner.as_slice().len())
            .finish()
    }
}

/// The bytes of a segment received from another process.
#[derive(Debug)]
#[non_exhaustive]
pub enum Received {
    /// A sealed segment, mapped read-only; the handle is kept for sending it on.
    Mapped {
        /// The mapping of the claimed length.
        view: SegmentView,
        /// The segment, to pass on to a third process without a copy.
        segment: Segment,
    },
    /// A segment that could still change (unsealed, or a platform without seals), copied
    /// into ordinary memory. Its handle is closed.
    Copied(Vec<u8>),
}

/// Opens a segment handle from another process that claims to hold `claimed_len` bytes.
///
/// A segment shorter than claimed is [`SegmentError::Truncated`]; nothing is read past its
/// real end and nothing can fault later (see the [module docs](self) for the checks and when
/// the bytes are copied instead of mapped). The caller bounds `claimed_len` first: a copy
/// allocates it.
pub fn receive(handle: SegmentHandle, claimed_len: u64) -> Result<Received, SegmentError> {
    let len =
        usize::try_from(claimed_len).map_err(|_| SegmentError::TooLarge { len: claimed_len })?;
    if len == 0 {
        return Ok(Received::Copied(Vec::new()));
    }
    match sys::receive(&handle, len)? {
        sys::Opened::Mapped(view) => Ok(Received::Mapped {
            view: SegmentView { inner: view },
            segment: Segment { handle, len },
        }),
        sys::Opened::Copied(bytes) => Ok(Received::Copied(bytes)),
    }
}

#[cfg(test)]
mod tests;
