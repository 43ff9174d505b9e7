//! Early requests (protocol version 3): the first call travels right behind the hello.
//!
//! A scripted server proves the request arrives before any Welcome is sent, and that a
//! server of version 2 (which skips the frame) still gets the call, as a REQUEST. Real
//! servers prove that a refused handshake never runs the early request and that a client
//! whose method indices differ from the server's never runs the wrong method.

mod support;

use std::sync::atomic::Ordering;

use ferry::{ClientOptions, ErrorKind, Server, ServerOptions};
use support::{start, within};

/// The server's build of the service: `first` is method 0, `second` method 1.
mod server_build {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[ferry::service(name = "Pair")]
    pub trait Pair {
        async fn first(&self, x: u32) -> u32;
        async fn second(&self, x: u32) -> u32;
        async fn pause(&self, ms: u64) -> u32;
    }

    /// Counts the calls each method ran.
    #[derive(Clone, Default)]
    pub struct Counting {
        pub first: Arc<AtomicUsize>,
        pub second: Arc<AtomicUsize>,
    }

    impl Pair for Counting {
        async fn first(&self, x: u32) -> u32 {
            self.first.fetch_add(1, Ordering::SeqCst);
            x + 1
        }
        async fn second(&self, x: u32) -> u32 {
            self.second.fetch_add(1, Ordering::SeqCst);
            x + 2
        }
        async fn pause(&self, ms: u64) -> u32 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            0
        }
    }
}

/// Another build of the same service with the methods in the other order: the client's
/// index of `first` is the server's index of `second`.
mod client_build {
    #[ferry::service(name = "Pair")]
    pub trait Pair {
        async fn second(&self, x: u32) -> u32;
        async fn first(&self, x: u32) -> u32;
        async fn pause(&self, ms: u64) -> u32;
    }
}

fn early() -> ClientOptions {
    ClientOptions::new().early_requests(true)
}

/// A client of the server's build that sends its first call early, connected to `name`.
async fn early_client(name: impl ferry::transport::ToName) -> server_build::PairClient {
    within(server_build::PairClient::connect_with(name, &early()))
        .await
        .expect("connect")
}

async fn serve(options: ServerOptions) -> (String, server_build::Counting, ferry::ShutdownHandle) {
    let counting = server_build::Counting::default();
    let (name, handle, _task) =
        start(Server::with_options(options).serve(server_build::PairServer::new(counting.clone())))
            .await;
    (name, counting, handle)
}

#[tokio::test]
async fn an_early_call_is_answered_and_later_calls_follow() {
    let (name, counting, _handle) = serve(ServerOptions::new()).await;
    let client = early_client(name.as_str()).await;
    assert_eq!(within(client.first(1)).await.expect("early call"), 2);
    assert_eq!(within(client.second(1)).await.expect("second call"), 3);
    assert_eq!(within(client.first(5)).await.expect("third call"), 6);
    assert_eq!(counting.first.load(Ordering::SeqCst), 2);
    assert_eq!(counting.second.load(Ordering::SeqCst), 1);
    assert!(!client.client().is_closed());
}

