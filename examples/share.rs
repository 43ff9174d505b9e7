//! A producer hands a 64 MiB buffer (in shared memory) and an open log file (a handle) to
//! a consumer process, which checks the buffer and writes its findings into the log.
//!
//! ```text
//! cargo run --release --example share            # producer; starts the consumer itself
//! cargo run --release --example share -- 256     # a 256 MiB buffer
//! ```
//!
//! The consumer is this program again, started with a ferry child link
//! (`ferry::child::spawn`); it exits when the producer hangs up.

use std::io::{Read, Seek, Write};
use std::process::ExitCode;
use std::time::Instant;

use ferry::{Handle, SharedBytes};

/// The consumer's service.
#[ferry::service]
pub trait Consumer {
    /// Checks `buffer` (byte `i` must be `i % 251`), appends a line about it to `log`,
    /// and returns the number of bytes that were wrong.
    async fn consume(&self, buffer: SharedBytes, log: Handle) -> u64;
}

struct Checker;

impl Consumer for Checker {
    async fn consume(&self, buffer: SharedBytes, log: Handle) -> u64 {
        let start = Instant::now();
        let wrong = buffer
            .iter()
            .enumerate()
            .filter(|(i, byte)| **byte != (i % 251) as u8)
            .count() as u64;
        let mut log = std::fs::File::from(log);
        let line = format!(
            "consumer {}: {} MiB {}, {wrong} wrong bytes, checked in {:?}\n",
            std::process::id(),
            buffer.len() >> 20,
            if buffer.is_mapped() {
                "mapped"
            } else {
                "copied"
            },
            start.elapsed()
        );
        if let Err(err) = log.write_all(line.as_bytes()) {
            eprintln!("consumer: cannot write the log: {err}");
        }
        wrong
    }
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("share: no runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = if ferry::child::has_parent_link() {
        runtime.block_on(consumer())
    } else {
        let mib = std::env::args()
            .nth(1)
            .and_then(|arg| arg.parse::<usize>().ok())
            .unwrap_or(64);
        runtime.block_on(producer(mib))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("share: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn consumer() -> Result<(), Box<dyn std::error::Error>> {
    let link = ferry::child::connect_parent().await?;
    ferry::Server::new()
        .serve(ConsumerServer::new(Checker))
        .serve_stream(link)
        .await;
    Ok(())
}

async fn producer(mib: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command.kill_on_drop(true);
    let (mut process, link) = ferry::child::spawn(command).await?.into_parts();
    let consumer = ConsumerClient::from_stream(link, &ferry::ClientOptions::default()).await?;

    let start = Instant::now();
    let buffer = SharedBytes::from_writer(mib << 20, |buf| {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
    })?;
    let written = start.elapsed();

    let log_path = std::env::temp_dir().join(format!("ferry-share-{}.log", std::process::id()));
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&log_path)?;
    writeln!(log, "producer {}: sending {mib} MiB", std::process::id())?;

    let start = Instant::now();
    let wrong = consumer
        .consume(buffer, Handle::from(log.try_clone()?))
        .await?;
    let call = start.elapsed();

    let mut text = String::new();
    log.rewind()?;
    log.read_to_string(&mut text)?;
    print!("{text}");
    println!("share: {mib} MiB written in {written:?}; the call (the consumer reads every byte) took {call:?}");
    drop(consumer);
    process.wait().await?;
    std::fs::remove_file(&log_path).ok();
    if wrong == 0 {
        Ok(())
    } else {
        Err(format!("the consumer found {wrong} wrong bytes").into())
    }
}
