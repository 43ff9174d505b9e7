//! [`Signals`]: whom the outbox wakes, and when.
//!
//! Two kinds of waiters: the writer task, waiting for frames to write, and producers waiting
//! for the queue to drain. Waking either through a `Notify` costs a lock, and waking the
//! connection's own task while it runs costs a second poll of it (and, on a multi-thread
//! runtime, often the wake-up of another worker thread). So:
//!
//! - Producers wait through [`Signals::wait_drained`], which counts them; a drain with
//!   nobody counted touches no `Notify`.
//! - Frames queued while the connection's read loop is being polled (see
//!   [`Signals::reading`]) do not wake the writer: the loop writes them itself at the end of
//!   that poll ([`Signals::read_poll_ended`] says whether it must). A server's reply to a
//!   request whose handler finished at once is such a frame: it leaves with no task switch.
//!
//! Both rules are the usual flag-then-check pairs on sequentially consistent atomics: of a
//! producer and the side it would wake, at least one sees the other's write, so no frame is
//! left unwritten and no waiter sleeps through a drain.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(super) struct Signals {
    /// Wakes the writer when frames were queued, a direct write ended, or the outbox closed.
    queued: Notify,
    /// Wakes producers waiting for space.
    drained: Notify,
    /// Producers inside [`Signals::wait_drained`].
    drained_waiters: AtomicUsize,
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
        if self.drained_waiters.load(SeqCst) > 0 {
            self.drained.notify_waiters();
        }
    }

    /// Wakes every producer waiting for space (the outbox is closing).
    pub(super) fn wake_producers(&self) {
        self.drained.notify_waiters();
    }

    /// Waits for the next drain, unless `ready` (checked once the wait is registered, so a
    /// drain in between is not missed) says there is no need. Cancel-safe.
    pub(super) async fn wait_drained(&self, ready: impl FnOnce() -> bool) {
        let _counted = Counted::new(&self.drained_waiters);
        let drained = self.drained.notified();
        tokio::pin!(drained);
        drained.as_mut().enable();
        if ready() {
            return;
        }
        drained.await;
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

/// One more in a counter for as long as it lives.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, SeqCst);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

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

    #[tokio::test]
    async fn a_drain_wakes_a_counted_waiter_and_no_one_else_is_counted() {
        let signals = Arc::new(Signals::default());
        assert!(
            tokio::time::timeout(Duration::from_secs(5), signals.wait_drained(|| true))
                .await
                .is_ok(),
            "a waiter that needs no drain must not wait"
        );
        assert_eq!(signals.drained_waiters.load(SeqCst), 0);
        let waiting = tokio::spawn({
            let signals = Arc::clone(&signals);
            async move { signals.wait_drained(|| false).await }
        });
        while signals.drained_waiters.load(SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        signals.drained();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the drain did not wake the waiter")
            .expect("the waiter panicked");
        assert_eq!(signals.drained_waiters.load(SeqCst), 0);
    }
}
