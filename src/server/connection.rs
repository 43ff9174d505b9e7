//! The server's role in a connection: the handshake, then dispatching requests to the
//! service (bounded by `max_in_flight`), cancelling them, and draining on shutdown. The
//! read loop, the routing of every other frame kind and the outbox are the engine's.
//!
//! Graceful shutdown, per connection:
//!
//! | state | event | what the connection does |
//! | --- | --- | --- |
//! | serving | shutdown begins | GOAWAY (version 2) with the highest request id read; draining |
//! | draining | REQUEST | ERROR `SHUTTING_DOWN` for it; not run |
//! | draining | CANCEL, CREDIT, stream items, PING | as while serving |
//! | draining | no call in flight | stop reading, flush, close |
//! | draining | grace period over | ERROR `CANCELLED` to each call still running, stop them, close |

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use ferry_codec::{flags, Frame, StatusCode};
use ferry_transport::{PeerCredentials, Stream};
use futures::future::{AbortHandle, AbortRegistration, Abortable, Aborted};
use futures::FutureExt;
use tokio::sync::watch;
use tracing::{debug, error, info_span, warn, Instrument, Span};

use crate::budget::{Budget, Held};
use crate::context::Context;
use crate::contract::{Call, HandlerKind, ServiceDispatch};
use crate::engine::{CallEntry, Engine, InsertError, ReadSide, Role, Stop};
use crate::error::Error;
use crate::metadata::ReplyState;
use crate::server::admission::Ticket;
use crate::server::early::{self, EarlyRequests};
use crate::server::in_flight::{InFlight, Place};
use crate::server::{handshake, Shared};

/// A served connection.
pub(crate) type Connection = Engine<ServerRole>;

/// What the server adds to a connection's engine.
pub(crate) struct ServerRole {
    shared: Arc<Shared>,
    service: Arc<dyn ServiceDispatch>,
    peer: Arc<PeerCredentials>,
    /// The calls running on this connection, at most `max_in_flight`.
    in_flight: InFlight,
    /// The reply state of a call that ended in its first step, as good as new for the next
    /// call (one allocation less per call).
    spare_reply: Mutex<Option<Arc<ReplyState>>>,
    /// The highest request id read so far (what a GOAWAY reports).
    last_read: AtomicU64,
    /// Set once the server's shutdown reached this connection: no new call runs.
    draining: AtomicBool,
    /// What this connection does with early requests.
    pub(crate) early: EarlyRequests,
}

/// A call running in a task of its own, in the connection's call table (a call is not in
/// it during its first step: see [`run_first_step`]).
pub(crate) struct Running {
    id: u64,
    /// How to stop its task.
    abort: AbortHandle,
}

impl Running {
    /// Stops the call's task.
    fn abort(&self) {
        self.abort.abort();
    }
}

impl CallEntry for Running {
    fn close(self, _reason: &Error) {
        self.abort();
    }
}

/// Serves `stream` until the client leaves, the protocol breaks or the server shuts down.
///
/// `ticket` is the connection's place among those in their handshake (see
/// [`admission`](crate::server::admission)); it is given up once the hello is read.
pub(crate) async fn serve(shared: Arc<Shared>, stream: Stream, ticket: Option<Ticket>) {
    crate::telemetry::connection(true);
    serve_inner(&shared, stream, ticket).await;
    crate::telemetry::connection(false);
    let open = shared.connections.fetch_sub(1, Ordering::SeqCst) - 1;
    debug!(open, "connection closed");
}

async fn serve_inner(shared: &Arc<Shared>, stream: Stream, ticket: Option<Ticket>) {
    let peer = Arc::new(stream.peer_credentials().clone());
    let (mut reader, mut writer) = stream.into_split();
    // The read buffer's size from the start (reading the hello would grow a smaller one).
    let mut buf = BytesMut::with_capacity(crate::wire::READ_CHUNK);
    let Some((accepted, hello)) =
        handshake::accept(shared, &peer, &mut reader, &mut writer, &mut buf, ticket).await
    else {
        return;
    };
    let handshake::Accepted {
        welcome,
        service,
        format,
        version,
        early,
        table,
    } = accepted;
    drop(table);
    let role = ServerRole {
        shared: Arc::clone(shared),
        service,
        peer,
        in_flight: InFlight::new(shared.options.max_in_flight),
        spare_reply: Mutex::new(None),
        last_read: AtomicU64::new(0),
        draining: AtomicBool::new(false),
        early,
    };
    let budget = Budget::new(
        shared.options.connection_memory_limit(),
        Arc::clone(&shared.memory),
    );
    let connection = Arc::new(Engine::new(
        role,
        version,
        format,
        shared.options.max_frame,
        hello.max_frame,
        shared.options.write_queue_limit,
        budget,
    ));
    // Not kept across the connection's life (its task's size is per connection).
    drop(hello);
    connection.handles.attach_writer(&mut writer);
    queue_welcome(&connection, welcome);
    connection.run(ReadSide { reader, buf }, writer).await;
}

