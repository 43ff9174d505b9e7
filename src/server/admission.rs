//! Admission of new connections: connections still in their handshake are bounded on their
//! own, so a crowd of clients that connect and never say hello cannot starve the others.
//!
//! Every accepted connection takes a [`Ticket`] until its hello is read. When more than
//! [`ServerOptions::max_pending_handshakes`](crate::ServerOptions::max_pending_handshakes)
//! tickets are out, the oldest one is *shed*: it leaves the count at once. If its whole
//! hello is in the socket already (looked at without reading it), it is kept and served;
//! else it gets a short grace ([`SHED_GRACE`]) to finish reading a hello that is on its
//! way, and then its connection is refused with `SERVER_BUSY` and closed. Oldest first, because a
//! well-behaved client sends its hello right after connecting, so the connections that have
//! waited longest are the likeliest to be the ones that never will (the reasoning of
//! OpenSSH's `MaxStartups`); the grace keeps a burst of real clients that the server has not
//! got round to yet from being shed. Connections in their grace are bounded by the same
//! maximum: past it, a shed connection is refused without one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::debug;

/// How long a shed connection may still take to finish reading its hello.
pub(crate) const SHED_GRACE: Duration = Duration::from_millis(50);

/// The connections in their handshake, oldest first.
#[derive(Debug)]
pub(crate) struct Admission {
    max: usize,
    pending: Mutex<VecDeque<(u64, Arc<Notify>)>>,
    /// Shed connections in their grace.
    in_grace: AtomicUsize,
}

impl Admission {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Admission {
            max: max.max(1),
            pending: Mutex::new(VecDeque::new()),
            in_grace: AtomicUsize::new(0),
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, Arc<Notify>)>> {
        self.pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Connections in their handshake right now.
    pub(crate) fn len(&self) -> usize {
        self.pending().len()
    }

    /// Admits connection `id` into its handshake, shedding the oldest one when that makes
    /// too many.
    pub(crate) fn admit(self: &Arc<Self>, id: u64) -> Ticket {
        let shed = Arc::new(Notify::new());
        let oldest = {
            let mut pending = self.pending();
            pending.push_back((id, Arc::clone(&shed)));
            if pending.len() > self.max {
                pending.pop_front()
            } else {
                None
            }
        };
        if let Some((oldest, signal)) = oldest {
            debug!(
                connection = oldest,
                max = self.max,
                "too many connections in their handshake; shedding the oldest"
            );
            // A stored permit: the shed connection sees it even if it is not waiting yet.
            signal.notify_one();
        }
        Ticket {
            admission: Arc::clone(self),
            id,
            shed,
        }
    }
}

/// One connection's place among those in their handshake; dropping it leaves.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    shed: Arc<Notify>,
}

impl Ticket {
    /// Resolves when this connection was shed to make room for a newer one.
    pub(crate) async fn shed(&self) {
        self.shed.notified().await;
    }

    /// A place among the shed connections in their grace, if one is free; held while the
    /// connection finishes reading its hello.
    pub(crate) fn grace(&self) -> Option<Grace> {
        let admission = &self.admission;
        admission
            .in_grace
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                (now < admission.max).then_some(now + 1)
            })
            .ok()
            .map(|_| Grace(Arc::clone(admission)))
    }
}

/// A shed connection's place in its grace; dropping it leaves.
#[derive(Debug)]
pub(crate) struct Grace(Arc<Admission>);

impl Drop for Grace {
    fn drop(&mut self) {
        self.0.in_grace.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut pending = self.admission.pending();
        if let Some(at) = pending.iter().position(|(id, _)| *id == self.id) {
            pending.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_oldest_is_shed_and_leaving_frees_a_place() {
        let admission = Admission::new(2);
        let first = admission.admit(1);
        let second = admission.admit(2);
        assert_eq!(admission.len(), 2);
        let third = admission.admit(3);
        assert_eq!(admission.len(), 2);
        // The first was shed (the permit waits for it), the others were not.
        tokio::time::timeout(Duration::from_secs(5), first.shed())
            .await
            .expect("the oldest is shed");
        for kept in [&second, &third] {
            let waited = tokio::time::timeout(Duration::from_millis(20), kept.shed()).await;
            assert!(waited.is_err(), "a newer connection was shed");
        }
        // Its grace is bounded by the same maximum.
        let graces: Vec<_> = (0..2).map(|_| first.grace().expect("a grace")).collect();
        assert!(first.grace().is_none(), "more graces than the bound");
        drop(graces);
        assert!(first.grace().is_some(), "graces are given back");
        drop(first);
        assert_eq!(admission.len(), 2);
        drop(second);
        assert_eq!(admission.len(), 1);
        let _fourth = admission.admit(4);
        let waited = tokio::time::timeout(Duration::from_millis(20), third.shed()).await;
        assert!(waited.is_err(), "shed although there was room");
    }
}
