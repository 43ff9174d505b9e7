//! [`Client`]: one connection to a service, shared by any number of concurrent calls.

mod binding;
mod connection;
mod early;
mod options;
mod reconnect;
mod waiter;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_codec::Metadata;
use ferry_transport::{Name, Stream, ToName};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::contract::{MethodRef, ServiceInfo};
use crate::error::{Error, ErrorKind};
use crate::streaming::{Incoming, Streaming};
use crate::trace::{TraceParent, TRACEPARENT};

use connection::Connection as Shared;
pub use options::ClientOptions;
pub use reconnect::Reconnect;
use reconnect::Reconnector;

/// An untyped client: the connection under every generated `{Trait}Client`.
///
/// Cheap to clone; clones share the connection. When the last clone is dropped the
/// connection closes. Users normally hold the generated typed client instead.
#[derive(Clone)]
pub struct Client {
    link: Link,
    /// The deadline of each call made through this handle.
    timeout: Option<Duration>,
    /// The metadata sent with each call made through this handle.
    metadata: Option<Arc<Metadata>>,
    /// Whether each call carries a `traceparent` ([`ClientOptions::propagate_trace`]).
    propagate_trace: bool,
    /// The tower layers each plain call passes through ([`Client::layer`]).
    #[cfg(feature = "tower")]
    stack: Option<Arc<crate::tower::ClientStack>>,
}

/// How a client reaches its connection.
#[derive(Clone)]
enum Link {
    /// One connection for the client's life.
    Fixed {
        shared: Arc<Shared>,
        /// Closes the connection when the last clone goes.
        _owner: Arc<connection::Owner>,
    },
    /// A slot whose connection is replaced when it closes ([`ClientOptions::reconnect`]).
    Reconnecting(Arc<Reconnector>),
    /// One connection whose handshake may still be under way, and whose first call may
    /// go out early ([`ClientOptions::early_requests`]).
    Early(Arc<early::Handshaking>),
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (service, address) = match (&self.link, self.current()) {
            (_, Some(shared)) => (shared.role.service.name, shared.role.address.clone()),
            (Link::Early(link), None) => (link.service.name, link.address.clone()),
            (_, None) => ("", String::new()),
        };
        f.debug_struct("Client")
            .field("service", &service)
            .field("address", &address)
            .field("timeout", &self.timeout)
            .field("metadata", &self.metadata)
            .field("closed", &self.is_closed())
            .field("reconnects", &matches!(self.link, Link::Reconnecting(_)))
            .finish()
    }
}

impl Client {
    /// Connects to `name` and runs the handshake for `service`.
    pub async fn connect(
        name: impl ToName,
        service: &'static ServiceInfo,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let name = name
            .to_name()
            .map_err(|err| Error::transport(ErrorKind::Connect, "cannot connect", err))?;
        let stream = ferry_transport::connect_with(&name, &options.connect)
            .await
            .map_err(Error::connect)?;
        let Some(policy) = &options.reconnect else {
            return Client::start(stream, Some(&name), service, options).await;
        };
        // A reconnecting client waits for each handshake (its dialling loop needs it).
        let (shared, owner) = connection::open(stream, Some(&name), service, options).await?;
        let reconnector = Reconnector::start(name, service, options, policy.clone(), shared, owner);
        Ok(Client {
            link: Link::Reconnecting(reconnector),
            timeout: options.timeout,
            metadata: None,
            propagate_trace: options.propagate_trace,
            #[cfg(feature = "tower")]
            stack: None,
        })
    }

    /// Runs the handshake for `service` on an already connected stream.
    pub async fn from_stream(
        stream: Stream,
        service: &'static ServiceInfo,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        Client::start(stream, None, service, options).await
    }

