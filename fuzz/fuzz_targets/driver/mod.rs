//! What the connection targets share: the server's options and the client's side of one
//! input (write it, read and discard the replies, wait for the server within a bound).

use std::future::Future;
use std::time::Duration;

use ferry::transport::{ReadHalf, WriteHalf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bound for serving one input; far above what a well-behaved run needs.
pub const BOUND: Duration = Duration::from_secs(5);

/// Small limits and short timeouts, so that an input reaches them.
pub fn options() -> ferry::ServerOptions {
    ferry::ServerOptions::new()
        .max_frame(64 * 1024)
        .max_in_flight(4)
        .write_queue_limit(64 * 1024)
        .handshake_timeout(Duration::from_secs(1))
        .frame_timeout(Duration::from_secs(1))
        .shutdown_grace(Duration::from_millis(500))
}

/// Writes `data` as the client (beginning the server's shutdown after `shutdown.0` bytes,
/// if given), reads and discards what the server sends, and waits for `serving` to end;
/// panics (a hang) when that takes longer than [`BOUND`].
pub async fn exchange(
    mut reader: ReadHalf,
    mut writer: WriteHalf,
    data: &[u8],
    serving: impl Future<Output = ()>,
    shutdown: Option<(usize, ferry::ShutdownHandle)>,
) {
    let writing = async move {
        match &shutdown {
            Some((at, handle)) => {
                let _ = writer.write_all(&data[..*at]).await;
                handle.shutdown();
                let _ = writer.write_all(&data[*at..]).await;
            }
            None => {
                let _ = writer.write_all(data).await;
            }
        }
        let _ = writer.shutdown().await;
        // Keep the write half (and so the socket) until the server is done reading.
        writer
    };
    let reading = async move {
        let mut sink = vec![0u8; 16 * 1024];
        while let Ok(read) = reader.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    };
    let all = async {
        let (_, writer, ()) = tokio::join!(serving, writing, reading);
        drop(writer);
    };
    if tokio::time::timeout(BOUND, all).await.is_err() {
        panic!("the server still served a connection {BOUND:?} after the client stopped sending");
    }
}
