//! Integration tests over real sockets and pipes. Plain names live under a private directory per
//! test process (`FERRY_RUNTIME_DIR`), explicit paths under a scratch directory.

#[cfg(unix)]
mod support;

#[cfg(unix)]
mod connect;
#[cfg(unix)]
mod listener;
#[cfg(unix)]
mod passing;
#[cfg(unix)]
mod streams;
#[cfg(windows)]
mod windows;
