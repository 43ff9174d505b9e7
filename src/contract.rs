//! The contract between a service's code and the runtime: a service's identity
//! ([`ServiceInfo`]), its dispatch ([`ServiceDispatch`]), one incoming call ([`Call`]) and
//! what dispatch hands back ([`Handler`]); on the client's side, the method a call names
//! ([`MethodRef`], from the service's info).
//!
//! `#[ferry::service]` writes all of this for a trait: a `{TRAIT}_SERVICE_INFO` constant
//! (the trait's name in upper snake case, e.g. `CALC_SERVICE_INFO` for `Calc`) and a
//! `{Trait}Server` that implements [`ServiceDispatch`]. A service written by hand (as
//! ferry's own [`channel`](crate::channel) is) implements the same trait:
//!
//! ```
//! use ferry::contract::{Call, Handler, ServiceDispatch, ServiceInfo};
//!
//! /// `service Echo { echo((String,))->String; }`
//! const ECHO: ServiceInfo =
//!     ServiceInfo::new("Echo", "service Echo { echo((String,))->String; }", &["echo"]);
//!
//! struct Echo;
//!
//! impl ServiceDispatch for Echo {
//!     fn info(&self) -> &'static ServiceInfo {
//!         &ECHO
//!     }
//!
//!     fn dispatch(&self, method: u16, call: Call) -> Handler {
//!         if method != 0 {
//!             return Handler::unknown_method(method);
//!         }
//!         let (text,) = match call.args::<(String,)>() {
//!             Ok(args) => args,
//!             Err(err) => return Handler::bad_arguments(err),
//!         };
//!         Handler::run(async move { call.reply(&text).await })
//!     }
//! }
//!
//! let server = ferry::Server::new().serve(Echo);
//! # drop(server);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use crate::ErrorChain;
use bytes::Bytes;
use ferry_codec::schema::{MethodSchema, SchemaError, TypeSchema};
use ferry_codec::{CodecError, FormatId, FrameKind, MethodEntry, MethodTable, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::budget::Held;
use crate::capture::{Capture, Captured};
use crate::context::Context;
use crate::outbox::{Outbox, QueueError};
use crate::streaming::{pump, Incoming, PumpError, Remote, Streaming};

/// The wire identity of a service: what the handshake checks.
///
/// Made with [`ServiceInfo::new`], which computes the signature hash from the canonical
/// text, so the two always agree, and given its per-method schemas with
/// [`ServiceInfo::with_schemas`] (the service macro does both).
#[derive(Debug)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// The service name a client asks for.
    pub name: &'static str,
    /// FNV-1a 64 hash of [`ServiceInfo::canonical`].
    pub signature: u64,
    /// The canonical signature text (see docs/protocol.md).
    pub canonical: &'static str,
    /// Method names, indexed by their method id.
    pub methods: &'static [&'static str],
    /// Where the per-method schemas come from, if anywhere.
    schemas: Option<SchemaSource>,
}

/// The per-method schemas of a service, computed once: what a `with_schemas` function
/// returns.
pub type SchemaTable = Result<Vec<MethodSchema>, ServiceSchemaError>;

#[derive(Clone, Copy)]
enum SchemaSource {
    /// Computed on first use by this function (the macro's: it keeps the result in a
    /// static).
    Lazy(fn() -> &'static SchemaTable),
    /// Already computed.
    Ready(&'static SchemaTable),
}

impl fmt::Debug for SchemaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaSource::Lazy(_) => f.write_str("Lazy"),
            SchemaSource::Ready(table) => f.debug_tuple("Ready").field(table).finish(),
        }
    }
}

