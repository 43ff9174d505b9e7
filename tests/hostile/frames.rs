//! Well-formed frames with wrong contents, after a correct handshake.

use bytes::Bytes;
use ferry::codec::{flags, Frame, FrameKind};
use ferry::{ServerOptions, StatusCode};

use crate::harness::*;

#[tokio::test]
async fn unknown_method_id_is_rejected_and_the_connection_goes_on() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    raw.send_frame(&Frame::request(1, 999, args(&()))).await;
    let message = raw.expect_error(1, StatusCode::UNKNOWN_METHOD).await;
    assert!(message.contains("999"), "{message}");
    raw.add(2, 40, 2).await;
    steady.finish().await;
}

#[tokio::test]
async fn undecodable_arguments_are_rejected_and_the_connection_goes_on() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    // `add` takes two i64; three bytes cannot be them.
    let bad = Frame::request(7, method("add"), Bytes::from_static(&[0xFF, 0xFF, 0xFF]));
    raw.send_frame(&bad).await;
    let message = raw.expect_error(7, StatusCode::BAD_ARGUMENTS).await;
    assert!(message.contains("add"), "{message}");
    raw.add(8, 1, 2).await;
    steady.finish().await;
}

#[tokio::test]
async fn deadline_flag_without_a_deadline_is_rejected() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    let mut frame = Frame::request(3, method("add"), Bytes::from_static(&[1, 2]));
    frame.flags = flags::DEADLINE;
    raw.send_frame(&frame).await;
    raw.expect_error(3, StatusCode::PROTOCOL).await;
    raw.add(4, 1, 2).await;
    steady.finish().await;
}

#[tokio::test]
async fn reply_kind_frames_from_a_client_close_its_connection() {
    let (name, server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    for kind in [FrameKind::RESPONSE, FrameKind::ERROR, FrameKind(0x33)] {
        let mut raw = Raw::calc(&name).await;
        raw.add(1, 1, 1).await;
        raw.send_frame(&Frame::new(kind, 1, Bytes::from_static(b"x")))
            .await;
        let message = raw.expect_error(0, StatusCode::PROTOCOL).await;
        assert!(message.contains("unexpected"), "{message}");
        raw.expect_closed().await;
    }
    wait_connections(&server, 1).await;
    steady.finish().await;
}

#[tokio::test]
async fn cancel_for_a_call_that_does_not_exist_is_ignored() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    raw.send_frame(&Frame::new(FrameKind::CANCEL, 4242, Bytes::new()))
        .await;
    raw.send_frame(&Frame::new(FrameKind::CANCEL, 0, Bytes::new()))
        .await;
    // The next frame the server sends is the reply to this call: the cancels caused
    // neither an error nor a close.
    raw.add(1, 2, 3).await;
    steady.finish().await;
}

#[tokio::test]
async fn extension_frames_are_skipped() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    raw.send_frame(&Frame::new(
        FrameKind(0x99),
        5,
        Bytes::from_static(b"future"),
    ))
    .await;
    raw.add(1, 2, 3).await;
    steady.finish().await;
}

#[tokio::test]
async fn a_request_with_id_0_closes_the_connection() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    raw.send_frame(&Frame::request(0, method("add"), args(&(1i64, 2i64))))
        .await;
    let message = raw.expect_error(0, StatusCode::PROTOCOL).await;
    assert!(message.contains("id 0"), "{message}");
    raw.expect_closed().await;
    steady.finish().await;
}

#[tokio::test]
async fn stream_frames_for_a_call_without_a_stream_are_ignored() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    // Late frames of a stream that ended or was cancelled look exactly like these.
    raw.send_frame(&Frame::credit(5, 16)).await;
    raw.send_frame(&Frame::new(FrameKind::STREAM_END, 6, Bytes::new()))
        .await;
    raw.send_frame(&Frame::new(FrameKind::STREAM_ITEM, 7, args(&1u32)))
        .await;
    raw.add(8, 1, 2).await;
    steady.finish().await;
}

#[tokio::test]
async fn a_credit_shorter_than_its_count_closes_the_connection() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::calc(&name).await;
    raw.send_frame(&Frame::new(
        FrameKind::CREDIT,
        5,
        Bytes::from_static(&[1, 0]),
    ))
    .await;
    raw.expect_error(0, StatusCode::PROTOCOL).await;
    raw.expect_closed().await;
    steady.finish().await;
}
