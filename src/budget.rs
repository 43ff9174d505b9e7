//! [`Budget`]: the bytes a connection holds, counted against its own limit and a pool
//! shared by every connection of a server.
//!
//! What is counted: frames read and not yet freed (request arguments until their handler
//! ends, stream items until their consumer takes them) and frames queued in the outbox
//! until they are written. Two ways to take bytes:
//!
//! | call | when | waits? |
//! | --- | --- | --- |
//! | [`Budget::reserve`] | the read loop, once a frame header announced its body length, before the body is read or allocated | while either bound would be passed |
//! | [`Budget::charge`] | the outbox, for bytes already encoded | never (while [`Budget::over`], the outbox queues only into an empty queue) |
//!
//! Both are given back by dropping the [`Held`] guard or calling [`Budget::release`], which
//! wakes whoever waits for room. Neither limit is ever below one frame of the largest size
//! accepted (see `ServerOptions`), and a pool that holds nothing takes any amount, so a
//! connection never waits for itself: once it holds nothing, its next frame waits at most
//! for other connections to give bytes back.

use std::fmt;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;

/// A byte count with a limit, and a signal for those waiting for room in it.
#[derive(Debug)]
pub(crate) struct Pool {
    limit: usize,
    used: AtomicUsize,
    released: Notify,
    /// Reservations waiting for room: bytes given back wake them only when there are any
    /// (the common case, none, takes no lock).
    waiting: AtomicUsize,
}

impl Pool {
    /// A pool of `limit` bytes.
    pub(crate) fn new(limit: usize) -> Arc<Pool> {
        Arc::new(Pool {
            limit,
            used: AtomicUsize::new(0),
            released: Notify::new(),
            waiting: AtomicUsize::new(0),
        })
    }

    /// A pool that never fills (a client's connections).
    pub(crate) fn unlimited() -> Arc<Pool> {
        Pool::new(usize::MAX)
    }

    /// Bytes counted now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Adds `bytes` if they fit (or if nothing is held); `false` otherwise.
    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let fits = used == 0 || used.checked_add(bytes).is_some_and(|n| n <= self.limit);
                fits.then(|| used.saturating_add(bytes))
            })
            .is_ok()
    }

    fn add(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    fn give_back(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        // Pairs with the fence in `Budget::reserve`: either this sees the waiter counted,
        // or the waiter's next try sees these bytes given back.
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.released.notify_waiters();
        }
    }

    fn full(&self) -> bool {
        self.used() >= self.limit
    }
}

/// One connection's share: its own pool and the server's.
pub(crate) struct Budget {
    own: Arc<Pool>,
    shared: Arc<Pool>,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("used", &self.own.used())
            .field("limit", &self.own.limit)
            .field("shared_used", &self.shared.used())
            .field("shared_limit", &self.shared.limit)
            .finish()
    }
}

impl Budget {
    /// A connection's budget of `limit` bytes, drawing also on `shared`.
    pub(crate) fn new(limit: usize, shared: Arc<Pool>) -> Arc<Budget> {
        Arc::new(Budget {
            own: Pool::new(limit),
            shared,
        })
    }

    /// A budget with no bound (a client's connection).
    pub(crate) fn unlimited() -> Arc<Budget> {
        Budget::new(usize::MAX, Pool::unlimited())
    }

    /// Bytes this connection holds.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.own.used()
    }

    /// Takes `bytes` from both pools, waiting while they do not fit in either. A pool that
    /// holds nothing takes any amount, so a connection never waits for itself.
    /// Cancel-safe: nothing is taken unless it returns.
    pub(crate) async fn reserve(self: &Arc<Self>, bytes: usize) -> Held {
        // Most frames fit at once: no waiting, no lock.
        if let Some(held) = self.try_reserve(bytes) {
            return held;
        }
        let _waiting = Waiting::new([&self.own, &self.shared]);
        loop {
            let own = self.own.released.notified();
            let shared = self.shared.released.notified();
            tokio::pin!(own, shared);
            own.as_mut().enable();
            shared.as_mut().enable();
            // Pairs with the fence in `Pool::give_back` (see there).
            fence(Ordering::SeqCst);
            if self.own.try_take(bytes) {
                if self.shared.try_take(bytes) {
                    return Held {
                        budget: Arc::clone(self),
                        bytes,
                        shared: None,
                        handles: Vec::new(),
                    };
                }
                // Undone quietly: notifying here would wake this very wait.
                self.own.used.fetch_sub(bytes, Ordering::AcqRel);
            }
            tokio::select! {
                () = own => {}
                () = shared => {}
            }
        }
    }

    /// Takes `bytes` from both pools if they fit now.
    pub(crate) fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Held> {
        if !self.own.try_take(bytes) {
            return None;
        }
        if self.shared.try_take(bytes) {
            return Some(Held {
                budget: Arc::clone(self),
                bytes,
                shared: None,
                handles: Vec::new(),
            });
        }
        // Undone quietly, as in `reserve`.
        self.own.used.fetch_sub(bytes, Ordering::AcqRel);
        None
    }

    /// Counts `bytes` already allocated, without waiting; give them back with
    /// [`Budget::release`].
    pub(crate) fn charge(&self, bytes: usize) {
        self.own.add(bytes);
        self.shared.add(bytes);
    }

    /// Gives back `bytes` taken by [`Budget::charge`] and wakes those waiting for room.
    pub(crate) fn release(&self, bytes: usize) {
        self.own.give_back(bytes);
        self.shared.give_back(bytes);
    }

    /// Whether either pool is full: the outbox then queues a frame only into an empty
    /// queue.
    pub(crate) fn over(&self) -> bool {
        self.own.full() || self.shared.full()
    }
}

