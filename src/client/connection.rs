//! The client's role in a connection: the handshake, then making calls (a request id, a
//! waiting caller in the engine's call table, the request) and routing replies to their
//! callers. The read loop, the routing of every other frame kind and the outbox are the
//! engine's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferry_codec::schema::MethodSchema;
use ferry_codec::{
    encode_request_with, flags, CodecError, FormatId, Frame, FrameKind, HandshakeStatus, Hello,
    Metadata, MetadataLimits, StatusCode, Welcome, PROTOCOL_VERSION,
};
use ferry_transport::{Name, ReadHalf, Stream, WriteHalf};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{oneshot, Notify};
use tracing::{debug, warn, Instrument};

use crate::budget::{Budget, Held};
use crate::client::binding::Binding;
use crate::client::waiter::{Mailbox, Reception, Waiter};
use crate::client::ClientOptions;
use crate::contract::{MethodRef, ServiceInfo};
use crate::engine::{Engine, InsertError, ReadClaim, ReadSide, Role, Stop};
use crate::error::{Error, ErrorKind};
use crate::outbox::{QueueError, SPLICE_MIN};
use crate::streaming::{pump, Incoming, PumpError, Streaming, WINDOW};
use crate::wire::{read_message, ReadError};

/// What a waiting caller receives: its reply frame and the handles that came with it, or
/// why the call failed.
pub(crate) type Reply = Result<(Frame, Vec<crate::handle::Handle>), Error>;

/// A client's connection, shared by its handles and its connection task.
pub(crate) type Connection = Engine<ClientRole>;

/// What the client adds to a connection's engine.
pub(crate) struct ClientRole {
    pub(crate) service: &'static ServiceInfo,
    pub(crate) address: String,
    /// The server's index for each method, or why it has none.
    binding: Binding,
    next_id: AtomicU64,
    /// Stops the read loop once the last handle is gone.
    stop: Arc<Notify>,
    /// Woken once the connection closes.
    closed_signal: Notify,
    /// The keepalive interval asked for in the options.
    keepalive: Option<Duration>,
    /// The largest `SharedBytes` accepted in a reply.
    max_shared_bytes: u64,
    /// Set once the server said GOAWAY: no new call is sent.
    going_away: AtomicBool,
    /// Bounds on the metadata of calls and replies.
    metadata_limits: MetadataLimits,
    /// Where a lone call's reply waits when the read loop routed it (see `waiter`).
    mailbox: Mailbox,
}

/// Owned by the client handles; dropping the last one ends the connection.
pub(crate) struct Owner {
    connection: Arc<Connection>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.connection
            .close(Error::closed("the client was dropped"));
        self.connection.role.stop.notify_one();
    }
}

/// Runs the handshake on `stream` and starts the connection task. `name`, when the client
/// dialled one, is where the server's schemas can be read to explain a difference.
pub(crate) async fn open(
    stream: Stream,
    name: Option<&Name>,
    service: &'static ServiceInfo,
    options: &ClientOptions,
) -> Result<(Arc<Connection>, Owner), Error> {
    let address = name.map_or_else(|| "(stream)".to_owned(), Name::address);
    // Who the server is, before it learns anything from us.
    options
        .server_user
        .check(stream.peer_credentials(), &address)?;
    let local = local_schemas(service)?;
    let (mut reader, mut writer) = stream.into_split();
    // The read buffer's size from the start (the first read would grow a smaller one).
    let mut buf = BytesMut::with_capacity(crate::wire::READ_CHUNK);
    let welcome = tokio::time::timeout(
        options.handshake_timeout,
        handshake(
            &mut reader,
            &mut writer,
            &mut buf,
            service,
            local.is_some(),
            options,
        ),
    )
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
    let binding = bind(name, service, local, &welcome, options).await?;
    let connection = new_connection(service, address, binding, &welcome, options, 1);
    // Before any call can be made on it.
    connection.handles.attach_writer(&mut writer);
    let span =
        tracing::debug_span!("client", service = service.name, address = %connection.role.address);
    let task = Arc::clone(&connection);
    tokio::spawn(
        async move {
            task.run(ReadSide { reader, buf }, writer).await;
            debug!("connection closed");
        }
        .instrument(span),
    );
    Ok((Arc::clone(&connection), Owner { connection }))
}

