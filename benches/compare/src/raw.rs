//! The floor: a hand-written tokio Unix socket echo with a u32 length prefix and 64 KiB
//! buffered reads and writes. Replies are flushed when no further whole request is buffered,
//! so pipelined requests get coalesced replies.

use std::io;
use std::path::Path;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};

use crate::echo::{check_len, Client, Work};

const BUF: usize = 64 * 1024;
/// Larger frames are refused (the largest scenario sends 1 MiB).
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Serves echo on `listener` forever.
pub(crate) async fn serve(listener: UnixListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = serve_connection(stream).await;
        });
    }
}

async fn serve_connection(stream: UnixStream) -> io::Result<()> {
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(BUF, read);
    let mut writer = BufWriter::with_capacity(BUF, write);
    let mut body = Vec::new();
    loop {
        let len = match reader.read_u32_le().await {
            Ok(len) => len as usize,
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(err) => return Err(err),
        };
        read_body(&mut reader, &mut body, len).await?;
        writer.write_u32_le(len as u32).await?;
        writer.write_all(&body).await?;
        if !whole_frame_buffered(reader.buffer()) {
            writer.flush().await?;
        }
    }
}

async fn read_body(
    reader: &mut BufReader<OwnedReadHalf>,
    body: &mut Vec<u8>,
    len: usize,
) -> io::Result<()> {
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    body.resize(len, 0);
    reader.read_exact(body).await?;
    Ok(())
}

fn whole_frame_buffered(buf: &[u8]) -> bool {
    match buf.first_chunk::<4>() {
        Some(len) => buf.len() >= 4 + u32::from_le_bytes(*len) as usize,
        None => false,
    }
}

/// A raw echo connection.
pub(crate) struct RawClient {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
    body: Vec<u8>,
}

impl RawClient {
    async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.writer.write_u32_le(data.len() as u32).await?;
        self.writer.write_all(data).await
    }

    async fn receive(&mut self, want: usize) -> io::Result<()> {
        let len = self.reader.read_u32_le().await? as usize;
        read_body(&mut self.reader, &mut self.body, len).await?;
        check_len(len, want)
    }
}

impl Client for RawClient {
    async fn connect(path: &Path) -> io::Result<Self> {
        let (read, write) = UnixStream::connect(path).await?.into_split();
        Ok(RawClient {
            reader: BufReader::with_capacity(BUF, read),
            writer: BufWriter::with_capacity(BUF, write),
            body: Vec::new(),
        })
    }

    async fn call(&mut self, data: &Bytes) -> io::Result<()> {
        self.send(data).await?;
        self.writer.flush().await?;
        self.receive(data.len()).await
    }

    async fn call_vec(&mut self, data: Vec<u8>) -> io::Result<Vec<u8>> {
        self.send(&data).await?;
        self.writer.flush().await?;
        self.receive(data.len()).await?;
        Ok(data)
    }

    async fn in_flight(&mut self, data: &Bytes, window: usize, work: Work) -> io::Result<u64> {
        let mut outstanding = 0;
        let mut counted = 0;
        loop {
            let mut sent = false;
            while outstanding < window && work.start() {
                self.send(data).await?;
                outstanding += 1;
                sent = true;
            }
            if sent {
                self.writer.flush().await?;
            } else if outstanding == 0 {
                return Ok(counted);
            }
            // Take one reply, then every further one already buffered, before refilling.
            loop {
                self.receive(data.len()).await?;
                outstanding -= 1;
                if work.counts() {
                    counted += 1;
                }
                if outstanding == 0 || !whole_frame_buffered(self.reader.buffer()) {
                    break;
                }
            }
        }
    }
}