/// Queues the Welcome first: the writer sends it with the replies of the early requests the
/// read loop finds behind the hello (their handlers' first steps run before the writer's
/// first write), so a connect and its first call cost the server one write.
fn queue_welcome(connection: &Connection, welcome: BytesMut) {
    let queued = connection.outbox.push_now(|buf| {
        buf.extend_from_slice(&welcome);
        Ok::<(), std::convert::Infallible>(())
    });
    if queued.is_err() {
        debug!("connection closed before its Welcome was queued");
    }
}

/// Resolves once a graceful shutdown has begun.
async fn wait_shutdown(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|down| *down).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The server's shutdown reached this connection: say GOAWAY (version 2) once, and run no
/// new call from here on.
fn begin_drain(connection: &Connection) {
    let role = &connection.role;
    if role.draining.swap(true, Ordering::SeqCst) {
        return;
    }
    let last_id = role.last_read.load(Ordering::SeqCst);
    let in_flight = connection.calls().len();
    if connection.has_control_frames() {
        connection.outbox.push_frame_now(&Frame::goaway(last_id));
        connection.outbox.flush_now();
        debug!(last_id, in_flight, "shutting down: GOAWAY sent");
    } else {
        debug!(
            last_id,
            in_flight, "shutting down: protocol version 1, no GOAWAY"
        );
    }
}

const NOT_RUN: &str = "the server is shutting down; the call was not run";

impl Role for ServerRole {
    type Call = Running;
    const PEER: &'static str = "a client";
    const CANCEL_ON_STREAM_DROP: bool = false;

    fn frame_timeout(&self) -> Option<Duration> {
        Some(self.shared.options.frame_timeout)
    }

    fn keepalive(&self) -> Option<Duration> {
        self.shared.options.keepalive
    }

    fn max_shared_bytes(&self) -> u64 {
        self.shared.options.max_shared_bytes
    }

