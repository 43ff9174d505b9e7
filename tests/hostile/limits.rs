//! Oversized frames, slow-loris frames and clients that never read.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferry::codec::{Frame, FrameKind, DEFAULT_MAX_FRAME, HEADER_LEN};
use ferry::{ServerOptions, StatusCode};
use tokio::io::AsyncWriteExt;

use crate::harness::*;
use crate::support::within;

/// A REQUEST header announcing a body of `len` bytes, with no body after it.
fn header_announcing(len: u32) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4] = FrameKind::REQUEST.0;
    header[8] = 1;
    header
}

#[tokio::test]
async fn length_prefix_of_4_gib_is_refused_without_allocating_it() {
    capture_logs();
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    raw.send(&header_announcing(u32::MAX)).await;
    let message = raw.expect_error(0, StatusCode::FRAME_TOO_LARGE).await;
    let expected = format!("frame of 4294967295 bytes exceeds limit of {DEFAULT_MAX_FRAME}");
    assert_eq!(message, expected);
    raw.expect_closed().await;
    wait_logged(&expected).await;
    assert!(
        largest_allocation() < 64 << 20,
        "an allocation of {} bytes was made",
        largest_allocation()
    );
    steady.finish().await;
}

#[tokio::test]
async fn length_prefix_just_above_the_limit_is_refused() {
    capture_logs();
    let (name, _server) = calc_server(ServerOptions::new().max_frame(65_536)).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    // Exactly at the limit is fine (an extension frame, which the server skips)...
    let at_limit = Frame::new(FrameKind(0x99), 1, bytes::Bytes::from(vec![0u8; 65_536]));
    raw.send_frame(&at_limit).await;
    raw.add(2, 3, 4).await;
    // ...one byte more is not.
    raw.send(&header_announcing(65_537)).await;
    let message = raw.expect_error(0, StatusCode::FRAME_TOO_LARGE).await;
    assert_eq!(message, "frame of 65537 bytes exceeds limit of 65536");
    raw.expect_closed().await;
    wait_logged("frame of 65537 bytes exceeds limit of 65536").await;
    steady.finish().await;
}

#[tokio::test]
async fn a_frame_begun_then_abandoned_is_timed_out() {
    capture_logs();
    let options = ServerOptions::new().frame_timeout(Duration::from_millis(300));
    let (name, server) = calc_server(options).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    let mut frame = BytesMut::new();
    add_request(1, 2, 3).encode(&mut frame);
    raw.send(&frame[..HEADER_LEN + 1]).await;
    let message = raw.expect_error(0, StatusCode::PROTOCOL).await;
    assert_eq!(
        message,
        "incomplete frame: 17 bytes arrived, the rest did not within 300ms"
    );
    raw.expect_closed().await;
    wait_logged("frame not completed in time").await;
    wait_connections(&server, 1).await;
    steady.finish().await;
}

