//! A host that spawns 4 worker processes with `ferry::child` and farms out calls to them.
//!
//! ```text
//! cargo run --example workers                 # count the primes below 2 000 000 on 4 workers
//! cargo run --example workers -- 5000000 8    # below 5 000 000, on 8 workers
//! ```
//!
//! The host re-runs its own binary with `--worker`; each worker serves the `Primes` service
//! over its link to the host (no endpoint name anywhere). The host splits the range into
//! chunks, keeps every worker busy with one chunk at a time, adds up the answers and checks
//! the total against a count it makes itself. The exit status is non-zero on any failure.

use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferry::ClientOptions;

/// What a worker does for the host.
#[ferry::service]
pub trait Primes {
    /// How many primes `n` satisfy `start <= n < end`.
    async fn count(&self, start: u64, end: u64) -> u64;
    /// The worker's process id.
    async fn pid(&self) -> u32;
}

struct Worker;

impl Primes for Worker {
    async fn count(&self, start: u64, end: u64) -> u64 {
        count_primes(start, end)
    }

    async fn pid(&self) -> u32 {
        std::process::id()
    }
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

fn count_primes(start: u64, end: u64) -> u64 {
    (start..end).filter(|&n| is_prime(n)).count() as u64
}

const CHUNK: u64 = 50_000;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return worker().await;
    }
    let limit = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let workers = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4usize);
    match host(limit, workers).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("workers: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// A worker: serve the host over the link until it hangs up.
async fn worker() -> ExitCode {
    match ferry::child::connect_parent().await {
        Ok(link) => {
            ferry::Server::new()
                .serve(PrimesServer::new(Worker))
                .serve_stream(link)
                .await;
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("worker: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn host(limit: u64, workers: usize) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let mut clients = Vec::new();
    let mut processes = Vec::new();
    for _ in 0..workers.max(1) {
        let mut command = tokio::process::Command::new(&exe);
        command
            .arg("--worker")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let (process, link) = ferry::child::spawn(command).await?.into_parts();
        clients.push(PrimesClient::from_stream(link, &ClientOptions::new()).await?);
        processes.push(process);
    }

    // Every worker takes the next chunk as soon as it is done with the last one.
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        let next = Arc::clone(&next);
        tasks.spawn(async move {
            let pid = client.pid().await?;
            let (mut chunks, mut primes) = (0u64, 0u64);
            loop {
                let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                if start >= limit {
                    break;
                }
                primes += client.count(start, (start + CHUNK).min(limit)).await?;
                chunks += 1;
            }
            Ok::<_, ferry::Error>((pid, chunks, primes))
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        let (pid, chunks, primes) = done??;
        println!("worker {pid}: {chunks} chunks, {primes} primes");
        total += primes;
    }
    // The clients are gone: each worker sees its link close and exits.
    for mut process in processes {
        let status = process.wait().await?;
        if !status.success() {
            return Err(format!("a worker exited with {status}").into());
        }
    }

    let expected = tokio::task::spawn_blocking(move || count_primes(0, limit)).await?;
    println!("primes below {limit}: {total} (checked: {expected})");
    if total != expected {
        return Err(format!("the workers counted {total}, expected {expected}").into());
    }
    Ok(())
}
