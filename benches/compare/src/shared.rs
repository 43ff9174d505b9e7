//! (s) and (t): large echoes through shared memory (`ferry::SharedBytes`), against raw
//! echoing the same size through its socket.
//!
//! The payload is in shared memory before the measured calls (built once): per call the
//! ferry client sends it, the server maps it and returns it (its descriptor goes back, no
//! byte is copied), and the client maps the reply and checks its length, as raw's does;
//! neither side reads the bytes. Raw writes the payload into its socket and reads the echo
//! back. The `_new_segment` entries measure the other way to use it: each call first
//! copies the payload into a new segment (`SharedBytes::copy_from_slice`), so their cost
//! grows with the size like raw's.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry::SharedBytes;

use crate::echo::{check_len, in_window, other, Client};
use crate::report::{Better, Metric, Target};

/// The payload of (s).
pub(crate) const SHARED_SMALL: usize = 1024 * 1024;
/// The payload of (t).
pub(crate) const SHARED_LARGE: usize = 16 * 1024 * 1024;

pub(crate) const S_SHARED_1MIB: Metric = Metric {
    key: "s_shared_memory_1MiB",
    unit: "MB/s",
    better: Better::Higher,
    target: Target::RawAtLeast(2.0),
};
pub(crate) const T_SHARED_16MIB: Metric = Metric {
    key: "t_shared_memory_16MiB",
    unit: "MB/s",
    better: Better::Higher,
    target: Target::RawAtLeast(5.0),
};
pub(crate) const S_FRESH_1MIB: Metric = Metric {
    key: "s_shared_1MiB_new_segment",
    unit: "MB/s",
    better: Better::Higher,
    target: Target::None,
};
pub(crate) const T_FRESH_16MIB: Metric = Metric {
    key: "t_shared_16MiB_new_segment",
    unit: "MB/s",
    better: Better::Higher,
    target: Target::None,
};

/// The shared-memory echo service, served by the ferry server process beside `Echo`.
#[ferry::service]
pub trait SharedEcho {
    /// Returns `data` unchanged.
    async fn echo(&self, data: SharedBytes) -> SharedBytes;
}

/// The server side of [`SharedEcho`].
pub(crate) struct SharedEchoImpl;

impl SharedEcho for SharedEchoImpl {
    async fn echo(&self, data: SharedBytes) -> SharedBytes {
        data
    }
}

fn payload(size: usize) -> Bytes {
    Bytes::from((0..size).map(|i| i as u8).collect::<Vec<u8>>())
}

/// Sequential echoes of `size` bytes on one connection, for any implementation's plain
/// client: MB/s (10^6 bytes) of payload one way.
pub(crate) async fn plain<C: Client>(
    path: &Path,
    duration: Duration,
    size: usize,
) -> io::Result<f64> {
    let data = payload(size);
    let mut client = C::connect(path).await?;
    let count_from = Instant::now() + duration / 4;
    let until = count_from + duration;
    let mut counted = 0u64;
    while Instant::now() < until {
        client.call(&data).await?;
        if in_window(count_from, until) {
            counted += 1;
        }
    }
    Ok((counted * size as u64) as f64 / duration.as_secs_f64() / 1e6)
}

/// Sequential shared-memory echoes of `size` bytes on one ferry connection: MB/s. With
/// `fresh`, every call copies the payload into a new segment first.
pub(crate) async fn ferry(
    path: &Path,
    duration: Duration,
    size: usize,
    fresh: bool,
) -> io::Result<f64> {
    let data = payload(size);
    let built = SharedBytes::copy_from_slice(&data).map_err(|err| other("shared segment", err))?;
    let client = SharedEchoClient::connect(path)
        .await
        .map_err(|err| other("ferry connect", err))?;
    let count_from = Instant::now() + duration / 4;
    let until = count_from + duration;
    let mut counted = 0u64;
    while Instant::now() < until {
        let shared = if fresh {
            SharedBytes::copy_from_slice(&data).map_err(|err| other("shared segment", err))?
        } else {
            built.clone()
        };
        let reply = client
            .echo(shared)
            .await
            .map_err(|err| other("ferry call", err))?;
        check_len(reply.len(), size)?;
        if in_window(count_from, until) {
            counted += 1;
        }
    }
    Ok((counted * size as u64) as f64 / duration.as_secs_f64() / 1e6)
}