#[tokio::test]
async fn an_idle_connection_is_not_timed_out() {
    let options = ServerOptions::new().frame_timeout(Duration::from_millis(100));
    let (name, _server) = calc_server(options).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    raw.add(1, 1, 1).await;
    // Idle for many times the frame timeout between two frames.
    tokio::time::sleep(Duration::from_millis(800)).await;
    raw.add(2, 2, 2).await;
    steady.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_stalls_alone() {
    let options = ServerOptions::new()
        .max_in_flight(8)
        .write_queue_limit(64 * 1024);
    let (name, server) = calc_server(options).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    // Each call asks for a 64 KiB reply; the client reads none of them. Calls go out 16
    // to a write.
    let mut batch = BytesMut::new();
    let mut next_id = 1u64;
    let mut written = 0usize;
    let mut stalled = false;
    while written < 64 << 20 {
        batch.clear();
        for _ in 0..16 {
            Frame::request(next_id, method("blob"), args(&(64usize * 1024,))).encode(&mut batch);
            next_id += 1;
        }
        let write = raw.stream.write_all(&batch);
        match tokio::time::timeout(Duration::from_secs(2), write).await {
            Ok(result) => result.expect("raw write"),
            Err(_) => {
                stalled = true;
                break;
            }
        }
        written += batch.len();
    }
    // The server stopped reading this client: with 8 calls in flight and their replies
    // waiting to be written, what the client could send was only what the socket buffers
    // hold, not the 64 MiB it tried.
    assert!(stalled, "the server kept reading: {written} bytes of calls");
    assert!(written < 16 << 20, "{written} bytes of calls were taken");
    // The others are served all along.
    steady.wait_for_calls(20).await;
    let mut other = Raw::calc(&name).await;
    other.add(1, 5, 6).await;
    let calc = steady.finish().await;
    drop(raw);
    drop(other);
    wait_connections(&server, 1).await;
    drop(calc);
    wait_connections(&server, 0).await;
}

/// Requests that the server answers at once with an ERROR frame, of three kinds: an unknown
/// method, arguments that do not decode, and a request id already in flight.
fn error_reply_requests(first_id: u64, count: u64, hanging_id: u64) -> BytesMut {
    let mut batch = BytesMut::new();
    for id in first_id..first_id + count {
        let frame = match id % 3 {
            0 => Frame::request(id, 999, args(&())),
            1 => Frame::request(id, method("add"), Bytes::from_static(b"\x01")),
            _ => Frame::request(hanging_id, method("add"), args(&(1i64, 2i64))),
        };
        frame.encode(&mut batch);
    }
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_replies_that_are_never_read_stall_the_client_alone() {
    let options = ServerOptions::new().write_queue_limit(64 * 1024);
    let (name, server) = calc_server(options).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    // One call that never ends, so its id is "already in flight" for the duplicates.
    let hanging_id = u64::MAX;
    raw.send_frame(&Frame::request(hanging_id, method("hang"), args(&(7u64,))))
        .await;
    // Every other request gets an ERROR reply at once; the client reads none of them.
    let mut next_id = 1u64;
    let mut written = 0usize;
    let mut stalled = false;
    while written < 64 << 20 {
        let batch = error_reply_requests(next_id, 1024, hanging_id);
        next_id += 1024;
        let write = raw.stream.write_all(&batch);
        match tokio::time::timeout(Duration::from_secs(2), write).await {
            Ok(result) => result.expect("raw write"),
            Err(_) => {
                stalled = true;
                break;
            }
        }
        written += batch.len();
    }
    // The server stopped reading this client once the error replies it could not write
    // filled the queue: the client could send only what the queue and the socket buffers
    // hold, not the 64 MiB it tried (each request of ~30 bytes would have cost ~80 bytes
    // of queued error reply).
    assert!(
        stalled,
        "the server kept reading: {written} bytes of requests"
    );
    assert!(written < 16 << 20, "{written} bytes of requests were taken");
    // The queued replies are the ones asked for, in order, once the client reads.
    let message = raw.expect_error(1, StatusCode::BAD_ARGUMENTS).await;
    assert!(message.contains("add"), "{message}");
    raw.expect_error(hanging_id, StatusCode::PROTOCOL).await;
    raw.expect_error(3, StatusCode::UNKNOWN_METHOD).await;
    // The others are served all along.
    steady.wait_for_calls(20).await;
    let calc = steady.finish().await;
    drop(raw);
    wait_connections(&server, 1).await;
    drop(calc);
    wait_connections(&server, 0).await;
}

/// A request that gets an ERROR reply at once, of error kind `kind`.
fn error_request(kind: usize, id: u64, hanging_id: u64) -> Frame {
    match kind {
        // Unknown method.
        0 => Frame::request(id, 999, args(&())),
        // Arguments that do not decode.
        1 => Frame::request(id, method("add"), Bytes::from_static(b"\x01")),
        // An id already in flight.
        2 => Frame::request(hanging_id, method("add"), args(&(1i64, 2i64))),
        // The deadline flag without a deadline.
        _ => {
            let mut frame = Frame::request(id, method("add"), Bytes::new());
            frame.flags = ferry::codec::flags::DEADLINE;
            frame
        }
    }
}

/// Floods `raw` with requests of error kind `kind`, never reading; returns the bytes the
/// server took before it stopped reading (or the 64 MiB tried, if it never did).
async fn flood_errors(mut raw: Raw, kind: usize, hanging_id: u64) -> (usize, Raw) {
    let mut next_id = 1u64;
    let mut written = 0usize;
    while written < 64 << 20 {
        let mut batch = BytesMut::new();
        for id in next_id..next_id + 1024 {
            error_request(kind, id, hanging_id).encode(&mut batch);
        }
        next_id += 1024;
        let write = raw.stream.write_all(&batch);
        match tokio::time::timeout(Duration::from_secs(2), write).await {
            Ok(result) => result.expect("raw write"),
            Err(_) => break,
        }
        written += batch.len();
    }
    (written, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_replies_count_against_the_connection_memory_limit() {
    // A write queue far above the memory limit: what stops each flood is the budget.
    let options = ServerOptions::new()
        .max_frame(64 * 1024)
        .write_queue_limit(64 << 20)
        .max_connection_memory(256 * 1024)
        .memory_budget(4 << 20);
    let (name, server) = calc_server(options).await;
    let steady = Steady::start(&name).await;
    let hanging_id = u64::MAX;
    let mut floods = Vec::new();
    for kind in 0..4 {
        let mut raw = Raw::calc(&name).await;
        if kind == 2 {
            // One call that never ends, so its id is "already in flight" for the duplicates.
            raw.send_frame(&Frame::request(hanging_id, method("hang"), args(&(7u64,))))
                .await;
        }
        floods.push(tokio::spawn(flood_errors(raw, kind, hanging_id)));
    }
    let mut raws = Vec::new();
    for (kind, flood) in floods.into_iter().enumerate() {
        let (written, raw) = within(flood).await.expect("flood task");
        // Each request of ~20 bytes costs ~80 bytes of queued error reply: the server read
        // until 256 KiB of replies were queued, plus what the socket buffers hold; without
        // the budget it would read until the 64 MiB queue is full (~20 MiB of requests).
        assert!(
            written < 4 << 20,
            "error kind {kind}: the server took {written} bytes of requests"
        );
        raws.push(raw);
    }
    // The others are served all along.
    steady.wait_for_calls(20).await;
    // The queued replies are the ones asked for, once a client reads.
    let message = raws[1].expect_error(1, StatusCode::BAD_ARGUMENTS).await;
    assert!(message.contains("add"), "{message}");
    raws[0].expect_error(1, StatusCode::UNKNOWN_METHOD).await;
    raws[2].expect_error(hanging_id, StatusCode::PROTOCOL).await;
    raws[3].expect_error(1, StatusCode::PROTOCOL).await;
    let calc = steady.finish().await;
    drop(raws);
    wait_connections(&server, 1).await;
    drop(calc);
    wait_connections(&server, 0).await;
}
