//! [`HandleFrames`]: a connection's side of passing handles with frames (protocol version
//! 3, `docs/protocol.md` 8.4).
//!
//! - **Sending**: a payload is encoded inside [`scope::encoding`]; when it met handles,
//!   the frame gets the HANDLES flag and the handle trailer, and (Unix) the descriptors are
//!   queued on the write half, tied to the frame's first byte, which the write half then
//!   sends in one `sendmsg` with them.
//! - **Receiving**: the read half keeps the descriptors of each read with that read's byte
//!   range. Descriptors received with a read belong to the first frame that begins within
//!   that read (the sender sends them with that frame's first byte, and the kernel never
//!   lets a read run into bytes sent with descriptors). When a frame is read, every
//!   read that began at or before its first byte gives up its descriptors: a read that
//!   ended before the frame began brought descriptors with no frame, a protocol violation.
//!
//! Every check failing (descriptors with no frame, truncated control data, a count that
//! does not match, the flag on a frame kind that cannot carry handles or on a version 2
//! connection) is a protocol violation: the connection closes and every descriptor that
//! came is closed with it.

use bytes::BytesMut;
use ferry_codec::{
    append_handle_trailer, flags, split_handle_trailer, CodecError, Frame, FrameKind,
    HANDLES_VERSION,
};

use super::{scope, Handle};

/// What a read gave up for one frame: the frame's first byte position and the
/// descriptors of the reads that began at or before it.
#[derive(Debug, Default)]
pub(crate) struct Incoming {
    #[cfg(unix)]
    pub(crate) start: u64,
    #[cfg(unix)]
    pub(crate) batches: Vec<ferry_transport::handles::ReceivedHandles>,
}

/// A connection's handle passing.
#[derive(Debug)]
pub(crate) struct HandleFrames {
    version: u16,
    #[cfg(unix)]
    queue: ferry_transport::handles::HandleQueue,
}

impl HandleFrames {
    /// Handle passing for a connection of protocol `version`.
    pub(crate) fn new(version: u16) -> Self {
        HandleFrames {
            version,
            #[cfg(unix)]
            queue: Default::default(),
        }
    }

    /// Whether this connection carries handles.
    fn enabled(&self) -> bool {
        self.version >= HANDLES_VERSION
    }

    /// Sets up the write half to send handles (before it writes its first frame).
    pub(crate) fn attach_writer(&self, writer: &mut ferry_transport::WriteHalf) {
        #[cfg(unix)]
        if self.enabled() {
            writer.send_handles(self.queue.clone());
        }
        #[cfg(not(unix))]
        let _ = writer;
    }

    /// Sets up the read half to receive handles.
    pub(crate) fn attach_reader(&self, reader: &mut ferry_transport::ReadHalf) {
        #[cfg(unix)]
        if self.enabled() {
            reader.receive_handles();
        }
        #[cfg(not(unix))]
        let _ = reader;
    }

    /// Runs `encode`, which appends one whole frame to `buf` (or nothing, failing), with
    /// the handles of its payload passed along. `position` is the byte position, in the
    /// connection's frame stream, of the end of `buf` (where the frame begins).
    pub(crate) fn encode_frame(
        &self,
        buf: &mut BytesMut,
        position: u64,
        max_frame: u32,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
    ) -> Result<(), CodecError> {
        if !self.enabled() {
            let reason = format!(
                "cannot send a ferry::Handle: the connection speaks protocol version {}, and \
                 handles need version {HANDLES_VERSION}",
                self.version
            );
            return scope::refusing(reason, || encode(buf));
        }
        let start = buf.len();
        let (encoded, handles) = scope::encoding(|| encode(&mut *buf));
        encoded?;
        if handles.is_empty() {
            return Ok(());
        }
        if let Err(err) = append_handle_trailer(buf, start, handles.len(), &[], max_frame) {
            buf.truncate(start);
            return Err(err);
        }
        #[cfg(unix)]
        self.queue
            .attach(position, handles.into_iter().map(Into::into).collect());
        #[cfg(not(unix))]
        let _ = (position, handles);
        Ok(())
    }

    /// Checks the handles that came with `frame` against its HANDLES flag and trailer;
    /// returns the frame without its trailer and its handles, or why the connection must
    /// close (every handle that came is closed then).
    pub(crate) fn receive(
        &self,
        mut frame: Frame,
        incoming: Incoming,
    ) -> Result<(Frame, Vec<Handle>), String> {
        #[allow(unused_mut)]
        let mut handles: Vec<Handle> = Vec::new();
        #[cfg(unix)]
        for batch in incoming.batches {
            let count = batch.fds.len();
            handles.extend(batch.fds.into_iter().map(Handle::from));
            if batch.end <= incoming.start {
                return Err(format!(
                    "{count} descriptors came with bytes {}..{}, where no frame begins",
                    batch.start, batch.end
                ));
            }
            if batch.truncated {
                return Err(format!(
                    "descriptors sent with the {:?} frame of request {} were lost: more than {} in one message",
                    frame.kind, frame.id, ferry_codec::MAX_HANDLES
                ));
            }
        }
        #[cfg(not(unix))]
        let _ = incoming;
        if !frame.has_flag(flags::HANDLES) {
            if handles.is_empty() {
                return Ok((frame, handles));
            }
            return Err(format!(
                "{} descriptors came with a {:?} frame (request {}) without the HANDLES flag",
                handles.len(),
                frame.kind,
                frame.id
            ));
        }
        if !self.enabled() {
            return Err(format!(
                "HANDLES flag on a connection of protocol version {}",
                self.version
            ));
        }
        if frame.kind != FrameKind::REQUEST && frame.kind != FrameKind::RESPONSE {
            return Err(format!(
                "HANDLES flag on a {:?} frame; only REQUEST and RESPONSE carry handles",
                frame.kind
            ));
        }
        let (body, count, _values) =
            split_handle_trailer(&frame, cfg!(windows)).map_err(|err| err.to_string())?;
        if count != handles.len() {
            return Err(format!(
                "{:?} frame of request {} announces {count} handles, {} came",
                frame.kind,
                frame.id,
                handles.len()
            ));
        }
        frame.body = body;
        Ok((frame, handles))
    }
}
