//! [`FrameReader`]: the read side of a connection after its handshake, reading each frame
//! only once the connection's [`Budget`] has room for it.
//!
//! A frame is read in three steps:
//!
//! | step | memory | time limit |
//! | --- | --- | --- |
//! | header: read until its 16 bytes are in; the announced body length is checked against the limit | the read buffer (a few KiB, reused) | none until the first byte, then the frame time-out |
//! | reservation: the whole frame's size is taken from the budget | none: waits while the budget is full, and the peer is not read meanwhile | none (the wait is this side's) |
//! | body: a small frame (up to [`SMALL_FRAME`] bytes) is read into the read buffer and copied out; a larger one is read into an allocation of exactly its size | what was reserved | the frame time-out, from the end of the reservation |
//!
//! So the read buffer never grows past a few KiB, and a frame's body pins only its own
//! bytes (never a shared read buffer) until it is dropped along with its [`Held`] guard. A
//! large frame's body holds a share of that guard ([`Held::tie`]): a `Bytes` argument or
//! result decoded as a slice of it (zero-copy) keeps the frame counted while it lives, even
//! after its call ended.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use ferry_codec::{Frame, FrameDecoder, HEADER_LEN};
use ferry_transport::ReadHalf;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use crate::budget::{Budget, Held};

mod handles;
use crate::wire::{ReadError, READ_CHUNK};

/// Frames up to this size (header included) go through the read buffer; larger ones are
/// read into an allocation of their own.
pub(crate) const SMALL_FRAME: usize = READ_CHUNK;

/// The read half of a connection, its read buffer and its frame decoder.
pub(crate) struct FrameReader<R = ReadHalf> {
    reader: R,
    buf: BytesMut,
    decoder: FrameDecoder,
    /// How long the rest of a frame may take once its first byte is in.
    timeout: Option<Duration>,
    /// How a read made by [`FrameReader::poll_fill`] ended the stream (end of stream or an
    /// error), kept for the next [`FrameReader::next`] to report.
    ended: Option<std::io::Result<()>>,
}

/// What [`FrameReader::take_buffered`] found in the read buffer.
pub(crate) enum Buffered {
    /// A whole small frame, and its share of the budget.
    Frame(Frame, Held),
    /// Not yet a whole frame: more bytes are needed.
    NeedMore,
    /// Something only [`FrameReader::next`] handles: a large frame, a full budget, a bad
    /// header, or the end of the stream. Nothing was taken from the buffer.
    Next,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader of frames of at most `max_frame` body bytes; `buf` holds what the handshake
    /// read past its own message.
    pub(crate) fn new(reader: R, buf: BytesMut, max_frame: u32, timeout: Option<Duration>) -> Self {
        FrameReader {
            reader,
            buf,
            decoder: FrameDecoder::new(max_frame),
            timeout,
            ended: None,
        }
    }

    /// Whether a read made by [`FrameReader::poll_fill`] found the end of the stream.
    pub(crate) fn has_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Whether the read buffer is empty and the stream has not ended: the next frame must
    /// come from the peer.
    pub(crate) fn is_drained(&self) -> bool {
        self.buf.is_empty() && self.ended.is_none()
    }