/// The engine of a connection the server accepted with `welcome`, before its task runs.
/// Request ids start at `first_id` (those below are the early requests').
pub(crate) fn new_connection(
    service: &'static ServiceInfo,
    address: String,
    binding: Binding,
    welcome: &Welcome,
    options: &ClientOptions,
    first_id: u64,
) -> Arc<Connection> {
    let role = ClientRole {
        service,
        address,
        binding,
        next_id: AtomicU64::new(first_id),
        stop: Arc::new(Notify::new()),
        closed_signal: Notify::new(),
        keepalive: options.keepalive,
        max_shared_bytes: options.max_shared_bytes,
        going_away: AtomicBool::new(false),
        metadata_limits: options.metadata_limits,
        mailbox: Mailbox::default(),
    };
    Arc::new(Engine::new(
        role,
        welcome.version,
        options.format,
        options.max_frame,
        welcome.max_frame,
        options.write_queue_limit,
        // A client holds what its own calls asked for: no budget of its own beyond
        // `max_frame` and the write queue.
        Budget::unlimited(),
    ))
}

impl Owner {
    /// The owner of `connection`: dropping it ends the connection.
    pub(crate) fn new(connection: Arc<Connection>) -> Owner {
        Owner { connection }
    }

    /// The connection it owns.
    pub(crate) fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }
}

/// The client's method schemas, when its service declares them: a type that cannot be
/// described fails the connect (kind [`Usage`](ErrorKind::Usage)), naming the service, the
/// method and the type.
pub(crate) fn local_schemas(
    service: &'static ServiceInfo,
) -> Result<Option<&'static [MethodSchema]>, Error> {
    if !service.has_schemas() {
        return Ok(None);
    }
    service.method_schemas().map(Some).map_err(|err| {
        Error::new(ErrorKind::Usage, "cannot compute the method schemas").with_source(err)
    })
}

/// Maps the client's methods onto the server's: by name when the Welcome carries a method
/// table, else as written. Reads the server's schemas (through its introspection service)
/// to explain the methods that differ, when the client dialled a name.
pub(crate) async fn bind(
    name: Option<&Name>,
    service: &'static ServiceInfo,
    local: Option<&'static [MethodSchema]>,
    welcome: &Welcome,
    options: &ClientOptions,
) -> Result<Binding, Error> {
    let (Some(local), Some(table)) = (local, welcome.methods.as_ref()) else {
        return Ok(Binding::default());
    };
    let mut binding = Binding::by_name(local, table);
    let differing = binding.differing(service);
    if !differing.is_empty() {
        debug!(methods = ?differing, "methods whose schema differs from the server's");
        if let Some(name) = name {
            let server = Box::pin(server_schemas(name, service.name, options)).await;
            binding.explain(local, &server);
        }
    }
    if options.strict_contract {
        binding.strict(service, Some(table))?;
    }
    Ok(binding)
}

/// The server's schemas of `service`, read through its introspection service; empty when
/// they cannot be read (the difference is then reported without its place).
async fn server_schemas(
    name: &Name,
    service: &str,
    options: &ClientOptions,
) -> std::collections::HashMap<String, MethodSchema> {
    let mut schemas = std::collections::HashMap::new();
    if service == crate::introspect::SERVICE_NAME {
        return schemas;
    }
    let mut plain = options.clone();
    plain.reconnect = None;
    plain.strict_contract = false;
    plain.early_requests = false;
    let description = async {
        let client =
            crate::introspect::IntrospectClient::connect_with(name.clone(), &plain).await?;
        client.describe().await
    };
    let description = match tokio::time::timeout(options.handshake_timeout, description).await {
        Ok(Ok(description)) => description,
        Ok(Err(err)) => {
            debug!(error = %crate::ErrorChain::new(&err), "cannot read the server's schemas");
            return schemas;
        }
        Err(_) => {
            debug!("the server's schemas were not read in time");
            return schemas;
        }
    };
    let Some(described) = description.service(service) else {
        return schemas;
    };
    for method in &described.methods {
        match method.method_schema() {
            Some(Ok(schema)) => {
                schemas.insert(method.name.clone(), schema);
            }
            Some(Err(err)) => {
                debug!(method = %method.name, error = %crate::ErrorChain::new(&err), "unreadable schema")
            }
            None => {}
        }
    }
    schemas
}

/// The encoded Hello for `service`; `flags` are the Hello's flag bits.
pub(crate) fn hello_bytes(
    service: &'static ServiceInfo,
    flags: u8,
    options: &ClientOptions,
) -> Result<BytesMut, Error> {
    let hello = Hello {
        version: PROTOCOL_VERSION,
        format: options.format.as_u8(),
        flags,
        max_frame: options.max_frame,
        signature: service.signature,
        service: service.name.to_owned(),
    };
    // Room for the hello and an early request of a small call behind it.
    let mut out = BytesMut::with_capacity(256);
    hello
        .encode(&mut out)
        .map_err(|err| Error::codec(ErrorKind::Connect, "invalid hello", err))?;
    Ok(out)
}

