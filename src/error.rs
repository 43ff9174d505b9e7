//! [`Error`]: what a ferry call or connection can fail with, on the local side.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ferry_codec::{CodecError, HandshakeStatus, StatusCode};
use ferry_transport::TransportError;

mod chain;

pub use chain::ErrorChain;

/// What went wrong, in broad classes a caller can act on.
///
/// New kinds may be added; match with a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No connection could be made: no server at the name, a timeout, a permission error.
    Connect,
    /// The server does not host the wanted service, or hosts a different version of it
    /// (the signature hashes differ), or speaks another protocol version or format.
    ServiceMismatch,
    /// The server refused this client (its authorization hook said no).
    NotAuthorized,
    /// The server runs as another user than the client requires
    /// ([`ClientOptions::server_user`](crate::ClientOptions::server_user)), or the runtime
    /// directory that holds a plain name's socket could be controlled by another user (a
    /// symbolic link, a directory of someone else, or one that group or others may write):
    /// a process squatting the name, or the wrong server. Nothing was sent to it.
    ServerIdentity,
    /// The connection is closed: the peer went away or the connection failed. Calls pending
    /// on it fail at once with this kind; such a call may have run (all of it, or part of
    /// it, for example when a server's shutdown grace period cut it: status
    /// [`StatusCode::CANCELLED`]), so retrying it is the caller's decision.
    Closed,
    /// The server is shutting down and did **not run** the call (it answered
    /// `SHUTTING_DOWN`, said GOAWAY before reading it, or refused the connection in the
    /// handshake): safe to retry, on a new connection once a server is back.
    ShuttingDown,
    /// The call's deadline passed before its reply arrived.
    DeadlineExceeded,
    /// The server rejected the call: unknown method, arguments it could not decode, or
    /// overloaded. [`Error::status`] tells which.
    Rejected,
    /// The server failed while handling the call (for example its handler panicked).
    Internal,
    /// The peer broke the protocol (bad magic, an unexpected frame, an undecodable reply).
    Protocol,
    /// A frame was larger than the receiving side accepts (the request, or the reply).
    FrameTooLarge,
    /// A value could not be encoded on this side (a `Serialize` impl failed).
    Encode,
    /// Binding or running a server failed (address in use, unsafe directory, I/O).
    Server,
    /// The server has the service but not this method, or has it with another schema (its
    /// arguments or return value differ in structure): the call was not sent. The message
    /// names the method and, when the server's schema could be read, the first difference.
    Incompatible,
    /// A shared-memory segment for a [`SharedBytes`](crate::SharedBytes) could not be
    /// created, sealed or mapped on this side (the system's memory or mapping limits).
    SharedMemory,
    /// ferry was used in a way it cannot serve (for example a blocking client called from
    /// inside an async runtime).
    Usage,
    /// A tower layer around the client's calls failed the call with an error of its own
    /// (feature `tower`, `Client::layer`); its
    /// [`source`](std::error::Error::source) is the layer's error.
    Middleware,
}

/// The error type of every ferry client call and server operation.
///
/// Opaque on purpose: inspect it with [`Error::kind`], the `is_*` predicates and
/// [`Error::status`].
///
/// # Printing
///
/// Like every error of ferry's crates, its `Display` (`{}`) says what failed at this
/// level only, and [`std::error::Error::source`] leads to the cause underneath (a
/// [`TransportError`], a [`CodecError`], an [`std::io::Error`]), whose text `{}` does not
/// repeat. To print the whole chain on one line, as a log line or a program's last
/// words should, use the alternate form `{:#}` (or [`ErrorChain`] for any error):
///
/// ```
/// use ferry::introspect::IntrospectClient;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let err = IntrospectClient::connect("no-such-server-here").await.unwrap_err();
/// assert!(err.is_connect());
/// assert_eq!(err.to_string(), "cannot connect");
/// // On Linux: "cannot connect: no server at /run/user/1000/ferry/no-such-server-here.sock:
/// // No such file or directory (os error 2)"
/// let full = format!("{err:#}");
/// assert!(full.starts_with("cannot connect: no server at "), "{full}");
/// # });
/// ```
///
/// In `tracing` fields, write `error = %format_args!("{err:#}")` or
/// `error = %ferry::ErrorChain::new(&err)`, so the log keeps the cause.
///
/// ```
/// # async fn demo(err: ferry::Error) {
/// if err.is_closed() {
///     // reconnect
/// } else if err.is_timeout() {
///     // retry later
/// }
/// # }
/// ```
pub struct Error {
    kind: ErrorKind,
    status: Option<StatusCode>,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    /// The metadata the server sent with its ERROR (protocol version 3).
    reply_metadata: Option<Box<ferry_codec::Metadata>>,
}