    /// Reads more into the read buffer, without waiting: `Ready(true)` when bytes came,
    /// `Ready(false)` when the stream ended (end of stream or an error, kept for
    /// [`FrameReader::next`] to report). Cancel-safe: bytes read are in the buffer.
    /// Pending registers `cx` to be woken when the read half is readable.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.ended.is_some() {
            return Poll::Ready(false);
        }
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        let read = std::pin::pin!(self.reader.read_buf(&mut self.buf)).poll(cx);
        match read {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(0)) => {
                self.ended = Some(Ok(()));
                Poll::Ready(false)
            }
            Poll::Ready(Ok(_)) => Poll::Ready(true),
            Poll::Ready(Err(err)) => {
                self.ended = Some(Err(err));
                Poll::Ready(false)
            }
        }
    }

    /// Takes the next frame out of the read buffer when it is small and whole and the
    /// budget has room for it now, without reading or waiting: the path of a caller that
    /// reads its own reply (see `super::ownership`). Anything else is left for
    /// [`FrameReader::next`].
    pub(crate) fn take_buffered(&mut self, budget: &Arc<Budget>) -> Buffered {
        let len = match self.decoder.body_len(&self.buf) {
            Ok(Some(len)) => len,
            Ok(None) if self.ended.is_none() => return Buffered::NeedMore,
            Ok(None) | Err(_) => return Buffered::Next,
        };
        let total = HEADER_LEN + len as usize;
        if total > SMALL_FRAME {
            return Buffered::Next;
        }
        if self.buf.len() < total {
            return if self.ended.is_none() {
                Buffered::NeedMore
            } else {
                Buffered::Next
            };
        }
        let Some(held) = budget.try_reserve(total) else {
            return Buffered::Next;
        };
        match self.decoder.decode(&mut self.buf) {
            Ok(Some(mut frame)) => {
                // Copied out, as in `next`.
                frame.body = Bytes::copy_from_slice(&frame.body);
                Buffered::Frame(frame, held)
            }
            // `body_len` accepted the header and the frame is whole: not reached.
            Ok(None) | Err(_) => Buffered::Next,
        }
    }

    /// Whether a whole frame is buffered already (so the next read returns it without
    /// waiting for the peer).
    pub(crate) fn has_whole_frame(&self) -> bool {
        self.decoder.has_whole_frame(&self.buf)
    }

    /// Reads the next frame, reserving its size from `budget` before its body is read or
    /// allocated. `Ok(None)`: the peer closed the connection between frames. `heard` is
    /// called before the first read and after each one (the peer is alive).
    ///
    /// Not cancel-safe: a frame being read when the future is dropped is lost (the read
    /// loop only drops it when the connection stops).
    pub(crate) async fn next(
        &mut self,
        budget: &Arc<Budget>,
        heard: &(dyn Fn() + Sync),
    ) -> Result<Option<(Frame, Held)>, ReadError> {
        heard();
        let mut deadline = None;
        let len = loop {
            if let Some(len) = self.decoder.body_len(&self.buf).map_err(ReadError::Codec)? {
                break len;
            }
            if self.fill(&mut deadline, heard).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Truncated)
                };
            }
        };
        // `len <= max_frame <= u32::MAX`, which fits in usize on every supported target.
        let total = HEADER_LEN + len as usize;
        let mut held = budget.reserve(total).await;
        // The time spent waiting for room was this side's: the peer's time starts now.
        let mut deadline = self.timeout.map(|limit| (Instant::now() + limit, limit));
        let frame = if total <= SMALL_FRAME {
            while self.buf.len() < total {
                if self.fill(&mut deadline, heard).await? == 0 {
                    return Err(ReadError::Truncated);
                }
            }
            let mut frame = self
                .decoder
                .decode(&mut self.buf)
                .map_err(ReadError::Codec)?
                .ok_or(ReadError::Truncated)?;
            // Copied out, so that a body kept by a handler does not keep the read buffer.
            frame.body = Bytes::copy_from_slice(&frame.body);
            frame
        } else {
            let mut whole = BytesMut::with_capacity(total);
            let buffered = total.min(self.buf.len());
            whole.extend_from_slice(&self.buf[..buffered]);
            self.buf.advance(buffered);
            while whole.len() < total {
                match self.ended.take() {
                    Some(Ok(())) => return Err(ReadError::Truncated),
                    Some(Err(err)) => return Err(ReadError::Io(err)),
                    None => {}
                }
                let missing = (total - whole.len()) as u64;
                let read = timed(deadline, whole.len(), async {
                    (&mut self.reader).take(missing).read_buf(&mut whole).await
                })
                .await?;
                heard();
                if read == 0 {
                    return Err(ReadError::Truncated);
                }
            }
            let mut frame = self
                .decoder
                .decode(&mut whole)
                .map_err(ReadError::Codec)?
                .ok_or(ReadError::Truncated)?;
            // A `Bytes` decoded from the body is a slice of it: the budget counts the frame
            // until the last such slice is dropped, not only until the call ends.
            frame.body = held.tie(frame.body);
            frame
        };
        if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK {
            // Bytes the handshake left can have grown it; give that back.
            self.buf = BytesMut::new();
        }
        Ok(Some((frame, held)))
    }

    /// Reads more into the read buffer; returns how many bytes came (0 at end of stream).
    /// Starts the frame time-out once the buffer holds the first byte of a frame.
    async fn fill(
        &mut self,
        deadline: &mut Option<(Instant, Duration)>,
        heard: &(dyn Fn() + Sync),
    ) -> Result<usize, ReadError> {
        match self.ended.take() {
            Some(Ok(())) => return Ok(0),
            Some(Err(err)) => return Err(ReadError::Io(err)),
            None => {}
        }
        if deadline.is_none() && !self.buf.is_empty() {
            *deadline = self.timeout.map(|limit| (Instant::now() + limit, limit));
        }
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            // The buffer is never shared (bodies are copied out or read elsewhere), so this
            // reuses its space once what it holds was consumed.
            self.buf.reserve(READ_CHUNK);
        }
        let buffered = self.buf.len();
        let (reader, buf) = (&mut self.reader, &mut self.buf);
        let read = timed(*deadline, buffered, reader.read_buf(buf)).await?;
        heard();
        Ok(read)
    }
}

