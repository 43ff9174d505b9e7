//! One accepted connection on the server: handshake, then reading requests, running their
//! handlers concurrently (bounded), and writing replies.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use ferry_codec::{
    begin_frame, finish_frame, flags, FormatId, Frame, FrameDecoder, FrameKind, Hello, StatusCode,
};
use ferry_transport::{PeerCredentials, ReadHalf, Stream};
use futures::future::{AbortHandle, Abortable};
use futures::FutureExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{watch, Semaphore};
use tracing::{debug, error, info_span, warn, Instrument};

use crate::context::Context;
use crate::outbox::{Outbox, QueueError};
use crate::server::admission::{Ticket, SHED_GRACE};
use crate::server::{handshake, Shared};
use crate::service::{Call, HandlerKind, ServiceDispatch};
use crate::streaming::{
    credit_frame, credit_items, pump, PumpError, Remote, StreamLink, StreamTable, Streaming, WINDOW,
};
use crate::wire::{read_message, read_message_within, ReadError};

/// The state of one served connection that its handlers share.
pub(crate) struct Connection {
    pub(crate) format: FormatId,
    /// The largest frame body the client accepts.
    client_max_frame: u32,
    outbox: Outbox,
    /// Calls running now, by request id, to cancel them.
    calls: Mutex<HashMap<u64, AbortHandle>>,
    /// Streams open on this connection (stream arguments and stream replies).
    streams: Mutex<StreamTable>,
}