/// Counts a reservation as waiting on its pools while it lives (dropped with the wait,
/// also when the wait is cancelled).
struct Waiting<'a>([&'a Pool; 2]);

impl<'a> Waiting<'a> {
    fn new(pools: [&'a Pool; 2]) -> Self {
        for pool in pools {
            pool.waiting.fetch_add(1, Ordering::SeqCst);
        }
        Waiting(pools)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        for pool in &self.0 {
            pool.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        // Whatever the connection still counts (bytes left in its outbox) goes back to the
        // server's pool with it.
        self.shared.give_back(self.own.used());
    }
}

/// Bytes taken by [`Budget::reserve`], given back when dropped; once shared (see
/// [`Held::tie`]), given back when the last holder drops.
pub(crate) struct Held {
    budget: Arc<Budget>,
    /// Bytes this guard alone holds (0 once shared).
    bytes: usize,
    /// The reservation, when shared with a frame body.
    shared: Option<Arc<Shared>>,
    /// The handles that came with the frame (closed with it unless taken).
    pub(crate) handles: Vec<crate::handle::Handle>,
}

/// A reservation with several holders.
struct Shared {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// A frame body's allocation together with a share of its reservation.
struct Tied {
    body: Bytes,
    _share: Arc<Shared>,
}

impl AsRef<[u8]> for Tied {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

impl Held {
    /// How many bytes are held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.shared
            .as_ref()
            .map_or(self.bytes, |shared| shared.bytes)
    }

    /// `body` (of the frame this reservation is for), holding a share of the reservation:
    /// the bytes are given back once this guard and every slice of the returned body are
    /// dropped. So a `Bytes` decoded as a slice of a frame (zero-copy) stays counted for as
    /// long as anyone keeps it. One allocation; for frames read into their own buffer.
    pub(crate) fn tie(&mut self, body: Bytes) -> Bytes {
        let shared = self.shared.get_or_insert_with(|| {
            Arc::new(Shared {
                budget: Arc::clone(&self.budget),
                bytes: std::mem::take(&mut self.bytes),
            })
        });
        let share = Arc::clone(shared);
        Bytes::from_owner(Tied {
            body,
            _share: share,
        })
    }
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Held")
            .field(&self.bytes)
            .field(&self.shared.is_some())
            .finish()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.release(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::FutureExt;

    use super::*;

    #[tokio::test]
    async fn reserve_counts_in_both_pools_and_drop_gives_back() {
        let shared = Pool::new(100);
        let a = Budget::new(60, Arc::clone(&shared));
        let held = a.reserve(40).await;
        assert_eq!(held.bytes(), 40);
        assert_eq!((a.used(), shared.used()), (40, 40));
        a.charge(10);
        assert_eq!((a.used(), shared.used()), (50, 50));
        a.release(10);
        drop(held);
        assert_eq!((a.used(), shared.used()), (0, 0));
    }

    #[tokio::test]
    async fn the_connection_limit_makes_its_reader_wait_until_a_release_wakes_it() {
        let shared = Pool::new(1000);
        let a = Budget::new(60, Arc::clone(&shared));
        let first = a.reserve(40).await;
        // 40 + 30 > 60: waits, and has taken nothing meanwhile.
        let mut second = Box::pin(a.reserve(30));
        assert!((&mut second).now_or_never().is_none());
        assert_eq!((a.used(), shared.used()), (40, 40));
        assert!(!a.over());
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("woken by the release");
        assert_eq!((a.used(), shared.used()), (30, 30));
        drop(second);
        assert_eq!(shared.used(), 0);
    }

    #[tokio::test]
    async fn the_shared_pool_makes_other_connections_wait_and_wakes_them() {
        let shared = Pool::new(100);
        let a = Budget::new(80, Arc::clone(&shared));
        let b = Budget::new(80, Arc::clone(&shared));
        let held_a = a.reserve(80).await;
        let mut waiting = Box::pin(b.reserve(30));
        assert!((&mut waiting).now_or_never().is_none());
        // The connection's own pool took nothing while the shared one refused.
        assert_eq!((b.used(), shared.used()), (0, 80));
        drop(held_a);
        let held_b = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by another connection's release");
        assert_eq!((b.used(), shared.used()), (30, 30));
        drop(held_b);
    }

    #[tokio::test]
    async fn an_idle_connection_may_always_take_one_frame() {
        // Larger than either limit: taken at once when nothing is held, so a connection
        // never waits for itself.
        let shared = Pool::new(10);
        let a = Budget::new(10, Arc::clone(&shared));
        let big = a.reserve(50).await;
        assert!(a.over());
        assert!(a.reserve(1).now_or_never().is_none());
        drop(big);
        assert!(!a.over());
    }

    #[tokio::test]
    async fn charges_are_never_refused_but_fill_the_pools() {
        let shared = Pool::new(100);
        let a = Budget::new(50, Arc::clone(&shared));
        a.charge(70);
        assert!(a.over());
        assert_eq!(shared.used(), 70);
        // A reservation waits behind the charge until it is released.
        let mut waiting = Box::pin(a.reserve(10));
        assert!((&mut waiting).now_or_never().is_none());
        a.release(70);
        let held = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the release");
        assert_eq!(held.bytes(), 10);
        drop(held);
        assert!(!a.over());
    }

    #[tokio::test]
    async fn a_dropped_connection_returns_what_it_still_counts() {
        let shared = Pool::new(100);
        let a = Budget::new(50, Arc::clone(&shared));
        a.charge(20);
        drop(a);
        assert_eq!(shared.used(), 0);
    }
}
