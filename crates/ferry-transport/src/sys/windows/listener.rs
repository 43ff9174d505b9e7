//! A pipe server: a pool of at most `max_instances` instances of one name, with one
//! instance always waiting for the next client while there is room.

use std::ffi::c_void;
use std::io;
use std::time::Duration;

use tokio::net::windows::named_pipe::{NamedPipeServer, PipeMode, ServerOptions};
use tokio::sync::Mutex;
use windows_sys::Win32::Foundation::{ERROR_ACCESS_DENIED, ERROR_PIPE_BUSY};

use super::security::SecurityDescriptor;
use super::stream::Stream;
use super::target::Target;
use crate::error::TransportError;
use crate::listener::ListenerOptions;
use crate::name::Name;
use crate::sys::Connected;

/// First pause while every instance is taken and `accept` waits for one to free up.
const FIRST_BUSY_DELAY: Duration = Duration::from_millis(2);
/// Longest such pause.
const MAX_BUSY_DELAY: Duration = Duration::from_millis(50);

/// A named-pipe server.
#[derive(Debug)]
pub(crate) struct Listener {
    address: String,
    options: ServerOptions,
    security: SecurityDescriptor,
    /// The instance waiting for the next client; `None` only while `max_instances`
    /// connections are open.
    waiting: Mutex<Option<NamedPipeServer>>,
}

impl Listener {
    pub(crate) fn bind(
        name: &Name,
        address: &str,
        options: &ListenerOptions,
    ) -> Result<Listener, TransportError> {
        let target = Target::resolve(name)?;
        let security = SecurityDescriptor::for_access(&options.pipe_access)
            .map_err(|err| TransportError::io("bind", address, err))?;
        tracing::debug!(%address, sddl = security.sddl(), "pipe security descriptor");
        let mut server_options = ServerOptions::new();
        server_options
            .pipe_mode(PipeMode::Byte)
            .reject_remote_clients(true)
            .max_instances(options.max_instances);
        let mut listener = Listener {
            address: target.address().to_owned(),
            options: server_options,
            security,
            waiting: Mutex::new(None),
        };
        let first = listener.create(true).map_err(|err| {
            if is_taken(&err) {
                TransportError::AddressInUse {
                    address: address.to_owned(),
                }
            } else {
                TransportError::io("bind", address, err)
            }
        })?;
        *listener.waiting.get_mut() = Some(first);
        Ok(listener)
    }

    /// Creates one instance with this listener's descriptor.
    fn create(&self, first: bool) -> io::Result<NamedPipeServer> {
        let mut options = self.options.clone();
        options.first_pipe_instance(first);
        let mut attributes = self.security.attributes();
        // SAFETY: `attributes` is a valid SECURITY_ATTRIBUTES whose descriptor is owned by
        // `self.security` and outlives the call; CreateNamedPipeW copies what it needs.
        unsafe {
            options.create_with_security_attributes_raw(
                &self.address,
                std::ptr::from_mut(&mut attributes).cast::<c_void>(),
            )
        }
    }

    /// Creates an instance, waiting while all `max_instances` are connected.
    async fn create_when_free(&self) -> io::Result<NamedPipeServer> {
        let mut delay = FIRST_BUSY_DELAY;
        loop {
            match self.create(false) {
                Err(err) if err.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BUSY_DELAY);
                }
                other => return other,
            }
        }
    }

    /// Waits for a client on the waiting instance, then puts a new instance in its place
    /// before handing the connected one out.
    ///
    /// Cancel-safe: the waiting instance stays in `self.waiting`; a client that connected
    /// meanwhile is picked up by the next call.
    pub(crate) async fn accept(&self) -> io::Result<Connected> {
        let mut waiting = self.waiting.lock().await;
        let connected = loop {
            let pipe = match waiting.take() {
                Some(pipe) => pipe,
                None => self.create_when_free().await?,
            };
            // Keep it in place across the await, so cancelling loses nothing.
            let pipe = &*waiting.insert(pipe);
            let result = pipe.connect().await;
            match result {
                Ok(()) => break waiting.take(),
                Err(err) if super::stream::is_disconnect(&err) => {
                    // The client came and went before we saw it: drop this instance.
                    tracing::trace!(address = %self.address, "client left before accept");
                    *waiting = None;
                }
                Err(err) => {
                    *waiting = None;
                    return Err(err);
                }
            }
        };
        let Some(connected) = connected else {
            return Err(io::Error::other("pipe instance vanished"));
        };
        match self.create(false) {
            Ok(next) => *waiting = Some(next),
            // At the limit: the next accept waits for a connection to close.
            Err(err) if err.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => {}
            Err(err) => {
                tracing::warn!(address = %self.address, error = %err, "cannot create the next pipe instance");
            }
        }
        Ok(Stream::server(connected))
    }

    /// The SDDL of the descriptor every instance gets.
    #[cfg(test)]
    pub(crate) fn sddl(&self) -> &str {
        self.security.sddl()
    }
}

/// The errors of a first instance whose name is taken: `ERROR_ACCESS_DENIED` (the
/// documented answer of `FILE_FLAG_FIRST_PIPE_INSTANCE`) and `ERROR_PIPE_BUSY` (another
/// server's instances are all in use).
fn is_taken(err: &io::Error) -> bool {
    err.raw_os_error()
        .is_some_and(|code| code == ERROR_ACCESS_DENIED as i32 || code == ERROR_PIPE_BUSY as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn instances_get_the_owner_only_descriptor() {
        let name = Name::new(&format!("ferry-unit-{}-sd", std::process::id())).unwrap();
        let listener = Listener::bind(&name, &name.address(), &ListenerOptions::new()).unwrap();
        let sddl = listener.sddl();
        assert!(
            sddl.starts_with("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;S-1-"),
            "{sddl}"
        );
        assert!(!sddl.contains(";AU)") && !sddl.contains(";WD)"), "{sddl}");
    }
}
