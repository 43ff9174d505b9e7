//! How a waiting caller gets its reply when it does not read it itself: through a oneshot
//! channel, or, for a call that was alone on its connection when it was made, through the
//! connection's [`Mailbox`], which needs no allocation.
//!
//! A lone caller usually reads its own reply (see `crate::engine::ownership`), and its
//! channel was made and dropped for nothing. So a call made while the call table is empty
//! and the mailbox holds no reply is a *lone* call: its table entry is
//! [`Waiter::Lone`], and a reply the read loop routes to it (after a second caller made
//! the first give the read side back) is left in the mailbox, where its caller finds it at
//! its next poll.
//!
//! At most one lone call waits at a time: a lone call is either in the call table (which
//! then is not empty, so the next call is not lone) or its reply is in the mailbox (which
//! then is not empty). Both are checked, and a reply is put in the mailbox, under the call
//! table's lock; the mailbox's own lock is taken inside it, never the other way round.
//! A lone caller that goes away before it took its reply takes it out (see
//! [`Reception`]), so a stale reply never blocks the next lone call.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::sync::oneshot;

use super::connection::Reply;
use crate::engine::CallEntry;
use crate::error::Error;

/// What the call table holds for a waiting caller: where its reply goes.
pub(crate) enum Waiter {
    /// The reply is sent on this channel.
    Channel(oneshot::Sender<Reply>),
    /// A lone call: the reply goes to the connection's mailbox.
    Lone,
}

impl CallEntry for Waiter {
    fn close(self, reason: &Error) {
        match self {
            Waiter::Channel(reply) => {
                let _ = reply.send(Err(reason.duplicate()));
            }
            // The connection's close wakes the lone caller through the mailbox
            // (`Mailbox::close`).
            Waiter::Lone => {}
        }
    }
}

/// Where the reply of a lone call waits for its caller when the read loop routed it.
#[derive(Default)]
pub(crate) struct Mailbox {
    state: Mutex<Mail>,
    /// Whether a reply is in `state`: set under the call table's lock (with the reply),
    /// cleared when it is taken, so that a new call checks it without this lock.
    holding: AtomicBool,
}

#[derive(Default)]
struct Mail {
    /// A reply and its request id.
    reply: Option<(u64, Reply)>,
    /// The lone caller's request id and waker, from its last poll.
    waker: Option<(u64, Waker)>,
    /// The connection closed: a lone caller without a reply fails.
    closed: bool,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, Mail> {
        // Every change under this lock leaves a valid state: go on after a panic.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Whether a reply waits here (then no new call is lone). Called under the call
    /// table's lock.
    pub(crate) fn holds_reply(&self) -> bool {
        // Set under the call table's lock, which the caller holds: never missed. A reply
        // taken meanwhile may still read as held: the new call then waits on a channel.
        self.holding.load(Ordering::Acquire)
    }

    /// Leaves lone call `id`'s reply and wakes its caller. Called under the call table's
    /// lock, right after the call's entry was taken out of it.
    pub(crate) fn deliver(&self, id: u64, reply: Reply) {
        let waker = {
            let mut mail = self.lock();
            debug_assert!(mail.reply.is_none(), "two lone calls at once");
            mail.reply = Some((id, reply));
            self.holding.store(true, Ordering::Release);
            mail.waker.take().map(|(_, waker)| waker)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The connection closed: a lone caller still waiting fails (it reads the reason from
    /// the call table).
    pub(crate) fn close(&self) {
        let waker = {
            let mut mail = self.lock();
            mail.closed = true;
            mail.waker.take().map(|(_, waker)| waker)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Lone call `id`'s reply if it is here, `Ready(None)` if the connection closed without
    /// it, else `Pending` (the caller is woken when either happens).
    fn poll_take(&self, id: u64, cx: &mut Context<'_>) -> Poll<Option<Reply>> {
        let mut mail = self.lock();
        if mail.reply.as_ref().is_some_and(|(for_id, _)| *for_id == id) {
            self.holding.store(false, Ordering::Release);
            return Poll::Ready(mail.reply.take().map(|(_, reply)| reply));
        }
        if mail.closed {
            return Poll::Ready(None);
        }
        match &mut mail.waker {
            Some((for_id, waker)) => {
                *for_id = id;
                waker.clone_from(cx.waker());
            }
            none => *none = Some((id, cx.waker().clone())),
        }
        Poll::Pending
    }

    /// Lone call `id`'s caller went away: its reply, if here, is taken out (and dropped
    /// outside the lock, with any handles it carries).
    fn forget(&self, id: u64) {
        let stale = {
            let mut mail = self.lock();
            // Only its own: the next lone call may have registered already.
            if mail.waker.as_ref().is_some_and(|(for_id, _)| *for_id == id) {
                mail.waker = None;
            }
            if mail.reply.as_ref().is_some_and(|(for_id, _)| *for_id == id) {
                self.holding.store(false, Ordering::Release);
                mail.reply.take()
            } else {
                None
            }
        };
        drop(stale);
    }
}

/// The caller's end: where it looks for a reply it does not read itself.
pub(crate) struct Reception<'a> {
    mailbox: &'a Mailbox,
    id: u64,
    kind: Kind,
}

enum Kind {
    Channel(oneshot::Receiver<Reply>),
    /// A lone call; `true` once its reply was taken (nothing to forget).
    Lone(bool),
}

impl<'a> Reception<'a> {
    /// A waiter for call `id` and its caller's end: lone when `lone`.
    pub(crate) fn new(mailbox: &'a Mailbox, id: u64, lone: bool) -> (Waiter, Reception<'a>) {
        if lone {
            let reception = Reception {
                mailbox,
                id,
                kind: Kind::Lone(false),
            };
            return (Waiter::Lone, reception);
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        let reception = Reception {
            mailbox,
            id,
            kind: Kind::Channel(reply_rx),
        };
        (Waiter::Channel(reply_tx), reception)
    }

    /// The reply, if whoever read it routed it here: `Ready(None)` when the connection
    /// closed without it. Registers the caller to be woken when it comes.
    pub(crate) fn poll_routed(&mut self, cx: &mut Context<'_>) -> Poll<Option<Reply>> {
        match &mut self.kind {
            Kind::Channel(reply_rx) => Pin::new(reply_rx).poll(cx).map(Result::ok),
            Kind::Lone(taken) => {
                let polled = self.mailbox.poll_take(self.id, cx);
                *taken = polled.is_ready();
                polled
            }
        }
    }

    /// The caller read its reply itself: its waiter is about to be dropped, and must not
    /// wake it for nothing.
    pub(crate) fn read_itself(&mut self) {
        match &mut self.kind {
            Kind::Channel(reply_rx) => reply_rx.close(),
            // Its entry was in the table until now: nothing is in the mailbox for it.
            Kind::Lone(taken) => *taken = true,
        }
    }
}

impl Drop for Reception<'_> {
    fn drop(&mut self) {
        if let Kind::Lone(false) = self.kind {
            self.mailbox.forget(self.id);
        }
    }
}
