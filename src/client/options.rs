//! [`ClientOptions`]: how a client connects and calls.

use std::time::Duration;

use ferry_codec::{FormatId, MetadataLimits, DEFAULT_MAX_FRAME};
use ferry_transport::ConnectOptions;

use crate::identity::ServerUser;

use crate::client::Reconnect;

/// How a client connects and calls. The defaults: bincode payloads, fail at once when no
/// server is there (see [`ClientOptions::wait_for_server`]), 5 s to connect and to complete
/// the handshake, no call deadline, 16 MiB frames, 1 MiB write queue, no reconnection, no
/// keepalive, and a server that runs as this client's user or the superuser
/// ([`ServerUser::SameUser`]).
///
/// ```
/// use std::time::Duration;
/// let options = ferry::ClientOptions::new()
///     .wait_for_server(Duration::from_secs(2))
///     .timeout(Duration::from_millis(500));
/// # drop(options);
/// ```
#[derive(Clone, Debug)]
#[must_use = "options do nothing until they are passed on"]
pub struct ClientOptions {
    pub(crate) format: FormatId,
    pub(crate) connect: ConnectOptions,
    pub(crate) handshake_timeout: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_frame: u32,
    pub(crate) max_shared_bytes: u64,
    pub(crate) write_queue_limit: usize,
    pub(crate) server_user: ServerUser,
    pub(crate) reconnect: Option<Reconnect>,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) strict_contract: bool,
    pub(crate) early_requests: bool,
    pub(crate) metadata_limits: MetadataLimits,
    pub(crate) propagate_trace: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            format: FormatId::Bincode,
            connect: ConnectOptions::default(),
            handshake_timeout: Duration::from_secs(5),
            timeout: None,
            max_frame: DEFAULT_MAX_FRAME,
            max_shared_bytes: crate::shared_bytes::DEFAULT_MAX_SHARED_BYTES,
            write_queue_limit: 1024 * 1024,
            server_user: ServerUser::SameUser,
            reconnect: None,
            keepalive: None,
            strict_contract: false,
            early_requests: false,
            metadata_limits: MetadataLimits::default(),
            propagate_trace: false,
        }
    }
}

impl ClientOptions {
    /// The defaults.
    pub fn new() -> Self {
        ClientOptions::default()
    }

    /// The payload format: bincode (default, compact) or JSON (readable, for other languages).
    pub fn format(mut self, format: FormatId) -> Self {
        self.format = format;
        self
    }

    /// Keep trying for up to `wait` while no server is at the name yet (it may be starting).
    pub fn wait_for_server(mut self, wait: Duration) -> Self {
        self.connect = self.connect.wait(wait);
        self
    }

