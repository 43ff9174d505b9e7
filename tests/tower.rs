//! tower layers (feature `tower`): the status each kind of layer error becomes on a server
//! and the error it becomes around a client, reply metadata on ERROR replies, layers around
//! a client's calls (timeout, load shedding, retry with arguments encoded once, metadata),
//! and handles through layers on both sides.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use ferry::tower::{BoxError, CallError, CallRequest, CallResponse, ClientRequest, ClientResponse};
use ferry::{ErrorKind, Handle, Metadata, StatusCode};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use support::{unique_name, within};
use tokio::sync::{mpsc, Notify};
use tower::limit::ConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::timeout::TimeoutLayer;
use tower_layer::Layer;
use tower_service::Service;

/// An argument that counts how often it is encoded, per value: tests run in parallel, so
/// each counts only the value it alone uses.
#[derive(Debug, Deserialize)]
pub struct Counted(pub u64);

static ENCODED: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// How often a `Counted(value)` has been encoded so far.
fn encoded(value: u64) -> usize {
    ENCODED
        .lock()
        .unwrap()
        .iter()
        .filter(|seen| **seen == value)
        .count()
}

impl Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ENCODED.lock().unwrap().push(self.0);
        serializer.serialize_u64(self.0)
    }
}

#[ferry::service]
pub trait Lab {
    /// `n + 1`.
    async fn echo(&self, n: u64) -> u64;
    /// Sleeps `ms`, then returns it.
    async fn slow(&self, ms: u64) -> u64;
    /// Says it started, then waits until the test releases it.
    async fn hold(&self) -> u64;
    /// Reads the handle to its end.
    async fn read_all(&self, handle: Handle) -> String;
    /// A handle to a file holding `text`.
    async fn file_with(&self, text: String) -> Handle;
    /// Returns the argument's value.
    async fn counted(&self, arg: Counted) -> u64;
    /// The request's metadata entry `auth`, or `(none)`.
    async fn auth(&self, cx: &ferry::Context) -> String;
    /// Sets reply metadata `error-id`, then panics.
    async fn fail(&self, cx: &ferry::Context) -> u64;
}

struct LabImpl {
    started: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
}

impl Lab for LabImpl {
    async fn echo(&self, n: u64) -> u64 {
        n + 1
    }

    async fn slow(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    async fn hold(&self) -> u64 {
        let released = self.release.notified();
        let _ = self.started.send(());
        released.await;
        1
    }

    async fn read_all(&self, handle: Handle) -> String {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::from(handle)
            .read_to_string(&mut text)
            .expect("read the handle");
        text
    }

    async fn file_with(&self, text: String) -> Handle {
        Handle::from(file_holding(&text))
    }

    async fn counted(&self, arg: Counted) -> u64 {
        arg.0
    }

    async fn auth(&self, cx: &ferry::Context) -> String {
        cx.metadata().get_str("auth").unwrap_or("(none)").to_owned()
    }

    async fn fail(&self, cx: &ferry::Context) -> u64 {
        cx.set_reply_metadata("error-id", "e-42")
            .expect("reply metadata");
        panic!("the handler fails on purpose");
    }
}

/// A file holding `text`, open for reading from its start (its name is removed).
fn file_holding(text: &str) -> std::fs::File {
    let path = std::env::temp_dir().join(unique_name("tower-file"));
    std::fs::write(&path, text).expect("write a temporary file");
    let file = std::fs::File::open(&path).expect("open the temporary file");
    let _ = std::fs::remove_file(&path);
    file
}

/// The test's view of a running server.
struct Lab_ {
    client: LabClient,
    started: mpsc::UnboundedReceiver<()>,
    release: Arc<Notify>,
}

/// A Lab server with `server`'s layers on one end of a socket pair, a client on the other.
async fn lab(server: ferry::Server) -> Lab_ {
    let (started_tx, started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let service = LabServer::new(LabImpl {
        started: started_tx,
        release: Arc::clone(&release),
    });
    let (a, b) = ferry::transport::pair().expect("a socket pair");
    tokio::spawn(server.serve(service).serve_stream(b));
    let client = within(LabClient::from_stream(a, &ferry::ClientOptions::new()))
        .await
        .expect("client");
    Lab_ {
        client,
        started,
        release,
    }
}

/// A server layer that fails the calls `fail` picks with the error it returns (the call
/// then never reaches the handler), and passes the others on.
#[derive(Clone)]
struct FailSome<S> {
    inner: S,
    fail: fn(&CallRequest) -> Option<BoxError>,
}

impl<S> Service<CallRequest> for FailSome<S>
where
    S: Service<CallRequest, Response = CallResponse, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = CallResponse;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<CallResponse, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: CallRequest) -> Self::Future {
        if let Some(err) = (self.fail)(&request) {
            // The request (and the handles that came with it) is dropped here.
            drop(request);
            return Box::pin(async move { Err(err) });
        }
        Box::pin(self.inner.call(request))
    }
}

