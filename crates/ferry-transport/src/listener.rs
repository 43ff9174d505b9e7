//! Accepting connections on a named endpoint.

mod options;

pub use options::{ListenerOptions, DEFAULT_MAX_INSTANCES};

use crate::error::TransportError;
use crate::name::Name;
use crate::stream::Stream;
use crate::sys;

/// A bound endpoint that accepts [`Stream`]s.
///
/// On Unix, dropping it removes the socket file, but only if the file is still the one
/// this listener created.
#[derive(Debug)]
pub struct Listener {
    inner: sys::Listener,
    name: Name,
    address: String,
}

impl Listener {
    /// Binds `name`. Must be called inside a tokio runtime.
    ///
    /// On Unix, for a plain name, the runtime directory is created with mode `0o700` when
    /// missing (that one directory only: a missing `$XDG_RUNTIME_DIR` or `$TMPDIR` gives
    /// [`TransportError::MissingRuntimeDirectory`]); it must be a real directory, not a
    /// symbolic link, owned by this user or root, that neither group nor others may write,
    /// else [`TransportError::UnsafeDirectory`]. Clients check it the same way before they
    /// connect. For an explicit path missing parent directories are created with mode
    /// `0o700` and not checked. The socket file gets
    /// [`ListenerOptions::mode`] before it starts listening. A socket file whose server is
    /// gone (connecting is refused) is replaced when [`ListenerOptions::reclaim_stale`] is
    /// on; one with a live server gives [`TransportError::AddressInUse`].
    pub fn bind(name: &Name, options: &ListenerOptions) -> Result<Listener, TransportError> {
        let address = name.address();
        let inner = sys::Listener::bind(name, &address, options)?;
        tracing::debug!(%address, "listening");
        Ok(Listener {
            inner,
            name: name.clone(),
            address,
        })
    }

    /// Waits for the next connection.
    ///
    /// Cancel-safe: if the future is dropped before it completes, no connection is lost.
    pub async fn accept(&self) -> Result<Stream, TransportError> {
        let (stream, credentials) = self
            .inner
            .accept()
            .await
            .map_err(|err| TransportError::io("accept", &self.address, err))?;
        Ok(Stream::new(stream, credentials))
    }

    /// The name this listener was bound with.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The platform address it listens on (socket path, `@name` or pipe name).
    pub fn address(&self) -> String {
        self.address.clone()
    }
}
