//! Admission: connections that never finish their handshake cannot starve the others, and
//! a server out of file descriptors keeps serving what it has and refuses newcomers
//! clearly instead of leaving them waiting.
//!
//! The file-descriptor test runs a server in a child process (this test binary again,
//! `support::child`) whose descriptor limit is set low.
#![cfg(unix)]

mod support;

use std::time::Duration;

use bytes::BytesMut;
use ferry::codec::{Hello, Welcome, PROTOCOL_VERSION};
use ferry::transport::ToName;
use ferry::{ErrorKind, FormatId, Server, ServerOptions};
use support::child::{run_role, say, ChildProcess};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The child server's open-file limit.
const CHILD_FD_LIMIT: u64 = 96;

/// Sets this process's open-file limit (soft and hard) to `max`.
fn lower_fd_limit(max: u64) {
    let limit = libc::rlimit {
        rlim_cur: max as libc::rlim_t,
        rlim_max: max as libc::rlim_t,
    };
    // SAFETY: `limit` is a valid rlimit; lowering a limit needs no privilege.
    let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(set, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// A well-behaved client calling `add` until told to stop; returns how many calls it made
/// or the first failure.
fn steady_calls(
    calc: CalcClient,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Result<u64, String>> {
    tokio::spawn(async move {
        let mut made = 0u64;
        while !*stop.borrow() {
            let i = made as i64;
            let got = tokio::time::timeout(Duration::from_secs(10), calc.add(i, 1))
                .await
                .map_err(|_| format!("call {i} hung"))?
                .map_err(|err| format!("call {i} failed: {err}"))?;
            if got != i + 1 {
                return Err(format!("call {i} returned {got}"));
            }
            made += 1;
            tokio::task::yield_now().await;
        }
        Ok(made)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_silent_connections_do_not_starve_a_calling_client() {
    raise_fd_limit();
    let max_pending = 64;
    let (service, _probe) = calc();
    let server = Server::with_options(ServerOptions::new().max_pending_handshakes(max_pending))
        .serve(CalcServer::new(service));
    let (name, handle, _task) = start(server).await;
    let calc = within(CalcClient::connect(&name)).await.expect("connect");
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let steady = steady_calls(calc, stop);

    // 10,000 connections that never send a hello, all held open by this side.
    let endpoint = name.as_str().to_name().expect("name");
    let mut silent = Vec::with_capacity(10_000);
    let mut most_open = 0;
    while silent.len() < 10_000 {
        match ferry::transport::connect(&endpoint).await {
            Ok(stream) => silent.push(stream),
            // The backlog is full for a moment: let the server accept.
            Err(_) => tokio::task::yield_now().await,
        }
        most_open = most_open.max(handle.connections());
    }
    // A newcomer is served while all of them are held.
    let newcomer = within(CalcClient::connect(&name))
        .await
        .expect("a new client connects during the flood");
    assert_eq!(
        within(newcomer.add(40, 2)).await.expect("newcomer call"),
        42
    );

    stop_tx.send_replace(true);
    let made = within(steady)
        .await
        .expect("steady task")
        .unwrap_or_else(|err| panic!("the calling client failed during the flood: {err}"));
    assert!(made > 0, "the calling client made no call during the flood");
    // The silent ones were shed as newer ones came: the server never held anywhere near
    // 10,000 of them (the steady client and the newcomer are the only real ones).
    assert!(
        most_open < 1_000,
        "the server held {most_open} connections at once"
    );
    drop(silent);
}

/// A burst of clients whose hellos are all in their sockets before the server gets to them
/// is served whole, however far past `max_pending_handshakes`: only connections that have
/// not said hello are shed.
#[test]
fn a_burst_of_clients_whose_hellos_have_come_is_not_shed() {
    // On one thread the accept loop takes the whole burst from the backlog before any
    // connection task runs, so every connection but the newest is shed before it reads
    // (a shed connection whose hello the runtime has not seen yet, with no place left in
    // the grace, was refused SERVER_BUSY before).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (service, _probe) = calc();
        let name = unique_name("admission-burst");
        let server = Server::with_options(ServerOptions::new().max_pending_handshakes(1))
            .serve(CalcServer::new(service))
            .bind(name.as_str())
            .await
            .expect("bind");
        let endpoint = name.as_str().to_name().expect("name");
        let info = &CALC_SERVICE_INFO;
        let hello = Hello {
            version: PROTOCOL_VERSION,
            format: FormatId::Bincode.as_u8(),
            flags: 0,
            max_frame: 1 << 20,
            signature: info.signature,
            service: info.name.to_owned(),
        };
        let mut out = BytesMut::new();
        hello.encode(&mut out).expect("encode the hello");
        // First one that never says hello: shed by the next, it holds the only place in
        // the grace (see `admission`) while it waits for its hello.
        let _silent = within(ferry::transport::connect(&endpoint))
            .await
            .expect("connect");
        // Then the burst, connected and said hello while the server is not accepting yet.
        let mut clients = Vec::new();
        for _ in 0..8 {
            let mut stream = within(ferry::transport::connect(&endpoint))
                .await
                .expect("connect");
            within(stream.write_all(&out)).await.expect("hello");
            clients.push(stream);
        }
        let serving = tokio::spawn(server.run());
        for (i, mut stream) in clients.into_iter().enumerate() {
            let mut buf = BytesMut::new();
            let welcome = loop {
                if let Some(welcome) = Welcome::decode(&mut buf).expect("a welcome") {
                    break welcome;
                }
                let read = within(stream.read_buf(&mut buf)).await.expect("read");
                assert!(read > 0, "client {i} closed before its welcome");
            };
            assert!(
                welcome.status.is_ok(),
                "client {i} was refused: {} {}",
                welcome.status,
                welcome.message
            );
        }
        serving.abort();
    });
}

/// Not a test of its own: the entry point of the child server. Without a role (a normal
/// test run) it does nothing.
#[test]
fn child_role() {
    run_role(|role, name| async move {
        assert_eq!(role, "server", "unknown child role");
        let (service, _probe) = calc();
        let bound = Server::new()
            .serve(CalcServer::new(service))
            .bind(name.as_str())
            .await
            .expect("child server bind");
        // Learn the process's own user while descriptors are plenty.
        lower_fd_limit(CHILD_FD_LIMIT);
        tokio::spawn(bound.run());
        say("ready");
        std::future::pending::<()>().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_server_refuses_newcomers_clearly_and_serves_the_rest() {
    raise_fd_limit();
    let name = unique_name("fd-limit");
    let _child = ChildProcess::server(&name).await;

    // Connect until the server runs out of descriptors; every client up to there works.
    let first = within(CalcClient::connect(&name))
        .await
        .expect("first client");
    let mut clients = Vec::new();
    let refusal = loop {
        assert!(
            clients.len() < 2 * CHILD_FD_LIMIT as usize,
            "the server accepted more connections than it has descriptors"
        );
        match within(CalcClient::connect(&name)).await {
            Ok(client) => clients.push(client),
            Err(err) => break err,
        }
    };
    // A clear, immediate refusal (`within` bounds the wait), not a handshake time-out.
    assert_eq!(refusal.kind(), ErrorKind::Connect, "{refusal}");
    let text = chain(&refusal);
    assert!(
        text.contains("out of file descriptors"),
        "unclear refusal: {text}"
    );
    // A second newcomer gets the same answer: the server keeps refusing, it does not hang.
    let again = within(CalcClient::connect(&name))
        .await
        .expect_err("still out of descriptors");
    assert!(
        chain(&again).contains("out of file descriptors"),
        "{again:#}"
    );
    // What it already had is still served.
    assert_eq!(within(first.add(1, 2)).await.expect("first client"), 3);
    let last = clients.last().expect("some clients connected");
    assert_eq!(within(last.add(3, 4)).await.expect("last client"), 7);

    // Once clients leave, newcomers are served again.
    clients.truncate(clients.len() / 2);
    let back = within(async {
        loop {
            match CalcClient::connect(&name).await {
                Ok(client) => break client,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    assert_eq!(within(back.add(5, 6)).await.expect("after recovery"), 11);
}
