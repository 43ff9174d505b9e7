//! `ferry::dynamic`: calls by method index with JSON values, reply streams, typed errors;
//! and `Client::ping`.

mod support;

use std::time::Duration;

use ferry::dynamic::DynamicClient;
use ferry::{ClientOptions, ErrorKind, StatusCode, Streaming};
use futures::StreamExt;
use serde_json::json;
use support::{start, start_calc, within};

#[ferry::service]
pub trait Counter {
    /// Counts from 0 up to `n` (excluded).
    async fn count(&self, n: u32) -> Streaming<u32>;
}

struct CounterImpl;

impl Counter for CounterImpl {
    async fn count(&self, n: u32) -> Streaming<u32> {
        Streaming::from_iter(0..n)
    }
}

#[tokio::test]
async fn calls_by_index_with_json_values() {
    let (name, _server, _probe) = start_calc().await;
    let calc = within(DynamicClient::connect(
        name.as_str(),
        "Calc",
        &ClientOptions::new(),
    ))
    .await
    .expect("connect");
    let add = calc.method("add").expect("add");
    assert_eq!(
        within(calc.call(add, &json!([40, 2]))).await.unwrap(),
        json!(42)
    );
    let div = calc.method("div").expect("div");
    assert_eq!(
        within(calc.call(div, &json!([1, 0]))).await.unwrap(),
        json!({"Err": "DivideByZero"})
    );
}

#[tokio::test]
async fn errors_are_the_usual_typed_ones() {
    let (name, _server, _probe) = start_calc().await;
    let options = ClientOptions::new();
    let err = within(DynamicClient::connect(name.as_str(), "Nope", &options))
        .await
        .expect_err("no such service");
    assert_eq!(err.kind(), ErrorKind::ServiceMismatch);
    assert!(support::chain(&err).contains("no service `Nope`"), "{err}");
    assert!(support::chain(&err).contains("\"Calc\""), "{err}");

    let calc = within(DynamicClient::connect(name.as_str(), "Calc", &options))
        .await
        .expect("connect");
    let boom = calc.method("boom").unwrap();
    let err = within(calc.call(boom, &json!([]))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    let add = calc.method("add").unwrap();
    let err = within(calc.call(add, &json!(["one", 2])))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_ARGUMENTS));
    // A method the service lacks has no handle to call it with.
    assert!(calc.method("nope").is_none());
}

#[tokio::test]
async fn a_reply_stream_arrives_as_json_values() {
    let (name, _server, _task) =
        start(ferry::Server::new().serve(CounterServer::new(CounterImpl))).await;
    let counter = within(DynamicClient::connect(
        name.as_str(),
        "Counter",
        &ClientOptions::new(),
    ))
    .await
    .expect("connect");
    let count = counter.method("count").expect("count");
    let stream = within(counter.call_streaming(count, &json!([3])))
        .await
        .expect("call");
    let items: Vec<_> = within(stream.collect::<Vec<_>>()).await;
    let items: Vec<_> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(items, [json!(0), json!(1), json!(2)]);
}

#[tokio::test]
async fn ping_measures_a_round_trip_without_a_call() {
    let (name, server, _probe) = start_calc().await;
    let calc = within(support::CalcClient::connect(name.as_str()))
        .await
        .expect("connect");
    for _ in 0..3 {
        let rtt = within(calc.client().ping()).await.expect("pong");
        assert!(rtt < Duration::from_secs(10));
    }
    assert_eq!(server.active_calls(), 0);
}
