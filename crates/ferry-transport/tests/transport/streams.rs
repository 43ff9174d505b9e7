//! Streams: pairs, split halves, vectored writes, half-close, std conversions.

use std::io::IoSlice;

use ferry_transport::{os::unix::pair_std, pair, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::support::within;

fn assert_stream_traits<T: AsyncRead + AsyncWrite + Send + Unpin + 'static>() {}

#[test]
fn stream_is_send_unpin_static() {
    assert_stream_traits::<Stream>();
}

#[tokio::test]
async fn pair_round_trip_both_directions() {
    let (mut a, mut b) = pair().unwrap();
    within(a.write_all(b"ping")).await.unwrap();
    let mut buf = [0; 4];
    within(b.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"ping");
    within(b.write_all(b"pong")).await.unwrap();
    within(a.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"pong");
    assert_eq!(a.peer_credentials().pid(), Some(std::process::id()));
}

/// Both sides write 4 MiB while reading the other's 4 MiB: with half-duplex halves or a
/// shared lock this would deadlock once the socket buffers fill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_are_full_duplex() {
    const LEN: usize = 4 << 20;
    let (a, b) = pair().unwrap();
    let run = |stream: Stream, seed: u8| async move {
        let (mut read, mut write) = stream.into_split();
        let data: Vec<u8> = (0..LEN).map(|i| (i as u8).wrapping_add(seed)).collect();
        let writer = tokio::spawn(async move {
            write.write_all(&data).await.unwrap();
            write.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        read.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        got
    };
    let (from_b, from_a) = within(async { tokio::join!(run(a, 0), run(b, 7)) }).await;
    assert_eq!(from_b.len(), LEN);
    assert_eq!(from_a.len(), LEN);
    assert!(from_b
        .iter()
        .enumerate()
        .all(|(i, &x)| x == (i as u8).wrapping_add(7)));
    assert!(from_a.iter().enumerate().all(|(i, &x)| x == i as u8));
}

#[tokio::test]
async fn dropping_write_half_gives_peer_eof_but_keeps_reading() {
    let (a, mut b) = pair().unwrap();
    let (mut read, write) = a.into_split();
    drop(write);
    let mut rest = Vec::new();
    within(b.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());
    within(b.write_all(b"still here")).await.unwrap();
    let mut buf = [0; 10];
    within(read.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"still here");
}

#[tokio::test]
async fn vectored_writes_forward() {
    let (mut a, b) = pair().unwrap();
    assert!(a.is_write_vectored());
    let (mut read, mut write) = b.into_split();
    assert!(write.is_write_vectored());
    let bufs = [IoSlice::new(b"ab"), IoSlice::new(b"cd")];
    let n = within(a.write_vectored(&bufs)).await.unwrap();
    assert_eq!(n, 4);
    let mut got = [0; 4];
    within(read.read_exact(&mut got)).await.unwrap();
    assert_eq!(&got, b"abcd");
    let bufs = [IoSlice::new(b"x"), IoSlice::new(b"yz")];
    let n = within(write.write_vectored(&bufs)).await.unwrap();
    assert_eq!(n, 3);
    let mut got = [0; 3];
    within(a.read_exact(&mut got)).await.unwrap();
    assert_eq!(&got, b"xyz");
}

#[tokio::test]
async fn std_pair_and_conversions() {
    use std::io::{Read, Write};

    let (left, mut right) = pair_std().unwrap();
    let mut left = Stream::from_std(left).unwrap();
    assert_eq!(left.peer_credentials().pid(), Some(std::process::id()));
    within(left.write_all(b"to std")).await.unwrap();
    let mut buf = [0; 6];
    right.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"to std");
    right.write_all(b"back").unwrap();
    let mut buf = [0; 4];
    within(left.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"back");
    let mut left = left.into_std().unwrap();
    left.set_nonblocking(false).unwrap();
    left.write_all(b"!").unwrap();
    let mut one = [0; 1];
    right.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"!");
}