#[tokio::test]
async fn concurrent_first_calls_each_get_their_own_reply() {
    let (name, counting, _handle) = serve(ServerOptions::new()).await;
    let client = early_client(name.as_str()).await;
    let calls = (0..8u32).map(|x| {
        let client = client.clone();
        async move { client.first(x).await }
    });
    let replies = within(futures::future::join_all(calls)).await;
    for (x, reply) in replies.into_iter().enumerate() {
        assert_eq!(reply.expect("call"), x as u32 + 1);
    }
    assert_eq!(counting.first.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn an_early_call_that_gives_up_leaves_the_connection_running() {
    let (name, counting, _handle) = serve(ServerOptions::new()).await;
    let client = early_client(name.as_str()).await;
    // The early caller drives the connection until its reply; its deadline drops it
    // first, and the connection goes on without it.
    let slow = client.with_timeout(std::time::Duration::from_millis(100));
    let err = within(slow.pause(60_000)).await.expect_err("deadline");
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    assert_eq!(within(client.first(1)).await.expect("next call"), 2);
    assert_eq!(counting.first.load(Ordering::SeqCst), 1);
    assert!(!client.client().is_closed());
}

#[tokio::test]
async fn a_refused_handshake_never_runs_the_early_request() {
    let (name, counting, _handle) = serve(ServerOptions::new().authorize(|_| false)).await;
    // Connecting returns before the refusal.
    let client = early_client(name.as_str()).await;
    let err = within(client.first(1)).await.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::NotAuthorized, "{err}");
    // Every later call fails the same way.
    let err = within(client.second(1)).await.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::NotAuthorized, "{err}");
    assert!(client.client().is_closed());
    assert_eq!(counting.first.load(Ordering::SeqCst), 0);
    assert_eq!(counting.second.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn other_indices_never_run_the_wrong_method() {
    let (name, counting, _handle) = serve(ServerOptions::new()).await;
    let client = within(client_build::PairClient::connect_with(
        name.as_str(),
        &early(),
    ))
    .await
    .expect("connect");
    // The client's index of `first` (1) is the server's `second`: the server rejects the
    // early request, and the client sends it again under the table's index.
    assert_eq!(within(client.first(10)).await.expect("call"), 11);
    assert_eq!(counting.first.load(Ordering::SeqCst), 1);
    assert_eq!(counting.second.load(Ordering::SeqCst), 0);
    assert_eq!(within(client.second(10)).await.expect("call"), 12);
    assert_eq!(counting.second.load(Ordering::SeqCst), 1);
}

/// Scripted servers over a Unix socket: they see the bytes the client sends.
#[cfg(unix)]
mod scripted {
    use super::support::unique_name;
    use super::*;
    use bytes::BytesMut;
    use ferry::codec::{Frame, FrameDecoder, FrameKind, Hello, Welcome};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{UnixListener, UnixStream};

    /// A listener at a unique path, for a scripted server.
    fn listener() -> (UnixListener, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("{}.sock", unique_name("early")));
        let _ = std::fs::remove_file(&path);
        (UnixListener::bind(&path).expect("bind"), path)
    }

    /// Reads the hello, then one frame, from a scripted server's connection.
    async fn read_hello_and_frame(
        stream: &mut tokio::net::UnixStream,
        buf: &mut BytesMut,
    ) -> (Hello, Frame) {
        let hello = loop {
            if let Some(hello) = Hello::decode(buf).expect("hello") {
                break hello;
            }
            assert_ne!(stream.read_buf(buf).await.expect("read"), 0, "closed");
        };
        (hello, read_frame(stream, buf).await)
    }

    async fn read_frame(stream: &mut tokio::net::UnixStream, buf: &mut BytesMut) -> Frame {
        let mut decoder = FrameDecoder::new(1 << 20);
        loop {
            if let Some(frame) = decoder.decode(buf).expect("frame") {
                return frame;
            }
            assert_ne!(stream.read_buf(buf).await.expect("read"), 0, "closed");
        }
    }

    /// A Welcome of `version` accepting bincode, without a method table.
    fn welcome(version: u16) -> BytesMut {
        let mut welcome = Welcome::accept(0, 1 << 20, 64);
        welcome.version = version;
        let mut out = BytesMut::new();
        welcome.encode(&mut out);
        out
    }

    /// Serves one connection with `script` and calls `second(1)` on it from a client that
    /// sends its first call early; returns the reply once the script is done.
    async fn second_against<F>(script: impl FnOnce(UnixStream) -> F + Send + 'static) -> u32
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (listener, path) = listener();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            script(stream).await;
        });
        let client = early_client(path.as_path()).await;
        let reply = within(client.second(1)).await.expect("call");
        drop(client);
        within(server).await.expect("script");
        let _ = std::fs::remove_file(&path);
        reply
    }

    fn response(id: u64, value: u32) -> BytesMut {
        let mut out = BytesMut::new();
        ferry::codec::encode_frame_with(&mut out, FrameKind::RESPONSE, 0, 0, id, 1024, |buf| {
            ferry::FormatId::Bincode.encode(&value, buf)
        })
        .expect("encode");
        out
    }

    /// Reads the hello and the early request of `second(1)` before writing anything, then
    /// answers the Welcome and 42.
    async fn answer_early(mut stream: UnixStream) {
        let mut buf = BytesMut::new();
        // Nothing is written before both the hello and the request are read.
        let (hello, frame) = read_hello_and_frame(&mut stream, &mut buf).await;
        assert_eq!(hello.version, ferry::codec::PROTOCOL_VERSION);
        assert_ne!(hello.flags & Hello::EARLY, 0);
        assert_eq!(frame.kind, FrameKind::EARLY_REQUEST);
        assert_eq!(
            (frame.id, frame.aux),
            (1, 1),
            "id 1, the client's index of `second`"
        );
        let mut out = welcome(3);
        out.extend_from_slice(&response(frame.id, 42));
        stream.write_all(&out).await.expect("write");
        // Keep the connection open until the client is done.
        let _ = stream.read_buf(&mut buf).await;
    }

    #[tokio::test]
    async fn the_request_arrives_before_the_welcome_is_sent() {
        assert_eq!(second_against(answer_early).await, 42);
    }

    /// A multi-thread runtime: its `block_on` thread is none of its tasks, so a client there
    /// leaves its connection's task to a worker from the connect on.
    fn multi_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn from_block_on_of_a_multi_thread_runtime_the_first_call_goes_early() {
        let reply = multi_thread().block_on(second_against(answer_early));
        assert_eq!(reply, 42);
    }

    #[test]
    fn from_a_task_of_a_multi_thread_runtime_the_first_call_goes_early() {
        let reply = multi_thread().block_on(async {
            within(tokio::spawn(second_against(answer_early)))
                .await
                .expect("task")
        });
        assert_eq!(reply, 42);
    }

    #[test]
    fn from_block_on_a_client_that_makes_no_call_still_says_hello() {
        multi_thread().block_on(async {
            let (listener, path) = listener();
            let client = early_client(path.as_path()).await;
            let (mut stream, _) = within(listener.accept()).await.expect("accept");
            let mut buf = BytesMut::new();
            // No call is made: the connection's task writes the hello alone.
            let hello = within(async {
                loop {
                    if let Some(hello) = Hello::decode(&mut buf).expect("hello") {
                        break hello;
                    }
                    assert_ne!(stream.read_buf(&mut buf).await.expect("read"), 0, "closed");
                }
            })
            .await;
            assert_ne!(hello.flags & Hello::EARLY, 0);
            // Its refusal fails the call made afterwards.
            let mut refusal = Welcome::accept(0, 1 << 20, 0);
            refusal.status = ferry::codec::HandshakeStatus::SERVER_BUSY;
            refusal.message = "scripted refusal".into();
            let mut out = BytesMut::new();
            refusal.encode(&mut out);
            stream.write_all(&out).await.expect("write");
            let err = within(client.second(1)).await.expect_err("refused");
            assert!(
                support::chain(&err).contains("scripted refusal"),
                "not the refusal: {}",
                support::chain(&err)
            );
            let _ = std::fs::remove_file(&path);
        });
    }

    #[tokio::test]
    async fn a_version_2_server_skips_the_early_request_and_gets_it_again() {
        let reply = second_against(|mut stream| async move {
            let mut buf = BytesMut::new();
            let (_hello, early) = read_hello_and_frame(&mut stream, &mut buf).await;
            assert_eq!(early.kind, FrameKind::EARLY_REQUEST);
            // A version 2 server skips the ignorable kind, accepts, and reads on.
            stream.write_all(&welcome(2)).await.expect("write");
            let request = read_frame(&mut stream, &mut buf).await;
            assert_eq!(request.kind, FrameKind::REQUEST);
            assert_eq!(request.aux, early.aux);
            assert_ne!(request.id, early.id, "sent again under a new id");
            assert_eq!(request.body, early.body);
            stream
                .write_all(&response(request.id, 7))
                .await
                .expect("write");
            let _ = stream.read_buf(&mut buf).await;
        })
        .await;
        assert_eq!(reply, 7);
    }
}

