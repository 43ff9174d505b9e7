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
/// Panics when called from inside an async runtime (blocking there would stall it).
pub(crate) fn run<F: Future>(work: F) -> Result<F::Output, Error> {
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "ferry's blocking channel calls cannot be made from inside an async runtime; use the async methods"
    );
    Ok(runtime()?.block_on(work))
}