    async fn start(
        stream: Stream,
        name: Option<&Name>,
        service: &'static ServiceInfo,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        if options.early_requests {
            let link = early::open(stream, name, service, options).await?;
            return Ok(Client {
                link: Link::Early(link),
                timeout: options.timeout,
                metadata: None,
                propagate_trace: options.propagate_trace,
                #[cfg(feature = "tower")]
                stack: None,
            });
        }
        let (shared, owner) = connection::open(stream, name, service, options).await?;
        Ok(Client {
            link: Link::Fixed {
                shared,
                _owner: Arc::new(owner),
            },
            timeout: options.timeout,
            metadata: None,
            propagate_trace: options.propagate_trace,
            #[cfg(feature = "tower")]
            stack: None,
        })
    }

    /// A handle on the same connection whose calls have `timeout` as their deadline.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// The deadline applied to each call made through this handle, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// A handle on the same connection whose calls carry `metadata` (replacing what this
    /// handle carried; an empty map sends none). The server reads it with
    /// [`Context::metadata`](crate::Context::metadata).
    ///
    /// Metadata needs protocol version 3 on the connection: to an older server it is not
    /// sent (the call goes without it, with a debug line); see
    /// [`Client::supports_metadata`]. Metadata beyond
    /// [`ClientOptions::metadata_limits`] fails the call at once, unsent, with
    /// [`ErrorKind::Usage`]. A call with metadata is never sent as an early request
    /// ([`ClientOptions::early_requests`]): it waits for the handshake.
    ///
    /// ```no_run
    /// # async fn demo(client: ferry::Client, hello: ferry::contract::MethodRef)
    /// #     -> Result<(), ferry::Error> {
    /// let mut md = ferry::Metadata::new();
    /// md.insert("locale", "fr").expect("a valid key");
    /// let french = client.with_metadata(md);
    /// let greeting: String = french.call(hello, &()).await?;
    /// # Ok(()) }
    /// ```
    pub fn with_metadata(&self, metadata: Metadata) -> Client {
        Client {
            metadata: (!metadata.is_empty()).then(|| Arc::new(metadata)),
            ..self.clone()
        }
    }

    /// The metadata sent with each call made through this handle, if any.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_deref()
    }

    /// The metadata of the next call: the handle's, with a `traceparent` when the client
    /// propagates traces and the handle's metadata has none.
    fn call_metadata(&self) -> Option<Cow<'_, Metadata>> {
        let own = self.metadata.as_deref();
        if !self.propagate_trace || own.is_some_and(|md| md.get(TRACEPARENT).is_some()) {
            return own.map(Cow::Borrowed);
        }
        let mut metadata = own.cloned().unwrap_or_default();
        TraceParent::for_call().insert_into(&mut metadata);
        Some(Cow::Owned(metadata))
    }

    /// Whether the connection carries metadata: the server speaks protocol version 3 or
    /// later (`false` while the handshake of a client with
    /// [`ClientOptions::early_requests`] is still under way).
    pub fn supports_metadata(&self) -> bool {
        self.current()
            .is_some_and(|shared| shared.version >= ferry_codec::METADATA_VERSION)
    }

    /// Whether the connection is closed. Without [`ClientOptions::reconnect`] every further
    /// call fails with [`ErrorKind::Closed`]; with it, the client is reconnecting.
    ///
    /// With [`ClientOptions::early_requests`], `false` while the handshake is under way and
    /// `true` once it failed.
    pub fn is_closed(&self) -> bool {
        match &self.link {
            Link::Early(link) => match link.now() {
                Ok(None) => false,
                Ok(Some(shared)) => shared.is_closed(),
                Err(_) => true,
            },
            _ => self.current().is_some_and(|shared| shared.is_closed()),
        }
    }

    /// The largest frame body the server accepts, as it said in the handshake (with
    /// [`ClientOptions::early_requests`], `0` until the handshake is over).
    pub fn server_max_frame(&self) -> u32 {
        self.current().map_or(0, |shared| shared.peer_max_frame)
    }

    /// The connection now in use (for a reconnecting client, the newest one; for an early
    /// one, `None` until its handshake accepted it).
    fn current(&self) -> Option<Arc<Shared>> {
        match &self.link {
            Link::Fixed { shared, .. } => Some(Arc::clone(shared)),
            Link::Reconnecting(reconnector) => Some(reconnector.current()),
            Link::Early(link) => link.now().ok().flatten(),
        }
    }

    /// Calls `method` with `args` (a tuple) and decodes the reply as `R`.
    ///
    /// `method` comes from the service's [`ServiceInfo`] ([`ServiceInfo::method`]); it must
    /// belong to this client's service (else [`ErrorKind::Usage`], unsent). The client sends
    /// it under the server's own index for the method (see [`MethodRef`]).
    ///
    /// Dropping the returned future before it completes cancels the call on the server.
    /// A call in flight when the connection closes fails with [`ErrorKind::Closed`] and is
    /// never sent again by itself, even by a reconnecting client: it may have run. Once the
    /// server has begun a graceful shutdown (it said GOAWAY), calls fail with
    /// [`ErrorKind::ShuttingDown`] instead when they did not run: new ones at once, without
    /// being sent, and those the server had not read when it closed.
    pub async fn call<A, R>(&self, method: MethodRef, args: &A) -> Result<R, Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        #[cfg(feature = "tower")]
        if let Some(stack) = &self.stack {
            // Boxed: the future of a plain call stays as small as without layers.
            let layered = Box::pin(self.call_layered(stack, method, args));
            return layered.await.map(|(value, _)| value);
        }
        let metadata = self.call_metadata();
        // The common case first: the connection is there, nothing to wait for.
        if let Some(shared) = self.open_now() {
            return shared
                .call(method, args, self.timeout, metadata.as_deref())
                .await;
        }
        // An early request carries no metadata: a call with metadata waits for the Welcome.
        if let (Link::Early(link), None) = (&self.link, &metadata) {
            if link.open().is_none() {
                return self.early_call(link, method, args).await;
            }
        }
        let (shared, timeout) = self.ready().await?;
        shared
            .call(method, args, timeout, metadata.as_deref())
            .await
    }

    /// Like [`Client::call`], and also returns the metadata the server's handler set for
    /// the reply ([`Context::set_reply_metadata`](crate::Context::set_reply_metadata));
    /// empty when it set none or the server speaks a protocol version before 3.
    pub async fn call_with_reply_metadata<A, R>(
        &self,
        method: MethodRef,
        args: &A,
    ) -> Result<(R, Metadata), Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        #[cfg(feature = "tower")]
        if let Some(stack) = &self.stack {
            return Box::pin(self.call_layered(stack, method, args)).await;
        }
        let (shared, timeout) = self.ready().await?;
        let (value, metadata) = shared
            .call_with_upload::<A, R, ()>(
                method,
                args,
                timeout,
                self.call_metadata().as_deref(),
                None,
            )
            .await?;
        Ok((value, metadata.unwrap_or_default()))
    }

    /// A call on a connection whose handshake may be under way: sent as its early request
    /// when it can be, else (or when the server did not run it) as usual.
    async fn early_call<A, R>(
        &self,
        link: &early::Handshaking,
        method: MethodRef,
        args: &A,
    ) -> Result<R, Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        // The client's own index, for a server of the same signature (see `early`).
        method.check_service(link.service)?;
        let start = Instant::now();
        let early = connection::within_deadline(self.timeout, async {
            Ok(link.early_call(method.index(), args, self.timeout).await)
        })
        .await?;
        if let Some(result) = early {
            return result;
        }
        let (shared, timeout) = self.ready().await?;
        let timeout = timeout.map(|timeout| timeout.saturating_sub(start.elapsed()));
        if timeout == Some(Duration::ZERO) {
            return Err(Error::deadline(self.timeout.unwrap_or_default()));
        }
        shared.call(method, args, timeout, None).await
    }

    /// Calls `method`, whose reply is a stream of `T`. Returns as soon as the request
    /// is sent; the items, and any failure of the call, arrive through the stream. Dropping
    /// the stream cancels the call on the server.
    pub async fn call_streaming<A, T>(
        &self,
        method: MethodRef,
        args: &A,
    ) -> Result<Incoming<T>, Error>
    where
        A: Serialize + ?Sized,
    {
        let (shared, timeout) = self.ready().await?;
        shared
            .call_streaming(method, args, timeout, self.call_metadata().as_deref())
            .await
    }

    /// Calls `method`, whose reply is `Result<Streaming<T>, E>`: waits for the
    /// server's first reply, then returns its error `E`, or the stream of `T`. Failures of
    /// the call after that (the stream's source failed, the connection closed) arrive
    /// through the stream. Dropping the stream cancels the call on the server.
    pub async fn call_streaming_result<A, T, E>(
        &self,
        method: MethodRef,
        args: &A,
    ) -> Result<Result<Incoming<T>, E>, Error>
    where
        A: Serialize + ?Sized,
        E: DeserializeOwned,
    {
        let (shared, timeout) = self.ready().await?;
        shared
            .call_streaming_result(method, args, timeout, self.call_metadata().as_deref())
            .await
    }

    /// Calls `method` while sending `upload` to it (the method's stream argument),
    /// and decodes the reply as `R`.
    pub async fn call_upload<A, R, T>(
        &self,
        method: MethodRef,
        args: &A,
        upload: Streaming<T>,
    ) -> Result<R, Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
        T: Serialize + Send + 'static,
    {
        let (shared, timeout) = self.ready().await?;
        let (value, _) = shared
            .call_with_upload(
                method,
                args,
                timeout,
                self.call_metadata().as_deref(),
                Some(upload),
            )
            .await?;
        Ok(value)
    }

    /// Sends a PING frame and waits for the server's PONG: the round-trip time of the
    /// connection, without running anything on the server. The handle's deadline
    /// ([`with_timeout`](Client::with_timeout)) bounds the wait.
    ///
    /// Fails with [`ErrorKind::Usage`] when the connection speaks protocol version 1 (no
    /// PING), and like a call when the connection closes or the deadline passes.
    pub async fn ping(&self) -> Result<Duration, Error> {
        let (shared, timeout) = self.ready().await?;
        match timeout {
            Some(timeout) => tokio::time::timeout(timeout, shared.ping_server())
                .await
                .unwrap_or_else(|_| Err(Error::deadline(timeout))),
            None => shared.ping_server().await,
        }
    }

    /// The connection for the next call when it can be had without waiting (a fixed
    /// connection, or an early one whose handshake is over): the whole deadline is left.
    fn open_now(&self) -> Option<&Arc<Shared>> {
        match &self.link {
            Link::Fixed { shared, .. } => Some(shared),
            Link::Early(link) => link.open(),
            Link::Reconnecting(_) => None,
        }
    }

    /// The connection for the next call, and the part of the deadline left for it.
    async fn ready(&self) -> Result<(Arc<Shared>, Option<Duration>), Error> {
        self.ready_within(self.timeout).await
    }

    /// The connection for a call whose deadline is `timeout`, and the part of it left.
    async fn ready_within(
        &self,
        timeout: Option<Duration>,
    ) -> Result<(Arc<Shared>, Option<Duration>), Error> {
        match &self.link {
            Link::Fixed { shared, .. } => Ok((Arc::clone(shared), timeout)),
            Link::Reconnecting(reconnector) => {
                let start = Instant::now();
                let shared = reconnector.connection(timeout).await?;
                // Time spent waiting for the connection counts against the deadline.
                let left = timeout.map(|timeout| timeout.saturating_sub(start.elapsed()));
                if left == Some(Duration::ZERO) {
                    return Err(Error::deadline(timeout.unwrap_or_default()));
                }
                Ok((shared, left))
            }
            Link::Early(link) => {
                if let Some(shared) = link.open() {
                    return Ok((Arc::clone(shared), timeout));
                }
                let start = Instant::now();
                let shared = connection::within_deadline(timeout, link.connection()).await?;
                let left = timeout.map(|timeout| timeout.saturating_sub(start.elapsed()));
                if left == Some(Duration::ZERO) {
                    return Err(Error::deadline(timeout.unwrap_or_default()));
                }
                Ok((shared, left))
            }
        }
    }
}

