//! Many connections: a burst opened and dropped, and a crowd held open idle.

use std::sync::Arc;
use std::time::Duration;

use ferry::transport::ToName;
use ferry::ServerOptions;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::harness::*;
use crate::support::*;

/// Opens a raw connection, retrying while the listen backlog is full.
async fn open(name: &ferry::Name) -> ferry::transport::Stream {
    let mut attempts = 0;
    loop {
        match ferry::transport::connect(name).await {
            Ok(stream) => return stream,
            Err(err) if attempts < 200 => {
                attempts += 1;
                let _ = err;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(err) => panic!("connect failed 200 times: {err}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_2000_connections_opened_and_dropped() {
    raise_fd_limit();
    let (name, server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let endpoint = name.as_str().to_name().expect("name");
    let gate = Arc::new(Semaphore::new(128));
    let mut burst = JoinSet::new();
    for _ in 0..2000 {
        let endpoint = endpoint.clone();
        let gate = Arc::clone(&gate);
        burst.spawn(async move {
            let _slot = gate.acquire().await.expect("open semaphore");
            drop(open(&endpoint).await);
        });
    }
    while let Some(done) = within(burst.join_next()).await {
        done.expect("connection task");
    }
    steady.wait_for_calls(10).await;
    wait_connections(&server, 1).await;
    let calc = steady.finish().await;
    drop(calc);
    wait_connections(&server, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_clients_held_open() {
    raise_fd_limit();
    let (name, server) = calc_server(ServerOptions::new()).await;
    let steady = Steady::start(&name).await;
    let gate = Arc::new(Semaphore::new(64));
    let mut connecting = JoinSet::new();
    for _ in 0..1000 {
        let name = name.clone();
        let gate = Arc::clone(&gate);
        connecting.spawn(async move {
            let _slot = gate.acquire().await.expect("open semaphore");
            CalcClient::connect(name.as_str()).await
        });
    }
    let mut idle = Vec::with_capacity(1000);
    while let Some(done) = within(connecting.join_next()).await {
        idle.push(done.expect("connect task").expect("idle client connects"));
    }
    assert_eq!(server.connections(), 1001);
    // While they sit there, the server serves.
    steady.wait_for_calls(20).await;
    assert_eq!(
        within(idle[500].add(1, 2))
            .await
            .expect("an idle client calls"),
        3
    );
    drop(idle);
    wait_connections(&server, 1).await;
    let calc = steady.finish().await;
    drop(calc);
    wait_connections(&server, 0).await;
}
