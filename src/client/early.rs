//! A connection whose first call travels right behind the hello (protocol version 3, see
//! [`ClientOptions::early_requests`]).
//!
//! [`open`] encodes the hello (with [`Hello::EARLY`]), builds the connection's task (read
//! the Welcome, bind the methods, run the engine) and returns without waiting. The first
//! call made before the Welcome is read writes the hello and an EARLY_REQUEST frame (the
//! client's own method index) in one write, then drives the connection's task itself until
//! its reply has come, and spawns it to go on alone. Without such a call a starter task
//! runs it, and the hello goes out alone.
//!
//! Where the caller is not a task of the runtime but the thread in a multi-thread
//! runtime's `block_on` ([`drives_here`]), the connection's task is spawned at once and the
//! early caller waits for its reply like any call: a worker thread sees the socket's
//! readiness either way and must wake that thread, so driving the task there would only
//! add the hand-off of the task to a worker (one more wake-up of another thread) once the
//! reply is in. That task, running beside the caller, leaves the hello to the first call
//! for [`HELLO_GRACE`] (else it would often write it alone first); a call that waits for
//! the handshake writes it at once. The early request's fate:
//!
//! | the server | what happens to the early request |
//! | --- | --- |
//! | version 3, same signature | runs; its reply follows the Welcome |
//! | version 3, other signature (client binds by name) | ERROR `EARLY_REJECTED`, not run: sent again as a REQUEST with the table's index |
//! | version 1 or 2 | skipped (an ignorable kind): sent again as a REQUEST once the Welcome says so |
//! | refuses the handshake | never read: the call fails with the handshake's error |
//!
//! Every other call waits for the handshake, as with a plain connect.

use std::future::Future;
use std::pin::Pin;
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
use crate::wire::{read_message, ReadError, READ_CHUNK};

/// The request id of the early request; the connection's own calls count on from 2.
const EARLY_ID: u64 = 1;

/// How long a connection's task spawned at [`open`] leaves the hello to the first call
/// before writing it alone ([`drives_here`]): a call made right after the connect takes it
/// along.
const HELLO_GRACE: Duration = Duration::from_millis(1);

/// The largest body an early request may have. The server's max frame is not known before
/// its Welcome; a larger first call waits for the Welcome like any other.
pub(crate) const MAX_EARLY_BODY: u32 = 1024;

/// A connection whose hello is sent, and whose Welcome may not be read yet.
pub(crate) struct Handshaking {
    pub(crate) service: &'static ServiceInfo,
    pub(crate) address: String,
    format: FormatId,
    /// The largest shared payload the early reply may bring (`ClientOptions::max_shared_bytes`).
    max_shared_bytes: u64,
    pending: Arc<Mutex<Pending>>,
    outcome: watch::Receiver<Option<Outcome>>,
    /// Set once the connection is open: dropping the last handle drops it, which closes
    /// the connection.
    owner: OnceLock<Owner>,
}

/// The connection's task: the handshake, then the engine until the connection ends.
type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the early caller and the connection's task share until the handshake is over.
struct Pending {
    /// The encoded hello until it is written: with the early request, in one write, or by
    /// the task when no call came first.
    hello: Option<BytesMut>,
    /// Why writing the hello failed.
    hello_failed: Option<std::io::Error>,
    writer: Option<WriteHalf>,
    /// The early slot was taken, or the handshake is over: no early request may go now.
    used: bool,
    early: Option<oneshot::Sender<Reply>>,
    /// The connection's task until someone runs it: the early caller drives it itself
    /// while it waits for its reply (so the reply does not cross tasks), then spawns it;
    /// without an early caller, a small starter task runs it.
    task: Option<Task>,
}

/// How the handshake ended.
enum Outcome {
    Open(Arc<Connection>),
    Failed(Error),
}

