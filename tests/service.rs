//! End-to-end behaviour of services: calls, concurrency, errors, cancellation, deadlines,
//! shutdown and the handshake checks.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry::{ClientOptions, ErrorKind, FormatId, Server, ServerOptions, StatusCode};
use support::*;

#[ferry::service]
pub trait Greeter {
    async fn hello(&self, name: String) -> String;
}

struct GreeterImpl;
impl Greeter for GreeterImpl {
    async fn hello(&self, name: String) -> String {
        format!("hello, {name}")
    }
}

/// Same wire name as `Calc`, different methods: an "old client" of another version.
#[ferry::service(name = "Calc")]
pub trait CalcV0 {
    async fn add(&self, a: i32, b: i32) -> i32;
}

#[tokio::test]
async fn typed_calls_round_trip() {
    let (name, _server, _probe) = start_calc().await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    assert_eq!(within(calc.add(1, 2)).await.unwrap(), 3);
    assert_eq!(within(calc.div(7, 2)).await.unwrap(), Ok(3));
    assert_eq!(
        within(calc.div(1, 0)).await.unwrap(),
        Err(DivError::DivideByZero)
    );
    assert_eq!(
        within(calc.whoami()).await.unwrap(),
        Some(std::process::id())
    );
}

#[tokio::test]
async fn json_format_round_trips() {
    let (name, _server, _probe) = start_calc().await;
    let options = ClientOptions::new().format(FormatId::Json);
    let calc = within(CalcClient::connect_with(name.as_str(), &options))
        .await
        .unwrap();
    assert_eq!(within(calc.add(40, 2)).await.unwrap(), 42);
    assert_eq!(
        within(calc.div(1, 0)).await.unwrap(),
        Err(DivError::DivideByZero)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_clients_each_get_their_own_replies() {
    // All 256 connect at once: more than the default bound on connections in their handshake
    // (128). The server sheds only connections whose hello has not come, so none of these
    // is refused however slowly it gets to them.
    let (service, _probe) = calc();
    let (name, server, _task) = start(Server::new().serve(CalcServer::new(service))).await;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..256i64 {
        let name = name.clone();
        tasks.spawn(async move {
            let calc = CalcClient::connect(name.as_str()).await?;
            for call in 0..10i64 {
                let got = calc.add(client * 1000, call).await?;
                assert_eq!(got, client * 1000 + call, "client {client} call {call}");
            }
            Ok::<_, ferry::Error>(calc)
        });
    }
    let mut clients = Vec::new();
    while let Some(done) = within(tasks.join_next()).await {
        clients.push(done.expect("task").expect("calls"));
    }
    assert_eq!(clients.len(), 256);
    assert_eq!(server.connections(), 256);
    drop(clients);
    // Connections are released once the clients are gone.
    within(async {
        while server.connections() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn replies_on_one_connection_come_back_out_of_order() {
    let (name, _server, mut probe) = start_calc().await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let slow = {
        let (calc, order) = (calc.clone(), order.clone());
        async move {
            let tag = calc.sleep_then(400, 1).await.unwrap();
            order.lock().unwrap().push(tag);
        }
    };
    let fast = {
        let (calc, order) = (calc.clone(), order.clone());
        let started = &mut probe.started;
        async move {
            // Once the slow call runs on the server, a fast one overtakes it.
            assert_eq!(within(started.recv()).await, Some(1));
            let tag = calc.sleep_then(0, 2).await.unwrap();
            order.lock().unwrap().push(tag);
        }
    };
    within(async { tokio::join!(slow, fast) }).await;
    assert_eq!(*order.lock().unwrap(), vec![2, 1]);
}

#[tokio::test]
async fn a_panicking_handler_yields_internal_and_the_server_goes_on() {
    let (name, _server, _probe) = start_calc().await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    let other = within(CalcClient::connect(name.as_str())).await.unwrap();
    let err = within(calc.boom()).await.unwrap_err();
    assert!(err.is_internal(), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::INTERNAL));
    assert!(support::chain(&err).contains("panicked"), "{err}");
    assert_eq!(within(calc.add(2, 2)).await.unwrap(), 4);
    assert_eq!(within(other.add(3, 3)).await.unwrap(), 6);
}

#[tokio::test]
async fn dropping_a_call_cancels_its_handler() {
    let (name, _server, mut probe) = start_calc().await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    let call = tokio::spawn({
        let calc = calc.clone();
        async move { calc.hang(11).await }
    });
    assert_eq!(within(probe.started.recv()).await, Some(11));
    call.abort();
    assert_eq!(within(probe.dropped.recv()).await, Some(11));
    // The connection is still good.
    assert_eq!(within(calc.add(1, 1)).await.unwrap(), 2);
}

#[tokio::test]
async fn a_client_that_disconnects_gets_its_handlers_cancelled() {
    let (name, server, mut probe) = start_calc().await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    let call = tokio::spawn({
        let calc = calc.clone();
        async move { calc.hang(12).await }
    });
    assert_eq!(within(probe.started.recv()).await, Some(12));
    call.abort();
    drop(calc);
    assert_eq!(within(probe.dropped.recv()).await, Some(12));
    within(async {
        while server.connections() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn deadlines_travel_with_the_request() {
    let (name, _server, mut probe) = start_calc().await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    assert_eq!(within(calc.remaining_ms()).await.unwrap(), None);
    let seen = within(calc.with_timeout(Duration::from_secs(3)).remaining_ms())
        .await
        .unwrap()
        .expect("the handler sees a deadline");
    assert!(seen > 0 && seen <= 3000, "{seen}");

    // A call past its deadline fails on the client and is stopped on the server.
    let err = within(calc.with_timeout(Duration::from_millis(200)).hang(13))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert_eq!(within(probe.started.recv()).await, Some(13));
    assert_eq!(within(probe.dropped.recv()).await, Some(13));

    // Default deadline from the options.
    let options = ClientOptions::new().timeout(Duration::from_millis(100));
    let calc = within(CalcClient::connect_with(name.as_str(), &options))
        .await
        .unwrap();
    let err = within(calc.sleep_then(2000, 1)).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn graceful_shutdown_finishes_calls_in_flight() {
    let (service, mut probe) = calc();
    let (name, shutdown, serving) = start(Server::new().serve(CalcServer::new(service))).await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    let call = tokio::spawn({
        let calc = calc.clone();
        async move { calc.sleep_then(300, 77).await }
    });
    // Shut down once the call runs on the server.
    assert_eq!(within(probe.started.recv()).await, Some(77));
    shutdown.shutdown();
    assert_eq!(within(call).await.unwrap().unwrap(), 77);
    within(serving).await.unwrap().unwrap();
    // The server said GOAWAY: a later call is refused locally as not run.
    let err = within(calc.add(1, 1)).await.unwrap_err();
    assert!(err.is_shutting_down() && err.is_safe_to_retry(), "{err:?}");
    let err = within(CalcClient::connect(name.as_str()))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn shutdown_past_the_grace_period_closes_pending_calls() {
    let (service, mut probe) = calc();
    let options = ServerOptions::new().shutdown_grace(Duration::from_millis(100));
    let (name, shutdown, serving) =
        start(Server::with_options(options).serve(CalcServer::new(service))).await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    let call = tokio::spawn({
        let calc = calc.clone();
        async move { calc.hang(21).await }
    });
    assert_eq!(within(probe.started.recv()).await, Some(21));
    shutdown.shutdown();
    let err = within(call).await.unwrap().unwrap_err();
    // Cut at the end of the grace period: it ran in part, so not safe to retry.
    assert!(err.is_closed() && !err.is_safe_to_retry(), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::CANCELLED), "{err:?}");
    assert_eq!(within(probe.dropped.recv()).await, Some(21));
    within(serving).await.unwrap().unwrap();
}

#[tokio::test]
async fn two_services_share_one_endpoint() {
    let (service, _probe) = calc();
    let (name, _shutdown, _serving) = start(
        Server::new()
            .serve(CalcServer::new(service))
            .serve(GreeterServer::new(GreeterImpl)),
    )
    .await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    let greeter = within(GreeterClient::connect(name.as_str())).await.unwrap();
    assert_eq!(within(calc.add(1, 2)).await.unwrap(), 3);
    assert_eq!(
        within(greeter.hello("ferry".into())).await.unwrap(),
        "hello, ferry"
    );
}

#[tokio::test]
async fn a_client_of_another_service_version_is_refused_per_method() {
    let (name, _server, _probe) = start_calc().await;
    // Connects (the service is there), but its `add` takes and returns i32, not i64: the
    // call fails before it is sent, saying where the two differ.
    let old = within(CalcV0Client::connect(name.as_str())).await.unwrap();
    let err = within(old.add(1, 2)).await.unwrap_err();
    assert!(err.is_incompatible(), "{err:?}");
    let message = support::chain(&err);
    assert!(message.contains("method `add`"), "{message}");
    assert!(message.contains("i32"), "{message}");
    assert!(message.contains("i64"), "{message}");
    // With a strict contract, the difference fails the connect.
    let strict = ferry::ClientOptions::new().strict_contract(true);
    let err = within(CalcV0Client::connect_with(name.as_str(), &strict))
        .await
        .unwrap_err();
    assert!(err.is_service_mismatch(), "{err:?}");

    let err = within(GreeterClient::connect(name.as_str()))
        .await
        .unwrap_err();
    assert!(err.is_service_mismatch(), "{err:?}");
    assert!(
        support::chain(&err).contains("no service `Greeter`"),
        "{err}"
    );
}

#[tokio::test]
async fn connecting_to_nothing_is_a_connect_error() {
    let err = within(CalcClient::connect(unique_name("absent").as_str()))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let err = within(CalcClient::connect("not a valid name!"))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn the_server_rejects_unknown_methods_and_bad_arguments() {
    let (name, _server, _probe) = start_calc().await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    // The same service (name and signature) as a client that knows one method more.
    const METHODS: [&str; 64] = {
        let mut methods = [""; 64];
        methods[63] = "not_on_the_server";
        methods
    };
    static WIDER: ferry::contract::ServiceInfo = ferry::contract::ServiceInfo::new(
        CALC_SERVICE_INFO.name,
        CALC_SERVICE_INFO.canonical,
        &METHODS,
    );
    let unknown = WIDER.method("not_on_the_server").unwrap();
    let err = within(calc.client().call::<_, ()>(unknown, &()))
        .await
        .unwrap_err();
    assert!(err.is_rejected(), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::UNKNOWN_METHOD));

    // `add` wants two i64; send nothing.
    let add = CALC_SERVICE_INFO.method("add").unwrap();
    let err = within(calc.client().call::<_, i64>(add, &()))
        .await
        .unwrap_err();
    assert!(err.is_rejected(), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::BAD_ARGUMENTS));
    // The connection survives both.
    assert_eq!(within(calc.add(5, 5)).await.unwrap(), 10);
}

#[tokio::test]
async fn a_method_of_another_service_is_refused_unsent() {
    let (name, _server, _probe) = start_calc().await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    let hello = GREETER_SERVICE_INFO.method("hello").unwrap();
    let err = within(calc.client().call::<_, String>(hello, &("x",)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{err:?}");
    assert_eq!(
        err.to_string(),
        "method `hello` of service `Greeter` called on a client of service `Calc`; the call was not sent"
    );
    // Same name, other signature: another service too.
    let old_add = CALC_V0_SERVICE_INFO.method("add").unwrap();
    let err = within(calc.client().call::<_, i32>(old_add, &(1, 2)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{err:?}");
    assert_eq!(within(calc.add(1, 1)).await.unwrap(), 2);
}

#[tokio::test]
async fn frames_too_large_fail_the_call_in_both_directions() {
    let (service, _probe) = calc();
    let (name, _shutdown, _serving) = start(
        Server::with_options(ServerOptions::new().max_frame(64 * 1024))
            .serve(CalcServer::new(service)),
    )
    .await;
    let options = ClientOptions::new().max_frame(32 * 1024);
    let calc = within(CalcClient::connect_with(name.as_str(), &options))
        .await
        .unwrap();

    // Request larger than the server accepts: refused before it is sent.
    let err = within(calc.take(bytes::Bytes::from(vec![1u8; 100 * 1024])))
        .await
        .unwrap_err();
    assert!(err.is_frame_too_large(), "{err:?}");
    assert!(support::chain(&err).contains("65536"), "{err}");

    // Reply larger than the client accepts: the server reports it for that call.
    let err = within(calc.blob(40 * 1024)).await.unwrap_err();
    assert!(err.is_frame_too_large(), "{err:?}");
    assert!(support::chain(&err).contains("32768"), "{err}");

    // Both leave the connection usable.
    assert_eq!(within(calc.blob(1000)).await.unwrap().len(), 1000);
    assert_eq!(
        within(calc.take(bytes::Bytes::from(vec![1u8; 1000])))
            .await
            .unwrap(),
        1000
    );
}

#[tokio::test]
async fn a_server_speaking_garbage_is_a_protocol_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let name = ferry::Name::new(&unique_name("garbage")).unwrap();
    let listener =
        ferry::transport::Listener::bind(&name, &ferry::ListenerOptions::default()).unwrap();
    let fake = tokio::spawn(async move {
        let mut stream = listener.accept().await.unwrap();
        let mut hello = [0u8; 16];
        let _ = stream.read(&mut hello).await;
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let err = within(CalcClient::connect(&name)).await.unwrap_err();
    assert!(err.is_protocol(), "{err:?}");
    fake.await.unwrap();
}

/// A `Welcome` whose message is not UTF-8 is malformed (docs/protocol.md, section 2.3):
/// the client reports a protocol violation, not the rejection the status byte names.
#[tokio::test]
async fn a_welcome_with_a_non_utf8_message_is_a_protocol_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let name = ferry::Name::new(&unique_name("welcome-utf8")).unwrap();
    let listener =
        ferry::transport::Listener::bind(&name, &ferry::ListenerOptions::default()).unwrap();
    let fake = tokio::spawn(async move {
        let mut stream = listener.accept().await.unwrap();
        let mut out = bytes::BytesMut::new();
        ferry::codec::Welcome::reject(ferry::codec::HandshakeStatus::SIGNATURE_MISMATCH, 0, "no")
            .encode(&mut out);
        let last = out.len() - 1;
        out[last] = 0xFF;
        stream.write_all(&out).await.unwrap();
        // Until the client hangs up.
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    });
    let err = within(CalcClient::connect(&name)).await.unwrap_err();
    assert!(err.is_protocol(), "{err:?}");
    assert!(
        support::chain(&err).contains("welcome message is not valid UTF-8"),
        "{err:?}"
    );
    within(fake).await.unwrap();
}

#[tokio::test]
async fn pending_calls_fail_at_once_when_the_connection_dies() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that completes the handshake, reads one request and then vanishes.
    let name = ferry::Name::new(&unique_name("vanish")).unwrap();
    let listener =
        ferry::transport::Listener::bind(&name, &ferry::ListenerOptions::default()).unwrap();
    let fake = tokio::spawn(async move {
        let mut stream = listener.accept().await.unwrap();
        let mut buf = bytes::BytesMut::new();
        loop {
            if let Some(_hello) = ferry::codec::Hello::decode(&mut buf).unwrap() {
                break;
            }
            let mut chunk = [0u8; 256];
            let n = stream.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
        }
        let mut out = bytes::BytesMut::new();
        ferry::codec::Welcome {
            version: 1,
            status: ferry::codec::HandshakeStatus::OK,
            format: 0,
            max_frame: ferry::codec::DEFAULT_MAX_FRAME,
            max_in_flight: 64,
            message: String::new(),
            methods: None,
        }
        .encode(&mut out);
        stream.write_all(&out).await.unwrap();
        let mut chunk = [0u8; 256];
        let _ = stream.read(&mut chunk).await;
        drop(stream);
    });
    let calc = within(CalcClient::connect(&name)).await.unwrap();
    let err = within(calc.add(1, 2)).await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    let err = within(calc.add(1, 2)).await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    assert!(calc.client().is_closed());
    fake.await.unwrap();
}

#[tokio::test]
async fn a_pair_serves_without_an_endpoint() {
    let (a, b) = ferry::transport::pair().unwrap();
    let (service, _probe) = calc();
    tokio::spawn(
        Server::new()
            .serve(CalcServer::new(service))
            .serve_stream(a),
    );
    let calc = within(CalcClient::from_stream(b, &ClientOptions::default()))
        .await
        .unwrap();
    assert_eq!(within(calc.add(20, 22)).await.unwrap(), 42);
}

/// The documented canonical signature example (docs/protocol.md, section 7).
#[ferry::service(name = "Calc")]
pub trait DocCalc {
    async fn add(&self, a: i64, b: i64) -> i64;
}

#[test]
fn the_macro_emits_the_documented_canonical_signature() {
    assert_eq!(
        DOC_CALC_SERVICE_INFO.canonical,
        "service Calc { add(i64,i64)->i64; }"
    );
    assert_eq!(DOC_CALC_SERVICE_INFO.signature, 0xd68b_eadf_fe90_afc0);
    assert_eq!(DOC_CALC_SERVICE_INFO.methods, ["add"]);
}

#[tokio::test]
async fn payloads_up_to_the_default_frame_limit_travel() {
    let (name, _server, _probe) = start_calc().await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    for len in [65_536usize, 12 * 1024 * 1024] {
        let got = within(calc.take(bytes::Bytes::from(vec![9u8; len])))
            .await
            .unwrap();
        assert_eq!(got, len);
    }
    // `Vec<u8>` travels element by element (no `serde_bytes`): slower, but whole.
    assert_eq!(within(calc.blob(65_536)).await.unwrap().len(), 65_536);
}

/// A value whose `Serialize` impl fails.
struct Unserializable;
impl serde::Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be serialized",
        ))
    }
}

#[tokio::test]
async fn local_encode_failures_and_bind_conflicts_have_their_own_kinds() {
    let (name, _server, _probe) = start_calc().await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    let add = CALC_SERVICE_INFO.method("add").unwrap();
    let err = within(calc.client().call::<_, i64>(add, &(Unserializable,)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encode, "{err:?}");
    assert!(support::chain(&err).contains("refuses"), "{err}");
    // Nothing was sent for it; the connection goes on.
    assert_eq!(within(calc.add(1, 1)).await.unwrap(), 2);

    // A second server on a live name is refused, and the first keeps serving. Wine does
    // not enforce FILE_FLAG_FIRST_PIPE_INSTANCE (a second first instance succeeds there),
    // so this part runs on Unix and real Windows only.
    if std::env::var_os("FERRY_UNDER_WINE").is_some() {
        return;
    }
    let (service, _probe) = calc_impl();
    let err = Server::new()
        .serve(CalcServer::new(service))
        .bind(name.as_str())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
    assert_eq!(within(calc.add(2, 2)).await.unwrap(), 4);
}

fn calc_impl() -> (CalcImpl, Probe) {
    calc()
}