#[cfg(feature = "tower")]
impl Client {
    /// A handle on the same connection whose plain calls pass through the tower `layer`
    /// (feature `tower`; see [`ferry::tower`](crate::tower)): timeouts, retries,
    /// concurrency and rate limits, logging. Each call enters the layers as a
    /// [`ClientRequest`](crate::tower::ClientRequest), its arguments already encoded, and
    /// comes back as a [`ClientResponse`](crate::tower::ClientResponse) or an [`Error`]; the
    /// layer added last is the outermost. Layers put on a handle stay on the handles made
    /// from it ([`with_timeout`](Client::with_timeout), [`with_metadata`](Client::with_metadata),
    /// clones). A typed client goes through them when built over this handle
    /// (`{Trait}Client::from_client`).
    ///
    /// [`Client::call`] and [`Client::call_with_reply_metadata`] go through the layers;
    /// calls with streams (a reply stream, a stream argument) do not. A call through
    /// layers waits for the handshake (it is never an early request). An error of a layer
    /// becomes the call's [`Error`] as the table of the [module docs](crate::tower#errors-of-layers)
    /// says (a timeout layer's: [`ErrorKind::DeadlineExceeded`]).
    pub fn layer<L>(&self, layer: L) -> Client
    where
        L: tower_layer::Layer<crate::tower::BoxClientService>,
        L::Service: tower_service::Service<
                crate::tower::ClientRequest,
                Response = crate::tower::ClientResponse,
            > + Clone
            + Send
            + 'static,
        <L::Service as tower_service::Service<crate::tower::ClientRequest>>::Error:
            Into<crate::tower::BoxError>,
        <L::Service as tower_service::Service<crate::tower::ClientRequest>>::Future: Send + 'static,
    {
        let inner = match &self.stack {
            Some(stack) => stack.service(),
            None => crate::tower::BoxClientService::new(Client {
                stack: None,
                ..self.clone()
            }),
        };
        let service = crate::tower::BoxClientService::new(layer.layer(inner));
        Client {
            stack: Some(Arc::new(crate::tower::ClientStack::new(service))),
            ..self.clone()
        }
    }

