//! [`Outbox`]: the bounded queue of encoded frames waiting to be written to one connection.
//!
//! Producers (calls on a client, handlers on a server) encode their frames straight into the
//! outbox's buffer under a short lock. Whoever holds the connection's write half writes:
//!
//! - When no write is under way, the producer that queued a frame writes it itself, at once,
//!   with non-blocking writes: a lone call costs one system call and no task switch.
//! - Otherwise (or when the socket is full) the frame waits in the buffer for the writer
//!   task, which swaps the buffer out and writes everything queued with one `write_all`, so
//!   frames produced together leave in one system call.
//! - Frames queued while the connection's read loop is being polled are written by that loop
//!   when its poll ends ([`Outbox::reading`]): the writer runs in the same task, so waking it
//!   would only poll the task again (see [`signals`]).
//!
//! The queue is bounded in bytes: past the limit, producers wait for the writer to drain it,
//! which is what stalls a peer that never reads. Every byte queued is also counted in the
//! connection's [`Budget`] until it is written; while the budget is full, a producer whose
//! frame would join others in the queue waits too (one frame into an empty queue always
//! goes, so a connection can always make progress). Buffers larger than [`KEPT_CAPACITY`]
//! are freed once written, so an idle connection holds no large write buffer.
//!
//! A large payload held in a `Bytes` is not copied into the buffer: frames queued with
//! [`Outbox::push_spliced`] leave it out ([`Splice`], see `ferry_codec::encode_spliced`), and
//! it is written by reference between the buffer's bytes with vectored writes ([`Parts`]).
//! It counts towards the bound, the budget and stream positions like any queued byte.

mod parts;
mod signals;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use ferry_codec::{Frame, Splice};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::budget::Budget;
use parts::Parts;
use signals::Signals;

/// Where the first frames go before the queue grows. Small: the buffer stays with the
/// connection once written (up to [`KEPT_CAPACITY`]), and most connections only ever
/// queue small frames; a larger frame grows it.
const INITIAL_CAPACITY: usize = 1024;

/// The largest write buffer kept for reuse once written; larger ones are freed.
pub(crate) const KEPT_CAPACITY: usize = 16 * 1024;

/// Byte strings of this size or more in frames queued with [`Outbox::push_spliced`] are
/// written by reference instead of copied into the buffer.
pub(crate) const SPLICE_MIN: usize = 16 * 1024;

/// The connection's write half, type-erased so the outbox needs no type parameter.
type Io = Box<dyn AsyncWrite + Send + Unpin>;

#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer and the producers waiting for space.
    signals: Signals,
    /// Producers wait while the queue holds this many bytes or more.
    limit: usize,
    /// Where the queued bytes are counted.
    budget: Arc<Budget>,
}

#[derive(Debug)]
struct State {
    buf: BytesMut,
    /// Payloads held by reference between the bytes of `buf` (offsets into it).
    splices: Vec<Splice>,
    /// The bytes of `splices`.
    spliced: usize,
    closed: bool,
    /// Close once what is queued has been written.
    closing: bool,
    /// Who may write right now.
    io: Writer,
    /// Bytes ever queued: the position, in the connection's frame stream, of the end of
    /// `buf` (handles are tied to positions, see `crate::handle`).
    appended: u64,
}

/// The write half and who holds it.
enum Writer {
    /// The writer task has not started yet.
    Unattached,
    /// Nobody writes: the first to take it does.
    Idle(Io),
    /// Taken by the writer task or by a producer writing directly.
    Busy,
    /// The writer task ended; whoever holds it drops it (which closes our side).
    Gone,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Writer::Unattached => "Unattached",
            Writer::Idle(_) => "Idle",
            Writer::Busy => "Busy",
            Writer::Gone => "Gone",
        })
    }
}

impl State {
    /// Every byte queued.
    fn queued(&self) -> usize {
        self.buf.len() + self.spliced
    }

    /// Takes everything queued (keeping `spare` as the buffer for what comes next).
    fn take_parts(&mut self, spare: BytesMut) -> Parts {
        let buf = std::mem::replace(&mut self.buf, spare);
        let spliced = std::mem::take(&mut self.spliced);
        Parts::new(buf, std::mem::take(&mut self.splices), spliced)
    }

    /// Takes the write half if nobody holds it.
    fn take_io(&mut self) -> Option<Io> {
        match std::mem::replace(&mut self.io, Writer::Busy) {
            Writer::Idle(io) => Some(io),
            other => {
                self.io = other;
                None
            }
        }
    }

