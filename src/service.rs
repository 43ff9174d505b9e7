//! The contract between generated code and the runtime: a service's identity
//! ([`ServiceInfo`]), its dispatch ([`ServiceDispatch`]), one incoming call ([`Call`]) and
//! what dispatch hands back ([`Handler`]).
//!
//! These items are public only so that `#[ferry::service]` expansions can name them through
//! `ferry::__private`; they are not part of ferry's stable API.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use ferry_codec::{CodecError, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::context::Context;
use crate::server::connection::Connection;
use crate::streaming::Streaming;

/// The wire identity of a service: what the handshake checks.
#[derive(Debug)]
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

/// Routes calls to a service implementation. Implemented by the generated `{Trait}Server`.
pub trait ServiceDispatch: Send + Sync + 'static {
    /// The service's wire identity.
    fn info(&self) -> &'static ServiceInfo;

    /// Decodes the arguments of `call` for `method` and returns the work to run.
    fn dispatch(&self, method: u16, call: Call) -> Handler;
}

/// One call as a handler sees it: its arguments, its context and the way to reply.
pub struct Call {
    pub(crate) id: u64,
    pub(crate) args: Bytes,
    pub(crate) context: Context,
    pub(crate) connection: Arc<Connection>,
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
        self.connection.format.decode(&self.args)
    }

    /// The call's context, handed to handlers that ask for it.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Sends `stream` as this call's reply: its items, then its end, paced by the client's
    /// credit.
    pub async fn reply_stream<T: Serialize + Send + 'static>(&self, stream: Streaming<T>) {
        self.connection.reply_stream(self.id, stream).await;
    }

    /// The stream argument of this call, as it arrives from the client.
    pub fn upload<T>(&self) -> Streaming<T> {
        Streaming::remote(self.connection.upload(self.id))
    }

    /// Encodes `value` as this call's reply and queues it. Waits while the connection's write
    /// queue is full. Failures to encode are reported to the client as errors of this call.
    pub async fn reply<T: Serialize + ?Sized>(&self, value: &T) {
        self.connection.reply(self.id, value).await;
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
