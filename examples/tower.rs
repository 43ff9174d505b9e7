//! tower middleware on both sides of a ferry connection. On the server: a logging layer of
//! our own, a concurrency limit and a timeout from the `tower` crate, around every call of
//! a service. Around the client's calls: a timeout and the same kind of logging layer.
//!
//! ```text
//! cargo run --example tower --features tower
//! ```
//!
//! The example checks what it shows (it panics otherwise, and CI runs it): a quick call
//! passes, no more than two calls run at once, a call that outlives the server's timeout
//! fails with `DEADLINE_EXCEEDED` while its handler is stopped, and a call that outlives
//! the client's timeout layer fails on the client.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ferry::tower::{CallRequest, CallResponse, ClientRequest, ClientResponse};
use futures::future::BoxFuture;
use tower::limit::ConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;
use tower_layer::Layer;
use tower_service::Service;

#[ferry::service]
pub trait Jobs {
    /// Returns `n + 1` at once.
    async fn quick(&self, n: u64) -> u64;
    /// Sleeps `ms`, then returns it.
    async fn slow(&self, ms: u64) -> u64;
}

/// Counts the handlers running at once, and the most seen.
#[derive(Default)]
struct JobsImpl {
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Jobs for Arc<JobsImpl> {
    async fn quick(&self, n: u64) -> u64 {
        n + 1
    }

    async fn slow(&self, ms: u64) -> u64 {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        // Counted down even when the timeout drops this future.
        struct Done<'a>(&'a AtomicUsize);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _done = Done(&self.running);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

/// Logs each call with its method, status and duration.
#[derive(Clone)]
struct Log<S>(S);

impl<S> Service<CallRequest> for Log<S>
where
    S: Service<CallRequest, Response = CallResponse>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display + 'static,
{
    type Response = CallResponse;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<CallResponse, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: CallRequest) -> Self::Future {
        let method = request.method();
        let id = request.context().request_id();
        let start = Instant::now();
        let answer = self.0.call(request);
        Box::pin(async move {
            let answer = answer.await;
            let elapsed = start.elapsed();
            match &answer {
                Ok(response) => println!(
                    "[log] call {id} {method}: {} in {elapsed:?}",
                    response.status()
                ),
                Err(err) => println!("[log] call {id} {method}: failed in {elapsed:?}: {err}"),
            }
            answer
        })
    }
}

struct LogLayer;

impl<S> Layer<S> for LogLayer {
    type Service = Log<S>;
    fn layer(&self, inner: S) -> Log<S> {
        Log(inner)
    }
}

/// Logs each call a client makes, with its method, argument size and duration.
#[derive(Clone)]
struct ClientLog<S>(S);

impl<S> Service<ClientRequest> for ClientLog<S>
where
    S: Service<ClientRequest, Response = ClientResponse>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display + 'static,
{
    type Response = ClientResponse;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<ClientResponse, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: ClientRequest) -> Self::Future {
        let method = request.method_name();
        let size = request.args().len();
        let start = Instant::now();
        let answer = self.0.call(request);
        Box::pin(async move {
            let answer = answer.await;
            let elapsed = start.elapsed();
            match &answer {
                Ok(_) => println!("[client] {method} ({size} B of arguments): ok in {elapsed:?}"),
                Err(err) => println!("[client] {method}: failed in {elapsed:?}: {err}"),
            }
            answer
        })
    }
}

struct ClientLogLayer;

impl<S> Layer<S> for ClientLogLayer {
    type Service = ClientLog<S>;
    fn layer(&self, inner: S) -> ClientLog<S> {
        ClientLog(inner)
    }
}

#[tokio::main]
async fn main() -> Result<(), ferry::Error> {
    let jobs = Arc::new(JobsImpl::default());
    // The last layer added is the outermost: log, then the limit, then the timeout (which
    // counts only the time a call runs, not the time it waits for its turn).
    let server = ferry::Server::new()
        .layer(TimeoutLayer::new(Duration::from_millis(300)))
        .layer(ConcurrencyLimitLayer::new(2))
        .layer(LogLayer)
        .serve(JobsServer::new(Arc::clone(&jobs)));
    let (client_end, server_end) = ferry::transport::pair().expect("a socket pair");
    tokio::spawn(server.serve_stream(server_end));
    let client = JobsClient::from_stream(client_end, &ferry::ClientOptions::new()).await?;

    assert_eq!(client.quick(41).await?, 42);

    // Six calls at once: the limit runs two at a time.
    let calls = (0..6).map(|_| {
        let client = client.clone();
        async move { client.slow(50).await }
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result?, 50);
    }
    let peak = jobs.peak.load(Ordering::SeqCst);
    println!("most calls running at once: {peak}");
    assert_eq!(peak, 2, "the concurrency limit holds");

    // A call that outlives the server's timeout fails; its handler is stopped.
    let err = client.slow(5_000).await.unwrap_err();
    println!("the slow call failed: {err:#}");
    assert_eq!(
        err.status(),
        Some(ferry::StatusCode::DEADLINE_EXCEEDED),
        "{err}"
    );
    assert!(err.is_timeout(), "{err}");
    assert_eq!(jobs.running.load(Ordering::SeqCst), 0, "handler stopped");

    // Layers around the client's calls: a timeout inside a logging layer. The typed client
    // is built over the layered untyped one.
    let layered = JobsClient::from_client(
        client
            .client()
            .layer(TimeoutLayer::new(Duration::from_millis(100)))
            .layer(ClientLogLayer),
    );
    assert_eq!(layered.quick(1).await?, 2);
    let err = layered.slow(250).await.unwrap_err();
    println!("the slow call failed on the client: {err}");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.status(), Some(ferry::StatusCode::DEADLINE_EXCEEDED));
    println!("ok");
    Ok(())
}
