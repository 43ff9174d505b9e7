//! The server's role in a connection: the handshake, then dispatching requests to the
//! service (bounded by `max_in_flight`), cancelling them, and draining on shutdown. The
//! read loop, the routing of every other frame kind and the outbox are the engine's.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferry_codec::{flags, Frame, StatusCode};
use ferry_transport::{PeerCredentials, Stream};
use futures::future::{AbortHandle, Abortable};
use futures::FutureExt;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tracing::{debug, error, info_span, warn, Instrument};

use crate::context::Context;
use crate::contract::{Call, HandlerKind, ServiceDispatch};
use crate::engine::{CallEntry, Engine, InsertError, ReadSide, Role, Stop};
use crate::error::Error;
use crate::server::admission::Ticket;
use crate::server::{handshake, Shared};

/// A served connection.
pub(crate) type Connection = Engine<ServerRole>;

/// What the server adds to a connection's engine.
pub(crate) struct ServerRole {
    shared: Arc<Shared>,
    service: Arc<dyn ServiceDispatch>,
    peer: Arc<PeerCredentials>,
    /// One permit per call that may run at once on this connection.
    in_flight: Arc<Semaphore>,
}

impl CallEntry for AbortHandle {
    fn close(self, _reason: &Error) {
        self.abort();
    }
}

/// Serves `stream` until the client leaves, the protocol breaks or the server shuts down.
///
/// `ticket` is the connection's place among those in their handshake (see
/// [`admission`](crate::server::admission)); it is given up once the hello is read.
pub(crate) async fn serve(shared: Arc<Shared>, stream: Stream, ticket: Option<Ticket>) {
    serve_inner(&shared, stream, ticket).await;
    let open = shared.connections.fetch_sub(1, Ordering::SeqCst) - 1;
    debug!(open, "connection closed");
}

async fn serve_inner(shared: &Arc<Shared>, stream: Stream, ticket: Option<Ticket>) {
    let peer = Arc::new(stream.peer_credentials().clone());
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = BytesMut::with_capacity(512);
    let Some((accepted, hello)) =
        handshake::accept(shared, &peer, &mut reader, &mut writer, &mut buf, ticket).await
    else {
        return;
    };
    let role = ServerRole {
        shared: Arc::clone(shared),
        service: accepted.service,
        peer,
        in_flight: Arc::new(Semaphore::new(shared.options.max_in_flight)),
    };
    let connection = Arc::new(Engine::new(
        role,
        accepted.format,
        shared.options.max_frame,
        hello.max_frame,
        shared.options.write_queue_limit,
    ));
    connection.run(ReadSide { reader, buf }, writer).await;
}

/// Resolves once a graceful shutdown has begun.
async fn wait_shutdown(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|down| *down).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Role for ServerRole {
    type Call = AbortHandle;
    const PEER: &'static str = "a client";
    const CANCEL_ON_STREAM_DROP: bool = false;

    fn frame_timeout(&self) -> Option<Duration> {
        Some(self.shared.options.frame_timeout)
    }

    fn stopping(&self) -> impl std::future::Future<Output = Stop> + Send + 'static {
        let mut shutdown = self.shared.shutdown.subscribe();
        async move {
            wait_shutdown(&mut shutdown).await;
            Stop::Local(Error::closed("the server is shutting down"))
        }
    }

    async fn read_budget(connection: &Connection) {
        // Frames read now may be answered at once with error frames that do not wait for
        // queue space (unknown method, bad arguments, a duplicate id): read only while the
        // outbox has room, so a client that sends such requests and never reads its
        // replies stalls like one that sends valid ones.
        connection.outbox.room().await;
    }

    async fn on_request(connection: &Arc<Connection>, frame: Frame) -> Result<(), Stop> {
        // Backpressure: with max_in_flight calls running, stop reading until one ends.
        let role = &connection.role;
        let permit = match Arc::clone(&role.in_flight).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => {
                return Err(Stop::Local(Error::closed("the server is shutting down")))
            }
            Err(TryAcquireError::NoPermits) => {
                let mut shutdown = role.shared.shutdown.subscribe();
                tokio::select! {
                    permit = Arc::clone(&role.in_flight).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return Err(Stop::Local(Error::closed("the server is shutting down"))),
                    },
                    _ = wait_shutdown(&mut shutdown) => {
                        connection.send_error(frame.id, StatusCode::SHUTTING_DOWN, "the server is shutting down");
                        return Err(Stop::Local(Error::closed("the server is shutting down")));
                    }
                }
            }
        };
        start_call(connection, frame, permit);
        Ok(())
    }

    fn on_reply(_connection: &Connection, frame: Frame) -> Result<(), Stop> {
        Err(Stop::unexpected::<Self>(frame.kind))
    }

    fn on_cancel(connection: &Connection, frame: Frame) -> Result<(), Stop> {
        let handle = connection.calls().remove(frame.id);
        if let Some(handle) = handle {
            debug!(request_id = frame.id, "cancelled by the client");
            handle.abort();
        } else {
            debug!(request_id = frame.id, "ignored a cancel for no call");
        }
        Ok(())
    }

    async fn finish(connection: &Connection, stop: Stop) {
        match stop {
            Stop::Local(_) => {
                let options = &connection.role.shared.options;
                let max = u32::try_from(options.max_in_flight).unwrap_or(u32::MAX);
                let grace = options.shutdown_grace;
                if tokio::time::timeout(grace, connection.role.in_flight.acquire_many(max))
                    .await
                    .is_err()
                {
                    warn!(
                        ?grace,
                        "calls still running after the grace period; cancelling them"
                    );
                    cancel_all(connection);
                }
            }
            Stop::Violation(violation) => {
                connection.send_error(0, violation.status, &violation.message);
                cancel_all(connection);
            }
            Stop::Gone(_) | Stop::Closed(_) => cancel_all(connection),
        }
        connection.outbox.close_after_flush();
    }

    fn write_failed(_connection: &Connection, err: std::io::Error) {
        debug!(error = %err, "write failed; closing");
    }
}

