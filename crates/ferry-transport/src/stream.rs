//! A connected byte stream and its owned halves.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::credentials::PeerCredentials;
use crate::sys;

/// A connected, full-duplex byte stream to a peer process.
///
/// It is `AsyncRead + AsyncWrite + Send + Unpin + 'static`; [`Stream::into_split`] gives
/// halves that can be moved to different tasks.
#[derive(Debug)]
pub struct Stream {
    inner: sys::Stream,
    credentials: PeerCredentials,
}

impl Stream {
    pub(crate) fn new(inner: sys::Stream, credentials: PeerCredentials) -> Self {
        Self { inner, credentials }
    }

    /// The identity of the peer, taken when the stream was accepted or connected.
    pub fn peer_credentials(&self) -> &PeerCredentials {
        &self.credentials
    }

    /// Splits into an owned read half and an owned write half that work concurrently.
    ///
    /// Dropping or shutting down the [`WriteHalf`] shuts down the write direction, so
    /// the peer reads end of stream while it can still write back.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        let (read, write) = self.inner.into_split();
        (ReadHalf { inner: read }, WriteHalf { inner: write })
    }
}

#[cfg(unix)]
impl Stream {
    /// Wraps a connected standard-library socket, e.g. one end of
    /// [`os::unix::pair_std`](crate::os::unix::pair_std) passed from a parent process.
    ///
    /// Must be called inside a tokio runtime. The socket is switched to non-blocking mode.
    pub fn from_std(
        stream: std::os::unix::net::UnixStream,
    ) -> Result<Stream, crate::TransportError> {
        let (inner, credentials) = sys::Stream::from_std(stream)?;
        Ok(Stream::new(inner, credentials))
    }

    /// Unwraps into a standard-library socket, left in non-blocking mode.
    pub fn into_std(self) -> Result<std::os::unix::net::UnixStream, crate::TransportError> {
        self.inner.into_std()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The reading half of a [`Stream`], from [`Stream::into_split`].
#[derive(Debug)]
pub struct ReadHalf {
    inner: sys::ReadHalf,
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl ReadHalf {
    /// Copies into `buf` bytes that have arrived and are not read yet, without consuming
    /// them and without waiting: `Ok(0)` when none are waiting. It asks the operating
    /// system directly, so it also sees bytes the runtime has not reported yet (a
    /// connection accepted a moment ago). Unix only for now: on Windows it fails with
    /// [`io::ErrorKind::Unsupported`].
    pub fn peek_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.peek_now(buf)
    }
}

#[cfg(unix)]
impl ReadHalf {
    /// From now on, reads take the descriptors that come with their bytes (`recvmsg` with
    /// `SCM_RIGHTS`, close-on-exec); [`ReadHalf::take_handles`] hands them out. Before,
    /// descriptors a peer sends are discarded by the kernel.
    pub fn receive_handles(&mut self) {
        self.inner.receive_handles();
    }

    /// How many bytes this half has read.
    pub fn position(&self) -> u64 {
        self.inner.position()
    }

    /// Takes the descriptors of every read that began at or before byte `position`, oldest
    /// first (see [`crate::handles`]).
    pub fn take_handles(&mut self, position: u64) -> Vec<crate::handles::ReceivedHandles> {
        self.inner.take_handles(position)
    }

    /// Takes the descriptors of every read that ended at or before byte `position`, oldest
    /// first: those a frame that ends at `position` and carries no descriptors must account
    /// for (none of them can belong to a later frame: a frame's descriptors come with a
    /// read that holds its first byte).
    pub fn take_handles_before(&mut self, position: u64) -> Vec<crate::handles::ReceivedHandles> {
        self.inner.take_handles_before(position)
    }
}

#[cfg(unix)]
impl WriteHalf {
    /// Sends the descriptors of `queue` with the bytes they are attached to; position 0 of
    /// the queue is the next byte this half writes (see [`crate::handles`]).
    pub fn send_handles(&mut self, queue: crate::handles::HandleQueue) {
        self.inner.send_handles(queue);
    }
}

#[cfg(windows)]
impl WriteHalf {
    /// The process id of the peer, when it could be read from the pipe.
    pub fn peer_pid(&self) -> Option<u32> {
        self.inner.peer_pid()
    }
}

/// The writing half of a [`Stream`], from [`Stream::into_split`].
#[derive(Debug)]
pub struct WriteHalf {
    inner: sys::WriteHalf,
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
