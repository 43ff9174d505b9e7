//! [`OnWake`]: a future polled again only once it asked to be.
//!
//! The connection's task joins several futures (the read loop, the writer, the watch for a
//! stop) and a task has one waker: whenever any of them is woken, `join!`/`select!` poll
//! every one, and each poll of a future waiting on a `Notify` takes that `Notify`'s lock.
//! Wrapped in [`OnWake`], a future gets a waker of its own that marks it woken (and wakes
//! the task); in between, polls of the wrapper return `Pending` at the cost of one atomic
//! swap.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

/// Polls `inner` on its first poll and then only after `inner`'s own waker fired.
pub(crate) struct OnWake<F> {
    inner: F,
    signal: Arc<Signal>,
    /// `signal` as a waker, made once.
    waker: Waker,
    polled: bool,
}

/// Whether the inner future was woken, and the task to wake with it.
#[derive(Default)]
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, SeqCst);
        self.task.wake();
    }
}

impl<F: Future + Unpin> OnWake<F> {
    pub(crate) fn new(inner: F) -> Self {
        let signal = Arc::new(Signal::default());
        OnWake {
            inner,
            waker: Waker::from(Arc::clone(&signal)),
            signal,
            polled: false,
        }
    }
}

impl<F: Future + Unpin> Future for OnWake<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Registered before `woken` is read: a wake after the read wakes this task again.
        this.signal.task.register(cx.waker());
        if !this.signal.woken.swap(false, SeqCst) && this.polled {
            return Poll::Pending;
        }
        this.polled = true;
        Pin::new(&mut this.inner).poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;

    #[test]
    fn the_inner_future_is_polled_only_when_woken() {
        let polls = AtomicUsize::new(0);
        let notify = Notify::new();
        let inner = async {
            polls.fetch_add(1, SeqCst);
            notify.notified().await;
            polls.fetch_add(1, SeqCst);
        };
        tokio::pin!(inner);
        let mut gated = OnWake::new(inner.as_mut());
        let noop = futures::task::noop_waker();
        let mut cx = Context::from_waker(&noop);
        for _ in 0..10 {
            assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(SeqCst), 1, "polled again without a wake-up");
        notify.notify_one();
        assert!(
            Pin::new(&mut gated).poll(&mut cx).is_ready(),
            "the wake-up was not seen"
        );
        assert_eq!(polls.load(SeqCst), 2);
    }

    #[tokio::test]
    async fn a_wake_from_another_thread_reaches_the_task() {
        let notify = Arc::new(Notify::new());
        let waiting = {
            let notify = Arc::clone(&notify);
            async move { notify.notified().await }
        };
        tokio::pin!(waiting);
        let mut gated = OnWake::new(waiting.as_mut());
        assert!(futures::poll!(&mut gated).is_pending());
        let waking = std::thread::spawn({
            let notify = Arc::clone(&notify);
            move || notify.notify_one()
        });
        tokio::time::timeout(Duration::from_secs(5), gated)
            .await
            .expect("the wake-up from another thread was lost");
        waking.join().expect("the waking thread panicked");
    }
}
