//! Keepalive against a frozen process (SIGSTOP): the side with `keepalive` set PINGs its
//! silent peer and, without an answer, closes the connection and frees what it held. A live
//! idle peer answers the PINGs and stays connected; against a server that answered protocol
//! version 1 a client sends no PING at all.
//!
//! The other process is this test binary run again in a role (`support::child`).
#![cfg(unix)]

mod support;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use ferry::codec::{Frame, FrameDecoder, FrameKind, Hello, Welcome};
use ferry::transport::{Listener, ListenerOptions, ToName};
use ferry::{ClientOptions, ErrorKind, Server, ServerOptions};
use support::child::{run_role, say, ChildProcess};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// The keepalive interval of these tests.
const INTERVAL: Duration = Duration::from_millis(200);

/// Not a test of its own: the entry point of the child processes. Without a role (a normal
/// test run) it does nothing.
#[test]
fn child_role() {
    run_role(|role, name| async move {
        match role.as_str() {
            "server" => {
                let (service, _probe) = calc();
                let bound = Server::new()
                    .serve(CalcServer::new(service))
                    .bind(name.as_str())
                    .await
                    .expect("child server bind");
                tokio::spawn(bound.run());
                say("ready");
            }
            "client" => {
                // No keepalive of its own: it only answers the server's PINGs.
                let calc = CalcClient::connect(name.as_str())
                    .await
                    .expect("child client connect");
                tokio::spawn(async move { calc.hang(7).await });
                say("calling");
            }
            other => panic!("unknown child role {other}"),
        }
        std::future::pending::<()>().await
    });
}

/// Freezes the child (SIGSTOP): it keeps its sockets open and answers nothing.
async fn freeze(child: &ChildProcess) {
    let pid = child.id();
    let status = within(
        Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status(),
    )
    .await
    .expect("run kill -STOP");
    assert!(status.success(), "kill -STOP {pid} failed");
    // The signal is sent, but a thread running on another core stops a moment later: wait
    // until every thread of the child is stopped, where /proc says so (Linux).
    eventually("every thread of the child is stopped", || {
        all_threads_stopped(pid)
    })
    .await;
}

/// Whether every thread of process `pid` is stopped (state `T`), read from
/// `/proc/<pid>/task/*/stat`; `true` where there is no such file system.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // The state follows the command name, which is in parentheses.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state == "T" || state == "t")
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_keepalive_detects_a_frozen_server() {
    let name = unique_name("frozen-server");
    let mut server = ChildProcess::server(&name).await;
    let options = ClientOptions::new().keepalive(INTERVAL);
    let calc = within(CalcClient::connect_with(name.as_str(), &options))
        .await
        .unwrap();
    assert_eq!(within(calc.add(1, 2)).await.unwrap(), 3);
    // Idle for several intervals: the live server answers the PINGs.
    tokio::time::sleep(INTERVAL * 5).await;
    assert!(!calc.client().is_closed());
    assert_eq!(within(calc.add(2, 3)).await.unwrap(), 5);

    freeze(&server).await;
    let frozen = Instant::now();
    let err = within(calc.add(3, 4)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err:?}");
    assert!(
        support::chain(&err).contains("did not answer a PING"),
        "{err}"
    );
    assert!(
        frozen.elapsed() < INTERVAL * 10,
        "detected after {:?}",
        frozen.elapsed()
    );
    assert!(calc.client().is_closed());
    server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_keepalive_frees_a_frozen_client() {
    let (service, mut probe) = calc();
    let options = ServerOptions::new().keepalive(INTERVAL);
    let (name, server, _serving) =
        start(Server::with_options(options).serve(CalcServer::new(service))).await;
    let mut client = ChildProcess::spawn("client", &name);
    client.expect_line("calling").await;
    assert_eq!(within(probe.started.recv()).await, Some(7));
    // Idle for several intervals: the live client answers the PINGs.
    tokio::time::sleep(INTERVAL * 5).await;
    assert_eq!(server.connections(), 1);
    assert!(
        probe.dropped.try_recv().is_err(),
        "a live client's call was cancelled"
    );

    freeze(&client).await;
    // Its handler is cancelled and its connection freed.
    assert_eq!(within(probe.dropped.recv()).await, Some(7));
    eventually("the frozen client's connection is freed", || {
        server.connections() == 0 && server.active_calls() == 0
    })
    .await;
    client.kill().await;
}

#[tokio::test]
async fn against_a_version_1_server_a_client_sends_no_ping() {
    let name = unique_name("v1-server");
    let listener = Listener::bind(&name.to_name().unwrap(), &ListenerOptions::default()).unwrap();
    let server = tokio::spawn(async move {
        let mut stream = listener.accept().await.expect("accept");
        let mut buf = BytesMut::new();
        while Hello::decode(&mut buf).expect("a hello").is_none() {
            assert!(stream.read_buf(&mut buf).await.expect("read") > 0);
        }
        let mut out = BytesMut::new();
        let mut welcome = Welcome::accept(0, 1 << 20, 8);
        welcome.version = 1;
        welcome.encode(&mut out);
        stream.write_all(&out).await.expect("write welcome");
        // Every frame the client sends, for ten keepalive intervals.
        let mut decoder = FrameDecoder::default();
        let mut kinds = Vec::new();
        let _ = tokio::time::timeout(INTERVAL * 10, async {
            loop {
                while let Some(frame) = decoder.decode(&mut buf).expect("a frame") {
                    kinds.push(frame.kind);
                    if frame.kind == FrameKind::REQUEST {
                        let mut reply = BytesMut::new();
                        let mut body = BytesMut::new();
                        ferry::FormatId::Bincode.encode(&5i64, &mut body).unwrap();
                        Frame::new(FrameKind::RESPONSE, frame.id, body.freeze()).encode(&mut reply);
                        stream.write_all(&reply).await.expect("write reply");
                    }
                }
                if stream.read_buf(&mut buf).await.expect("read") == 0 {
                    break;
                }
            }
        })
        .await;
        (kinds, stream)
    });
    let options = ClientOptions::new().keepalive(INTERVAL);
    let calc = within(CalcClient::connect_with(name.as_str(), &options))
        .await
        .unwrap();
    assert_eq!(within(calc.add(2, 3)).await.unwrap(), 5);
    let (kinds, stream) = within(server).await.unwrap();
    assert_eq!(kinds, [FrameKind::REQUEST], "only the call, no PING");
    // Ten intervals of silence with the server still there: it was not judged.
    assert!(
        !calc.client().is_closed(),
        "a silent version 1 server is not judged"
    );
    drop(stream);
}