fn cancel_all(connection: &Connection) {
    let count = connection.fail_all(Error::closed("the connection closed"));
    if count > 0 {
        debug!(count, "cancelling calls");
    }
}

/// Decodes the request header, dispatches it and runs its handler's first step.
fn start_call(connection: &Arc<Connection>, frame: Frame, permit: OwnedSemaphorePermit) {
    let id = frame.id;
    let role = &connection.role;
    let info = role.service.info();
    let (deadline, args) = match frame.split_deadline() {
        Ok((millis, args)) => (
            millis.map(|millis| Instant::now() + Duration::from_millis(u64::from(millis))),
            args,
        ),
        Err(_) => {
            connection.send_error(
                id,
                StatusCode::PROTOCOL,
                "request has the deadline flag but no deadline",
            );
            return;
        }
    };
    let Some(method) = info.methods.get(usize::from(frame.aux)).copied() else {
        let message = format!("no method {} in service `{}`", frame.aux, info.name);
        debug!(request_id = id, %message, "call rejected");
        connection.send_error(id, StatusCode::UNKNOWN_METHOD, &message);
        return;
    };
    let (abort, registration) = AbortHandle::new_pair();
    match connection.calls().insert(id, abort) {
        Ok(()) => {}
        Err(InsertError::Duplicate) => {
            connection.send_error(
                id,
                StatusCode::PROTOCOL,
                &format!("request id {id} is already in flight"),
            );
            return;
        }
        // Only the read loop adds calls, and it has stopped before the table closes.
        Err(InsertError::Closed(_)) => return,
    }
    let work = match dispatch(connection, &frame, method, deadline, args) {
        Some(work) => work,
        None => {
            connection.calls().remove(id);
            return;
        }
    };
    let streaming = frame.has_flag(flags::STREAM);
    if streaming {
        // Credit for a stream reply may arrive before the handler starts sending.
        connection.streams().outbound(id);
    }
    let span = info_span!("call", service = info.name, method, request_id = id);
    let task_connection = Arc::clone(connection);
    let running = Running::new(&role.shared);
    let mut task = Box::pin(
        async move {
            let _running = running;
            let connection = task_connection;
            let work = Abortable::new(AssertUnwindSafe(work).catch_unwind(), registration);
            let outcome = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline.into(), work).await.ok(),
                None => Some(work.await),
            };
            match outcome {
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(panic))) => {
                    let message = panic_message(&panic);
                    error!(panic = %message, "handler panicked");
                    connection.send_error(
                        id,
                        StatusCode::INTERNAL,
                        &format!("the handler of `{method}` panicked"),
                    );
                }
                Some(Err(_aborted)) => debug!("handler cancelled"),
                None => {
                    debug!("deadline passed; handler stopped");
                    connection.send_error(
                        id,
                        StatusCode::DEADLINE_EXCEEDED,
                        &format!("`{method}` did not finish before the client's deadline"),
                    );
                }
            }
            connection.calls().remove(id);
            if streaming {
                let mut streams = connection.streams();
                streams.remove_outbound(id);
                streams.remove_inbound(id);
            }
            drop(permit);
        }
        .instrument(span),
    );
    // Most handlers finish without waiting (the reply is queued in the outbox): run the
    // first step right here in the connection task, which saves a task hop on the way in
    // and another on the way out (the writer runs in this task too). A handler that does
    // wait continues in a task of its own; its next poll registers that task's waker.
    let waker = futures::task::noop_waker_ref();
    let mut cx = std::task::Context::from_waker(waker);
    if task.poll_unpin(&mut cx).is_pending() {
        tokio::spawn(task);
    }
}

/// Hands the call to the service; `None` when it was rejected (the error is queued).
fn dispatch(
    connection: &Arc<Connection>,
    frame: &Frame,
    method: &'static str,
    deadline: Option<Instant>,
    args: Bytes,
) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>> {
    let role = &connection.role;
    let info = role.service.info();
    let id = frame.id;
    let context = Context::new(Arc::clone(&role.peer), info.name, method, id, deadline);
    let call = Call {
        id,
        args,
        context,
        responder: Arc::clone(connection) as Arc<dyn crate::contract::Responder>,
    };
    match role.service.dispatch(frame.aux, call).0 {
        HandlerKind::Run(work) => Some(work),
        HandlerKind::Reject(status, message) => {
            let message = format!("`{}.{method}`: {message}", info.name);
            debug!(request_id = id, %status, %message, "call rejected");
            connection.send_error(id, status, &message);
            None
        }
    }
}

/// Counts one running handler in [`Shared::calls`] until dropped (even if its task is).
struct Running(Arc<Shared>);

impl Running {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.calls.fetch_add(1, Ordering::SeqCst);
        Running(Arc::clone(shared))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.calls.fetch_sub(1, Ordering::SeqCst);
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}
