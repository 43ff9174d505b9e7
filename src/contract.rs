//! The contract between a service's code and the runtime: a service's identity
//! ([`ServiceInfo`]), its dispatch ([`ServiceDispatch`]), one incoming call ([`Call`]) and
//! what dispatch hands back ([`Handler`]).
//!
//! `#[ferry::service]` writes all of this for a trait: a `{TRAIT}_SERVICE_INFO` constant
//! (the trait's name in upper snake case, e.g. `CALC_SERVICE_INFO` for `Calc`) and a
//! `{Trait}Server` that implements [`ServiceDispatch`]. A service written by hand (as
//! ferry's own [`channel`](crate::channel) is) implements the same trait:
//!
//! ```
//! use ferry::contract::{Call, Handler, ServiceDispatch, ServiceInfo};
//!
//! /// `service Echo { echo((String,))->String; }`
//! const ECHO: ServiceInfo =
//!     ServiceInfo::new("Echo", "service Echo { echo((String,))->String; }", &["echo"]);
//!
//! struct Echo;
//!
//! impl ServiceDispatch for Echo {
//!     fn info(&self) -> &'static ServiceInfo {
//!         &ECHO
//!     }
//!
//!     fn dispatch(&self, method: u16, call: Call) -> Handler {
//!         if method != 0 {
//!             return Handler::unknown_method(method);
//!         }
//!         let (text,) = match call.args::<(String,)>() {
//!             Ok(args) => args,
//!             Err(err) => return Handler::bad_arguments(err),
//!         };
//!         Handler::run(async move { call.reply(&text).await })
//!     }
//! }
//!
//! let server = ferry::Server::new().serve(Echo);
//! # drop(server);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use ferry_codec::{CodecError, FormatId, FrameKind, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::context::Context;
use crate::outbox::{Outbox, QueueError};
use crate::streaming::{pump, Incoming, PumpError, Remote, Streaming};

/// The wire identity of a service: what the handshake checks.
///
/// Made with [`ServiceInfo::new`], which computes the signature hash from the canonical
/// text, so the two always agree.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// The service name a client asks for.
    pub name: &'static str,
    /// FNV-1a 64 hash of [`ServiceInfo::canonical`].
    pub signature: u64,
    /// The canonical signature text (see docs/protocol.md).
    pub canonical: &'static str,
    /// Method names, indexed by their method id.
    pub methods: &'static [&'static str],
}

impl ServiceInfo {
    /// The identity of service `name` whose canonical signature text is `canonical` (see
    /// docs/protocol.md) and whose methods, by index, are `methods`.
    pub const fn new(
        name: &'static str,
        canonical: &'static str,
        methods: &'static [&'static str],
    ) -> ServiceInfo {
        ServiceInfo {
            name,
            signature: ferry_codec::signature_hash(canonical),
            canonical,
            methods,
        }
    }
}

/// Routes calls to a service implementation. Implemented by the generated `{Trait}Server`.
pub trait ServiceDispatch: Send + Sync + 'static {
    /// The service's wire identity.
    fn info(&self) -> &'static ServiceInfo;

    /// Decodes the arguments of `call` for `method` (an index into
    /// [`ServiceInfo::methods`]) and returns the work to run.
    fn dispatch(&self, method: u16, call: Call) -> Handler;
}

/// What a call needs from the connection it came in on to answer it: implemented by the
/// connection engine, so a call knows nothing of the side it runs on.
pub(crate) trait Responder: Send + Sync + 'static {
    /// The payload format of the connection.
    fn format(&self) -> FormatId;
    /// The largest frame body the peer accepts.
    fn peer_max_frame(&self) -> u32;
    /// Where replies are queued.
    fn outbox(&self) -> &Outbox;
    /// Queues an ERROR frame for call `id` without waiting.
    fn send_error(&self, id: u64, status: StatusCode, message: &str);
    /// Opens the receiving end of call `id`'s stream argument and grants its first window.
    fn open_upload(self: Arc<Self>, id: u64) -> Remote;
    /// The credit gate of call `id`'s reply stream.
    fn reply_gate(&self, id: u64) -> Arc<Semaphore>;
}

