//! Trace context across a connection (`ClientOptions::propagate_trace`): the server's
//! `Context` and call span see the client's `traceparent`, and every finished call logs a
//! debug line with its duration and status inside that span.
//!
//! One test in this binary: it installs the process's tracing subscriber.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use ferry::{ClientOptions, Metadata, TraceParent};
use support::within;
use tracing::Instrument;

#[ferry::service]
pub trait Traced {
    /// The trace context the server saw, in its text form.
    async fn seen(&self, cx: &ferry::Context) -> Option<String>;
    /// The same, after yielding once: the handler's first step does not finish it, so it
    /// ends in a task of its own.
    async fn seen_later(&self, cx: &ferry::Context) -> Option<String>;
}

struct TracedImpl;

impl Traced for TracedImpl {
    async fn seen(&self, cx: &ferry::Context) -> Option<String> {
        cx.trace_parent().map(|parent| parent.to_string())
    }

    async fn seen_later(&self, cx: &ferry::Context) -> Option<String> {
        tokio::task::yield_now().await;
        cx.trace_parent().map(|parent| parent.to_string())
    }
}

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits for a line holding every one of `parts` (the server logs after it replied).
    async fn line_with(&self, parts: &[&str]) -> String {
        within(async {
            loop {
                let found = self
                    .text()
                    .lines()
                    .find(|line| parts.iter().all(|part| line.contains(part)))
                    .map(str::to_owned);
                if let Some(line) = found {
                    return line;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
    }
}

#[tokio::test]
async fn the_trace_context_reaches_the_server_span_and_context() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let (a, b) = ferry::transport::pair().unwrap();
    tokio::spawn(
        ferry::Server::new()
            .serve(TracedServer::new(TracedImpl))
            .serve_stream(b),
    );
    let options = ClientOptions::new().propagate_trace(true);
    let traced = within(TracedClient::from_stream(a, &options))
        .await
        .unwrap();

    // Two calls inside one span of the client: one trace, two parent ids.
    let (first, second) = async {
        let first = within(traced.seen())
            .await
            .unwrap()
            .expect("a trace context");
        let second = within(traced.seen())
            .await
            .unwrap()
            .expect("a trace context");
        (first, second)
    }
    .instrument(tracing::info_span!("job"))
    .await;
    let first = TraceParent::parse(&first).expect("valid");
    let second = TraceParent::parse(&second).expect("valid");
    assert_eq!(first.trace_id(), second.trace_id());
    assert_ne!(first.parent_id(), second.parent_id());
    assert_eq!(first.flags(), 1);

    // The call span carries it, and the finished call's line sits in that span.
    let line = logs
        .line_with(&[
            "call finished",
            &format!("trace_id={}", first.trace_id_hex()),
            &format!("parent_id={}", first.parent_id_hex()),
        ])
        .await;
    assert!(line.contains("status=OK (0)"), "{line}");
    assert!(line.contains("duration_us="), "{line}");
    assert!(line.contains("method=\"seen\""), "{line}");
    assert!(line.contains("service=\"Traced\""), "{line}");
    assert!(line.contains("request_id="), "{line}");

    // A handler that waits finishes in its own task, in the same span.
    let later = async { within(traced.seen_later()).await.unwrap() }
        .instrument(tracing::info_span!("job"))
        .await
        .expect("a trace context");
    let later = TraceParent::parse(&later).expect("valid");
    let line = logs
        .line_with(&[
            "call finished",
            "method=\"seen_later\"",
            &format!("trace_id={}", later.trace_id_hex()),
            &format!("parent_id={}", later.parent_id_hex()),
        ])
        .await;
    assert!(line.contains("status=OK (0)"), "{line}");
    assert!(line.contains("request_id="), "{line}");

    // A context of the caller's own is kept, not replaced.
    let own =
        TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    let mut md = Metadata::new();
    own.insert_into(&mut md);
    let seen = within(traced.with_metadata(md).seen()).await.unwrap();
    assert_eq!(seen.as_deref(), Some(own.to_string().as_str()));

    // Without the option, no context travels.
    let (a, b) = ferry::transport::pair().unwrap();
    tokio::spawn(
        ferry::Server::new()
            .serve(TracedServer::new(TracedImpl))
            .serve_stream(b),
    );
    let plain = within(TracedClient::from_stream(a, &ClientOptions::new()))
        .await
        .unwrap();
    assert_eq!(within(plain.seen()).await.unwrap(), None);
}
