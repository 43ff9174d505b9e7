//! The names of the metrics ferry records through the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`). Install any `metrics` recorder (a Prometheus exporter, for
//! example) and they appear; without one they cost a check of an atomic.
//!
//! | name | type | labels | what |
//! | --- | --- | --- | --- |
//! | `ferry_server_calls_total` | counter | `service`, `method` | calls finished on a server |
//! | `ferry_server_call_errors_total` | counter | `service`, `method`, `status` | calls that ended with an error status (`DEADLINE_EXCEEDED`, ...; the number when unknown) |
//! | `ferry_server_call_duration_seconds` | histogram | `service`, `method` | from a call's REQUEST read to its reply queued (its stream's end, for a stream) |
//! | `ferry_server_connections` | gauge | | connections open on the servers of this process |
//! | `ferry_bytes_received_total` | counter | | frame bytes read after handshakes (headers included), by clients and servers of this process |
//! | `ferry_bytes_sent_total` | counter | | frame bytes written after handshakes |
//!
//! A call the service's dispatch rejects (arguments that do not decode) counts as a call
//! with that error status and a duration of zero; a request refused before it reaches the
//! service (an unknown method index, bad metadata, a duplicate id, a server shutting down)
//! is not counted as a call.

/// Counter: calls finished on a server.
pub const CALLS: &str = "ferry_server_calls_total";
/// Counter: calls that ended with an error status.
pub const CALL_ERRORS: &str = "ferry_server_call_errors_total";
/// Histogram: call durations in seconds.
pub const CALL_DURATION: &str = "ferry_server_call_duration_seconds";
/// Gauge: open server connections.
pub const CONNECTIONS: &str = "ferry_server_connections";
/// Counter: frame bytes read.
pub const BYTES_RECEIVED: &str = "ferry_bytes_received_total";
/// Counter: frame bytes written.
pub const BYTES_SENT: &str = "ferry_bytes_sent_total";
