//! Reading decoded messages from a byte stream: the one loop both sides use for handshakes
//! and frames.

use std::time::Duration;

use bytes::BytesMut;
use ferry_codec::CodecError;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// Bytes the read buffer grows by when it is full.
pub(crate) const READ_CHUNK: usize = 8 * 1024;

/// Why reading a message failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The stream failed, or (kind [`std::io::ErrorKind::TimedOut`]) a message that had
    /// begun did not complete in time.
    Io(std::io::Error),
    /// The bytes are not a valid message.
    Codec(CodecError),
    /// The stream ended in the middle of a message.
    Truncated,
}

/// Reads until `decode` yields a message. `Ok(None)` means the stream ended cleanly, at a
/// message boundary.
pub(crate) async fn read_message<R, T>(
    io: &mut R,
    buf: &mut BytesMut,
    decode: impl FnMut(&mut BytesMut) -> Result<Option<T>, CodecError>,
) -> Result<Option<T>, ReadError>
where
    R: AsyncRead + Unpin,
{
    read_until(io, buf, decode, None).await
}

/// Like [`read_message`], but when `limit` is `Some`, once the first byte of a message is
/// in `buf`, the rest must arrive within it, else it fails with an I/O error of kind
/// `TimedOut`. Waiting for that first byte is not limited. Cancel-safe, like
/// `read_message`.
pub(crate) async fn read_message_bounded<R, T>(
    io: &mut R,
    buf: &mut BytesMut,
    decode: impl FnMut(&mut BytesMut) -> Result<Option<T>, CodecError>,
    limit: Option<Duration>,
) -> Result<Option<T>, ReadError>
where
    R: AsyncRead + Unpin,
{
    read_until(io, buf, decode, limit).await
}

async fn read_until<R, T>(
    io: &mut R,
    buf: &mut BytesMut,
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<T>, CodecError>,
    limit: Option<Duration>,
) -> Result<Option<T>, ReadError>
where
    R: AsyncRead + Unpin,
{
    let mut deadline = None;
    loop {
        if let Some(message) = decode(buf).map_err(ReadError::Codec)? {
            return Ok(Some(message));
        }
        if deadline.is_none() && !buf.is_empty() {
            deadline = limit.map(|limit| (Instant::now() + limit, limit));
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let read = match deadline {
            None => io.read_buf(buf).await,
            Some((at, limit)) => match tokio::time::timeout_at(at, io.read_buf(buf)).await {
                Ok(read) => read,
                Err(_) => {
                    return Err(ReadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "incomplete frame: {} bytes arrived, the rest did not within {limit:?}",
                            buf.len()
                        ),
                    )))
                }
            },
        };
        let read = read.map_err(ReadError::Io)?;
        if read == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Truncated)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use ferry_codec::{Frame, FrameDecoder, FrameKind};
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_is_not_limited_but_a_begun_frame_is() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let mut wire = BytesMut::new();
        Frame::new(FrameKind::CANCEL, 9, bytes::Bytes::from_static(b"abcd")).encode(&mut wire);
        let mut buf = BytesMut::new();
        let mut decoder = FrameDecoder::new(100);
        let limit = Duration::from_secs(1);

        // Idle for far longer than the limit, then a whole frame: fine.
        let writer = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            client.write_all(&wire).await.unwrap();
        };
        let reader =
            read_message_bounded(&mut server, &mut buf, |b| decoder.decode(b), Some(limit));
        let (read, ()) = tokio::join!(reader, writer);
        assert_eq!(read.unwrap().unwrap().id, 9);

        // Half a frame, then silence: times out.
        client.write_all(&wire[..10]).await.unwrap();
        let err = read_message_bounded(&mut server, &mut buf, |b| decoder.decode(b), Some(limit))
            .await
            .unwrap_err();
        match err {
            ReadError::Io(err) => {
                assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
                assert_eq!(
                    err.to_string(),
                    "incomplete frame: 10 bytes arrived, the rest did not within 1s"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slow_but_steady_within_the_limit_passes() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let mut wire = BytesMut::new();
        Frame::new(FrameKind::CANCEL, 3, bytes::Bytes::from_static(b"xy")).encode(&mut wire);
        let mut buf = BytesMut::new();
        let mut decoder = FrameDecoder::new(100);
        let writer = async {
            for chunk in wire.chunks(6) {
                client.write_all(chunk).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let reader = read_message_bounded(
            &mut server,
            &mut buf,
            |b| decoder.decode(b),
            Some(Duration::from_secs(1)),
        );
        let (read, ()) = tokio::join!(reader, writer);
        assert_eq!(read.unwrap().unwrap().id, 3);
    }
}
