//! A connected pipe end (server or client side) and its halves.
//!
//! Both halves share the pipe through an `Arc` and use tokio's readiness API
//! (`poll_*_ready` + `try_*`), which takes `&self`, so one task can read while another
//! writes. Disconnect errors are folded into end of stream (reads) and
//! [`io::ErrorKind::BrokenPipe`] (writes).

use std::io;
use std::os::windows::io::AsRawHandle;
use std::pin::Pin;
use std::ptr;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::windows::named_pipe::{NamedPipeClient, NamedPipeServer};
use tokio::sync::OwnedSemaphorePermit;
use windows_sys::Win32::Foundation::{
    ERROR_BROKEN_PIPE, ERROR_NO_DATA, ERROR_PIPE_NOT_CONNECTED, HANDLE,
};
use windows_sys::Win32::System::Pipes::{GetNamedPipeClientProcessId, GetNamedPipeServerProcessId};
use windows_sys::Win32::System::IO::CancelIoEx;

use super::security::process_identity;
use crate::credentials::PeerCredentials;
use crate::sys::Connected;

/// How long a closed pipe end keeps trying to deliver a write still in flight (the peer
/// is not reading) before that write is cancelled and the handle closes.
const LINGER: Duration = Duration::from_secs(2);

/// One end of a connected pipe, shared by the halves.
#[derive(Debug)]
struct Pipe {
    /// Taken only by drop.
    io: Option<PipeIo>,
    /// The listener's permit for a server instance; released after the handle is
    /// closed. `pair` and clients have none.
    permit: Option<OwnedSemaphorePermit>,
    /// The process id of the other end, when it could be read.
    peer_pid: Option<u32>,
}

/// The tokio pipe of either side.
#[derive(Debug)]
enum PipeIo {
    Server(NamedPipeServer),
    Client(NamedPipeClient),
}

impl PipeIo {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            PipeIo::Server(p) => p.poll_read_ready(cx),
            PipeIo::Client(p) => p.poll_read_ready(cx),
        }
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            PipeIo::Server(p) => p.poll_write_ready(cx),
            PipeIo::Client(p) => p.poll_write_ready(cx),
        }
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            PipeIo::Server(p) => p.try_read(buf),
            PipeIo::Client(p) => p.try_read(buf),
        }
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            PipeIo::Server(p) => p.try_write(buf),
            PipeIo::Client(p) => p.try_write(buf),
        }
    }

    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            PipeIo::Server(p) => p.try_write_vectored(bufs),
            PipeIo::Client(p) => p.try_write_vectored(bufs),
        }
    }

    fn raw_handle(&self) -> HANDLE {
        match self {
            PipeIo::Server(p) => p.as_raw_handle(),
            PipeIo::Client(p) => p.as_raw_handle(),
        }
    }

    /// Whether mio still has a write of ours in flight: it answers a write with
    /// `WouldBlock` only then (an empty write otherwise completes at once).
    fn write_in_flight(&self) -> bool {
        matches!(self.try_write(&[]), Err(err) if err.kind() == io::ErrorKind::WouldBlock)
    }

    /// Ready once no write is in flight any more (done or failed).
    fn poll_writes_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if ready!(self.poll_write_ready(cx)).is_err() || !self.write_in_flight() {
                return Poll::Ready(());
            }
        }
    }

    /// Cancels every I/O operation in flight on the handle.
    fn cancel_io(&self) {
        // SAFETY: the handle is valid while `self` lives; a null OVERLAPPED pointer
        // means "all operations on this handle".
        unsafe { CancelIoEx(self.raw_handle(), ptr::null()) };
    }
}

impl Drop for Pipe {
    /// mio keeps a pipe's handle open until a write in flight completes, which never
    /// happens while the peer does not read (and the peer may be waiting for us to close).
    /// So a write still in flight gets [`LINGER`] to finish, then is cancelled.
    fn drop(&mut self) {
        let permit = self.permit.take();
        let Some(io) = self.io.take() else { return };
        if !io.write_in_flight() {
            return;
        }
        // The permit goes after the handle.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let done = std::future::poll_fn(|cx| io.poll_writes_done(cx));
                    if tokio::time::timeout(LINGER, done).await.is_err() {
                        tracing::debug!("peer does not read; cancelling the last write");
                        io.cancel_io();
                    }
                    drop(io);
                    drop(permit);
                });
            }
            Err(_) => {
                io.cancel_io();
                drop(io);
                drop(permit);
            }
        }
    }
}

impl Pipe {
    fn io(&self) -> io::Result<&PipeIo> {
        self.io
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let pipe = match self.io() {
            Ok(pipe) => pipe,
            Err(err) => return Poll::Ready(Err(err)),
        };
        loop {
            if let Err(err) = ready!(pipe.poll_read_ready(cx)) {
                return Poll::Ready(eof_if_disconnected(err));
            }
            match pipe.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(eof_if_disconnected(err)),
            }
        }
    }

    fn poll_write_with(
        &self,
        cx: &mut Context<'_>,
        write: impl Fn(&PipeIo) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let pipe = self.io()?;
        loop {
            if let Err(err) = ready!(pipe.poll_write_ready(cx)) {
                return Poll::Ready(Err(broken_if_disconnected(err)));
            }
            match write(pipe) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(broken_if_disconnected(err))),
                Ok(n) => return Poll::Ready(Ok(n)),
            }
        }
    }
}

