//! The small internal runtime behind the blocking channel API.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

use crate::error::{Error, ErrorKind};

/// One runtime for the whole process, started on first use. Building it can fail (the OS
/// refuses a thread); the failure is kept and reported to every caller.
static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

fn runtime() -> Result<&'static Runtime, Error> {
    let runtime = RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ferry-blocking")
            .enable_all()
            .build()
            .map_err(|err| err.to_string())
    });
    runtime.as_ref().map_err(|err| {
        Error::new(
            ErrorKind::Closed,
            format!("cannot start the internal runtime for blocking calls: {err}"),
        )
    })
}

/// Runs `work` to completion on the internal runtime, blocking this thread.
///
/// Panics (tokio's "cannot start a runtime from within a runtime") when called from a thread
/// that drives async tasks, where blocking would stall them; threads of `spawn_blocking` and
/// plain threads are fine.
pub(crate) fn run<F: Future>(work: F) -> Result<F::Output, Error> {
    Ok(runtime()?.block_on(work))
}
