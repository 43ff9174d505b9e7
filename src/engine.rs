//! [`Engine`]: one connection after its handshake, for both roles.
//!
//! The engine owns everything a connection shares between its reader, its writer and the
//! calls on it: the [`Outbox`] (frames waiting to be written), the [`StreamTable`] (open
//! streams and their credit) and the [`CallTable`] (calls in flight). Its read loop decodes
//! frames and routes each kind in one `match` ([`Engine::on_frame`]); what differs between
//! the side that calls and the side that answers comes from its [`Role`]
//! (`client::connection::ClientRole`, `server::connection::ServerRole`).
//!
//! ```text
//!              +---------------- Engine<R> ----------------+
//!   reader --> | read loop --> on_frame: match frame.kind  |
//!              |   REQUEST           -> R::on_request      |
//!              |   EARLY_REQUEST(v3) -> R::on_early_request|
//!              |   RESPONSE | ERROR  -> R::on_reply        |
//!              |   CANCEL            -> R::on_cancel       |
//!              |   STREAM_ITEM/END, CREDIT -> StreamTable  |
//!              |   GOAWAY (v2)       -> R::on_goaway       |
//!              |   PING (v2)         -> PONG, at once      |
//!              |   PONG (v2)         -> Liveness           |
//!              |   0x80..=0xFF       -> skipped            |
//!              |   anything else     -> violation          |
//!              | calls: CallTable<R::Call>                 |
//!   writer <-- | outbox <-- callers, handlers, streams     |
//!              +-------------------------------------------+
//! ```
//!
//! Beside the read loop runs the keepalive ([`Liveness`]), when this side asked for one and
//! the connection's version has PING: it ends the connection when the peer stays silent.

mod calls;
mod liveness;
mod on_wake;
mod ownership;
mod reader;
mod role;

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use ferry_codec::{
    encode_frame_with, encode_spliced, CodecError, FormatId, Frame, FrameKind, StatusCode,
    CONTROL_FRAMES_VERSION,
};
use ferry_transport::{ReadHalf, WriteHalf};
use serde::Serialize;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::budget::{Budget, Held};
use crate::contract::Responder;
use crate::error::Error;
use crate::handle::HandleFrames;
use crate::outbox::{Outbox, QueueError, SPLICE_MIN};
use crate::streaming::{Remote, StreamLink, StreamTable, WINDOW};
use crate::wire::ReadError;
pub(crate) use ownership::ReadClaim;
use ownership::{ReadSlot, Turn};
use reader::FrameReader;

pub(crate) use calls::{CallEntry, CallTable, InsertError};
use liveness::Liveness;
pub(crate) use role::{Role, Stop};

/// One connection after its handshake: reader, writer, calls and streams.
pub(crate) struct Engine<R: Role> {
    /// What this side adds: the client's caller state or the server's dispatch.
    pub(crate) role: R,
    /// The payload format agreed in the handshake.
    pub(crate) format: FormatId,
    /// The protocol version agreed in the handshake.
    pub(crate) version: u16,
    /// The largest frame body the peer accepts.
    pub(crate) peer_max_frame: u32,
    /// The largest frame body this side accepts.
    max_frame: u32,
    pub(crate) outbox: Outbox,
    /// What this connection holds (frames read and not yet freed, frames queued), against
    /// its own limit and the server's.
    pub(crate) budget: Arc<Budget>,
    streams: Mutex<StreamTable>,
    calls: Mutex<CallTable<R::Call>>,
    /// When the peer was last heard from, and the keepalive's PINGs.
    liveness: Liveness,
    /// Handles passed with frames (version 3).
    pub(crate) handles: HandleFrames,
    /// The read half and its buffer, and who reads them: the read loop, or a lone waiting
    /// caller (see [`ownership`]).
    read_slot: ReadSlot,
}

/// The read half of a connection and what its handshake left in the read buffer.
pub(crate) struct ReadSide {
    pub(crate) reader: ReadHalf,
    pub(crate) buf: BytesMut,
}

