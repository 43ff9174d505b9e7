//! [`CountedNotify`]: a `Notify` for waiters of a condition, that costs nothing to signal
//! while nobody waits.
//!
//! `Notify::notify_waiters` takes the `Notify`'s lock even with no waiter. Here a waiter
//! counts itself and registers for the wake-up before it checks its condition, and a
//! signaller changes the state before it reads the count (all sequentially consistent):
//! either the waiter sees the new state, or the signaller sees the waiter and wakes it.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct CountedNotify {
    notify: Notify,
    /// Tasks inside [`CountedNotify::wait_until`].
    waiting: AtomicUsize,
}

impl CountedNotify {
    /// The state may have changed: wakes the waiters, if any.
    pub(crate) fn notify_waiters(&self) {
        if self.waiting.load(SeqCst) != 0 {
            self.notify.notify_waiters();
        }
    }

    /// Wakes the waiters whether counted or not (a close: cheap enough once).
    pub(crate) fn notify_all(&self) {
        self.notify.notify_waiters();
    }

    /// How many tasks wait now.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(SeqCst)
    }

    /// Resolves once `ready` holds, checking it again after each notification. Cancel-safe.
    pub(crate) async fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        if ready() {
            return;
        }
        self.waiting.fetch_add(1, SeqCst);
        let _counted = Counted(&self.waiting);
        loop {
            let mut notified = std::pin::pin!(self.notify.notified());
            // Registered before the check: a notification after it wakes this wait.
            notified.as_mut().enable();
            if ready() {
                return;
            }
            notified.await;
        }
    }
}

/// Counts one task in [`CountedNotify::waiting`] until dropped (also when its wait is).
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_waiter_is_counted_while_it_waits_and_woken_by_a_notification() {
        let notify = Arc::new(CountedNotify::default());
        tokio::time::timeout(Duration::from_secs(5), notify.wait_until(|| true))
            .await
            .expect("a waiter whose condition holds must not wait");
        assert_eq!(notify.waiting(), 0);
        let ready = Arc::new(AtomicBool::new(false));
        let waiting = tokio::spawn({
            let (notify, ready) = (Arc::clone(&notify), Arc::clone(&ready));
            async move { notify.wait_until(|| ready.load(SeqCst)).await }
        });
        while notify.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        ready.store(true, SeqCst);
        notify.notify_waiters();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the notification did not wake the waiter")
            .expect("the waiter panicked");
        assert_eq!(notify.waiting(), 0, "a finished wait is no longer counted");
    }
}
