//! [`Server`]: hosts services on an endpoint and serves many clients at once.

mod accept;
mod accepting;
pub(crate) mod admission;
pub(crate) mod connection;
mod early;
mod handshake;
mod in_flight;
mod options;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferry_codec::MethodTable;
use ferry_transport::{Listener, PeerCredentials, Stream, ToName};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn, Instrument};

use crate::budget::Pool;
use crate::contract::ServiceDispatch;
use crate::error::{Error, ErrorKind};
use crate::introspect;
use accept::{AcceptFailures, Reserve};
use admission::Admission;

pub use options::ServerOptions;

/// A set of services and the options to serve them with; [`Server::bind`] puts it on an
/// endpoint.
///
/// ```no_run
/// # #[ferry::service] pub trait Calc { async fn add(&self, a: i64, b: i64) -> i64; }
/// # struct MyCalc;
/// # impl Calc for MyCalc { async fn add(&self, a: i64, b: i64) -> i64 { a + b } }
/// # async fn demo() -> Result<(), ferry::Error> {
/// ferry::Server::new()
///     .serve(CalcServer::new(MyCalc))
///     .bind("calc-demo")
///     .await?
///     .run()
///     .await
/// # }
/// ```
pub struct Server {
    services: HashMap<&'static str, Arc<dyn ServiceDispatch>>,
    options: ServerOptions,
    /// A service refused by [`Server::serve`] (a reserved name), reported by
    /// [`Server::bind`] and [`Server::serve_stream`].
    refused: Option<Error>,
    /// The tower layers around every service's dispatch ([`Server::layer`]).
    #[cfg(feature = "tower")]
    stack: Option<crate::tower::Stack>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .field("options", &self.options)
            .finish()
    }
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl Server {
    /// A server with no services and the default [`ServerOptions`].
    pub fn new() -> Self {
        Server::with_options(ServerOptions::default())
    }

    /// A server with no services and the given options.
    pub fn with_options(options: ServerOptions) -> Self {
        Server {
            services: HashMap::new(),
            options,
            refused: None,
            #[cfg(feature = "tower")]
            stack: None,
        }
    }

    /// Puts a tower [`Layer`](tower_layer::Layer) around the dispatch of every service of
    /// this server (feature `tower`; see [`ferry::tower`](crate::tower)). Each call passes
    /// through the layers as a [`CallRequest`](crate::tower::CallRequest) and comes back as
    /// a [`CallResponse`](crate::tower::CallResponse); the layer added last is the
    /// outermost. ferry's own services (`ferry.introspect`) are not layered.
    #[cfg(feature = "tower")]
    pub fn layer<L>(self, layer: L) -> Self
    where
        L: tower_layer::Layer<crate::tower::BoxCallService> + Send + Sync + 'static,
        L::Service: tower_service::Service<crate::tower::CallRequest, Response = crate::tower::CallResponse>
            + Clone
            + Send
            + 'static,
        <L::Service as tower_service::Service<crate::tower::CallRequest>>::Error:
            Into<crate::tower::BoxError>,
        <L::Service as tower_service::Service<crate::tower::CallRequest>>::Future: Send + 'static,
    {
        Server {
            stack: Some(crate::tower::push_layer(self.stack, layer)),
            ..self
        }
    }

    /// The services, each inside the server's tower layers (when it has any).
    fn into_parts(
        self,
    ) -> (
        HashMap<&'static str, Arc<dyn ServiceDispatch>>,
        ServerOptions,
    ) {
        #[cfg(feature = "tower")]
        if let Some(stack) = &self.stack {
            let services = self
                .services
                .into_iter()
                .map(|(name, service)| {
                    let layered = crate::tower::Layered::new(service, stack);
                    (name, Arc::new(layered) as Arc<dyn ServiceDispatch>)
                })
                .collect();
            return (services, self.options);
        }
        (self.services, self.options)
    }

    /// Adds a service (a generated `{Trait}Server`). A client names the service it wants in
    /// its handshake, so one endpoint can host several. A second service with the same name
    /// replaces the first.
    ///
    /// Names that start with `ferry.` are reserved for ferry's own services (every server
    /// hosts [`ferry.introspect`](crate::introspect)): a service with such a name is not
    /// added, and [`Server::bind`] then fails with [`ErrorKind::Usage`] (and
    /// [`Server::serve_stream`] serves nothing and logs why). So is a service one of whose
    /// argument or return types cannot be described as a schema (section 10 of
    /// `docs/protocol.md`): the error names the service, the method and the type.
    pub fn serve(self, service: impl ServiceDispatch) -> Self {
        let name = service.info().name;
        if name.starts_with(introspect::RESERVED_PREFIX) {
            let reason = format!(
                "service name `{name}` is reserved: names starting with `{}` belong to ferry's own services",
                introspect::RESERVED_PREFIX
            );
            warn!(service = name, %reason, "service not added");
            return Server {
                refused: Some(Error::new(ErrorKind::Usage, reason)),
                ..self
            };
        }
        if let Err(err) = crate::contract::method_table(service.info()) {
            error!(service = name, error = %crate::ErrorChain::new(&err), "service not added");
            return Server {
                refused: Some(err),
                ..self
            };
        }
        self.serve_reserved(service)
    }

    /// [`Server::serve`] without the check of reserved names, for ferry's own services.
    pub(crate) fn serve_reserved(mut self, service: impl ServiceDispatch) -> Self {
        let name = service.info().name;
        if self.services.insert(name, Arc::new(service)).is_some() {
            warn!(
                service = name,
                "a service of this name was already added; replaced"
            );
        }
        self
    }

    /// Binds the endpoint: from here on clients can connect (they wait in the backlog until
    /// [`BoundServer::run`] accepts them).
    ///
    /// Must be called inside a tokio runtime. Fails when the name is invalid, a live server
    /// already has it, or the operating system refuses.
    pub async fn bind(mut self, name: impl ToName) -> Result<BoundServer, Error> {
        if let Some(err) = self.refused.take() {
            return Err(err);
        }
        let name = name
            .to_name()
            .map_err(|err| Error::transport(ErrorKind::Server, "cannot bind the endpoint", err))?;
        let listener = Listener::bind(&name, &self.options.listener)
            .map_err(|err| Error::transport(ErrorKind::Server, "cannot bind the endpoint", err))?;
        let (services, options) = self.into_parts();
        Ok(BoundServer {
            listener,
            shared: Shared::new(services, options),
        })
    }

    /// Serves one already connected stream (for example one end of
    /// [`transport::pair`](crate::transport::pair)) until the client closes it.
    ///
    /// When [`Server::serve`] refused a service (a reserved name), nothing is served: the
    /// reason is logged at `error` level and the stream closed.
    pub async fn serve_stream(self, stream: Stream) {
        if let Some(err) = &self.refused {
            error!(error = %crate::ErrorChain::new(err), "not serving the stream");
            return;
        }
        let (services, options) = self.into_parts();
        let shared = Shared::new(services, options);
        shared.connections.fetch_add(1, Ordering::SeqCst);
        connection::serve(shared, stream, None).await;
    }
}

