//! A ferry server's connection state machine on arbitrary client bytes: the input is
//! written as the client side of a socket pair (then the client's write side is shut), the
//! server's output is read and discarded. The server must not panic, must not use memory
//! beyond the fuzzer's limits, and must finish serving the connection: a connection still
//! open seconds after the client stopped sending is reported as a hang.
#![no_main]

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

async fn serve_one(data: &[u8]) {
    let (client, server) = ferry::transport::pair().expect("socket pair");
    let options = ferry::ServerOptions::new()
        .max_frame(64 * 1024)
        .max_in_flight(4)
        .write_queue_limit(64 * 1024)
        .handshake_timeout(Duration::from_secs(1))
        .frame_timeout(Duration::from_secs(1));
    let serving = ferry::Server::with_options(options)
        .serve(CalcServer::new(Adder))
        .serve_stream(server);
    let (mut reader, mut writer) = client.into_split();
    let writing = async move {
        let _ = writer.write_all(data).await;
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
