//! [`InFlight`]: how many calls run at once on one served connection, at most
//! `max_in_flight`.
//!
//! A call takes a place when its request is read ([`InFlight::try_enter`]) and gives it
//! back when its handler ends ([`Place`] dropped, or [`InFlight::leave`] for a place kept
//! by a task of its own). While nobody waits, each is one atomic operation on a counter: a
//! tokio `Semaphore` would also clone an `Arc` for each owned permit and take its waiters'
//! lock on every release. Two waits exist, and only they pay for a wake-up: the read loop
//! with every place taken waits for one ([`InFlight::enter`]), and a draining connection
//! waits for every call to end ([`InFlight::idle`]).
//!
//! A place given back wakes the waiters only when some task waits ([`CountedNotify`]): a
//! call that leaves lowers the counter before it signals, so either a waiter sees the lower
//! count, or the leaving call sees the waiter and wakes it.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::counted_notify::CountedNotify;

/// The calls running on one connection, at most `max` at once.
#[derive(Debug)]
pub(crate) struct InFlight {
    /// Places taken.
    running: AtomicUsize,
    /// The most places that may be taken at once (at least 1).
    max: usize,
    /// Woken when a place is given back (tasks in [`InFlight::enter`] or [`InFlight::idle`]).
    freed: CountedNotify,
}

/// A place taken in an [`InFlight`], given back when dropped.
#[must_use = "a place is given back at once when dropped"]
#[derive(Debug)]
pub(crate) struct Place<'a>(&'a InFlight);

impl Place<'_> {
    /// Keeps the place taken past this guard: whoever ends the call gives it back with
    /// [`InFlight::leave`].
    pub(crate) fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl InFlight {
    /// Room for `max` calls at once (at least one).
    pub(crate) fn new(max: usize) -> Self {
        InFlight {
            running: AtomicUsize::new(0),
            max: max.max(1),
            freed: CountedNotify::default(),
        }
    }

    /// Takes a place, unless all are taken.
    pub(crate) fn try_enter(&self) -> Option<Place<'_>> {
        let mut running = self.running.load(Ordering::SeqCst);
        while running < self.max {
            match self.running.compare_exchange_weak(
                running,
                running + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Some(Place(self)),
                Err(now) => running = now,
            }
        }
        None
    }

    /// Gives back a place kept with [`Place::keep`].
    pub(crate) fn leave(&self) {
        let before = self.running.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "a place given back twice");
        self.freed.notify_waiters();
    }

    /// Waits for a free place and takes it. Cancel-safe: dropped, it takes nothing.
    pub(crate) async fn enter(&self) -> Place<'_> {
        loop {
            if let Some(place) = self.try_enter() {
                return place;
            }
            self.freed
                .wait_until(|| self.running.load(Ordering::SeqCst) < self.max)
                .await;
        }
    }

    /// Waits until no call runs.
    pub(crate) async fn idle(&self) {
        self.freed
            .wait_until(|| self.running.load(Ordering::SeqCst) == 0)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    const LONG: Duration = Duration::from_secs(10);

    #[test]
    fn places_run_out_and_come_back() {
        let in_flight = InFlight::new(2);
        let first = in_flight.try_enter().expect("a first place");
        let second = in_flight.try_enter().expect("a second place");
        assert!(in_flight.try_enter().is_none(), "a third place");
        drop(first);
        let third = in_flight.try_enter().expect("the place given back");
        second.keep();
        assert!(
            in_flight.try_enter().is_none(),
            "a kept place was given back"
        );
        in_flight.leave();
        drop(third);
        assert_eq!(in_flight.running.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn no_room_means_one() {
        let in_flight = InFlight::new(0);
        let place = in_flight.try_enter().expect("one place");
        assert!(in_flight.try_enter().is_none());
        drop(place);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_entry_gets_the_place_given_back() {
        let in_flight = Arc::new(InFlight::new(1));
        for _ in 0..200 {
            let place = in_flight.try_enter().expect("the only place");
            place.keep();
            let waiter = tokio::spawn({
                let in_flight = Arc::clone(&in_flight);
                async move {
                    let place = in_flight.enter().await;
                    drop(place);
                }
            });
            // Given back from another task, racing the waiter's registration.
            let leaver = tokio::spawn({
                let in_flight = Arc::clone(&in_flight);
                async move { in_flight.leave() }
            });
            tokio::time::timeout(LONG, leaver).await.unwrap().unwrap();
            tokio::time::timeout(LONG, waiter)
                .await
                .expect("the waiter missed the place given back")
                .unwrap();
        }
        assert_eq!(in_flight.freed.waiting(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_waits_for_every_call() {
        let in_flight = Arc::new(InFlight::new(4));
        for _ in 0..100 {
            for _ in 0..3 {
                in_flight.try_enter().expect("a place").keep();
            }
            let mut idle = Box::pin({
                let in_flight = Arc::clone(&in_flight);
                async move { in_flight.idle().await }
            });
            let waker = futures::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            for _ in 0..2 {
                in_flight.leave();
                assert!(
                    idle.as_mut().poll(&mut cx).is_pending(),
                    "idle with a call running"
                );
            }
            let in_flight_last = Arc::clone(&in_flight);
            tokio::spawn(async move { in_flight_last.leave() });
            tokio::time::timeout(LONG, idle)
                .await
                .expect("idle missed the last call's end");
        }
    }

    #[tokio::test]
    async fn a_dropped_wait_stops_counting() {
        let in_flight = InFlight::new(1);
        let place = in_flight.try_enter().expect("the only place");
        {
            let mut entering = std::pin::pin!(in_flight.enter());
            let waker = futures::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(entering.as_mut().poll(&mut cx).is_pending());
            assert_eq!(in_flight.freed.waiting(), 1);
        }
        assert_eq!(in_flight.freed.waiting(), 0);
        drop(place);
        assert!(in_flight.try_enter().is_some());
    }
}