#[tokio::test]
async fn a_client_that_waits_for_the_welcome_still_works() {
    let (name, counting, _handle) = serve(ServerOptions::new()).await;
    let client = within(server_build::PairClient::connect(name.as_str()))
        .await
        .expect("connect");
    assert_eq!(within(client.first(1)).await.expect("call"), 2);
    assert_eq!(counting.first.load(Ordering::SeqCst), 1);
}

/// A first call too large to go early (its body is over 1 KiB) leaves the hello, which
/// was to carry it, for the call that waits for the Welcome.
async fn a_first_call_too_large_to_go_early_waits_for_the_welcome() {
    let (name, _handle, _probe) = support::start_calc().await;
    let calc = within(support::CalcClient::connect_with(name.as_str(), &early()))
        .await
        .expect("connect");
    let payload = bytes::Bytes::from(vec![7u8; 4096]);
    assert_eq!(within(calc.take(payload)).await.expect("large call"), 4096);
    assert_eq!(within(calc.add(2, 3)).await.expect("next call"), 5);
}

#[tokio::test]
async fn a_large_first_call_goes_after_the_welcome() {
    a_first_call_too_large_to_go_early_waits_for_the_welcome().await;
}

#[test]
fn a_large_first_call_from_block_on_of_a_multi_thread_runtime_goes_after_the_welcome() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(a_first_call_too_large_to_go_early_waits_for_the_welcome());
}