    fn stopping(
        connection: &Arc<Connection>,
    ) -> impl std::future::Future<Output = Stop> + Send + 'static {
        let connection = Arc::clone(connection);
        let mut shutdown = connection.role.shared.shutdown.subscribe();
        async move {
            wait_shutdown(&mut shutdown).await;
            begin_drain(&connection);
            // Reading goes on (cancels, credit, stream items of the calls in flight) until
            // every call has ended or the grace period is over.
            let grace = connection.role.shared.options.shutdown_grace;
            if tokio::time::timeout(grace, connection.role.in_flight.idle())
                .await
                .is_err()
            {
                warn!(
                    ?grace,
                    "calls still running after the grace period; stopping them"
                );
            }
            Stop::Local(Error::shutting_down("the server is shutting down"))
        }
    }

    async fn read_budget(connection: &Connection) {
        // Frames read now may be answered at once with error frames that do not wait for
        // queue space (unknown method, bad arguments, a duplicate id): read only while the
        // outbox has room, so a client that sends such requests and never reads its
        // replies stalls like one that sends valid ones.
        connection.outbox.room().await;
    }

    async fn on_request(
        connection: &Arc<Connection>,
        frame: Frame,
        held: Held,
    ) -> Result<(), Stop> {
        // Id 0 is the connection's (an ERROR with it ends the connection): never a call's.
        if frame.id == 0 {
            return Err(Stop::violation(
                "REQUEST with request id 0, which is reserved for the connection",
            ));
        }
        let role = &connection.role;
        // Only the read loop writes it.
        if frame.id > role.last_read.load(Ordering::SeqCst) {
            role.last_read.store(frame.id, Ordering::SeqCst);
        }
        // Checked on the shutdown flag itself, not only on `draining`: a request read after
        // the shutdown began is refused even before the connection's own drain starts.
        if role.draining.load(Ordering::SeqCst) || role.shared.is_shutting_down() {
            begin_drain(connection);
            debug!(request_id = frame.id, "shutting down; call not run");
            connection.send_error(frame.id, StatusCode::SHUTTING_DOWN, NOT_RUN);
            return Ok(());
        }
        // Backpressure: with max_in_flight calls running, stop reading until one ends.
        let place = match role.in_flight.try_enter() {
            Some(place) => place,
            // Boxed: this rare wait would otherwise make every connection's task larger
            // (its future is part of the read loop's, which is the connection task's).
            None => match Box::pin(wait_for_place(connection, frame.id)).await {
                Some(place) => place,
                None => return Ok(()),
            },
        };
        start_call(connection, frame, held, place);
        Ok(())
    }

    async fn on_early_request(
        connection: &Arc<Connection>,
        frame: Frame,
        held: Held,
    ) -> Result<(), Stop> {
        early::on_early_request(connection, frame, held).await
    }

    fn on_reply(
        _connection: &Connection,
        frame: Frame,
        _handles: Vec<crate::handle::Handle>,
    ) -> Result<(), Stop> {
        Err(Stop::unexpected::<Self>(frame.kind))
    }

    fn on_goaway(_connection: &Connection, _last_id: u64) -> Result<(), Stop> {
        // Only a server says GOAWAY; a client that is done closes the connection.
        Err(Stop::unexpected::<Self>(ferry_codec::FrameKind::GOAWAY))
    }

    fn on_cancel(connection: &Connection, frame: Frame) -> Result<(), Stop> {
        let running = connection.calls().remove(frame.id);
        if let Some(running) = running {
            debug!(request_id = frame.id, "cancelled by the client");
            running.abort();
        } else {
            debug!(request_id = frame.id, "ignored a cancel for no call");
        }
        Ok(())
    }

    async fn finish(connection: &Connection, stop: Stop) {
        match stop {
            // The shutdown drained the connection, or its grace period is over: calls
            // still running are cut, and told so (they did partly run).
            Stop::Local(_) => cut_all(connection),
            Stop::Violation(violation) => {
                connection.send_error(0, violation.status, &violation.message);
                cancel_all(connection);
            }
            Stop::Gone(_) | Stop::Closed(_) => cancel_all(connection),
            Stop::Unresponsive(_) => {
                cancel_all(connection);
                connection.outbox.close();
                return;
            }
        }
        connection.outbox.close_after_flush();
    }

    fn write_failed(_connection: &Connection, err: std::io::Error) {
        debug!(error = %err, "write failed; closing");
    }
}

/// Stops every call still running at the end of a shutdown's grace period, answering each
/// with `CANCELLED`.
fn cut_all(connection: &Connection) {
    let running = connection
        .calls()
        .close(Error::shutting_down("the server is shutting down"));
    if running.is_empty() {
        return;
    }
    let grace = connection.role.shared.options.shutdown_grace;
    let message = format!(
        "the server shut down before the call finished (grace period of {grace:?}); it may have partly run"
    );
    debug!(
        count = running.len(),
        "cutting calls at the end of the grace period"
    );
    for call in running {
        connection.send_error(call.id, StatusCode::CANCELLED, &message);
        call.abort();
    }
    connection
        .streams()
        .close_all(&Error::closed("the server shut down"));
}

fn cancel_all(connection: &Connection) {
    let count = connection.fail_all(Error::closed("the connection closed"));
    if count > 0 {
        debug!(count, "cancelling calls");
    }
}

/// Waits, not reading, until a call may run on `connection`: its place, or `None` when the
/// server's shutdown began meanwhile (request `id` is then answered `SHUTTING_DOWN`).
async fn wait_for_place(connection: &Arc<Connection>, id: u64) -> Option<Place<'_>> {
    let role = &connection.role;
    let _paused = connection.not_reading();
    let mut shutdown = role.shared.shutdown.subscribe();
    tokio::select! {
        place = role.in_flight.enter() => Some(place),
        _ = wait_shutdown(&mut shutdown) => {
            begin_drain(connection);
            connection.send_error(id, StatusCode::SHUTTING_DOWN, NOT_RUN);
            None
        }
    }
}

