//! A connection whose first call travels right behind the hello (protocol version 3, see
//! [`ClientOptions::early_requests`]).
//!
//! [`open`] sends the hello (with [`Hello::EARLY`]) and returns at once; a task reads the
//! Welcome, binds the methods and then runs the connection. The first call made before the
//! Welcome is read goes out as an EARLY_REQUEST frame with the client's own method index,
//! and its reply comes after the Welcome. Its outcome:
//!
//! | the server | what happens to the early request |
//! | --- | --- |
//! | version 3, same signature | runs; its reply follows the Welcome |
//! | version 3, other signature (client binds by name) | ERROR `EARLY_REJECTED`, not run: sent again as a REQUEST with the table's index |
//! | version 1 or 2 | skipped (an ignorable kind): sent again as a REQUEST once the Welcome says so |
//! | refuses the handshake | never read: the call fails with the handshake's error |
//!
//! Every other call waits for the handshake, as with a plain connect.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::BytesMut;
use ferry_codec::schema::MethodSchema;
use ferry_codec::{
    encode_early_request_with, CodecError, FormatId, Frame, FrameKind, Hello, StatusCode, Welcome,
    EARLY_REQUEST_VERSION,
};
use ferry_transport::{Name, ReadHalf, Stream, WriteHalf};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{oneshot, watch, Mutex};
use tracing::{debug, Instrument};

use crate::client::connection::{
    bind, check_welcome, hello_bytes, local_schemas, new_connection, Connection, Owner, Reply,
};
use crate::client::ClientOptions;
use crate::contract::ServiceInfo;
use crate::engine::ReadSide;
use crate::error::{Error, ErrorKind};
use crate::wire::read_message;

/// The request id of the early request; the connection's own calls count on from 2.
const EARLY_ID: u64 = 1;

/// The largest body an early request may have. The server's max frame is not known before
/// its Welcome; a larger first call waits for the Welcome like any other.
pub(crate) const MAX_EARLY_BODY: u32 = 1024;

/// A connection whose hello is sent, and whose Welcome may not be read yet.
pub(crate) struct Handshaking {
    pub(crate) service: &'static ServiceInfo,
    pub(crate) address: String,
    format: FormatId,
    pending: Arc<Mutex<Pending>>,
    outcome: watch::Receiver<Option<Outcome>>,
    /// Set once the connection is open: dropping the last handle drops it, which closes
    /// the connection.
    owner: OnceLock<Owner>,
}

/// The write half until the handshake is over, and the early request.
struct Pending {
    writer: Option<WriteHalf>,
    /// The early slot was taken, or the handshake is over: no early request may go now.
    used: bool,
    early: Option<oneshot::Sender<Reply>>,
}

/// How the handshake ended.
enum Outcome {
    Open(Arc<Connection>),
    Failed(Error),
}

/// Checks the server's user, sends the hello announcing an early request and starts the
/// task that reads the Welcome and then runs the connection.
pub(crate) async fn open(
    stream: Stream,
    name: Option<&Name>,
    service: &'static ServiceInfo,
    options: &ClientOptions,
) -> Result<Arc<Handshaking>, Error> {
    let address = name.map_or_else(|| "(stream)".to_owned(), Name::address);
    // Who the server is, before it learns anything from us.
    options
        .server_user
        .check(stream.peer_credentials(), &address)?;
    let local = local_schemas(service)?;
    let by_name = if local.is_some() {
        Hello::BIND_BY_NAME
    } else {
        0
    };
    let hello = hello_bytes(service, Hello::EARLY | by_name, options)?;
    let (reader, mut writer) = stream.into_split();
    // A hello fits an empty socket buffer: this write does not wait. A server that refused
    // without reading may have closed already: its Welcome is read before the failed write
    // is reported.
    let sent = writer.write_all(&hello).await;
    let (publish, outcome) = watch::channel(None);
    let pending = Arc::new(Mutex::new(Pending {
        writer: Some(writer),
        used: sent.is_err(),
        early: None,
    }));
    let link = Arc::new(Handshaking {
        service,
        address: address.clone(),
        format: options.format,
        pending: Arc::clone(&pending),
        outcome,
        owner: OnceLock::new(),
    });
    let span = tracing::debug_span!("client", service = service.name, address = %address);
    let handshake = Handshake {
        link: Arc::downgrade(&link),
        pending,
        publish,
        service,
        local,
        name: name.cloned(),
        address,
        options: options.clone(),
    };
    handshake.start(reader, sent, span);
    Ok(link)
}