/// Runs a read, failing with `TimedOut` if `deadline` passes first; `arrived` is how many
/// bytes of the frame were in before it, for the message.
async fn timed(
    deadline: Option<(Instant, Duration)>,
    arrived: usize,
    read: impl std::future::Future<Output = std::io::Result<usize>>,
) -> Result<usize, ReadError> {
    let read = match deadline {
        None => read.await,
        Some((at, limit)) => match tokio::time::timeout_at(at, read).await {
            Ok(read) => read,
            Err(_) => {
                return Err(ReadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                    "incomplete frame: {arrived} bytes arrived, the rest did not within {limit:?}"
                ),
                )))
            }
        },
    };
    read.map_err(ReadError::Io)
}

#[cfg(test)]
mod tests {
    use ferry_codec::FrameKind;
    use futures::FutureExt;
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::budget::Pool;

    fn frame_bytes(id: u64, body: Vec<u8>) -> BytesMut {
        let mut wire = BytesMut::new();
        Frame::new(FrameKind::CANCEL, id, Bytes::from(body)).encode(&mut wire);
        wire
    }

    #[tokio::test(start_paused = true)]
    async fn idle_is_not_limited_but_a_begun_frame_is() {
        let (mut client, server) = tokio::io::duplex(1024);
        let wire = frame_bytes(9, b"abcd".to_vec());
        let budget = Budget::unlimited();
        let mut reader =
            FrameReader::new(server, BytesMut::new(), 100, Some(Duration::from_secs(1)));

        // Idle for far longer than the limit, then a whole frame: fine.
        let writer = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            client.write_all(&wire).await.unwrap();
        };
        let (read, ()) = tokio::join!(reader.next(&budget, &|| {}), writer);
        assert_eq!(read.unwrap().unwrap().0.id, 9);

