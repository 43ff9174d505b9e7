//! tower integration (feature `tower`): tower layers ([`tower_layer::Layer`]) on a server
//! ([`Server::layer`](crate::Server::layer)) and around a client's calls
//! ([`Client::layer`](crate::Client::layer)), and a service's dispatch as a
//! [`tower_service::Service`].
//!
//! # On a server
//!
//! A call reaches the stack as a [`CallRequest`] (method, encoded arguments, the
//! [`Context`] with the caller's metadata) and leaves it as a [`CallResponse`] (a status and
//! the encoded return value or the error message). The innermost service is [`Dispatch`]:
//! it decodes the arguments and runs the handler, like a server without layers. A layer can
//! look at a call, answer it itself ([`CallResponse::error`]), bound it in time or in
//! number, or log it; `examples/tower.rs` stacks a timeout, a concurrency limit and a
//! logging layer. A layer that wants the client to learn more than a status (a
//! `retry-after`, an error id) sets reply metadata through a clone of the request's
//! [`Context`] ([`Context::set_reply_metadata`]): it goes with the RESPONSE or the ERROR.
//! [`Handle`]s in the arguments and the result pass through the stack; a
//! layer that drops a call closes the handles that came with it.
//!
//! # Around a client
//!
//! [`Client::layer`](crate::Client::layer) returns a handle whose plain calls pass through
//! the layer: each call enters as a [`ClientRequest`] (the method, its arguments encoded
//! once, the metadata, the deadline) and comes back as a [`ClientResponse`] (the encoded
//! value and the reply metadata) or a [`ferry::Error`](crate::Error). The innermost
//! service is the [`Client`](crate::Client) itself. A typed client goes through the layers
//! when built over the layered handle with `{Trait}Client::from_client`. Without layers a
//! call takes the same path as without the feature.
//!
//! # Errors of layers
//!
//! What a layer fails a call with (the first error of its `source()` chain that ferry
//! recognises) becomes, on a server, the status the client receives, and around a client,
//! the call's [`Error`](crate::Error):
//!
//! | error | server: status sent | client: error |
//! |---|---|---|
//! | [`CallError`] | its status and message | kind [`Middleware`](crate::ErrorKind::Middleware), its status |
//! | a [`ferry::Error`](crate::Error) | its status (`INTERNAL` without one) and message | that error |
//! | a timeout: `tower::timeout::error::Elapsed`, `tokio::time::error::Elapsed`, an I/O error of kind `TimedOut` | `DEADLINE_EXCEEDED` | kind [`DeadlineExceeded`](crate::ErrorKind::DeadlineExceeded) |
//! | `tower::load_shed::error::Overloaded` | `OVERLOADED` (retry later) | kind [`Rejected`](crate::ErrorKind::Rejected), status `OVERLOADED` |
//! | anything else | `INTERNAL`, with the error's text | kind [`Middleware`](crate::ErrorKind::Middleware) |
//!
//! A concurrency or rate limit makes calls wait, it fails none; put a load-shed layer
//! outside it to refuse calls instead (`OVERLOADED`).
//!
//! ```
//! use std::task::{Context, Poll};
//! use ferry::tower::{CallRequest, CallResponse};
//!
//! /// Refuses calls without an `auth` metadata entry.
//! #[derive(Clone)]
//! struct RequireAuth<S>(S);
//!
//! impl<S> tower_service::Service<CallRequest> for RequireAuth<S>
//! where
//!     S: tower_service::Service<CallRequest, Response = CallResponse>,
//!     S::Future: Send + 'static,
//!     S::Error: 'static,
//! {
//!     type Response = CallResponse;
//!     type Error = S::Error;
//!     type Future = futures::future::BoxFuture<'static, Result<CallResponse, S::Error>>;
//!
//!     fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
//!         self.0.poll_ready(cx)
//!     }
//!
//!     fn call(&mut self, request: CallRequest) -> Self::Future {
//!         if request.metadata().get("auth").is_none() {
//!             let refused = CallResponse::error(ferry::StatusCode::NOT_AUTHORIZED, "no auth");
//!             return Box::pin(async move { Ok(refused) });
//!         }
//!         Box::pin(self.0.call(request))
//!     }
//! }
//!
//! struct AuthLayer;
//! impl<S> tower_layer::Layer<S> for AuthLayer {
//!     type Service = RequireAuth<S>;
//!     fn layer(&self, inner: S) -> RequireAuth<S> {
//!         RequireAuth(inner)
//!     }
//! }
//!
//! # #[ferry::service] pub trait Calc { async fn add(&self, a: i64, b: i64) -> i64; }
//! # struct MyCalc;
//! # impl Calc for MyCalc { async fn add(&self, a: i64, b: i64) -> i64 { a + b } }
//! let server = ferry::Server::new().layer(AuthLayer).serve(CalcServer::new(MyCalc));
//! # drop(server);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use ferry_codec::{Metadata, StatusCode};
use tower_layer::Layer;
use tower_service::Service;
use tracing::debug;

