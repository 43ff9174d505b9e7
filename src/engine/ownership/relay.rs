//! [`Relay`]: the waker a caller registers with the read half, which wakes whoever owns
//! the read side when the read half becomes readable.
//!
//! A read half wakes the last waker that polled it. A caller that read its own reply and
//! gives the read side back must leave the read half registered for the read loop; with
//! its own waker that takes a poll of the read half at each hand-over, and the next
//! caller's claim takes another to register itself. Registered through the relay instead,
//! the registration stays valid across hand-overs: giving back only retargets the relay to
//! the loop's waker, and the next claim retargets it to its caller's, without polling the
//! read half while nothing came.
//!
//! `signalled` tells whether the relay was woken since it was last cleared: it is cleared
//! right before each poll of the read half made with the relay, so a party that finds the
//! relay registered (`armed` in the slot) and not signalled knows no byte came since that
//! poll's `Pending`, and that the next bytes wake the relay's target.
//!
//! The relay keeps both possible targets, the loop's waker and the owning caller's (each
//! set only when it changes), and a flag that picks one: a hand-over flips the flag, with
//! no lock and no waker cloned. Ordering: a wake sets `signalled` and then reads the flag;
//! a hand-over writes the flag and then reads `signalled` (all sequentially consistent).
//! Either the wake sees the new target, or the new owner sees `signalled` (and polls the
//! read half itself).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Wake, Waker};

/// Wakes the read side's current owner; see the module documentation.
#[derive(Default)]
pub(super) struct Relay {
    /// Set by every wake, cleared before each poll of the read half with the relay.
    signalled: AtomicBool,
    /// Whether the owning caller's waker is the target (else the read loop's).
    to_caller: AtomicBool,
    /// The two possible targets (`None` before the party first waited, and after the
    /// loop ended).
    wakers: Mutex<Wakers>,
}

#[derive(Default)]
struct Wakers {
    read_loop: Option<Waker>,
    caller: Option<Waker>,
}

impl Relay {
    fn lock(&self) -> MutexGuard<'_, Wakers> {
        // Every change under this lock leaves a valid state: go on after a panic.
        self.wakers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Sets the read loop's waker (`None`: the loop ended).
    pub(super) fn set_loop(&self, waker: Option<&Waker>) {
        self.lock().read_loop = waker.cloned();
    }

    /// Sets the owning caller's waker.
    pub(super) fn set_caller(&self, waker: &Waker) {
        self.lock().caller = Some(waker.clone());
    }

    /// Makes the caller's waker (`true`) or the loop's the one woken from now on. Returns
    /// whether the relay was woken since it was last cleared: the new owner must then
    /// look at the read half itself, since that wake may have gone to the other target.
    pub(super) fn retarget(&self, to_caller: bool) -> bool {
        self.to_caller.store(to_caller, Ordering::SeqCst);
        self.signalled.load(Ordering::SeqCst)
    }

    /// Clears the signal, right before a poll of the read half with the relay.
    pub(super) fn clear(&self) {
        self.signalled.store(false, Ordering::SeqCst);
    }
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.signalled.store(true, Ordering::SeqCst);
        let target = {
            let wakers = self.lock();
            if self.to_caller.load(Ordering::SeqCst) {
                wakers.caller.clone()
            } else {
                wakers.read_loop.clone()
            }
        };
        // Outside the lock: a waker runs code that is not ours.
        if let Some(target) = target {
            target.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_wake_reaches_the_current_target_and_is_seen_by_the_next() {
        let relay = Arc::new(Relay::default());
        let relay_waker = Waker::from(Arc::clone(&relay));
        let (a, b) = (
            Arc::new(Count(AtomicUsize::new(0))),
            Arc::new(Count(AtomicUsize::new(0))),
        );
        let (wa, wb) = (Waker::from(Arc::clone(&a)), Waker::from(Arc::clone(&b)));

        relay.set_loop(Some(&wa));
        relay.set_caller(&wb);
        assert!(!relay.retarget(false));
        relay_waker.wake_by_ref();
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        // The wake went to the loop (`a`): the caller (`b`), taking over, is told to look
        // for itself.
        assert!(relay.retarget(true));
        relay.clear();
        assert!(!relay.retarget(true));
        relay_waker.wake_by_ref();
        assert_eq!(
            (a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)),
            (1, 1)
        );
        // Nobody to wake: the signal stays for whoever comes.
        relay.clear();
        relay.set_loop(None);
        assert!(!relay.retarget(false));
        relay_waker.wake_by_ref();
        assert!(relay.retarget(false));
        assert_eq!(
            (a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)),
            (1, 1)
        );
    }
}