impl ServiceInfo {
    /// The identity of service `name` whose canonical signature text is `canonical` (see
    /// docs/protocol.md) and whose methods, by index, are `methods`.
    ///
    /// It has no per-method schemas until [`with_schemas`](Self::with_schemas) gives them:
    /// such a service is checked as a whole, by its signature, in every protocol version.
    pub const fn new(
        name: &'static str,
        canonical: &'static str,
        methods: &'static [&'static str],
    ) -> ServiceInfo {
        ServiceInfo {
            name,
            signature: ferry_codec::signature_hash(canonical),
            canonical,
            methods,
            schemas: None,
        }
    }

    /// This identity with per-method schemas: `schemas` returns them, one per entry of
    /// [`methods`](Self::methods) in the same order, computing them on its first call and
    /// handing back the same table afterwards (keep it in a `static` [`OnceLock`]; see
    /// [`SchemaCell`]).
    #[must_use]
    pub const fn with_schemas(mut self, schemas: fn() -> &'static SchemaTable) -> ServiceInfo {
        self.schemas = Some(SchemaSource::Lazy(schemas));
        self
    }

    /// This identity with per-method schemas computed already.
    #[must_use]
    pub(crate) fn with_schema_table(mut self, table: &'static SchemaTable) -> ServiceInfo {
        self.schemas = Some(SchemaSource::Ready(table));
        self
    }

    /// Whether this service declares per-method schemas.
    pub fn has_schemas(&self) -> bool {
        self.schemas.is_some()
    }

    /// The schema of each method, in the order of [`methods`](Self::methods): computed once,
    /// on first use, and shared afterwards.
    ///
    /// # Errors
    ///
    /// A [`ServiceSchemaError`] naming the service, the method and the type when a type of
    /// an argument or of the return value cannot be described, or when the service declares
    /// no schemas (a [`ServiceInfo::new`] without [`with_schemas`](Self::with_schemas)) or a
    /// table that does not match its methods.
    pub fn method_schemas(&self) -> Result<&'static [MethodSchema], ServiceSchemaError> {
        let table = match self.schemas {
            None => {
                return Err(ServiceSchemaError::new(
                    self.name,
                    "",
                    "",
                    SchemaProblem::Undeclared,
                ))
            }
            // A handle in a method's types is traced as a placeholder.
            Some(SchemaSource::Lazy(schemas)) => crate::handle::tracing(schemas),
            Some(SchemaSource::Ready(table)) => table,
        };
        let schemas = table.as_ref().map_err(Clone::clone)?;
        let names = schemas.iter().map(|schema| schema.name.as_str());
        if !names.eq(self.methods.iter().copied()) {
            return Err(ServiceSchemaError::new(
                self.name,
                "",
                "",
                SchemaProblem::Mismatched,
            ));
        }
        Ok(schemas)
    }

    /// The schema of method `index`, when the service declares schemas and they could be
    /// computed.
    pub fn method_schema(&self, index: u16) -> Option<&'static MethodSchema> {
        self.method_schemas().ok()?.get(usize::from(index))
    }
}

impl ServiceInfo {
    /// The method called `name`, as a client calls it; `None` when the service has none.
    pub fn method(&'static self, name: &str) -> Option<MethodRef> {
        let index = self.methods.iter().position(|method| *method == name)?;
        Some(MethodRef {
            service: self,
            index: u16::try_from(index).ok()?,
        })
    }

    /// Every method of the service, in order, as a client calls them.
    pub fn method_refs(&'static self) -> impl Iterator<Item = MethodRef> {
        (0..self.methods.len()).filter_map(move |index| {
            Some(MethodRef {
                service: self,
                index: u16::try_from(index).ok()?,
            })
        })
    }
}

/// One method of a service, as a client calls it: what [`Client::call`](crate::Client::call)
/// and its siblings take.
///
/// Made from the service's [`ServiceInfo`]: by name with [`ServiceInfo::method`], or all of
/// them with [`ServiceInfo::method_refs`]; a generated `{Trait}Client` holds one per
/// method. A client calls it only on a connection to the same service (by name and
/// signature) and maps it to the server's own index for the method (by name, when the
/// server sent its method table), so the same value works against a server whose version
/// of the service orders its methods differently.
///
/// ```
/// use ferry::contract::ServiceInfo;
///
/// const ECHO: ServiceInfo =
///     ServiceInfo::new("Echo", "service Echo { echo((String,))->String; }", &["echo"]);
///
/// let echo = ECHO.method("echo").expect("Echo has echo");
/// assert_eq!(echo.name(), "echo");
/// assert_eq!(echo.service().name, "Echo");
/// assert!(ECHO.method("shout").is_none());
/// ```
#[derive(Clone, Copy)]
pub struct MethodRef {
    service: &'static ServiceInfo,
    index: u16,
}

