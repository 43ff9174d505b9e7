//! The accept loop awaited on the thread of a runtime's `block_on` (as in `#[tokio::main]`):
//! on a multi-thread runtime it runs as a task of its own, on a current-thread runtime in
//! place. Either way the server serves plain and early connections, its signal stops it,
//! and once `run_until` has returned its name is free again.

mod support;

use ferry::{ClientOptions, Server};
use support::{calc, unique_name, within, CalcClient, CalcServer};
use tokio::sync::oneshot;

fn serve_from_block_on(multi_thread: bool) {
    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .unwrap();
    runtime.block_on(async {
        let name = unique_name("accept-loop");
        let (service, _probe) = calc();
        let bound = within(Server::new().serve(CalcServer::new(service)).bind(&*name))
            .await
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let client_name = name.clone();
        let clients = tokio::spawn(async move {
            for i in 0..20_i64 {
                let early = ClientOptions::new().early_requests(i % 2 == 0);
                let client = CalcClient::connect_with(&*client_name, &early)
                    .await
                    .unwrap();
                assert_eq!(client.add(i, 1).await.unwrap(), i + 1);
            }
            let _ = stop.send(());
        });
        // Awaited right here, on the thread of `block_on`, not in a task.
        within(bound.run_until(stopped)).await.unwrap();
        within(clients).await.unwrap();
        // The listener is gone with the run: the name can be bound again.
        let again = Server::new()
            .serve(CalcServer::new(calc().0))
            .bind(&*name)
            .await;
        assert!(again.is_ok(), "{:?}", again.err());
    });
}

#[test]
fn multi_thread_block_on_serves_and_stops() {
    serve_from_block_on(true);
}

#[test]
fn current_thread_block_on_serves_and_stops() {
    serve_from_block_on(false);
}
