//! The metrics a server records through the `metrics` facade (feature `metrics`), read back
//! with a small recorder of this test's own, and the debug line per finished call.
//!
//! One test in this binary: the recorder is global to the process.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ferry::metric;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Recorder,
    SharedString, Unit,
};
use support::within;

#[ferry::service]
pub trait Work {
    async fn ok(&self, n: u32) -> u32;
    async fn boom(&self);
}

struct WorkImpl;

impl Work for WorkImpl {
    async fn ok(&self, n: u32) -> u32 {
        n + 1
    }

    async fn boom(&self) {
        panic!("boom on purpose");
    }
}

/// Every metric by its name and sorted labels (`name{a=1,b=2}`).
#[derive(Default)]
struct Store {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<String, Arc<GaugeCell>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
}

#[derive(Default)]
struct GaugeCell(Mutex<f64>);

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        *self.0.lock().unwrap() += value;
    }
    fn decrement(&self, value: f64) {
        *self.0.lock().unwrap() -= value;
    }
    fn set(&self, value: f64) {
        *self.0.lock().unwrap() = value;
    }
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

struct CounterCell(Arc<AtomicU64>);

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::SeqCst);
    }
}

fn key_text(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|label| format!("{}={}", label.key(), label.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

#[derive(Clone)]
struct TestRecorder(Arc<Store>);

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &metrics::Metadata<'_>) -> Counter {
        let cell = Arc::clone(
            self.0
                .counters
                .lock()
                .unwrap()
                .entry(key_text(key))
                .or_default(),
        );
        Counter::from_arc(Arc::new(CounterCell(cell)))
    }

    fn register_gauge(&self, key: &Key, _: &metrics::Metadata<'_>) -> Gauge {
        let cell = Arc::clone(
            self.0
                .gauges
                .lock()
                .unwrap()
                .entry(key_text(key))
                .or_default(),
        );
        Gauge::from_arc(cell)
    }

    fn register_histogram(&self, key: &Key, _: &metrics::Metadata<'_>) -> Histogram {
        let cell = Arc::clone(
            self.0
                .histograms
                .lock()
                .unwrap()
                .entry(key_text(key))
                .or_default(),
        );
        Histogram::from_arc(cell)
    }
}

impl Store {
    fn counter(&self, key: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |cell| cell.load(Ordering::SeqCst))
    }

    fn gauge(&self, key: &str) -> f64 {
        self.gauges
            .lock()
            .unwrap()
            .get(key)
            .map_or(0.0, |cell| *cell.0.lock().unwrap())
    }

    fn samples(&self, key: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .unwrap()
            .get(key)
            .map_or_else(Vec::new, |cell| cell.0.lock().unwrap().clone())
    }

    /// Waits until `check` holds (the server records after it queued the reply).
    async fn until(&self, what: &str, check: impl Fn(&Store) -> bool) {
        within(async {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(5));
            while !check(self) {
                tick.tick().await;
            }
        })
        .await;
        assert!(check(self), "{what}");
    }
}

#[tokio::test]
async fn a_server_records_calls_errors_latency_connections_and_bytes() {
    let store = Arc::new(Store::default());
    metrics::set_global_recorder(TestRecorder(Arc::clone(&store))).expect("one recorder");

    let (a, b) = ferry::transport::pair().unwrap();
    let server = tokio::spawn(
        ferry::Server::new()
            .serve(WorkServer::new(WorkImpl))
            .serve_stream(b),
    );
    let work = within(WorkClient::from_stream(a, &ferry::ClientOptions::new()))
        .await
        .unwrap();
    let connections = format!("{}{{}}", metric::CONNECTIONS);
    assert_eq!(store.gauge(&connections), 1.0);

    for n in 0..3 {
        assert_eq!(within(work.ok(n)).await.unwrap(), n + 1);
    }
    let err = within(work.boom()).await.unwrap_err();
    assert!(err.is_internal(), "{err}");

    let ok_calls = format!("{}{{method=ok,service=Work}}", metric::CALLS);
    let boom_calls = format!("{}{{method=boom,service=Work}}", metric::CALLS);
    let boom_errors = format!(
        "{}{{method=boom,service=Work,status=INTERNAL}}",
        metric::CALL_ERRORS
    );
    let ok_errors = format!(
        "{}{{method=ok,service=Work,status=INTERNAL}}",
        metric::CALL_ERRORS
    );
    store
        .until("calls counted", |s| {
            s.counter(&ok_calls) == 3 && s.counter(&boom_calls) == 1
        })
        .await;
    assert_eq!(store.counter(&boom_errors), 1);
    assert_eq!(store.counter(&ok_errors), 0);
    let latency = store.samples(&format!(
        "{}{{method=ok,service=Work}}",
        metric::CALL_DURATION
    ));
    assert_eq!(latency.len(), 3);
    assert!(
        latency.iter().all(|s| *s >= 0.0 && *s < 10.0),
        "{latency:?}"
    );

    // Four requests and four replies, each read once and written once in this process
    // (client and server both live here), 16-byte headers at least.
    let received = format!("{}{{}}", metric::BYTES_RECEIVED);
    let sent = format!("{}{{}}", metric::BYTES_SENT);
    store
        .until("bytes counted", |s| {
            s.counter(&received) >= 8 * 16 && s.counter(&sent) >= 8 * 16
        })
        .await;

    drop(work);
    within(server).await.unwrap();
    assert_eq!(store.gauge(&connections), 0.0);
}
