//! [`Role`]: what the client and the server each add to the shared [`Engine`], and
//! [`Stop`], why a connection's read loop ends.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferry_codec::{CodecError, Frame, FrameKind, StatusCode};

use super::calls::CallEntry;
use super::Engine;
use crate::budget::Held;
use crate::error::Error;

/// The side-specific part of a connection. The engine reads frames and routes every kind
/// itself; it asks the role only for what differs between who calls and who answers.
///
/// Frames a side never receives (REQUEST and CANCEL on a client, RESPONSE and ERROR on a
/// server) are answered by the role with [`Stop::unexpected`], so their rule is stated
/// where the kind is handled.
pub(crate) trait Role: Send + Sync + Sized + 'static {
    /// What the call table holds per call: a caller waiting for its reply (client) or a
    /// running handler's abort handle (server).
    type Call: CallEntry;

    /// The peer, as it appears in messages: `"a client"` or `"the server"`.
    const PEER: &'static str;

    /// Whether dropping the receiving end of a stream before its end cancels its call: a
    /// client's reply stream does, a server's stream argument does not.
    const CANCEL_ON_STREAM_DROP: bool;

    /// How long a frame that has begun to arrive may take to complete (`None`: no limit).
    fn frame_timeout(&self) -> Option<Duration>;

    /// The keepalive interval this side asked for (`None`: no keepalive).
    fn keepalive(&self) -> Option<Duration>;

    /// The largest `SharedBytes` this side accepts in a received payload.
    fn max_shared_bytes(&self) -> u64;

    /// Resolves when this side wants the connection to stop reading (the client was
    /// dropped; the server's shutdown has drained the connection). Created once per
    /// connection, and polled by the read loop between frames.
    fn stopping(engine: &Arc<Engine<Self>>) -> impl Future<Output = Stop> + Send + 'static;

    /// Resolves once this side may read the next frame: the budget checked before each
    /// read. The server waits for room in its outbox (frames read now may be answered at
    /// once with error frames that do not wait for queue space, so a client that never
    /// reads stalls); the client reads always, so that a full outbox on both sides cannot
    /// deadlock.
    fn read_budget(engine: &Engine<Self>) -> impl Future<Output = ()> + Send;

    /// A REQUEST frame, with its share of the budget (to keep until its arguments are
    /// freed).
    fn on_request(
        engine: &Arc<Engine<Self>>,
        frame: Frame,
        held: Held,
    ) -> impl Future<Output = Result<(), Stop>> + Send;

    /// An EARLY_REQUEST frame (protocol version 3): a request the client sent right behind
    /// its hello. Skipped, like any ignorable kind, unless the role serves early requests
    /// (the server, when the hello announced them).
    fn on_early_request(
        engine: &Arc<Engine<Self>>,
        frame: Frame,
        held: Held,
    ) -> impl Future<Output = Result<(), Stop>> + Send {
        let _ = (engine, held);
        async move {
            tracing::debug!(request_id = frame.id, "ignoring an EARLY_REQUEST frame");
            Ok(())
        }
    }

    /// A RESPONSE or ERROR frame.
    /// `handles` came with the frame (closed if nobody takes them).
    fn on_reply(
        engine: &Engine<Self>,
        frame: Frame,
        handles: Vec<crate::handle::Handle>,
    ) -> Result<(), Stop>;

    /// A CANCEL frame.
    fn on_cancel(engine: &Engine<Self>, frame: Frame) -> Result<(), Stop>;

    /// A GOAWAY frame (checked: version 2 or later, id 0) whose highest request id read is
    /// `last_id`.
    fn on_goaway(engine: &Engine<Self>, last_id: u64) -> Result<(), Stop>;

    /// The read loop ended for `stop`: end the calls and close the outbox.
    fn finish(engine: &Engine<Self>, stop: Stop) -> impl Future<Output = ()> + Send;

    /// The writer failed with `err` (the outbox is closed already).
    fn write_failed(engine: &Engine<Self>, err: std::io::Error);
}

/// Why a connection stops reading.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The peer closed the connection, or the stream failed.
    Gone(Error),
    /// The peer broke the protocol.
    Violation(Violation),
    /// The peer closed the connection with a connection-level error (ERROR with id 0).
    Closed(Error),
    /// This side stops: the client was dropped, or the server shuts down.
    Local(Error),
    /// The peer answered no PING within the keepalive interval: a frozen process, or one
    /// that neither sends nor reads. Nothing more is written to it.
    Unresponsive(Error),
}

/// A protocol violation by the peer: what it is told (best effort) and why.
#[derive(Debug)]
pub(crate) struct Violation {
    /// The status of the ERROR frame (id 0) that tells the peer.
    pub(crate) status: StatusCode,
    /// What was wrong, with the values involved.
    pub(crate) message: String,
    /// The codec's error, when the bytes did not decode.
    pub(crate) codec: Option<CodecError>,
}

impl Violation {
    /// The local error for this violation.
    pub(crate) fn into_error(self, what: &str) -> Error {
        match self.codec {
            Some(err) => Error::codec(crate::ErrorKind::Protocol, what, err),
            None => Error::protocol(self.message),
        }
    }
}

impl Stop {
    /// A violation described by `message`.
    pub(crate) fn violation(message: impl Into<String>) -> Stop {
        Stop::Violation(Violation {
            status: StatusCode::PROTOCOL,
            message: message.into(),
            codec: None,
        })
    }

    /// A frame of a kind this side never receives.
    pub(crate) fn unexpected<R: Role>(kind: FrameKind) -> Stop {
        Stop::violation(format!("unexpected {kind:?} frame from {}", R::PEER))
    }

    /// Bytes that are no valid frame.
    pub(crate) fn codec(err: CodecError) -> Stop {
        Stop::Violation(Violation {
            status: err.status(),
            message: crate::ErrorChain::new(&err).to_string(),
            codec: Some(err),
        })
    }
}
