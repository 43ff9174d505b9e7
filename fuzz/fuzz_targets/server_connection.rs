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

mod driver;

use std::sync::atomic::{AtomicU64, Ordering};

use driver::exchange;
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(serve_one(data));
});

fn server() -> ferry::Server {
    ferry::Server::with_options(driver::options()).serve(CalcServer::new(Adder))
}

async fn serve_one(data: &[u8]) {
    if data.len() % 2 == 1 {
        serve_with_shutdown(data).await;
        return;
    }
    let (client, server_end) = ferry::transport::pair().expect("socket pair");
    let serving = server().serve_stream(server_end);
    let (reader, writer) = client.into_split();
    exchange(reader, writer, data, serving, None).await;
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
    let (reader, writer) = client.into_split();
    exchange(
        reader,
        writer,
        data,
        serving,
        Some((data.len() / 2, handle)),
    )
    .await;
    let _ = std::fs::remove_file(&path);
}
