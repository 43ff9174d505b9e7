//! A client that speaks raw frames: it sends the hello and frames it is given and reads
//! what the server answers, to test the wire behaviour itself.

use bytes::BytesMut;
use ferry::codec::{Frame, FrameDecoder, Hello, Welcome};
use ferry::transport::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::within;

/// One connection driven frame by frame.
pub struct RawClient {
    stream: Stream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl RawClient {
    /// Sends `hello` on `stream` and reads the Welcome, which must accept.
    pub async fn handshake(stream: Stream, hello: &Hello) -> (RawClient, Welcome) {
        let mut raw = RawClient {
            stream,
            buf: BytesMut::new(),
            decoder: FrameDecoder::default(),
        };
        let mut out = BytesMut::new();
        hello.encode(&mut out).expect("encode the hello");
        within(raw.stream.write_all(&out)).await.expect("write");
        let welcome = loop {
            if let Some(welcome) = Welcome::decode(&mut raw.buf).expect("a welcome") {
                break welcome;
            }
            let read = within(raw.stream.read_buf(&mut raw.buf))
                .await
                .expect("read");
            assert!(read > 0, "closed before the welcome");
        };
        assert!(welcome.status.is_ok(), "{welcome:?}");
        (raw, welcome)
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &Frame) {
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        within(self.stream.write_all(&out)).await.expect("write");
    }

    /// The next frame, or `None` at the end of the stream.
    pub async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).expect("a frame") {
                return Some(frame);
            }
            match within(self.stream.read_buf(&mut self.buf)).await {
                Ok(0) => return None,
                Ok(_) => {}
                Err(err) => panic!("read failed: {err}"),
            }
        }
    }

    /// The next frame; the stream must not end before it.
    pub async fn frame(&mut self) -> Frame {
        self.next_frame().await.expect("closed before a frame")
    }
}
