//! Graceful shutdown on the wire (protocol version 2: GOAWAY) and the handler's shutdown
//! signal: calls in flight finish, new calls fail at once as "shutting down, not run" and
//! never run, a version 1 client gets the same answers without a GOAWAY, and a stream that
//! ends on `Context::shutdown` lets the server stop long before its grace period.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ferry::codec::{Frame, FrameKind, Hello, Welcome};
use ferry::transport::ToName;
use ferry::{ErrorKind, FormatId, Server, ServerOptions, StatusCode, Streaming};
use futures::StreamExt;
use support::raw::RawClient;
use support::{start, within};
use tokio::sync::{mpsc, watch};

#[ferry::service]
pub trait Jobs {
    /// Counts the run, reports `tag` as started, waits until the test releases it.
    async fn run(&self, tag: u64) -> u64;
    /// One number every 20 ms, until the server begins to shut down.
    async fn ticks(&self, cx: &ferry::Context) -> Streaming<u64>;
}

struct JobsImpl {
    runs: Arc<AtomicUsize>,
    started: mpsc::UnboundedSender<u64>,
    release: watch::Receiver<bool>,
}

impl Jobs for JobsImpl {
    async fn run(&self, tag: u64) -> u64 {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let _ = self.started.send(tag);
        let mut release = self.release.clone();
        let _ = release.wait_for(|go| *go).await;
        tag
    }

    async fn ticks(&self, cx: &ferry::Context) -> Streaming<u64> {
        let ticks = futures::stream::iter(0u64..).then(|n| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            n
        });
        Streaming::new(ticks.take_until(cx.shutdown()))
    }
}

/// The probes of one server: how many `run` calls ran, which started, and the release.
struct Probes {
    runs: Arc<AtomicUsize>,
    started: mpsc::UnboundedReceiver<u64>,
    release: watch::Sender<bool>,
}

fn jobs() -> (JobsServer<JobsImpl>, Probes) {
    let runs = Arc::new(AtomicUsize::new(0));
    let (started_tx, started) = mpsc::unbounded_channel();
    let (release, release_rx) = watch::channel(false);
    let service = JobsImpl {
        runs: Arc::clone(&runs),
        started: started_tx,
        release: release_rx,
    };
    let probes = Probes {
        runs,
        started,
        release,
    };
    (JobsServer::new(service), probes)
}

/// A long grace period: every test here must finish far sooner.
const GRACE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn new_calls_fail_at_once_unrun_while_calls_in_flight_finish() {
    let (service, mut probes) = jobs();
    let options = ServerOptions::new().shutdown_grace(GRACE);
    let (name, shutdown, serving) = start(Server::with_options(options).serve(service)).await;
    let jobs = within(JobsClient::connect(name.as_str())).await.unwrap();
    let in_flight: Vec<_> = (1..=2)
        .map(|tag| {
            let jobs = jobs.clone();
            tokio::spawn(async move { jobs.run(tag).await })
        })
        .collect();
    let mut started = vec![
        within(probes.started.recv()).await.unwrap(),
        within(probes.started.recv()).await.unwrap(),
    ];
    started.sort_unstable();
    assert_eq!(started, [1, 2]);

    shutdown.shutdown();
    let begun = Instant::now();
    for tag in 3..=6 {
        let err = within(jobs.run(tag)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ShuttingDown, "{err:?}");
        assert!(err.is_shutting_down() && err.is_safe_to_retry(), "{err:?}");
    }
    assert!(
        begun.elapsed() < Duration::from_secs(2),
        "new calls took {:?} to fail",
        begun.elapsed()
    );
    // Still running: the two calls in flight, and nothing else ever ran.
    assert_eq!(shutdown.active_calls(), 2);
    assert_eq!(probes.runs.load(Ordering::SeqCst), 2);

    probes.release.send_replace(true);
    for (call, tag) in in_flight.into_iter().zip(1..) {
        assert_eq!(within(call).await.unwrap().unwrap(), tag);
    }
    within(serving).await.unwrap().unwrap();
    assert!(
        begun.elapsed() < GRACE / 2,
        "the server took {:?} to stop",
        begun.elapsed()
    );
    let err = within(jobs.run(7)).await.unwrap_err();
    assert!(err.is_shutting_down(), "{err:?}");
    assert_eq!(probes.runs.load(Ordering::SeqCst), 2);
    assert!(probes.started.try_recv().is_err());
}

#[tokio::test]
async fn a_stream_that_ends_on_the_shutdown_signal_lets_the_server_stop_early() {
    let (service, _probes) = jobs();
    let options = ServerOptions::new().shutdown_grace(GRACE);
    let (name, shutdown, serving) = start(Server::with_options(options).serve(service)).await;
    let jobs = within(JobsClient::connect(name.as_str())).await.unwrap();
    let mut ticks = within(jobs.ticks()).await.unwrap();
    assert_eq!(within(ticks.next()).await.unwrap().unwrap(), 0);

    shutdown.shutdown();
    let begun = Instant::now();
    // The stream ends cleanly: no error, just its end.
    while let Some(tick) = within(ticks.next()).await {
        tick.expect("a tick, not an error");
    }
    within(serving).await.unwrap().unwrap();
    assert!(
        begun.elapsed() < Duration::from_secs(5),
        "the server took {:?} to stop (grace {GRACE:?})",
        begun.elapsed()
    );
}

/// Connects and says hello for `Jobs` with protocol `version`; returns the Welcome.
async fn raw_client(name: &str, version: u16) -> (RawClient, Welcome) {
    let name = name.to_name().unwrap();
    let stream = within(ferry::transport::connect(&name)).await.unwrap();
    let info = &JOBS_SERVICE_INFO;
    let hello = Hello {
        version,
        format: FormatId::Bincode.as_u8(),
        flags: 0,
        max_frame: 1 << 20,
        signature: info.signature,
        service: info.name.to_owned(),
    };
    RawClient::handshake(stream, &hello).await
}

