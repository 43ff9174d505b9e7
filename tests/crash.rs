//! Crashes and restarts with real processes: a server killed with calls pending, a client
//! killed with handlers running, a client that reconnects to a restarted server, and a
//! restarted server that replaces the socket file its killed predecessor left behind.
//!
//! The other process is this test binary run again in a role (`support::child`).
#![cfg(unix)]

mod support;

use std::time::Duration;

use ferry::{ClientOptions, ErrorKind, Reconnect};
use support::child::{command, run_role, say, ChildProcess};
use support::*;

/// How many calls a child client starts.
const CALLS: &str = "FERRY_CRASH_CALLS";

/// Not a test of its own: the entry point of the child processes. Without a role (a normal
/// test run) it does nothing.
#[test]
fn child_role() {
    run_role(|role, name| async move {
        match role.as_str() {
            "server" => run_server(&name).await,
            "client" => {
                let calls = std::env::var(CALLS)
                    .ok()
                    .and_then(|calls| calls.parse().ok())
                    .unwrap_or(1);
                run_client(&name, calls).await
            }
            other => panic!("unknown child role {other}"),
        }
    });
}

/// Serves Calc on `name`; says `ready`, then `started <tag>` for each `hang` call.
async fn run_server(name: &str) {
    let (service, mut probe) = calc();
    let bound = ferry::Server::new()
        .serve(CalcServer::new(service))
        .bind(name)
        .await
        .expect("child server bind");
    tokio::spawn(bound.run());
    say("ready");
    while let Some(tag) = probe.started.recv().await {
        say(&format!("started {tag}"));
    }
}

/// Connects to `name`, starts `calls` `hang` calls and waits forever.
async fn run_client(name: &str, calls: u64) {
    let calc = CalcClient::connect(name)
        .await
        .expect("child client connect");
    for tag in 0..calls {
        let calc = calc.clone();
        tokio::spawn(async move { calc.hang(tag).await });
    }
    say("calling");
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_every_pending_call_with_closed() {
    let name = unique_name("crash-server");
    let mut server = ChildProcess::server(&name).await;

    let mut calls = tokio::task::JoinSet::new();
    let mut clients = Vec::new();
    for client in 0..3u64 {
        let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
        for call in 0..4u64 {
            let calc = calc.clone();
            calls.spawn(async move { calc.hang(client * 10 + call).await });
        }
        clients.push(calc);
    }
    // The server says `started <tag>` per handler, in any order: wait for all of them.
    server.expect_lines_starting("started ", 12).await;

    server.kill().await;
    // The process is gone: every call must come back, with Closed, within a second.
    let results = tokio::time::timeout(Duration::from_secs(1), async {
        let mut results = Vec::new();
        while let Some(joined) = calls.join_next().await {
            results.push(joined.expect("call task"));
        }
        results
    })
    .await
    .expect("pending calls still waiting 1 s after the server died");
    assert_eq!(results.len(), 12);
    for result in results {
        let err = result.expect_err("a call to a killed server succeeded");
        assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    }
    for calc in &clients {
        assert!(calc.client().is_closed());
        let err = within(calc.add(1, 2)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_client_gets_its_handlers_cancelled_and_its_connection_freed() {
    let (name, server, mut probe) = start_calc().await;
    let mut client = ChildProcess::start({
        let mut client = command("client", &name);
        client.env(CALLS, "5");
        client
    });
    client.expect_line("calling").await;
    let mut started = Vec::new();
    for _ in 0..5 {
        started.push(within(probe.started.recv()).await.unwrap());
    }
    started.sort_unstable();
    assert_eq!(started, [0, 1, 2, 3, 4]);
    assert_eq!(server.connections(), 1);
    assert_eq!(server.active_calls(), 5);

    client.kill().await;
    let mut dropped = Vec::new();
    for _ in 0..5 {
        dropped.push(within(probe.dropped.recv()).await.unwrap());
    }
    dropped.sort_unstable();
    assert_eq!(dropped, [0, 1, 2, 3, 4]);
    eventually("no handler running", || server.active_calls() == 0).await;
    eventually("no connection open", || server.connections() == 0).await;

    // The server goes on serving others.
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    assert_eq!(within(calc.add(2, 3)).await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_client_works_again_after_the_server_restarts() {
    let name = unique_name("crash-restart");
    let mut server = ChildProcess::server(&name).await;

    let policy = Reconnect::new()
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(200));
    let fast = ClientOptions::new().reconnect(policy.clone());
    let waiting = ClientOptions::new().reconnect(policy.wait_while_down(Duration::from_secs(10)));
    let fast = within(CalcClient::connect_with(name.as_str(), &fast))
        .await
        .unwrap();
    let waiting = within(CalcClient::connect_with(name.as_str(), &waiting))
        .await
        .unwrap();
    assert_eq!(within(fast.add(1, 1)).await.unwrap(), 2);
    assert_eq!(within(waiting.add(2, 2)).await.unwrap(), 4);

    // One call in flight on each client when the server dies.
    let in_flight =
        [fast.clone(), waiting.clone()].map(|calc| tokio::spawn(async move { calc.hang(1).await }));
    server.expect_lines_starting("started ", 2).await;
    server.kill().await;
    for call in in_flight {
        // In flight when the connection died: Closed, and not sent again.
        let err = within(call).await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    }

    // While the server is down: the fail-fast client says so at once.
    let err = within(fast.add(1, 2)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(fast.client().is_closed());
    // The waiting client holds its call until the server is back.
    let held = tokio::spawn({
        let waiting = waiting.clone();
        async move { waiting.add(20, 22).await }
    });

    let restarted = ChildProcess::server(&name).await;
    assert_eq!(within(held).await.unwrap().unwrap(), 42);
    assert_eq!(within(add_until_reconnected(&fast)).await, 7);
    assert!(!fast.client().is_closed());
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_replaces_the_socket_file_left_behind() {
    let name = unique_name("crash-stale");
    let mut server = ChildProcess::server(&name).await;
    let address = ferry::transport::ToName::to_name(name.as_str())
        .unwrap()
        .address();
    server.kill().await;
    assert!(
        std::path::Path::new(&address).exists(),
        "a killed server leaves its socket file at {address}"
    );

    let (service, _probe) = calc();
    let bound = within(
        ferry::Server::new()
            .serve(CalcServer::new(service))
            .bind(name.as_str()),
    )
    .await
    .expect("binding over a stale socket file");
    let handle = bound.shutdown_handle();
    let task = tokio::spawn(bound.run());
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    assert_eq!(within(calc.add(5, 6)).await.unwrap(), 11);
    handle.shutdown();
    within(task).await.unwrap().unwrap();
}