/// What every connection task of one server shares.
pub(crate) struct Shared {
    pub(crate) services: HashMap<&'static str, Arc<dyn ServiceDispatch>>,
    /// The method table of each service that has one, sent in version 2 Welcomes.
    pub(crate) tables: HashMap<&'static str, Arc<MethodTable>>,
    /// The accepting Welcome of each service, version and format, encoded once.
    pub(crate) welcomes: handshake::Welcomes,
    pub(crate) options: ServerOptions,
    /// Open connections (handshake included).
    pub(crate) connections: AtomicUsize,
    /// Handlers running (spawned and not yet finished or cancelled), on all connections.
    pub(crate) calls: AtomicUsize,
    next_connection: AtomicU64,
    /// `true` once a graceful shutdown began (to wait for it).
    pub(crate) shutdown: watch::Sender<bool>,
    /// `true` once a graceful shutdown began (to check it on every request, cheaply).
    shutting_down: AtomicBool,
    /// The connections still in their handshake.
    pub(crate) admission: Arc<Admission>,
    /// The bytes all connections hold, against `memory_budget`.
    pub(crate) memory: Arc<Pool>,
    /// The user this server runs as, read when it bound (`geteuid` on Unix), for the
    /// default authorization rule.
    pub(crate) own_user: Option<PeerCredentials>,
}