impl Connection {
    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<u64, AbortHandle>> {
        self.calls
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, StreamTable> {
        self.streams
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Sends `stream` as the reply of call `id`, paced by the client's credit.
    pub(crate) async fn reply_stream<T: Serialize + Send + 'static>(
        &self,
        id: u64,
        stream: Streaming<T>,
    ) {
        let Some(stream) = stream.into_local() else {
            self.send_error(
                id,
                StatusCode::INTERNAL,
                "the handler returned a stream it received; a received stream cannot be sent on",
            );
            return;
        };
        let gate = self.streams().outbound(id);
        let sent = pump(
            &self.outbox,
            id,
            self.format,
            self.client_max_frame,
            stream,
            gate,
        )
        .await;
        if let Err(PumpError::Encode(err)) = sent {
            let status = err.status();
            let message = format!("cannot send a stream item: {err}");
            warn!(request_id = id, %message, "stream ended early");
            let status = if status == StatusCode::FRAME_TOO_LARGE {
                status
            } else {
                StatusCode::INTERNAL
            };
            self.send_error(id, status, &message);
        }
    }

    /// Opens the receiving end of call `id`'s stream argument and grants the client its
    /// first window.
    pub(crate) fn upload(self: &Arc<Self>, id: u64) -> Remote {
        let items = self.streams().open_inbound(id, WINDOW);
        self.outbox.push_frame_now(&credit_frame(id, WINDOW));
        Remote::new(
            id,
            self.format,
            items,
            Arc::clone(self) as Arc<dyn StreamLink>,
        )
    }

    /// Queues the reply of call `id`; an encoding failure becomes an error reply.
    pub(crate) async fn reply<T: Serialize + ?Sized>(&self, id: u64, value: &T) {
        let format = self.format;
        let max = self.client_max_frame;
        let queued = self
            .outbox
            .push(|buf| {
                let mark = buf.len();
                let start = begin_frame(buf, FrameKind::RESPONSE, 0, 0, id);
                if let Err(err) = format.encode(value, buf) {
                    buf.truncate(mark);
                    return Err(err);
                }
                finish_frame(buf, start, max)
            })
            .await;
        match queued {
            Ok(()) | Err(QueueError::Closed) => {}
            Err(QueueError::Encode(err)) => {
                let status = err.status();
                let (status, message) = if status == StatusCode::FRAME_TOO_LARGE {
                    (status, format!("reply {err}"))
                } else {
                    (
                        StatusCode::INTERNAL,
                        format!("cannot encode the reply: {err}"),
                    )
                };
                warn!(request_id = id, %message, "reply not sent");
                self.send_error(id, status, &message);
            }
        }
    }

    /// Queues an ERROR frame without waiting for queue space (error frames are small).
    fn send_error(&self, id: u64, status: StatusCode, message: &str) {
        self.outbox
            .push_frame_now(&Frame::error(id, status, message));
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

    let hello = {
        let reading_hello = tokio::time::timeout(
            shared.options.handshake_timeout,
            read_message(&mut reader, &mut buf, Hello::decode),
        );
        tokio::pin!(reading_hello);
        let shed = async {
            match &ticket {
                Some(ticket) => ticket.shed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            hello = &mut reading_hello => Some(hello),
            () = shed => {
                // Shed for a newer connection: a client that sent its hello right away (one of a
                // burst the server has not got round to) still gets in, within a short grace.
                match ticket.as_ref().and_then(Ticket::grace) {
                    Some(_grace) => tokio::time::timeout(SHED_GRACE, &mut reading_hello).await.ok(),
                    None => None,
                }
            }
        }
    };
    let Some(hello) = hello else {
        let max = shared.options.max_pending_handshakes;
        debug!(max, "shed: too many connections in their handshake");
        let refused = handshake::Refused {
            status: ferry_codec::HandshakeStatus::SERVER_BUSY,
            message: format!(
                "the server is busy: more than {max} connections are in their handshake"
            ),
        };
        let mut out = BytesMut::new();
        handshake::refusal(shared, &refused).encode(&mut out);
        // One attempt, no waiting: this connection's place is needed now.
        let _ = tokio::time::timeout(Duration::ZERO, writer.write_all(&out)).await;
        return;
    };
    // The handshake's reading part is over: this connection no longer counts as pending.
    drop(ticket);
    let hello = match hello {
        Ok(Ok(Some(hello))) => hello,
        Ok(Ok(None)) => {
            debug!("client left before its handshake");
            return;
        }
        Err(_) => {
            let timeout = shared.options.handshake_timeout;
            warn!(?timeout, "handshake not completed in time; closing");
            let refused = handshake::Refused {
                status: ferry_codec::HandshakeStatus::BAD_HELLO,
                message: format!("handshake not completed within {timeout:?}"),
            };
            let mut out = BytesMut::new();
            handshake::refusal(shared, &refused).encode(&mut out);
            let _ = tokio::time::timeout(Duration::from_secs(1), writer.write_all(&out)).await;
            return;
        }
        Ok(Err(err)) => {
            warn!(error = ?err, "bad handshake; closing");
            let refused = handshake::Refused {
                status: ferry_codec::HandshakeStatus::BAD_HELLO,
                message: match &err {
                    ReadError::Codec(err) => err.to_string(),
                    ReadError::Truncated => "handshake truncated".into(),
                    ReadError::Io(err) => err.to_string(),
                },
            };
            let mut out = BytesMut::new();
            handshake::refusal(shared, &refused).encode(&mut out);
            let _ = tokio::time::timeout(Duration::from_secs(1), writer.write_all(&out)).await;
            return;
        }
    };
    let accepted = match handshake::check(shared, &hello, &peer) {
        Ok(accepted) => accepted,
        Err(refused) => {
            warn!(
                service = %hello.service,
                status = %refused.status,
                reason = %refused.message,
                "connection refused"
            );
            let mut out = BytesMut::new();
            handshake::refusal(shared, &refused).encode(&mut out);
            let _ = tokio::time::timeout(Duration::from_secs(1), writer.write_all(&out)).await;
            return;
        }
    };
    let mut out = BytesMut::new();
    handshake::welcome(shared, &accepted).encode(&mut out);
    if let Err(err) = writer.write_all(&out).await {
        debug!(error = %err, "client left during the handshake");
        return;
    }
    tracing::Span::current().record("service", accepted.service.info().name);
    debug!(
        service = accepted.service.info().name,
        format = accepted.format.name(),
        "handshake done"
    );

    let connection = Arc::new(Connection {
        format: accepted.format,
        client_max_frame: hello.max_frame,
        outbox: Outbox::new(shared.options.write_queue_limit),
        calls: Mutex::new(HashMap::new()),
        streams: Mutex::new(StreamTable::default()),
    });
    let reading = read_requests(shared, &connection, accepted.service, peer, reader, buf);
    let writing = async {
        if let Err(err) = connection.outbox.run_writer(writer).await {
            debug!(error = %err, "write failed; closing");
        }
    };
    tokio::join!(reading, writing);
}

/// The reasons reading requests stops.
enum Stop {
    /// The client closed its side or the stream failed: cancel everything.
    ClientGone,
    /// The protocol broke: cancel everything, the error frame is queued.
    Violation,
    /// The server shuts down: let calls in flight finish within the grace period.
    Shutdown,
}

async fn read_requests(
    shared: &Arc<Shared>,
    connection: &Arc<Connection>,
    service: Arc<dyn ServiceDispatch>,
    peer: Arc<PeerCredentials>,
    mut reader: ReadHalf,
    mut buf: BytesMut,
) {
    let in_flight = Arc::new(Semaphore::new(shared.options.max_in_flight));
    let mut decoder = FrameDecoder::new(shared.options.max_frame);
    let mut shutdown = shared.shutdown.subscribe();
    let stop = loop {
        if !whole_frame_buffered(&buf) {
            // Every request read so far has been handled or handed to its task: write the
            // replies queued meanwhile in one go, before waiting for more requests.
            connection.outbox.flush_now();
        }
        // Frames read now may be answered at once with error frames that do not wait for
        // queue space (unknown method, bad arguments, a duplicate id): read only while the
        // outbox has room, so a client that sends such requests and never reads its replies
        // stalls like one that sends valid ones.
        tokio::select! {
            biased;
            () = connection.outbox.room() => {}
            _ = wait_shutdown(&mut shutdown) => break Stop::Shutdown,
        }
        let frame = tokio::select! {
            biased;
            read = read_message_within(
                &mut reader,
                &mut buf,
                |buf| decoder.decode(buf),
                shared.options.frame_timeout,
            ) => read,
            _ = wait_shutdown(&mut shutdown) => break Stop::Shutdown,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break Stop::ClientGone,
            Err(ReadError::Io(err)) if err.kind() == std::io::ErrorKind::TimedOut => {
                warn!(error = %err, "frame not completed in time; closing the connection");
                connection.send_error(0, StatusCode::PROTOCOL, &err.to_string());
                break Stop::Violation;
            }
            Err(ReadError::Io(err)) => {
                debug!(error = %err, "read failed");
                break Stop::ClientGone;
            }
            Err(ReadError::Truncated) => {
                debug!("client closed in the middle of a frame");
                break Stop::ClientGone;
            }
            Err(ReadError::Codec(err)) => {
                let status = err.status();
                warn!(error = %err, "bad frame from client; closing the connection");
                connection.send_error(0, status, &err.to_string());
                break Stop::Violation;
            }
        };
        if frame.kind == FrameKind::REQUEST {
            // Backpressure: with max_in_flight calls running, stop reading until one ends.
            let permit = tokio::select! {
                permit = Arc::clone(&in_flight).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break Stop::Shutdown,
                },
                _ = wait_shutdown(&mut shutdown) => {
                    connection.send_error(frame.id, StatusCode::SHUTTING_DOWN, "the server is shutting down");
                    break Stop::Shutdown;
                }
            };
            start_call(shared, connection, &service, &peer, frame, permit);
        } else if frame.kind == FrameKind::CANCEL {
            if let Some(handle) = connection.calls().remove(&frame.id) {
                debug!(request_id = frame.id, "cancelled by the client");
                handle.abort();
            } else {
                debug!(request_id = frame.id, "ignored a cancel for no call");
            }
        } else if frame.kind == FrameKind::STREAM_ITEM {
            if let Err(message) = connection.streams().on_item(frame.id, frame.body) {
                warn!(%message, "protocol violation; closing the connection");
                connection.send_error(0, StatusCode::PROTOCOL, &message);
                break Stop::Violation;
            }
        } else if frame.kind == FrameKind::STREAM_END {
            connection.streams().on_end(frame.id);
        } else if frame.kind == FrameKind::CREDIT {
            let Some(items) = credit_items(&frame) else {
                let message = "CREDIT frame without a count";
                warn!(%message, "protocol violation; closing the connection");
                connection.send_error(0, StatusCode::PROTOCOL, message);
                break Stop::Violation;
            };
            connection.streams().on_credit(frame.id, items);
        } else if frame.kind.is_ignorable() {
            debug!(kind = ?frame.kind, "ignoring an extension frame");
        } else {
            let message = format!("unexpected {:?} frame from a client", frame.kind);
            warn!(%message, "protocol violation; closing the connection");
            connection.send_error(0, StatusCode::PROTOCOL, &message);
            break Stop::Violation;
        }
    };
    match stop {
        Stop::ClientGone | Stop::Violation => {
            cancel_all(connection);
            connection.outbox.close_after_flush();
        }
        Stop::Shutdown => {
            let max = u32::try_from(shared.options.max_in_flight).unwrap_or(u32::MAX);
            let grace = shared.options.shutdown_grace;
            if tokio::time::timeout(grace, in_flight.acquire_many(max))
                .await
                .is_err()
            {
                warn!(
                    ?grace,
                    "calls still running after the grace period; cancelling them"
                );
                cancel_all(connection);
            }
            connection.outbox.close_after_flush();
        }
    }
}

/// Whether `buf` starts with a whole frame (header and body).
fn whole_frame_buffered(buf: &[u8]) -> bool {
    match buf.first_chunk::<4>() {
        Some(len) => {
            let body = u32::from_le_bytes(*len) as usize;
            buf.len() >= ferry_codec::HEADER_LEN.saturating_add(body)
        }
        None => false,
    }
}

/// Resolves once a graceful shutdown has begun.
async fn wait_shutdown(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|down| *down).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn cancel_all(connection: &Connection) {
    let calls: Vec<_> = connection.calls().drain().collect();
    if !calls.is_empty() {
        debug!(count = calls.len(), "cancelling calls");
    }
    for (_, handle) in calls {
        handle.abort();
    }
    connection
        .streams()
        .close_all(&crate::error::Error::closed("the connection closed"));
}

/// Decodes the request header, dispatches it and spawns its handler.
fn start_call(
    shared: &Arc<Shared>,
    connection: &Arc<Connection>,
    service: &Arc<dyn ServiceDispatch>,
    peer: &Arc<PeerCredentials>,
    frame: Frame,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let id = frame.id;
    let info = service.info();
    let mut args = frame.body;
    let deadline = if frame.flags & flags::DEADLINE != 0 {
        if args.len() < 4 {
            connection.send_error(
                id,
                StatusCode::PROTOCOL,
                "request has the deadline flag but no deadline",
            );
            return;
        }
        let millis = args.get_u32_le();
        Some(Instant::now() + Duration::from_millis(u64::from(millis)))
    } else {
        None
    };
    let Some(method) = info.methods.get(usize::from(frame.aux)).copied() else {
        let message = format!("no method {} in service `{}`", frame.aux, info.name);
        debug!(request_id = id, %message, "call rejected");
        connection.send_error(id, StatusCode::UNKNOWN_METHOD, &message);
        return;
    };
    if connection.calls().contains_key(&id) {
        connection.send_error(
            id,
            StatusCode::PROTOCOL,
            &format!("request id {id} is already in flight"),
        );
        return;
    }
    let context = Context::new(Arc::clone(peer), info.name, method, id, deadline);
    let call = Call {
        id,
        args,
        context,
        connection: Arc::clone(connection),
    };
    let work = match service.dispatch(frame.aux, call).0 {
        HandlerKind::Run(work) => work,
        HandlerKind::Reject(status, message) => {
            let message = format!("`{}.{method}`: {message}", info.name);
            debug!(request_id = id, %status, %message, "call rejected");
            connection.send_error(id, status, &message);
            return;
        }
    };
    let streaming = frame.flags & flags::STREAM != 0;
    if streaming {
        // Credit for a stream reply may arrive before the handler starts sending.
        connection.streams().outbound(id);
    }
    let (abort, registration) = AbortHandle::new_pair();
    connection.calls().insert(id, abort);
    let span = info_span!("call", service = info.name, method, request_id = id);
    let connection = Arc::clone(connection);
    let running = Running::new(shared);
    let mut task = Box::pin(
        async move {
            let _running = running;
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
            connection.calls().remove(&id);
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

impl StreamLink for Connection {
    fn grant(&self, id: u64, items: u32) {
        self.streams().granted(id, items);
        self.outbox.push_frame_now(&credit_frame(id, items));
    }

    fn dropped(&self, id: u64, _ended: bool) {
        // Items still in flight for it are ignored; the call goes on.
        self.streams().remove_inbound(id);
    }
}