impl MethodRef {
    /// Method `index` of `service`, for generated code (which knows the index is in range).
    pub(crate) const fn at(service: &'static ServiceInfo, index: u16) -> MethodRef {
        MethodRef { service, index }
    }

    /// The service the method belongs to.
    pub fn service(&self) -> &'static ServiceInfo {
        self.service
    }

    /// The method's name.
    pub fn name(&self) -> &'static str {
        self.service
            .methods
            .get(usize::from(self.index))
            .copied()
            .unwrap_or("?")
    }

    /// The method's position in its service's [`ServiceInfo::methods`] (the client's side;
    /// the server's index may differ).
    pub(crate) fn index(&self) -> u16 {
        self.index
    }

    /// Whether the method may be called on a connection to `service`: the same service by
    /// name and signature.
    pub(crate) fn check_service(&self, service: &ServiceInfo) -> Result<(), crate::Error> {
        let ours = self.service;
        if std::ptr::eq(ours, service)
            || (ours.signature == service.signature && ours.name == service.name)
        {
            return Ok(());
        }
        Err(crate::Error::new(
            crate::ErrorKind::Usage,
            format!(
                "method `{}` of service `{}` called on a client of service `{}`; the call was not sent",
                self.name(),
                ours.name,
                service.name
            ),
        ))
    }
}

impl fmt::Debug for MethodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MethodRef")
            .field("service", &self.service.name)
            .field("method", &self.name())
            .finish()
    }
}

/// Where a service's per-method schemas are computed and kept: a `static` of this type
/// behind the function given to [`ServiceInfo::with_schemas`].
///
/// ```
/// use ferry::contract::{MethodSchemaBuilder, SchemaCell, SchemaTable, ServiceInfo};
/// use ferry::codec::schema::TypeSchema;
///
/// fn echo_schemas() -> &'static SchemaTable {
///     static CELL: SchemaCell = SchemaCell::new();
///     CELL.get_or_init(|| {
///         Ok(vec![MethodSchemaBuilder::new("Echo", "echo")
///             .arg(TypeSchema::of::<String>())
///             .returns(TypeSchema::of::<String>())?])
///     })
/// }
///
/// const ECHO: ServiceInfo =
///     ServiceInfo::new("Echo", "service Echo { echo((String,))->String; }", &["echo"])
///         .with_schemas(echo_schemas);
/// assert_eq!(ECHO.method_schemas().unwrap()[0].canonical(), "(string)->string");
/// ```
#[derive(Debug)]
pub struct SchemaCell(OnceLock<SchemaTable>);

impl SchemaCell {
    /// An empty cell, for a `static`.
    pub const fn new() -> Self {
        SchemaCell(OnceLock::new())
    }

    /// The table, computed by `compute` on the first call.
    pub fn get_or_init(
        &'static self,
        compute: impl FnOnce() -> SchemaTable,
    ) -> &'static SchemaTable {
        self.0.get_or_init(compute)
    }
}

impl Default for SchemaCell {
    fn default() -> Self {
        SchemaCell::new()
    }
}

/// Builds one method's [`MethodSchema`] from the traced schemas of its arguments and return
/// value, naming the service, method and part in the error when a trace failed.
#[derive(Debug)]
pub struct MethodSchemaBuilder {
    service: &'static str,
    method: &'static str,
    args: Result<Vec<TypeSchema>, ServiceSchemaError>,
}

