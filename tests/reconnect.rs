//! The reconnect option within one process: a server shut down and bound again on the same
//! name, calls made while it is down, and the connection's life tied to the client's.

mod support;

use std::time::Duration;

use ferry::{ClientOptions, ErrorKind, Reconnect, Server};
use support::*;

fn policy() -> Reconnect {
    Reconnect::new()
        .initial_backoff(Duration::from_millis(5))
        .max_backoff(Duration::from_millis(50))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_while_down_fail_fast_or_wait_and_the_client_comes_back() {
    let (service, _probe) = calc();
    let (name, server, task) = start(Server::new().serve(CalcServer::new(service))).await;
    let fast = ClientOptions::new().reconnect(policy());
    let fast = within(CalcClient::connect_with(name.as_str(), &fast))
        .await
        .unwrap();
    let waiting = ClientOptions::new().reconnect(policy().wait_while_down(Duration::from_secs(10)));
    let waiting = within(CalcClient::connect_with(name.as_str(), &waiting))
        .await
        .unwrap();
    assert_eq!(within(fast.add(1, 2)).await.unwrap(), 3);
    assert_eq!(within(waiting.add(1, 2)).await.unwrap(), 3);

    server.shutdown();
    within(task).await.unwrap().unwrap();
    eventually("both clients see the connection closed", || {
        fast.client().is_closed() && waiting.client().is_closed()
    })
    .await;

    // Down: fail fast with Connect (not sent, safe to retry)...
    let err = within(fast.add(1, 2)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(support::chain(&err).contains("not sent"), "{err}");
    // ...or wait, but never past the call's own deadline.
    let err = within(waiting.with_timeout(Duration::from_millis(50)).add(1, 2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    let held = tokio::spawn({
        let waiting = waiting.clone();
        async move { waiting.add(40, 2).await }
    });

    // The same name again, in the same process.
    let (service, _probe) = calc();
    let (again, _task) = start_at(&name, Server::new().serve(CalcServer::new(service))).await;
    assert_eq!(within(held).await.unwrap().unwrap(), 42);
    assert_eq!(within(add_until_reconnected(&fast)).await, 7);
    assert_eq!(again.connections(), 2);
    again.shutdown();
}

#[tokio::test]
async fn dropping_a_reconnecting_client_closes_its_connection() {
    let (name, server, _probe) = start_calc().await;
    let options = ClientOptions::new().reconnect(policy());
    let calc = within(CalcClient::connect_with(name.as_str(), &options))
        .await
        .unwrap();
    let clone = calc.clone();
    assert_eq!(within(calc.add(2, 2)).await.unwrap(), 4);
    assert_eq!(server.connections(), 1);
    drop(calc);
    // A clone keeps it open.
    assert_eq!(within(clone.add(3, 3)).await.unwrap(), 6);
    drop(clone);
    eventually("the server sees the connection closed", || {
        server.connections() == 0
    })
    .await;
}

#[tokio::test]
async fn without_the_option_a_closed_client_stays_closed() {
    let (service, _probe) = calc();
    let (name, server, task) = start(Server::new().serve(CalcServer::new(service))).await;
    let client = within(CalcClient::connect(name.as_str())).await.unwrap();
    assert_eq!(within(client.add(1, 1)).await.unwrap(), 2);
    server.shutdown();
    within(task).await.unwrap().unwrap();
    eventually("the client sees the connection closed", || {
        client.client().is_closed()
    })
    .await;

    let (service, _probe) = calc();
    let (again, _task) = start_at(&name, Server::new().serve(CalcServer::new(service))).await;
    let err = within(client.add(1, 1)).await.unwrap_err();
    // The old server said GOAWAY before closing: the call is refused locally, never sent.
    assert_eq!(err.kind(), ErrorKind::ShuttingDown, "{err}");
    assert!(client.client().is_closed());
    assert_eq!(again.connections(), 0);
    again.shutdown();
}