struct FailSomeLayer(fn(&CallRequest) -> Option<BoxError>);

impl<S> Layer<S> for FailSomeLayer {
    type Service = FailSome<S>;
    fn layer(&self, inner: S) -> FailSome<S> {
        FailSome {
            inner,
            fail: self.0,
        }
    }
}

fn server_failing(fail: fn(&CallRequest) -> Option<BoxError>) -> ferry::Server {
    ferry::Server::new().layer(FailSomeLayer(fail))
}

#[tokio::test]
async fn a_server_timeout_layer_answers_deadline_exceeded() {
    let lab = lab(ferry::Server::new().layer(TimeoutLayer::new(Duration::from_millis(100)))).await;
    assert_eq!(within(lab.client.echo(1)).await.unwrap(), 2);
    let err = within(lab.client.slow(60_000)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    assert_eq!(err.status(), Some(StatusCode::DEADLINE_EXCEEDED));
    assert!(
        err.to_string()
            .contains("`Lab.slow` did not finish within the server's timeout layer"),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_load_shed_layer_answers_overloaded() {
    // Load shedding outside a limit of one call at a time.
    let server = ferry::Server::new()
        .layer(ConcurrencyLimitLayer::new(1))
        .layer(LoadShedLayer::new());
    let mut lab = lab(server).await;
    let holding = tokio::spawn({
        let client = lab.client.clone();
        async move { client.hold().await }
    });
    within(lab.started.recv()).await.expect("hold started");
    let err = within(lab.client.echo(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    assert_eq!(err.status(), Some(StatusCode::OVERLOADED));
    assert!(
        err.to_string().contains("the server is overloaded"),
        "{err}"
    );
    lab.release.notify_one();
    assert_eq!(within(holding).await.unwrap().unwrap(), 1);
    // The limit has room again.
    assert_eq!(within(lab.client.echo(1)).await.unwrap(), 2);
}

#[tokio::test]
async fn a_call_error_chooses_the_status_and_other_errors_are_internal() {
    let lab = lab(server_failing(|request| match request.method() {
        "echo" => Some(Box::new(CallError::new(
            StatusCode::NOT_AUTHORIZED,
            "no entry",
        ))),
        "slow" => Some(Box::new(std::io::Error::other("disk on fire"))),
        _ => None,
    }))
    .await;
    let err = within(lab.client.echo(1)).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_AUTHORIZED), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotAuthorized);
    assert!(err.to_string().ends_with(": no entry"), "{err}");

    let err = within(lab.client.slow(1)).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::INTERNAL), "{err}");
    assert!(
        err.to_string()
            .contains("a layer of the server failed `Lab.slow`: disk on fire"),
        "{err}"
    );
    // Calls the layer lets through still run.
    assert_eq!(within(lab.client.counted(Counted(5))).await.unwrap(), 5);
}

#[tokio::test]
async fn a_layer_sets_metadata_on_its_error_reply() {
    let lab = lab(server_failing(|request| {
        if request.method() != "echo" {
            return None;
        }
        request
            .context()
            .set_reply_metadata("retry-after", "2")
            .expect("reply metadata");
        Some(Box::new(CallError::new(StatusCode::OVERLOADED, "busy")))
    }))
    .await;
    let err = within(lab.client.echo(1)).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::OVERLOADED));
    let metadata = err.reply_metadata().expect("metadata on the ERROR");
    assert_eq!(metadata.get_str("retry-after"), Some("2"));
}

#[tokio::test]
async fn a_failing_handler_sends_its_reply_metadata_on_the_error() {
    // No layer: the ERROR for a panic carries what the handler set before it.
    let lab = lab(ferry::Server::new()).await;
    let err = within(lab.client.fail()).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::INTERNAL), "{err}");
    assert_eq!(
        err.reply_metadata().and_then(|md| md.get_str("error-id")),
        Some("e-42")
    );
    // An error without metadata has none.
    let lab = lab_with_timeout_layer().await;
    let err = within(lab.client.slow(60_000)).await.unwrap_err();
    assert!(err.reply_metadata().is_none());
}

async fn lab_with_timeout_layer() -> Lab_ {
    lab(ferry::Server::new().layer(TimeoutLayer::new(Duration::from_millis(50)))).await
}