/// Checks the server's user, then leaves the hello, the write half and the connection's
/// task for the first call (or the starter task) to send and run.
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
    let (reader, writer) = stream.into_split();
    let (publish, outcome) = watch::channel(None);
    let pending = Arc::new(Mutex::new(Pending {
        hello: Some(hello),
        hello_failed: None,
        writer: Some(writer),
        used: false,
        early: None,
        task: None,
    }));
    let link = Arc::new(Handshaking {
        service,
        address: address.clone(),
        format: options.format,
        max_shared_bytes: options.max_shared_bytes,
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
    let grace = !drives_here();
    let task = handshake.boxed(reader, span, grace);
    if grace {
        // No caller here drives it: it runs on a worker from the start (no starter task,
        // whose spawn would cost the same wake-up of a worker).
        tokio::spawn(task);
        return Ok(link);
    }
    let pending = Arc::clone(&link.pending);
    pending.lock().await.task = Some(task);
    tokio::spawn(starter(pending));
    Ok(link)
}

/// Whether a caller running here should drive the connection's task itself: in a task of
/// the runtime, or on a current-thread runtime, the task then runs where the reply is
/// awaited. Not so on the thread of a multi-thread runtime's `block_on` (no task there):
/// the socket's readiness reaches it through a worker anyway, and a task driven there
/// must afterwards be handed to a worker, one more cross-thread wake-up per connect.
fn drives_here() -> bool {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread
                || tokio::task::try_id().is_some()
        }
        Err(_) => true,
    }
}

/// Runs the connection's task unless the early caller took it first.
async fn starter(pending: Arc<Mutex<Pending>>) {
    let task = pending.lock().await.task.take();
    if let Some(task) = task {
        task.await;
    }
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
    /// The connection's task, boxed. (In a function of its own: the task's future is
    /// checked for `Send` here, apart from [`open`], whose future the task reaches again
    /// through `bind` and the introspection client.) With `grace`, the task leaves the
    /// hello to the first call for [`HELLO_GRACE`].
    fn boxed(self, reader: ReadHalf, span: tracing::Span, grace: bool) -> Task {
        Box::pin(self.run(reader, grace).instrument(span))
    }

    /// Reads the Welcome, writing the hello first unless the early request took it along
    /// already; with `grace`, writes it only if no call took it within [`HELLO_GRACE`].
    async fn read_welcome(
        &self,
        reader: &mut ReadHalf,
        buf: &mut BytesMut,
        grace: bool,
    ) -> Result<Option<Welcome>, ReadError> {
        // No grace either once a call took the hello along, or is taking it (the usual
        // case by the time this task first runs): its timer would cost a wake-up of the
        // runtime's driver, and waiting for the lock a wake-up of this task.
        let taken = self
            .pending
            .try_lock()
            .map_or(true, |pending| pending.hello.is_none());
        if !grace || taken {
            send_hello(&self.pending).await;
            return read_message(reader, buf, Welcome::decode).await;
        }
        let reading = read_message(reader, buf, Welcome::decode);
        tokio::pin!(reading);
        tokio::select! {
            biased;
            welcome = &mut reading => return welcome,
            () = tokio::time::sleep(HELLO_GRACE) => {}
        }
        send_hello(&self.pending).await;
        reading.await
    }
}

/// Writes the hello unless a call took it along (or wrote it) already.
async fn send_hello(pending: &Mutex<Pending>) {
    {
        let mut pending = pending.lock().await;
        let Some(hello) = pending.hello.take() else {
            return;
        };
        let Pending {
            writer,
            hello_failed,
            used,
            ..
        } = &mut *pending;
        if let Some(writer) = writer {
            // A server that refused without reading may have closed already: its Welcome
            // is read before the failed write is reported.
            if let Err(err) = writer.write_all(&hello).await {
                *hello_failed = Some(err);
                *used = true;
            }
        }
    }
}

