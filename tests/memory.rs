//! Memory held by the server under clients that send big frames and never read: bounded by
//! `max_connection_memory` and `memory_budget`, measured from the outside.
//!
//! The server runs in a child process (this test binary again, `support::child`), so its peak and current resident memory can be read from `/proc/<pid>/status`
//! without the test's own buffers in the numbers.
#![cfg(target_os = "linux")]

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferry::codec::{Frame, Hello, Welcome, DEFAULT_MAX_FRAME};
use ferry::transport::{Stream, ToName};
use ferry::{FormatId, Server};
use support::child::{run_role, say, ChildProcess};
use support::{unique_name, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Max-size requests each hostile client pipelines.
const REQUESTS: u64 = 24;

#[ferry::service]
pub trait Store {
    /// Keeps `data` until [`Store::open`] is called, then returns its length.
    async fn hold(&self, data: Bytes) -> u64;
    /// Lets every `hold` return.
    async fn open(&self);
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> i64;
}

struct StoreImpl {
    open: tokio::sync::watch::Sender<bool>,
}

impl Store for StoreImpl {
    async fn hold(&self, data: Bytes) -> u64 {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        data.len() as u64
    }

    async fn open(&self) {
        self.open.send_replace(true);
    }

    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

/// Not a test of its own: the entry point of the child server (default options). Without
/// a role (a normal test run) it does nothing.
#[test]
fn child_role() {
    run_role(|role, name| async move {
        assert_eq!(role, "server", "unknown child role");
        let bound = Server::new()
            .serve(StoreServer::new(StoreImpl {
                open: tokio::sync::watch::channel(false).0,
            }))
            .bind(name.as_str())
            .await
            .expect("child server bind");
        tokio::spawn(bound.run());
        say("ready");
        std::future::pending::<()>().await;
    });
}

/// A field of `/proc/<pid>/status` in bytes (`VmHWM`, `VmRSS`).
fn status_bytes(pid: u32, field: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad line {line}"));
    kib * 1024
}

/// Connects and completes a handshake for `Store`; never reads after it.
async fn raw_store(name: &str) -> Stream {
    let endpoint = name.to_name().expect("name");
    let mut stream = within(ferry::transport::connect(&endpoint))
        .await
        .expect("raw connect");
    let hello = Hello::new(
        STORE_SERVICE_INFO.name,
        STORE_SERVICE_INFO.signature,
        FormatId::Bincode,
    );
    let mut out = BytesMut::new();
    hello.encode(&mut out).expect("encodable hello");
    within(stream.write_all(&out)).await.expect("send hello");
    let mut buf = BytesMut::new();
    loop {
        if let Some(welcome) = Welcome::decode(&mut buf).expect("a valid welcome") {
            assert!(welcome.status.is_ok(), "refused: {welcome:?}");
            return stream;
        }
        let read = within(stream.read_buf(&mut buf)).await.expect("welcome");
        assert!(read > 0, "server closed without a welcome");
    }
}

/// A max-size `hold` request: its body is exactly the server's default frame limit.
fn max_size_hold() -> BytesMut {
    let method = STORE_SERVICE_INFO
        .methods
        .iter()
        .position(|m| *m == "hold")
        .expect("hold") as u16;
    // bincode: a 5-byte length in front of the bytes.
    let data = Bytes::from(vec![0x5a; DEFAULT_MAX_FRAME as usize - 5]);
    let mut args = BytesMut::new();
    FormatId::Bincode.encode(&(data,), &mut args).expect("args");
    assert_eq!(args.len(), DEFAULT_MAX_FRAME as usize);
    let mut frame = BytesMut::new();
    Frame::request(1, method, args.freeze()).encode(&mut frame);
    frame
}

/// Writes `REQUESTS` max-size requests without reading anything; returns how many went
/// out whole before the server stopped taking them (a write stuck for 3 s).
async fn pipeline_without_reading(mut stream: Stream) -> (u64, Stream) {
    let mut frame = max_size_hold();
    for id in 1..=REQUESTS {
        frame[8..16].copy_from_slice(&id.to_le_bytes());
        let write = stream.write_all(&frame);
        match tokio::time::timeout(Duration::from_secs(3), write).await {
            Ok(result) => result.expect("raw write"),
            Err(_) => return (id - 1, stream),
        }
    }
    (REQUESTS, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_size_requests_from_clients_that_never_read_stay_within_the_budget() {
    let name = unique_name("memory");
    let child = ChildProcess::server(&name).await;
    let pid = child.id();

    // A well-behaved client, calling throughout.
    let steady = within(StoreClient::connect(&name)).await.expect("connect");
    assert_eq!(within(steady.add(1, 2)).await.expect("first call"), 3);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let calling = tokio::spawn({
        let steady = steady.clone();
        async move {
            let mut made = 0u64;
            while !*stop.borrow() {
                let i = made as i64;
                let got = tokio::time::timeout(Duration::from_secs(10), steady.add(i, 1))
                    .await
                    .map_err(|_| format!("call {i} hung"))?
                    .map_err(|err| format!("call {i} failed: {err}"))?;
                if got != i + 1 {
                    return Err(format!("call {i} returned {got}"));
                }
                made += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok(made)
        }
    });
    let before = status_bytes(pid, "VmRSS");

    // Two clients pipeline max-size requests to `hold`, whose handlers keep them, and never
    // read a reply.
    let (first, second) = tokio::join!(raw_store(&name), raw_store(&name));
    let (a, b) = tokio::join!(
        pipeline_without_reading(first),
        pipeline_without_reading(second)
    );
    let peak = status_bytes(pid, "VmHWM");
    let during = status_bytes(pid, "VmRSS");

    // The well-behaved client was served all along, and still is.
    stop_tx.send_replace(true);
    let made = within(calling)
        .await
        .expect("calling task")
        .unwrap_or_else(|err| panic!("the well-behaved client failed: {err}"));
    assert!(made > 0, "no call was served during the flood");
    assert_eq!(within(steady.add(40, 2)).await.expect("call after"), 42);

    // Growth: per connection its 32 MiB limit, plus for a moment one request decoded into
    // the handler's own copy. Without the budget, each client pins up to 64 requests (the
    // calls in flight), each twice (as read and as decoded).
    let mib = |bytes: usize| bytes / (1024 * 1024);
    let limit = (2 * (32 + 16 + 8)) << 20;
    eprintln!(
        "server RSS before {} MiB, peak {} MiB, with the clients stalled {} MiB; {} and {} requests read",
        mib(before),
        mib(peak),
        mib(during),
        a.0,
        b.0
    );
    // The hostile clients were stopped after what the per-connection limit (two max-size
    // frames) and the socket buffers hold.
    assert!(
        a.0 < REQUESTS && b.0 < REQUESTS,
        "the server read {} and {} requests",
        a.0,
        b.0
    );
    assert!(
        a.0 <= 4 && b.0 <= 4,
        "the server read {} and {} requests",
        a.0,
        b.0
    );

    assert!(
        peak.saturating_sub(before) < limit,
        "the server grew by {} MiB (before {} MiB, peak {} MiB)",
        mib(peak.saturating_sub(before)),
        mib(before),
        mib(peak)
    );

    // Once the handlers end and the clients leave, their memory is freed (the allocator may
    // keep some of it mapped: printed, not asserted).
    within(steady.open()).await.expect("open");
    drop((a.1, b.1));
    assert_eq!(
        within(steady.add(2, 2))
            .await
            .expect("call after they left"),
        4
    );
    let mut after = status_bytes(pid, "VmRSS");
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = status_bytes(pid, "VmRSS");
    }
    eprintln!("server RSS after the clients left: {} MiB", mib(after));
    drop(child);
}