impl<R: Role> Engine<R> {
    /// An engine for a connection whose handshake agreed on `version`, `format` and frame
    /// limits.
    pub(crate) fn new(
        role: R,
        version: u16,
        format: FormatId,
        max_frame: u32,
        peer_max_frame: u32,
        write_queue_limit: usize,
        budget: Arc<Budget>,
    ) -> Self {
        // PING exists from version 2 on: on a version 1 connection there is no keepalive.
        let keepalive = role
            .keepalive()
            .filter(|_| version >= CONTROL_FRAMES_VERSION);
        Engine {
            role,
            format,
            version,
            peer_max_frame,
            max_frame,
            outbox: Outbox::new(write_queue_limit, Arc::clone(&budget)),
            budget,
            streams: Mutex::new(StreamTable::default()),
            calls: Mutex::new(CallTable::default()),
            liveness: Liveness::new(keepalive),
            handles: HandleFrames::new(version),
            read_slot: ReadSlot::default(),
        }
    }

    /// Pauses the keepalive while this side does not read (see [`Liveness::pause`]).
    pub(crate) fn not_reading(&self) -> liveness::Paused<'_> {
        self.liveness.pause()
    }

    /// Sends a PING and waits for its PONG; returns the round-trip time. Fails when the
    /// connection has no PING (version 1) or closes first. Cancel-safe: dropped early, the
    /// PONG is ignored when it comes.
    pub(crate) async fn ping(&self) -> Result<std::time::Duration, Error> {
        if !self.has_control_frames() {
            return Err(Error::new(
                crate::error::ErrorKind::Usage,
                format!(
                    "{} speaks protocol version {}, which has no PING",
                    R::PEER,
                    self.version
                ),
            ));
        }
        let (number, pong) = self.liveness.probe();
        struct Forget<'a>(&'a Liveness, u64);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.forget_probe(self.1);
            }
        }
        let _forget = Forget(&self.liveness, number);
        let start = tokio::time::Instant::now();
        if !self
            .outbox
            .push_frame_now(&Frame::ping(number.to_le_bytes()))
        {
            return Err(self.closed_error());
        }
        self.outbox.flush_now();
        // The sender goes when the PONG comes; a close leaves it waiting, so the caller
        // also watches the connection.
        match pong.await {
            Ok(()) => Ok(start.elapsed()),
            Err(_) => Err(self.closed_error()),
        }
    }

    /// Whether GOAWAY, PING and PONG may be sent on this connection.
    pub(crate) fn has_control_frames(&self) -> bool {
        self.version >= CONTROL_FRAMES_VERSION
    }

    pub(crate) fn calls(&self) -> MutexGuard<'_, CallTable<R::Call>> {
        // A panic while holding this lock leaves a valid table: go on with it.
        self.calls
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub(crate) fn streams(&self) -> MutexGuard<'_, StreamTable> {
        self.streams
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Runs the connection until it ends: the read loop (beside the keepalive) and the
    /// outbox's writer, joined in one task.
    /// `writer` must have been through [`HandleFrames::attach_writer`] when it was made.
    pub(crate) async fn run(self: Arc<Self>, incoming: ReadSide, writer: WriteHalf) {
        let (abandon, abandoned) = tokio::sync::oneshot::channel::<()>();
        let reading = async {
            let read_loop = self.read_loop(incoming);
            tokio::pin!(read_loop);
            let stop = tokio::select! {
                stop = self.outbox.reading(read_loop.as_mut()) => stop,
                stop = self.liveness.watch::<R>(&self.outbox) => stop,
            };
            let unresponsive = matches!(stop, Stop::Unresponsive(_));
            R::finish(&self, stop).await;
            if unresponsive {
                // A frozen peer reads nothing: a write in progress would wait forever.
                let _ = abandon.send(());
            }
        };
        let writing = async {
            // Polled only when the writer itself was woken, not at each wake-up of the task.
            let run_writer = self.outbox.run_writer(writer);
            tokio::pin!(run_writer);
            tokio::select! {
                written = on_wake::OnWake::new(run_writer.as_mut()) => {
                    if let Err(err) = written {
                        R::write_failed(&self, err);
                    }
                }
                Ok(()) = abandoned => debug!("{} is unresponsive; queued frames dropped", R::PEER),
            }
        };
        tokio::join!(reading, writing);
    }

    /// Reads and routes frames until the peer leaves, breaks the protocol, or this side
    /// stops. A lone waiting caller may read in its place meanwhile (see [`ownership`]).
    async fn read_loop(self: &Arc<Self>, incoming: ReadSide) -> Stop {
        let ReadSide { reader, buf } = incoming;
        let mut reader = FrameReader::new(reader, buf, self.max_frame, self.role.frame_timeout());
        self.handles.attach_reader(reader.half_mut());
        // The read half leaves the slot (and is closed) when this loop ends.
        let _installed = self.read_slot.install(reader);
        let stopping = R::stopping(self);
        tokio::pin!(stopping);
        // Checked between every step below, but polled only when it was woken.
        let mut stopping = on_wake::OnWake::new(stopping.as_mut());
        let heard = || self.liveness.heard();
        // The reader, kept out of the slot while whole frames are buffered: the loop reads
        // them one after the other without taking and putting back the reader at each.
        let mut kept: Option<Box<FrameReader>> = None;
        loop {
            if kept.is_none() && !self.read_slot.has_whole_frame() {
                // Every frame read so far has been handled (a handler's first step
                // included): write what they queued in one go before waiting for more.
                self.outbox.flush_now();
            }
            {
                let _paused = self.liveness.pause();
                tokio::select! {
                    biased;
                    () = R::read_budget(self) => {}
                    stop = &mut stopping => return stop,
                }
            }
            // Waits for the peer's next bytes, or for a caller that read in this loop's
            // place to give the read side back.
            let turn = match kept.take() {
                Some(reader) => Turn::Read(reader),
                None => tokio::select! {
                    biased;
                    turn = self.read_slot.turn(&heard) => turn,
                    stop = &mut stopping => return stop,
                },
            };
            let (frame, held) = match turn {
                Turn::Read(mut reader) => {
                    // The frame's size is reserved from the budget before its body is
                    // read: while the budget is full, the peer is not read from.
                    let read = tokio::select! {
                        biased;
                        // Each read is heard from the peer (for the keepalive).
                        read = reader.next(&self.budget, &heard) => read,
                        stop = &mut stopping => return stop,
                    };
                    let read = self.accept(&mut reader, read);
                    if read.is_ok() && reader.has_whole_frame() {
                        kept = Some(reader);
                    } else {
                        self.read_slot.put_back(reader);
                    }
                    match read {
                        Ok(read) => read,
                        Err(stop) => return stop,
                    }
                }
                Turn::Frame(frame, held) => (frame, held),
                Turn::Stop(stop) => {
                    if let Stop::Violation(violation) = &stop {
                        warn!(message = %violation.message, "protocol violation; closing the connection");
                    }
                    return stop;
                }
            };
            if let Err(stop) = self.on_frame(frame, held).await {
                if let Stop::Violation(violation) = &stop {
                    warn!(message = %violation.message, "protocol violation; closing the connection");
                }
                return stop;
            }
        }
    }

    /// What a read of the read loop gives: the frame with its handles, or why the loop
    /// stops.
    fn accept(
        &self,
        reader: &mut FrameReader,
        read: Result<Option<(Frame, Held)>, ReadError>,
    ) -> Result<(Frame, Held), Stop> {
        let (frame, mut held) = match read {
            Ok(Some(read)) => read,
            Ok(None) => {
                debug!("{} closed the connection", R::PEER);
                return Err(Stop::Gone(Error::closed(format!(
                    "{} closed the connection",
                    R::PEER
                ))));
            }
            Err(ReadError::Truncated) => {
                debug!("{} closed the connection in the middle of a frame", R::PEER);
                return Err(Stop::Gone(Error::closed(format!(
                    "{} closed the connection in the middle of a frame",
                    R::PEER
                ))));
            }
            Err(ReadError::Io(err)) if err.kind() == std::io::ErrorKind::TimedOut => {
                warn!(error = %err, "frame not completed in time; closing the connection");
                return Err(Stop::violation(err.to_string()));
            }
            Err(ReadError::Io(err)) => {
                debug!(error = %err, "read failed");
                return Err(Stop::Gone(Error::io(
                    crate::ErrorKind::Closed,
                    "the connection failed while reading",
                    err,
                )));
            }
            Err(ReadError::Codec(err)) => {
                warn!(error = %crate::ErrorChain::new(&err), "bad frame from {}; closing the connection", R::PEER);
                return Err(Stop::codec(err));
            }
        };
        let frame = self.receive_handles(reader, frame, &mut held)?;
        Ok((frame, held))
    }

    /// Counts a frame `reader` just returned and gives it the handles that came with it
    /// (into `held`); a frame that claims handles it has not fails the connection.
    fn receive_handles(
        &self,
        reader: &mut FrameReader,
        frame: Frame,
        held: &mut Held,
    ) -> Result<Frame, Stop> {
        crate::telemetry::bytes_received(ferry_codec::HEADER_LEN + frame.body.len());
        let incoming = reader.take_handles(&frame);
        match self.handles.receive(frame, incoming) {
            Ok((frame, handles)) => {
                held.handles = handles;
                Ok(frame)
            }
            Err(violation) => {
                warn!(%violation, "bad handles from {}; closing the connection", R::PEER);
                Err(Stop::violation(violation))
            }
        }
    }

    /// Routes one frame: the one place where each frame kind is handled. `held` is the
    /// frame's share of the budget: kept with a request's arguments until its handler ends
    /// and with a stream item until its consumer takes it, given back at once otherwise.
    async fn on_frame(self: &Arc<Self>, frame: Frame, held: Held) -> Result<(), Stop> {
        match frame.kind {
            FrameKind::REQUEST => R::on_request(self, frame, held).await,
            FrameKind::EARLY_REQUEST => R::on_early_request(self, frame, held).await,
            _ => self.on_frame_now(frame, held),
        }
    }

    /// Routes one frame of any kind but the two requests (those go through
    /// [`Engine::on_frame`], whose handlers may wait), without waiting: also what a caller
    /// reading in the read loop's place does (see [`ownership`]).
    fn on_frame_now(&self, frame: Frame, mut held: Held) -> Result<(), Stop> {
        match frame.kind {
            FrameKind::RESPONSE | FrameKind::ERROR => {
                R::on_reply(self, frame, std::mem::take(&mut held.handles))
            }
            FrameKind::CANCEL => R::on_cancel(self, frame),
            FrameKind::STREAM_ITEM => self
                .streams()
                .on_item(frame.id, frame.body, held)
                .map_err(Stop::violation),
            FrameKind::STREAM_END => {
                self.streams().on_end(frame.id);
                Ok(())
            }
            FrameKind::CREDIT => {
                let items = frame
                    .credit_items()
                    .map_err(|_| Stop::violation("CREDIT frame without a count"))?;
                self.streams().on_credit(frame.id, items);
                Ok(())
            }
            FrameKind::GOAWAY => {
                let last_id = self
                    .control_frame(&frame)?
                    .goaway_last_id()
                    .map_err(Stop::codec)?;
                R::on_goaway(self, last_id)
            }
            FrameKind::PING => {
                let data = self
                    .control_frame(&frame)?
                    .ping_data()
                    .map_err(Stop::codec)?;
                // Answered at once, whatever the outbox holds: a PING measures liveness.
                self.outbox.push_frame_now(&Frame::pong(data));
                Ok(())
            }
            FrameKind::PONG => {
                let data = self
                    .control_frame(&frame)?
                    .ping_data()
                    .map_err(Stop::codec)?;
                self.liveness.on_pong(data);
                Ok(())
            }
            kind if kind.is_ignorable() => {
                debug!(kind = ?kind, "ignoring an extension frame");
                Ok(())
            }
            kind => Err(Stop::unexpected::<R>(kind)),
        }
    }

    /// Checks the rules every connection-level control frame (GOAWAY, PING, PONG) obeys:
    /// a connection of version 2 or later, and id 0. (Their body is checked by the codec.)
    fn control_frame<'f>(&self, frame: &'f Frame) -> Result<&'f Frame, Stop> {
        if !self.has_control_frames() {
            return Err(Stop::violation(format!(
                "{:?} frame on a connection of protocol version {}, which has none",
                frame.kind, self.version
            )));
        }
        if frame.id != 0 {
            return Err(Stop::violation(format!(
                "{:?} frame with id {}; it concerns the connection and must have id 0",
                frame.kind, frame.id
            )));
        }
        Ok(frame)
    }

    /// Queues an ERROR frame without waiting for queue space (error frames are small).
    pub(crate) fn send_error(&self, id: u64, status: StatusCode, message: &str) {
        self.outbox
            .push_frame_now(&Frame::error(id, status, message));
    }

    /// Registers the receiving end of stream `id` (the peer starts with a window of
    /// credit, which the caller grants) and returns it.
    pub(crate) fn open_inbound(self: &Arc<Self>, id: u64) -> Remote {
        let items = self.streams().open_inbound(id, WINDOW);
        Remote::new(
            id,
            self.format,
            items,
            Arc::clone(self) as Arc<dyn StreamLink>,
        )
    }

    /// Ends every call in flight and every stream with `reason`, and refuses new calls.
    /// Returns how many calls were in flight.
    pub(crate) fn fail_all(&self, reason: Error) -> usize {
        let entries = self.calls().close(reason);
        let count = entries.len();
        let reason = self.closed_error();
        for entry in entries {
            entry.close(&reason);
        }
        self.streams().close_all(&reason);
        count
    }

    /// Why the connection closed (or a generic "closed" when it has not).
    pub(crate) fn closed_error(&self) -> Error {
        match self.calls().closed() {
            Some(reason) => reason.duplicate(),
            None => Error::closed("the connection is closed"),
        }
    }
}

