//! The server's side of the handshake: deciding whether a [`Hello`] is served.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferry_codec::{FormatId, HandshakeStatus, Hello, Welcome, PROTOCOL_VERSION};
use ferry_transport::PeerCredentials;

use crate::server::Shared;
use crate::service::ServiceDispatch;

/// A hello the server accepted.
pub(crate) struct Accepted {
    pub(crate) service: Arc<dyn ServiceDispatch>,
    pub(crate) format: FormatId,
    pub(crate) version: u16,
}

/// A hello the server refuses, with the status and reason the client is told.
pub(crate) struct Refused {
    pub(crate) status: HandshakeStatus,
    pub(crate) message: String,
}

fn refuse(status: HandshakeStatus, message: String) -> Refused {
    Refused { status, message }
}

/// Checks who the peer is, then version, format, service name and signature, load and
/// shutdown.
pub(crate) fn check(
    shared: &Shared,
    hello: &Hello,
    peer: &PeerCredentials,
) -> Result<Accepted, Refused> {
    // First, so a refused peer learns nothing about the services hosted here.
    if let Err(reason) = shared.options.authorization.check(peer) {
        return Err(refuse(HandshakeStatus::NOT_AUTHORIZED, reason));
    }
    if *shared.shutdown.borrow() {
        return Err(refuse(
            HandshakeStatus::SHUTTING_DOWN,
            "the server is shutting down".into(),
        ));
    }
    // Connections past their handshake, this one included.
    let open = shared
        .connections
        .load(Ordering::SeqCst)
        .saturating_sub(shared.admission.len());
    if open > shared.options.max_connections {
        return Err(refuse(
            HandshakeStatus::SERVER_BUSY,
            format!(
                "the server serves at most {} connections",
                shared.options.max_connections
            ),
        ));
    }
    if hello.version == 0 {
        return Err(refuse(
            HandshakeStatus::UNSUPPORTED_VERSION,
            format!(
                "protocol version 0 is not supported; this server speaks 1 to {PROTOCOL_VERSION}"
            ),
        ));
    }
    let version = hello.version.min(PROTOCOL_VERSION);
    let Some(format) = FormatId::from_u8(hello.format) else {
        return Err(refuse(
            HandshakeStatus::UNSUPPORTED_FORMAT,
            format!(
                "payload format {} is not supported (0 = bincode, 1 = json)",
                hello.format
            ),
        ));
    };
    let Some(service) = shared.services.get(hello.service.as_str()) else {
        let mut hosted: Vec<_> = shared.services.keys().copied().collect();
        hosted.sort_unstable();
        return Err(refuse(
            HandshakeStatus::UNKNOWN_SERVICE,
            format!(
                "no service `{}` here; this endpoint hosts {hosted:?}",
                hello.service
            ),
        ));
    };
    let info = service.info();
    if info.signature != hello.signature {
        return Err(refuse(
            HandshakeStatus::SIGNATURE_MISMATCH,
            format!(
                "service `{}` signature {:#018x} does not match the server's {:#018x}: client and server were built from different versions of the service; the server has `{}`",
                info.name, hello.signature, info.signature, info.canonical
            ),
        ));
    }
    Ok(Accepted {
        service: Arc::clone(service),
        format,
        version,
    })
}

/// The Welcome for an accepted hello.
pub(crate) fn welcome(shared: &Shared, accepted: &Accepted) -> Welcome {
    Welcome {
        version: accepted.version,
        status: HandshakeStatus::OK,
        format: accepted.format.as_u8(),
        max_frame: shared.options.max_frame,
        max_in_flight: u32::try_from(shared.options.max_in_flight).unwrap_or(u32::MAX),
        message: String::new(),
    }
}

/// The Welcome that refuses a client.
pub(crate) fn refusal(shared: &Shared, refused: &Refused) -> Welcome {
    Welcome {
        version: PROTOCOL_VERSION,
        status: refused.status,
        format: 0,
        max_frame: shared.options.max_frame,
        max_in_flight: 0,
        message: refused.message.clone(),
    }
}
