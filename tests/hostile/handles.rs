//! Hostile handle passing (Unix): descriptors a frame does not claim, descriptors without the
//! HANDLES flag or where no frame begins, the flag on a version 2 connection. The server
//! closes every descriptor that came (the test holds the other end of each socket pair and
//! reads end of stream) and closes the connection, and a well-behaved client is served all
//! along. Descriptors a valid frame brings but its payload does not use are closed after
//! the call, which is answered.
#![cfg(unix)]

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;

use bytes::BytesMut;
use ferry::codec::{append_handle_trailer, flags, Frame, FrameDecoder, FrameKind, Welcome};
use ferry::transport::handles::HandleQueue;
use ferry::transport::{ReadHalf, ToName, WriteHalf};
use ferry::ServerOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;
use crate::support::*;

/// A raw client whose write half can send descriptors.
struct RawFds {
    reader: ReadHalf,
    writer: WriteHalf,
    queue: HandleQueue,
    buf: BytesMut,
    /// Bytes written since the queue was installed.
    sent: u64,
}

impl RawFds {
    /// Connects and says hello for `Calc` at protocol `version`.
    async fn connect(name: &str, version: u16) -> RawFds {
        let name = name.to_name().expect("name");
        let stream = within(ferry::transport::connect(&name))
            .await
            .expect("raw connect");
        let (mut reader, mut writer) = stream.into_split();
        let mut hello = calc_hello();
        hello.version = version;
        let mut out = BytesMut::new();
        hello.encode(&mut out).expect("hello");
        within(writer.write_all(&out)).await.expect("write hello");
        let mut buf = BytesMut::new();
        let welcome = loop {
            if let Some(welcome) = Welcome::decode(&mut buf).expect("welcome") {
                break welcome;
            }
            let read = within(reader.read_buf(&mut buf)).await.expect("read");
            assert!(read > 0, "closed before the welcome");
        };
        assert!(welcome.status.is_ok(), "{welcome:?}");
        assert_eq!(welcome.version, version);
        let queue = HandleQueue::new();
        writer.send_handles(queue.clone());
        RawFds {
            reader,
            writer,
            queue,
            buf,
            sent: 0,
        }
    }

    /// Writes `bytes`, the descriptors of `fds` going with byte `at` of them.
    async fn send(&mut self, bytes: &[u8], at: u64, fds: Vec<OwnedFd>) {
        let position = self.written();
        self.queue.attach(position + at, fds);
        within(self.writer.write_all(bytes)).await.expect("write");
        self.sent += bytes.len() as u64;
    }

    fn written(&self) -> u64 {
        self.sent
    }

    /// The next frame, or `None` at end of stream.
    async fn frame(&mut self) -> Option<Frame> {
        let mut decoder = FrameDecoder::default();
        loop {
            if let Some(frame) = decoder.decode(&mut self.buf).expect("a frame") {
                return Some(frame);
            }
            match within(self.reader.read_buf(&mut self.buf)).await {
                Ok(0) => return None,
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(err) => panic!("read: {err}"),
            }
        }
    }

    /// Expects the server to end the connection, with at most an ERROR for id 0 first.
    async fn expect_closed(&mut self) {
        while let Some(frame) = self.frame().await {
            assert!(
                frame.kind == FrameKind::ERROR && frame.id == 0,
                "expected the connection to close, got {frame:?}"
            );
        }
    }
}

/// A socket pair: the end to send, and the end the test keeps to see it closed.
fn probe() -> (OwnedFd, tokio::net::UnixStream) {
    let (keep, send) = StdUnixStream::pair().expect("socketpair");
    keep.set_nonblocking(true).expect("nonblocking");
    (
        OwnedFd::from(send),
        tokio::net::UnixStream::from_std(keep).expect("register"),
    )
}

/// Waits until every copy of the sent end is closed: the kept end reads end of stream.
async fn closed_everywhere(mut keep: tokio::net::UnixStream) {
    let mut byte = [0u8; 1];
    let read = within(keep.read(&mut byte))
        .await
        .expect("read the kept end");
    assert_eq!(read, 0, "the sent end is still open somewhere");
}

/// `add(1, 2)` with request id `id`, the HANDLES flag and a trailer announcing `count`.
fn add_with_trailer(id: u64, count: usize) -> BytesMut {
    let mut out = BytesMut::new();
    add_request(id, 1, 2).encode(&mut out);
    append_handle_trailer(&mut out, 0, count, &[], u32::MAX).expect("trailer");
    out
}

fn add_plain(id: u64) -> BytesMut {
    let mut out = BytesMut::new();
    add_request(id, 1, 2).encode(&mut out);
    out
}

#[tokio::test]
async fn more_descriptors_than_the_frame_claims_close_the_connection() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = RawFds::connect(&name, 3).await;
    let ((a, keep_a), (b, keep_b)) = (probe(), probe());
    raw.send(&add_with_trailer(1, 1), 0, vec![a, b]).await;
    raw.expect_closed().await;
    closed_everywhere(keep_a).await;
    closed_everywhere(keep_b).await;
    steady.finish().await;
}

#[tokio::test]
async fn descriptors_without_the_flag_close_the_connection() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = RawFds::connect(&name, 3).await;
    let (a, keep) = probe();
    raw.send(&add_plain(1), 0, vec![a]).await;
    raw.expect_closed().await;
    closed_everywhere(keep).await;
    steady.finish().await;
}

#[tokio::test]
async fn descriptors_where_no_frame_begins_close_the_connection() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = RawFds::connect(&name, 3).await;
    let (a, keep) = probe();
    // With byte 5 of a frame without handles: no frame begins in that read.
    raw.send(&add_plain(1), 5, vec![a]).await;
    raw.expect_closed().await;
    closed_everywhere(keep).await;
    steady.finish().await;
}

#[tokio::test]
async fn a_frame_announcing_handles_that_never_came_closes_the_connection() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = RawFds::connect(&name, 3).await;
    raw.send(&add_with_trailer(1, 2), 0, Vec::new()).await;
    raw.expect_closed().await;
    steady.finish().await;
}

#[tokio::test]
async fn the_flag_on_a_version_2_connection_closes_it() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = RawFds::connect(&name, 2).await;
    let (a, keep) = probe();
    raw.send(&add_with_trailer(1, 1), 0, vec![a]).await;
    raw.expect_closed().await;
    closed_everywhere(keep).await;
    steady.finish().await;
}

#[tokio::test]
async fn handles_the_payload_does_not_take_are_closed_and_the_call_answered() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let mut raw = RawFds::connect(&name, 3).await;
    let (a, keep) = probe();
    raw.send(&add_with_trailer(1, 1), 0, vec![a]).await;
    let reply = raw.frame().await.expect("a reply");
    assert_eq!(reply.kind, FrameKind::RESPONSE, "{}", reply.message());
    assert_eq!(reply.id, 1);
    assert!(!reply.has_flag(flags::HANDLES));
    closed_everywhere(keep).await;
    // The connection still serves.
    raw.send(&add_plain(2), 0, Vec::new()).await;
    let reply = raw.frame().await.expect("a reply");
    assert_eq!((reply.kind, reply.id), (FrameKind::RESPONSE, 2));
}
