//! Exit codes scripts can rely on, and the failure that carries one.

use ferry::{Error, ErrorKind, StatusCode};

/// The exit code of a failed command (success is 0). Documented in docs/cli.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    /// The server answered the call with an error (its handler failed, it was
    /// overloaded, shutting down, ...).
    Remote = 1,
    /// The command line is wrong.
    Usage = 2,
    /// No connection could be made to the endpoint, it refused us, or the connection was
    /// lost.
    Connect = 3,
    /// The endpoint hosts no such service, or the service has no such method.
    Unknown = 4,
    /// The arguments are not JSON, or not of the method's shape.
    BadArguments = 5,
    /// The server did not answer within `--timeout`.
    Timeout = 6,
    /// Anything else: a protocol violation, a reply that is not JSON, ...
    Other = 7,
    /// Stopped by Ctrl-C.
    Interrupted = 130,
}

/// Why a command failed: the message for stderr and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: Code,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// A ferry error, with what we were doing (`calling Calc.add at myapp.calc`).
    pub(crate) fn ferry(doing: &str, err: &Error) -> Self {
        Failure::new(code_of(err), format!("{doing}: {err:#}"))
    }
}

/// The exit code for a ferry error.
pub(crate) fn code_of(err: &Error) -> Code {
    match err.kind() {
        ErrorKind::Connect
        | ErrorKind::Closed
        | ErrorKind::ShuttingDown
        | ErrorKind::NotAuthorized
        | ErrorKind::ServerIdentity
        | ErrorKind::ServiceMismatch => Code::Connect,
        ErrorKind::DeadlineExceeded => Code::Timeout,
        ErrorKind::Rejected => match err.status() {
            Some(StatusCode::UNKNOWN_METHOD) => Code::Unknown,
            Some(StatusCode::BAD_ARGUMENTS) => Code::BadArguments,
            _ => Code::Remote,
        },
        ErrorKind::Internal | ErrorKind::FrameTooLarge => Code::Remote,
        _ => Code::Other,
    }
}