    /// Transport-level connect options (`wait`, `attempt_timeout`: the bound of one connect
    /// attempt, not of a call).
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.connect = options;
        self
    }

    /// How long the server has to answer the handshake.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The default deadline of every call (what `Client::with_timeout` sets per handle); the
    /// remaining time travels with the request and the server stops the call when it
    /// passes. Connecting is bounded apart: by `handshake_timeout` and
    /// `ConnectOptions::attempt_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The largest [`SharedBytes`](crate::SharedBytes) the client accepts in a reply, in
    /// bytes (default 1 GiB); it is not bounded by the frame limit, since its bytes do not
    /// travel in the frame. A larger one fails the call with a protocol error; nothing is
    /// mapped or copied.
    pub fn max_shared_bytes(mut self, bytes: u64) -> Self {
        self.max_shared_bytes = bytes;
        self
    }

    /// The largest reply body this client accepts.
    pub fn max_frame(mut self, bytes: u32) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Bytes of requests queued before callers wait for the connection to drain.
    pub fn write_queue_limit(mut self, bytes: usize) -> Self {
        self.write_queue_limit = bytes.max(1);
        self
    }

    /// The user the server must run as (default [`ServerUser::SameUser`]: this client's
    /// user or the superuser, for every kind of name). Checked right after connecting,
    /// before anything is sent; a mismatch fails the connect with
    /// [`ErrorKind::ServerIdentity`](crate::ErrorKind::ServerIdentity). Guards against a
    /// process squatting the endpoint name or impersonating the server. To call a server
    /// of another user, name it ([`ServerUser::Uid`], [`ServerUser::Sid`]);
    /// [`ServerUser::Any`] turns the check off.
    pub fn server_user(mut self, user: ServerUser) -> Self {
        self.server_user = user;
        self
    }

    /// Checks that the server is alive (off by default): when nothing has arrived from the
    /// server for `interval`, the client sends it a PING; when still nothing arrives within
    /// another `interval`, the server is taken as gone (a frozen or hung process that keeps
    /// its end open): the connection closes and its calls fail with
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed) ("the server did not answer a PING
    /// within ..."). They may have run.
    ///
    /// Needs protocol version 2 on the connection (against a version 1 server the client
    /// sends no PING). A zero `interval` turns the keepalive off.
    pub fn keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = Some(interval).filter(|interval| !interval.is_zero());
        self
    }

    /// Refuse the connection unless the server's methods are exactly the client's (off by
    /// default). By default a client connects to a server that hosts the service in another
    /// version and binds its methods by name: a method whose schema matches is callable,
    /// one the server lacks or has with another schema fails when called, with
    /// [`ErrorKind::Incompatible`](crate::ErrorKind::Incompatible) (see
    /// `docs/versioning.md`). With a strict contract any difference (a method missing on
    /// either side, or with another schema) fails the connect with
    /// [`ErrorKind::ServiceMismatch`](crate::ErrorKind::ServiceMismatch), naming the methods.
    /// Against a version 1 server, or for a service without schemas, the whole-service
    /// signature check applies as always.
    pub fn strict_contract(mut self, strict: bool) -> Self {
        self.strict_contract = strict;
        self
    }

    /// Send the first call right behind the handshake's hello, without waiting for the
    /// server's answer (off by default): connect plus first call take one round trip
    /// instead of two.
    ///
    /// With it, `connect` (and `from_stream`) return without waiting for the server (the
    /// hello goes out with the first call, or at once from a task of the connection when
    /// no call comes first), before the server accepted: a refusal (unknown service, another signature, not authorized...)
    /// fails the first call, and every later one, with the handshake's error instead of
    /// failing the connect. The first call, when its arguments encode to at most 1 KiB, goes
    /// out as an early request (protocol version 3, `docs/protocol.md` section 2.5), which
    /// the server runs only when the client's service signature equals its own; otherwise
    /// (another version of the service, or a server of protocol version 1 or 2) it is not
    /// run, and the client sends it again, unchanged for the caller, once the handshake is
    /// over. The first call also reads the handshake's answer and its own reply itself,
    /// without a hand-off between tasks. Other calls wait for the handshake as usual.
    /// Ignored by a reconnecting client
    /// ([`reconnect`](Self::reconnect)).
    pub fn early_requests(mut self, early: bool) -> Self {
        self.early_requests = early;
        self
    }

    /// Reconnect by itself when the connection closes (off by default: a closed client
    /// stays closed). See [`Reconnect`] for what calls see meanwhile. Only clients made
    /// with `connect` reconnect; one made from a stream has no name to dial again.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Bounds on per-call metadata (protocol version 3; default 32 entries, 64-byte keys,
    /// 8 KiB): a call whose metadata ([`Client::with_metadata`](crate::Client::with_metadata))
    /// exceeds them fails at once with [`ErrorKind::Usage`](crate::ErrorKind::Usage), unsent,
    /// and a reply whose metadata exceeds them fails its call with
    /// [`ErrorKind::Protocol`](crate::ErrorKind::Protocol) (the connection stays open).
    pub fn metadata_limits(mut self, limits: MetadataLimits) -> Self {
        self.metadata_limits = limits;
        self
    }

    /// Send a W3C trace context ([`TraceParent`](crate::TraceParent), metadata key
    /// `traceparent`) with every call, so the server's call span records the trace it
    /// belongs to (off by default). Calls made inside one `tracing` span of this process
    /// share a trace id; a call whose metadata has a `traceparent` already keeps it. Needs
    /// protocol version 3 on the connection, like all metadata.
    pub fn propagate_trace(mut self, propagate: bool) -> Self {
        self.propagate_trace = propagate;
        self
    }
}
