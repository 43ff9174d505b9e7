//! The blocking client, from plain threads with no runtime of their own.

mod support;

use std::time::Duration;

use support::{
    calc, serve_on_thread, unique_name, CalcBlockingClient, CalcClient, CalcServer, DivError,
};

/// A Calc server on a runtime of its own thread; returns its name.
fn server_thread() -> String {
    serve_on_thread(|| ferry::Server::new().serve(CalcServer::new(calc().0)))
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
fn a_blocking_client_has_a_deadline_with_timeout() {
    let name = server_thread();
    let calc = CalcBlockingClient::connect(name.as_str()).unwrap();
    assert_eq!(calc.remaining_ms().unwrap(), None);
    let bounded = calc.with_timeout(Duration::from_secs(30));
    let seen = bounded
        .remaining_ms()
        .unwrap()
        .expect("the deadline travels");
    assert!(seen > 0 && seen <= 30_000, "{seen}");
    // A handler that never ends: the call ends at its deadline.
    let err = calc
        .with_timeout(Duration::from_millis(100))
        .hang(1)
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    // The handle it came from keeps no deadline, and the connection goes on.
    assert_eq!(calc.remaining_ms().unwrap(), None);
    assert_eq!(calc.add(1, 1).unwrap(), 2);
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
