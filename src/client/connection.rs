//! The client's connection: handshake, the table of calls waiting for replies, and the
//! task that reads replies and writes requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use ferry_codec::{
    begin_frame, finish_frame, flags, FormatId, Frame, FrameDecoder, FrameKind, HandshakeStatus,
    Hello, StatusCode, Welcome, PROTOCOL_VERSION,
};
use ferry_transport::{ReadHalf, Stream};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{oneshot, Notify};
use tracing::{debug, warn, Instrument};

use crate::client::ClientOptions;
use crate::error::{Error, ErrorKind};
use crate::outbox::{Outbox, QueueError};
use crate::service::ServiceInfo;
use crate::streaming::{
    credit_frame, credit_items, pump, PumpError, Remote, StreamLink, StreamTable, Streaming, WINDOW,
};
use crate::wire::{read_message, ReadError};

type Reply = Result<Frame, Error>;

/// State shared by a client's handles and its connection task.
pub(crate) struct Shared {
    pub(crate) service: &'static ServiceInfo,
    pub(crate) address: String,
    pub(crate) server_max_frame: u32,
    format: FormatId,
    next_id: AtomicU64,
    pending: Mutex<Pending>,
    outbox: Outbox,
    /// Streams open on this connection.
    streams: Mutex<StreamTable>,
    /// Woken once the connection closes.
    closed_signal: Notify,
}

#[derive(Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set once the connection is closed: why.
    closed: Option<Error>,
}

/// Owned by the client handles; dropping the last one ends the connection.
pub(crate) struct Owner {
    shared: Arc<Shared>,
    stop: Arc<Notify>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.close(Error::closed("the client was dropped"));
        self.stop.notify_one();
    }
}

