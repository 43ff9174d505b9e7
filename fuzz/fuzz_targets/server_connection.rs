//! A ferry server's connection state machine on arbitrary client bytes: the input is
//! written as the client side of a connection (then the client's write side is shut), the
//! server's output is read and discarded. The server must not panic, must not use memory
//! beyond the fuzzer's limits, and must finish serving the connection: a connection still
//! open seconds after the client stopped sending is reported as a hang.
//!
//! Inputs of even length are served over a socket pair. Inputs of odd length are served by
//! a bound server that begins a graceful shutdown once the first half of the input is
//! written, so the rest meets the shutdown path (GOAWAY, requests refused with
//! SHUTTING_DOWN, calls in flight finishing within the grace period); the server must then
//! stop within the bound too.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The service of the protocol document's examples (`service Calc { add(i64,i64)->i64; }`),
/// so that the document's handshake and request bytes are valid seeds.
#[ferry::service]
pub trait Calc {
    async fn add(&self, a: i64, b: i64) -> i64;
}

struct Adder;

impl Calc for Adder {
    async fn add(&self, a: i64, b: i64) -> i64 {
        // Yield, so that cancels and the connection's end can meet a running call.
        tokio::task::yield_now().await;
        a.wrapping_add(b)
    }
}

/// Bound for serving one input; far above what a well-behaved run needs.
const BOUND: Duration = Duration::from_secs(5);

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(serve_one(data));
});

fn server() -> ferry::Server {
    let options = ferry::ServerOptions::new()
        .max_frame(64 * 1024)
        .max_in_flight(4)
        .write_queue_limit(64 * 1024)
        .handshake_timeout(Duration::from_secs(1))
        .frame_timeout(Duration::from_secs(1))
        .shutdown_grace(Duration::from_millis(500));
    ferry::Server::with_options(options).serve(CalcServer::new(Adder))
}

async fn serve_one(data: &[u8]) {
    if data.len() % 2 == 1 {
        serve_with_shutdown(data).await;
        return;
    }
    let (client, server_end) = ferry::transport::pair().expect("socket pair");
    let serving = server().serve_stream(server_end);
    exchange(client, data, serving, None).await;
}

/// A unique socket path in the temporary directory, for one bound server.
fn unique_path() -> std::path::PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ferry-fuzz-{}-{n}.sock", std::process::id()))
}

async fn serve_with_shutdown(data: &[u8]) {
    let path = unique_path();
    let name = path.to_str().expect("a UTF-8 temporary path").to_owned();
    let bound = server().bind(name.as_str()).await.expect("bind");
    let handle = bound.shutdown_handle();
    let serving = async move {
        let _ = bound.run().await;
    };
    let endpoint = ferry::transport::ToName::to_name(&name.as_str()).expect("name");
    let client = ferry::transport::connect(&endpoint).await.expect("connect");
    exchange(client, data, serving, Some((data.len() / 2, handle))).await;
    let _ = std::fs::remove_file(&path);
}

/// Writes `data` as the client (beginning the server's shutdown after `shutdown.0` bytes,
/// if given), reads and discards what the server sends, and waits for `serving` to end.
async fn exchange(
    client: ferry::transport::Stream,
    data: &[u8],
    serving: impl std::future::Future<Output = ()>,
    shutdown: Option<(usize, ferry::ShutdownHandle)>,
) {
    let (mut reader, mut writer) = client.into_split();
    let writing = async move {
        match &shutdown {
            Some((at, handle)) => {
                let _ = writer.write_all(&data[..*at]).await;
                handle.shutdown();
                let _ = writer.write_all(&data[*at..]).await;
            }
            None => {
                let _ = writer.write_all(data).await;
            }
        }
        let _ = writer.shutdown().await;
        // Keep the write half (and so the socket) until the server is done reading.
        writer
    };
    let reading = async move {
        let mut sink = vec![0u8; 16 * 1024];
        while let Ok(read) = reader.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    };
    let all = async {
        let (_, writer, ()) = tokio::join!(serving, writing, reading);
        drop(writer);
    };
    if tokio::time::timeout(BOUND, all).await.is_err() {
        panic!("the server still served a connection {BOUND:?} after the client stopped sending");
    }
}
