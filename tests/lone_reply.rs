//! A lone call (made when no other call waits) has no channel for its reply: when a second
//! call takes the read side back and the connection's task routes the lone call's reply,
//! the reply waits in the connection's mailbox. Checked here: the reply reaches its caller
//! that way; a lone caller dropped before it took its reply leaves nothing behind (the next
//! lone call uses the mailbox again); the connection stays usable. Both runtime flavours.

mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use ferry::Server;
use support::{eventually, unique_name, within};
use tokio::sync::{mpsc, Mutex, Semaphore};

#[ferry::service]
pub trait Gate {
    /// Says `value` has begun, waits for a permit, returns `value`.
    async fn held(&self, value: u64) -> u64;
}

struct GateImpl {
    started: mpsc::UnboundedSender<u64>,
    permits: Arc<Semaphore>,
}

impl Gate for GateImpl {
    async fn held(&self, value: u64) -> u64 {
        let _ = self.started.send(value);
        self.permits.acquire().await.expect("open").forget();
        value
    }
}

const MAILED: &str = "a lone call's reply waits in the mailbox";

/// Polls `call` until the server says `value` has begun.
async fn until_started<F: Future>(
    call: std::pin::Pin<&mut F>,
    started: &Mutex<mpsc::UnboundedReceiver<u64>>,
    value: u64,
) {
    let mut call = call;
    let mut started = started.lock().await;
    let begun = std::future::poll_fn(|cx| {
        assert!(
            call.as_mut().poll(cx).is_pending(),
            "the call finished before its permit"
        );
        started.poll_recv(cx)
    })
    .await;
    assert_eq!(begun, Some(value));
}

/// A lone call `first` whose read side a second call `second` takes back; `first`'s reply
/// is routed by the connection's task while `first` is not polled. Returns `first`'s call
/// future, its reply routed, not yet taken.
async fn scenario(
    client: &GateClient,
    started: &Mutex<mpsc::UnboundedReceiver<u64>>,
    permits: &Semaphore,
    mailed: &AtomicUsize,
    first: u64,
    second: u64,
    keep: bool,
) {
    let before = mailed.load(Ordering::Relaxed);
    let mut lone = pin!(client.held(first));
    // Sent and waiting, alone: it owns the read side (or may claim it).
    until_started(lone.as_mut(), started, first).await;
    let mut other = pin!(client.held(second));
    // The second call: its insertion takes the read side back from the lone caller.
    until_started(other.as_mut(), started, second).await;
    // The lone call's handler waited first: it gets the permit. Not polling the lone call:
    // the connection's task reads its reply and leaves it in the mailbox.
    permits.add_permits(1);
    eventually("the lone call's reply in the mailbox", || {
        mailed.load(Ordering::Relaxed) > before
    })
    .await;
    permits.add_permits(1);
    assert_eq!(within(other).await.expect("second"), second);
    assert_eq!(mailed.load(Ordering::Relaxed), before + 1);
    if keep {
        let reply = std::future::poll_fn(|cx| Poll::Ready(lone.as_mut().poll(cx))).await;
        match reply {
            Poll::Ready(reply) => assert_eq!(reply.expect("first"), first),
            Poll::Pending => panic!("the lone call's reply was not waiting for it"),
        }
    }
    // Else dropped here, its reply untaken.
}

async fn lone_calls(mailed: &AtomicUsize) {
    let (started_tx, started_rx) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(0));
    let name = unique_name("lone-reply");
    let bound = Server::new()
        .serve(GateServer::new(GateImpl {
            started: started_tx,
            permits: Arc::clone(&permits),
        }))
        .bind(name.as_str())
        .await
        .expect("bind");
    tokio::spawn(bound.run());
    let client = within(GateClient::connect(name.as_str()))
        .await
        .expect("connect");
    let started = Mutex::new(started_rx);
    within(async {
        // Taken by its caller from the mailbox.
        scenario(&client, &started, &permits, mailed, 1, 2, true).await;
        // Its caller dropped first: the reply is taken out with it...
        scenario(&client, &started, &permits, mailed, 3, 4, false).await;
        // ...so the next lone call is lone again (else it would wait on a channel and
        // nothing would reach the mailbox).
        scenario(&client, &started, &permits, mailed, 5, 6, true).await;
        // A plain lone call afterwards, read by its caller.
        permits.add_permits(1);
        assert_eq!(client.held(7).await.expect("seventh"), 7);
    })
    .await;
}

#[test]
fn a_lone_call_s_reply_routed_by_the_connection_reaches_it_through_the_mailbox() {
    let mailed = support::events::count_globally(MAILED);
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    multi.block_on(lone_calls(&mailed));
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    current.block_on(lone_calls(&mailed));
}