/// Decodes the request header, dispatches it and runs its handler's first step.
fn start_call(connection: &Arc<Connection>, frame: Frame, held: Held, place: Place<'_>) {
    let id = frame.id;
    let role = &connection.role;
    let info = role.service.info();
    let mut frame = frame;
    let Some((budget, args)) = request_deadline(connection, &mut frame) else {
        return;
    };
    // One clock read per request, and none when neither a deadline nor the call's duration
    // needs it: its deadline and its duration both count from here.
    let at = (budget.is_some() || crate::telemetry::wants_duration()).then(Instant::now);
    let deadline = budget.zip(at).map(|(budget, at)| at + budget);
    let limits = &role.shared.options.metadata_limits;
    let (metadata, args) = match crate::metadata::split(&frame, args, connection.version, limits) {
        Ok(split) => split,
        Err(err) => {
            let message = format!("bad metadata: {err}");
            warn!(request_id = id, %message, "call rejected");
            connection.send_error(id, StatusCode::BAD_ARGUMENTS, &message);
            return;
        }
    };
    let Some(method) = info.methods.get(usize::from(frame.aux)).copied() else {
        let message = format!("no method {} in service `{}`", frame.aux, info.name);
        debug!(request_id = id, %message, "call rejected");
        connection.send_error(id, StatusCode::UNKNOWN_METHOD, &message);
        return;
    };
    if !may_start(connection, id) {
        return;
    }
    let span = call_span(info.name, method, id, metadata.as_ref());
    let reply = reply_state(role);
    let context = Context::new(
        Arc::clone(&role.peer),
        info.name,
        method,
        id,
        deadline,
        metadata,
        Arc::clone(&reply),
        Arc::clone(&role.shared),
    );
    let Some(work) = dispatch(connection, &frame, context, args, held) else {
        return;
    };
    let started = Started {
        id,
        service: info.name,
        method,
        deadline,
        streaming: frame.has_flag(flags::STREAM),
        at,
        reply,
    };
    if started.streaming {
        // Credit for a stream reply may arrive before the handler starts sending.
        connection.streams().outbound(id);
    }
    run_first_step(connection, started, work, span, place);
}

/// A reply state for a new call: the spare one, if there is one.
fn reply_state(role: &ServerRole) -> Arc<ReplyState> {
    let spare = role
        .spare_reply
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .take();
    spare.unwrap_or_else(|| Arc::new(ReplyState::new(role.shared.options.metadata_limits)))
}

/// Keeps the reply state of a call that ended for the next call, unless something still
/// shares it (a clone of the call's [`Context`]).
fn recycle_reply(role: &ServerRole, mut reply: Arc<ReplyState>) {
    if let Some(state) = Arc::get_mut(&mut reply) {
        state.reset();
        *role
            .spare_reply
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(reply);
    }
}

/// The call's span, for a subscriber that wants it: `None` when none does, so a call pays
/// for no span and no enter and exit on each poll of its handler.
///
/// Checked first against the level any subscriber wants at all: with tracing's `log`
/// feature on and no subscriber, even a disabled span would format its fields for the
/// `log` crate on every call (calls are not logged through `log` as spans, only their
/// events are).
fn call_span(
    service: &'static str,
    method: &'static str,
    id: u64,
    metadata: Option<&ferry_codec::Metadata>,
) -> Option<Span> {
    if !tracing::level_enabled!(tracing::Level::INFO) {
        return None;
    }
    let span = info_span!(
        "call",
        service,
        method,
        request_id = id,
        trace_id = tracing::field::Empty,
        parent_id = tracing::field::Empty,
    );
    if span.is_disabled() {
        return None;
    }
    if let Some(trace) = metadata.and_then(crate::TraceParent::from_metadata) {
        span.record("trace_id", tracing::field::display(trace.trace_id_hex()));
        span.record("parent_id", tracing::field::display(trace.parent_id_hex()));
    }
    Some(span)
}