/// Sends the Hello and reads the Welcome; fails unless the server accepted.
async fn handshake(
    reader: &mut ReadHalf,
    writer: &mut WriteHalf,
    buf: &mut BytesMut,
    service: &'static ServiceInfo,
    by_name: bool,
    options: &ClientOptions,
) -> Result<Welcome, Error> {
    let flags = if by_name { Hello::BIND_BY_NAME } else { 0 };
    let out = hello_bytes(service, flags, options)?;
    // A server that refuses without reading (shedding a crowd, out of file descriptors)
    // may have written its Welcome and closed before the hello could go out: read what it
    // said before reporting the failed write.
    let sent = writer.write_all(&out).await;
    let reply = read_message(reader, buf, Welcome::decode).await;
    if let Err(err) = sent {
        if !matches!(reply, Ok(Some(_))) {
            return Err(Error::io(
                ErrorKind::Connect,
                "cannot send the handshake",
                err,
            ));
        }
    }
    check_welcome(reply, options)
}

/// Checks the server's answer to the Hello: fails unless it is a Welcome that accepted,
/// with a version and format this client speaks.
pub(crate) fn check_welcome(
    reply: Result<Option<Welcome>, ReadError>,
    options: &ClientOptions,
) -> Result<Welcome, Error> {
    let closed = || {
        Error::new(
            ErrorKind::Connect,
            "the server closed the connection during the handshake",
        )
    };
    let welcome = reply
        .map_err(|err| match err {
            ReadError::Io(err) => {
                Error::io(ErrorKind::Connect, "cannot read the handshake reply", err)
            }
            ReadError::Codec(err) => Error::codec(ErrorKind::Protocol, "bad handshake reply", err),
            ReadError::Truncated => closed(),
        })?
        .ok_or_else(closed)?;
    if welcome.status != HandshakeStatus::OK {
        return Err(Error::from_handshake(welcome.status, &welcome.message));
    }
    if welcome.version == 0 || welcome.version > PROTOCOL_VERSION {
        return Err(Error::protocol(format!(
            "the server chose protocol version {}; this client speaks 1 to {PROTOCOL_VERSION}",
            welcome.version
        )));
    }
    if welcome.format != options.format.as_u8() {
        return Err(Error::protocol(format!(
            "the server chose payload format {} instead of {}",
            welcome.format,
            options.format.as_u8()
        )));
    }
    Ok(welcome)
}

impl Role for ClientRole {
    type Call = Waiter;
    const PEER: &'static str = "the server";
    const CANCEL_ON_STREAM_DROP: bool = true;

    fn frame_timeout(&self) -> Option<Duration> {
        None
    }

    fn keepalive(&self) -> Option<Duration> {
        self.keepalive
    }

    fn max_shared_bytes(&self) -> u64 {
        self.max_shared_bytes
    }

