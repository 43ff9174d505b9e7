//! Read ownership: who reads a connection's read half. The mirror of the outbox's direct
//! write: a caller that is the connection's only waiter reads and decodes its own reply
//! itself, with no hand-off from the read loop's task to its own.
//!
//! The read half, its buffer and its decoder (one [`FrameReader`]) live in a [`ReadSlot`],
//! under a short lock that is never held across an await. At any time exactly one party
//! owns them:
//!
//! | owner | may read | gives them back when |
//! | --- | --- | --- |
//! | the read loop (the start) | yes | a caller claims them while the loop waits for bytes; the loop ends |
//! | the read loop, reading a frame whose first bytes are in | yes, the reader is out of the slot | the frame is read and no whole frame is left in the buffer |
//! | caller `id` | yes, from its own polls | its reply is read; its future is dropped; it meets what only the loop handles |
//!
//! - A caller claims only when the loop owns, the reader is in the slot, nothing is left for
//!   the loop, and it is the only call in the call table. The loop is not woken: its
//!   registration for readability is replaced by the caller's (a read half wakes the last
//!   task that polled it), so the reply wakes the caller alone.
//! - The owning caller reads into the shared buffer and takes whole small frames out of it.
//!   Its own reply it keeps (taking its call out of the table); every other frame is routed
//!   as the loop routes it ([`Engine::on_frame_now`]), in order. A request frame (never
//!   legal on a client, and routed by the loop only) or a frame that ends the connection
//!   is left in the slot for the loop, and the caller stops reading.
//! - A large frame, a full budget, a bad header or the end of the stream: the caller leaves
//!   the bytes in the buffer and gives ownership back; the loop reads them as always, and
//!   the caller's reply comes through its oneshot like any other call's.
//! - A caller polls the read half with the slot's [`relay`] waker, which wakes the current
//!   owner (the loop or the owning caller). Once registered (a poll returned `Pending`),
//!   the registration stays good across hand-overs: a claim or a give-back only turns the
//!   relay to the new owner, and polls the read half only if the relay was woken since
//!   (or is not registered). So a lone call polls the read half once for its reply, not
//!   also once to register itself.
//! - Giving back (reply read, future dropped, hand-over): the loop owns again. When the
//!   buffer holds bytes, or something was left, the loop is woken; otherwise, unless the
//!   relay is registered and was not woken, the caller polls the read half once with the
//!   relay, so that the loop is woken by the next bytes without being woken now. Bytes a
//!   dropped caller read stay in the buffer: no frame is lost or reordered.
//! - While it owns the read side, a caller does not look at its oneshot or the mailbox:
//!   only the owner reads, so its reply can come only from its own reads. A revoke (see
//!   [`Engine::revoke_read`]) and the loop's end wake the owner with the waker of its last
//!   poll, and from then on it waits there.
//! - When the loop ends, the reader leaves the slot and is dropped: no caller can claim,
//!   and every call fails once through the call table as before.

mod relay;

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use ferry_codec::{Frame, FrameKind};

use super::reader::{Buffered, FrameReader};
use super::{Engine, Role, Stop};
use crate::budget::Held;
use relay::Relay;

/// The read side of a connection and who owns it; see the module documentation.
pub(crate) struct ReadSlot {
    state: Mutex<Slot>,
    /// Wakes the owner when the read half becomes readable, for the polls a caller makes
    /// (see [`relay`]).
    relay: Arc<Relay>,
    /// `relay` as a waker.
    relay_waker: Waker,
}

impl Default for ReadSlot {
    fn default() -> Self {
        let relay = Arc::new(Relay::default());
        ReadSlot {
            state: Mutex::default(),
            relay_waker: Waker::from(Arc::clone(&relay)),
            relay,
        }
    }
}

