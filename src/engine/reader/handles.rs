//! The reader's part in receiving handles: which descriptors a frame just read may claim.

use ferry_codec::{Frame, HEADER_LEN};
use ferry_transport::ReadHalf;

use super::FrameReader;
use crate::handle::Incoming;

impl FrameReader<ReadHalf> {
    /// The descriptors of every read that began at or before the first byte of `frame`,
    /// the frame this reader returned last (see `crate::handle` for the rule).
    pub(crate) fn take_handles(&mut self, frame: &Frame) -> Incoming {
        #[cfg(unix)]
        {
            // Bytes consumed so far end with `frame`: its first byte is this far back.
            let consumed = self.reader.position() - self.buf.len() as u64;
            let start = consumed.saturating_sub((HEADER_LEN + frame.body.len()) as u64);
            Incoming {
                start,
                batches: self.reader.take_handles(start),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (frame, HEADER_LEN);
            Incoming::default()
        }
    }

    /// The read half, to set it up.
    pub(crate) fn half_mut(&mut self) -> &mut ReadHalf {
        &mut self.reader
    }
}
