//! Child links through a private endpoint with a random name (Windows; Unix on request).
//!
//! Only the portable transport API is used here, so this works wherever `Listener` does.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use ferry_transport::{Listener, ListenerOptions, Name, Stream};
use tokio::process::Child;
use tracing::warn;

use crate::child::PARENT_ENDPOINT_ENV;
use crate::error::{Error, ErrorKind};

/// A plain endpoint name no other process can guess: 64 bits from the standard library's
/// randomly keyed hasher, over this process's id, a counter and the time.
fn random_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    if let Ok(since) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        hasher.write_u128(since.as_nanos());
    }
    format!(
        "ferry-child-{}-{:016x}",
        std::process::id(),
        hasher.finish()
    )
}

/// Binds a private endpoint, spawns `command` with its address, and waits up to `timeout`
/// for the spawned process to connect.
pub(super) async fn spawn(
    mut command: tokio::process::Command,
    timeout: Duration,
) -> Result<(Child, Stream), Error> {
    let name = Name::new(&random_name())
        .map_err(|err| Error::transport(ErrorKind::Connect, "invalid child link name", err))?;
    let listener = Listener::bind(&name, &ListenerOptions::default())
        .map_err(|err| Error::transport(ErrorKind::Connect, "cannot bind the child link", err))?;
    command.env(PARENT_ENDPOINT_ENV, listener.address());
    let mut process = command
        .spawn()
        .map_err(|err| Error::io(ErrorKind::Connect, "cannot spawn the child process", err))?;
    drop(command);
    match accept_child(&listener, &mut process, timeout).await {
        Ok(stream) => Ok((process, stream)),
        Err(err) => {
            let _ = process.start_kill();
            Err(err)
        }
    }
}

async fn accept_child(
    listener: &Listener,
    process: &mut Child,
    timeout: Duration,
) -> Result<Stream, Error> {
    let child_pid = process.id();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = accepted.map_err(|err| {
                    Error::transport(ErrorKind::Connect, "cannot accept the child link", err)
                })?;
                match (stream.peer_credentials().pid(), child_pid) {
                    (Some(peer), Some(child)) if peer != child => {
                        warn!(peer, child, "a process other than the child connected to its link; dropped");
                    }
                    _ => return Ok(stream),
                }
            }
            status = process.wait() => {
                let status = status
                    .map(|status| status.to_string())
                    .unwrap_or_else(|err| format!("unknown status ({err})"));
                return Err(Error::new(
                    ErrorKind::Connect,
                    format!("the child process exited ({status}) before connecting to its link"),
                ));
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(Error::new(
                    ErrorKind::Connect,
                    format!("the child process did not connect to its link within {timeout:?}"),
                ));
            }
        }
    }
}

/// The child's side: connects to the endpoint named in [`PARENT_ENDPOINT_ENV`].
pub(super) async fn connect(address: &str) -> Result<Stream, Error> {
    let name = Name::new(address)
        .map_err(|err| Error::transport(ErrorKind::Connect, "invalid parent link address", err))?;
    ferry_transport::connect(&name)
        .await
        .map_err(|err| Error::transport(ErrorKind::Connect, "cannot connect to the parent", err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_names_are_plain_and_distinct() {
        let a = random_name();
        let b = random_name();
        assert_ne!(a, b);
        assert!(Name::new(&a)
            .expect("a valid plain name")
            .as_plain()
            .is_some());
    }
}
