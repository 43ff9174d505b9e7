//! [`ServerOptions`]: the server's limits and time-outs, with safe defaults.

use std::sync::Arc;
use std::time::Duration;

use ferry_codec::{MetadataLimits, DEFAULT_MAX_FRAME};
use ferry_transport::{ListenerOptions, PeerCredentials};

use crate::identity::Authorization;

/// Limits and time-outs of a [`Server`](crate::Server). The defaults are bounded everywhere:
///
/// | option | default |
/// | --- | --- |
/// | [`max_connections`](ServerOptions::max_connections) | 1024 |
/// | [`max_pending_handshakes`](ServerOptions::max_pending_handshakes) (connections that have not finished their hello) | 128 |
/// | [`max_in_flight`](ServerOptions::max_in_flight) (calls per connection) | 64 |
/// | [`max_frame`](ServerOptions::max_frame) | 16 MiB |
/// | [`max_shared_bytes`](ServerOptions::max_shared_bytes) (one received [`SharedBytes`](crate::SharedBytes)) | 1 GiB |
/// | [`write_queue_limit`](ServerOptions::write_queue_limit) (bytes per connection) | 1 MiB |
/// | [`max_connection_memory`](ServerOptions::max_connection_memory) (bytes a connection holds) | 32 MiB |
/// | [`memory_budget`](ServerOptions::memory_budget) (bytes all connections hold) | 256 MiB |
/// | [`handshake_timeout`](ServerOptions::handshake_timeout) | 5 s |
/// | [`frame_timeout`](ServerOptions::frame_timeout) (rest of a frame once it began) | 10 s |
/// | idle time between frames | unlimited |
/// | [`shutdown_grace`](ServerOptions::shutdown_grace) | 5 s |
/// | [`keepalive`](ServerOptions::keepalive) (PING a silent client) | off |
/// | [`metadata_limits`](ServerOptions::metadata_limits) (per call, each way) | 32 entries, 64-byte keys, 8 KiB |
/// | [`listener`](ServerOptions::listener) | owner-only socket / local-only pipe |
/// | who may connect ([`authorize`](ServerOptions::authorize)) | the server's own user, and root / LocalSystem / Administrators |
///
/// ```
/// let options = ferry::ServerOptions::new().max_in_flight(128).max_connections(64);
/// let server = ferry::Server::with_options(options);
/// # drop(server);
/// ```
#[derive(Clone, Debug)]
#[must_use = "options do nothing until they are passed on"]
pub struct ServerOptions {
    pub(crate) max_connections: usize,
    pub(crate) max_pending_handshakes: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) max_frame: u32,
    pub(crate) max_shared_bytes: u64,
    pub(crate) write_queue_limit: usize,
    pub(crate) max_connection_memory: usize,
    pub(crate) memory_budget: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) frame_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) authorization: Authorization,
    pub(crate) listener: ListenerOptions,
    pub(crate) metadata_limits: MetadataLimits,
}

/// Two frames of the default 16 MiB limit: a max-size request and a max-size reply (or
/// stream item) fit at once, and four such connections stay far below the default budget.
const DEFAULT_CONNECTION_MEMORY: usize = 32 * 1024 * 1024;

/// Eight connections at their own limit at once: small next to the memory of any machine
/// ferry runs on, large enough that only clients that send big frames and never read
/// their replies come near it.
const DEFAULT_MEMORY_BUDGET: usize = 256 * 1024 * 1024;

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: 1024,
            max_pending_handshakes: 128,
            max_in_flight: 64,
            max_frame: DEFAULT_MAX_FRAME,
            max_shared_bytes: crate::shared_bytes::DEFAULT_MAX_SHARED_BYTES,
            write_queue_limit: 1024 * 1024,
            max_connection_memory: DEFAULT_CONNECTION_MEMORY,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            handshake_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            keepalive: None,
            authorization: Authorization::default(),
            listener: ListenerOptions::default(),
            metadata_limits: MetadataLimits::default(),
        }
    }
}