/// Most handlers finish without waiting (the reply is queued in the outbox): their first
/// step runs right here in the connection task, which saves a task hop on the way in and
/// another on the way out (the writer runs in this task too), and the call ends here too,
/// with no task, box or abort handle of its own, and without ever entering the call table.
/// A handler that does wait continues in a task of its own, which a cancel aborts; its
/// next poll registers that task's waker.
///
/// While the first step runs, the call is not in the table: only this task reads requests
/// (so a duplicate of its id or a cancel for it cannot be read meanwhile) and closes the
/// table. [`may_start`] checked its id first; a call that waits is put in the table, with
/// its abort handle, before this task reads again.
fn run_first_step(
    connection: &Arc<Connection>,
    started: Started,
    mut work: Work,
    span: Option<Span>,
    place: Place<'_>,
) {
    let role = &connection.role;
    role.shared.calls.fetch_add(1, Ordering::SeqCst);
    let entered = span.as_ref().map(Span::enter);
    let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
    let polled = std::panic::catch_unwind(AssertUnwindSafe(|| work.poll_unpin(&mut cx)));
    let outcome = match polled {
        Ok(Poll::Ready(())) => Ok(Ok(())),
        Err(panic) => Ok(Err(panic)),
        Ok(Poll::Pending) => {
            let (abort, registration) = AbortHandle::new_pair();
            let running = Running {
                id: started.id,
                abort,
            };
            let inserted = connection.calls().insert(started.id, running);
            match inserted {
                Ok(()) => {
                    drop(entered);
                    return continue_in_task(connection, started, work, span, place, registration);
                }
                // Only this task closes the table, and it has not; refused all the same,
                // the call ends as cancelled.
                Err(_) => Err(Aborted),
            }
        }
    };
    drop(work);
    finish_call(connection, &started, Some(outcome), false);
    drop(place);
    role.shared.calls.fetch_sub(1, Ordering::SeqCst);
    drop(entered);
    recycle_reply(role, started.reply);
}

/// Runs the rest of a call whose first step waited in a task of its own, which gives back
/// its place and its count when it ends (or is dropped).
fn continue_in_task(
    connection: &Arc<Connection>,
    started: Started,
    work: Work,
    span: Option<Span>,
    place: Place<'_>,
    registration: AbortRegistration,
) {
    // Given back by `Counted`, with the count of running calls, when the task ends.
    place.keep();
    let counted = Counted(Arc::clone(connection));
    let task = async move {
        let counted = counted;
        run_call(&counted.0, started, work, registration).await;
    };
    match span {
        Some(span) => drop(tokio::spawn(task.instrument(span))),
        None => drop(tokio::spawn(task)),
    }
}

/// A handler's work, as dispatch hands it back.
type Work = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How a handler ended: `None` past its deadline, `Err` cancelled, `Ok(Err)` panicked.
type Outcome = Option<Result<std::thread::Result<()>, Aborted>>;

/// What the task of a started call needs to finish it.
struct Started {
    id: u64,
    service: &'static str,
    method: &'static str,
    deadline: Option<Instant>,
    /// Whether the call has a reply or upload stream to take out of the table at its end.
    streaming: bool,
    /// When the request was read (for the call's deadline and duration): `None` when
    /// neither needed the clock (see [`crate::telemetry::wants_duration`]).
    at: Option<Instant>,
    /// The status the handler's reply sent.
    reply: Arc<crate::metadata::ReplyState>,
}

/// The time the client gave the request (its deadline, from when it was read), and its
/// arguments, taken out of `frame` (moved, not cloned: a clone of a frame's body would
/// allocate a shared buffer for it); `None` when the deadline flag is set without a
/// deadline (the error is queued).
fn request_deadline(
    connection: &Connection,
    frame: &mut Frame,
) -> Option<(Option<Duration>, Bytes)> {
    let mut body = std::mem::take(&mut frame.body);
    if !frame.has_flag(flags::DEADLINE) {
        return Some((None, body));
    }
    let Some(prefix) = body.first_chunk::<4>() else {
        connection.send_error(
            frame.id,
            StatusCode::PROTOCOL,
            "request has the deadline flag but no deadline",
        );
        return None;
    };
    let millis = u32::from_le_bytes(*prefix);
    body.advance(4);
    Some((Some(Duration::from_millis(u64::from(millis))), body))
}

