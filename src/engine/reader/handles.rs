//! The reader's part in receiving handles: which descriptors a frame just read may claim.

use ferry_codec::{flags, Frame, HEADER_LEN};
use ferry_transport::ReadHalf;

use super::FrameReader;
use crate::handle::Incoming;

impl FrameReader<ReadHalf> {
    /// The descriptors `frame`, the frame this reader returned last, must account for
    /// (see `crate::handle` for the rule): with the HANDLES flag, those of every read that
    /// began at or before its first byte; without, those of every read that ended at or
    /// before its last byte, which no frame can claim any more (on Linux, a read that holds
    /// its first byte may run on into a later frame's, with that frame's descriptors: such
    /// a read ends after this frame, and its descriptors wait for the later frame).
    pub(crate) fn take_handles(&mut self, frame: &Frame) -> Incoming {
        #[cfg(unix)]
        {
            // Bytes consumed so far end with `frame`: its first byte is this far back.
            let consumed = self.reader.position() - self.buf.len() as u64;
            let start = consumed.saturating_sub((HEADER_LEN + frame.body.len()) as u64);
            Incoming {
                start,
                batches: if frame.has_flag(flags::HANDLES) {
                    self.reader.take_handles(start)
                } else {
                    self.reader.take_handles_before(consumed)
                },
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (frame, HEADER_LEN, flags::HANDLES);
            Incoming::default()
        }
    }

    /// The read half, to set it up.
    pub(crate) fn half_mut(&mut self) -> &mut ReadHalf {
        &mut self.reader
    }
}