/// True for the errors a pipe reports once its peer is gone.
pub(crate) fn is_disconnect(err: &io::Error) -> bool {
    err.raw_os_error().is_some_and(|code| {
        [ERROR_BROKEN_PIPE, ERROR_NO_DATA, ERROR_PIPE_NOT_CONNECTED]
            .iter()
            .any(|&c| c as i32 == code)
    })
}

/// A read that finds the peer gone is end of stream.
fn eof_if_disconnected(err: io::Error) -> io::Result<()> {
    if is_disconnect(&err) {
        Ok(())
    } else {
        Err(err)
    }
}

/// A write that finds the peer gone is a broken pipe, whatever code Windows used.
fn broken_if_disconnected(err: io::Error) -> io::Error {
    if is_disconnect(&err) && err.kind() != io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, err)
    } else {
        err
    }
}

/// A connected pipe end.
#[derive(Debug)]
pub(crate) struct Stream {
    pipe: Arc<Pipe>,
}

impl Stream {
    /// Wraps the server end of a connected instance and reads the client's identity.
    pub(crate) fn server(pipe: NamedPipeServer, permit: Option<OwnedSemaphorePermit>) -> Connected {
        let mut pid = 0u32;
        // SAFETY: the handle is a valid pipe handle owned by `pipe` for the whole call;
        // `pid` is a valid out pointer.
        let ok = unsafe { GetNamedPipeClientProcessId(pipe.as_raw_handle(), &mut pid) };
        let credentials = credentials_of(ok != 0, pid, "client");
        (
            Stream {
                pipe: Arc::new(Pipe {
                    io: Some(PipeIo::Server(pipe)),
                    permit,
                    peer_pid: credentials.pid,
                }),
            },
            credentials,
        )
    }

    /// Wraps a client end and reads the server's identity.
    pub(crate) fn client(pipe: NamedPipeClient) -> Connected {
        let mut pid = 0u32;
        // SAFETY: the handle is a valid pipe handle owned by `pipe` for the whole call;
        // `pid` is a valid out pointer.
        let ok = unsafe { GetNamedPipeServerProcessId(pipe.as_raw_handle(), &mut pid) };
        let credentials = credentials_of(ok != 0, pid, "server");
        (
            Stream {
                pipe: Arc::new(Pipe {
                    io: Some(PipeIo::Client(pipe)),
                    permit: None,
                    peer_pid: credentials.pid,
                }),
            },
            credentials,
        )
    }

    pub(crate) fn into_split(self) -> (ReadHalf, WriteHalf) {
        (
            ReadHalf {
                pipe: Arc::clone(&self.pipe),
            },
            WriteHalf { pipe: self.pipe },
        )
    }
}

fn credentials_of(ok: bool, pid: u32, side: &str) -> PeerCredentials {
    if !ok {
        tracing::warn!(error = %io::Error::last_os_error(), side, "cannot read the peer process id");
        return PeerCredentials::default();
    }
    let identity = process_identity(pid);
    PeerCredentials {
        pid: Some(pid),
        uid: None,
        gid: None,
        administrator: identity.as_ref().is_some_and(|id| id.administrator),
        sid: identity.map(|id| id.sid),
    }
}

impl WriteHalf {
    /// The process id of the other end, when it could be read.
    pub(crate) fn peer_pid(&self) -> Option<u32> {
        self.pipe.peer_pid
    }
}

/// The read half of a [`Stream`].
#[derive(Debug)]
pub(crate) struct ReadHalf {
    pipe: Arc<Pipe>,
}

impl ReadHalf {
    /// Not done for pipes yet (`PeekNamedPipe` would do it).
    pub(crate) fn peek_now(&self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// The write half of a [`Stream`].
///
/// Pipes cannot be half-closed: shutting it down does nothing, and the peer reads end of
/// stream once both halves are dropped.
#[derive(Debug)]
pub(crate) struct WriteHalf {
    pipe: Arc<Pipe>,
}

macro_rules! pipe_read {
    ($ty:ty) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.pipe.poll_read(cx, buf)
            }
        }
    };
}

macro_rules! pipe_write {
    ($ty:ty) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.pipe.poll_write_with(cx, |pipe| pipe.try_write(buf))
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.pipe
                    .poll_write_with(cx, |pipe| pipe.try_write_vectored(bufs))
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                // Writes are handed to the system as they are made; a pending one still
                // completes after the handle is closed.
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
    };
}

pipe_read!(Stream);
pipe_write!(Stream);
pipe_read!(ReadHalf);
pipe_write!(WriteHalf);
