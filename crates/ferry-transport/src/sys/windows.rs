//! Windows named pipes: not implemented yet. Every entry point reports
//! [`TransportError::Unsupported`], and the types cannot be constructed.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::TransportError;
use crate::listener::ListenerOptions;
use crate::name::Name;
use crate::sys::Connected;

const PIPES: &str = "named pipes";

/// The pipe a plain name maps to.
pub(crate) fn plain_address(plain: &str) -> String {
    format!(r"\\.\pipe\{plain}")
}

/// Windows-specific "nobody listens" errors beyond `NotFound`.
pub(crate) fn is_absent(_error: &io::Error) -> bool {
    false
}

/// A pipe server. Not constructible yet.
#[derive(Debug)]
pub(crate) struct Listener {
    never: Infallible,
}

impl Listener {
    pub(crate) fn bind(
        _name: &Name,
        _address: &str,
        _options: &ListenerOptions,
    ) -> Result<Listener, TransportError> {
        Err(TransportError::Unsupported(PIPES))
    }

    pub(crate) async fn accept(&self) -> io::Result<Connected> {
        match self.never {}
    }
}

/// A resolved pipe name. Not constructible yet.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    never: Infallible,
}

impl Target {
    pub(crate) fn resolve(_name: &Name) -> Result<Target, TransportError> {
        Err(TransportError::Unsupported(PIPES))
    }

    pub(crate) async fn connect(&self) -> io::Result<Connected> {
        match self.never {}
    }
}

/// Two connected pipe ends. Not available yet.
pub(crate) fn pair() -> Result<(Connected, Connected), TransportError> {
    Err(TransportError::Unsupported(PIPES))
}

/// A connected pipe. Not constructible yet.
#[derive(Debug)]
pub(crate) struct Stream {
    never: Infallible,
}

impl Stream {
    pub(crate) fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self.never {}
    }
}

/// The read half of a [`Stream`].
#[derive(Debug)]
pub(crate) struct ReadHalf {
    never: Infallible,
}

/// The write half of a [`Stream`].
#[derive(Debug)]
pub(crate) struct WriteHalf {
    never: Infallible,
}

macro_rules! never_read {
    ($ty:ty) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
                _buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.never {}
            }
        }
    };
}

macro_rules! never_write {
    ($ty:ty) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
                _buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.never {}
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.never {}
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.never {}
            }
        }
    };
}

never_read!(Stream);
never_write!(Stream);
never_read!(ReadHalf);
never_write!(WriteHalf);
