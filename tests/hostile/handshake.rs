//! Clients that get the handshake wrong.

use std::time::Duration;

use bytes::BytesMut;
use ferry::codec::{HandshakeStatus, Welcome};
use ferry::ServerOptions;

use crate::harness::*;

/// A refused handshake: the expected status, then the server closes the connection.
async fn refused(raw: &mut Raw, welcome: Welcome, status: HandshakeStatus) -> String {
    assert_eq!(welcome.status, status, "{}", welcome.message);
    assert!(!welcome.message.is_empty(), "a refusal says why");
    raw.expect_closed().await;
    welcome.message
}

#[tokio::test]
async fn random_bytes_instead_of_a_hello() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut noise = Vec::with_capacity(256);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..256 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.push((state >> 24) as u8);
    }
    noise[0] = b'G'; // not the magic's first byte
    let mut raw = Raw::connect(&name).await;
    raw.send(&noise).await;
    let welcome = raw.welcome().await;
    let message = refused(&mut raw, welcome, HandshakeStatus::BAD_HELLO).await;
    assert!(message.contains("bad magic"), "{message}");
    steady.finish().await;
}

#[tokio::test]
async fn wrong_magic() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut hello = BytesMut::new();
    calc_hello().encode(&mut hello).unwrap();
    hello[..4].copy_from_slice(b"HTTP");
    let mut raw = Raw::connect(&name).await;
    raw.send(&hello).await;
    let welcome = raw.welcome().await;
    let message = refused(&mut raw, welcome, HandshakeStatus::BAD_HELLO).await;
    assert!(message.contains("bad magic"), "{message}");
    steady.finish().await;
}

/// The refusal and the server's log line carry the whole cause: the codec error's text,
/// then (its source) where the bytes stop being UTF-8, each once.
#[tokio::test]
async fn service_name_not_utf8() {
    capture_logs();
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut hello = BytesMut::new();
    calc_hello().encode(&mut hello).unwrap();
    hello[22] = 0xFF; // the second byte of the name "Calc"
    let mut raw = Raw::connect(&name).await;
    raw.send(&hello).await;
    let welcome = raw.welcome().await;
    let message = refused(&mut raw, welcome, HandshakeStatus::BAD_HELLO).await;
    let chain = "malformed handshake: service name is not valid UTF-8: \
                 invalid utf-8 sequence of 1 bytes from index 1";
    assert_eq!(message, chain);
    wait_logged(&format!("bad handshake; closing error={chain}")).await;
    steady.finish().await;
}

#[tokio::test]
async fn unsupported_version() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::connect(&name).await;
    let hello = ferry::codec::Hello {
        version: 0,
        ..calc_hello()
    };
    let welcome = raw.hello(&hello).await;
    let message = refused(&mut raw, welcome, HandshakeStatus::UNSUPPORTED_VERSION).await;
    assert!(message.contains("version 0"), "{message}");
    steady.finish().await;
}

#[tokio::test]
async fn unknown_format() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::connect(&name).await;
    let hello = ferry::codec::Hello {
        format: 9,
        ..calc_hello()
    };
    let welcome = raw.hello(&hello).await;
    let message = refused(&mut raw, welcome, HandshakeStatus::UNSUPPORTED_FORMAT).await;
    assert!(message.contains("format 9"), "{message}");
    steady.finish().await;
}

#[tokio::test]
async fn unknown_service() {
    let (name, _server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::connect(&name).await;
    let hello = ferry::codec::Hello {
        service: "NoSuchService".into(),
        ..calc_hello()
    };
    let welcome = raw.hello(&hello).await;
    let message = refused(&mut raw, welcome, HandshakeStatus::UNKNOWN_SERVICE).await;
    assert!(message.contains("NoSuchService"), "{message}");
    steady.finish().await;
}

#[tokio::test]
async fn half_a_hello_then_silence_times_out() {
    capture_logs();
    let options = ServerOptions::new().handshake_timeout(Duration::from_millis(300));
    let (name, _server) = calc_server(options).await;
    let steady = Steady::start(&name).await;
    let mut hello = BytesMut::new();
    calc_hello().encode(&mut hello).unwrap();
    let mut raw = Raw::connect(&name).await;
    raw.send(&hello[..10]).await;
    let welcome = raw.welcome().await;
    let message = refused(&mut raw, welcome, HandshakeStatus::BAD_HELLO).await;
    assert_eq!(message, "handshake not completed within 300ms");
    wait_logged("handshake not completed in time").await;
    steady.finish().await;
}

#[tokio::test]
async fn silent_client_times_out() {
    let options = ServerOptions::new().handshake_timeout(Duration::from_millis(200));
    let (name, server) = calc_server(options).await;
    let steady = Steady::start(&name).await;
    let mut raw = Raw::connect(&name).await;
    let welcome = raw.welcome().await;
    refused(&mut raw, welcome, HandshakeStatus::BAD_HELLO).await;
    wait_connections(&server, 1).await;
    steady.finish().await;
}
