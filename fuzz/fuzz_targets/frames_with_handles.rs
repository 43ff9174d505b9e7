//! A ferry server's connection on arbitrary client bytes *and descriptors* (Unix): the
//! input says where descriptors go with the bytes (any byte position, any count up to 7
//! per group, several groups), the rest is what the client writes. The server must not
//! panic or hang, and every descriptor it received must be closed once the connection is
//! over: the process has exactly as many descriptors open after the input as before.
//!
//! Input layout: byte 0, `g` = groups (0..=3); then `g` times 3 bytes, a `u16` position in
//! the client's bytes and a count (`% 8`); then the client's bytes. The service is the
//! document's `Calc` plus a method that takes a handle, so the document's hello and the
//! request of section 8.4 are valid seeds.
#![no_main]

mod driver;

use std::os::fd::OwnedFd;

use driver::exchange;
use ferry::transport::handles::HandleQueue;
use libfuzzer_sys::fuzz_target;

#[ferry::service]
pub trait Calc {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn take(&self, handle: ferry::Handle) -> u64;
}

struct Adder;

impl Calc for Adder {
    async fn add(&self, a: i64, b: i64) -> i64 {
        tokio::task::yield_now().await;
        a.wrapping_add(b)
    }

    async fn take(&self, handle: ferry::Handle) -> u64 {
        tokio::task::yield_now().await;
        std::fs::File::from(handle)
            .metadata()
            .map_or(0, |m| m.len())
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

fuzz_target!(|data: &[u8]| {
    let Some((&groups, mut rest)) = data.split_first() else {
        return;
    };
    let mut attach = Vec::new();
    for _ in 0..groups % 4 {
        let Some((group, tail)) = rest.split_first_chunk::<3>() else {
            return;
        };
        attach.push((
            u64::from(u16::from_le_bytes([group[0], group[1]])),
            group[2] % 8,
        ));
        rest = tail;
    }
    attach.sort_by_key(|(position, _)| *position);
    // The first connection opens descriptors the process keeps (runtime and library
    // state): one run on the input itself comes first, uncounted.
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| run(rest, &attach));
    let before = open_fds();
    run(rest, &attach);
    let after = open_fds();
    assert_eq!(
        before, after,
        "descriptors left open after the connection ended"
    );
});

/// Serves one input on a runtime of its own, dropped (with every task) before returning.
fn run(data: &[u8], attach: &[(u64, u8)]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(serve_one(data, attach));
}

fn server() -> ferry::Server {
    ferry::Server::with_options(driver::options()).serve(CalcServer::new(Adder))
}

async fn serve_one(data: &[u8], attach: &[(u64, u8)]) {
    let (client, server_end) = ferry::transport::pair().expect("socket pair");
    let serving = server().serve_stream(server_end);
    let (reader, mut writer) = client.into_split();
    let queue = HandleQueue::new();
    writer.send_handles(queue.clone());
    for (position, count) in attach {
        let fds: Vec<OwnedFd> = (0..*count)
            .filter_map(|_| std::fs::File::open("/dev/null").ok().map(OwnedFd::from))
            .collect();
        queue.attach(*position, fds);
    }
    exchange(reader, writer, data, serving, None).await;
}
