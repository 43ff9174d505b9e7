//! Services and helpers shared by the integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub mod child;
pub mod events;
pub mod raw;

/// A unique endpoint name for this test process.
pub fn unique_name(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "ferry-test-{what}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Awaits `future` for at most 10 s; a hang fails the test instead of blocking it forever.
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("timed out after 10 s")
}

/// Polls `condition` every few milliseconds until it holds (at most 10 s).
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let wait = async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for: {what}"));
}

/// Runs `test` on a runtime of its own, one such test at a time in this process. For tests
/// that count this process's descriptors or mappings: the next test's runtime (whose
/// descriptors count too) is made only once this one's is gone.
pub fn one_at_a_time(test: impl Future<Output = ()>) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(test);
}

/// Waits until `counts()` (descriptors open here and in the peer) is back at `want`, at
/// most 5 s, else fails with the counts. A sent descriptor is closed once its frame is
/// written, which can be a moment after the reply arrived; more than that is a leak.
pub async fn until_counts<F: Future<Output = (usize, usize)>>(
    want: (usize, usize),
    mut counts: impl FnMut() -> F,
) {
    let settled = async {
        loop {
            if counts().await == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), settled)
        .await
        .is_err()
    {
        let now = within(counts()).await;
        panic!(
            "descriptors left open: here {} (was {}), in the peer {} (was {})",
            now.0, want.0, now.1, want.1
        );
    }
}

/// Raises this process's open-file soft limit to its hard limit, for tests that hold
/// thousands of sockets (both ends live in this process). Nothing to do on Windows.
pub fn raise_fd_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0
            && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            // SAFETY: `limit` is a valid rlimit; raising the soft limit up to the hard
            // limit needs no privilege.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DivError {
    DivideByZero,
}

#[ferry::service]
pub trait Calc {
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> i64;
    /// Divides, or says why not.
    async fn div(&self, a: i64, b: i64) -> Result<i64, DivError>;
    /// The caller's process id as the server saw it.
    async fn whoami(&self, cx: &ferry::Context) -> Option<u32>;
    /// Sleeps `ms` then returns `tag`.
    async fn sleep_then(&self, ms: u64, tag: u64) -> u64;
    /// Panics.
    async fn boom(&self);
    /// Waits until cancelled; reports its cancellation on the test's channel.
    async fn hang(&self, tag: u64);
    /// Milliseconds of deadline the handler saw, or None.
    async fn remaining_ms(&self, cx: &ferry::Context) -> Option<u64>;
    /// A reply of `len` bytes.
    async fn blob(&self, len: usize) -> Vec<u8>;
    /// Takes a payload and returns its length.
    async fn take(&self, data: bytes::Bytes) -> usize;
}

/// The test implementation of [`Calc`]; `dropped` receives the tag of every `hang` call
/// whose handler was dropped (cancelled).
pub struct CalcImpl {
    pub dropped: mpsc::UnboundedSender<u64>,
    pub started: mpsc::UnboundedSender<u64>,
}

pub struct Probe {
    pub dropped: mpsc::UnboundedReceiver<u64>,
    pub started: mpsc::UnboundedReceiver<u64>,
}

pub fn calc() -> (CalcImpl, Probe) {
    let (dropped_tx, dropped_rx) = mpsc::unbounded_channel();
    let (started_tx, started_rx) = mpsc::unbounded_channel();
    (
        CalcImpl {
            dropped: dropped_tx,
            started: started_tx,
        },
        Probe {
            dropped: dropped_rx,
            started: started_rx,
        },
    )
}

struct DropReport {
    tag: u64,
    to: mpsc::UnboundedSender<u64>,
}

impl Drop for DropReport {
    fn drop(&mut self) {
        let _ = self.to.send(self.tag);
    }
}

