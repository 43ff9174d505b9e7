//! [`HandleFrames`]: a connection's side of passing handles with frames (protocol version
//! 3, `docs/protocol.md` 8.4).
//!
//! - **Sending**: a payload is encoded inside [`scope::encoding`]; when it met handles,
//!   the frame gets the HANDLES flag and the handle trailer, and (Unix) the descriptors are
//!   queued on the write half, tied to the frame's first byte, which the write half then
//!   sends in one `sendmsg` with them.
//! - **Receiving**: the read half keeps the descriptors of each read with that read's byte
//!   range. Descriptors received with a read belong to the frame with the HANDLES flag
//!   that begins within that read (the sender sends them with that frame's first byte,
//!   and no read brings the descriptors of two sends; on Linux the read may begin with
//!   earlier frames, see `ferry_transport::handles`). When a frame with the flag is read,
//!   every read that began at or before its first byte gives up its descriptors; when a
//!   frame without it is read, every read that ended before its first byte does. A read
//!   that ended before the frame began brought descriptors with no frame, a protocol
//!   violation.
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
    /// The peer process handles are duplicated into, or why there is none.
    #[cfg(windows)]
    peer: std::sync::OnceLock<Result<ferry_transport::handles::PeerProcess, String>>,
}

impl HandleFrames {
    /// Handle passing for a connection of protocol `version`.
    pub(crate) fn new(version: u16) -> Self {
        HandleFrames {
            version,
            #[cfg(unix)]
            queue: Default::default(),
            #[cfg(windows)]
            peer: std::sync::OnceLock::new(),
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
        #[cfg(windows)]
        if self.enabled() {
            let peer = match writer.peer_pid() {
                Some(pid) => ferry_transport::handles::PeerProcess::open(pid)
                    .map_err(|err| format!("cannot open the peer process {pid}: {err}")),
                None => Err("the peer's process id is unknown".to_owned()),
            };
            let _ = self.peer.set(peer);
        }
        #[cfg(not(any(unix, windows)))]
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
            return scope::refusing(scope::Refusal::Version(self.version), || encode(buf));
        }
        let start = buf.len();
        let (encoded, handles) = scope::encoding(|| encode(&mut *buf));
        encoded?;
        if handles.is_empty() {
            return Ok(());
        }
        #[cfg(unix)]
        {
            if let Err(err) = append_handle_trailer(buf, start, handles.len(), &[], max_frame) {
                buf.truncate(start);
                return Err(err);
            }
            self.queue
                .attach(position, handles.into_iter().map(Into::into).collect());
        }
        #[cfg(windows)]
        {
            let _ = position;
            let (peer, values) = match self.duplicate_all(&handles) {
                Ok(done) => done,
                Err(err) => {
                    buf.truncate(start);
                    return Err(err);
                }
            };
            if let Err(err) = append_handle_trailer(buf, start, handles.len(), &values, max_frame) {
                buf.truncate(start);
                for value in values {
                    peer.close(value);
                }
                return Err(err);
            }
        }
        Ok(())
    }