    /// Gives the write half back (or drops it when the writer task is gone).
    fn put_io(&mut self, io: Io) {
        if matches!(self.io, Writer::Busy) {
            self.io = Writer::Idle(io);
        }
    }
}

/// Why a frame could not be queued.
#[derive(Debug)]
pub(crate) enum QueueError<E> {
    /// The connection is closed.
    Closed,
    /// The encoder refused the frame (nothing was queued).
    Encode(E),
}

impl Outbox {
    pub(crate) fn new(limit: usize, budget: Arc<Budget>) -> Self {
        Outbox {
            state: Mutex::new(State {
                // Allocated on first use: an idle connection holds no write buffer.
                buf: BytesMut::new(),
                splices: Vec::new(),
                spliced: 0,
                closed: false,
                closing: false,
                io: Writer::Unattached,
                appended: 0,
            }),
            signals: Signals::default(),
            limit,
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock can only come from an encoder; the buffer is
        // still a valid byte buffer, so go on with it.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Queues one frame written by `encode`, waiting while the queue is full; the writer
    /// task (or the next [`Outbox::flush_now`]) writes it.
    ///
    /// `encode` must either append a whole frame or leave the buffer as it found it and
    /// return an error. Cancel-safe: a frame is either queued whole or not at all.
    pub(crate) async fn push<E>(
        &self,
        mut encode: impl FnMut(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), QueueError<E>> {
        self.push_inner(|buf, _, _| encode(buf), false).await
    }

    /// Like [`Outbox::push`], also telling `encode` the stream position where its frame
    /// begins. With `direct`, when no write is under way the frame (with anything else
    /// queued) is written at once by the caller (see [`Outbox::push_spliced`]).
    #[cfg(feature = "tower")]
    pub(crate) async fn push_at<E>(
        &self,
        mut encode: impl FnMut(&mut BytesMut, u64) -> Result<(), E>,
        direct: bool,
    ) -> Result<(), QueueError<E>> {
        self.push_inner(|buf, _, at| encode(buf, at), direct).await
    }

    /// Like [`Outbox::push`], also telling `encode` the stream position where its frame
    /// begins, and letting it leave large payloads out of the buffer: it appends them to the
    /// given list (see `ferry_codec::encode_spliced`, with [`SPLICE_MIN`]), and they are
    /// written by reference. With `direct`, when no write is under way the frame (with
    /// anything else queued) is written at once by the caller: for a frame that is unlikely
    /// to have company soon, such as a lone call's request.
    pub(crate) async fn push_spliced<E>(
        &self,
        encode: impl FnMut(&mut BytesMut, &mut Vec<Splice>, u64) -> Result<(), E>,
        direct: bool,
    ) -> Result<(), QueueError<E>> {
        self.push_inner(encode, direct).await
    }

    /// Resolves once the queue holds less than its limit (or the outbox is closed), without
    /// queuing anything: a producer that is about to make frames it cannot hold back, such as
    /// a server's read loop whose requests may be answered by small error frames at once,
    /// waits here first so those frames stay within the bound too. Cancel-safe.
    pub(crate) async fn room(&self) {
        self.signals.wait_drained(|| self.has_room()).await;
    }

    fn has_room(&self) -> bool {
        let state = self.lock();
        state.closed || state.closing || state.queued() < self.limit
    }

    /// Writes what is queued now, from the caller, unless a write is under way: for a
    /// producer that has queued a batch of frames and expects no more for a while.
    pub(crate) fn flush_now(&self) {
        let mut state = self.lock();
        if state.queued() == 0 || state.closed {
            return;
        }
        if let Some(io) = state.take_io() {
            let batch = state.take_parts(BytesMut::new());
            drop(state);
            self.write_directly(io, batch);
        }
    }

    async fn push_inner<E>(
        &self,
        mut encode: impl FnMut(&mut BytesMut, &mut Vec<Splice>, u64) -> Result<(), E>,
        direct: bool,
    ) -> Result<(), QueueError<E>> {
        while !self.try_push(&mut encode, direct)? {
            self.signals.wait_drained(|| self.can_push()).await;
        }
        Ok(())
    }

    /// Whether a frame may be queued now (or the outbox is closed, which the producer is
    /// told at once).
    fn can_push(&self) -> bool {
        let state = self.lock();
        let queued = state.queued();
        state.closed
            || state.closing
            || (queued < self.limit && (queued == 0 || !self.budget.over()))
    }

    /// Queues the frame `encode` writes if there is space (see [`Outbox::push_spliced`]):
    /// `Ok(false)` when there is none.
    fn try_push<E>(
        &self,
        encode: &mut impl FnMut(&mut BytesMut, &mut Vec<Splice>, u64) -> Result<(), E>,
        direct: bool,
    ) -> Result<bool, QueueError<E>> {
        let mut state = self.lock();
        if state.closed || state.closing {
            return Err(QueueError::Closed);
        }
        let queued = state.queued();
        let was_empty = queued == 0;
        if queued >= self.limit || (!was_empty && self.budget.over()) {
            return Ok(false);
        }
        if state.buf.capacity() == 0 {
            state.buf.reserve(INITIAL_CAPACITY);
        }
        let before = state.buf.len();
        let splices_before = state.splices.len();
        let at = state.appended;
        let State { buf, splices, .. } = &mut *state;
        encode(buf, splices, at).map_err(QueueError::Encode)?;
        let spliced: usize = state.splices[splices_before..]
            .iter()
            .map(|splice| splice.bytes.len())
            .sum();
        state.spliced += spliced;
        let added = state.buf.len() - before + spliced;
        state.appended += added as u64;
        self.budget.charge(added);
        let io = if direct { state.take_io() } else { None };
        if let Some(io) = io {
            let batch = state.take_parts(BytesMut::new());
            drop(state);
            self.write_directly(io, batch);
        } else {
            drop(state);
            if was_empty {
                self.signals.frames_queued();
            }
        }
        Ok(true)
    }

    /// Writes `batch` with non-blocking writes; what the socket does not take now goes back
    /// to the front of the queue for the writer task.
    fn write_directly(&self, mut io: Io, mut batch: Parts) {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let queued = batch.len();
        if batch.is_contiguous() {
            while !batch.buf.is_empty() {
                // A pending write registered the no-op waker; the writer task's next write
                // replaces it with its own.
                match Pin::new(&mut io).poll_write(&mut cx, &batch.buf) {
                    Poll::Ready(Ok(n)) if n > 0 => batch.buf.advance(n),
                    // Full socket, a failed write or a zero-length write: the writer task
                    // retries and reports the error.
                    _ => break,
                }
            }
        } else {
            while !batch.is_empty() && batch.poll_write_once(&mut io, &mut cx).is_some() {}
        }
        let wrote = queued - batch.len();
        self.budget.release(wrote);
        crate::telemetry::bytes_sent(wrote);
        let mut state = self.lock();
        state.put_io(io);
        let wake_writer = if batch.is_empty() {
            if state.buf.capacity() == 0 && batch.buf.capacity() <= KEPT_CAPACITY {
                // Keep the allocation for the next frame.
                batch.buf.clear();
                state.buf = batch.buf;
            }
            state.queued() > 0 || state.closing || state.closed
        } else {
            // What is left goes back to the front of the queue.
            let later = std::mem::take(&mut state.buf);
            let later_splices = std::mem::take(&mut state.splices);
            let (buf, splices, spliced) = batch.followed_by(&later, later_splices, state.spliced);
            state.buf = buf;
            state.splices = splices;
            state.spliced = spliced;
            true
        };
        drop(state);
        if wrote > 0 {
            // Producers waiting for room (or for the queue to empty) see it now.
            self.signals.drained();
        }
        if wake_writer {
            self.signals.wake_writer();
        }
    }

    /// Queues a small control frame (cancel, credit, error) without waiting, even past the
    /// limit. Returns `false` when the connection is closed.
    pub(crate) fn push_frame_now(&self, frame: &Frame) -> bool {
        self.push_now(|buf| {
            frame.encode(buf);
            Ok::<(), std::convert::Infallible>(())
        })
        .is_ok()
    }

    /// Queues a frame without waiting, even past the limit: for small control frames
    /// (cancel, errors about the connection) that must not block.
    pub(crate) fn push_now<E>(
        &self,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), QueueError<E>> {
        let mut state = self.lock();
        if state.closed || state.closing {
            return Err(QueueError::Closed);
        }
        let was_empty = state.queued() == 0;
        let before = state.buf.len();
        encode(&mut state.buf).map_err(QueueError::Encode)?;
        state.appended += (state.buf.len() - before) as u64;
        self.budget.charge(state.buf.len() - before);
        drop(state);
        if was_empty {
            self.signals.frames_queued();
        }
        Ok(())
    }

    /// Stops accepting frames; the writer writes what is queued, then ends.
    pub(crate) fn close_after_flush(&self) {
        self.lock().closing = true;
        self.signals.wake_writer();
        self.signals.wake_producers();
    }

    /// Stops at once: queued frames are dropped and producers get `Closed`.
    pub(crate) fn close(&self) {
        {
            let mut state = self.lock();
            state.closed = true;
            self.budget.release(state.queued());
            state.buf = BytesMut::new();
            state.splices = Vec::new();
            state.spliced = 0;
        }
        self.signals.wake_writer();
        self.signals.wake_producers();
    }

    /// Marks the writer task gone and drops the write half unless a producer holds it (that
    /// producer drops it when done).
    fn detach(&self) {
        let io = std::mem::replace(&mut self.lock().io, Writer::Gone);
        drop(io);
    }

    /// Runs `read_loop`, the connection's read loop, so that frames queued during each of
    /// its polls (replies of handlers that finished at once, answers to control frames)
    /// are written when that poll ends, by this task, instead of waking the writer: the
    /// writer runs in the same task, and waking it would poll the task a second time.
    ///
    /// Takes the loop pinned where it lives, so that the loop's (large) state is not held
    /// twice in the connection's task.
    pub(crate) fn reading<'a, F: Future + ?Sized>(
        &'a self,
        mut read_loop: Pin<&'a mut F>,
    ) -> impl Future<Output = F::Output> + 'a {
        std::future::poll_fn(move |cx| {
            self.signals.read_poll_begins();
            let poll = read_loop.as_mut().poll(cx);
            if self.signals.read_poll_ended() {
                self.flush_now();
            }
            poll
        })
    }

    /// Writes queued frames to `io` until the outbox closes or a write fails.
    ///
    /// Returns `Ok(())` after a close (with everything queued before a
    /// [`Outbox::close_after_flush`] written and flushed), or the write error.
    pub(crate) async fn run_writer<W>(&self, io: W) -> std::io::Result<()>
    where
        W: AsyncWrite + Send + Unpin + 'static,
    {
        self.lock().io = Writer::Idle(Box::new(io));
        let result = self.write_loop().await;
        self.detach();
        result
    }

    async fn write_loop(&self) -> std::io::Result<()> {
        let mut spare = BytesMut::new();
        loop {
            let queued = self.signals.writer_wakeup();
            tokio::pin!(queued);
            queued.as_mut().enable();
            let batch = {
                let mut state = self.lock();
                if state.closed {
                    return Ok(());
                }
                if matches!(state.io, Writer::Busy) {
                    // A producer writes directly; it wakes us when it is done.
                    Batch::Wait
                } else if state.queued() == 0 {
                    if state.closing {
                        match state.take_io() {
                            Some(io) => Batch::Finish(io),
                            None => return Ok(()),
                        }
                    } else {
                        Batch::Wait
                    }
                } else {
                    match state.take_io() {
                        Some(io) => Batch::Write(io, state.take_parts(std::mem::take(&mut spare))),
                        None => return Ok(()),
                    }
                }
            };
            match batch {
                Batch::Finish(mut io) => {
                    let _ = io.shutdown().await;
                    return Ok(());
                }
                Batch::Wait => queued.await,
                Batch::Write(mut io, mut batch) => {
                    let queued = batch.len();
                    let result = if batch.is_contiguous() {
                        io.write_all(&batch.buf).await
                    } else {
                        batch.write_all(&mut io).await
                    };
                    self.lock().put_io(io);
                    self.budget.release(queued);
                    if result.is_ok() {
                        crate::telemetry::bytes_sent(queued);
                    }
                    self.signals.drained();
                    if let Err(err) = result {
                        self.close();
                        return Err(err);
                    }
                    let mut batch = batch.buf;
                    batch.clear();
                    // Keep a small buffer for the next batch; a large one (a big frame went
                    // out) is freed, so it does not stay with the connection.
                    if batch.capacity() <= KEPT_CAPACITY {
                        spare = batch;
                    }
                }
            }
        }
    }
}

/// What the writer does next.
enum Batch {
    /// Write these bytes.
    Write(Io, Parts),
    /// Nothing to do now: wait for a producer.
    Wait,
    /// Nothing queued and closing: shut the stream down and end.
    Finish(Io),
}

#[cfg(test)]
mod tests;
