//! Wire format of the ferry RPC protocol: handshake messages, frames and payload formats.
//!
//! This crate does no I/O. Everything here turns bytes into messages and messages into
//! bytes over [`bytes::BytesMut`] buffers, so the protocol can be tested without sockets.
//! The protocol itself is described in `docs/protocol.md` at the root of the repository.
//!
//! - [`Hello`] / [`Welcome`]: the handshake a client and a server exchange once per connection.
//! - [`Frame`], [`FrameDecoder`], [`begin_frame`] / [`finish_frame`]: the 16-byte-header frames
//!   that follow the handshake.
//! - [`FormatId`], [`Format`], [`Bincode`], [`Json`]: how arguments and return values are encoded;
//!   [`Bulk`], [`BulkRef`], [`BulkValue`] and [`frame_bytes`]: byte strings in one copy, or none;
//!   [`encode_spliced`]: large ones left out of the buffer, to be written by reference.
//! - [`signature_hash`]: the hash of a service's canonical signature, sent in the [`Hello`].
//! - [`Metadata`]: per-call metadata, the block a frame with [`flags::METADATA`] carries.
//! - [`schema`]: structural schemas of methods, their canonical text, hash and differences.
//!
//! Every decoder checks announced sizes against a limit before it reserves memory; the
//! default frame limit is [`DEFAULT_MAX_FRAME`].
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

mod decoder;
mod error;
mod format;
mod frame;
mod handles;
mod handshake;
mod kind;
mod metadata;
pub mod schema;
mod signature;
mod splice;
mod status;

pub use decoder::FrameDecoder;
pub use error::CodecError;
pub use format::{
    frame_bytes, Bincode, Bulk, BulkRef, BulkValue, Format, FormatId, Json, NoArgs, SLICE_MIN,
};
pub use frame::{
    begin_frame, begin_request, encode_early_request_with, encode_frame_with, encode_request_with,
    finish_frame, Frame, FrameStart,
};
pub use handles::{append_handle_trailer, split_handle_trailer, HANDLES_VERSION, MAX_HANDLES};
pub use handshake::{
    HandshakeStatus, Hello, MethodEntry, MethodTable, Welcome, MAX_METHOD_NAME, MAX_METHOD_TABLE,
    MAX_SERVICE_NAME, MAX_WELCOME_MESSAGE,
};
pub use kind::{flags, FrameKind};
pub use metadata::{
    Metadata, MetadataError, MetadataLimits, MetadataValue, DEFAULT_MAX_METADATA_ENTRIES,
    DEFAULT_MAX_METADATA_KEY, DEFAULT_MAX_METADATA_SIZE, MAX_METADATA_KEY,
};
pub use signature::signature_hash;
pub use splice::{encode_spliced, Splice, SPLICE_FLOOR};
pub use status::StatusCode;

/// The four bytes that open both handshake messages: `FRRY`.
pub const MAGIC: [u8; 4] = *b"FRRY";

/// The highest protocol version this crate speaks. Version 2 is version 1 plus the
/// connection-level frames GOAWAY, PING and PONG, and the method table in an accepting
/// [`Welcome`]. Version 3 adds early requests ([`Hello::EARLY`],
/// [`FrameKind::EARLY_REQUEST`]), operating-system handles passed with frames
/// ([`HANDLES_VERSION`]) and per-call [`Metadata`] (flag [`flags::METADATA`]).
pub const PROTOCOL_VERSION: u16 = 3;

/// The first protocol version whose REQUEST, RESPONSE and ERROR frames may carry a
/// [`Metadata`] block: a peer sends one only on a connection whose negotiated version is
/// at least this, and reads one only there (on older connections the flag is reserved and
/// ignored).
pub const METADATA_VERSION: u16 = 3;

/// The first protocol version whose accepting [`Welcome`] carries the service's method
/// table (and whose [`Hello`] may ask, with [`Hello::BIND_BY_NAME`], to be checked per
/// method).
pub const METHOD_TABLE_VERSION: u16 = 2;

/// The first protocol version with GOAWAY, PING and PONG: a peer sends them only on a
/// connection whose negotiated version is at least this.
pub const CONTROL_FRAMES_VERSION: u16 = 2;

/// The first protocol version whose server runs early requests: a client's first calls
/// sent right behind its [`Hello`], before the [`Welcome`] (see [`Hello::EARLY`]).
pub const EARLY_REQUEST_VERSION: u16 = 3;

/// Length of a frame header in bytes.
pub const HEADER_LEN: usize = 16;

/// Default largest frame body a peer accepts: 16 MiB.
pub const DEFAULT_MAX_FRAME: u32 = 16 * 1024 * 1024;
