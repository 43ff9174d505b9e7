//! Platform code. Everything above this module is portable and forwards here.
//!
//! Each platform module provides the same items: `Listener`, `Stream`, `ReadHalf`,
//! `WriteHalf`, `Target` (a resolved address to connect to), `pair`, `plain_address`
//! and `is_absent`.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

/// A platform stream and the identity of its peer, as produced by accept, connect and pair.
pub(crate) type Connected = (Stream, crate::credentials::PeerCredentials);
