//! One call end to end over a socket pair: client encode, the outbox writer, the server's
//! reader, dispatch, the handler, the reply and the client's reader, on a current-thread and
//! on a multi-thread tokio runtime.
//!
//! `cargo bench --bench call`

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;

/// The benchmark service: returns what it is sent.
#[ferry::service]
pub trait Echo {
    /// Returns `data` unchanged.
    async fn echo(&self, data: Bytes) -> Bytes;
}

struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(&self, data: Bytes) -> Bytes {
        data
    }
}

fn runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().expect("a tokio runtime")
}

fn call(c: &mut Criterion) {
    let mut group = c.benchmark_group("call_over_pair");
    for (name, multi_thread) in [("current_thread", false), ("multi_thread", true)] {
        let rt = runtime(multi_thread);
        let client = rt.block_on(async {
            let (client_end, server_end) = ferry::transport::pair().expect("a socket pair");
            tokio::spawn(
                ferry::Server::new()
                    .serve(EchoServer::new(EchoImpl))
                    .serve_stream(server_end),
            );
            EchoClient::from_stream(client_end, &ferry::ClientOptions::default())
                .await
                .expect("the handshake over a socket pair")
        });
        let data = Bytes::from(vec![7u8; 64]);
        group.bench_function(BenchmarkId::new("echo_64B", name), |b| {
            b.to_async(&rt).iter(|| async {
                let reply = client.echo(data.clone()).await.expect("the echo call");
                black_box(reply.len())
            })
        });
        drop(client);
    }
    group.finish();
}

criterion_group!(benches, call);
criterion_main!(benches);