impl Shared {
    /// The shared state of a server hosting `services`, and the introspection service.
    fn new(
        mut services: HashMap<&'static str, Arc<dyn ServiceDispatch>>,
        options: ServerOptions,
    ) -> Arc<Self> {
        let describer = introspect::service(&services);
        services.insert(introspect::SERVICE_NAME, Arc::new(describer));
        let (shutdown, _) = watch::channel(false);
        let admission = Admission::new(options.max_pending_handshakes);
        let memory = Pool::new(options.memory_budget_limit());
        let tables = services
            .iter()
            .filter_map(|(name, service)| {
                let table = crate::contract::method_table(service.info()).ok()??;
                Some((*name, Arc::new(table)))
            })
            .collect();
        let welcomes = handshake::Welcomes::new(&services, &tables, &options);
        Arc::new(Shared {
            services,
            tables,
            welcomes,
            options,
            connections: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            next_connection: AtomicU64::new(1),
            shutdown,
            shutting_down: AtomicBool::new(false),
            admission,
            memory,
            own_user: crate::identity::own_user(),
        })
    }

    /// Begins the graceful shutdown: every connection drains (see `connection`).
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown.send_replace(true);
    }

    /// Whether the graceful shutdown has begun.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// A server bound to its endpoint. [`BoundServer::run`] serves it.
pub struct BoundServer {
    listener: Listener,
    shared: Arc<Shared>,
}

impl fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundServer")
            .field("address", &self.listener.address())
            .finish_non_exhaustive()
    }
}

/// Starts a graceful shutdown of a running server from anywhere. Cheap to clone.
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHandle").finish_non_exhaustive()
    }
}

impl ShutdownHandle {
    /// Stops accepting connections and new calls; calls in flight get the grace period
    /// ([`ServerOptions::shutdown_grace`]) to finish, then the connections close and
    /// [`BoundServer::run`] returns.
    pub fn shutdown(&self) {
        self.shared.begin_shutdown();
    }

    /// Number of open connections right now.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Number of call handlers running right now, over all connections. A handler counts
    /// until it returns, panics, passes its deadline or is cancelled (by the client, or
    /// because its connection closed).
    pub fn active_calls(&self) -> usize {
        self.shared.calls.load(Ordering::SeqCst)
    }
}

impl BoundServer {
    /// The platform address the server listens on: a socket path or a pipe name.
    pub fn address(&self) -> String {
        self.listener.address()
    }

    /// A handle to shut the server down gracefully and to read its connection count.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Serves until a [`ShutdownHandle::shutdown`], then drains gracefully and returns.
    pub async fn run(self) -> Result<(), Error> {
        self.run_until(std::future::pending::<()>()).await
    }

    /// Serves until `signal` completes (or a [`ShutdownHandle::shutdown`]), then drains
    /// gracefully and returns. For Ctrl-C: `run_until(tokio::signal::ctrl_c())`.
    pub async fn run_until(self, signal: impl Future) -> Result<(), Error> {
        let BoundServer { listener, shared } = self;
        let address = listener.address();
        info!(%address, services = ?shared.services.keys().collect::<Vec<_>>(), "serving");
        let (listener, mut tasks) =
            accepting::accept_until_shutdown(listener, &shared, address.clone(), signal).await?;
        while tasks.try_join_next().is_some() {}
        info!(%address, connections = tasks.len(), "shutting down");
        drop(listener);
        while tasks.join_next().await.is_some() {}
        info!(%address, "stopped");
        Ok(())
    }
}

