//! [`Parts`]: queued bytes as the outbox's buffer with large payloads held by reference
//! between its bytes ([`Splice`]s, see `ferry_codec::encode_spliced`), and their writing
//! with vectored writes, partial writes included.

use std::io::IoSlice;

use bytes::{Buf, BytesMut};
use ferry_codec::Splice;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// The most parts handed to one vectored write (far below every system's limit).
const MAX_PARTS: usize = 32;

/// Bytes to write, in order: `buf` with each splice's bytes at its offset.
#[derive(Debug, Default)]
pub(super) struct Parts {
    pub(super) buf: BytesMut,
    /// In order of offset, from `first` on (those before are written); offsets are into
    /// `buf` as it is now.
    splices: Vec<Splice>,
    first: usize,
    /// The bytes of `splices`.
    spliced: usize,
}

impl Parts {
    /// The queued bytes `buf` and `splices` (their offsets into `buf`), whose spliced bytes
    /// are `spliced` in all.
    pub(super) fn new(buf: BytesMut, splices: Vec<Splice>, spliced: usize) -> Self {
        Parts {
            buf,
            splices,
            first: 0,
            spliced,
        }
    }

    /// Every byte left to write.
    pub(super) fn len(&self) -> usize {
        self.buf.len() + self.spliced
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every byte is in `buf` (no vectored write needed).
    pub(super) fn is_contiguous(&self) -> bool {
        self.first == self.splices.len()
    }

    fn pending(&self) -> &[Splice] {
        &self.splices[self.first..]
    }

    /// Gives back `buf`, `splices` and their length, with `later` (bytes queued after these,
    /// with their splices) after them.
    pub(super) fn followed_by(
        mut self,
        later: &[u8],
        later_splices: Vec<Splice>,
        later_spliced: usize,
    ) -> (BytesMut, Vec<Splice>, usize) {
        let shift = self.buf.len();
        self.buf.extend_from_slice(later);
        let mut splices = self.splices.split_off(self.first);
        splices.extend(later_splices.into_iter().map(|splice| Splice {
            at: splice.at + shift,
            bytes: splice.bytes,
        }));
        (self.buf, splices, self.spliced + later_spliced)
    }

    /// Fills `parts` with the next bytes to write, in order; returns how many it filled.
    fn parts<'a>(&'a self, parts: &mut [IoSlice<'a>; MAX_PARTS]) -> usize {
        let mut count = 0;
        let mut from = 0;
        for splice in self.pending() {
            if count + 2 > MAX_PARTS {
                // The rest goes with a later write.
                return count;
            }
            if splice.at > from {
                parts[count] = IoSlice::new(&self.buf[from..splice.at]);
                count += 1;
            }
            parts[count] = IoSlice::new(&splice.bytes);
            count += 1;
            from = splice.at;
        }
        if from < self.buf.len() && count < MAX_PARTS {
            parts[count] = IoSlice::new(&self.buf[from..]);
            count += 1;
        }
        count
    }

    /// Drops the first `n` bytes (written).
    pub(super) fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let next = self
                .pending()
                .first()
                .map_or(self.buf.len(), |splice| splice.at);
            if next > 0 {
                let step = n.min(next);
                self.buf.advance(step);
                for splice in &mut self.splices[self.first..] {
                    splice.at -= step;
                }
                n -= step;
            } else if let Some(front) = self.splices.get_mut(self.first) {
                let step = n.min(front.bytes.len());
                front.bytes.advance(step);
                self.spliced -= step;
                n -= step;
                if front.bytes.is_empty() {
                    // Written: its `Bytes` goes now.
                    front.bytes = bytes::Bytes::new();
                    self.first += 1;
                }
            } else {
                // Nothing left (a writer never reports more than it was given).
                return;
            }
        }
    }

    /// One non-blocking vectored write; `None` when the writer took nothing now (full,
    /// failed or wrote zero bytes: the writer task retries and reports).
    pub(super) fn poll_write_once<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        io: &mut W,
        cx: &mut std::task::Context<'_>,
    ) -> Option<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_PARTS];
        let count = self.parts(&mut slices);
        match std::pin::Pin::new(io).poll_write_vectored(cx, &slices[..count]) {
            std::task::Poll::Ready(Ok(n)) if n > 0 => {
                self.advance(n);
                Some(n)
            }
            _ => None,
        }
    }

    /// Writes everything, with vectored writes.
    pub(super) async fn write_all<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        io: &mut W,
    ) -> std::io::Result<()> {
        while !self.is_empty() {
            let written = {
                let mut slices = [IoSlice::new(&[]); MAX_PARTS];
                let count = self.parts(&mut slices);
                io.write_vectored(&slices[..count]).await?
            };
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.advance(written);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::task::Context;

    use bytes::Bytes;

    use super::*;
    use crate::outbox::tests::Trickle;

    /// `ab[X*5]cd[Y*7][Z*3]e`, and the bytes it stands for.
    fn sample() -> (Parts, Vec<u8>) {
        let splice = |at, byte, len| Splice {
            at,
            bytes: Bytes::from(vec![byte; len]),
        };
        let splices = vec![splice(2, b'X', 5), splice(4, b'Y', 7), splice(4, b'Z', 3)];
        let parts = Parts::new(BytesMut::from(&b"abcde"[..]), splices, 15);
        let wire = b"abXXXXXcdYYYYYYYZZZe".to_vec();
        (parts, wire)
    }

    #[tokio::test]
    async fn partial_writes_across_part_boundaries_keep_every_byte_in_order() {
        for step in 1..=21 {
            let (mut parts, wire) = sample();
            assert_eq!(parts.len(), wire.len());
            let mut io = Trickle::new(step, 2);
            parts.write_all(&mut io).await.unwrap();
            assert_eq!(io.got(), wire, "step {step}");
            assert!(parts.is_empty());
        }
    }

    #[test]
    fn what_is_left_goes_before_what_came_later() {
        for written in 0..=20 {
            let (mut parts, mut wire) = sample();
            parts.advance(written);
            assert_eq!(parts.len(), wire.len() - written);
            let later = vec![Splice {
                at: 1,
                bytes: Bytes::from_static(b"LATER"),
            }];
            let (buf, splices, spliced) = parts.followed_by(b"fg", later, 5);
            let mut joined = Parts::new(buf, splices, spliced);
            wire.extend_from_slice(b"fLATERg");
            let mut io = Trickle::new(1000, 2);
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            while joined.poll_write_once(&mut io, &mut cx).is_some() {}
            assert_eq!(io.got(), &wire[written..], "written {written}");
        }
    }

    #[test]
    fn many_splices_take_several_writes() {
        let splices = (0..40)
            .map(|i| Splice {
                at: i + 1,
                bytes: Bytes::from(vec![b'a' + (i % 26) as u8; 3]),
            })
            .collect::<Vec<_>>();
        let mut wire = Vec::new();
        let buf: Vec<u8> = (0..41).map(|i| i as u8).collect();
        for (i, byte) in buf.iter().enumerate() {
            wire.push(*byte);
            if i < 40 {
                wire.extend_from_slice(&[b'a' + (i % 26) as u8; 3]);
            }
        }
        let mut parts = Parts::new(BytesMut::from(&buf[..]), splices, 120);
        let mut io = Trickle::new(usize::MAX, 2);
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        while parts.poll_write_once(&mut io, &mut cx).is_some() {}
        assert!(parts.is_empty());
        assert_eq!(io.got(), wire);
        assert!(io.writes > 1, "{} writes", io.writes);
    }
}