/// A client layer that records each request it sees and retries once a call the server
/// answered `OVERLOADED`.
#[derive(Clone)]
struct RetryOverloaded<S> {
    inner: S,
    seen: Arc<Mutex<Vec<ClientRequest>>>,
}

impl<S> Service<ClientRequest> for RetryOverloaded<S>
where
    S: Service<ClientRequest, Response = ClientResponse, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = ClientResponse;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<ClientResponse, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ClientRequest) -> Self::Future {
        let mut inner = self.inner.clone();
        let seen = Arc::clone(&self.seen);
        Box::pin(async move {
            seen.lock().unwrap().push(request.clone());
            let first = inner.call(request.clone()).await;
            let overloaded = matches!(&first, Err(err)
                if err.downcast_ref::<ferry::Error>().and_then(ferry::Error::status)
                    == Some(StatusCode::OVERLOADED));
            if !overloaded {
                return first;
            }
            seen.lock().unwrap().push(request.clone());
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            inner.call(request).await
        })
    }
}

struct RetryLayer(Arc<Mutex<Vec<ClientRequest>>>);

impl<S> Layer<S> for RetryLayer {
    type Service = RetryOverloaded<S>;
    fn layer(&self, inner: S) -> RetryOverloaded<S> {
        RetryOverloaded {
            inner,
            seen: Arc::clone(&self.0),
        }
    }
}

/// A client layer that adds metadata `auth` to each request.
#[derive(Clone)]
struct AddAuth<S>(S);

impl<S> Service<ClientRequest> for AddAuth<S>
where
    S: Service<ClientRequest, Response = ClientResponse>,
{
    type Response = ClientResponse;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: ClientRequest) -> S::Future {
        request
            .metadata_mut()
            .insert("auth", "token-1")
            .expect("a valid key");
        self.0.call(request)
    }
}

struct AuthLayer;

impl<S> Layer<S> for AuthLayer {
    type Service = AddAuth<S>;
    fn layer(&self, inner: S) -> AddAuth<S> {
        AddAuth(inner)
    }
}

#[tokio::test]
async fn a_client_retry_layer_resends_the_bytes_encoded_once() {
    static FAILED: AtomicUsize = AtomicUsize::new(0);
    // The server refuses the first `counted` call as overloaded.
    let lab = lab(server_failing(|request| {
        (request.method() == "counted" && FAILED.fetch_add(1, Ordering::SeqCst) == 0)
            .then(|| Box::new(CallError::new(StatusCode::OVERLOADED, "busy")) as BoxError)
    }))
    .await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let layered = LabClient::from_client(lab.client.client().layer(RetryLayer(Arc::clone(&seen))));
    let before = encoded(9);
    assert_eq!(within(layered.counted(Counted(9))).await.unwrap(), 9);
    assert_eq!(encoded(9) - before, 1, "encoded once");
    assert_eq!(
        FAILED.load(Ordering::SeqCst),
        2,
        "the server saw two requests"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method_name(), "counted");
    assert_eq!(seen[0].service(), "Lab");
    assert_eq!(seen[0].args(), seen[1].args());
}

#[tokio::test]
async fn client_layers_compose_and_carry_metadata() {
    let lab = lab(ferry::Server::new()).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let plain = lab.client.client().clone();
    // The auth layer is outermost: the retry layer sees the metadata it added.
    let layered = plain.layer(RetryLayer(Arc::clone(&seen))).layer(AuthLayer);
    let typed = LabClient::from_client(layered.clone());
    assert_eq!(within(typed.auth()).await.unwrap(), "token-1");
    assert_eq!(
        seen.lock().unwrap()[0].metadata().get_str("auth"),
        Some("token-1")
    );
    // The handle's own metadata goes with it, and its timeout becomes the request's.
    let md = Metadata::new().with("locale", "fr").unwrap();
    let typed = typed
        .with_metadata(md)
        .with_timeout(Duration::from_secs(30));
    assert_eq!(within(typed.auth()).await.unwrap(), "token-1");
    {
        let seen = seen.lock().unwrap();
        let last = seen.last().unwrap();
        assert_eq!(last.metadata().get_str("locale"), Some("fr"));
        assert_eq!(last.timeout(), Some(Duration::from_secs(30)));
    }
    // Reply metadata comes back through the layers; the plain handle has none of them.
    let (value, _reply): (u64, Metadata) = within(
        layered.call_with_reply_metadata(LAB_SERVICE_INFO.method("echo").unwrap(), &(1u64,)),
    )
    .await
    .unwrap();
    assert_eq!(value, 2);
    let calls = seen.lock().unwrap().len();
    assert_eq!(
        within(LabClient::from_client(plain).auth()).await.unwrap(),
        "(none)"
    );
    assert_eq!(seen.lock().unwrap().len(), calls);
}

