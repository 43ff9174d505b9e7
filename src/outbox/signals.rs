//! [`Signals`]: whom the outbox wakes, and when.
//!
//! Two kinds of waiters: the writer task, waiting for frames to write, and producers waiting
//! for the queue to drain. Waking either through a `Notify` costs a lock, and waking the
//! connection's own task while it runs costs a second poll of it (and, on a multi-thread
//! runtime, often the wake-up of another worker thread). So:
//!
//! - Producers wait through [`Signals::wait_drained`], a [`CountedNotify`]: a drain with
//!   nobody waiting touches no `Notify`.
//! - Frames queued while the connection's read loop is being polled (see
//!   [`Signals::reading`]) do not wake the writer: the loop writes them itself at the end of
//!   that poll ([`Signals::read_poll_ended`] says whether it must). A server's reply to a
//!   request whose handler finished at once is such a frame: it leaves with no task switch.
//!
//! Both rules are the usual flag-then-check pairs on sequentially consistent atomics: of a
//! producer and the side it would wake, at least one sees the other's write, so no frame is
//! left unwritten and no waiter sleeps through a drain.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use crate::counted_notify::CountedNotify;

#[derive(Debug, Default)]
pub(super) struct Signals {
    /// Wakes the writer when frames were queued, a direct write ended, or the outbox closed.
    queued: Notify,
    /// Wakes producers waiting for space.
    drained: CountedNotify,
    /// The read loop is being polled (between [`Signals::read_poll_begins`] and
    /// [`Signals::read_poll_ended`]).
    reading: AtomicBool,
    /// Frames were queued during a poll of the read loop without waking the writer.
    held: AtomicBool,
}

impl Signals {
    /// Frames were queued into an empty queue: wakes the writer, unless the read loop is
    /// being polled, which then writes them when its poll ends.
    pub(super) fn frames_queued(&self) {
        if self.reading.load(SeqCst) {
            self.held.store(true, SeqCst);
            // Checked again after `held` is set: if the poll has not ended yet, its end sees
            // `held`; if it has, nobody else will write these frames.
            if self.reading.load(SeqCst) {
                return;
            }
        }
        self.queued.notify_one();
    }

    /// Wakes the writer whatever is under way (a close, bytes left by a direct write).
    pub(super) fn wake_writer(&self) {
        self.queued.notify_one();
    }

    /// What the writer waits on.
    pub(super) fn writer_wakeup(&self) -> Notified<'_> {
        self.queued.notified()
    }

    /// Queued bytes were written: wakes the producers waiting for space, if any.
    pub(super) fn drained(&self) {
        self.drained.notify_waiters();
    }

    /// Wakes every producer waiting for space (the outbox is closing).
    pub(super) fn wake_producers(&self) {
        self.drained.notify_all();
    }

    /// Resolves once `ready` holds, checking it again after each drain. Cancel-safe.
    pub(super) async fn wait_drained(&self, ready: impl FnMut() -> bool) {
        self.drained.wait_until(ready).await;
    }

    /// A poll of the read loop begins.
    pub(super) fn read_poll_begins(&self) {
        self.reading.store(true, SeqCst);
    }

    /// A poll of the read loop ended: `true` when frames were queued during it without
    /// waking the writer, so the caller must write them now.
    pub(super) fn read_poll_ended(&self) -> bool {
        self.reading.store(false, SeqCst);
        self.held.swap(false, SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[test]
    fn frames_queued_during_a_read_poll_are_left_to_its_end() {
        let signals = Signals::default();
        let writer = signals.writer_wakeup();
        tokio::pin!(writer);
        writer.as_mut().enable();
        signals.read_poll_begins();
        signals.frames_queued();
        assert!(
            writer.as_mut().now_or_never().is_none(),
            "the writer was woken during the read poll"
        );
        assert!(signals.read_poll_ended(), "the poll's end must write them");
        assert!(!signals.read_poll_ended(), "written once, not again");
    }

    #[test]
    fn frames_queued_outside_a_read_poll_wake_the_writer() {
        let signals = Signals::default();
        let writer = signals.writer_wakeup();
        tokio::pin!(writer);
        writer.as_mut().enable();
        signals.frames_queued();
        assert!(writer.now_or_never().is_some(), "the writer slept on");
        signals.read_poll_begins();
        assert!(!signals.read_poll_ended(), "nothing was held back");
    }
}