    fn stopping(
        connection: &Arc<Connection>,
    ) -> impl std::future::Future<Output = Stop> + Send + 'static {
        let stop = Arc::clone(&connection.role.stop);
        async move {
            stop.notified().await;
            Stop::Local(Error::closed("the client was dropped"))
        }
    }

    async fn read_budget(_connection: &Connection) {}

    async fn on_request(
        _connection: &Arc<Connection>,
        frame: Frame,
        _held: Held,
    ) -> Result<(), Stop> {
        Err(Stop::unexpected::<Self>(frame.kind))
    }

    fn on_reply(
        connection: &Connection,
        frame: Frame,
        handles: Vec<crate::handle::Handle>,
    ) -> Result<(), Stop> {
        if frame.id == 0 {
            let status = frame.status();
            let message = frame.message();
            warn!(%status, %message, "the server closed the connection with an error");
            let mut err = Error::from_remote(status, &message);
            // The calls outstanding may have run, whatever the status says.
            if matches!(err.kind(), ErrorKind::Rejected | ErrorKind::ShuttingDown) {
                err = Error::closed(format!("connection closed by the server: {err}"));
            }
            return Err(Stop::Closed(err));
        }
        let mut calls = connection.calls();
        let waiting = calls.remove(frame.id);
        match waiting {
            Some(Waiter::Channel(reply)) => {
                drop(calls);
                let _ = reply.send(Ok((frame, handles)));
            }
            Some(Waiter::Lone) => {
                // Under the call table's lock (see `waiter`).
                // Before the caller is woken, so that it finds the event written.
                tracing::trace!(
                    request_id = frame.id,
                    "a lone call's reply waits in the mailbox"
                );
                let id = frame.id;
                connection.role.mailbox.deliver(id, Ok((frame, handles)));
                drop(calls);
            }
            None if frame.kind == FrameKind::ERROR => {
                drop(calls);
                let err = remote_error(connection, &frame);
                if connection.streams().on_error(frame.id, err).is_err() {
                    debug!(request_id = frame.id, "error for a call no longer waiting");
                }
            }
            None => {
                drop(calls);
                debug!(request_id = frame.id, "reply for a call no longer waiting");
            }
        }
        Ok(())
    }

    fn on_cancel(_connection: &Connection, frame: Frame) -> Result<(), Stop> {
        Err(Stop::unexpected::<Self>(frame.kind))
    }

    fn on_goaway(connection: &Connection, last_id: u64) -> Result<(), Stop> {
        if !connection.role.going_away.swap(true, Ordering::SeqCst) {
            debug!(
                last_id,
                in_flight = connection.calls().len(),
                "the server is shutting down (GOAWAY): no new calls on this connection"
            );
        }
        Ok(())
    }

    async fn finish(connection: &Connection, stop: Stop) {
        let reason = match stop {
            // After a GOAWAY the server answers every call it read before it closes: a
            // call still without a reply was never read, so never run.
            Stop::Gone(err) if connection.role.going_away.load(Ordering::SeqCst) => {
                debug!(reason = %crate::ErrorChain::new(&err), "closed after GOAWAY");
                Error::shutting_down(
                    "the server shut down before it read the call (GOAWAY); not run, safe to retry",
                )
            }
            Stop::Gone(err) | Stop::Closed(err) | Stop::Local(err) | Stop::Unresponsive(err) => err,
            Stop::Violation(violation) => violation.into_error("bad frame from the server"),
        };
        debug!(reason = %crate::ErrorChain::new(&reason), "closing");
        connection.close(reason);
    }

    fn write_failed(connection: &Connection, err: std::io::Error) {
        connection.close(Error::io(
            ErrorKind::Closed,
            "the connection failed while writing",
            err,
        ));
        connection.role.stop.notify_one();
    }
}

impl Connection {
    /// Tells the server to stop call `id` (its caller is gone).
    pub(crate) fn send_cancel(&self, id: u64) {
        self.outbox.push_frame_now(&Frame::cancel(id));
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.calls().closed().is_some()
    }

    /// Fails a new call at once, without sending it, when the server said GOAWAY.
    fn check_going_away(&self) -> Result<(), Error> {
        if self.role.going_away.load(Ordering::SeqCst) && !self.is_closed() {
            return Err(Error::shutting_down(
                "the server is shutting down (GOAWAY): the call was not sent; safe to retry",
            ));
        }
        Ok(())
    }

    /// Resolves once the connection is closed (at once when it already is).
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.role.closed_signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// Sends a PING and waits for its PONG, or for the connection to close.
    pub(crate) async fn ping_server(&self) -> Result<Duration, Error> {
        tokio::select! {
            rtt = self.ping() => rtt,
            () = self.closed() => Err(self.closed_error()),
        }
    }

    /// Marks the connection closed and fails every waiting call and stream with `reason`.
    fn close(&self, reason: Error) {
        self.fail_all(reason);
        self.role.mailbox.close();
        self.outbox.close();
        self.role.closed_signal.notify_waiters();
    }

    /// The server's index for `method`, or the error that fails the call unsent: a method
    /// of another service, or one the server lacks or has with another schema.
    fn server_method(&self, method: MethodRef) -> Result<u16, Error> {
        method.check_service(self.role.service)?;
        self.role
            .binding
            .server_index(self.role.service, method.index())
    }