impl Calc for CalcImpl {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }

    async fn div(&self, a: i64, b: i64) -> Result<i64, DivError> {
        a.checked_div(b).ok_or(DivError::DivideByZero)
    }

    async fn whoami(&self, cx: &ferry::Context) -> Option<u32> {
        cx.peer().pid()
    }

    async fn sleep_then(&self, ms: u64, tag: u64) -> u64 {
        let _ = self.started.send(tag);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        tag
    }

    async fn boom(&self) {
        panic!("boom on purpose");
    }

    async fn hang(&self, tag: u64) {
        let _report = DropReport {
            tag,
            to: self.dropped.clone(),
        };
        let _ = self.started.send(tag);
        std::future::pending::<()>().await;
    }

    async fn remaining_ms(&self, cx: &ferry::Context) -> Option<u64> {
        cx.remaining().map(|d| d.as_millis() as u64)
    }

    async fn blob(&self, len: usize) -> Vec<u8> {
        vec![7; len]
    }

    async fn take(&self, data: bytes::Bytes) -> usize {
        data.len()
    }
}

/// Starts a server with `server` on a fresh name; returns the name and a shutdown handle.
pub async fn start(
    server: ferry::Server,
) -> (
    String,
    ferry::ShutdownHandle,
    tokio::task::JoinHandle<Result<(), ferry::Error>>,
) {
    let name = unique_name("srv");
    let (handle, task) = start_at(&name, server).await;
    (name, handle, task)
}

/// Starts a server with `server` on `name` (for example the name of a server that went away).
pub async fn start_at(
    name: &str,
    server: ferry::Server,
) -> (
    ferry::ShutdownHandle,
    tokio::task::JoinHandle<Result<(), ferry::Error>>,
) {
    let bound = within(server.bind(name)).await.expect("bind");
    let handle = bound.shutdown_handle();
    let task = tokio::spawn(bound.run());
    (handle, task)
}

/// A Calc server with default options.
pub async fn start_calc() -> (String, ferry::ShutdownHandle, Probe) {
    let (service, probe) = calc();
    let (name, handle, _task) = start(ferry::Server::new().serve(CalcServer::new(service))).await;
    (name, handle, probe)
}

pub fn arc<T>(value: T) -> Arc<T> {
    Arc::new(value)
}

/// Serves what `make` builds on a runtime of its own thread, for tests of code that runs
/// without a runtime; returns the endpoint name once the server is bound.
pub fn serve_on_thread(make: impl FnOnce() -> ferry::Server + Send + 'static) -> String {
    let name = unique_name("thread");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server_name = name.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let bound = make().bind(server_name.as_str()).await.expect("bind");
            ready_tx.send(()).expect("test alive");
            bound.run().await.expect("serve");
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server thread did not bind in 10 s");
    name
}

/// Calls `add(3, 4)` on a fail-fast reconnecting client until the server is back: while it
/// is down every call must fail with `ErrorKind::Connect` (never sent, safe to retry).
pub async fn add_until_reconnected(calc: &CalcClient) -> i64 {
    loop {
        match calc.add(3, 4).await {
            Ok(sum) => break sum,
            Err(err) => {
                assert_eq!(err.kind(), ferry::ErrorKind::Connect, "{err}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// Checks ferry's error-text rule on `err` and each of its sources: every level has a text
/// of its own and none contains the text of its source (a cause is said once, by the
/// source; the printer joins them).
pub fn assert_chain_distinct(err: &(dyn std::error::Error + 'static)) {
    let texts = levels(err);
    for text in &texts {
        assert!(!text.is_empty(), "an error with no text in {err:?}");
    }
    for pair in texts.windows(2) {
        let (outer, inner) = (&pair[0], &pair[1]);
        assert!(
            !outer.contains(inner.as_str()),
            "{outer:?} repeats the text of its source {inner:?} (in {err:?})"
        );
    }
}

/// The text of `err` and of each of its sources, outermost first.
pub fn levels(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut texts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        texts.push(cause.to_string());
        source = cause.source();
    }
    texts
}

/// The whole chain of `err` on one line, as `{:#}` prints it, after
/// [`assert_chain_distinct`]: tests that look at an error's text go through here, so every
/// error they see is checked for repetition.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    assert_chain_distinct(err);
    ferry::ErrorChain::new(err).to_string()
}
