//! Counting ferry's trace events by their message: for tests that must know that a code
//! path ran (a lone caller read its own reply, a reply went to the mailbox, ...).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// A layer that counts the events of ferry's own targets whose message is `message`.
struct CountMessage {
    message: &'static str,
    count: Arc<AtomicUsize>,
}

impl<S: Subscriber> Layer<S> for CountMessage {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.target().starts_with("ferry::") {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _cx: Context<'_, S>) {
        struct Message(&'static str, bool);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" && format!("{value:?}") == self.0 {
                    self.1 = true;
                }
            }
        }
        let mut seen = Message(self.message, false);
        event.record(&mut seen);
        if seen.1 {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Installs the process's global subscriber: it counts ferry's events whose message is
/// `message`. Returns the count. Panics if a global subscriber is set already (one per
/// test binary).
pub fn count_globally(message: &'static str) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountMessage {
        message,
        count: Arc::clone(&count),
    });
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    count
}