impl ServerOptions {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        ServerOptions::default()
    }

    /// Connections served at once (past their handshake); a client beyond it is refused in
    /// the handshake with "server busy". At least 1.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Connections that may be in their handshake at once (accepted, hello not yet read). A
    /// newer connection past this bound sheds the oldest one, which is refused with
    /// `SERVER_BUSY` and closed unless its whole hello has arrived already (a burst of real
    /// clients is served, however large), so clients that connect and never say hello
    /// cannot starve the others; each is also bounded in time by
    /// [`handshake_timeout`](ServerOptions::handshake_timeout). These connections do not
    /// count against [`max_connections`](ServerOptions::max_connections). At least 1.
    pub fn max_pending_handshakes(mut self, max: usize) -> Self {
        self.max_pending_handshakes = max.max(1);
        self
    }

    /// Calls served at once on one connection. When a connection has this many in flight,
    /// the server stops reading from it until one finishes (backpressure). At least 1.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.clamp(1, u32::MAX as usize);
        self
    }

    /// The largest [`SharedBytes`](crate::SharedBytes) the server accepts in a call's
    /// arguments, in bytes; it is not bounded by [`max_frame`](ServerOptions::max_frame),
    /// since its bytes do not travel in the frame. A larger one fails the call's decoding
    /// (the client gets a rejection); nothing is mapped or copied.
    pub fn max_shared_bytes(mut self, bytes: u64) -> Self {
        self.max_shared_bytes = bytes;
        self
    }

    /// The largest frame body the server accepts, in bytes. A larger request is refused with
    /// a "frame too large" error and the connection is closed.
    pub fn max_frame(mut self, bytes: u32) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Bytes of replies queued for one connection before handlers wait for the client to
    /// read (one frame may go past it). While the queue is full the server also reads no
    /// further request from that connection, so error replies stay within the bound too.
    pub fn write_queue_limit(mut self, bytes: usize) -> Self {
        self.write_queue_limit = bytes.max(1);
        self
    }

    /// Bytes one connection may hold: request arguments read and not yet freed (held until
    /// their handler ends), stream items not yet taken by their consumer, and frames queued
    /// for writing. The server reserves each frame's size as soon as its header is read,
    /// before it reads or allocates the body; while the reservation does not fit, it stops
    /// reading from that connection until bytes are freed (backpressure). Never below one
    /// frame of [`max_frame`](ServerOptions::max_frame) bytes (a larger value is used
    /// then), so a connection that holds nothing can always send one. Default 32 MiB.
    pub fn max_connection_memory(mut self, bytes: usize) -> Self {
        self.max_connection_memory = bytes;
        self
    }

    /// Bytes all connections together may hold (what
    /// [`max_connection_memory`](ServerOptions::max_connection_memory) counts, summed).
    /// Past it, every connection stops reading until bytes are freed. Never below one
    /// connection's limit. Default 256 MiB. docs/security.md gives the worst case as a formula of the options.
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// One connection's limit as applied: at least one whole frame of `max_frame`.
    pub(crate) fn connection_memory_limit(&self) -> usize {
        let frame = ferry_codec::HEADER_LEN + self.max_frame as usize;
        self.max_connection_memory.max(frame)
    }

    /// The server-wide budget as applied: at least one connection's limit.
    pub(crate) fn memory_budget_limit(&self) -> usize {
        self.memory_budget.max(self.connection_memory_limit())
    }

    /// How long a new connection has to complete its handshake (from the accept to the
    /// last byte of the client's hello). A client that is too slow is refused with a
    /// `BAD_HELLO` handshake reply and the connection is closed.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How long the rest of a frame may take to arrive once its first byte has: a client
    /// that starts a frame and goes silent (a slow-loris) gets an ERROR frame with status
    /// `PROTOCOL` and is disconnected. A connection that is idle between frames is never
    /// timed out.
    pub fn frame_timeout(mut self, timeout: Duration) -> Self {
        self.frame_timeout = timeout;
        self
    }

    /// Decides which clients may connect: `check` sees the peer's credentials (pid and
    /// uid/gid on Unix, pid and SID on Windows) once per connection, after the client's
    /// hello and before any call is dispatched. A refused client gets the handshake status
    /// `NOT_AUTHORIZED` (its connect fails with
    /// [`ErrorKind::NotAuthorized`](crate::ErrorKind::NotAuthorized)).
    ///
    /// The default admits the server's own user and the superuser (root; on Windows
    /// LocalSystem and Administrators) and refuses a peer whose user the platform did not
    /// report. `check` runs on the connection's task: keep it quick and non-blocking.
    ///
    /// ```
    /// // Only root, and processes whose group is 1234.
    /// let options = ferry::ServerOptions::new()
    ///     .authorize(|peer| peer.uid() == Some(0) || peer.gid() == Some(1234));
    /// # drop(options);
    /// ```
    pub fn authorize(
        mut self,
        check: impl Fn(&PeerCredentials) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.authorization = Authorization::Custom(Arc::new(check));
        self
    }

    /// Lets any peer that can open the endpoint connect, whatever its user. Pair it with
    /// looser [`listener`](ServerOptions::listener) permissions to serve other users; on its
    /// own the endpoint's owner-only permissions still keep them out.
    pub fn allow_any_user(mut self) -> Self {
        self.authorization = Authorization::AnyUser;
        self
    }

    /// How long a graceful shutdown waits for calls in flight before it cuts them.
    ///
    /// When the shutdown begins, each connection is told (a GOAWAY frame) and keeps being
    /// read: every new call on it is answered at once with "shutting down, not run"
    /// ([`ErrorKind::ShuttingDown`](crate::ErrorKind::ShuttingDown), safe to retry), calls
    /// in flight run on, and the connection closes as soon as none is left. A call still
    /// running when the grace period ends is stopped and its client gets an error of kind
    /// [`Closed`](crate::ErrorKind::Closed) with status
    /// [`CANCELLED`](crate::StatusCode::CANCELLED): it may have partly run. Handlers can
    /// end early on [`Context::shutdown`](crate::Context::shutdown).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Checks that clients are alive (off by default): when nothing has arrived from a
    /// client for `interval`, the server sends it a PING; when still nothing arrives within
    /// another `interval`, the client is taken as gone (a frozen or hung process that keeps
    /// its end open): its calls are cancelled and the connection is closed and freed. While
    /// the server itself does not read a connection (backpressure) it does not judge it.
    ///
    /// Needs protocol version 2 on the connection (a version 1 client is never pinged).
    /// A zero `interval` turns the keepalive off.
    pub fn keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = Some(interval).filter(|interval| !interval.is_zero());
        self
    }

    /// Options of the endpoint itself (permissions, stale-socket handling).
    pub fn listener(mut self, options: ListenerOptions) -> Self {
        self.listener = options;
        self
    }

    /// Bounds on per-call metadata (protocol version 3): a request whose metadata exceeds
    /// them is answered with an ERROR `BAD_ARGUMENTS` naming the limit, without running
    /// (the connection stays open), and a handler cannot set reply metadata beyond them
    /// ([`Context::set_reply_metadata`](crate::Context::set_reply_metadata) fails).
    pub fn metadata_limits(mut self, limits: MetadataLimits) -> Self {
        self.metadata_limits = limits;
        self
    }
}
