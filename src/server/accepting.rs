//! Where the accept loop runs. On the thread of a multi-thread runtime's `block_on` (no task
//! of the runtime, as in `#[tokio::main]` awaiting [`BoundServer::run`]), each readiness of
//! the listener reaches that thread through a worker (a wake-up of another thread) and each
//! connection it spawns wakes a worker in turn. There the loop runs as a task of its own: the
//! worker that sees the listener ready accepts, and runs the new connection's task next (the
//! runtime runs the task spawned last first), so the hello is read on the thread that
//! accepted, with no wake-up between. Elsewhere (in a task, or on a current-thread runtime)
//! the loop runs in place, as before.
//!
//! [`BoundServer::run`]: crate::BoundServer::run

use std::future::Future;
use std::sync::Arc;

use ferry_transport::Listener;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use crate::error::Error;
use crate::server::{accept_loop, Shared};

/// Runs the accept loop until a graceful shutdown begins, which `signal` also begins when
/// it completes. Returns the listener and the connections' tasks.
pub(super) async fn accept_until_shutdown(
    listener: Listener,
    shared: &Arc<Shared>,
    address: String,
    signal: impl Future,
) -> Result<(Listener, JoinSet<()>), Error> {
    tokio::pin!(signal);
    let mut signalled = false;
    if !spawn_here() {
        let accepting = accept_loop(listener, Arc::clone(shared), address);
        tokio::pin!(accepting);
        loop {
            tokio::select! {
                done = &mut accepting => return Ok(done),
                _ = &mut signal, if !signalled => {
                    signalled = true;
                    shared.begin_shutdown();
                }
            }
        }
    }
    let mut accepting = Accepting(tokio::spawn(
        accept_loop(listener, Arc::clone(shared), address).in_current_span(),
    ));
    loop {
        tokio::select! {
            joined = &mut accepting.0 => {
                return match joined {
                    Ok(done) => Ok(done),
                    Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                    Err(_) => Err(Error::closed(
                        "the server's accept loop was cancelled: its runtime is shutting down",
                    )),
                };
            }
            _ = &mut signal, if !signalled => {
                signalled = true;
                shared.begin_shutdown();
            }
        }
    }
}

/// Whether the accept loop goes to a task of its own: on the thread of a multi-thread
/// runtime's `block_on`, which is no worker of the runtime.
fn spawn_here() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        && tokio::task::try_id().is_none()
}

/// The accept loop's task: stopped when the server's run is dropped (the listener then
/// closes once the runtime has dropped the task).
struct Accepting(JoinHandle<(Listener, JoinSet<()>)>);

impl Drop for Accepting {
    fn drop(&mut self) {
        self.0.abort();
    }
}
