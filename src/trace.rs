//! [`TraceParent`]: a W3C trace context carried across processes as the metadata key
//! `traceparent`, so the server's call span names the trace the client's call belongs to.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use ferry_codec::Metadata;

/// The metadata key a trace context travels under.
pub const TRACEPARENT: &str = "traceparent";

/// A W3C trace context (`traceparent`, version `00`): a 16-byte trace id, the 8-byte id of
/// the caller's span (the parent of the server's), and flags (`01`: sampled).
///
/// Its text form is `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase:
///
/// ```
/// use ferry::TraceParent;
///
/// let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let parent = TraceParent::parse(text).unwrap();
/// assert_eq!(parent.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(parent.to_string(), text);
/// ```
///
/// With [`ClientOptions::propagate_trace`](crate::ClientOptions::propagate_trace) a client
/// sends one with every call that does not carry its own `traceparent` already; ferry
/// makes the ids itself (it does not depend on OpenTelemetry): calls made inside one
/// `tracing` span of the client share a trace id, and each call has a parent id of its own.
/// A program that uses OpenTelemetry puts its own context in the call's metadata instead
/// ([`TraceParent::insert_into`] with its ids).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.parent_id),
            self.flags
        )
    }
}

impl TraceParent {
    /// A context with these ids and flags. `None` when an id is all zeros (invalid in W3C).
    pub fn new(trace_id: [u8; 16], parent_id: [u8; 8], flags: u8) -> Option<TraceParent> {
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Reads the text form (version `00`); `None` when it is not one.
    pub fn parse(text: &str) -> Option<TraceParent> {
        let mut parts = text.split('-');
        let (Some("00"), Some(trace), Some(parent), Some(flags), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let trace_id = unhex::<16>(trace)?;
        let parent_id = unhex::<8>(parent)?;
        let [flags] = unhex::<1>(flags)?;
        TraceParent::new(trace_id, parent_id, flags)
    }

    /// The context in `metadata`'s `traceparent` entry, if it holds a valid one.
    pub fn from_metadata(metadata: &Metadata) -> Option<TraceParent> {
        TraceParent::parse(metadata.get_str(TRACEPARENT)?)
    }

    /// Puts this context in `metadata` as its `traceparent` entry.
    pub fn insert_into(&self, metadata: &mut Metadata) {
        // A constant, valid key.
        let _ = metadata.insert(TRACEPARENT, self.to_string());
    }

    /// The trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The id of the caller's span.
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    /// The id of the caller's span as 16 lowercase hex digits.
    pub fn parent_id_hex(&self) -> String {
        hex(&self.parent_id)
    }

    /// The flags (`0x01`: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// A context for a call made now: the trace id of the current `tracing` span (one per
    /// span, made by ferry; a fresh one outside any span), a new parent id, sampled.
    pub(crate) fn for_call() -> TraceParent {
        let span = tracing::Span::current().id().map(|id| id.into_u64());
        let trace_id = match span {
            // The span id is unique among the live spans of this process; with this
            // process's random key the pair is unique across processes.
            Some(span) => {
                let high = keyed(span, 1).to_be_bytes();
                let low = keyed(span, 2).to_be_bytes();
                let mut id = [0; 16];
                id[..8].copy_from_slice(&high);
                id[8..].copy_from_slice(&low);
                id
            }
            None => {
                let mut id = [0; 16];
                id[..8].copy_from_slice(&random().to_be_bytes());
                id[8..].copy_from_slice(&random().to_be_bytes());
                id
            }
        };
        let parent_id = random().to_be_bytes();
        // All-zero ids are astronomically unlikely; fix them up rather than fail.
        TraceParent::new(trace_id, parent_id, 0x01).unwrap_or(TraceParent {
            trace_id: [1; 16],
            parent_id: [1; 8],
            flags: 0x01,
        })
    }
}

/// 64 bits derived from `value` and this process's random key: the same value gives the same
/// bits for the life of the process.
fn keyed(value: u64, lane: u64) -> u64 {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    let mut hasher = KEY.get_or_init(RandomState::new).build_hasher();
    hasher.write_u64(lane);
    hasher.write_u64(value);
    hasher.finish()
}

/// 64 fresh random-looking bits: a counter through this process's random key.
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    keyed(COUNTER.fetch_add(1, Ordering::Relaxed), 0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse(text).unwrap();
        assert_eq!(parsed.to_string(), text);
        assert_eq!(parsed.parent_id_hex(), "00f067aa0ba902b7");
        assert_eq!(parsed.flags(), 1);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn calls_in_one_span_share_a_trace() {
        let outside = (TraceParent::for_call(), TraceParent::for_call());
        assert_ne!(outside.0.trace_id(), outside.1.trace_id());
        let subscriber = tracing::subscriber::NoSubscriber::default();
        // Without a subscriber spans have no id: a fresh trace each time, still valid.
        tracing::subscriber::with_default(subscriber, || {
            let first = TraceParent::for_call();
            assert_eq!(TraceParent::parse(&first.to_string()), Some(first));
        });
        let mut md = Metadata::new();
        outside.0.insert_into(&mut md);
        assert_eq!(TraceParent::from_metadata(&md), Some(outside.0));
    }
}