    /// Duplicates `handles` into the peer; on failure closes those already there.
    #[cfg(windows)]
    fn duplicate_all(
        &self,
        handles: &[Handle],
    ) -> Result<(&ferry_transport::handles::PeerProcess, Vec<u64>), CodecError> {
        use std::os::windows::io::AsHandle;
        let failed = |message: String| CodecError::Encode {
            format: "handle",
            source: message.into(),
        };
        let peer = match self.peer.get() {
            Some(Ok(peer)) => peer,
            Some(Err(reason)) => return Err(failed(format!("cannot send a handle: {reason}"))),
            None => return Err(failed("cannot send a handle: no peer process yet".into())),
        };
        let mut values = Vec::with_capacity(handles.len());
        for handle in handles {
            match peer.duplicate(handle.as_handle()) {
                Ok(value) => values.push(value),
                Err(err) => {
                    for value in values {
                        peer.close(value);
                    }
                    return Err(failed(format!(
                        "cannot duplicate a handle into the peer: {err}"
                    )));
                }
            }
        }
        Ok((peer, values))
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
        #[cfg(windows)]
        for value in _values {
            let handle = ferry_transport::handles::adopt(value).map_err(|err| err.to_string())?;
            handles.push(Handle::from(handle));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_codec::{encode_frame_with, FormatId};

    fn handle() -> Handle {
        Handle::placeholder().expect("the null device")
    }

    fn encode<T: serde::Serialize>(
        frames: &HandleFrames,
        value: &T,
        buf: &mut BytesMut,
    ) -> Result<(), CodecError> {
        frames.encode_frame(buf, 0, 1 << 20, |buf| {
            encode_frame_with(buf, FrameKind::RESPONSE, 0, 0, 1, 1 << 20, |buf| {
                FormatId::Bincode.encode(value, buf)
            })
        })
    }

    #[test]
    fn a_version_2_connection_refuses_handles_and_queues_nothing() {
        let frames = HandleFrames::new(2);
        let mut buf = BytesMut::new();
        let err = encode(&frames, &(handle(),), &mut buf).unwrap_err();
        assert!(err.to_string().contains("failed to encode"), "{err}");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            source
                .as_deref()
                .is_some_and(|s| s.contains("protocol version 2")),
            "{source:?}"
        );
        assert!(buf.is_empty());
        // Values without handles still go.
        encode(&frames, &7u32, &mut buf).unwrap();
        assert!(!buf.is_empty());
    }

    #[test]
    fn more_than_the_limit_fails_before_anything_is_queued() {
        let frames = HandleFrames::new(3);
        let mut buf = BytesMut::from(&b"earlier"[..]);
        let many: Vec<Handle> = (0..=ferry_codec::MAX_HANDLES).map(|_| handle()).collect();
        let err = encode(&frames, &many, &mut buf).unwrap_err();
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            source
                .as_deref()
                .is_some_and(|s| s.contains("more than 64 handles")),
            "{source:?}"
        );
        assert_eq!(&buf[..], b"earlier");
        #[cfg(unix)]
        assert!(frames.queue.is_empty());
    }

    /// Unix only: on Windows a handle is duplicated into the peer's process, and this
    /// connection-less test has none (the Windows path is covered by tests/handles.rs).
    #[cfg(unix)]
    #[test]
    fn a_frame_with_handles_gets_the_flag_and_the_trailer() {
        let frames = HandleFrames::new(3);
        let mut buf = BytesMut::new();
        encode(&frames, &(handle(), 5u8, handle()), &mut buf).unwrap();
        let frame = ferry_codec::FrameDecoder::new(1 << 20)
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        assert!(frame.has_flag(flags::HANDLES));
        // Indexes 0 and 1, the byte between them, then the trailer.
        assert_eq!(&frame.body[..], &[0, 5, 1, 2, 0]);
        assert_eq!(frames.queue.len(), 1);
    }

    #[test]
    fn stream_items_refuse_handles() {
        let mut buf = BytesMut::new();
        let err = scope::refusing("handles cannot be sent in stream items", || {
            FormatId::Json.encode(&handle(), &mut buf)
        })
        .unwrap_err();
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            source
                .as_deref()
                .is_some_and(|s| s.contains("stream items")),
            "{source:?}"
        );
    }

    #[test]
    fn decoding_outside_a_frame_fails_and_untaken_handles_close() {
        let err = FormatId::Bincode
            .decode::<Handle>(&[0])
            .expect_err("no handles came");
        assert!(err.to_string().contains("decode") || err.to_string().contains("handle"));
        // Index 1 of one handle: an error, and the handle is dropped with the table.
        let result = scope::decoding(vec![handle()], || {
            FormatId::Bincode.decode::<(Handle,)>(&[1])
        });
        assert!(result.is_err());
        let taken = scope::decoding(vec![handle()], || FormatId::Json.decode::<Handle>(b"0"));
        assert!(taken.is_ok());
    }
}