    pub(crate) async fn call<A, R>(
        &self,
        method: MethodRef,
        args: &A,
        timeout: Option<Duration>,
        metadata: Option<&Metadata>,
    ) -> Result<R, Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let (mut frame, handles) = self.unary(method, &Typed(args), timeout, metadata).await?;
        let (_, body) = self.reply_parts(&mut frame)?;
        self.decode_reply(&body, handles)
    }

    /// A call whose reply is a stream: returns at once with the receiving end.
    pub(crate) async fn call_streaming<A, T>(
        self: &Arc<Self>,
        method: MethodRef,
        args: &A,
        timeout: Option<Duration>,
        metadata: Option<&Metadata>,
    ) -> Result<Incoming<T>, Error>
    where
        A: Serialize + ?Sized,
    {
        let method = self.server_method(method)?;
        self.check_going_away()?;
        let id = self.role.next_id.fetch_add(1, Ordering::Relaxed);
        let remote = {
            let calls = self.calls();
            if let Some(reason) = calls.closed() {
                return Err(reason.duplicate());
            }
            // Under the call table's lock, so a close cannot slip in between.
            self.open_inbound(id)
        };
        // Outside the call table's lock (the read side's lock comes first).
        self.revoke_read();
        // From here on, dropping `remote` cancels the call.
        self.send_stream_request(method, id, args, timeout, metadata)
            .await?;
        Ok(Incoming::new(remote))
    }

    /// A call whose reply is `Result<Streaming<T>, E>`: the server answers with a RESPONSE
    /// carrying `Result<(), E>` before the first item; this returns once it arrives (bounded
    /// by `timeout`), with `E` or with the receiving end of the stream.
    pub(crate) async fn call_streaming_result<A, T, E>(
        self: &Arc<Self>,
        method: MethodRef,
        args: &A,
        timeout: Option<Duration>,
        metadata: Option<&Metadata>,
    ) -> Result<Result<Incoming<T>, E>, Error>
    where
        A: Serialize + ?Sized,
        E: DeserializeOwned,
    {
        let method = self.server_method(method)?;
        self.check_going_away()?;
        let id = self.role.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = oneshot::channel();
        let remote = {
            let mut calls = self.calls();
            match calls.insert(id, Waiter::Channel(reply_tx)) {
                Ok(()) => {}
                Err(InsertError::Closed(reason)) => return Err(reason),
                Err(InsertError::Duplicate) => {
                    return Err(Error::new(
                        ErrorKind::Usage,
                        format!("request id {id} is in use"),
                    ))
                }
            }
            // Under the call table's lock, so a close cannot slip in between.
            self.open_inbound(id)
        };
        // Outside the call table's lock (the read side's lock comes first).
        self.revoke_read();
        // Dropping `remote` before the stream's end cancels the call (it sends the CANCEL,
        // so the guard, which is never marked `sent`, only takes the call out of the table).
        let mut guard = CallGuard::new(self, id, false);
        let exchange = async {
            self.send_stream_request(method, id, args, timeout, metadata)
                .await?;
            reply_rx.await.unwrap_or_else(|_| Err(self.closed_error()))
        };
        let frame = within_deadline(timeout, exchange).await;
        guard.done = frame.is_ok();
        // A stream's first reply carries no handles (`Result<(), E>`): any are closed.
        let (mut frame, _handles) = frame?;
        if frame.kind != FrameKind::RESPONSE {
            // The call failed before its stream began (bad arguments, a panic, its
            // deadline): it is over, nothing to cancel.
            remote.finish();
            return Err(remote_error(self, &frame));
        }
        let body = match self.reply_parts(&mut frame) {
            Ok((_, body)) => body,
            Err(err) => {
                remote.finish();
                return Err(err);
            }
        };
        let first: Result<(), E> = self
            .format
            .decode_frame(&body)
            .map_err(|err| Error::codec(ErrorKind::Protocol, "cannot decode the reply", err))?;
        match first {
            Ok(()) => Ok(Ok(Incoming::new(remote))),
            Err(err) => {
                // The server's answer was the error: no item follows.
                remote.finish();
                Ok(Err(err))
            }
        }
    }

    /// A call, optionally sending a stream of `T` while it runs (the method's stream
    /// argument); returns the reply and its metadata.
    pub(crate) async fn call_with_upload<A, R, T>(
        &self,
        method: MethodRef,
        args: &A,
        timeout: Option<Duration>,
        metadata: Option<&Metadata>,
        upload: Option<Streaming<T>>,
    ) -> Result<(R, Option<Metadata>), Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
        T: Serialize + Send + 'static,
    {
        let (mut frame, handles) = self
            .exchange(method, &Typed(args), timeout, metadata, upload)
            .await?;
        let (metadata, body) = self.reply_parts(&mut frame)?;
        let value = self.decode_reply(&body, handles)?;
        Ok((value, metadata))
    }

    /// A call whose arguments are already encoded (with the handles they name by index),
    /// as tower layers around a client pass it on: returns the reply's encoded value, its
    /// handles and its metadata.
    #[cfg(feature = "tower")]
    pub(crate) async fn call_encoded(
        &self,
        method: MethodRef,
        args: &Bytes,
        handles: &[crate::handle::Handle],
        timeout: Option<Duration>,
        metadata: Option<&Metadata>,
    ) -> Result<(Bytes, Vec<crate::handle::Handle>, Option<Metadata>), Error> {
        let payload = Encoded { args, handles };
        let (mut frame, handles) = self.unary(method, &payload, timeout, metadata).await?;
        let (metadata, body) = self.reply_parts(&mut frame)?;
        Ok((body, handles, metadata))
    }

    /// Decodes a reply's value; handles it does not take are closed here.
    pub(crate) fn decode_reply<R: DeserializeOwned>(
        &self,
        body: &Bytes,
        handles: Vec<crate::handle::Handle>,
    ) -> Result<R, Error> {
        let limit = self.role.max_shared_bytes;
        crate::shared_bytes::receiving(limit, handles, || self.format.decode_frame(body))
            .map_err(|err| Error::codec(ErrorKind::Protocol, "cannot decode the reply", err))
    }

    /// A plain call (no stream either way): sends it and waits for its RESPONSE (an ERROR
    /// fails it); returns the frame and the handles that came with it. The lean path of
    /// [`Connection::exchange`]: one future, no stream machinery in its state.
    async fn unary<P>(
        &self,
        method: MethodRef,
        args: &P,
        timeout: Option<Duration>,
        metadata: Option<&Metadata>,
    ) -> Result<(Frame, Vec<crate::handle::Handle>), Error>
    where
        P: Payload + ?Sized,
    {
        let method = self.server_method(method)?;
        self.check_going_away()?;
        let id = self.role.next_id.fetch_add(1, Ordering::Relaxed);
        let (reception, alone) = self.wait_for(id)?;
        let mut guard = CallGuard::new(self, id, false);
        let exchange = async {
            self.send_request(method, id, args, timeout, metadata, 0, alone)
                .await?;
            guard.sent = true;
            self.reply(id, reception).await
        };
        let frame = match timeout {
            None => exchange.await,
            Some(timeout) => tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| Err(Error::deadline(timeout))),
        };
        guard.done = frame.is_ok();
        let (frame, handles) = frame?;
        if frame.kind != FrameKind::RESPONSE {
            return Err(remote_error(self, &frame));
        }
        Ok((frame, handles))
    }

    /// Puts call `id` in the call table; returns where its reply comes when the read loop
    /// routes it (a lone call's needs no channel, see `waiter`), and whether the call is
    /// the only one in flight. A second waiter makes a caller reading for itself give the
    /// read side back.
    fn wait_for(&self, id: u64) -> Result<(Reception<'_>, bool), Error> {
        let inserted = {
            let mut calls = self.calls();
            let lone =
                calls.len() == 0 && calls.closed().is_none() && !self.role.mailbox.holds_reply();
            let (waiter, reception) = Reception::new(&self.role.mailbox, id, lone);
            calls.insert(id, waiter).map(|()| (calls.len(), reception))
        };
        match inserted {
            Ok((waiting, reception)) => {
                if waiting > 1 {
                    self.revoke_read();
                }
                Ok((reception, waiting == 1))
            }
            Err(InsertError::Closed(reason)) => Err(reason),
            Err(InsertError::Duplicate) => Err(Error::new(
                ErrorKind::Usage,
                format!("request id {id} is in use"),
            )),
        }
    }

    /// Sends a call and waits for its RESPONSE (an ERROR fails it), optionally sending a
    /// stream of `T` while it runs; returns the frame and the handles that came with it.
    async fn exchange<P, T>(
        &self,
        method: MethodRef,
        args: &P,
        timeout: Option<Duration>,
        metadata: Option<&Metadata>,
        upload: Option<Streaming<T>>,
    ) -> Result<(Frame, Vec<crate::handle::Handle>), Error>
    where
        P: Payload + ?Sized,
        T: Serialize + Send + 'static,
    {
        let method = self.server_method(method)?;
        let upload = upload.map(Streaming::into_source);
        self.check_going_away()?;
        let id = self.role.next_id.fetch_add(1, Ordering::Relaxed);
        let (reception, alone) = self.wait_for(id)?;
        let gate = upload.as_ref().map(|_| self.streams().outbound(id));
        let mut guard = CallGuard::new(self, id, gate.is_some());
        let frame_flags = if upload.is_some() { flags::STREAM } else { 0 };
        let exchange = async {
            self.send_request(method, id, args, timeout, metadata, frame_flags, alone)
                .await?;
            guard.sent = true;
            let (Some(stream), Some(gate)) = (upload, gate) else {
                return self.reply(id, reception).await;
            };
            let sending = pump(
                &self.outbox,
                id,
                self.format,
                self.peer_max_frame,
                stream,
                gate,
            );
            let mut reception = reception;
            let routed = std::future::poll_fn(|cx| reception.poll_routed(cx));
            tokio::pin!(sending, routed);
            let mut pumping = true;
            loop {
                tokio::select! {
                    reply = &mut routed => {
                        break reply.unwrap_or_else(|| Err(self.closed_error()));
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
        let frame = within_deadline(timeout, exchange).await;
        guard.done = frame.is_ok();
        let (frame, handles) = frame?;
        if frame.kind != FrameKind::RESPONSE {
            return Err(remote_error(self, &frame));
        }
        Ok((frame, handles))
    }

    /// Waits for call `id`'s reply: read by this caller itself when it is the connection's
    /// only waiter (no hand-off from the connection's task, see `crate::engine::ownership`),
    /// else routed by whoever reads it through `reception`. Cancel-safe: dropped, it gives
    /// the read side back with every byte it read.
    async fn reply(&self, id: u64, mut reception: Reception<'_>) -> Reply {
        let mut claim = self.read_claim(id);
        std::future::poll_fn(|cx| {
            // While this caller owns the read side nobody else reads: its reply comes only
            // from its own reads, and `reception` need not be polled (a revoked owner is
            // woken, see `Engine::revoke_read`).
            let owned = claim.owning();
            if owned {
                if let Poll::Ready(reply) =
                    self.poll_read_reply(cx, &mut claim, &mut reception, false)
                {
                    return Poll::Ready(reply);
                }
                if claim.owning() {
                    return Poll::Pending;
                }
            }
            // Before claiming, so that a reply routed by another reader wakes this caller.
            if let Poll::Ready(reply) = reception.poll_routed(cx) {
                return Poll::Ready(reply.unwrap_or_else(|| Err(self.closed_error())));
            }
            if owned {
                // It gave the read side back in this poll: it waits on `reception` now.
                return Poll::Pending;
            }
            self.poll_read_reply(cx, &mut claim, &mut reception, true)
        })
        .await
    }

    /// [`Connection::poll_own_reply`], and the reply it read handed over as `reply` gives
    /// it.
    fn poll_read_reply(
        &self,
        cx: &mut std::task::Context<'_>,
        claim: &mut ReadClaim<'_>,
        reception: &mut Reception<'_>,
        may_claim: bool,
    ) -> Poll<Reply> {
        self.poll_own_reply(cx, claim, may_claim).map(|own| {
            // Before the waiter goes, so that dropping it does not wake this very task for
            // nothing.
            reception.read_itself();
            drop(own.entry);
            Ok((own.frame, own.handles))
        })
    }

    /// Splits a RESPONSE or ERROR body into its metadata (protocol version 3) and the rest;
    /// metadata that breaks the client's limits or the block's format fails the call (the
    /// connection stays open).
    fn reply_parts(&self, frame: &mut Frame) -> Result<(Option<Metadata>, Bytes), Error> {
        // Moved out, not cloned: a clone of a body copied out of the read buffer would
        // allocate.
        let body = std::mem::take(&mut frame.body);
        let limits = &self.role.metadata_limits;
        crate::metadata::split(frame, body, self.version, limits).map_err(|err| {
            warn!(request_id = frame.id, error = %err, "bad metadata in a reply; call failed");
            Error::new(ErrorKind::Protocol, "bad metadata in the server's reply")
                .with_status(StatusCode::PROTOCOL)
                .with_source(err)
        })
    }

    /// Sends the request of a call whose reply is a stream, then the first credit for its
    /// items.
    async fn send_stream_request<A: Serialize + ?Sized>(
        &self,
        method: u16,
        id: u64,
        args: &A,
        timeout: Option<Duration>,
        metadata: Option<&Metadata>,
    ) -> Result<(), Error> {
        let alone = self.calls().len() <= 1;
        self.send_request(
            method,
            id,
            &Typed(args),
            timeout,
            metadata,
            flags::STREAM,
            alone,
        )
        .await?;
        self.outbox.push_frame_now(&Frame::credit(id, WINDOW));
        Ok(())
    }

    /// Sends a request. `alone`: no other call is in flight, so the caller writes it itself
    /// (no hop to the writer task); with other calls in flight the writer task batches
    /// requests into fewer writes.
    #[allow(clippy::too_many_arguments)]
    async fn send_request<P: Payload + ?Sized>(
        &self,
        method: u16,
        id: u64,
        args: &P,
        timeout: Option<Duration>,
        metadata: Option<&Metadata>,
        stream_flag: u8,
        alone: bool,
    ) -> Result<(), Error> {
        let format: FormatId = self.format;
        let max = self.peer_max_frame;
        let metadata = crate::metadata::for_version(metadata, self.version, id);
        if let Some(metadata) = metadata {
            metadata.check(&self.role.metadata_limits).map_err(|err| {
                Error::new(
                    ErrorKind::Usage,
                    "metadata over the limits; the call was not sent",
                )
                .with_source(err)
            })?;
        }
        let frame_flags = stream_flag | crate::metadata::flag(metadata);
        let deadline_ms =
            timeout.map(|timeout| u32::try_from(timeout.as_millis().max(1)).unwrap_or(u32::MAX));
        let handles = &self.handles;
        let encode = |buf: &mut BytesMut, splices: &mut Vec<_>, position: u64| {
            handles.encode_frame(buf, position, max, |buf| {
                // A large byte string goes by reference (see `Outbox::push_spliced`).
                ferry_codec::encode_spliced(buf, SPLICE_MIN, max, splices, |buf| {
                    encode_request_with(buf, id, method, frame_flags, deadline_ms, max, |buf| {
                        crate::metadata::encode_with(metadata, buf, |buf| args.encode(format, buf))
                    })
                })
            })
        };
        let queued = self.outbox.push_spliced(encode, alone).await;
        queued.map_err(|err| match err {
            QueueError::Closed => self.closed_error(),
            QueueError::Encode(err) => {
                Error::codec(ErrorKind::Encode, "cannot encode the request", err)
            }
        })
    }
}

/// The error a call's ERROR frame reports, with the metadata the server sent on it
/// ([`Error::reply_metadata`]); its message is read after the metadata, if any (metadata
/// that does not parse is dropped, with a debug line, and leaves the whole body as the
/// message).
fn remote_error(connection: &Connection, frame: &Frame) -> Error {
    let limits = &connection.role.metadata_limits;
    let (metadata, body) =
        match crate::metadata::split(frame, frame.body.clone(), connection.version, limits) {
            Ok(split) => split,
            Err(err) => {
                debug!(request_id = frame.id, error = %err, "bad metadata on an ERROR; dropped");
                (None, frame.body.clone())
            }
        };
    Error::from_remote(frame.status(), &String::from_utf8_lossy(&body))
        .with_reply_metadata(metadata)
}

/// The arguments of a request, written into its frame.
pub(crate) trait Payload {
    /// Appends the encoded arguments to `buf` (inside the frame's handle scope).
    fn encode(&self, format: FormatId, buf: &mut BytesMut) -> Result<(), CodecError>;
}

/// Arguments encoded as the request is written.
struct Typed<'a, A: ?Sized>(&'a A);

impl<A: Serialize + ?Sized> Payload for Typed<'_, A> {
    #[inline]
    fn encode(&self, format: FormatId, buf: &mut BytesMut) -> Result<(), CodecError> {
        format.encode(self.0, buf)
    }
}

/// Arguments encoded already, with the handles they name by index.
#[cfg(feature = "tower")]
struct Encoded<'a> {
    args: &'a Bytes,
    handles: &'a [crate::handle::Handle],
}