/// The accept loop until a graceful shutdown begins: accepts connections and spawns a
/// task for each, reaping finished ones. Returns the listener and the connections' tasks.
async fn accept_loop(
    listener: Listener,
    shared: Arc<Shared>,
    address: String,
) -> (Listener, JoinSet<()>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut tasks = JoinSet::new();
    let mut failures = AcceptFailures::default();
    let mut reserve = Reserve::new();
    loop {
        if *shutdown.borrow_and_update() {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => {
                    failures.succeeded(&address);
                    spawn_connection(&shared, &mut tasks, stream);
                    // Finished connections are reaped here, not awaited one by one: that
                    // would wake this loop (often on another thread) at the end of each.
                    while tasks.try_join_next().is_some() {}
                }
                Err(err) => {
                    // Accept errors (EMFILE, a client gone before accept) must not end
                    // the server: it serves what it has and backs off.
                    let pause = failures.failed(&address, &err);
                    if accept::out_of_descriptors(&err) && reserve.release() {
                        refuse_for_descriptors(&shared, &listener).await;
                        reserve.refill();
                    }
                    tokio::time::sleep(pause).await;
                }
            },
            // Awaited only when many finished ones wait (no accept came to reap them),
            // which bounds what they hold.
            Some(_) = tasks.join_next(), if finished_waiting(&shared, &tasks) => {
                while tasks.try_join_next().is_some() {}
            }
            _ = shutdown.changed() => {}
        }
    }
    (listener, tasks)
}

/// Finished connection tasks not yet reaped, past which the accept loop awaits them.
const REAP_BATCH: usize = 64;

/// Whether more than [`REAP_BATCH`] connection tasks have finished and wait to be reaped
/// (each holds its task's memory until then).
fn finished_waiting(shared: &Shared, tasks: &JoinSet<()>) -> bool {
    let open = shared.connections.load(Ordering::Relaxed);
    tasks.len() > open.saturating_add(REAP_BATCH)
}

fn spawn_connection(shared: &Arc<Shared>, tasks: &mut JoinSet<()>, stream: Stream) {
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let open = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
    let peer = stream.peer_credentials();
    let span =
        tracing::info_span!("connection", id, peer_pid = ?peer.pid(), peer_uid = ?peer.uid());
    debug!(parent: &span, open, "accepted");
    let ticket = shared.admission.admit(id);
    // Boxed: the task then holds a pointer, and the connection's large future is copied
    // once, into its box, instead of on each move through the spawn and at the task's end.
    // In its span only when a subscriber wants the span: otherwise each poll of the
    // connection's task would enter and leave it for nothing.
    let serve = connection::serve(Arc::clone(shared), stream, Some(ticket));
    if span.is_disabled() {
        tasks.spawn(Box::pin(serve));
    } else {
        tasks.spawn(Box::pin(serve.instrument(span)));
    }
}

/// Out of file descriptors, with the reserved one just freed: accepts the client waiting
/// in the backlog and refuses it with `SERVER_BUSY`, so it fails at once with a reason
/// instead of waiting for a handshake that cannot come.
async fn refuse_for_descriptors(shared: &Shared, listener: &Listener) {
    let Ok(Ok(stream)) = tokio::time::timeout(Duration::ZERO, listener.accept()).await else {
        return;
    };
    let refused = handshake::Refused {
        status: ferry_codec::HandshakeStatus::SERVER_BUSY,
        message: "the server is out of file descriptors; try again later".to_owned(),
    };
    let mut out = bytes::BytesMut::new();
    handshake::refusal(shared, &refused).encode(&mut out);
    accept::refuse_now(stream, &out).await;
}
