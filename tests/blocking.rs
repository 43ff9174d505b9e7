//! The blocking client, from plain threads with no runtime of their own.

mod support;

use std::time::Duration;

use support::{calc, unique_name, CalcBlockingClient, CalcClient, CalcServer, DivError};

/// Runs a Calc server on a runtime of its own thread; returns its name.
fn server_thread() -> String {
    let name = unique_name("blocking");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server_name = name.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let (service, _probe) = calc();
            let bound = ferry::Server::new()
                .serve(CalcServer::new(service))
                .bind(server_name.as_str())
                .await
                .unwrap();
            ready_tx.send(()).unwrap();
            bound.run().await.unwrap();
        });
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    name
}

#[test]
fn blocking_calls_from_plain_threads() {
    let name = server_thread();
    let calc = CalcBlockingClient::connect(name.as_str()).unwrap();
    assert_eq!(calc.add(2, 3).unwrap(), 5);
    assert_eq!(calc.div(1, 0).unwrap(), Err(DivError::DivideByZero));
    let threads: Vec<_> = (0..8i64)
        .map(|i| {
            let calc = calc.clone();
            std::thread::spawn(move || {
                for j in 0..50i64 {
                    assert_eq!(calc.add(i, j).unwrap(), i + j);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let err = calc.boom().unwrap_err();
    assert!(err.is_internal(), "{err:?}");
}

#[test]
fn a_blocking_client_connecting_to_nothing_fails_cleanly() {
    let err = CalcBlockingClient::connect(unique_name("absent").as_str()).unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[test]
fn a_blocking_client_refuses_to_run_inside_a_runtime() {
    let name = server_thread();
    let calc = CalcBlockingClient::connect(name.as_str()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = runtime.block_on(async { calc.add(1, 1) }).unwrap_err();
    assert_eq!(err.kind(), ferry::ErrorKind::Usage);
    // The async client converts both ways on the same connection.
    let calc: CalcClient = calc.into_async();
    let again = calc.blocking();
    assert_eq!(again.add(1, 1).unwrap(), 2);
}