#[cfg(feature = "tower")]
impl Payload for Encoded<'_> {
    fn encode(&self, _format: FormatId, buf: &mut BytesMut) -> Result<(), CodecError> {
        crate::handle::resend(self.handles)?;
        buf.extend_from_slice(self.args);
        Ok(())
    }
}

/// Removes a call from the table when its future is dropped early, and tells the server.
struct CallGuard<'a> {
    connection: &'a Connection,
    id: u64,
    sent: bool,
    done: bool,
    /// The call sends a stream whose credit gate must go with it.
    upload: bool,
}

impl<'a> CallGuard<'a> {
    /// A guard for call `id`, not yet sent; `upload` when the call sends a stream.
    fn new(connection: &'a Connection, id: u64, upload: bool) -> Self {
        CallGuard {
            connection,
            id,
            sent: false,
            done: false,
            upload,
        }
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if self.upload {
            self.connection.streams().remove_outbound(self.id);
        }
        if self.done {
            return;
        }
        let was_waiting = self.connection.calls().remove(self.id).is_some();
        if was_waiting && self.sent {
            self.connection.send_cancel(self.id);
        }
    }
}

/// Runs a call's `exchange`, failing it with `DeadlineExceeded` when `timeout` passes first.
pub(crate) async fn within_deadline<T>(
    timeout: Option<Duration>,
    exchange: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match timeout {
        Some(timeout) => tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(Error::deadline(timeout))),
        None => exchange.await,
    }
}
