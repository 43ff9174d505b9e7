//! A connected Unix socket.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::credentials::PeerCredentials;
use crate::error::TransportError;
use crate::sys::Connected;

/// A connected tokio `UnixStream`.
#[derive(Debug)]
pub(crate) struct Stream {
    io: UnixStream,
}

/// Reads the peer's identity: `SO_PEERCRED` on Linux, `getpeereid` and `LOCAL_PEERPID`
/// on macOS and the BSDs (done by tokio).
fn credentials(stream: &UnixStream) -> PeerCredentials {
    match stream.peer_cred() {
        Ok(cred) => PeerCredentials {
            pid: cred.pid().and_then(|pid| u32::try_from(pid).ok()),
            uid: Some(cred.uid()),
            gid: Some(cred.gid()),
            sid: None,
            administrator: false,
        },
        Err(err) => {
            tracing::warn!(error = %err, "cannot read peer credentials");
            PeerCredentials::default()
        }
    }
}

impl Stream {
    /// Wraps a connected stream and reads its peer credentials.
    pub(crate) fn with_credentials(io: UnixStream) -> (Stream, PeerCredentials) {
        let cred = credentials(&io);
        (Stream { io }, cred)
    }

    pub(crate) fn from_std(
        stream: std::os::unix::net::UnixStream,
    ) -> Result<(Stream, PeerCredentials), TransportError> {
        let address = "socket from std";
        stream
            .set_nonblocking(true)
            .map_err(|err| TransportError::io("set_nonblocking", address, err))?;
        let io = UnixStream::from_std(stream)
            .map_err(|err| TransportError::io("register", address, err))?;
        Ok(Stream::with_credentials(io))
    }

    pub(crate) fn into_std(self) -> Result<std::os::unix::net::UnixStream, TransportError> {
        self.io
            .into_std()
            .map_err(|err| TransportError::io("deregister", "stream", err))
    }

    pub(crate) fn into_split(self) -> (ReadHalf, WriteHalf) {
        let (read, write) = self.io.into_split();
        (ReadHalf::new(read), WriteHalf::new(write))
    }
}

/// Two connected sockets from `socketpair`, as tokio streams.
pub(crate) fn pair() -> Result<(Connected, Connected), TransportError> {
    let (a, b) = UnixStream::pair().map_err(|err| TransportError::io("socketpair", "pair", err))?;
    Ok((Stream::with_credentials(a), Stream::with_credentials(b)))
}

/// Two connected sockets from `socketpair`, as blocking standard-library streams.
pub(crate) fn pair_std() -> Result<
    (
        std::os::unix::net::UnixStream,
        std::os::unix::net::UnixStream,
    ),
    TransportError,
> {
    std::os::unix::net::UnixStream::pair()
        .map_err(|err| TransportError::io("socketpair", "pair", err))
}

/// The read half of a [`Stream`]; it counts the bytes it reads and, once asked to, keeps
/// the descriptors that come with them (see [`crate::handles`]).
#[derive(Debug)]
pub(crate) struct ReadHalf {
    pub(super) io: OwnedReadHalf,
    pub(super) handles: super::passing::Receiving,
}

/// The write half of a [`Stream`]; it counts the bytes it writes and sends queued
/// descriptors with the byte they go with (see [`crate::handles`]).
#[derive(Debug)]
pub(crate) struct WriteHalf {
    io: OwnedWriteHalf,
    pub(super) handles: super::passing::Sending,
}

impl ReadHalf {
    fn new(io: OwnedReadHalf) -> Self {
        ReadHalf {
            io,
            handles: Default::default(),
        }
    }
}

impl WriteHalf {
    fn new(io: OwnedWriteHalf) -> Self {
        WriteHalf {
            io,
            handles: Default::default(),
        }
    }

    pub(super) fn socket(&self) -> &UnixStream {
        self.io.as_ref()
    }

    pub(super) fn poll_write_plain(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    pub(super) fn poll_flush_plain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    pub(super) fn poll_shutdown_plain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    pub(super) fn poll_write_vectored_plain(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

impl ReadHalf {
    /// Bytes waiting in the socket, copied without consuming them; `Ok(0)` when none.
    pub(crate) fn peek_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let socket: &UnixStream = self.io.as_ref();
        // SAFETY: `buf` is writable for `buf.len()` bytes and outlives the call; MSG_PEEK
        // leaves the bytes in the socket and MSG_DONTWAIT keeps the call from blocking.
        let peeked = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if peeked < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                return Ok(0);
            }
            return Err(err);
        }
        Ok(peeked as usize)
    }

    pub(super) fn poll_read_plain(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

macro_rules! forward_read {
    ($ty:ty) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
            }
        }
    };
}

macro_rules! forward_write {
    ($ty:ty) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.io.is_write_vectored()
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.get_mut().io).poll_flush(cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
            }
        }
    };
}

forward_read!(Stream);
forward_write!(Stream);