impl MethodSchemaBuilder {
    /// The schema of `service`'s method `method`, with no arguments yet.
    pub fn new(service: &'static str, method: &'static str) -> Self {
        MethodSchemaBuilder {
            service,
            method,
            args: Ok(Vec::new()),
        }
    }

    /// Adds the next argument.
    #[must_use]
    pub fn arg(mut self, traced: Result<TypeSchema, SchemaError>) -> Self {
        if let Ok(args) = &mut self.args {
            match traced {
                Ok(schema) => args.push(schema),
                Err(err) => {
                    let part = format!("argument {}", args.len());
                    self.args = Err(ServiceSchemaError::new(
                        self.service,
                        self.method,
                        &part,
                        SchemaProblem::Type(err),
                    ));
                }
            }
        }
        self
    }

    /// Finishes with the return value.
    ///
    /// # Errors
    ///
    /// The first argument or return type that could not be described.
    pub fn returns(
        self,
        traced: Result<TypeSchema, SchemaError>,
    ) -> Result<MethodSchema, ServiceSchemaError> {
        let args = self.args?;
        let returns = traced.map_err(|err| {
            ServiceSchemaError::new(
                self.service,
                self.method,
                "the return value",
                SchemaProblem::Type(err),
            )
        })?;
        Ok(MethodSchema::new(self.method, args, returns))
    }
}

/// A service whose per-method schemas cannot be given: which service, which method and
/// part, and why (for a type that cannot be described, the [`SchemaError`] naming it is the
/// [`source`](std::error::Error::source)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSchemaError(Box<SchemaFailure>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct SchemaFailure {
    service: &'static str,
    method: &'static str,
    part: String,
    problem: SchemaProblem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum SchemaProblem {
    Type(SchemaError),
    Undeclared,
    Mismatched,
}

impl ServiceSchemaError {
    fn new(
        service: &'static str,
        method: &'static str,
        part: &str,
        problem: SchemaProblem,
    ) -> Self {
        ServiceSchemaError(Box::new(SchemaFailure {
            service,
            method,
            part: part.to_owned(),
            problem,
        }))
    }

    /// The service's name.
    pub fn service(&self) -> &'static str {
        self.0.service
    }

    /// The method whose type could not be described (empty when the problem is the
    /// service's as a whole).
    pub fn method(&self) -> &'static str {
        self.0.method
    }

    /// The type error, when a type could not be described.
    pub fn schema_error(&self) -> Option<&SchemaError> {
        match &self.0.problem {
            SchemaProblem::Type(err) => Some(err),
            _ => None,
        }
    }
}

impl fmt::Display for ServiceSchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failure = &*self.0;
        match &failure.problem {
            SchemaProblem::Type(_) => write!(
                f,
                "service `{}` method `{}`: {} has no schema",
                failure.service, failure.method, failure.part
            ),
            SchemaProblem::Undeclared => {
                write!(
                    f,
                    "service `{}` declares no method schemas",
                    failure.service
                )
            }
            SchemaProblem::Mismatched => write!(
                f,
                "service `{}`: its method schemas do not match its method names",
                failure.service
            ),
        }
    }
}

impl std::error::Error for ServiceSchemaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.schema_error()
            .map(|err| err as &(dyn std::error::Error + 'static))
    }
}

/// The method table a version 2 Welcome carries for `info`: `None` for a service without
/// schemas, an error (kind [`Usage`](crate::ErrorKind::Usage)) when its schemas cannot be
/// computed or do not fit in a handshake.
pub(crate) fn method_table(info: &ServiceInfo) -> Result<Option<MethodTable>, crate::Error> {
    if !info.has_schemas() {
        return Ok(None);
    }
    let usage = |message: String| crate::Error::new(crate::ErrorKind::Usage, message);
    let schemas = info
        .method_schemas()
        .map_err(|err| usage("cannot compute the method schemas".to_owned()).with_source(err))?;
    let entries = schemas
        .iter()
        .map(|schema| MethodEntry {
            name: schema.name.clone(),
            hash: schema.hash(),
        })
        .collect();
    MethodTable::new(entries)
        .map(Some)
        .map_err(|err| usage(format!("service `{}`: {err}", info.name)))
}

