//! Two connected pipe ends under a fresh random name.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use tokio::net::windows::named_pipe::{ClientOptions, PipeMode, ServerOptions};
use windows_sys::Win32::Storage::FileSystem::SECURITY_IDENTIFICATION;

use super::security::SecurityDescriptor;
use super::stream::Stream;
use crate::error::TransportError;
use crate::os::windows::PipeAccess;
use crate::sys::Connected;

/// A pipe name nobody can guess: process id, a counter and 64 random bits.
fn unique_pipe_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded from the system's random source.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(n);
    format!(
        r"\\.\pipe\ferry-pair-{}-{n}-{:016x}",
        std::process::id(),
        hasher.finish()
    )
}

/// A single-instance, owner-only pipe with both ends opened by this process.
pub(crate) fn pair() -> Result<(Connected, Connected), TransportError> {
    let address = unique_pipe_name();
    let io = |op: &'static str| {
        let address = address.clone();
        move |err| TransportError::io(op, &address, err)
    };
    let security = SecurityDescriptor::for_access(&PipeAccess::Owner).map_err(io("pair"))?;
    let mut attributes = security.attributes();
    let mut options = ServerOptions::new();
    options
        .pipe_mode(PipeMode::Byte)
        .first_pipe_instance(true)
        .reject_remote_clients(true)
        .max_instances(1);
    // SAFETY: `attributes` is a valid SECURITY_ATTRIBUTES whose descriptor lives in
    // `security` until the end of this function; CreateNamedPipeW copies it.
    let server = unsafe {
        options.create_with_security_attributes_raw(
            &address,
            std::ptr::from_mut(&mut attributes).cast::<std::ffi::c_void>(),
        )
    }
    .map_err(io("pair"))?;
    let client = ClientOptions::new()
        .pipe_mode(PipeMode::Byte)
        .security_qos_flags(SECURITY_IDENTIFICATION)
        .open(&address)
        .map_err(io("pair"))?;
    // The client is already connected, so ConnectNamedPipe answers at once.
    let connected = {
        let connect = pin!(server.connect());
        connect.poll(&mut Context::from_waker(Waker::noop()))
    };
    match connected {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(err)) => return Err(TransportError::io("pair", &address, err)),
        Poll::Pending => {
            return Err(TransportError::io(
                "pair",
                &address,
                std::io::Error::other("the server end did not see its client"),
            ))
        }
    }
    Ok((Stream::server(server, None), Stream::client(client)))
}
