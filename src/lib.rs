//! ferry: typed async RPC between processes on one machine.
//!
//! A service is a trait marked `#[ferry::service]`. Both processes link the same
//! definition; the macro generates a typed client (`{Trait}Client`) and the server dispatch
//! (`{Trait}Server`). Calls travel over Unix domain sockets or Windows named pipes, framed
//! by a small documented binary protocol (`docs/protocol.md`).
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! pub struct DivByZero;
//!
//! #[ferry::service]
//! pub trait Calc {
//!     async fn add(&self, a: i64, b: i64) -> i64;
//!     async fn div(&self, a: i64, b: i64) -> Result<i64, DivByZero>;
//! }
//!
//! struct MyCalc;
//! impl Calc for MyCalc {
//!     async fn add(&self, a: i64, b: i64) -> i64 { a + b }
//!     async fn div(&self, a: i64, b: i64) -> Result<i64, DivByZero> {
//!         a.checked_div(b).ok_or(DivByZero)
//!     }
//! }
//!
//! # async fn demo() -> Result<(), ferry::Error> {
//! // In the server process:
//! let server = ferry::Server::new().serve(CalcServer::new(MyCalc)).bind("calc-demo").await?;
//! tokio::spawn(server.run());
//!
//! // In a client process:
//! let calc = CalcClient::connect("calc-demo").await?;
//! assert_eq!(calc.add(1, 2).await?, 3);
//! assert!(calc.div(1, 0).await?.is_err());
//! # Ok(()) }
//! ```
//!
//! Methods are `async fn(&self, ...)`; arguments and return values are serde types. A method
//! may take `cx: &ferry::Context` as its first argument to learn who calls and the call's
//! deadline. Every client method returns `Result<T, ferry::Error>`: the error says whether
//! the connection failed, the deadline passed, or the server rejected or failed the call.
//!
//! Byte payloads: an argument or return value written `Vec<u8>`, and a stream item of that
//! type, is copied in bulk (not one element at a time); one written `Bytes` (from the `bytes`
//! crate) arrives as a slice of the frame it came in, without a copy. Inside your own types,
//! mark a `Vec<u8>` field `#[serde(with = "serde_bytes")]` and a `Bytes` field
//! `#[serde(with = "ferry::frame_bytes")]` for the same; neither changes the bytes on the wire
//! nor the method's schema. A `Bytes` kept after its call keeps the whole frame it came in
//! alive, and counted in the connection's memory budget (see `docs/performance.md`).
//!
//! Each call can carry [`Metadata`] both ways (protocol version 3): set it on a client
//! handle with [`Client::with_metadata`] (or the typed client's `with_metadata`), read it
//! in the handler with [`Context::metadata`], answer with
//! [`Context::set_reply_metadata`], read that with [`Client::call_with_reply_metadata`].
//! [`ClientOptions::propagate_trace`] sends a W3C [`TraceParent`] with each call, which the
//! server's `call` span records; every finished call logs a debug line with its status and
//! duration.
//!
//! # Cargo features
//!
//! Both are off by default.
//!
//! - `metrics`: calls, errors by status, latency per method, open connections and bytes in
//!   and out, recorded through the [`metrics`](https://docs.rs/metrics) facade; the names
//!   are in the `metric` module.
//! - `tower`: tower layers around every call of a server (`Server::layer`) and a service's
//!   dispatch as a `tower_service::Service` (the `tower` module); see `examples/tower.rs`.
#![forbid(unsafe_code)]
// Every `thread_local!` here has a `const` initializer already; clippy 1.96 still reports
// them when it checks the Windows target (built with `-Zbuild-std`).
#![cfg_attr(windows, allow(clippy::missing_const_for_thread_local))]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    rust_2018_idioms
)]

// The service macro names everything through `::ferry`, also inside ferry itself (the
// introspection service is defined with it).
extern crate self as ferry;

pub mod blocking;
mod budget;
mod capture;
pub mod channel;
pub mod child;
mod client;
mod context;
pub mod contract;
mod counted_notify;
pub mod dynamic;
mod engine;
mod error;
mod handle;
mod identity;
pub mod introspect;
mod metadata;
#[cfg(feature = "metrics")]
pub mod metric;
mod outbox;
mod server;
mod shared_bytes;
mod streaming;
mod telemetry;
#[cfg(feature = "tower")]
pub mod tower;
mod trace;
mod wire;

pub use client::{Client, ClientOptions, Reconnect};
pub use context::Context;
pub use error::{Error, ErrorChain, ErrorKind};
pub use ferry_codec::{
    frame_bytes, FormatId, Metadata, MetadataError, MetadataLimits, MetadataValue, StatusCode,
};
pub use ferry_macros::service;
pub use ferry_transport::{ConnectOptions, ListenerOptions, Name, PeerCredentials};
pub use handle::Handle;
pub use identity::ServerUser;
pub use server::{BoundServer, Server, ServerOptions, ShutdownHandle};
pub use shared_bytes::{SharedBytes, DEFAULT_MAX_SHARED_BYTES};
pub use streaming::{Incoming, StreamSender, Streaming};
pub use trace::{TraceParent, TRACEPARENT};

/// `docs/guide.md`, the getting-started guide: its code blocks are doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
mod guide {}

/// Endpoints and byte streams: names, listeners, connectors, socket pairs.
pub mod transport {
    pub use ferry_transport::*;
}

/// The wire format: frames, handshake, payload formats.
pub mod codec {
    pub use ferry_codec::*;
}

/// Items used by code that `#[ferry::service]` generates, so that it needs nothing else in
/// scope. Re-exports of public items, and two functions only generated code calls; not an
/// API of its own.
#[doc(hidden)]
pub mod __private {
    pub use crate::context::Context;
    pub use crate::contract::{
        Call, Handler, MethodSchemaBuilder, SchemaCell, SchemaTable, ServiceDispatch, ServiceInfo,
    };
    pub use ferry_codec::schema::TypeSchema;
    pub use ferry_codec::{Bulk, BulkRef, BulkValue, NoArgs};
    pub use ferry_transport::{Stream, ToName};
    pub use std::sync::Arc;

    /// Method `index` of `service`, as the generated client calls it.
    pub const fn method_ref(
        service: &'static crate::contract::ServiceInfo,
        index: u16,
    ) -> crate::contract::MethodRef {
        crate::contract::MethodRef::at(service, index)
    }

    /// Compile-time check that a type can travel as an argument or a return value.
    pub fn assert_wire_type<T: serde::Serialize + serde::de::DeserializeOwned>() {}
}