/// Connects the handshake on `stream` and starts the connection task.
pub(crate) async fn open(
    stream: Stream,
    address: String,
    service: &'static ServiceInfo,
    options: &ClientOptions,
) -> Result<(Arc<Shared>, Owner), Error> {
    // Who the server is, before it learns anything from us.
    options
        .server_user
        .check(stream.peer_credentials(), &address)?;
    let (mut reader, mut writer) = stream.into_split();
    let hello = Hello {
        version: PROTOCOL_VERSION,
        format: options.format.as_u8(),
        max_frame: options.max_frame,
        signature: service.signature,
        service: service.name.to_owned(),
    };
    let mut out = BytesMut::new();
    hello
        .encode(&mut out)
        .map_err(|err| Error::codec(ErrorKind::Connect, "invalid hello", err))?;
    let mut buf = BytesMut::with_capacity(512);
    let handshake = async {
        // A server that refuses without reading (shedding a crowd, out of file descriptors)
        // may have written its Welcome and closed before the hello could go out: read what
        // it said before reporting the failed write.
        let sent = writer.write_all(&out).await;
        let reply = read_message(&mut reader, &mut buf, Welcome::decode).await;
        if let Err(err) = sent {
            if !matches!(reply, Ok(Some(_))) {
                return Err(Error::io(
                    ErrorKind::Connect,
                    "cannot send the handshake",
                    err,
                ));
            }
        }
        reply
            .map_err(|err| match err {
                ReadError::Io(err) => {
                    Error::io(ErrorKind::Connect, "cannot read the handshake reply", err)
                }
                ReadError::Codec(err) => {
                    Error::codec(ErrorKind::Protocol, "bad handshake reply", err)
                }
                ReadError::Truncated => Error::new(
                    ErrorKind::Connect,
                    "the server closed the connection during the handshake",
                ),
            })?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Connect,
                    "the server closed the connection during the handshake",
                )
            })
    };
    let welcome = tokio::time::timeout(options.handshake_timeout, handshake)
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Connect,
                format!(
                    "the server at {address} did not answer the handshake within {:?}",
                    options.handshake_timeout
                ),
            )
        })??;
    if welcome.status != HandshakeStatus::OK {
        return Err(Error::from_handshake(welcome.status, &welcome.message));
    }
    if welcome.format != options.format.as_u8() {
        return Err(Error::protocol(format!(
            "the server chose payload format {} instead of {}",
            welcome.format,
            options.format.as_u8()
        )));
    }
    let shared = Arc::new(Shared {
        service,
        address,
        server_max_frame: welcome.max_frame,
        format: options.format,
        next_id: AtomicU64::new(1),
        pending: Mutex::new(Pending::default()),
        outbox: Outbox::new(options.write_queue_limit),
        streams: Mutex::new(StreamTable::default()),
        closed_signal: Notify::new(),
    });
    let stop = Arc::new(Notify::new());
    let span = tracing::debug_span!("client", service = service.name, address = %shared.address);
    let task_shared = Arc::clone(&shared);
    let task_stop = Arc::clone(&stop);
    let decoder = FrameDecoder::new(options.max_frame);
    tokio::spawn(
        async move {
            let reading = read_replies(&task_shared, reader, buf, decoder, &task_stop);
            let writing = async {
                if let Err(err) = task_shared.outbox.run_writer(writer).await {
                    task_shared.close(Error::io(
                        ErrorKind::Closed,
                        "the connection failed while writing",
                        err,
                    ));
                    task_stop.notify_one();
                }
            };
            tokio::join!(reading, writing);
            debug!("connection closed");
        }
        .instrument(span),
    );
    Ok((Arc::clone(&shared), Owner { shared, stop }))
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, StreamTable> {
        self.streams
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Tells the server to stop call `id` (its caller is gone).
    fn send_cancel(&self, id: u64) {
        self.outbox
            .push_frame_now(&Frame::new(FrameKind::CANCEL, id, bytes::Bytes::new()));
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.pending().closed.is_some()
    }

    /// Resolves once the connection is closed (at once when it already is).
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.closed_signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// Marks the connection closed and fails every waiting call with `reason`.
    fn close(&self, reason: Error) {
        let waiting = {
            let mut pending = self.pending();
            if pending.closed.is_none() {
                pending.closed = Some(reason);
            }
            std::mem::take(&mut pending.waiting)
        };
        let reason = self.closed_error();
        for (_, reply) in waiting {
            let _ = reply.send(Err(reason.duplicate()));
        }
        self.streams().close_all(&reason);
        self.outbox.close();
        self.closed_signal.notify_waiters();
    }

    fn closed_error(&self) -> Error {
        match &self.pending().closed {
            Some(reason) => reason.duplicate(),
            None => Error::closed("the connection is closed"),
        }
    }

    pub(crate) async fn call<A, R>(
        &self,
        method: u16,
        args: &A,
        timeout: Option<Duration>,
    ) -> Result<R, Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.call_with_upload::<A, R, ()>(method, args, timeout, None)
            .await
    }

    /// A call whose reply is a stream: returns at once with the receiving end.
    pub(crate) async fn call_streaming<A, T>(
        self: &Arc<Self>,
        method: u16,
        args: &A,
        timeout: Option<Duration>,
    ) -> Result<Streaming<T>, Error>
    where
        A: Serialize + ?Sized,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let items = {
            let pending = self.pending();
            if let Some(reason) = &pending.closed {
                return Err(reason.duplicate());
            }
            self.streams().open_inbound(id, WINDOW)
        };
        let remote = Remote::new(
            id,
            self.format,
            items,
            Arc::clone(self) as Arc<dyn StreamLink>,
        );
        // From here on, dropping `remote` cancels the call.
        self.send_request(method, id, args, timeout, flags::STREAM)
            .await?;
        self.outbox.push_frame_now(&credit_frame(id, WINDOW));
        Ok(Streaming::remote(remote))
    }

    /// A call, optionally sending a stream of `T` while it runs (the method's stream argument).
    pub(crate) async fn call_with_upload<A, R, T>(
        &self,
        method: u16,
        args: &A,
        timeout: Option<Duration>,
        upload: Option<Streaming<T>>,
    ) -> Result<R, Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
        T: Serialize + Send + 'static,
    {
        let upload = match upload {
            Some(stream) => Some(stream.into_local().ok_or_else(|| {
                Error::new(
                    ErrorKind::Encode,
                    "a stream received from a peer cannot be sent on; collect it or wrap it in Streaming::new",
                )
            })?),
            None => None,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = oneshot::channel();
        {
            let mut pending = self.pending();
            if let Some(reason) = &pending.closed {
                return Err(reason.duplicate());
            }
            pending.waiting.insert(id, reply_tx);
        }
        let gate = upload.as_ref().map(|_| self.streams().outbound(id));
        let mut guard = CallGuard {
            shared: self,
            id,
            sent: false,
            done: false,
            upload: gate.is_some(),
        };
        let frame_flags = if upload.is_some() { flags::STREAM } else { 0 };
        let exchange = async {
            self.send_request(method, id, args, timeout, frame_flags)
                .await?;
            guard.sent = true;
            let (Some(stream), Some(gate)) = (upload, gate) else {
                return reply_rx.await.unwrap_or_else(|_| Err(self.closed_error()));
            };
            let sending = pump(
                &self.outbox,
                id,
                self.format,
                self.server_max_frame,
                stream,
                gate,
            );
            tokio::pin!(sending, reply_rx);
            let mut pumping = true;
            loop {
                tokio::select! {
                    reply = &mut reply_rx => {
                        break reply.unwrap_or_else(|_| Err(self.closed_error()));
                    }
                    sent = &mut sending, if pumping => {
                        pumping = false;
                        if let Err(PumpError::Encode(err)) = sent {
                            return Err(Error::codec(
                                ErrorKind::Encode,
                                "cannot encode a stream item",
                                err,
                            ));
                        }
                    }
                }
            }
        };
        let frame = match timeout {
            Some(timeout) => tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| Err(Error::deadline(timeout))),
            None => exchange.await,
        };
        guard.done = frame.is_ok();
        let frame = frame?;
        if frame.kind == FrameKind::RESPONSE {
            self.format
                .decode(&frame.body)
                .map_err(|err| Error::codec(ErrorKind::Protocol, "cannot decode the reply", err))
        } else {
            Err(Error::from_remote(
                StatusCode(frame.aux),
                &String::from_utf8_lossy(&frame.body),
            ))
        }
    }

    async fn send_request<A: Serialize + ?Sized>(
        &self,
        method: u16,
        id: u64,
        args: &A,
        timeout: Option<Duration>,
        stream_flag: u8,
    ) -> Result<(), Error> {
        let format = self.format;
        let max = self.server_max_frame;
        let deadline_ms =
            timeout.map(|timeout| u32::try_from(timeout.as_millis().max(1)).unwrap_or(u32::MAX));
        let frame_flags = if deadline_ms.is_some() {
            flags::DEADLINE | stream_flag
        } else {
            stream_flag
        };
        // A lone call writes its request itself (no hop to the writer task); with other
        // calls in flight the writer task batches requests into fewer writes.
        let alone = self.pending().waiting.len() <= 1;
        let encode = |buf: &mut BytesMut| {
            let mark = buf.len();
            let start = begin_frame(buf, FrameKind::REQUEST, frame_flags, method, id);
            if let Some(ms) = deadline_ms {
                buf.put_u32_le(ms);
            }
            if let Err(err) = format.encode(args, buf) {
                buf.truncate(mark);
                return Err(err);
            }
            finish_frame(buf, start, max)
        };
        let queued = if alone {
            self.outbox.push_direct(encode).await
        } else {
            self.outbox.push(encode).await
        };
        queued.map_err(|err| match err {
            QueueError::Closed => self.closed_error(),
            QueueError::Encode(err) => {
                Error::codec(ErrorKind::Encode, "cannot encode the request", err)
            }
        })
    }

    /// Routes one frame from the server. `Err` ends the connection.
    fn on_frame(&self, frame: Frame) -> Result<(), Error> {
        if frame.kind == FrameKind::RESPONSE || frame.kind == FrameKind::ERROR {
            if frame.id == 0 {
                let status = StatusCode(frame.aux);
                let message = String::from_utf8_lossy(&frame.body);
                warn!(%status, %message, "the server closed the connection with an error");
                let mut err = Error::from_remote(status, &message);
                if err.kind() == ErrorKind::Rejected {
                    err = Error::closed(format!("connection closed by the server: {err}"));
                }
                return Err(err);
            }
            let waiting = self.pending().waiting.remove(&frame.id);
            match waiting {
                Some(reply) => {
                    let _ = reply.send(Ok(frame));
                }
                None if frame.kind == FrameKind::ERROR => {
                    let err = Error::from_remote(
                        StatusCode(frame.aux),
                        &String::from_utf8_lossy(&frame.body),
                    );
                    if self.streams().on_error(frame.id, err).is_err() {
                        debug!(request_id = frame.id, "error for a call no longer waiting");
                    }
                }
                None => debug!(request_id = frame.id, "reply for a call no longer waiting"),
            }
            Ok(())
        } else if frame.kind == FrameKind::STREAM_ITEM {
            self.streams()
                .on_item(frame.id, frame.body)
                .map_err(Error::protocol)
        } else if frame.kind == FrameKind::STREAM_END {
            self.streams().on_end(frame.id);
            Ok(())
        } else if frame.kind == FrameKind::CREDIT {
            let items = credit_items(&frame)
                .ok_or_else(|| Error::protocol("CREDIT frame without a count"))?;
            self.streams().on_credit(frame.id, items);
            Ok(())
        } else if frame.kind.is_ignorable() {
            Ok(())
        } else {
            Err(Error::protocol(format!(
                "unexpected {:?} frame from the server",
                frame.kind
            )))
        }
    }
}