/// Encodes `value` as the body of a `kind` frame for call `id` straight into the outbox,
/// waiting while the queue is full. Nothing is queued when encoding fails.
/// Handles in `value` go with the frame (see [`HandleFrames`]); with `handles` `None` (stream
/// items) a handle fails the encoding.
/// `metadata`, when given, goes in front of the value (flag METADATA, version 3).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_payload<T: Serialize + ?Sized>(
    outbox: &Outbox,
    handles: Option<&HandleFrames>,
    kind: FrameKind,
    id: u64,
    metadata: Option<&ferry_codec::Metadata>,
    format: FormatId,
    max_frame: u32,
    value: &T,
) -> Result<(), QueueError<CodecError>> {
    let frame_flags = crate::metadata::flag(metadata);
    outbox
        .push_spliced(
            |buf, splices, position| {
                // A large byte string goes by reference (see `Outbox::push_spliced`).
                let mut encode = |buf: &mut BytesMut| {
                    encode_spliced(buf, SPLICE_MIN, max_frame, splices, |buf| {
                        encode_frame_with(buf, kind, frame_flags, 0, id, max_frame, |buf| {
                            crate::metadata::encode_with(metadata, buf, |buf| {
                                format.encode(value, buf)
                            })
                        })
                    })
                };
                match handles {
                    Some(handles) => handles.encode_frame(buf, position, max_frame, encode),
                    None => {
                        crate::handle::refusing("handles cannot be sent in stream items", || {
                            encode(buf)
                        })
                    }
                }
            },
            false,
        )
        .await
}

impl<R: Role> StreamLink for Engine<R> {
    fn grant(&self, id: u64, items: u32) {
        self.streams().granted(id, items);
        self.outbox.push_frame_now(&Frame::credit(id, items));
    }

    fn dropped(&self, id: u64, ended: bool) {
        // Items still in flight for it are ignored.
        self.streams().remove_inbound(id);
        if R::CANCEL_ON_STREAM_DROP && !ended {
            self.outbox.push_frame_now(&Frame::cancel(id));
        }
    }
}

impl<R: Role> Responder for Engine<R> {
    fn format(&self) -> FormatId {
        self.format
    }

    fn version(&self) -> u16 {
        self.version
    }

    fn peer_max_frame(&self) -> u32 {
        self.peer_max_frame
    }

    fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn handles(&self) -> &HandleFrames {
        &self.handles
    }

    fn max_shared_bytes(&self) -> u64 {
        self.role.max_shared_bytes()
    }

    fn open_upload(self: Arc<Self>, id: u64) -> Remote {
        let remote = self.open_inbound(id);
        self.outbox.push_frame_now(&Frame::credit(id, WINDOW));
        remote
    }

    fn reply_gate(&self, id: u64) -> Arc<Semaphore> {
        self.streams().outbound(id)
    }
}
