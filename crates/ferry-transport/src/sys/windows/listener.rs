//! A pipe server: a pool of at most `max_instances` instances of one name, with one
//! instance always waiting for the next client while there is room.
//!
//! The bound is ours, not the system's: the system's own limit per pipe is 254 instances
//! (or unlimited), too few for a server with a thousand idle clients. Every instance holds
//! a permit of a semaphore of `max_instances` permits, from its creation until its last
//! handle is closed; the system is told "unlimited".

use std::ffi::c_void;
use std::io;
use std::sync::Arc;

use tokio::net::windows::named_pipe::{NamedPipeServer, PipeMode, ServerOptions};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use windows_sys::Win32::Foundation::{ERROR_ACCESS_DENIED, ERROR_PIPE_BUSY};

use super::security::SecurityDescriptor;
use super::stream::Stream;
use super::target::Target;
use crate::error::TransportError;
use crate::listener::ListenerOptions;
use crate::name::Name;
use crate::sys::Connected;

/// An instance and its permit.
type Instance = (NamedPipeServer, OwnedSemaphorePermit);

/// A named-pipe server.
#[derive(Debug)]
pub(crate) struct Listener {
    address: String,
    options: ServerOptions,
    security: SecurityDescriptor,
    /// One permit per instance that may exist.
    instances: Arc<Semaphore>,
    /// The instance waiting for the next client; `None` only while `max_instances`
    /// connections are open.
    waiting: Mutex<Option<Instance>>,
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
            .reject_remote_clients(true);
        let instances = Arc::new(Semaphore::new(
            options.max_instances.min(Semaphore::MAX_PERMITS),
        ));
        let mut listener = Listener {
            address: target.address().to_owned(),
            options: server_options,
            security,
            waiting: Mutex::new(None),
            instances,
        };
        let Ok(permit) = Arc::clone(&listener.instances).try_acquire_owned() else {
            return Err(TransportError::io(
                "bind",
                address,
                io::Error::other("no pipe instance allowed"),
            ));
        };
        let first = listener.create(true).map_err(|err| {
            if is_taken(&err) {
                TransportError::AddressInUse {
                    address: address.to_owned(),
                    pid: None,
                    uid: None,
                }
            } else {
                TransportError::io("bind", address, err)
            }
        })?;
        *listener.waiting.get_mut() = Some((first, permit));
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

    /// Creates an instance, waiting while all `max_instances` exist.
    async fn create_when_free(&self) -> io::Result<Instance> {
        let permit = Arc::clone(&self.instances)
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("listener closed"))?;
        Ok((self.create(false)?, permit))
    }

    /// Creates an instance if the bound allows one now.
    fn try_create(&self) -> Option<io::Result<Instance>> {
        let permit = Arc::clone(&self.instances).try_acquire_owned().ok()?;
        Some(self.create(false).map(|pipe| (pipe, permit)))
    }

    /// Waits for a client on the waiting instance, then puts a new instance in its place
    /// before handing the connected one out.
    ///
    /// Cancel-safe: the waiting instance stays in `self.waiting`; a client that connected
    /// meanwhile is picked up by the next call.
    pub(crate) async fn accept(&self) -> io::Result<Connected> {
        let mut waiting = self.waiting.lock().await;
        let connected = loop {
            let instance = match waiting.take() {
                Some(instance) => instance,
                None => self.create_when_free().await?,
            };
            // Keep it in place across the await, so cancelling loses nothing.
            let (pipe, _) = &*waiting.insert(instance);
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
        let Some((connected, permit)) = connected else {
            return Err(io::Error::other("pipe instance vanished"));
        };
        match self.try_create() {
            Some(Ok(next)) => *waiting = Some(next),
            // At the limit: the next accept waits for a connection to close.
            None => {}
            Some(Err(err)) => {
                tracing::warn!(address = %self.address, error = %err, "cannot create the next pipe instance");
            }
        }
        Ok(Stream::server(connected, Some(permit)))
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
