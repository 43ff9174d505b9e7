//! The halves of a Unix stream read and write through here: they count bytes, and pass
//! descriptors with the byte they belong to (see [`crate::handles`] for the rules).

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use super::rights::{self, ControlBuffer};
use super::stream::{ReadHalf, WriteHalf};
use crate::handles::{HandleQueue, ReceivedHandles, MAX_HANDLES};

/// The receiving state of a read half.
#[derive(Debug, Default)]
pub(crate) struct Receiving {
    /// Bytes read so far.
    position: u64,
    /// Set once descriptors are taken with reads (each read has its control buffer on
    /// the stack).
    receiving: bool,
    /// Descriptors received and not yet taken, oldest first.
    received: VecDeque<ReceivedHandles>,
    /// How many descriptors `received` holds.
    held: usize,
}

/// The sending state of a write half.
#[derive(Debug, Default)]
pub(crate) struct Sending {
    /// Bytes written so far.
    position: u64,
    /// The queue and the write position its position 0 stands for.
    queue: Option<(HandleQueue, u64)>,
}

impl ReadHalf {
    /// From now on, reads take the descriptors that come with them.
    pub(crate) fn receive_handles(&mut self) {
        self.handles.receiving = true;
    }

    /// Bytes read so far.
    pub(crate) fn position(&self) -> u64 {
        self.handles.position
    }

    /// Takes the descriptors of every read that began at or before `position`.
    pub(crate) fn take_handles(&mut self, position: u64) -> Vec<ReceivedHandles> {
        self.take_front_while(|read| read.start <= position)
    }

    /// Takes the descriptors of every read that ended at or before `position`.
    pub(crate) fn take_handles_before(&mut self, position: u64) -> Vec<ReceivedHandles> {
        self.take_front_while(|read| read.end <= position)
    }

    /// Takes the oldest reads' descriptors for as long as `take` holds for them.
    fn take_front_while(
        &mut self,
        take: impl Fn(&ReceivedHandles) -> bool,
    ) -> Vec<ReceivedHandles> {
        let mut taken = Vec::new();
        while let Some(front) = self.handles.received.front() {
            if !take(front) {
                break;
            }
            if let Some(front) = self.handles.received.pop_front() {
                self.handles.held -= front.fds.len();
                taken.push(front);
            }
        }
        taken
    }

    fn poll_read_counted(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.handles.receiving {
            let before = buf.filled().len();
            ready!(self.poll_read_plain(cx, buf))?;
            self.handles.position += (buf.filled().len() - before) as u64;
            return Poll::Ready(Ok(()));
        }
        loop {
            let socket: &tokio::net::UnixStream = self.io.as_ref();
            ready!(socket.poll_read_ready(cx))?;
            let mut control = ControlBuffer::new();
            // SAFETY: the pointer and length describe the unfilled part of `buf`, which
            // recvmsg only writes to; only the bytes it reports are marked filled below.
            let unfilled = unsafe { buf.unfilled_mut() };
            let (ptr, len) = (unfilled.as_mut_ptr().cast::<u8>(), unfilled.len());
            // A read that ends the socket's bytes is handed over here, and `try_io` is told
            // `WouldBlock` so that it clears the readiness it read under (see
            // `rights::SHORT_READ_DRAINS`): the next read then waits for the next event
            // instead of asking the kernel again only to hear `EAGAIN`.
            let mut drained = None;
            let result = socket.try_io(Interest::READABLE, || {
                // SAFETY: `ptr` points at `len` writable bytes of `buf` (above).
                let received =
                    unsafe { rights::recv_with_fds(socket.as_fd(), ptr, len, &mut control) }?;
                if rights::drains(&received, len) {
                    drained = Some(received);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(received)
            });
            let result = match drained {
                Some(received) => Ok(received),
                None => result,
            };
            match result {
                Ok(received) => {
                    // SAFETY: recvmsg wrote `received.len` bytes at the start of the
                    // unfilled part.
                    unsafe { buf.assume_init(received.len) };
                    buf.advance(received.len);
                    let start = self.handles.position;
                    self.handles.position += received.len as u64;
                    if received.fds.is_empty() && !received.truncated {
                        return Poll::Ready(Ok(()));
                    }
                    self.handles.held += received.fds.len();
                    let held = self.handles.held;
                    self.handles.received.push_back(ReceivedHandles {
                        start,
                        end: self.handles.position,
                        fds: received.fds,
                        truncated: received.truncated,
                    });
                    if held > MAX_HANDLES {
                        // Dropped (closed) with the half; the connection is over.
                        self.handles.received.clear();
                        self.handles.held = 0;
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "the peer sent {held} descriptors not yet claimed by a frame; at most {MAX_HANDLES} may wait"
                            ),
                        )));
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl WriteHalf {
    /// Installs `queue`: its position 0 is the next byte this half writes.
    pub(crate) fn send_handles(&mut self, queue: HandleQueue) {
        self.handles.queue = Some((queue, self.handles.position));
    }

    /// Writes from `buf`, stopping before the next byte that has descriptors attached,
    /// or sending them with it when it is the first byte of `buf`.
    fn poll_write_counted(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let Some((queue, origin)) = self.handles.queue.clone() else {
            let n = ready!(self.poll_write_plain(cx, buf))?;
            self.handles.position += n as u64;
            return Poll::Ready(Ok(n));
        };
        let at = self.handles.position - origin;
        let end = at + buf.len() as u64;
        let (first, second) = {
            let mut pending = queue.lock();
            // Descriptors for bytes already written cannot be sent any more: close them.
            while pending.front().is_some_and(|(position, _)| *position < at) {
                pending.pop_front();
            }
            let mut positions = pending.iter().map(|(position, _)| *position);
            (positions.next(), positions.next())
        };
        let written = match first {
            Some(position) if position == at && !buf.is_empty() => {
                let len = second.map_or(buf.len(), |next| {
                    usize::try_from(next - at).map_or(buf.len(), |n| n.min(buf.len()))
                });
                loop {
                    ready!(self.socket().poll_write_ready(cx))?;
                    let socket = self.socket();
                    let result = {
                        let pending = queue.lock();
                        let fds = pending.front().map(|(_, fds)| &fds[..]).unwrap_or(&[]);
                        socket.try_io(Interest::WRITABLE, || {
                            rights::send_with_fds(socket.as_fd(), &buf[..len], fds)
                        })
                    };
                    match result {
                        Ok(n) => {
                            // Sent with the first byte: ours close, the peer has its own.
                            queue.lock().pop_front();
                            break n;
                        }
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(err) => return Poll::Ready(Err(err)),
                    }
                }
            }
            Some(position) if position > at && position < end => {
                let len = (position - at) as usize;
                ready!(self.poll_write_plain(cx, &buf[..len]))?
            }
            _ => ready!(self.poll_write_plain(cx, buf))?,
        };
        self.handles.position += written as u64;
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored_counted(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let attached = self.handles.queue.as_ref().is_some_and(|(queue, origin)| {
            let at = self.handles.position - origin;
            queue
                .lock()
                .iter()
                .any(|(position, _)| *position < at + total as u64)
        });
        if attached {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
            return self.poll_write_counted(cx, first);
        }
        let n = ready!(self.poll_write_vectored_plain(cx, bufs))?;
        self.handles.position += n as u64;
        Poll::Ready(Ok(n))
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_counted(cx, buf)
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_counted(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_vectored_counted(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_plain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_shutdown_plain(cx)
    }
}