#[tokio::test]
async fn a_client_timeout_layer_fails_the_call_as_deadline_exceeded() {
    let lab = lab(ferry::Server::new()).await;
    let layered = LabClient::from_client(
        lab.client
            .client()
            .layer(TimeoutLayer::new(Duration::from_millis(50))),
    );
    assert_eq!(within(layered.echo(1)).await.unwrap(), 2);
    let err = within(layered.slow(60_000)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    assert_eq!(err.status(), Some(StatusCode::DEADLINE_EXCEEDED));
    assert_eq!(
        err.to_string(),
        "`slow` did not finish within the client's timeout layer"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn a_client_load_shed_layer_and_other_layer_errors() {
    let mut lab = lab(ferry::Server::new()).await;
    let layered = LabClient::from_client(
        lab.client
            .client()
            .layer(ConcurrencyLimitLayer::new(1))
            .layer(LoadShedLayer::new()),
    );
    let holding = tokio::spawn({
        let client = layered.clone();
        async move { client.hold().await }
    });
    within(lab.started.recv()).await.expect("hold started");
    let err = within(layered.echo(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    assert_eq!(err.status(), Some(StatusCode::OVERLOADED));
    lab.release.notify_one();
    assert_eq!(within(holding).await.unwrap().unwrap(), 1);

    // An error of its own: kind Middleware, the layer's error as the source.
    let failing = LabClient::from_client(lab.client.client().layer(FailClientLayer));
    let err = within(failing.echo(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Middleware, "{err}");
    assert_eq!(err.to_string(), "`echo` failed in a layer of the client");
    let source = std::error::Error::source(&err).expect("a source");
    assert_eq!(source.to_string(), "no network today");
}

#[derive(Clone)]
struct FailClient;

impl Service<ClientRequest> for FailClient {
    type Response = ClientResponse;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<ClientResponse, std::io::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: ClientRequest) -> Self::Future {
        std::future::ready(Err(std::io::Error::other("no network today")))
    }
}

struct FailClientLayer;

impl<S> Layer<S> for FailClientLayer {
    type Service = FailClient;
    fn layer(&self, _inner: S) -> FailClient {
        FailClient
    }
}

/// A server layer that passes every call on.
#[derive(Clone)]
struct PassThrough<S>(S);

impl<S: Service<CallRequest>> Service<CallRequest> for PassThrough<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: CallRequest) -> S::Future {
        self.0.call(request)
    }
}

struct PassLayer;

impl<S> Layer<S> for PassLayer {
    type Service = PassThrough<S>;
    fn layer(&self, inner: S) -> PassThrough<S> {
        PassThrough(inner)
    }
}

#[tokio::test]
async fn handles_pass_through_layers_on_both_sides() {
    let lab = lab(ferry::Server::new().layer(PassLayer)).await;
    let layered = LabClient::from_client(lab.client.client().layer(AuthLayer));
    for client in [&lab.client, &layered] {
        let text = within(client.read_all(Handle::from(file_holding("sent"))))
            .await
            .unwrap();
        assert_eq!(text, "sent");
        let handle = within(client.file_with("returned".into())).await.unwrap();
        let text = within(lab.client.read_all(handle)).await.unwrap();
        assert_eq!(text, "returned");
    }
}

/// How many descriptors this process has open.
#[cfg(target_os = "linux")]
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_layer_that_drops_a_call_closes_its_handles() {
    let lab = lab(server_failing(|request| {
        (request.method() == "read_all")
            .then(|| Box::new(CallError::new(StatusCode::NOT_AUTHORIZED, "no")) as BoxError)
    }))
    .await;
    // Warm up (the runtime's and the connection's own descriptors).
    assert_eq!(within(lab.client.echo(1)).await.unwrap(), 2);
    let before = open_fds();
    for _ in 0..50 {
        let file = file_holding("refused");
        let err = within(lab.client.read_all(Handle::from(file)))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::NOT_AUTHORIZED), "{err}");
    }
    // The ERROR may be read before the server's side dropped the request: wait (bounded)
    // for the descriptors to be closed.
    let mut now = open_fds();
    for _ in 0..200 {
        if now <= before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        now = open_fds();
    }
    assert!(
        now <= before,
        "descriptors leaked: {before} before, {now} after"
    );
}
