//! [`Context`]: what a handler may know about the call it serves.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_codec::{Metadata, MetadataError, MetadataValue};
use ferry_transport::PeerCredentials;

use crate::metadata::ReplyState;
use crate::server::Shared;

/// The metadata of a call that has none.
static NO_METADATA: Metadata = Metadata::new();

/// Information about one call, passed to handlers that take `cx: &ferry::Context` as their
/// first argument after `&self`.
///
/// ```
/// #[ferry::service]
/// pub trait Whoami {
///     async fn pid(&self, cx: &ferry::Context) -> Option<u32>;
/// }
///
/// struct Impl;
/// impl Whoami for Impl {
///     async fn pid(&self, cx: &ferry::Context) -> Option<u32> {
///         cx.peer().pid()
///     }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Context {
    peer: Arc<PeerCredentials>,
    service: &'static str,
    method: &'static str,
    request_id: u64,
    deadline: Option<Instant>,
    /// The metadata the client sent with the call (protocol version 3), if any.
    metadata: Option<Arc<Metadata>>,
    /// What the handler puts in the reply besides its value: metadata, and the status
    /// sent (for the call's log line and metrics).
    pub(crate) reply: Arc<ReplyState>,
    /// The server, for its shutdown signal.
    server: Server,
}

/// The server a call runs on, as a [`Context`] sees it.
#[derive(Clone)]
struct Server(Arc<Shared>);

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("shutting_down", &self.0.is_shutting_down())
            .finish_non_exhaustive()
    }
}

impl Context {
    // One per field the server fills in from its request.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        peer: Arc<PeerCredentials>,
        service: &'static str,
        method: &'static str,
        request_id: u64,
        deadline: Option<Instant>,
        metadata: Option<Metadata>,
        reply: Arc<ReplyState>,
        server: Arc<Shared>,
    ) -> Self {
        Context {
            peer,
            service,
            method,
            request_id,
            deadline,
            metadata: metadata.map(Arc::new),
            reply,
            server: Server(server),
        }
    }

    /// The metadata the client sent with this call (empty when it sent none, or speaks a
    /// protocol version older than 3).
    ///
    /// ```
    /// #[ferry::service]
    /// pub trait Greeter {
    ///     async fn hello(&self, cx: &ferry::Context) -> String;
    /// }
    ///
    /// struct Impl;
    /// impl Greeter for Impl {
    ///     async fn hello(&self, cx: &ferry::Context) -> String {
    ///         match cx.metadata().get_str("locale") {
    ///             Some("fr") => "bonjour".into(),
    ///             _ => "hello".into(),
    ///         }
    ///     }
    /// }
    /// ```
    pub fn metadata(&self) -> &Metadata {
        self.metadata.as_deref().unwrap_or(&NO_METADATA)
    }

    /// The W3C trace context the client sent (metadata key `traceparent`), when it sent a
    /// valid one: see [`ClientOptions::propagate_trace`](crate::ClientOptions::propagate_trace).
    /// The call's span records its trace id (`trace_id`) and the caller's span id
    /// (`parent_id`).
    pub fn trace_parent(&self) -> Option<crate::TraceParent> {
        crate::TraceParent::from_metadata(self.metadata())
    }

    /// Sets `key` to `value` in the metadata of this call's reply (sent with its RESPONSE
    /// when the client speaks protocol version 3, dropped otherwise; a client reads it with
    /// [`Client::call_with_reply_metadata`](crate::Client::call_with_reply_metadata)). Set it
    /// before the handler returns. A call that fails after that (its handler panics or
    /// passes its deadline, or a server layer fails it) sends it with its ERROR, where the
    /// client reads it with [`Error::reply_metadata`](crate::Error::reply_metadata).
    ///
    /// # Errors
    ///
    /// An invalid key, or reply metadata that would exceed the server's
    /// [`ServerOptions::metadata_limits`](crate::ServerOptions::metadata_limits) (the value
    /// is then not set).
    pub fn set_reply_metadata(
        &self,
        key: &str,
        value: impl Into<MetadataValue>,
    ) -> Result<(), MetadataError> {
        self.reply.insert(key, value.into())
    }

    /// Who is calling: process id, and user/group ids (Unix) or user SID (Windows), as the
    /// operating system reported them when the connection was accepted.
    pub fn peer(&self) -> &PeerCredentials {
        &self.peer
    }

    /// The service name of this call.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The method name of this call.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The request id the client chose for this call.
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// When the client stops waiting for the reply, if it set a deadline. ferry cancels the
    /// handler at that instant; a handler can use it to skip work that would come too late.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left until [`Context::deadline`], or `None` when the call has no deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Whether the server has begun a graceful shutdown.
    pub fn is_shutting_down(&self) -> bool {
        self.server.0.is_shutting_down()
    }

    /// Resolves when the server begins a graceful shutdown (at once if it has). The server
    /// then gives calls in flight its grace period
    /// ([`ServerOptions::shutdown_grace`](crate::ServerOptions::shutdown_grace)) to finish
    /// and cuts the rest; a long call or a stream that ends itself on this signal lets the
    /// server stop sooner, and its client gets a clean end instead of an error. The future
    /// owns what it needs (it does not borrow the context), so a reply stream can hold it.
    ///
    /// ```
    /// use futures::StreamExt;
    ///
    /// #[ferry::service]
    /// pub trait Progress {
    ///     async fn watch(&self, cx: &ferry::Context) -> ferry::Streaming<u64>;
    /// }
    ///
    /// struct Impl;
    /// impl Progress for Impl {
    ///     async fn watch(&self, cx: &ferry::Context) -> ferry::Streaming<u64> {
    ///         let ticks = futures::stream::iter(0u64..).then(|n| async move {
    ///             tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    ///             n
    ///         });
    ///         // Ends the stream cleanly when the server begins to shut down.
    ///         ferry::Streaming::new(ticks.take_until(cx.shutdown()))
    ///     }
    /// }
    /// ```
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut shutdown = self.server.0.shutdown.subscribe();
        async move {
            // The server is gone without a shutdown: never resolves.
            if shutdown.wait_for(|down| *down).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
