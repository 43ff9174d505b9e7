//! A typed channel between processes: one receiver, several sender processes.
//!
//! ```text
//! cargo run --example channel                    # receiver + 8 sender processes x 1000 items
//! cargo run --example channel -- 4 10000         # 4 senders x 10 000 items
//! cargo run --example channel -- --recv my.jobs  # terminal 1: print what arrives, until Ctrl-C
//! cargo run --example channel -- --send my.jobs  # terminal 2: send lines typed on stdin
//! ```
//!
//! By default the example binds a channel of `Job`s, re-runs itself as sender processes
//! that each send their numbered jobs, and checks that every job arrived exactly once and
//! in order per sender. The exit status is non-zero otherwise.

use std::collections::HashMap;
use std::io::BufRead;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use ferry::channel::{self, ChannelOptions};
use serde::{Deserialize, Serialize};

/// What travels through the channel.
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    sender: u32,
    seq: u64,
    text: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--recv") => print_received(args.get(1).map_or("ferry.example.jobs", |s| s)).await,
        Some("--send") => {
            let name = args
                .get(1)
                .cloned()
                .unwrap_or_else(|| "ferry.example.jobs".into());
            // Blocking API from a plain thread: reading stdin is blocking anyway.
            tokio::task::spawn_blocking(move || send_stdin(&name))
                .await
                .map_err(Into::into)
                .and_then(|r| r)
        }
        Some("--sender") => send_numbered(&args).await,
        _ => {
            let senders = args.first().and_then(|a| a.parse().ok()).unwrap_or(8);
            let items = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
            run(senders, items).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("channel: {err:#}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The default run: bind, start sender processes, check what arrives.
async fn run(senders: u32, items: u64) -> Result<()> {
    let name = format!("ferry.example.channel-{}", std::process::id());
    let mut rx =
        channel::bind_with::<Job>(name.as_str(), &ChannelOptions::new().capacity(128)).await?;
    let started = Instant::now();
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for sender in 0..senders {
        let mut command = tokio::process::Command::new(&exe);
        command
            .args(["--sender", &name, &sender.to_string(), &items.to_string()])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        children.push(command.spawn()?);
    }
    let mut next: HashMap<u32, u64> = HashMap::new();
    for _ in 0..u64::from(senders) * items {
        let job = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .map_err(|_| "no job for 30 s")?
            .ok_or("the channel closed")?;
        let expected = next.entry(job.sender).or_insert(0);
        if job.seq != *expected {
            return Err(format!(
                "sender {}: job {} arrived, expected {expected}",
                job.sender, job.seq
            )
            .into());
        }
        *expected += 1;
    }
    for mut child in children {
        let status = child.wait().await?;
        if !status.success() {
            return Err(format!("a sender exited with {status}").into());
        }
    }
    let elapsed = started.elapsed();
    let total = u64::from(senders) * items;
    println!(
        "channel: {senders} sender processes, {total} jobs, all received once and in order, {:.0} jobs/s",
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// A sender process of the default run: `--sender NAME ID COUNT`.
async fn send_numbered(args: &[String]) -> Result<()> {
    let [_, name, sender, count] = args else {
        return Err("usage: --sender NAME ID COUNT".into());
    };
    let sender: u32 = sender.parse()?;
    let count: u64 = count.parse()?;
    let options = ChannelOptions::new().wait_for_receiver(Duration::from_secs(10));
    let tx = channel::connect_with::<Job>(name.as_str(), &options).await?;
    for seq in 0..count {
        let text = format!("job {seq} from sender {sender}");
        tx.send(Job { sender, seq, text }).await?;
    }
    Ok(())
}

/// `--recv NAME`: print every job until Ctrl-C.
async fn print_received(name: &str) -> Result<()> {
    let mut rx = channel::bind::<Job>(name).await?;
    println!("receiving on {}", rx.address());
    loop {
        tokio::select! {
            job = rx.recv() => match job {
                Some(job) => println!("[{}#{}] {}", job.sender, job.seq, job.text),
                None => return Ok(()),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// `--send NAME`: send each line of stdin, with the blocking API.
fn send_stdin(name: &str) -> Result<()> {
    let tx = channel::connect_blocking::<Job>(name, &ChannelOptions::new())?;
    for (seq, line) in std::io::stdin().lock().lines().enumerate() {
        let job = Job {
            sender: std::process::id(),
            seq: seq as u64,
            text: line?,
        };
        tx.send_blocking(job)?;
    }
    Ok(())
}
