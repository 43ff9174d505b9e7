//! [`Context`]: what a handler may know about the call it serves.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_transport::PeerCredentials;

use crate::server::Shared;

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
    pub(crate) fn new(
        peer: Arc<PeerCredentials>,
        service: &'static str,
        method: &'static str,
        request_id: u64,
        deadline: Option<Instant>,
        server: Arc<Shared>,
    ) -> Self {
        Context {
            peer,
            service,
            method,
            request_id,
            deadline,
            server: Server(server),
        }
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
