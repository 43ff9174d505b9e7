//! The status a call is answered with when a layer of a server's stack fails it, and the
//! [`Error`](crate::Error) a client call gets when a layer around the client fails it (the
//! table is in the docs of [`ferry::tower`](crate::tower#errors-of-layers)).

use std::error::Error as StdError;

use ferry_codec::StatusCode;

use super::{BoxError, CallError};
use crate::error::{Error, ErrorKind};

/// What a layer's error stands for.
enum Cause<'a> {
    /// A layer chose the status and message.
    Chosen(&'a CallError),
    /// A ferry error (from the service under the layer, or made by a layer).
    Ferry(&'a Error),
    /// A timeout layer's time ran out.
    TimedOut,
    /// A load-shedding layer refused the call.
    Overloaded,
    /// Something else.
    Other,
}

/// The first error in `err`'s `source()` chain that ferry knows how to answer.
fn cause<'a>(err: &'a (dyn StdError + 'static)) -> Cause<'a> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(err) = current {
        if let Some(chosen) = err.downcast_ref::<CallError>() {
            return Cause::Chosen(chosen);
        }
        if let Some(ferry) = err.downcast_ref::<Error>() {
            return Cause::Ferry(ferry);
        }
        if err.is::<tower::timeout::error::Elapsed>()
            || err.is::<tokio::time::error::Elapsed>()
            || err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return Cause::TimedOut;
        }
        if err.is::<tower::load_shed::error::Overloaded>() {
            return Cause::Overloaded;
        }
        current = err.source();
    }
    Cause::Other
}

/// The status and message a client receives for a call of `service.method` that the
/// server's stack failed with `err`.
pub(crate) fn server_reply(err: &BoxError, service: &str, method: &str) -> (StatusCode, String) {
    match cause(err.as_ref()) {
        Cause::Chosen(chosen) => (chosen.status(), chosen.to_string()),
        Cause::Ferry(ferry) => (
            ferry.status().unwrap_or(StatusCode::INTERNAL),
            ferry.to_string(),
        ),
        Cause::TimedOut => (
            StatusCode::DEADLINE_EXCEEDED,
            format!("`{service}.{method}` did not finish within the server's timeout layer"),
        ),
        Cause::Overloaded => (
            StatusCode::OVERLOADED,
            format!("the server is overloaded: `{service}.{method}` was not run; retry later"),
        ),
        Cause::Other => (
            StatusCode::INTERNAL,
            format!(
                "a layer of the server failed `{service}.{method}`: {}",
                crate::error::chain(err.as_ref())
            ),
        ),
    }
}

/// The error of a client call that a layer around the client failed with `err`.
pub(crate) fn client_error(err: BoxError, method: &str) -> Error {
    let err = match err.downcast::<Error>() {
        Ok(ferry) => return *ferry,
        Err(err) => err,
    };
    let (kind, status, message) = match cause(err.as_ref()) {
        // A ferry error wrapped by a layer: the call failed with it.
        Cause::Ferry(ferry) => return ferry.duplicate(),
        Cause::Chosen(chosen) => (
            ErrorKind::Middleware,
            Some(chosen.status()),
            format!("`{method}` failed in a layer of the client"),
        ),
        Cause::TimedOut => (
            ErrorKind::DeadlineExceeded,
            Some(StatusCode::DEADLINE_EXCEEDED),
            format!("`{method}` did not finish within the client's timeout layer"),
        ),
        Cause::Overloaded => (
            ErrorKind::Rejected,
            Some(StatusCode::OVERLOADED),
            format!("`{method}` was not sent: a load-shedding layer of the client refused it"),
        ),
        Cause::Other => (
            ErrorKind::Middleware,
            None,
            format!("`{method}` failed in a layer of the client"),
        ),
    };
    let err = Error::new(kind, message).with_boxed_source(err);
    match status {
        Some(status) => err.with_status(status),
        None => err,
    }
}