impl Error {
    /// An error of kind `kind` whose message is `message`, for code that stands in for a
    /// ferry client (a fake in tests) or reports its own failures as ferry's.
    ///
    /// ```
    /// use ferry::{Error, ErrorKind};
    ///
    /// /// A stand-in for a `CalcClient` in a test: the server is gone.
    /// struct FakeCalc;
    ///
    /// impl FakeCalc {
    ///     async fn add(&self, _a: i64, _b: i64) -> Result<i64, Error> {
    ///         Err(Error::new(ErrorKind::Closed, "the connection closed"))
    ///     }
    /// }
    ///
    /// # tokio_test_block_on(async {
    /// let err = FakeCalc.add(1, 2).await.unwrap_err();
    /// assert!(err.is_closed());
    /// assert_eq!(err.to_string(), "the connection closed");
    /// assert_eq!(err.status(), None);
    /// # });
    /// # fn tokio_test_block_on(f: impl std::future::Future<Output = ()>) {
    /// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    /// # }
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            status: None,
            message: message.into(),
            source: None,
            reply_metadata: None,
        }
    }

    /// This error with `source` as its [`source`](std::error::Error::source): the failure
    /// underneath. The message should not repeat the source's text (`{:#}` prints both).
    ///
    /// ```
    /// use ferry::{Error, ErrorKind};
    ///
    /// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such socket");
    /// let err = Error::new(ErrorKind::Connect, "cannot connect").with_source(io);
    /// assert_eq!(err.to_string(), "cannot connect");
    /// assert_eq!(format!("{err:#}"), "cannot connect: no such socket");
    /// let source = std::error::Error::source(&err).map(|s| s.to_string());
    /// assert_eq!(source.as_deref(), Some("no such socket"));
    /// ```
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// This error with an already boxed `source`.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn with_boxed_source(
        mut self,
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    ) -> Self {
        self.source = Some(Arc::from(source));
        self
    }

    /// This error with the metadata the server sent on its ERROR frame.
    pub(crate) fn with_reply_metadata(mut self, metadata: Option<ferry_codec::Metadata>) -> Self {
        self.reply_metadata = metadata.filter(|md| !md.is_empty()).map(Box::new);
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub(crate) fn closed(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Closed, message)
    }

    /// A call or connection the server did not take because it shuts down: not run.
    pub(crate) fn shutting_down(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::ShuttingDown, message).with_status(StatusCode::SHUTTING_DOWN)
    }

    pub(crate) fn deadline(timeout: Duration) -> Self {
        Error::new(
            ErrorKind::DeadlineExceeded,
            format!("deadline of {timeout:?} exceeded"),
        )
        .with_status(StatusCode::DEADLINE_EXCEEDED)
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Protocol, message)
    }

    /// The error a client reports for an ERROR frame from the server.
    pub(crate) fn from_remote(status: StatusCode, message: &str) -> Self {
        let kind = match status {
            StatusCode::DEADLINE_EXCEEDED => ErrorKind::DeadlineExceeded,
            StatusCode::INTERNAL => ErrorKind::Internal,
            StatusCode::FRAME_TOO_LARGE => ErrorKind::FrameTooLarge,
            StatusCode::PROTOCOL => ErrorKind::Protocol,
            StatusCode::NOT_AUTHORIZED => ErrorKind::NotAuthorized,
            StatusCode::UNAVAILABLE => ErrorKind::Closed,
            StatusCode::SHUTTING_DOWN => ErrorKind::ShuttingDown,
            // Cut by a server's shutdown at the end of its grace period: it partly ran.
            StatusCode::CANCELLED => ErrorKind::Closed,
            _ => ErrorKind::Rejected,
        };
        Error::new(kind, format!("server replied {status}: {message}")).with_status(status)
    }

    /// The error a client reports for a Welcome that refused the connection.
    pub(crate) fn from_handshake(status: HandshakeStatus, message: &str) -> Self {
        let kind = match status {
            HandshakeStatus::NOT_AUTHORIZED => ErrorKind::NotAuthorized,
            HandshakeStatus::SERVER_BUSY => ErrorKind::Connect,
            HandshakeStatus::SHUTTING_DOWN => ErrorKind::ShuttingDown,
            HandshakeStatus::BAD_HELLO => ErrorKind::Protocol,
            _ => ErrorKind::ServiceMismatch,
        };
        Error::new(
            kind,
            format!("server refused the connection ({status}): {message}"),
        )
    }

    pub(crate) fn codec(kind: ErrorKind, what: &str, err: CodecError) -> Self {
        let status = err.status();
        let kind = if status == StatusCode::FRAME_TOO_LARGE {
            ErrorKind::FrameTooLarge
        } else {
            kind
        };
        Error::new(kind, what).with_status(status).with_source(err)
    }

    pub(crate) fn transport(kind: ErrorKind, what: &str, err: TransportError) -> Self {
        Error::new(kind, what).with_source(err)
    }

    /// A failed connect: [`ErrorKind::ServerIdentity`] when the place of the endpoint
    /// cannot be trusted, else [`ErrorKind::Connect`].
    pub(crate) fn connect(err: TransportError) -> Self {
        let kind = if err.is_unsafe_directory() {
            ErrorKind::ServerIdentity
        } else {
            ErrorKind::Connect
        };
        Error::transport(kind, "cannot connect", err)
    }

    pub(crate) fn io(kind: ErrorKind, what: &str, err: std::io::Error) -> Self {
        Error::new(kind, what).with_source(err)
    }

    /// Creating, sealing or mapping a shared-memory segment failed.
    pub(crate) fn shared_memory(err: ferry_transport::shm::SegmentError) -> Self {
        Error::new(ErrorKind::SharedMemory, "cannot use shared memory").with_source(err)
    }

    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The wire status code, when the error came from (or was sent as) an ERROR frame.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// The metadata the server sent with the ERROR that failed this call (protocol
    /// version 3): what the handler set with
    /// [`Context::set_reply_metadata`](crate::Context::set_reply_metadata) before it failed
    /// (panicked, passed its deadline, or was failed by a server layer), for example a
    /// `retry-after` or an error id. `None` when the server sent none, and for errors that
    /// did not come from the server.
    pub fn reply_metadata(&self) -> Option<&ferry_codec::Metadata> {
        self.reply_metadata.as_deref()
    }

    /// Could not connect: no server, timeout, permission denied.
    pub fn is_connect(&self) -> bool {
        self.kind == ErrorKind::Connect
    }

    /// The connection is closed (the peer went away); a new connection may help.
    pub fn is_closed(&self) -> bool {
        self.kind == ErrorKind::Closed
    }

    /// The server is shutting down and did not run the call (or refused the connection):
    /// safe to retry once a server is back. See [`ErrorKind::ShuttingDown`].
    pub fn is_shutting_down(&self) -> bool {
        self.kind == ErrorKind::ShuttingDown
    }

    /// Whether the call certainly did not run, so making it again cannot run it twice:
    /// true for [`ErrorKind::Connect`] (no connection was made) and
    /// [`ErrorKind::ShuttingDown`] (the server did not run it). Everything else may have
    /// run, or will fail the same way again.
    pub fn is_safe_to_retry(&self) -> bool {
        matches!(self.kind, ErrorKind::Connect | ErrorKind::ShuttingDown)
    }

    /// The call's deadline passed.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::DeadlineExceeded
    }

    /// The server rejected the call (see [`Error::status`] for why).
    pub fn is_rejected(&self) -> bool {
        self.kind == ErrorKind::Rejected
    }

    /// The server failed internally while handling the call.
    pub fn is_internal(&self) -> bool {
        self.kind == ErrorKind::Internal
    }

    /// The peer broke the protocol.
    pub fn is_protocol(&self) -> bool {
        self.kind == ErrorKind::Protocol
    }

    /// A frame exceeded the receiver's size limit.
    pub fn is_frame_too_large(&self) -> bool {
        self.kind == ErrorKind::FrameTooLarge
    }

    /// The server hosts no such service, or another version of it.
    pub fn is_service_mismatch(&self) -> bool {
        self.kind == ErrorKind::ServiceMismatch
    }

    /// The server refused this client.
    pub fn is_not_authorized(&self) -> bool {
        self.kind == ErrorKind::NotAuthorized
    }

    /// The server does not run as the user the client requires, or the directory of its
    /// socket cannot be trusted.
    pub fn is_server_identity(&self) -> bool {
        self.kind == ErrorKind::ServerIdentity
    }

    /// A value could not be encoded on this side.
    pub fn is_encode(&self) -> bool {
        self.kind == ErrorKind::Encode
    }

    /// Binding or running a server failed.
    pub fn is_server(&self) -> bool {
        self.kind == ErrorKind::Server
    }

    /// ferry was used in a way it cannot serve (for example a blocking call inside a
    /// runtime).
    pub fn is_usage(&self) -> bool {
        self.kind == ErrorKind::Usage
    }

    /// The server lacks this method, or has it with another schema; the call was not sent.
    pub fn is_incompatible(&self) -> bool {
        self.kind == ErrorKind::Incompatible
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Error");
        debug.field("kind", &self.kind);
        if let Some(status) = self.status {
            debug.field("status", &status);
        }
        debug.field("message", &self.message);
        if let Some(source) = &self.source {
            debug.field("source", source);
        }
        if let Some(metadata) = &self.reply_metadata {
            debug.field("reply_metadata", metadata);
        }
        debug.finish()
    }
}

/// `{}` is this error's own message; `{:#}` adds its sources, joined by ": ".
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if f.alternate() {
            if let Some(source) = std::error::Error::source(self) {
                write!(f, ": {}", ErrorChain::new(source))?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl Error {
    /// A copy for fanning one failure out to many waiting calls: kind, status, message and
    /// source (shared) are kept.
    pub(crate) fn duplicate(&self) -> Self {
        Error {
            kind: self.kind,
            status: self.status,
            message: self.message.clone(),
            source: self.source.clone(),
            reply_metadata: self.reply_metadata.clone(),
        }
    }
}