async fn read_replies(
    shared: &Shared,
    mut reader: ReadHalf,
    mut buf: BytesMut,
    mut decoder: FrameDecoder,
    stop: &Notify,
) {
    let reason = loop {
        let read = tokio::select! {
            read = read_message(&mut reader, &mut buf, |buf| decoder.decode(buf)) => read,
            _ = stop.notified() => break Error::closed("the client was dropped"),
        };
        match read {
            Ok(Some(frame)) => {
                if let Err(err) = shared.on_frame(frame) {
                    break err;
                }
            }
            Ok(None) => break Error::closed("the server closed the connection"),
            Err(ReadError::Truncated) => {
                break Error::closed("the server closed the connection in the middle of a frame")
            }
            Err(ReadError::Io(err)) => {
                break Error::io(
                    ErrorKind::Closed,
                    "the connection failed while reading",
                    err,
                )
            }
            Err(ReadError::Codec(err)) => {
                warn!(error = %err, "bad frame from the server; closing");
                let err = Error::codec(ErrorKind::Protocol, "bad frame from the server", err);
                break err;
            }
        }
    };
    debug!(reason = %reason, "closing");
    shared.close(reason);
}

/// Removes a call from the table when its future is dropped early, and tells the server.
struct CallGuard<'a> {
    shared: &'a Shared,
    id: u64,
    sent: bool,
    done: bool,
    /// The call sends a stream whose credit gate must go with it.
    upload: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if self.upload {
            self.shared.streams().remove_outbound(self.id);
        }
        if self.done {
            return;
        }
        let was_waiting = self.shared.pending().waiting.remove(&self.id).is_some();
        if was_waiting && self.sent {
            let id = self.id;
            self.shared.send_cancel(id);
        }
    }
}

impl StreamLink for Shared {
    fn grant(&self, id: u64, items: u32) {
        self.streams().granted(id, items);
        self.outbox.push_frame_now(&credit_frame(id, items));
    }

    fn dropped(&self, id: u64, ended: bool) {
        self.streams().remove_inbound(id);
        if !ended {
            self.send_cancel(id);
        }
    }
}
