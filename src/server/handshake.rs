//! The server's side of the handshake: deciding whether a [`Hello`] is served.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferry_codec::{
    FormatId, HandshakeStatus, Hello, MethodTable, Welcome, METHOD_TABLE_VERSION, PROTOCOL_VERSION,
};
use ferry_transport::{PeerCredentials, ReadHalf, WriteHalf};
use tokio::io::AsyncWriteExt;
use tracing::{debug, warn};

use crate::contract::ServiceDispatch;
use crate::server::admission::{Ticket, SHED_GRACE};
use crate::server::early::EarlyRequests;
use crate::server::{ServerOptions, Shared};
use crate::wire::{read_message, ReadError};

/// Runs the server's side of the handshake: reads the client's Hello (within the handshake
/// timeout, or less when `ticket`, the connection's place among those in their handshake,
/// is shed for a newer one; see [`admission`](crate::server::admission)), then answers with a Welcome or a refusal. Returns the accepted service and
/// the Hello, or `None` when the connection is to be closed (the reason is logged, and the
/// client told when it can be).
pub(crate) async fn accept(
    shared: &Shared,
    peer: &PeerCredentials,
    reader: &mut ReadHalf,
    writer: &mut WriteHalf,
    buf: &mut BytesMut,
    ticket: Option<Ticket>,
) -> Option<(Accepted, Hello)> {
    let timeout = shared.options.handshake_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    // Set once this connection was shed but kept, its hello being here already.
    let mut kept = false;
    let hello = loop {
        let read = {
            let reading_hello =
                tokio::time::timeout_at(deadline, read_message(reader, buf, Hello::decode));
            let shed = async {
                match &ticket {
                    Some(ticket) if !kept => ticket.shed().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                hello = reading_hello => Some(hello),
                () = shed => None,
            }
        };
        if let Some(hello) = read {
            break Some(hello);
        }
        // Shed for a newer connection. A client whose whole hello is in the socket already
        // (one of a burst the server has not got round to) is a real one: it is kept.
        if hello_waiting(reader, buf) {
            debug!("shed, but its hello has come: kept");
            kept = true;
            continue;
        }
        // Else one whose hello is on its way still gets in, within a short grace.
        break match ticket.as_ref().and_then(Ticket::grace) {
            Some(_grace) => tokio::time::timeout(
                SHED_GRACE,
                tokio::time::timeout_at(deadline, read_message(reader, buf, Hello::decode)),
            )
            .await
            .ok(),
            None => None,
        };
    };
    let Some(hello) = hello else {
        let max = shared.options.max_pending_handshakes;
        debug!(max, "shed: too many connections in their handshake");
        let refused = Refused {
            status: HandshakeStatus::SERVER_BUSY,
            message: format!(
                "the server is busy: more than {max} connections are in their handshake"
            ),
        };
        let mut out = BytesMut::new();
        refusal(shared, &refused).encode(&mut out);
        // One attempt, no waiting: this connection's place is needed now.
        let _ = tokio::time::timeout(Duration::ZERO, writer.write_all(&out)).await;
        return None;
    };
    // The handshake's reading part is over: this connection no longer counts as pending.
    drop(ticket);
    let hello = match hello {
        Ok(Ok(Some(hello))) => hello,
        Ok(Ok(None)) => {
            debug!("client left before its handshake");
            return None;
        }
        Err(_) => {
            warn!(?timeout, "handshake not completed in time; closing");
            let message = format!("handshake not completed within {timeout:?}");
            refuse_with(shared, writer, HandshakeStatus::BAD_HELLO, message).await;
            return None;
        }
        Ok(Err(err)) => {
            let message = match &err {
                ReadError::Codec(err) => crate::ErrorChain::new(err).to_string(),
                ReadError::Truncated => "handshake truncated".into(),
                ReadError::Io(err) => crate::ErrorChain::new(err).to_string(),
            };
            warn!(error = %message, "bad handshake; closing");
            refuse_with(shared, writer, HandshakeStatus::BAD_HELLO, message).await;
            return None;
        }
    };
    let mut accepted = match check(shared, &hello, peer) {
        Ok(accepted) => accepted,
        Err(refused) => {
            warn!(
                service = %hello.service,
                status = %refused.status,
                reason = %refused.message,
                "connection refused"
            );
            refuse_with(shared, writer, refused.status, refused.message).await;
            return None;
        }
    };
    accepted.welcome = shared.welcomes.get(&shared.options, &accepted);
    // The Welcome is not written here: the connection queues it in its outbox
    // ([`Accepted::welcome`]), so it leaves in one write with the replies to the early
    // requests already read behind the hello.
    tracing::Span::current().record("service", accepted.service.info().name);
    debug!(
        service = accepted.service.info().name,
        format = accepted.format.name(),
        "handshake done"
    );
    Some((accepted, hello))
}

/// Whether a whole hello has arrived: the bytes read so far (`buf`) and those waiting in
/// the socket, looked at without reading them. `false` when the platform cannot tell.
fn hello_waiting(reader: &ReadHalf, buf: &BytesMut) -> bool {
    // A hello is at most a few hundred bytes (its service name is at most 255).
    let mut waiting = [0u8; 512];
    let Ok(peeked) = reader.peek_now(&mut waiting) else {
        return false;
    };
    let mut whole = BytesMut::with_capacity(buf.len() + peeked);
    whole.extend_from_slice(buf);
    whole.extend_from_slice(&waiting[..peeked]);
    matches!(Hello::decode(&mut whole), Ok(Some(_)))
}

/// Sends a refusing Welcome, best effort: a client that does not read it within a second
/// is not waited for.
async fn refuse_with(
    shared: &Shared,
    writer: &mut WriteHalf,
    status: HandshakeStatus,
    message: String,
) {
    let mut out = BytesMut::new();
    refusal(shared, &Refused { status, message }).encode(&mut out);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer.write_all(&out)).await;
}

