//! Descriptors passed with the bytes of a stream: which read brings them, and reads after
//! one that brought them.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdStream;

use ferry_transport::handles::HandleQueue;
use ferry_transport::pair;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::within;

/// Reads until `want` bytes are in, each read with room for more than the peer sent.
async fn read_exactly(half: &mut ferry_transport::ReadHalf, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        let mut buf = [0; 64];
        let n = within(half.read(&mut buf)).await.unwrap();
        assert!(n > 0, "end of stream after {} of {want} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Bytes sent before, with and after descriptors, each in a send of its own and all in
/// the socket before the first read: every read is short, and the one that brings the
/// descriptors (on Linux the kernel stops a read right after them, with more bytes
/// waiting) must not be taken as the socket's last, or the read of the rest never ends.
/// The descriptors belong to the read that holds the byte they were sent with, and a
/// read that ended before that byte has none.
#[tokio::test]
async fn reads_after_descriptors_get_the_bytes_sent_after_them() {
    let (a, b) = pair().unwrap();
    let (_, mut write) = a.into_split();
    let (mut read, _) = b.into_split();
    read.receive_handles();
    let queue = HandleQueue::new();
    write.send_handles(queue.clone());
    let (mine, theirs) = StdStream::pair().unwrap();
    queue.attach(4, vec![OwnedFd::from(theirs)]);

    within(write.write_all(b"aaaabbbb")).await.unwrap();
    within(write.write_all(b"cccc")).await.unwrap();
    assert!(queue.is_empty(), "the descriptor went with byte 4");

    assert_eq!(read_exactly(&mut read, 12).await, b"aaaabbbbcccc");
    assert!(read.take_handles_before(4).is_empty());
    let mut batches = read.take_handles(4);
    assert_eq!(batches.len(), 1, "one read brought the descriptor");
    let batch = batches.remove(0);
    assert!(
        batch.start <= 4 && 4 < batch.end,
        "{}..{}",
        batch.start,
        batch.end
    );
    assert!(!batch.truncated);
    assert_eq!(batch.fds.len(), 1);

    // The descriptor that came is the far end of `mine`.
    let mut far = StdStream::from(batch.fds.into_iter().next().unwrap());
    far.write_all(b"hi").unwrap();
    let mut buf = [0; 2];
    (&mine).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
}

/// Many short exchanges, each read ending the bytes waiting: every one is still read
/// when the next bytes come.
#[tokio::test]
async fn short_reads_then_more_bytes_are_read() {
    let (a, b) = pair().unwrap();
    let (_, mut write) = a.into_split();
    let (mut read, _) = b.into_split();
    read.receive_handles();
    for i in 0..200u32 {
        within(write.write_all(&i.to_le_bytes())).await.unwrap();
        assert_eq!(read_exactly(&mut read, 4).await, i.to_le_bytes());
    }
    assert_eq!(read.position(), 800);
}