/// Routes calls to a service implementation. Implemented by the generated `{Trait}Server`.
pub trait ServiceDispatch: Send + Sync + 'static {
    /// The service's wire identity.
    fn info(&self) -> &'static ServiceInfo;

    /// Decodes the arguments of `call` for `method` (an index into
    /// [`ServiceInfo::methods`]) and returns the work to run.
    fn dispatch(&self, method: u16, call: Call) -> Handler;
}

/// What a call needs from the connection it came in on to answer it: implemented by the
/// connection engine, so a call knows nothing of the side it runs on.
pub(crate) trait Responder: Send + Sync + 'static {
    /// The payload format of the connection.
    fn format(&self) -> FormatId;
    /// The protocol version of the connection.
    fn version(&self) -> u16;
    /// The largest frame body the peer accepts.
    fn peer_max_frame(&self) -> u32;
    /// Where replies are queued.
    fn outbox(&self) -> &Outbox;
    /// How handles go with frames on the connection.
    fn handles(&self) -> &crate::handle::HandleFrames;
    /// The largest `SharedBytes` accepted in a call's arguments.
    fn max_shared_bytes(&self) -> u64;
    /// Opens the receiving end of call `id`'s stream argument and grants its first window.
    fn open_upload(self: Arc<Self>, id: u64) -> Remote;
    /// The credit gate of call `id`'s reply stream.
    fn reply_gate(&self, id: u64) -> Arc<Semaphore>;
}

/// One call as a handler sees it: its arguments, its context and the way to reply.
pub struct Call {
    pub(crate) id: u64,
    /// The arguments as they came, until [`Call::args`] decodes them (one lock for both
    /// parts).
    pub(crate) encoded: Mutex<EncodedArgs>,
    pub(crate) context: Context,
    pub(crate) responder: Arc<dyn Responder>,
    /// Set when middleware wants the reply as bytes (the `tower` feature).
    pub(crate) capture: Option<Arc<Capture>>,
    /// The request's share of the connection's memory budget, given back when the call
    /// (which its handler owns) is dropped.
    pub(crate) _held: Held,
}

/// A request's arguments as they came: their bytes and the handles sent with them.
pub(crate) struct EncodedArgs {
    pub(crate) bytes: Bytes,
    pub(crate) handles: Vec<crate::handle::Handle>,
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("id", &self.id)
            .field("method", &self.context.method())
            .field("args_len", &self.encoded_args().bytes.len())
            .finish_non_exhaustive()
    }
}

impl Call {
    fn encoded_args(&self) -> std::sync::MutexGuard<'_, EncodedArgs> {
        // A panic while holding this lock leaves valid bytes: go on with them.
        self.encoded
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The encoded arguments, as they came (empty once decoded).
    #[cfg(feature = "tower")]
    pub(crate) fn encoded_bytes(&self) -> Bytes {
        self.encoded_args().bytes.clone()
    }

