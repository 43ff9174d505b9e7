//! What a finished call and a connection report: a debug line per finished call (always),
//! and, with the `metrics` feature, counters, gauges and histograms through the
//! [`metrics`](https://docs.rs/metrics) facade (see the crate docs for their names).

use std::time::Duration;

use ferry_codec::StatusCode;
use tracing::debug;

/// Whether a call's duration is wanted at its end: by the metrics, or by its debug line
/// (a subscriber at debug level, or, when tracing's events go to the `log` crate, a logger
/// at debug level). A call reads the clock at its start only then (or for its deadline).
pub(crate) fn wants_duration() -> bool {
    cfg!(feature = "metrics")
        || tracing::level_enabled!(tracing::Level::DEBUG)
        || log::max_level() >= log::LevelFilter::Debug
}

/// A call ended with `status`; `elapsed` gives the time from its REQUEST to its last reply
/// frame queued, when the clock was read at its start (see [`wants_duration`]). Logged at
/// debug level in the call's span; `elapsed` is called only when the line or the metrics
/// use it.
pub(crate) fn call_finished(
    service: &'static str,
    method: &'static str,
    status: StatusCode,
    elapsed: impl Fn() -> Option<Duration>,
) {
    // Read once for both.
    #[cfg(feature = "metrics")]
    let elapsed = {
        let elapsed = elapsed();
        move || elapsed
    };
    debug!(
        service,
        method,
        %status,
        duration_us = elapsed().map(|elapsed| u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)),
        "call finished"
    );
    #[cfg(feature = "metrics")]
    measure::call_finished(service, method, status, elapsed().unwrap_or_default());
}

/// A connection was accepted (`open` true) or closed, on a server.
pub(crate) fn connection(open: bool) {
    #[cfg(feature = "metrics")]
    measure::connection(open);
    #[cfg(not(feature = "metrics"))]
    let _ = open;
}

/// `bytes` were read from a peer.
pub(crate) fn bytes_received(bytes: usize) {
    #[cfg(feature = "metrics")]
    measure::bytes_received(bytes);
    #[cfg(not(feature = "metrics"))]
    let _ = bytes;
}

/// `bytes` were written to a peer.
pub(crate) fn bytes_sent(bytes: usize) {
    #[cfg(feature = "metrics")]
    measure::bytes_sent(bytes);
    #[cfg(not(feature = "metrics"))]
    let _ = bytes;
}

#[cfg(feature = "metrics")]
mod measure {
    use std::time::Duration;

    use ferry_codec::StatusCode;

    pub(super) fn call_finished(
        service: &'static str,
        method: &'static str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        metrics::counter!(crate::metric::CALLS, "service" => service, "method" => method)
            .increment(1);
        if status != StatusCode::OK {
            metrics::counter!(
                crate::metric::CALL_ERRORS,
                "service" => service,
                "method" => method,
                "status" => status_name(status),
            )
            .increment(1);
        }
        metrics::histogram!(
            crate::metric::CALL_DURATION,
            "service" => service,
            "method" => method
        )
        .record(elapsed.as_secs_f64());
    }

    pub(super) fn connection(open: bool) {
        let gauge = metrics::gauge!(crate::metric::CONNECTIONS);
        if open {
            gauge.increment(1.0);
        } else {
            gauge.decrement(1.0);
        }
    }

    pub(super) fn bytes_received(bytes: usize) {
        metrics::counter!(crate::metric::BYTES_RECEIVED).increment(bytes as u64);
    }

    pub(super) fn bytes_sent(bytes: usize) {
        metrics::counter!(crate::metric::BYTES_SENT).increment(bytes as u64);
    }

    /// The status's name as a label (`DEADLINE_EXCEEDED`), or its number when unknown.
    fn status_name(status: StatusCode) -> String {
        if status.is_known() {
            status.name().to_owned()
        } else {
            status.0.to_string()
        }
    }
}