mod boxed;
mod client;
mod status;

pub(crate) use client::ClientStack;
pub use client::{BoxClientService, ClientRequest, ClientResponse};
pub(crate) use status::client_error;

use crate::capture::Captured;
use crate::context::Context;
use crate::contract::{Call, Handler, HandlerKind, ServiceDispatch, ServiceInfo};
use crate::handle::Handle;
use boxed::Boxed;

/// The error type of a layered stack: whatever a layer fails with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A boxed future of a [`CallResponse`].
pub type CallFuture = Pin<Box<dyn Future<Output = Result<CallResponse, BoxError>> + Send>>;

/// One call on its way through a server's tower stack.
pub struct CallRequest {
    method: u16,
    call: Call,
}

impl fmt::Debug for CallRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallRequest")
            .field("service", &self.service())
            .field("method", &self.method())
            .field("request_id", &self.call.id)
            .finish_non_exhaustive()
    }
}

impl CallRequest {
    /// The service name.
    pub fn service(&self) -> &'static str {
        self.call.context.service()
    }

    /// The method name.
    pub fn method(&self) -> &'static str {
        self.call.context.method()
    }

    /// The method index (the REQUEST's `aux`).
    pub fn method_index(&self) -> u16 {
        self.method
    }

    /// The encoded arguments (the connection's payload format).
    pub fn args(&self) -> Bytes {
        self.call.encoded_bytes()
    }

    /// The call's context: caller, deadline, metadata.
    pub fn context(&self) -> &Context {
        &self.call.context
    }

    /// The metadata the client sent with the call.
    pub fn metadata(&self) -> &Metadata {
        self.call.context.metadata()
    }
}

/// What a server's tower stack answers for one call.
#[derive(Clone, Debug)]
pub struct CallResponse {
    status: StatusCode,
    body: Bytes,
    streamed: bool,
    /// The handles the encoded return value names by index (`docs/protocol.md` 8.4).
    handles: Option<Arc<[Handle]>>,
}

impl CallResponse {
    /// A successful reply whose return value is already encoded in the connection's
    /// payload format.
    pub fn ok(body: Bytes) -> Self {
        CallResponse {
            status: StatusCode::OK,
            body,
            streamed: false,
            handles: None,
        }
    }

    /// A failed call: the client receives an ERROR with `status` and `message`.
    pub fn error(status: StatusCode, message: impl Into<String>) -> Self {
        CallResponse {
            status,
            body: Bytes::from(message.into()),
            streamed: false,
            handles: None,
        }
    }

    /// The status: [`StatusCode::OK`] for a reply.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The encoded return value (status OK) or the UTF-8 error message.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The handles that go with the reply: those the handler's return value holds
    /// ([`Handle`]s), which the encoded body names by index.
    pub(crate) fn handles(&self) -> &[Handle] {
        self.handles.as_deref().unwrap_or_default()
    }

    /// Whether the handler answered with a stream, sent directly to the client as it was
    /// produced (stream items do not pass through the stack).
    pub fn is_streamed(&self) -> bool {
        self.streamed
    }
}

/// An error a layer returns to answer the call with a status of its choosing. Other errors
/// of a server's stack are answered as the table of the [module docs](self#errors-of-layers)
/// says: a timeout layer's with `DEADLINE_EXCEEDED`, a load-shedding layer's with
/// `OVERLOADED`, anything else with `INTERNAL` and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    status: StatusCode,
    message: String,
}

impl CallError {
    /// An error the client sees with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        CallError {
            status,
            message: message.into(),
        }
    }

    /// The status the client sees.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CallError {}

/// A service's dispatch as a tower service: decodes the arguments, runs the handler and
/// hands back its reply. The innermost service of every server stack.
#[derive(Clone)]
pub struct Dispatch {
    service: Arc<dyn ServiceDispatch>,
}

impl fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatch")
            .field("service", &self.service.info().name)
            .finish()
    }
}

