//! Calling a ferry service from code that has no async runtime.
//!
//! ```text
//! cargo run --release --example blocking
//! ```
//!
//! The server runs on a runtime of its own thread here only to keep the example in one
//! process; the client side is plain `main` and plain `std::thread`s, no `#[tokio::main]`.

use std::time::Instant;

/// A counter shared by every client.
#[ferry::service]
pub trait Tally {
    /// Adds `n` and returns the new total.
    async fn add(&self, n: u64) -> u64;
    /// The totals so far, one per call, as a stream.
    async fn history(&self) -> ferry::Streaming<u64>;
}

#[derive(Default)]
struct TallyImpl {
    totals: std::sync::Mutex<Vec<u64>>,
}

impl Tally for TallyImpl {
    async fn add(&self, n: u64) -> u64 {
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let total = totals.last().copied().unwrap_or(0) + n;
        totals.push(total);
        total
    }

    async fn history(&self) -> ferry::Streaming<u64> {
        let totals = self
            .totals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        ferry::Streaming::from_iter(totals)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("ferry-blocking-{}", std::process::id());

    // The server, on a thread with its own runtime.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server_name = name.clone();
    std::thread::spawn(
        move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let server = ferry::Server::new()
                    .serve(TallyServer::new(TallyImpl::default()))
                    .bind(server_name.as_str())
                    .await?;
                let _ = ready_tx.send(server.address());
                server.run().await?;
                Ok(())
            })
        },
    );
    println!("listening on {}", ready_rx.recv()?);

    // The client: plain threads, blocking calls.
    let tally = TallyBlockingClient::connect(name.as_str())?;
    let started = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let tally = tally.clone();
            std::thread::spawn(move || -> Result<(), ferry::Error> {
                for _ in 0..250 {
                    tally.add(1)?;
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "a client thread panicked")??;
    }
    let elapsed = started.elapsed();
    let history: Vec<u64> = tally.history()?.collect::<Result<_, _>>()?;
    println!(
        "blocking: 4 threads, 1000 calls in {:.1} ms, total {}, history of {} totals",
        elapsed.as_secs_f64() * 1000.0,
        history.last().copied().unwrap_or(0),
        history.len()
    );
    if history.last() != Some(&1000) {
        return Err("the total is not 1000".into());
    }
    Ok(())
}