impl Handshake {
    /// Reads the Welcome, binds, hands the early request its fate, publishes the outcome
    /// and runs the connection until it ends.
    async fn run(self, mut reader: ReadHalf, grace: bool) {
        // The read buffer's size from the start (the first read would grow a smaller one).
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let options = &self.options;
        let welcome = match tokio::time::timeout(
            options.handshake_timeout,
            self.read_welcome(&mut reader, &mut buf, grace),
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
            Ok(reply) => match self.pending.lock().await.hello_failed.take() {
                Some(err) if !matches!(reply, Ok(Some(_))) => Err(Error::io(
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
        let (welcome, binding, mut writer) = match (opened, writer) {
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
        // Before the connection is published and calls can be made on it.
        connection.handles.attach_writer(&mut writer);
        if let Some(reply) = early {
            if welcome.version < EARLY_REQUEST_VERSION {
                // The server skipped the frame: the caller sends the call again.
                debug!(
                    version = welcome.version,
                    "the server skipped the early request"
                );
                let _ = reply.send(Ok((
                    Frame::error(
                        EARLY_ID,
                        StatusCode::EARLY_REJECTED,
                        "the server's protocol version has no early requests",
                    ),
                    Vec::new(),
                )));
            } else if reply.is_closed() {
                // The caller gave up while the handshake was under way.
                connection.send_cancel(EARLY_ID);
            } else if connection
                .calls()
                .insert(EARLY_ID, super::waiter::Waiter::Channel(reply))
                .is_err()
            {
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
        debug!(reason = %crate::ErrorChain::new(&err), "handshake failed");
        if let Some(reply) = early {
            let _ = reply.send(Err(err.duplicate()));
        }
        self.publish.send_replace(Some(Outcome::Failed(err)));
    }
}

impl Handshaking {
    /// The connection, once the handshake accepted it: the fast path of every call after
    /// the first (no lock, no watch).
    pub(crate) fn open(&self) -> Option<&Arc<Connection>> {
        self.owner.get().map(Owner::connection)
    }

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
        if self.outcome.borrow().is_none() {
            // A call that waits for the handshake does not leave the hello to the task's
            // grace.
            send_hello(&self.pending).await;
        }
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
            // Encoded right behind the hello when it is still here (one buffer, one write);
            // on any failure the hello is cut back to itself and stays for the task.
            let mut out = pending
                .hello
                .take()
                .unwrap_or_else(|| BytesMut::with_capacity(256));
            let hello_len = out.len();
            let (encoded, handles) = crate::handle::encoding(|| {
                encode_early_request_with(
                    &mut out,
                    EARLY_ID,
                    method,
                    deadline_ms,
                    MAX_EARLY_BODY,
                    |buf| format.encode(args, buf),
                )
            });
            if !handles.is_empty() || encoded.is_err() {
                if hello_len > 0 {
                    out.truncate(hello_len);
                    pending.hello = Some(out);
                }
                if !handles.is_empty() {
                    // Handles go only once the connection's version is known: not early.
                    return None;
                }
                return match encoded {
                    // Too large to send before the server's limit is known.
                    Err(CodecError::FrameTooLarge { .. }) | Ok(()) => None,
                    Err(err) => Some(Err(Error::codec(
                        ErrorKind::Encode,
                        "cannot encode the request",
                        err,
                    ))),
                };
            }
            pending.used = true;
            let Pending {
                writer,
                hello_failed,
                ..
            } = &mut *pending;
            let writer = writer.as_mut()?;
            // On a new socket this small write does not wait. If it fails, the handshake's
            // outcome tells the caller why.
            if let Err(err) = writer.write_all(&out).await {
                *hello_failed = Some(err);
                return None;
            }
            let (reply, receive) = oneshot::channel();
            pending.early = Some(reply);
            // A caller that does not drive it leaves the task to the starter.
            let task = if drives_here() {
                pending.task.take()
            } else {
                None
            };
            (receive, task)
        };
        let (mut reply, task) = reply;
        let mut guard = EarlyGuard {
            link: self,
            done: false,
        };
        // The connection's task runs here, in the caller's task, until the reply came: the
        // reply is read and routed by the task that waits for it. Then (or when this call
        // is dropped) the connection's task goes on on its own.
        let mut driver = Driver { task };
        let reply = match driver.task.as_mut() {
            Some(task) => tokio::select! {
                biased;
                reply = &mut reply => reply,
                () = task => {
                    driver.task = None;
                    reply.await
                }
            },
            None => reply.await,
        };
        drop(driver);
        let (frame, handles) = match reply {
            Ok(Ok(reply)) => reply,
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
                crate::shared_bytes::receiving(self.max_shared_bytes, handles, || {
                    self.format.decode(&frame.body)
                })
                .map_err(|err| Error::codec(ErrorKind::Protocol, "cannot decode the reply", err)),
            );
        }
        if frame.status() == StatusCode::EARLY_REJECTED {
            debug!("the early request was not run; sending it again");
            return None;
        }
        Some(Err(Error::from_remote(frame.status(), &frame.message())))
    }
}

/// The connection's task while the early caller drives it: spawned to go on alone when
/// the caller has its reply or is dropped.
struct Driver {
    task: Option<Task>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            // Outside a runtime (it is being dropped) the connection ends with it.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(task);
            }
        }
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