impl Dispatch {
    /// The dispatch of `service` (a generated `{Trait}Server`).
    pub fn new(service: impl ServiceDispatch) -> Self {
        Dispatch {
            service: Arc::new(service),
        }
    }

    fn from_arc(service: Arc<dyn ServiceDispatch>) -> Self {
        Dispatch { service }
    }
}

impl Service<CallRequest> for Dispatch {
    type Response = CallResponse;
    type Error = BoxError;
    type Future = CallFuture;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: CallRequest) -> CallFuture {
        let CallRequest { method, mut call } = request;
        let capture = Arc::clone(call.capture.get_or_insert_with(Default::default));
        let Handler(kind) = self.service.dispatch(method, call);
        Box::pin(async move {
            match kind {
                HandlerKind::Reject(status, message) => Ok(CallResponse::error(status, message)),
                HandlerKind::Run(work) => {
                    work.await;
                    Ok(match capture.take() {
                        Captured::Value(body, handles) => CallResponse {
                            handles: (!handles.is_empty()).then(|| handles.into()),
                            ..CallResponse::ok(body)
                        },
                        Captured::Error(status, message) => CallResponse::error(status, message),
                        Captured::Streamed => CallResponse {
                            streamed: true,
                            ..CallResponse::ok(Bytes::new())
                        },
                        Captured::Waiting => CallResponse::error(
                            StatusCode::INTERNAL,
                            "the handler ended without a reply",
                        ),
                    })
                }
            }
        })
    }
}

/// A type-erased, cloneable server stack.
pub struct BoxCallService(Boxed<CallRequest, CallResponse>);

impl fmt::Debug for BoxCallService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxCallService")
    }
}

impl BoxCallService {
    /// Boxes `service`.
    pub fn new<S>(service: S) -> Self
    where
        S: Service<CallRequest, Response = CallResponse> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        BoxCallService(Boxed::new(service))
    }
}

impl Clone for BoxCallService {
    fn clone(&self) -> Self {
        BoxCallService(self.0.clone())
    }
}

impl Service<CallRequest> for BoxCallService {
    type Response = CallResponse;
    type Error = BoxError;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: CallRequest) -> CallFuture {
        self.0.call(request)
    }
}

/// Wraps a stack around the dispatch of each service of a server.
pub(crate) type Stack = Arc<dyn Fn(BoxCallService) -> BoxCallService + Send + Sync>;

/// `stack` then `layer` (the new layer is outermost).
pub(crate) fn push_layer<L>(stack: Option<Stack>, layer: L) -> Stack
where
    L: Layer<BoxCallService> + Send + Sync + 'static,
    L::Service: Service<CallRequest, Response = CallResponse> + Clone + Send + 'static,
    <L::Service as Service<CallRequest>>::Error: Into<BoxError>,
    <L::Service as Service<CallRequest>>::Future: Send + 'static,
{
    Arc::new(move |inner: BoxCallService| {
        let inner = match &stack {
            Some(stack) => stack(inner),
            None => inner,
        };
        BoxCallService::new(layer.layer(inner))
    })
}

/// A service whose calls pass through a tower stack: what [`Server::layer`](crate::Server::layer)
/// makes of each service.
pub(crate) struct Layered {
    info: &'static ServiceInfo,
    /// Cloned for each call (layers need not be `Sync`).
    stack: Mutex<BoxCallService>,
}

impl Layered {
    pub(crate) fn new(service: Arc<dyn ServiceDispatch>, stack: &Stack) -> Self {
        let info = service.info();
        Layered {
            info,
            stack: Mutex::new(stack(BoxCallService::new(Dispatch::from_arc(service)))),
        }
    }
}

impl ServiceDispatch for Layered {
    fn info(&self) -> &'static ServiceInfo {
        self.info
    }

    fn dispatch(&self, method: u16, call: Call) -> Handler {
        // A panic while holding this lock leaves a valid stack.
        let mut stack = self
            .stack
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        let method_name = call.context.method();
        let info = self.info;
        Handler::run(async move {
            let replier = call.replier();
            let request = CallRequest { method, call };
            let answered = async {
                std::future::poll_fn(|cx| Service::poll_ready(&mut stack, cx)).await?;
                Service::call(&mut stack, request).await
            };
            let response = match answered.await {
                Ok(response) => response,
                Err(err) => {
                    let (status, message) = status::server_reply(&err, info.name, method_name);
                    debug!(%status, %message, error = %crate::ErrorChain::new(&*err), "a layer failed the call");
                    CallResponse::error(status, message)
                }
            };
            replier.send(response).await;
        })
    }
}