/// One call as a handler sees it: its arguments, its context and the way to reply.
pub struct Call {
    pub(crate) id: u64,
    pub(crate) args: Bytes,
    pub(crate) context: Context,
    pub(crate) responder: Arc<dyn Responder>,
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("id", &self.id)
            .field("method", &self.context.method())
            .field("args_len", &self.args.len())
            .finish_non_exhaustive()
    }
}

impl Call {
    /// Decodes the arguments tuple in the connection's payload format.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        self.responder.format().decode(&self.args)
    }

    /// The call's context, handed to handlers that ask for it.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Sends `stream` as this call's reply: its items, then its end, paced by the client's
    /// credit.
    pub async fn reply_stream<T: Serialize + Send + 'static>(&self, stream: Streaming<T>) {
        let id = self.id;
        let stream = stream.into_source();
        let responder = &*self.responder;
        let gate = responder.reply_gate(id);
        let sent = pump(
            responder.outbox(),
            id,
            responder.format(),
            responder.peer_max_frame(),
            stream,
            gate,
        )
        .await;
        if let Err(PumpError::Encode(err)) = sent {
            let status = err.status();
            let message = format!("cannot send a stream item: {err}");
            warn!(request_id = id, %message, "stream ended early");
            let status = if status == StatusCode::FRAME_TOO_LARGE {
                status
            } else {
                StatusCode::INTERNAL
            };
            responder.send_error(id, status, &message);
        }
    }

    /// The stream argument of this call, as it arrives from the client.
    pub fn upload<T>(&self) -> Incoming<T> {
        Incoming::new(Arc::clone(&self.responder).open_upload(self.id))
    }

    /// Encodes `value` as this call's reply and queues it. Waits while the connection's write
    /// queue is full. Failures to encode are reported to the client as errors of this call.
    pub async fn reply<T: Serialize + ?Sized>(&self, value: &T) {
        let id = self.id;
        let responder = &*self.responder;
        let queued = crate::engine::send_payload(
            responder.outbox(),
            FrameKind::RESPONSE,
            id,
            responder.format(),
            responder.peer_max_frame(),
            value,
        )
        .await;
        match queued {
            Ok(()) | Err(QueueError::Closed) => {}
            Err(QueueError::Encode(err)) => {
                let status = err.status();
                let (status, message) = if status == StatusCode::FRAME_TOO_LARGE {
                    (status, format!("reply {err}"))
                } else {
                    (
                        StatusCode::INTERNAL,
                        format!("cannot encode the reply: {err}"),
                    )
                };
                warn!(request_id = id, %message, "reply not sent");
                responder.send_error(id, status, &message);
            }
        }
    }
}

/// What [`ServiceDispatch::dispatch`] hands back to the runtime.
pub struct Handler(pub(crate) HandlerKind);

pub(crate) enum HandlerKind {
    /// Run this future; it replies through [`Call::reply`].
    Run(Pin<Box<dyn Future<Output = ()> + Send + 'static>>),
    /// Reply with this error at once.
    Reject(StatusCode, String),
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            HandlerKind::Run(_) => f.write_str("Handler::Run"),
            HandlerKind::Reject(status, message) => f
                .debug_tuple("Handler::Reject")
                .field(status)
                .field(message)
                .finish(),
        }
    }
}

impl Handler {
    /// Runs `work`, which must reply through [`Call::reply`].
    pub fn run(work: impl Future<Output = ()> + Send + 'static) -> Self {
        Handler(HandlerKind::Run(Box::pin(work)))
    }

    /// Rejects the call: its arguments could not be decoded.
    pub fn bad_arguments(err: CodecError) -> Self {
        Handler(HandlerKind::Reject(
            StatusCode::BAD_ARGUMENTS,
            format!("cannot decode arguments: {err}"),
        ))
    }

    /// Rejects the call: the service has no method with this id.
    pub fn unknown_method(method: u16) -> Self {
        Handler(HandlerKind::Reject(
            StatusCode::UNKNOWN_METHOD,
            format!("no method {method}"),
        ))
    }
}