#[derive(Default)]
struct Slot {
    /// The reader, when in the slot: `None` before the read loop starts, while the loop
    /// reads a frame it began (or keeps it for the whole frames buffered), and after the
    /// loop ended. Boxed: it moves in and out at each frame the loop reads.
    reader: Option<Box<FrameReader>>,
    /// The caller that owns the reader, or `None` when the read loop does.
    caller: Option<u64>,
    /// The read loop's waker, from the last time it waited on the slot (also the relay's).
    loop_waker: Option<Waker>,
    /// The last owning caller's waker (also the relay's).
    caller_waker: Option<Waker>,
    /// What a caller read and left for the loop.
    left: Option<Left>,
    /// The read loop has ended: nobody reads any more.
    ended: bool,
    /// The relay is registered with the read half: the last poll of the read half was
    /// made with it and returned `Pending`, and nobody polled it otherwise since (the loop
    /// polls with its own waker). Then, unless the relay was woken since, no byte came and
    /// the next ones wake the relay's target: an owner need not poll the read half.
    armed: bool,
}

/// What a caller left for the read loop.
enum Left {
    /// A frame only the loop routes (a request kind).
    Frame(Frame, Held),
    /// Why the connection stops (a frame that broke the protocol or closed it).
    Stop(Stop),
}

/// What the read loop does next.
pub(crate) enum Turn {
    /// Read the next frame with this reader (bytes are buffered, or the stream ended), and
    /// put it back.
    Read(Box<FrameReader>),
    /// Route this frame, which a caller read.
    Frame(Frame, Held),
    /// Stop, for this reason a caller found.
    Stop(Stop),
}

/// Ends the read side when the read loop ends; see [`ReadSlot::install`].
pub(crate) struct Installed<'a>(&'a ReadSlot);

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        let (reader, owner) = {
            let mut slot = self.0.lock();
            slot.ended = true;
            // An owner waits on its reception from now on (see `Engine::revoke_read`).
            let owner = slot.caller.take().and_then(|_| slot.caller_waker.clone());
            slot.left = None;
            slot.armed = false;
            (slot.reader.take(), owner)
        };
        if let Some(owner) = owner {
            owner.wake();
        }
        self.0.relay.retarget(false);
        self.0.relay.set_loop(None);
        // The read half closes here, outside the lock.
        drop(reader);
    }
}

impl ReadSlot {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // Every change under this lock leaves a valid state: go on after a panic.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The read loop starts with `reader`; the returned guard ends the read side (closing
    /// the read half) when the loop ends.
    pub(crate) fn install(&self, reader: FrameReader) -> Installed<'_> {
        let mut slot = self.lock();
        slot.reader = Some(Box::new(reader));
        slot.caller = None;
        Installed(self)
    }

    /// Gives back the reader taken with [`Turn::Read`].
    pub(crate) fn put_back(&self, reader: Box<FrameReader>) {
        let mut slot = self.lock();
        // Its reads were made with the loop's own waker.
        slot.armed = false;
        if !slot.ended {
            slot.reader = Some(reader);
        }
    }

    /// Whether a whole frame is buffered (the loop then reads on before flushing).
    pub(crate) fn has_whole_frame(&self) -> bool {
        let slot = self.lock();
        slot.left.is_some()
            || slot
                .reader
                .as_ref()
                .is_some_and(|reader| reader.has_whole_frame())
    }

    /// The read loop's wait: resolves with what a caller left, or with the reader once it
    /// has bytes (or its stream ended) while the loop owns it. While a caller owns it, the
    /// loop waits to be woken when it is given back.
    pub(crate) async fn turn(&self, heard: &(dyn Fn() + Sync)) -> Turn {
        std::future::poll_fn(|cx| self.poll_turn(cx, heard)).await
    }

    fn poll_turn(&self, cx: &mut Context<'_>, heard: &(dyn Fn() + Sync)) -> Poll<Turn> {
        let mut slot = self.lock();
        match slot.left.take() {
            Some(Left::Frame(frame, held)) => return Poll::Ready(Turn::Frame(frame, held)),
            Some(Left::Stop(stop)) => return Poll::Ready(Turn::Stop(stop)),
            None => {}
        }
        // Kept at every wait, so a caller giving the reader back can register or wake the
        // loop.
        if !slot
            .loop_waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            slot.loop_waker = Some(cx.waker().clone());
            self.relay.set_loop(Some(cx.waker()));
        }
        if slot.caller.is_some() {
            return Poll::Pending;
        }
        let Some(reader) = slot.reader.as_mut() else {
            // Only the loop takes the reader out, and it has put it back.
            return Poll::Pending;
        };
        if reader.is_drained() {
            let polled = reader.poll_fill(cx);
            // With the loop's own waker: the relay is no longer registered.
            slot.armed = false;
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(true) => heard(),
                Poll::Ready(false) => {}
            }
        }
        match slot.reader.take() {
            Some(reader) => Poll::Ready(Turn::Read(reader)),
            None => Poll::Pending,
        }
    }
}

