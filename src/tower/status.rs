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
            format!("{ferry:#}"),
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
                crate::ErrorChain::new(err.as_ref())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that wraps another, as tower's buffer and other layers do.
    #[derive(Debug)]
    struct Wrapped(BoxError);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(self.0.as_ref())
        }
    }

    fn server(err: BoxError) -> (StatusCode, String) {
        server_reply(&err, "Calc", "add")
    }

    fn tokio_elapsed() -> BoxError {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let elapsed = runtime
            .block_on(async {
                tokio::time::timeout(std::time::Duration::ZERO, std::future::pending::<()>()).await
            })
            .expect_err("a zero timeout elapses");
        Box::new(elapsed)
    }

    #[test]
    fn server_statuses() {
        let chosen = CallError::new(StatusCode::NOT_AUTHORIZED, "no entry");
        assert_eq!(
            server(Box::new(chosen.clone())),
            (StatusCode::NOT_AUTHORIZED, "no entry".to_owned())
        );
        // Found anywhere in the chain.
        assert_eq!(
            server(Box::new(Wrapped(Box::new(chosen)))).0,
            StatusCode::NOT_AUTHORIZED
        );
        let timeouts: [BoxError; 4] = [
            Box::new(tower::timeout::error::Elapsed::new()),
            tokio_elapsed(),
            Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)),
            Box::new(Wrapped(Box::new(tower::timeout::error::Elapsed::new()))),
        ];
        for err in timeouts {
            assert_eq!(
                server(err),
                (
                    StatusCode::DEADLINE_EXCEEDED,
                    "`Calc.add` did not finish within the server's timeout layer".to_owned()
                )
            );
        }
        let (status, message) = server(Box::new(tower::load_shed::error::Overloaded::new()));
        assert_eq!(status, StatusCode::OVERLOADED);
        assert!(message.contains("retry later"), "{message}");
        let ferry = Error::new(ErrorKind::Rejected, "refused").with_status(StatusCode::UNAVAILABLE);
        assert_eq!(
            server(Box::new(ferry)),
            (StatusCode::UNAVAILABLE, "refused".to_owned())
        );
        assert_eq!(
            server(Box::new(Error::new(ErrorKind::Usage, "misused"))).0,
            StatusCode::INTERNAL
        );
        assert_eq!(
            server(Box::new(std::io::Error::other("disk on fire"))),
            (
                StatusCode::INTERNAL,
                "a layer of the server failed `Calc.add`: disk on fire".to_owned()
            )
        );
    }

    #[test]
    fn client_errors() {
        let ferry = Error::new(ErrorKind::Closed, "gone");
        let err = client_error(Box::new(ferry), "add");
        assert_eq!(
            (err.kind(), err.to_string()),
            (ErrorKind::Closed, "gone".into())
        );
        let wrapped = Wrapped(Box::new(Error::new(ErrorKind::Closed, "gone")));
        assert_eq!(
            client_error(Box::new(wrapped), "add").kind(),
            ErrorKind::Closed
        );

        let err = client_error(Box::new(tower::timeout::error::Elapsed::new()), "add");
        assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
        assert_eq!(err.status(), Some(StatusCode::DEADLINE_EXCEEDED));
        assert_eq!(
            err.to_string(),
            "`add` did not finish within the client's timeout layer"
        );
        assert!(client_error(tokio_elapsed(), "add").is_timeout());

        let err = client_error(Box::new(tower::load_shed::error::Overloaded::new()), "add");
        assert_eq!(err.kind(), ErrorKind::Rejected);
        assert_eq!(err.status(), Some(StatusCode::OVERLOADED));

        let chosen = CallError::new(StatusCode::NOT_AUTHORIZED, "no token");
        let err = client_error(Box::new(chosen), "add");
        assert_eq!(err.kind(), ErrorKind::Middleware);
        assert_eq!(err.status(), Some(StatusCode::NOT_AUTHORIZED));
        // The message does not repeat the source's text.
        assert_eq!(err.to_string(), "`add` failed in a layer of the client");
        assert_eq!(
            StdError::source(&err).map(ToString::to_string),
            Some("no token".into())
        );

        let err = client_error(Box::new(std::io::Error::other("no network")), "add");
        assert_eq!(err.kind(), ErrorKind::Middleware);
        assert_eq!(err.status(), None);
    }
}