/// A hello the server accepted.
pub(crate) struct Accepted {
    /// The encoded accepting Welcome, for the connection to queue first.
    pub(crate) welcome: BytesMut,
    pub(crate) service: Arc<dyn ServiceDispatch>,
    pub(crate) format: FormatId,
    pub(crate) version: u16,
    /// The service's method table, sent in a version 2 Welcome.
    pub(crate) table: Option<Arc<MethodTable>>,
    /// What the connection does with early requests (version 3).
    pub(crate) early: EarlyRequests,
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
fn check(shared: &Shared, hello: &Hello, peer: &PeerCredentials) -> Result<Accepted, Refused> {
    // First, so a refused peer learns nothing about the services hosted here.
    if let Err(reason) = shared
        .options
        .authorization
        .check(peer, shared.own_user.as_ref())
    {
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
    let table = shared.tables.get(info.name).cloned();
    // A version 2 client that binds by name checks each method itself against the table.
    let by_name = version >= METHOD_TABLE_VERSION
        && hello.flags & Hello::BIND_BY_NAME != 0
        && table.is_some();
    if !by_name && info.signature != hello.signature {
        return Err(refuse(
            HandshakeStatus::SIGNATURE_MISMATCH,
            format!(
                "service `{}` signature {:#018x} does not match the server's {:#018x}: client and server were built from different versions of the service; the server has `{}`",
                info.name, hello.signature, info.signature, info.canonical
            ),
        ));
    }
    if by_name && info.signature != hello.signature {
        debug!(
            service = info.name,
            "signatures differ; the client binds its methods by name"
        );
    }
    Ok(Accepted {
        welcome: BytesMut::new(),
        service: Arc::clone(service),
        format,
        version,
        table,
        early: EarlyRequests::for_hello(hello, version, info.signature),
    })
}

/// The accepting Welcome of each service, protocol version and payload format, encoded
/// when the server is made: a handshake copies its bytes instead of cloning the service's
/// method table into a [`Welcome`] and encoding it.
pub(crate) struct Welcomes(HashMap<(&'static str, u16, u8), Bytes>);

impl Welcomes {
    pub(crate) fn new(
        services: &HashMap<&'static str, Arc<dyn ServiceDispatch>>,
        tables: &HashMap<&'static str, Arc<MethodTable>>,
        options: &ServerOptions,
    ) -> Welcomes {
        let formats: Vec<FormatId> = (0..=u8::MAX).filter_map(FormatId::from_u8).collect();
        let mut welcomes = HashMap::new();
        for name in services.keys() {
            for version in 1..=PROTOCOL_VERSION {
                for format in &formats {
                    let welcome = welcome(options, tables.get(name), version, *format);
                    let mut out = BytesMut::new();
                    welcome.encode(&mut out);
                    welcomes.insert((*name, version, format.as_u8()), out.freeze());
                }
            }
        }
        Welcomes(welcomes)
    }

    /// The encoded Welcome for `accepted`.
    fn get(&self, options: &ServerOptions, accepted: &Accepted) -> BytesMut {
        let key = (
            accepted.service.info().name,
            accepted.version,
            accepted.format.as_u8(),
        );
        if let Some(bytes) = self.0.get(&key) {
            return BytesMut::from(&bytes[..]);
        }
        // Every hosted service, version and format is in the map; one that is not is
        // encoded here.
        let mut out = BytesMut::new();
        welcome(
            options,
            accepted.table.as_ref(),
            accepted.version,
            accepted.format,
        )
        .encode(&mut out);
        out
    }
}

/// The Welcome accepting a hello at `version` in `format`, with the service's `table`.
fn welcome(
    options: &ServerOptions,
    table: Option<&Arc<MethodTable>>,
    version: u16,
    format: FormatId,
) -> Welcome {
    Welcome {
        version,
        status: HandshakeStatus::OK,
        format: format.as_u8(),
        max_frame: options.max_frame,
        max_in_flight: u32::try_from(options.max_in_flight).unwrap_or(u32::MAX),
        message: String::new(),
        methods: table.map(|table| MethodTable::clone(table)),
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
        methods: None,
    }
}
