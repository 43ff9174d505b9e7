//! Per-call metadata in the runtime: what a handler puts in its reply, and how a block is
//! written in front of a frame body and read from one. The map itself and its wire block are
//! the codec's ([`Metadata`]).

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use ferry_codec::{
    flags, CodecError, Frame, Metadata, MetadataError, MetadataLimits, MetadataValue, StatusCode,
    METADATA_VERSION,
};
use tracing::debug;

/// What one call's handler adds to its reply besides the value: metadata, and the status
/// the call ended with (for its log line and metrics).
#[derive(Debug)]
pub(crate) struct ReplyState {
    metadata: Mutex<Metadata>,
    /// Whether `metadata` may hold entries: a reply without any takes no lock.
    has_metadata: AtomicBool,
    limits: MetadataLimits,
    status: AtomicU16,
}

impl ReplyState {
    pub(crate) fn new(limits: MetadataLimits) -> Self {
        ReplyState {
            metadata: Mutex::new(Metadata::new()),
            has_metadata: AtomicBool::new(false),
            limits,
            status: AtomicU16::new(StatusCode::OK.0),
        }
    }

    /// Makes a state no call shares any more as good as new, for the next call.
    pub(crate) fn reset(&mut self) {
        let metadata = self
            .metadata
            .get_mut()
            .unwrap_or_else(|poison| poison.into_inner());
        if !metadata.is_empty() {
            *metadata = Metadata::new();
        }
        *self.has_metadata.get_mut() = false;
        *self.status.get_mut() = StatusCode::OK.0;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Metadata> {
        // A panic while holding this lock leaves a valid map.
        self.metadata
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Sets one entry, unless the map would then exceed the limits.
    pub(crate) fn insert(&self, key: &str, value: MetadataValue) -> Result<(), MetadataError> {
        let mut metadata = self.lock();
        let mut next = metadata.clone();
        next.insert(key, value)?;
        next.check(&self.limits)?;
        *metadata = next;
        self.has_metadata.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Takes the reply metadata (`None` when there is none).
    pub(crate) fn take(&self) -> Option<Metadata> {
        // Set under the lock after an entry is in: unset, there is nothing to take (an
        // entry set meanwhile is as late as one set after the lock was taken).
        if !self.has_metadata.load(Ordering::SeqCst) {
            return None;
        }
        let mut locked = self.lock();
        let metadata = std::mem::take(&mut *locked);
        self.has_metadata.store(false, Ordering::SeqCst);
        drop(locked);
        (!metadata.is_empty()).then_some(metadata)
    }

    /// Records the status the call was answered with.
    pub(crate) fn set_status(&self, status: StatusCode) {
        self.status.store(status.0, Ordering::Relaxed);
    }

    /// The status recorded (OK unless an error was sent).
    pub(crate) fn status(&self) -> StatusCode {
        StatusCode(self.status.load(Ordering::Relaxed))
    }
}

/// The metadata to send on a connection of `version`: `None` when there is none, or when
/// the peer speaks a version without metadata (then it is dropped, with a debug line).
pub(crate) fn for_version(metadata: Option<&Metadata>, version: u16, id: u64) -> Option<&Metadata> {
    let metadata = metadata.filter(|metadata| !metadata.is_empty())?;
    if version < METADATA_VERSION {
        debug!(
            request_id = id,
            entries = metadata.len(),
            version,
            "the peer speaks a protocol version without metadata; metadata not sent"
        );
        return None;
    }
    Some(metadata)
}

/// The flag bits for a frame that carries `metadata`.
pub(crate) fn flag(metadata: Option<&Metadata>) -> u8 {
    if metadata.is_some() {
        flags::METADATA
    } else {
        0
    }
}

/// Writes `metadata`'s block, if any, then `body`: a frame body with metadata in front.
pub(crate) fn encode_with(
    metadata: Option<&Metadata>,
    buf: &mut BytesMut,
    body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    if let Some(metadata) = metadata {
        metadata.encode(buf);
    }
    body(buf)
}

/// An ERROR frame for call `id`, with `metadata`'s block in front of the message when
/// there is metadata to send (flag METADATA, `docs/protocol.md` 8.6).
pub(crate) fn error_frame(
    id: u64,
    status: StatusCode,
    message: &str,
    metadata: Option<&Metadata>,
) -> Frame {
    let mut frame = Frame::error(id, status, message);
    if let Some(metadata) = metadata {
        let mut body = BytesMut::with_capacity(metadata.encoded_len() + message.len());
        metadata.encode(&mut body);
        body.extend_from_slice(message.as_bytes());
        frame.flags |= flags::METADATA;
        frame.body = body.freeze();
    }
    frame
}

/// Queues an ERROR for call `id` on a connection of `version`, carrying the metadata the
/// handler set for its reply (when the connection has metadata), and records `status` as
/// the call's.
pub(crate) fn send_error(
    outbox: &crate::outbox::Outbox,
    version: u16,
    id: u64,
    status: StatusCode,
    message: &str,
    reply: &ReplyState,
) {
    reply.set_status(status);
    let metadata = reply.take();
    let metadata = for_version(metadata.as_ref(), version, id);
    outbox.push_frame_now(&error_frame(id, status, message, metadata));
}

/// Splits `body` (a REQUEST's after its deadline, a RESPONSE's or an ERROR's) into its
/// metadata and the rest, on a connection of `version`: no metadata unless the frame has the
/// flag and the version has metadata.
pub(crate) fn split(
    frame: &Frame,
    body: Bytes,
    version: u16,
    limits: &MetadataLimits,
) -> Result<(Option<Metadata>, Bytes), MetadataError> {
    if version < METADATA_VERSION || !frame.has_flag(flags::METADATA) {
        return Ok((None, body));
    }
    let (metadata, rest) = Metadata::split(&body, limits)?;
    Ok((Some(metadata), rest))
}