    /// Decodes the arguments tuple in the connection's payload format. Once they decode,
    /// the encoded bytes are freed (the handler holds the decoded values), so a second call
    /// fails.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        let mut encoded = self.encoded_args();
        let handles = std::mem::take(&mut encoded.handles);
        // Handles the arguments do not take are closed here, whether they decode or not.
        let limit = self.responder.max_shared_bytes();
        let args = crate::shared_bytes::receiving(limit, handles, || {
            self.responder.format().decode_frame(&encoded.bytes)
        })?;
        encoded.bytes = Bytes::new();
        Ok(args)
    }

    /// The call's context, handed to handlers that ask for it.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Sends `stream` as this call's reply: its items, then its end, paced by the client's
    /// credit.
    pub async fn reply_stream<T: Serialize + Send + 'static>(&self, stream: Streaming<T>) {
        if let Some(capture) = &self.capture {
            capture.streamed();
        }
        let id = self.id;
        let stream = stream.into_source();
        let responder = &*self.responder;
        let gate = responder.reply_gate(id);
        let sent = pump(
            responder.outbox(),
            id,
            responder.format(),
            responder.peer_max_frame(),
            stream,
            gate,
        )
        .await;
        if let Err(PumpError::Encode(err)) = sent {
            let status = err.status();
            let message = format!("cannot send a stream item: {}", ErrorChain::new(&err));
            warn!(request_id = id, %message, "stream ended early");
            let status = if status == StatusCode::FRAME_TOO_LARGE {
                status
            } else {
                StatusCode::INTERNAL
            };
            crate::metadata::send_error(
                responder.outbox(),
                responder.version(),
                id,
                status,
                &message,
                &self.context.reply,
            );
        }
    }

    /// Sends `output` as the reply of a method that returns `Result<Streaming<T>, E>`: first
    /// a RESPONSE carrying `Result<(), E>` (`Ok(())`, or the error, which ends the call),
    /// then, for `Ok`, the stream as [`Call::reply_stream`] sends it.
    pub async fn reply_stream_result<T, E>(&self, output: Result<Streaming<T>, E>)
    where
        T: Serialize + Send + 'static,
        E: Serialize,
    {
        if let Some(capture) = &self.capture {
            capture.streamed();
        }
        match output {
            Ok(stream) => {
                // `Ok(())` always encodes; if the connection is gone, so is the stream.
                self.reply(&Ok::<(), &E>(())).await;
                self.reply_stream(stream).await;
            }
            Err(err) => {
                self.reply(&Err::<(), &E>(&err)).await;
            }
        }
    }

    /// What sends this call's reply once middleware has it as a whole (the `tower`
    /// feature).
    #[cfg(feature = "tower")]
    pub(crate) fn replier(&self) -> Replier {
        Replier {
            id: self.id,
            responder: Arc::clone(&self.responder),
            reply: Arc::clone(&self.context.reply),
        }
    }

    /// The stream argument of this call, as it arrives from the client.
    pub fn upload<T>(&self) -> Incoming<T> {
        Incoming::new(Arc::clone(&self.responder).open_upload(self.id))
    }

    /// Encodes `value` as this call's reply and queues it. Waits while the connection's write
    /// queue is full. Failures to encode are reported to the client as errors of this call.
    ///
    /// The reply carries the metadata the handler set with
    /// [`Context::set_reply_metadata`] (on a connection of protocol version 3).
    pub async fn reply<T: Serialize + ?Sized>(&self, value: &T) {
        let id = self.id;
        let responder = &*self.responder;
        if let Some(capture) = &self.capture {
            let mut body = bytes::BytesMut::new();
            // Handles in the value are kept beside its bytes, as the frame would carry them.
            let (encoded, handles) =
                crate::handle::encoding(|| responder.format().encode(value, &mut body));
            let captured = match encoded {
                Ok(()) => Captured::Value(body.freeze(), handles),
                Err(err) => Captured::Error(
                    StatusCode::INTERNAL,
                    format!("cannot encode the reply: {}", ErrorChain::new(&err)),
                ),
            };
            if capture.keep(captured) {
                return;
            }
        }
        let metadata = self.context.reply.take();
        let metadata = crate::metadata::for_version(metadata.as_ref(), responder.version(), id);
        let queued = crate::engine::send_payload(
            responder.outbox(),
            Some(responder.handles()),
            FrameKind::RESPONSE,
            id,
            metadata,
            responder.format(),
            responder.peer_max_frame(),
            value,
        )
        .await;
        match queued {
            Ok(()) | Err(QueueError::Closed) => {}
            Err(QueueError::Encode(err)) => {
                let status = err.status();
                let (status, message) = if status == StatusCode::FRAME_TOO_LARGE {
                    (status, format!("reply {}", ErrorChain::new(&err)))
                } else {
                    (
                        StatusCode::INTERNAL,
                        format!("cannot encode the reply: {}", ErrorChain::new(&err)),
                    )
                };
                warn!(request_id = id, %message, "reply not sent");
                crate::metadata::send_error(
                    responder.outbox(),
                    responder.version(),
                    id,
                    status,
                    &message,
                    &self.context.reply,
                );
            }
        }
    }
}