/// Whether call `id` may start: `false` when the id is in flight already (the error is
/// queued) or the table is closed. The call goes in the table only if its first step waits
/// (see [`run_first_step`]).
fn may_start(connection: &Connection, id: u64) -> bool {
    let vacant = connection.calls().vacant(id);
    match vacant {
        Ok(()) => true,
        Err(InsertError::Duplicate) => {
            connection.send_error(
                id,
                StatusCode::PROTOCOL,
                &format!("request id {id} is already in flight"),
            );
            false
        }
        // Only the read loop adds calls, and it has stopped before the table closes.
        Err(InsertError::Closed(_)) => false,
    }
}

/// Runs the handler past its first step until it ends, panics, is cancelled or passes its
/// deadline.
async fn run_call(
    connection: &Connection,
    started: Started,
    work: Work,
    registration: AbortRegistration,
) {
    let work = Abortable::new(AssertUnwindSafe(work).catch_unwind(), registration);
    let outcome = match started.deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), work).await.ok(),
        None => Some(work.await),
    };
    finish_call(connection, &started, outcome, true);
}

/// Reports how the handler ended (a panic, a passed deadline, a cancel) to the client and
/// the telemetry, and takes the call out of the tables (out of the call table when it is
/// `in_table`).
fn finish_call(connection: &Connection, started: &Started, outcome: Outcome, in_table: bool) {
    let Started {
        id,
        service,
        method,
        streaming,
        at,
        ref reply,
        ..
    } = *started;
    let status = match outcome {
        Some(Ok(Ok(()))) => reply.status(),
        Some(Ok(Err(panic))) => {
            let message = panic_message(&panic);
            error!(panic = %message, "handler panicked");
            let message = format!("the handler of `{method}` panicked");
            reply_error(connection, id, StatusCode::INTERNAL, &message, reply);
            StatusCode::INTERNAL
        }
        Some(Err(_aborted)) => {
            debug!("handler cancelled");
            StatusCode::CANCELLED
        }
        None => {
            debug!("deadline passed; handler stopped");
            let message = format!("`{method}` did not finish before the client's deadline");
            reply_error(
                connection,
                id,
                StatusCode::DEADLINE_EXCEEDED,
                &message,
                reply,
            );
            StatusCode::DEADLINE_EXCEEDED
        }
    };
    crate::telemetry::call_finished(service, method, status, || at.map(|at| at.elapsed()));
    if in_table {
        connection.calls().remove(id);
    }
    if streaming {
        let mut streams = connection.streams();
        streams.remove_outbound(id);
        streams.remove_inbound(id);
    }
}

/// Answers call `id` with an ERROR that carries the reply metadata its handler set before
/// it failed (protocol version 3).
fn reply_error(
    connection: &Connection,
    id: u64,
    status: StatusCode,
    message: &str,
    reply: &crate::metadata::ReplyState,
) {
    crate::metadata::send_error(
        &connection.outbox,
        connection.version,
        id,
        status,
        message,
        reply,
    );
}

/// Hands the call to the service; `None` when it was rejected (the error is queued).
fn dispatch(
    connection: &Arc<Connection>,
    frame: &Frame,
    context: Context,
    args: Bytes,
    held: Held,
) -> Option<Work> {
    let role = &connection.role;
    let info = role.service.info();
    let id = frame.id;
    let method = context.method();
    let mut held = held;
    let call = Call {
        id,
        encoded: Mutex::new(crate::contract::EncodedArgs {
            bytes: args,
            handles: std::mem::take(&mut held.handles),
        }),
        context,
        responder: Arc::clone(connection) as Arc<dyn crate::contract::Responder>,
        capture: None,
        _held: held,
    };
    match role.service.dispatch(frame.aux, call).0 {
        HandlerKind::Run(work) => Some(work),
        HandlerKind::Reject(status, message) => {
            let message = format!("`{}.{method}`: {message}", info.name);
            debug!(request_id = id, %status, %message, "call rejected");
            crate::telemetry::call_finished(info.name, method, status, || Some(Duration::ZERO));
            connection.send_error(id, status, &message);
            None
        }
    }
}

/// Holds one running handler's place on its connection and counts it in
/// [`Shared::calls`] (counted when its first step began) until dropped (even if its task
/// is).
struct Counted(Arc<Connection>);

impl Drop for Counted {
    fn drop(&mut self) {
        let role = &self.0.role;
        role.in_flight.leave();
        role.shared.calls.fetch_sub(1, Ordering::SeqCst);
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
