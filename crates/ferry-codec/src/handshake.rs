//! The handshake: the client's [`Hello`] and the server's [`Welcome`].
//!
//! Both messages start with [`MAGIC`] and are exchanged once, before any frame.

use bytes::BytesMut;

use crate::{CodecError, MAGIC};

mod hello;
mod methods;
mod status;
mod welcome;

pub use hello::Hello;
pub use methods::{MethodEntry, MethodTable, MAX_METHOD_NAME, MAX_METHOD_TABLE};
pub use status::HandshakeStatus;
pub use welcome::Welcome;

/// Longest service name a [`Hello`] can carry, in bytes.
pub const MAX_SERVICE_NAME: usize = 255;

/// Longest message a [`Welcome`] can carry, in bytes.
pub const MAX_WELCOME_MESSAGE: usize = 1024;

/// Fails with [`CodecError::BadMagic`] once `buf` holds 4 bytes that are not [`MAGIC`].
fn check_magic(buf: &BytesMut) -> Result<(), CodecError> {
    match buf.first_chunk::<4>() {
        Some(found) if *found != MAGIC => Err(CodecError::BadMagic {
            found: *found,
            expected: MAGIC,
        }),
        _ => Ok(()),
    }
}

/// Reads the text field `field` of a handshake message: valid UTF-8 or
/// [`CodecError::HandshakeNotUtf8`], never a lossy copy, so what decodes encodes back to the
/// same bytes.
fn text(bytes: &[u8], field: &'static str) -> Result<String, CodecError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(source) => Err(CodecError::HandshakeNotUtf8 { field, source }),
    }
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([buf[at], buf[at + 1]])
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(bytes)
}
