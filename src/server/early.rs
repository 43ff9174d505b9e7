//! Early requests (protocol version 3): calls a client sent right behind its hello, before
//! it read the Welcome. They carry the client's own method indices, so the server runs them
//! only when those indices are certainly its own: when the hello's signature equals the
//! service's. Otherwise each is answered `EARLY_REJECTED` (not run), and the client sends it
//! again as a REQUEST with the index it then reads from the method table.

use std::sync::Arc;

use ferry_codec::{Frame, FrameKind, Hello, StatusCode, EARLY_REQUEST_VERSION};
use tracing::debug;

use crate::budget::Held;
use crate::engine::{Role, Stop};
use crate::server::connection::{Connection, ServerRole};

/// What a connection does with the EARLY_REQUEST frames it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EarlyRequests {
    /// The hello did not announce early requests, or the connection's version has none:
    /// the frames are skipped like any unknown ignorable kind.
    Skip,
    /// The hello's signature is the service's: each is served as the REQUEST it contains.
    Run,
    /// The signatures differ (the client binds by name): each is answered
    /// `EARLY_REJECTED`, not run.
    Reject,
}

impl EarlyRequests {
    /// The rule for a connection of `version` whose client sent `hello`, for a service
    /// whose signature is `signature`.
    pub(crate) fn for_hello(hello: &Hello, version: u16, signature: u64) -> EarlyRequests {
        if version < EARLY_REQUEST_VERSION || hello.flags & Hello::EARLY == 0 {
            EarlyRequests::Skip
        } else if hello.signature == signature {
            EarlyRequests::Run
        } else {
            EarlyRequests::Reject
        }
    }
}

/// Handles one EARLY_REQUEST frame on a served connection.
pub(crate) async fn on_early_request(
    connection: &Arc<Connection>,
    mut frame: Frame,
    held: Held,
) -> Result<(), Stop> {
    match connection.role.early {
        EarlyRequests::Skip => {
            debug!(
                request_id = frame.id,
                "skipped an early request the hello did not announce"
            );
            Ok(())
        }
        EarlyRequests::Run => {
            frame.kind = FrameKind::REQUEST;
            ServerRole::on_request(connection, frame, held).await
        }
        EarlyRequests::Reject => {
            if frame.id == 0 {
                return Err(Stop::violation(
                    "EARLY_REQUEST with request id 0, which is reserved for the connection",
                ));
            }
            debug!(
                request_id = frame.id,
                method = frame.aux,
                "early request not run: the client's signature differs, so may its indices"
            );
            connection.send_error(
                frame.id,
                StatusCode::EARLY_REJECTED,
                "early request not run: the client's service signature differs from the server's; send it again with the method table's index",
            );
            Ok(())
        }
    }
}