        // Half a frame, then silence: times out.
        client.write_all(&wire[..HEADER_LEN + 1]).await.unwrap();
        match reader.next(&budget, &|| {}).await.unwrap_err() {
            ReadError::Io(err) => {
                assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
                assert_eq!(
                    err.to_string(),
                    "incomplete frame: 17 bytes arrived, the rest did not within 1s"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slow_but_steady_within_the_limit_passes() {
        let (mut client, server) = tokio::io::duplex(1024);
        let wire = frame_bytes(3, b"xy".to_vec());
        let budget = Budget::unlimited();
        let mut reader =
            FrameReader::new(server, BytesMut::new(), 100, Some(Duration::from_secs(1)));
        let writer = async {
            for chunk in wire.chunks(6) {
                client.write_all(chunk).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let (read, ()) = tokio::join!(reader.next(&budget, &|| {}), writer);
        assert_eq!(read.unwrap().unwrap().0.id, 3);
    }

    #[tokio::test]
    async fn a_frame_is_reserved_before_its_body_is_read_and_released_with_it() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let big = 100_000;
        let shared = Pool::new(1 << 20);
        let budget = Budget::new(big + HEADER_LEN, Arc::clone(&shared));
        let mut reader = FrameReader::new(server, BytesMut::new(), 1 << 20, None);
        let mut wire = frame_bytes(1, vec![7; big]);
        wire.extend_from_slice(&frame_bytes(2, vec![8; 10]));
        client.write_all(&wire).await.unwrap();

        let (first, held) = reader.next(&budget, &|| {}).await.unwrap().unwrap();
        assert_eq!(first.body.len(), big);
        assert_eq!(held.bytes(), big + HEADER_LEN);
        assert_eq!(shared.used(), big + HEADER_LEN);
        // The read buffer did not grow to hold the large frame.
        assert!(
            reader.buf.capacity() <= 4 * READ_CHUNK,
            "{}",
            reader.buf.capacity()
        );

        // The next frame does not fit while the first is held: its read waits...
        let mut second = Box::pin(reader.next(&budget, &|| {}));
        assert!((&mut second).now_or_never().is_none());
        // ...until the first is dropped.
        drop(first);
        drop(held);
        let (second, held) = second.await.unwrap().unwrap();
        assert_eq!((second.id, &second.body[..]), (2, &[8u8; 10][..]));
        assert_eq!(shared.used(), HEADER_LEN + 10);
        drop(held);
        assert_eq!(shared.used(), 0);
    }

    #[tokio::test]
    async fn a_slice_of_a_large_body_keeps_the_frame_counted_after_its_guard() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let big = 3 * SMALL_FRAME;
        let shared = Pool::new(1 << 20);
        let budget = Budget::new(1 << 20, Arc::clone(&shared));
        let mut reader = FrameReader::new(server, BytesMut::new(), 1 << 20, None);
        client
            .write_all(&frame_bytes(1, vec![7; big]))
            .await
            .unwrap();
        let (frame, held) = reader.next(&budget, &|| {}).await.unwrap().unwrap();
        let slice = frame.body.slice(10..20);
        drop(frame);
        drop(held);
        // The call is over, but a slice of its body lives: still counted.
        assert_eq!(shared.used(), big + HEADER_LEN);
        assert_eq!(&slice[..], &[7; 10]);
        drop(slice);
        assert_eq!(shared.used(), 0);

        // Dropped in the other order, the same.
        client
            .write_all(&frame_bytes(2, vec![8; big]))
            .await
            .unwrap();
        let (frame, held) = reader.next(&budget, &|| {}).await.unwrap().unwrap();
        drop(frame);
        assert_eq!(shared.used(), big + HEADER_LEN);
        drop(held);
        assert_eq!(shared.used(), 0);
    }

    #[tokio::test]
    async fn an_oversized_header_is_refused_before_any_reservation() {
        let (mut client, server) = tokio::io::duplex(1024);
        let budget = Budget::new(1000, Pool::new(1000));
        let mut reader = FrameReader::new(server, BytesMut::new(), 100, None);
        client
            .write_all(&frame_bytes(1, vec![0; 101]))
            .await
            .unwrap();
        assert!(matches!(
            reader.next(&budget, &|| {}).await,
            Err(ReadError::Codec(_))
        ));
        assert_eq!(budget.used(), 0);
    }
}