/// The task's side of the handshake.
struct Handshake {
    link: Weak<Handshaking>,
    pending: Arc<Mutex<Pending>>,
    publish: watch::Sender<Option<Outcome>>,
    service: &'static ServiceInfo,
    local: Option<&'static [MethodSchema]>,
    name: Option<Name>,
    address: String,
    options: ClientOptions,
}

impl Handshake {
    /// Spawns the task. (A function of its own: the task's future is checked for `Send`
    /// here, apart from [`open`], whose future the task reaches again through `bind` and
    /// the introspection client.)
    fn start(self, reader: ReadHalf, sent: std::io::Result<()>, span: tracing::Span) {
        tokio::spawn(self.run(reader, sent).instrument(span));
    }

    /// Reads the Welcome, binds, hands the early request its fate, publishes the outcome
    /// and runs the connection until it ends.
    async fn run(self, mut reader: ReadHalf, sent: std::io::Result<()>) {
        let mut buf = BytesMut::with_capacity(512);
        let options = &self.options;
        let welcome = match tokio::time::timeout(
            options.handshake_timeout,
            read_message(&mut reader, &mut buf, Welcome::decode),
        )
        .await
        {
            Err(_) => Err(Error::new(
                ErrorKind::Connect,
                format!(
                    "the server at {} did not answer the handshake within {:?}",
                    self.address, options.handshake_timeout
                ),
            )),
            Ok(reply) => match sent {
                Err(err) if !matches!(reply, Ok(Some(_))) => Err(Error::io(
                    ErrorKind::Connect,
                    "cannot send the handshake",
                    err,
                )),
                _ => check_welcome(reply, options),
            },
        };
        let opened = match welcome {
            Ok(welcome) => bind(
                self.name.as_ref(),
                self.service,
                self.local,
                &welcome,
                options,
            )
            .await
            .map(|binding| (welcome, binding)),
            Err(err) => Err(err),
        };
        // From here on no early request can start: it either went out before, or waits
        // for the outcome like any call.
        let (writer, early) = {
            let mut pending = self.pending.lock().await;
            pending.used = true;
            (pending.writer.take(), pending.early.take())
        };
        let (welcome, binding, writer) = match (opened, writer) {
            (Ok((welcome, binding)), Some(writer)) => (welcome, binding, writer),
            (Ok(_), None) => {
                self.fail(
                    early,
                    Error::closed("the connection closed during the handshake"),
                );
                return;
            }
            (Err(err), _) => {
                self.fail(early, err);
                return;
            }
        };
        let connection = new_connection(
            self.service,
            self.address.clone(),
            binding,
            &welcome,
            options,
            EARLY_ID + 1,
        );
        if let Some(reply) = early {
            if welcome.version < EARLY_REQUEST_VERSION {
                // The server skipped the frame: the caller sends the call again.
                debug!(
                    version = welcome.version,
                    "the server skipped the early request"
                );
                let _ = reply.send(Ok(Frame::error(
                    EARLY_ID,
                    StatusCode::EARLY_REJECTED,
                    "the server's protocol version has no early requests",
                )));
            } else if reply.is_closed() {
                // The caller gave up while the handshake was under way.
                connection.send_cancel(EARLY_ID);
            } else if connection.calls().insert(EARLY_ID, reply).is_err() {
                debug!("the early request's caller could not be registered");
            }
        }
        let Some(link) = self.link.upgrade() else {
            debug!("the client was dropped during the handshake");
            return;
        };
        let _ = link.owner.set(Owner::new(Arc::clone(&connection)));
        drop(link);
        self.publish
            .send_replace(Some(Outcome::Open(Arc::clone(&connection))));
        connection.run(ReadSide { reader, buf }, writer).await;
        debug!("connection closed");
    }