impl ReadSlot {
    /// Caller `id` gives the reader back to the loop; see the module documentation.
    fn give_back(&self, slot: &mut Slot, id: u64) {
        if slot.caller != Some(id) {
            return;
        }
        slot.caller = None;
        // Retargeted first: a wake from now on reaches the loop.
        let signalled = self.relay.retarget(false);
        if slot.loop_waker.is_none() {
            // The loop has not waited yet: it reads when it first does.
            return;
        }
        let wake = slot.left.is_some()
            || match slot.reader.as_ref() {
                Some(reader) if !reader.is_drained() => true,
                // Registered, and nothing came since: the next bytes wake the loop.
                Some(_) if slot.armed && !signalled => false,
                Some(_) => self.fill(slot).is_ready(),
                None => false,
            };
        if wake {
            if let Some(waker) = slot.loop_waker.as_ref() {
                waker.wake_by_ref();
            }
        }
    }

    /// Polls the read half with the relay (the reader is in the slot): see
    /// [`FrameReader::poll_fill`]. `Pending` leaves the relay registered.
    fn fill(&self, slot: &mut Slot) -> Poll<bool> {
        let Some(reader) = slot.reader.as_mut() else {
            return Poll::Ready(false);
        };
        self.relay.clear();
        let polled = reader.poll_fill(&mut Context::from_waker(&self.relay_waker));
        slot.armed = polled.is_pending();
        polled
    }
}

/// A reply its caller read itself; see [`Engine::poll_own_reply`].
pub(crate) struct OwnReply<C> {
    pub(crate) frame: Frame,
    pub(crate) handles: Vec<crate::handle::Handle>,
    /// The call's entry, out of the table (`None` if the connection closed meanwhile).
    pub(crate) entry: Option<C>,
}

/// A caller's claim on the read side while it waits for reply `id`: see
/// [`Engine::poll_own_reply`]. Dropped (the call finished or was cancelled), it gives the
/// read side back.
pub(crate) struct ReadClaim<'a> {
    slot: &'a ReadSlot,
    id: u64,
    owning: bool,
}

impl ReadClaim<'_> {
    /// Whether this caller owned the read side at the end of its last poll.
    pub(crate) fn owning(&self) -> bool {
        self.owning
    }
}

impl Drop for ReadClaim<'_> {
    fn drop(&mut self) {
        if self.owning {
            self.owning = false;
            let mut slot = self.slot.lock();
            self.slot.give_back(&mut slot, self.id);
        }
    }
}

impl<R: Role> Engine<R> {
    /// Another party begins to wait on this connection (a second call, a stream): a caller
    /// that owns the read side gives it back to the read loop, so that the connection is
    /// read even if that caller's future is not polled for a while. The owner is woken:
    /// an owner does not look at its oneshot or the mailbox while it owns (nobody else
    /// reads its reply then), and from its next poll on it waits there.
    pub(crate) fn revoke_read(&self) {
        let owner = {
            let mut slot = self.read_slot.lock();
            let Some(owner) = slot.caller else {
                return;
            };
            self.read_slot.give_back(&mut slot, owner);
            slot.caller_waker.clone()
        };
        if let Some(owner) = owner {
            owner.wake();
        }
    }

