//! A name resolved to a pipe path, and opening it as a client.

use std::io;
use std::time::Duration;

use tokio::net::windows::named_pipe::{ClientOptions, PipeMode};
use windows_sys::Win32::Foundation::ERROR_PIPE_BUSY;
use windows_sys::Win32::Storage::FileSystem::SECURITY_IDENTIFICATION;

use super::stream::Stream;
use crate::error::TransportError;
use crate::name::{Name, NameKind};
use crate::sys::Connected;

/// First pause after `ERROR_PIPE_BUSY` (every instance taken).
const FIRST_BUSY_DELAY: Duration = Duration::from_millis(2);
/// Longest such pause.
const MAX_BUSY_DELAY: Duration = Duration::from_millis(50);

/// A pipe path such as `\\.\pipe\myapp.echo`.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    address: String,
}

impl Target {
    pub(crate) fn resolve(name: &Name) -> Result<Target, TransportError> {
        match name.kind() {
            NameKind::Plain(plain) => Ok(Target {
                address: super::plain_address(plain),
            }),
            NameKind::Pipe(pipe) => Ok(Target {
                address: pipe.clone(),
            }),
            NameKind::Path(_) => Err(TransportError::Unsupported("socket paths")),
            NameKind::Abstract(_) => Err(TransportError::Unsupported("abstract socket names")),
        }
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Pipe names have no directory to check: always `Ok(true)` (the server's identity is
    /// what protects a pipe name).
    pub(crate) fn check(&self) -> Result<bool, TransportError> {
        Ok(true)
    }

    /// Opens the pipe, retrying while every instance is busy (the caller bounds this with
    /// its timeout). A missing pipe is returned at once as `NotFound`.
    ///
    /// The client opens with `SECURITY_IDENTIFICATION`: the server may learn who the
    /// client is but cannot act as the client.
    pub(crate) async fn connect(&self) -> io::Result<Connected> {
        let mut options = ClientOptions::new();
        options
            .pipe_mode(PipeMode::Byte)
            .security_qos_flags(SECURITY_IDENTIFICATION);
        let mut delay = FIRST_BUSY_DELAY;
        loop {
            match options.open(&self.address) {
                Ok(pipe) => return Ok(Stream::client(pipe)),
                Err(err) if err.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => {
                    tracing::trace!(address = %self.address, ?delay, "all pipe instances busy");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BUSY_DELAY);
                }
                Err(err) => return Err(err),
            }
        }
    }
}