    /// The handshake failed with `err`: the early request (never run) and every waiting
    /// call fail with it.
    fn fail(&self, early: Option<oneshot::Sender<Reply>>, err: Error) {
        debug!(reason = %err, "handshake failed");
        if let Some(reply) = early {
            let _ = reply.send(Err(err.duplicate()));
        }
        self.publish.send_replace(Some(Outcome::Failed(err)));
    }
}

impl Handshaking {
    /// The connection once the handshake accepted it, `None` while it is under way, or the
    /// handshake's error.
    pub(crate) fn now(&self) -> Result<Option<Arc<Connection>>, Error> {
        match &*self.outcome.borrow() {
            None => Ok(None),
            Some(Outcome::Open(connection)) => Ok(Some(Arc::clone(connection))),
            Some(Outcome::Failed(err)) => Err(err.duplicate()),
        }
    }

    /// The open connection, once the handshake is over; the handshake's error otherwise.
    pub(crate) async fn connection(&self) -> Result<Arc<Connection>, Error> {
        let mut outcome = self.outcome.clone();
        let result = outcome.wait_for(Option::is_some).await;
        match result.as_deref() {
            Ok(Some(Outcome::Open(connection))) => Ok(Arc::clone(connection)),
            Ok(Some(Outcome::Failed(err))) => Err(err.duplicate()),
            // The task ended without a word: it was dropped with the runtime.
            Ok(None) | Err(_) => Err(Error::closed("the connection closed during the handshake")),
        }
    }

    /// Makes the call as the early request when the handshake is still under way and no
    /// other call took that place. `None`: the call was not made early, or the server did
    /// not run it (it skipped or rejected it); the caller then makes it as usual, once
    /// the handshake is over.
    pub(crate) async fn early_call<A, R>(
        &self,
        method: u16,
        args: &A,
        timeout: Option<Duration>,
    ) -> Option<Result<R, Error>>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let reply = {
            let mut pending = self.pending.lock().await;
            if pending.used {
                return None;
            }
            let format = self.format;
            let deadline_ms = timeout
                .map(|timeout| u32::try_from(timeout.as_millis().max(1)).unwrap_or(u32::MAX));
            let mut out = BytesMut::new();
            match encode_early_request_with(
                &mut out,
                EARLY_ID,
                method,
                deadline_ms,
                MAX_EARLY_BODY,
                |buf| format.encode(args, buf),
            ) {
                Ok(()) => {}
                // Too large to send before the server's limit is known.
                Err(CodecError::FrameTooLarge { .. }) => return None,
                Err(err) => {
                    return Some(Err(Error::codec(
                        ErrorKind::Encode,
                        "cannot encode the request",
                        err,
                    )))
                }
            }
            pending.used = true;
            let writer = pending.writer.as_mut()?;
            // Right behind the hello, on an empty socket buffer: this small write does not
            // wait. If it fails, the handshake's outcome tells the caller why.
            if writer.write_all(&out).await.is_err() {
                return None;
            }
            let (reply, receive) = oneshot::channel();
            pending.early = Some(reply);
            receive
        };
        let mut guard = EarlyGuard {
            link: self,
            done: false,
        };
        let frame = match reply.await {
            Ok(Ok(frame)) => frame,
            Ok(Err(err)) => {
                guard.done = true;
                return Some(Err(err));
            }
            Err(_) => {
                guard.done = true;
                return Some(Err(Error::closed("the connection closed before the reply")));
            }
        };
        guard.done = true;
        if frame.kind == FrameKind::RESPONSE {
            return Some(
                self.format.decode(&frame.body).map_err(|err| {
                    Error::codec(ErrorKind::Protocol, "cannot decode the reply", err)
                }),
            );
        }
        if frame.status() == StatusCode::EARLY_REJECTED {
            debug!("the early request was not run; sending it again");
            return None;
        }
        Some(Err(Error::from_remote(frame.status(), &frame.message())))
    }
}

/// Cancels the early request on the server when its caller gives up once the connection
/// is open (before that, the handshake task cancels it when it finds the caller gone).
struct EarlyGuard<'a> {
    link: &'a Handshaking,
    done: bool,
}

impl Drop for EarlyGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Ok(Some(connection)) = self.link.now() {
            if connection.calls().remove(EARLY_ID).is_some() {
                connection.send_cancel(EARLY_ID);
            }
        }
    }
}
