//! Platform-only extras.

#[cfg(unix)]
pub mod unix;
