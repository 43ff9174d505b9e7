//! Reading decoded messages from a byte stream: the loop both sides use for their
//! handshake (frames after it are read by the engine's `FrameReader`).

use bytes::BytesMut;
use ferry_codec::CodecError;
use tokio::io::{AsyncRead, AsyncReadExt};

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
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<T>, CodecError>,
) -> Result<Option<T>, ReadError>
where
    R: AsyncRead + Unpin,
{
    loop {
        if let Some(message) = decode(buf).map_err(ReadError::Codec)? {
            return Ok(Some(message));
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let read = io.read_buf(buf).await.map_err(ReadError::Io)?;
        if read == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Truncated)
            };
        }
    }
}
