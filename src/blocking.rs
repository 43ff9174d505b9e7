//! Calling services from code without an async runtime: what the generated
//! `{Trait}BlockingClient` runs on.
//!
//! All blocking clients of a process share one small tokio runtime with a single worker
//! thread, started on first use. A blocking call hands its future to that runtime and parks
//! the calling thread until the reply arrives, so the cost over the async client is one
//! thread hand-off each way (a few microseconds) and one extra thread per process.
//!
//! ```no_run
//! #[ferry::service]
//! pub trait Calc {
//!     async fn add(&self, a: i64, b: i64) -> i64;
//! }
//!
//! fn main() -> Result<(), ferry::Error> {
//!     // No runtime here: plain `main`.
//!     let calc = CalcBlockingClient::connect("calc-demo")?;
//!     assert_eq!(calc.add(1, 2)?, 3);
//!     Ok(())
//! }
//! ```
//!
//! `examples/blocking.rs` runs one from plain threads, with a stream read as an iterator.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use futures::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind};
use crate::streaming::Incoming;

fn runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("ferry-blocking")
                .enable_all()
                .build()
                .map_err(|err| err.to_string())
        })
        .as_ref()
        .map_err(|err| {
            Error::new(
                ErrorKind::Usage,
                format!("cannot start the blocking client's runtime: {err}"),
            )
        })
}

/// Runs `work` to completion on the shared blocking runtime, parking this thread.
///
/// Works from plain threads and from `tokio::task::spawn_blocking` threads. From a thread
/// that drives async tasks, where parking could stall that runtime, it fails with
/// [`ErrorKind::Usage`] instead: use the async client there.
pub fn block_on<T>(work: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let runtime = runtime()?;
    if tokio::runtime::Handle::try_current().is_err() {
        // A plain thread: nothing to stall, and a panic in the work stays a panic.
        return runtime.block_on(work);
    }
    // A thread with a runtime context: either one that drives async tasks, where tokio
    // refuses (by panicking, before it polls anything) to block, or a `spawn_blocking`
    // thread, where blocking is fine. Only that refusal becomes a `Usage` error: the work
    // catches its own panic, which is resumed here unchanged.
    let work = AssertUnwindSafe(work).catch_unwind();
    match std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(work))) {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => Err(Error::new(
            ErrorKind::Usage,
            "a blocking ferry call was made from a thread that runs async tasks; use the async API there",
        )),
    }
}

/// An [`Incoming`] reply stream read from blocking code: an iterator of `Result<T, ferry::Error>`.
#[derive(Debug)]
pub struct BlockingStream<T> {
    stream: Incoming<T>,
}

impl<T> BlockingStream<T> {
    /// Wraps a stream received from a call.
    pub fn new(stream: Incoming<T>) -> Self {
        BlockingStream { stream }
    }
}

impl<T: DeserializeOwned + 'static> Iterator for BlockingStream<T> {
    type Item = Result<T, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let stream = &mut self.stream;
        match block_on(async { Ok(stream.next().await) }) {
            Ok(item) => item,
            Err(err) => Some(Err(err)),
        }
    }
}