/// What [`ServiceDispatch::dispatch`] hands back to the runtime.
pub struct Handler(pub(crate) HandlerKind);

pub(crate) enum HandlerKind {
    /// Run this future; it replies through [`Call::reply`].
    Run(Pin<Box<dyn Future<Output = ()> + Send + 'static>>),
    /// Reply with this error at once.
    Reject(StatusCode, String),
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            HandlerKind::Run(_) => f.write_str("Handler::Run"),
            HandlerKind::Reject(status, message) => f
                .debug_tuple("Handler::Reject")
                .field(status)
                .field(message)
                .finish(),
        }
    }
}

impl Handler {
    /// Runs `work`, which must reply through [`Call::reply`].
    pub fn run(work: impl Future<Output = ()> + Send + 'static) -> Self {
        Handler(HandlerKind::Run(Box::pin(work)))
    }

    /// Rejects the call: its arguments could not be decoded.
    pub fn bad_arguments(err: CodecError) -> Self {
        Handler(HandlerKind::Reject(
            StatusCode::BAD_ARGUMENTS,
            // With the cause: a client learns why (a shared payload too short, a bad length).
            format!("cannot decode arguments: {}", ErrorChain::new(&err)),
        ))
    }

    /// Rejects the call: the service has no method with this id.
    pub fn unknown_method(method: u16) -> Self {
        Handler(HandlerKind::Reject(
            StatusCode::UNKNOWN_METHOD,
            format!("no method {method}"),
        ))
    }
}

/// Sends a call's reply that middleware produced as a whole: a RESPONSE with already
/// encoded bytes (and the handler's reply metadata), or an ERROR.
#[cfg(feature = "tower")]
pub(crate) struct Replier {
    id: u64,
    responder: Arc<dyn Responder>,
    reply: Arc<crate::metadata::ReplyState>,
}

#[cfg(feature = "tower")]
impl Replier {
    /// Queues `response` for the client (nothing for a streamed one: it went out already).
    /// An ERROR carries the reply metadata too (protocol version 3).
    pub(crate) async fn send(self, response: crate::tower::CallResponse) {
        let id = self.id;
        let responder = &*self.responder;
        if response.is_streamed() {
            return;
        }
        let status = response.status();
        if status != StatusCode::OK {
            let message = String::from_utf8_lossy(response.body());
            crate::metadata::send_error(
                responder.outbox(),
                responder.version(),
                id,
                status,
                &message,
                &self.reply,
            );
            return;
        }
        let metadata = self.reply.take();
        let metadata = crate::metadata::for_version(metadata.as_ref(), responder.version(), id);
        let frame_flags = crate::metadata::flag(metadata);
        let max_frame = responder.peer_max_frame();
        let body = response.body();
        let handles = response.handles();
        let queued = responder
            .outbox()
            .push_at(
                |buf, position| {
                    responder
                        .handles()
                        .encode_frame(buf, position, max_frame, |buf| {
                            ferry_codec::encode_frame_with(
                                buf,
                                FrameKind::RESPONSE,
                                frame_flags,
                                0,
                                id,
                                max_frame,
                                |buf| {
                                    crate::metadata::encode_with(metadata, buf, |buf| {
                                        // Under the same indices as in `body`.
                                        crate::handle::resend(handles)?;
                                        buf.extend_from_slice(body);
                                        Ok(())
                                    })
                                },
                            )
                        })
                },
                false,
            )
            .await;
        if let Err(QueueError::Encode(err)) = queued {
            let status = err.status();
            let message = format!("reply {}", ErrorChain::new(&err));
            warn!(request_id = id, %message, "reply not sent");
            crate::metadata::send_error(
                responder.outbox(),
                responder.version(),
                id,
                status,
                &message,
                &self.reply,
            );
        }
    }
}