    /// A claim for the caller waiting for reply `id`; it owns nothing yet.
    pub(crate) fn read_claim(&self, id: u64) -> ReadClaim<'_> {
        ReadClaim {
            slot: &self.read_slot,
            id,
            owning: false,
        }
    }

    /// Reads call `claim.id`'s reply itself when this caller is the connection's only
    /// waiter (claiming the read side, see the module documentation): `Ready` with the
    /// reply frame, its handles, and the call's entry taken out of the table (for the
    /// caller to drop once it no longer listens on it: a oneshot sender dropped before
    /// would wake the very task reading). `Pending` while the
    /// reply is not in, or when the caller does not read (another party owns the read
    /// side, other calls wait, or a frame needs the read loop): the reply then comes
    /// through the call's oneshot, which the caller must have polled first. With `may_claim`
    /// false, a caller that does not own the read side returns `Pending` at once.
    pub(crate) fn poll_own_reply(
        &self,
        cx: &mut Context<'_>,
        claim: &mut ReadClaim<'_>,
        may_claim: bool,
    ) -> Poll<OwnReply<R::Call>> {
        let id = claim.id;
        let mut slot = self.read_slot.lock();
        // The claim may have been revoked since the last poll (see `Engine::revoke_read`).
        claim.owning = slot.caller == Some(id);
        if !claim.owning {
            if !may_claim {
                return Poll::Pending;
            }
            let free = slot.caller.is_none()
                && slot.left.is_none()
                && slot
                    .reader
                    .as_ref()
                    .is_some_and(|reader| !reader.has_ended());
            if !free {
                return Poll::Pending;
            }
            // Alone in the table. (If the one call there is another's, this caller's
            // reply is in its oneshot already: it sees it at its next poll.)
            if self.calls().len() != 1 {
                return Poll::Pending;
            }
            slot.caller = Some(id);
            claim.owning = true;
        }
        // The owner's waker, for the relay (the future may have moved to another task).
        if !slot
            .caller_waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            slot.caller_waker = Some(cx.waker().clone());
            self.read_slot.relay.set_caller(cx.waker());
        }
        let signalled = self.read_slot.relay.retarget(true);
        let mut routed = false;
        let reply = loop {
            let Some(reader) = slot.reader.as_mut() else {
                break None;
            };
            match reader.take_buffered(&self.budget) {
                Buffered::Frame(frame, mut held) => {
                    let frame = match self.receive_handles(reader, frame, &mut held) {
                        Ok(frame) => frame,
                        Err(stop) => {
                            slot.left = Some(Left::Stop(stop));
                            break None;
                        }
                    };
                    if frame.id == id
                        && matches!(frame.kind, FrameKind::RESPONSE | FrameKind::ERROR)
                    {
                        let entry = self.calls().remove(id);
                        tracing::trace!(request_id = id, "a lone caller reads its own reply");
                        break Some(OwnReply {
                            frame,
                            handles: std::mem::take(&mut held.handles),
                            entry,
                        });
                    }
                    routed = true;
                    if matches!(frame.kind, FrameKind::REQUEST | FrameKind::EARLY_REQUEST) {
                        slot.left = Some(Left::Frame(frame, held));
                        break None;
                    }
                    if let Err(stop) = self.on_frame_now(frame, held) {
                        slot.left = Some(Left::Stop(stop));
                        break None;
                    }
                }
                // Registered, and nothing came since the registration: nothing to read.
                Buffered::NeedMore if slot.armed && !signalled => {
                    drop(slot);
                    if routed {
                        self.outbox.flush_now();
                    }
                    return Poll::Pending;
                }
                Buffered::NeedMore => match self.read_slot.fill(&mut slot) {
                    Poll::Ready(true) => self.liveness.heard(),
                    // The end is the loop's to report.
                    Poll::Ready(false) => break None,
                    Poll::Pending => {
                        // Still the owner: the read half wakes this caller.
                        drop(slot);
                        if routed {
                            self.outbox.flush_now();
                        }
                        return Poll::Pending;
                    }
                },
                Buffered::Next => break None,
            }
        };
        claim.owning = false;
        self.read_slot.give_back(&mut slot, id);
        drop(slot);
        if routed {
            // Answers to what was routed (a PONG) leave now, as the loop would send them.
            self.outbox.flush_now();
        }
        match reply {
            Some(reply) => Poll::Ready(reply),
            None => Poll::Pending,
        }
    }
}
