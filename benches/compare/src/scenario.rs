//! The scenarios, generic over the implementation's client. Each returns the value of one
//! repetition; the caller repeats them and takes medians.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinSet;

use crate::echo::{in_window, other, Client, Work};
use crate::server::ServerProcess;

/// The small payload of (a), (b), (c) and (f).
pub(crate) const SMALL: usize = 64;
/// The large payload of (d).
pub(crate) const LARGE: usize = 1024 * 1024;
/// Calls in flight in (b), connections in (c).
pub(crate) const CONCURRENCY: usize = 64;

fn payload(size: usize) -> Bytes {
    Bytes::from((0..size).map(|i| i as u8).collect::<Vec<u8>>())
}

/// The measured window of a timed run: a warm-up of a quarter of `duration` first.
fn window(duration: Duration) -> (Instant, Instant) {
    let count_from = Instant::now() + duration / 4;
    (count_from, count_from + duration)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1e6
}

/// (a) Sequential 64 B round trips on one connection: (p50, p99) in µs.
pub(crate) async fn latency<C: Client>(
    path: &Path,
    warmup: usize,
    calls: usize,
) -> io::Result<(f64, f64)> {
    let data = payload(SMALL);
    let mut client = C::connect(path).await?;
    for _ in 0..warmup {
        client.call(&data).await?;
    }
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        client.call(&data).await?;
        times.push(start.elapsed());
    }
    times.sort_unstable();
    Ok((percentile(&times, 0.50), percentile(&times, 0.99)))
}

/// (b) One connection, [`CONCURRENCY`] calls in flight: calls/s. With `calls`, exactly
/// that many calls in all (all counted) instead of running for `duration`.
pub(crate) async fn in_flight<C: Client>(
    path: &Path,
    duration: Duration,
    calls: Option<u64>,
) -> io::Result<f64> {
    let data = payload(SMALL);
    let mut client = C::connect(path).await?;
    let Some(calls) = calls else {
        let (count_from, until) = window(duration);
        let work = Work::timed(count_from, until);
        let counted = client.in_flight(&data, CONCURRENCY, work).await?;
        return Ok(counted as f64 / duration.as_secs_f64());
    };
    let started = Instant::now();
    let counted = client
        .in_flight(&data, CONCURRENCY, Work::calls(calls))
        .await?;
    Ok(counted as f64 / started.elapsed().as_secs_f64())
}

/// (c) [`CONCURRENCY`] connections, each calling in a loop: aggregate calls/s. With
/// `calls`, each connection makes exactly that many calls (all counted) instead of running
/// for `duration`: a fixed amount of work to count instructions and system calls over.
pub(crate) async fn connections<C: Client>(
    path: &Path,
    duration: Duration,
    calls: Option<u64>,
) -> io::Result<f64> {
    let data = payload(SMALL);
    let mut clients = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        let mut client = C::connect(path).await?;
        client.call(&data).await?;
        clients.push(client);
    }
    let (count_from, until) = window(duration);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for mut client in clients {
        let data = data.clone();
        tasks.spawn(async move {
            let mut counted = 0u64;
            if let Some(calls) = calls {
                for _ in 0..calls {
                    client.call(&data).await?;
                }
                return Ok::<u64, io::Error>(calls);
            }
            while Instant::now() < until {
                client.call(&data).await?;
                if in_window(count_from, until) {
                    counted += 1;
                }
            }
            Ok::<u64, io::Error>(counted)
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done.map_err(|err| other("task", err))??;
    }
    let elapsed = if calls.is_some() {
        started.elapsed()
    } else {
        duration
    };
    Ok(total as f64 / elapsed.as_secs_f64())
}

/// (d) Sequential 1 MiB echoes on one connection: MB/s (10^6 bytes) of payload one way.
pub(crate) async fn bulk<C: Client>(path: &Path, duration: Duration) -> io::Result<f64> {
    let data = payload(LARGE);
    let mut client = C::connect(path).await?;
    let (count_from, until) = window(duration);
    let mut counted = 0u64;
    while Instant::now() < until {
        client.call(&data).await?;
        if in_window(count_from, until) {
            counted += 1;
        }
    }
    Ok((counted * LARGE as u64) as f64 / duration.as_secs_f64() / 1e6)
}

/// (e) Server RSS growth per idle connection, in KiB, on a freshly started `server`: each
/// client connects and makes one call, then all stay connected and idle.
pub(crate) async fn idle<C: Client>(
    server: &ServerProcess,
    path: &Path,
    clients: usize,
) -> io::Result<f64> {
    let data = payload(SMALL);
    // Warm the server's allocator and runtime first, so the difference is per connection.
    let mut warm = Vec::new();
    for _ in 0..16 {
        let mut client = C::connect(path).await?;
        client.call(&data).await?;
        warm.push(client);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss_kib()?;
    let mut idle = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut client = C::connect(path).await?;
        client.call(&data).await?;
        idle.push(client);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib()?;
    drop(idle);
    drop(warm);
    Ok(after.saturating_sub(before) as f64 / clients as f64)
}

/// (f) Connect, then one 64 B call, on a new connection each time: p50 in µs.
pub(crate) async fn connect_first_call<C: Client>(path: &Path, count: usize) -> io::Result<f64> {
    let data = payload(SMALL);
    let mut times = Vec::with_capacity(count);
    for i in 0..count + 10 {
        let start = Instant::now();
        let mut client = C::connect(path).await?;
        client.call(&data).await?;
        let elapsed = start.elapsed();
        drop(client);
        if i >= 10 {
            times.push(elapsed);
        }
    }
    times.sort_unstable();
    Ok(percentile(&times, 0.50))
}

/// (g) Sequential 1 MiB echoes on one connection with a `Vec<u8>` argument and result (each
/// reply is the next call's argument): MB/s of payload one way.
pub(crate) async fn bulk_vec<C: Client>(path: &Path, duration: Duration) -> io::Result<f64> {
    let mut data = payload(LARGE).to_vec();
    let mut client = C::connect(path).await?;
    let (count_from, until) = window(duration);
    let mut counted = 0u64;
    while Instant::now() < until {
        data = client.call_vec(data).await?;
        if in_window(count_from, until) {
            counted += 1;
        }
    }
    Ok((counted * LARGE as u64) as f64 / duration.as_secs_f64() / 1e6)
}
