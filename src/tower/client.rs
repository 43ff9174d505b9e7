//! tower layers around a client's calls: [`ClientRequest`], [`ClientResponse`], a
//! [`Client`] as the innermost service, and [`BoxClientService`], the type-erased stack
//! that [`Client::layer`] keeps.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use ferry_codec::Metadata;
use futures::future::BoxFuture;
use tower_service::Service;

use super::boxed::Boxed;
use super::BoxError;
use crate::client::Client;
use crate::contract::MethodRef;
use crate::error::Error;
use crate::handle::Handle;

/// One call on its way through the layers around a client ([`Client::layer`]): the
/// method, its arguments **already encoded** (a layer that retries sends the same bytes
/// again; the arguments are not encoded twice), the metadata and the deadline.
///
/// Cheap to clone (the bytes are shared), as retry layers need.
#[derive(Clone)]
pub struct ClientRequest {
    method: MethodRef,
    args: Bytes,
    /// The handles the encoded arguments name by index (`docs/protocol.md` 8.4).
    handles: Option<Arc<[Handle]>>,
    metadata: Metadata,
    timeout: Option<Duration>,
}

impl fmt::Debug for ClientRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRequest")
            .field("service", &self.service())
            .field("method", &self.method_name())
            .field("args_len", &self.args.len())
            .field("handles", &self.handles().len())
            .field("metadata", &self.metadata)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ClientRequest {
    pub(crate) fn new(
        method: MethodRef,
        args: Bytes,
        handles: Vec<Handle>,
        metadata: Metadata,
        timeout: Option<Duration>,
    ) -> Self {
        ClientRequest {
            method,
            args,
            handles: (!handles.is_empty()).then(|| handles.into()),
            metadata,
            timeout,
        }
    }

    /// The method called.
    pub fn method(&self) -> MethodRef {
        self.method
    }

    /// The name of the method called.
    pub fn method_name(&self) -> &'static str {
        self.method.name()
    }

    /// The name of the service called.
    pub fn service(&self) -> &'static str {
        self.method.service().name
    }

    /// The encoded arguments (the connection's payload format).
    pub fn args(&self) -> &Bytes {
        &self.args
    }

    /// The handles the arguments hold ([`Handle`]s, sent with the request).
    pub(crate) fn handles(&self) -> &[Handle] {
        self.handles.as_deref().unwrap_or_default()
    }

    /// The metadata sent with the call (empty for none).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The metadata sent with the call, for a layer to add to (an auth token, a trace id).
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// The call's deadline, sent to the server and enforced on the client: the handle's
    /// timeout ([`Client::with_timeout`]) when the call entered the layers.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Sets the call's deadline (for example what is left of it before a retry).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }
}

/// The server's reply to a [`ClientRequest`]: the encoded return value and the reply
/// metadata. A failed call is an `Err(`[`ferry::Error`](crate::Error)`)` instead (its
/// [`reply_metadata`](crate::Error::reply_metadata) holds the ERROR's metadata).
pub struct ClientResponse {
    body: Bytes,
    /// The handles the encoded value names by index.
    handles: Vec<Handle>,
    metadata: Metadata,
}

impl fmt::Debug for ClientResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientResponse")
            .field("body_len", &self.body.len())
            .field("handles", &self.handles.len())
            .field("metadata", &self.metadata)
            .finish()
    }
}

impl ClientResponse {
    pub(crate) fn new(body: Bytes, handles: Vec<Handle>, metadata: Metadata) -> Self {
        ClientResponse {
            body,
            handles,
            metadata,
        }
    }

    /// The encoded return value (the connection's payload format).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The metadata the server sent with the reply (empty for none).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    pub(crate) fn into_parts(self) -> (Bytes, Vec<Handle>, Metadata) {
        (self.body, self.handles, self.metadata)
    }
}

/// A client is the innermost service of the layers around it: it sends the request on its
/// connection and waits for the reply. A client that has layers ([`Client::layer`]) sends
/// through them.
impl Service<ClientRequest> for Client {
    type Response = ClientResponse;
    type Error = Error;
    type Future = BoxFuture<'static, Result<ClientResponse, Error>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ClientRequest) -> Self::Future {
        let client = self.clone();
        Box::pin(async move {
            match client.stack() {
                Some(stack) => {
                    let method = request.method_name();
                    stack
                        .send(request)
                        .await
                        .map_err(|err| super::status::client_error(err, method))
                }
                None => client.send_encoded(request).await,
            }
        })
    }
}

/// A type-erased, cloneable stack of layers around a client.
pub struct BoxClientService(Boxed<ClientRequest, ClientResponse>);

impl fmt::Debug for BoxClientService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxClientService")
    }
}

type ClientFuture = BoxFuture<'static, Result<ClientResponse, BoxError>>;

impl BoxClientService {
    /// Boxes `service`.
    pub fn new<S>(service: S) -> Self
    where
        S: Service<ClientRequest, Response = ClientResponse> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        BoxClientService(Boxed::new(service))
    }
}

impl Clone for BoxClientService {
    fn clone(&self) -> Self {
        BoxClientService(self.0.clone())
    }
}

impl Service<ClientRequest> for BoxClientService {
    type Response = ClientResponse;
    type Error = BoxError;
    type Future = ClientFuture;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: ClientRequest) -> ClientFuture {
        self.0.call(request)
    }
}

/// The layers of a client ([`Client::layer`]), shared by its clones.
pub(crate) struct ClientStack {
    /// Cloned for each call (layers need not be `Sync`).
    service: Mutex<BoxClientService>,
}

impl ClientStack {
    pub(crate) fn new(service: BoxClientService) -> Self {
        ClientStack {
            service: Mutex::new(service),
        }
    }

    /// A clone of the stack, for one call or for a new layer on top.
    pub(crate) fn service(&self) -> BoxClientService {
        // A panic while holding this lock leaves a valid stack.
        self.service
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Sends `request` through the layers.
    pub(crate) async fn send(&self, request: ClientRequest) -> Result<ClientResponse, BoxError> {
        let mut service = self.service();
        std::future::poll_fn(|cx| Service::poll_ready(&mut service, cx)).await?;
        Service::call(&mut service, request).await
    }
}
