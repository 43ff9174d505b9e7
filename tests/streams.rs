//! Streams in both directions, flow control, cancellation and server push.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry::{ClientOptions, Incoming, Server, StreamSender, Streaming};
use futures::StreamExt;
use support::{serve_on_thread, unique_name, within};
use tokio::sync::mpsc;

#[ferry::service]
pub trait Numbers {
    /// `0..n`.
    async fn count(&self, n: u64) -> ferry::Streaming<u64>;
    /// Counts forever; how many were produced is visible to the test.
    async fn endless(&self) -> ferry::Streaming<u64>;
    /// Adds up the stream.
    async fn sum(&self, label: String, values: ferry::Streaming<u64>) -> (String, u64);
    /// Fails after `n` items.
    async fn failing(&self, n: u64) -> ferry::Streaming<u64>;
}

struct NumbersImpl {
    produced: Arc<AtomicUsize>,
    dropped: mpsc::UnboundedSender<&'static str>,
}

/// Reports on a channel when the server side of a stream is dropped.
struct DropReport(mpsc::UnboundedSender<&'static str>);
impl Drop for DropReport {
    fn drop(&mut self) {
        let _ = self.0.send("endless");
    }
}

impl Numbers for NumbersImpl {
    async fn count(&self, n: u64) -> Streaming<u64> {
        Streaming::from_iter(0..n)
    }

    async fn endless(&self) -> Streaming<u64> {
        let produced = Arc::clone(&self.produced);
        let report = DropReport(self.dropped.clone());
        Streaming::new(futures::stream::iter(0u64..).map(move |n| {
            let _keep = &report;
            produced.fetch_add(1, Ordering::SeqCst);
            n
        }))
    }

    async fn sum(&self, label: String, mut values: Incoming<u64>) -> (String, u64) {
        let mut total = 0;
        while let Some(value) = values.next().await {
            match value {
                Ok(value) => total += value,
                Err(_) => break,
            }
        }
        (label, total)
    }

    async fn failing(&self, n: u64) -> Streaming<u64> {
        // An item the client cannot decode ends the stream with an error there; here the
        // server ends it with an error of its own by panicking after n items.
        Streaming::new(futures::stream::iter(0..=n).map(move |i| {
            if i == n {
                panic!("stream source failed");
            }
            i
        }))
    }
}

async fn start_numbers() -> (
    NumbersClient,
    Arc<AtomicUsize>,
    mpsc::UnboundedReceiver<&'static str>,
) {
    let produced = Arc::new(AtomicUsize::new(0));
    let (dropped_tx, dropped_rx) = mpsc::unbounded_channel();
    let service = NumbersImpl {
        produced: Arc::clone(&produced),
        dropped: dropped_tx,
    };
    let name = unique_name("numbers");
    let bound = Server::new()
        .serve(NumbersServer::new(service))
        .bind(name.as_str())
        .await
        .unwrap();
    tokio::spawn(bound.run());
    let client = within(NumbersClient::connect(name.as_str())).await.unwrap();
    (client, produced, dropped_rx)
}

#[tokio::test]
async fn a_reply_stream_delivers_every_item_in_order() {
    let (client, _, _) = start_numbers().await;
    let items: Vec<u64> = within(async {
        client
            .count(1000)
            .await
            .unwrap()
            .map(|item| item.unwrap())
            .collect()
            .await
    })
    .await;
    assert_eq!(items, (0..1000).collect::<Vec<_>>());
    // The connection still serves plain calls afterwards.
    let empty: Vec<_> = within(client.count(0).await.unwrap().collect::<Vec<_>>()).await;
    assert!(empty.is_empty());
}

#[tokio::test]
async fn a_slow_consumer_holds_the_producer_back() {
    let (client, produced, _) = start_numbers().await;
    let mut stream = within(client.endless()).await.unwrap();
    for expected in 0..10u64 {
        assert_eq!(within(stream.next()).await.unwrap().unwrap(), expected);
    }
    // The consumer pauses after 10 items, fewer than the 16 that renew credit: the
    // producer fills its first window of 32 exactly, and then stops.
    within(async {
        while produced.load(Ordering::SeqCst) < 32 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // A bound for a negative: had the producer not stopped at its window, it would run on
    // far past it in this time (it produces without waiting).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        produced.load(Ordering::SeqCst),
        32,
        "producer ran past its window with 10 items consumed"
    );
    // Consuming more lets it go on.
    for expected in 10..200u64 {
        assert_eq!(within(stream.next()).await.unwrap().unwrap(), expected);
    }
    assert!(produced.load(Ordering::SeqCst) >= 200);
}

#[tokio::test]
async fn dropping_a_stream_cancels_it_on_the_server() {
    let (client, _, mut dropped) = start_numbers().await;
    let mut stream = within(client.endless()).await.unwrap();
    for _ in 0..3 {
        within(stream.next()).await.unwrap().unwrap();
    }
    drop(stream);
    assert_eq!(within(dropped.recv()).await, Some("endless"));
    assert_eq!(within(client.count(3).await.unwrap().count()).await, 3);
}

#[tokio::test]
async fn a_client_stream_argument_arrives_whole() {
    let (client, _, _) = start_numbers().await;
    let (label, total) = within(client.sum("thousand".into(), Streaming::from_iter(1..=1000u64)))
        .await
        .unwrap();
    assert_eq!(label, "thousand");
    assert_eq!(total, 500_500);
    let (_, total) = within(client.sum("none".into(), Streaming::from_iter(Vec::<u64>::new())))
        .await
        .unwrap();
    assert_eq!(total, 0);
}

#[tokio::test]
async fn a_failing_stream_ends_with_an_error() {
    let (client, _, _) = start_numbers().await;
    let mut stream = within(client.failing(5)).await.unwrap();
    for expected in 0..5u64 {
        assert_eq!(within(stream.next()).await.unwrap().unwrap(), expected);
    }
    let err = within(stream.next()).await.unwrap().unwrap_err();
    assert!(err.is_internal(), "{err:?}");
    assert!(within(stream.next()).await.is_none());
}

#[tokio::test]
async fn streams_over_json_work_too() {
    let (a, b) = ferry::transport::pair().unwrap();
    let (dropped, _rx) = mpsc::unbounded_channel();
    let service = NumbersImpl {
        produced: Arc::default(),
        dropped,
    };
    tokio::spawn(
        Server::new()
            .serve(NumbersServer::new(service))
            .serve_stream(a),
    );
    let options = ClientOptions::new().format(ferry::FormatId::Json);
    let client = within(NumbersClient::from_stream(b, &options))
        .await
        .unwrap();
    let items: Vec<u64> = within(
        client
            .count(50)
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect(),
    )
    .await;
    assert_eq!(items.len(), 50);
    let (_, total) = within(client.sum("j".into(), Streaming::from_iter(0..100u64)))
        .await
        .unwrap();
    assert_eq!(total, 4950);
}

#[ferry::service]
pub trait Hub {
    /// Subscribes to everything published from now on.
    async fn subscribe(&self) -> ferry::Streaming<u64>;
    /// Subscribers right now.
    async fn subscribers(&self) -> usize;
    /// Sends `0..n` to every subscriber.
    async fn publish(&self, n: u64);
}

#[derive(Default)]
struct HubImpl {
    subscribers: Mutex<Vec<StreamSender<u64>>>,
}

impl Hub for HubImpl {
    async fn subscribe(&self) -> Streaming<u64> {
        let (sender, stream) = Streaming::channel(16);
        self.subscribers.lock().unwrap().push(sender);
        stream
    }

    async fn subscribers(&self) -> usize {
        self.subscribers.lock().unwrap().len()
    }

    async fn publish(&self, n: u64) {
        let subscribers = self.subscribers.lock().unwrap().clone();
        for value in 0..n {
            for subscriber in &subscribers {
                let _ = subscriber.send(value).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_sub_fans_out_to_a_hundred_clients_in_order() {
    let name = unique_name("hub");
    let bound = Server::new()
        .serve(HubServer::new(HubImpl::default()))
        .bind(name.as_str())
        .await
        .unwrap();
    tokio::spawn(bound.run());
    let mut receivers = Vec::new();
    for _ in 0..100 {
        let client = within(HubClient::connect(name.as_str())).await.unwrap();
        let stream = within(client.subscribe()).await.unwrap();
        receivers.push(tokio::spawn(async move {
            let _client = client;
            stream
                .take(300)
                .map(|item| item.unwrap())
                .collect::<Vec<u64>>()
                .await
        }));
    }
    let publisher = within(HubClient::connect(name.as_str())).await.unwrap();
    within(async {
        while publisher.subscribers().await.unwrap() < 100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    within(publisher.publish(300)).await.unwrap();
    for receiver in receivers {
        let got = within(receiver).await.unwrap();
        assert_eq!(got, (0..300).collect::<Vec<u64>>());
    }
}

#[test]
fn a_blocking_client_iterates_a_stream() {
    let name = serve_on_thread(|| {
        let (dropped, _rx) = mpsc::unbounded_channel();
        let service = NumbersImpl {
            produced: Arc::default(),
            dropped,
        };
        Server::new().serve(NumbersServer::new(service))
    });
    let client = NumbersBlockingClient::connect(name.as_str()).unwrap();
    let items: Vec<u64> = client.count(100).unwrap().map(Result::unwrap).collect();
    assert_eq!(items, (0..100).collect::<Vec<_>>());
    let (_, total) = client
        .sum("b".into(), Streaming::from_iter(1..=10u64))
        .unwrap();
    assert_eq!(total, 55);
}