/// Sends a `run(tag)` request with id `id`.
async fn run(raw: &mut RawClient, id: u64, tag: u64) {
    let mut args = BytesMut::new();
    FormatId::Bincode.encode(&(tag,), &mut args).unwrap();
    raw.send(&Frame::request(id, 0, args.freeze())).await;
}

#[tokio::test]
async fn on_the_wire_goaway_then_shutting_down_replies_then_close() {
    let (service, mut probes) = jobs();
    let options = ServerOptions::new().shutdown_grace(GRACE);
    let (name, shutdown, serving) = start(Server::with_options(options).serve(service)).await;
    let (mut raw, welcome) = raw_client(&name, 2).await;
    assert_eq!(welcome.version, 2);
    run(&mut raw, 5, 50).await;
    assert_eq!(within(probes.started.recv()).await, Some(50));

    shutdown.shutdown();
    let goaway = raw.frame().await;
    assert_eq!(goaway.kind, FrameKind::GOAWAY, "{goaway:?}");
    assert_eq!((goaway.id, goaway.aux), (0, 0));
    assert_eq!(goaway.goaway_last_id().unwrap(), 5);

    // Still read: a new call is answered SHUTTING_DOWN and not run; a PING is answered.
    run(&mut raw, 6, 60).await;
    let refused = raw.frame().await;
    assert_eq!(
        (refused.kind, refused.id, refused.status()),
        (FrameKind::ERROR, 6, StatusCode::SHUTTING_DOWN),
        "{refused:?}"
    );
    raw.send(&Frame::ping(*b"are-you?")).await;
    let pong = raw.frame().await;
    assert_eq!(pong.kind, FrameKind::PONG, "{pong:?}");
    assert_eq!(pong.ping_data().unwrap(), *b"are-you?");

    probes.release.send_replace(true);
    let reply = raw.frame().await;
    assert_eq!(
        (reply.kind, reply.id),
        (FrameKind::RESPONSE, 5),
        "{reply:?}"
    );
    assert_eq!(FormatId::Bincode.decode::<u64>(&reply.body).unwrap(), 50);
    assert_eq!(
        raw.next_frame().await,
        None,
        "the server closes once drained"
    );
    within(serving).await.unwrap().unwrap();
    assert_eq!(probes.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_version_1_client_gets_shutting_down_replies_and_no_goaway() {
    let (service, mut probes) = jobs();
    let options = ServerOptions::new().shutdown_grace(GRACE);
    let (name, shutdown, serving) = start(Server::with_options(options).serve(service)).await;
    let (mut raw, welcome) = raw_client(&name, 1).await;
    assert_eq!(welcome.version, 1);
    run(&mut raw, 1, 10).await;
    assert_eq!(within(probes.started.recv()).await, Some(10));

    shutdown.shutdown();
    run(&mut raw, 2, 20).await;
    let refused = raw.frame().await;
    assert_eq!(
        (refused.kind, refused.id, refused.status()),
        (FrameKind::ERROR, 2, StatusCode::SHUTTING_DOWN),
        "no GOAWAY on version 1: {refused:?}"
    );
    probes.release.send_replace(true);
    let reply = raw.frame().await;
    assert_eq!(
        (reply.kind, reply.id),
        (FrameKind::RESPONSE, 1),
        "{reply:?}"
    );
    assert_eq!(raw.next_frame().await, None);
    within(serving).await.unwrap().unwrap();
    assert_eq!(probes.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn control_frames_on_a_version_1_connection_break_the_protocol() {
    let (service, _probes) = jobs();
    let (name, _shutdown, _serving) = start(Server::new().serve(service)).await;
    for frame in [Frame::ping(*b"12345678"), Frame::goaway(0)] {
        let (mut raw, _) = raw_client(&name, 1).await;
        raw.send(&frame).await;
        let err = raw.frame().await;
        assert_eq!(
            (err.kind, err.id, err.status()),
            (FrameKind::ERROR, 0, StatusCode::PROTOCOL),
            "{err:?}"
        );
        assert_eq!(raw.next_frame().await, None);
    }
}

#[tokio::test]
async fn a_goaway_from_a_client_or_a_ping_of_the_wrong_size_breaks_the_protocol() {
    let (service, _probes) = jobs();
    let (name, _shutdown, _serving) = start(Server::new().serve(service)).await;
    let short_ping = Frame::new(FrameKind::PING, 0, bytes::Bytes::from_static(b"1234"));
    let ping_with_id = Frame {
        id: 3,
        ..Frame::ping(*b"12345678")
    };
    for frame in [Frame::goaway(0), short_ping, ping_with_id] {
        let (mut raw, _) = raw_client(&name, 2).await;
        raw.send(&frame).await;
        let err = raw.frame().await;
        assert_eq!(
            (err.kind, err.id, err.status()),
            (FrameKind::ERROR, 0, StatusCode::PROTOCOL),
            "{frame:?} -> {err:?}"
        );
        assert_eq!(raw.next_frame().await, None);
    }
}

#[tokio::test]
async fn a_pong_that_answers_no_ping_is_ignored() {
    let (service, _probes) = jobs();
    let (name, _shutdown, _serving) = start(Server::new().serve(service)).await;
    let (mut raw, _) = raw_client(&name, 2).await;
    raw.send(&Frame::pong(*b"unasked!")).await;
    raw.send(&Frame::ping(*b"still-up")).await;
    let pong = raw.frame().await;
    assert_eq!(pong.kind, FrameKind::PONG, "{pong:?}");
    assert_eq!(pong.ping_data().unwrap(), *b"still-up");
}
