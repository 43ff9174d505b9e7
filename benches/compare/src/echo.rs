//! What every implementation provides: an echo server and a client that the scenarios drive.

use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

/// The three implementations side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Impl {
    /// Hand-written tokio Unix socket echo, u32 length prefix, buffered I/O.
    Raw,
    /// ferry over its Unix transport, bincode payloads, `bytes::Bytes` argument.
    Ferry,
    /// tarpc 0.38, `serde_transport` over Unix sockets with bincode, `bytes::Bytes` argument.
    Tarpc,
}

impl Impl {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Impl::Raw => "raw",
            Impl::Ferry => "ferry",
            Impl::Tarpc => "tarpc",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Impl> {
        [Impl::Raw, Impl::Ferry, Impl::Tarpc]
            .into_iter()
            .find(|imp| imp.name() == name)
    }
}

/// A connected echo client.
pub(crate) trait Client: Send + Sized + 'static {
    /// Connects to the server at `path`, ready for its first call.
    fn connect(path: &Path) -> impl Future<Output = io::Result<Self>> + Send;

    /// One echo call; fails unless the reply has the length of `data`.
    fn call(&mut self, data: &Bytes) -> impl Future<Output = io::Result<()>> + Send;

    /// One echo call whose argument and result are `Vec<u8>` (raw: the same bytes, as
    /// (d) sends them); returns the reply, which the caller sends next.
    fn call_vec(&mut self, data: Vec<u8>) -> impl Future<Output = io::Result<Vec<u8>>> + Send;

    /// Keeps `window` calls in flight on this one connection for as long as `work` says;
    /// returns the number of calls that count.
    fn in_flight(
        &mut self,
        data: &Bytes,
        window: usize,
        work: Work,
    ) -> impl Future<Output = io::Result<u64>> + Send;
}

/// How long (b) calls: through a timed window, or exactly a number of calls in all.
#[derive(Debug, Clone)]
pub(crate) struct Work {
    count_from: Instant,
    until: Instant,
    /// With a fixed number of calls: how many are still to start.
    left: Option<Arc<AtomicU64>>,
}

impl Work {
    /// Calls until `until`; those that finish at or after `count_from` count.
    pub(crate) fn timed(count_from: Instant, until: Instant) -> Work {
        Work {
            count_from,
            until,
            left: None,
        }
    }

    /// Exactly `calls` calls in all, whoever makes them; every one counts.
    pub(crate) fn calls(calls: u64) -> Work {
        let now = Instant::now();
        Work {
            count_from: now,
            until: now,
            left: Some(Arc::new(AtomicU64::new(calls))),
        }
    }

    /// Whether to start another call (with a fixed number, takes one of them).
    pub(crate) fn start(&self) -> bool {
        match &self.left {
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
            None => Instant::now() < self.until,
        }
    }

    /// Whether a call that finishes now counts.
    pub(crate) fn counts(&self) -> bool {
        self.left.is_some() || in_window(self.count_from, self.until)
    }
}

/// Checks an echo reply's length.
pub(crate) fn check_len(got: usize, want: usize) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("echo reply of {got} bytes for a request of {want}"),
        ))
    }
}

/// Turns any error into an `io::Error` with a prefix.
pub(crate) fn other(context: &str, err: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{context}: {err}"))
}

/// Whether now is inside the measured window `[count_from, until)`.
pub(crate) fn in_window(count_from: Instant, until: Instant) -> bool {
    let now = Instant::now();
    now >= count_from && now < until
}
