//! Platform-only extras.

#[cfg(unix)]
pub mod unix;
#[cfg(windows)]
pub mod windows;
