//! [`Outbox`]: the bounded queue of encoded frames waiting to be written to one connection.
//!
//! Producers (calls on a client, handlers on a server) encode their frames straight into the
//! outbox's buffer under a short lock; one writer task per connection swaps the buffer out and
//! writes everything queued with one `write_all`, so frames produced together leave in one
//! system call. The queue is bounded in bytes: past the limit, producers wait for the writer
//! to drain it, which is what stalls a peer that never reads.

use std::sync::Mutex;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Where the first frames go before the queue grows.
const INITIAL_CAPACITY: usize = 8 * 1024;

#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer when frames were queued or the outbox closed.
    queued: Notify,
    /// Wakes producers waiting for space.
    drained: Notify,
    /// Producers wait while the queue holds this many bytes or more.
    limit: usize,
}

#[derive(Debug)]
struct State {
    buf: BytesMut,
    closed: bool,
    /// Close once what is queued has been written.
    closing: bool,
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
    pub(crate) fn new(limit: usize) -> Self {
        Outbox {
            state: Mutex::new(State {
                buf: BytesMut::with_capacity(INITIAL_CAPACITY),
                closed: false,
                closing: false,
            }),
            queued: Notify::new(),
            drained: Notify::new(),
            limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock can only come from an encoder; the buffer is
        // still a valid byte buffer, so go on with it.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Queues one frame written by `encode`, waiting while the queue is full.
    ///
    /// `encode` must either append a whole frame or leave the buffer as it found it and
    /// return an error. Cancel-safe: a frame is either queued whole or not at all.
    pub(crate) async fn push<E>(
        &self,
        mut encode: impl FnMut(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), QueueError<E>> {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let mut state = self.lock();
                if state.closed || state.closing {
                    return Err(QueueError::Closed);
                }
                if state.buf.len() < self.limit {
                    let was_empty = state.buf.is_empty();
                    encode(&mut state.buf).map_err(QueueError::Encode)?;
                    drop(state);
                    if was_empty {
                        self.queued.notify_one();
                    }
                    return Ok(());
                }
            }
            drained.await;
        }
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
        let was_empty = state.buf.is_empty();
        encode(&mut state.buf).map_err(QueueError::Encode)?;
        drop(state);
        if was_empty {
            self.queued.notify_one();
        }
        Ok(())
    }

    /// Stops accepting frames; the writer writes what is queued, then ends.
    pub(crate) fn close_after_flush(&self) {
        self.lock().closing = true;
        self.queued.notify_one();
        self.drained.notify_waiters();
    }

    /// Stops at once: queued frames are dropped and producers get `Closed`.
    pub(crate) fn close(&self) {
        {
            let mut state = self.lock();
            state.closed = true;
            state.buf.clear();
        }
        self.queued.notify_one();
        self.drained.notify_waiters();
    }

    /// Writes queued frames to `io` until the outbox closes or a write fails.
    ///
    /// Returns `Ok(())` after a close (with everything queued before a
    /// [`Outbox::close_after_flush`] written and flushed), or the write error.
    pub(crate) async fn run_writer<W: AsyncWrite + Unpin>(&self, mut io: W) -> std::io::Result<()> {
        let mut spare = BytesMut::with_capacity(INITIAL_CAPACITY);
        loop {
            let queued = self.queued.notified();
            tokio::pin!(queued);
            queued.as_mut().enable();
            let batch = {
                let mut state = self.lock();
                if state.closed {
                    return Ok(());
                }
                if state.buf.is_empty() {
                    if state.closing {
                        Batch::Finish
                    } else {
                        Batch::Wait
                    }
                } else {
                    Batch::Write(std::mem::replace(
                        &mut state.buf,
                        std::mem::take(&mut spare),
                    ))
                }
            };
            match batch {
                Batch::Finish => {
                    let _ = io.shutdown().await;
                    return Ok(());
                }
                Batch::Wait => queued.await,
                Batch::Write(mut batch) => {
                    let result = io.write_all(&batch).await;
                    self.drained.notify_waiters();
                    if let Err(err) = result {
                        self.close();
                        return Err(err);
                    }
                    batch.clear();
                    // Keep the larger of the two buffers' allocations around, bounded so
                    // one huge frame does not pin its memory forever.
                    if batch.capacity() <= 4 * self.limit.max(INITIAL_CAPACITY) {
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
    Write(BytesMut),
    /// Nothing queued: wait for a producer.
    Wait,
    /// Nothing queued and closing: shut the stream down and end.
    Finish,
}