    /// The layers of this handle, if any.
    pub(crate) fn stack(&self) -> Option<&crate::tower::ClientStack> {
        self.stack.as_deref()
    }

    /// A plain call through the layers: the arguments are encoded once, here, then the
    /// request passes through the stack; the reply is decoded as `R`.
    async fn call_layered<A, R>(
        &self,
        stack: &crate::tower::ClientStack,
        method: MethodRef,
        args: &A,
    ) -> Result<(R, Metadata), Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        // The connection's payload format (the same on every connection of a reconnecting
        // client), and where the reply is decoded.
        let (shared, _) = self.ready().await?;
        let mut body = bytes::BytesMut::new();
        let (encoded, handles) = crate::handle::encoding(|| shared.format.encode(args, &mut body));
        encoded
            .map_err(|err| Error::codec(ErrorKind::Encode, "cannot encode the arguments", err))?;
        let metadata = self
            .call_metadata()
            .map(Cow::into_owned)
            .unwrap_or_default();
        let request = crate::tower::ClientRequest::new(
            method,
            body.freeze(),
            handles,
            metadata,
            self.timeout,
        );
        let response = stack
            .send(request)
            .await
            .map_err(|err| crate::tower::client_error(err, method.name()))?;
        let (body, handles, metadata) = response.into_parts();
        let value = shared.decode_reply(&body, handles)?;
        Ok((value, metadata))
    }

    /// Sends a request that passed the layers, on this handle's connection.
    pub(crate) async fn send_encoded(
        &self,
        request: crate::tower::ClientRequest,
    ) -> Result<crate::tower::ClientResponse, Error> {
        let (shared, timeout) = self.ready_within(request.timeout()).await?;
        let metadata = request.metadata();
        let metadata = (!metadata.is_empty()).then_some(metadata);
        let (body, handles, metadata) = shared
            .call_encoded(
                request.method(),
                request.args(),
                request.handles(),
                timeout,
                metadata,
            )
            .await?;
        Ok(crate::tower::ClientResponse::new(
            body,
            handles,
            metadata.unwrap_or_default(),
        ))
    }
}
