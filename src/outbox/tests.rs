//! The outbox with payloads by reference: order, partial writes, bound and budget.

use std::pin::Pin;
use std::sync::Mutex as StdMutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use ferry_codec::{encode_frame_with, encode_spliced, BulkRef, FormatId, FrameDecoder, FrameKind};

use super::*;

/// A write half that takes at most `step` bytes per write, from at most `parts` slices of a
/// vectored write, and keeps them; it counts its writes.
pub(super) struct Trickle {
    pub(super) got: Arc<StdMutex<Vec<u8>>>,
    pub(super) step: usize,
    pub(super) parts: usize,
    pub(super) writes: usize,
}

impl Trickle {
    /// A writer of at most `step` bytes and `parts` slices per write.
    pub(super) fn new(step: usize, parts: usize) -> Self {
        Trickle {
            got: Arc::default(),
            step,
            parts,
            writes: 0,
        }
    }

    /// What it was given so far.
    pub(super) fn got(&self) -> Vec<u8> {
        self.got.lock().unwrap().clone()
    }
}

impl AsyncWrite for Trickle {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.writes += 1;
        let n = buf.len().min(this.step);
        this.got.lock().unwrap().extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.writes += 1;
        let mut left = this.step;
        let mut got = this.got.lock().unwrap();
        for buf in bufs.iter().take(this.parts) {
            let n = buf.len().min(left);
            got.extend_from_slice(&buf[..n]);
            left -= n;
            if left == 0 {
                break;
            }
        }
        Poll::Ready(Ok(this.step - left))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Queues a RESPONSE frame `id` holding `payload` (by reference when large).
async fn push(outbox: &Outbox, id: u64, payload: &Bytes, direct: bool) {
    outbox
        .push_spliced(
            |buf, splices, _| {
                encode_spliced(buf, SPLICE_MIN, u32::MAX, splices, |buf| {
                    encode_frame_with(buf, FrameKind::RESPONSE, 0, 0, id, u32::MAX, |buf| {
                        FormatId::Bincode.encode(&(BulkRef(payload),), buf)
                    })
                })
            },
            direct,
        )
        .await
        .unwrap();
}

fn payload(id: u64, len: usize) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u64 * 31 + id) as u8)
            .collect::<Vec<_>>(),
    )
}

/// Decodes every frame in `wire`: (id, payload).
fn frames(wire: &[u8]) -> Vec<(u64, Bytes)> {
    let mut buf = BytesMut::from(wire);
    let mut decoder = FrameDecoder::new(u32::MAX);
    let mut out = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf).unwrap() {
        let (data,): (Bytes,) = FormatId::Bincode.decode(&frame.body).unwrap();
        out.push((frame.id, data));
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    out
}

#[test]
fn a_large_payload_is_queued_by_reference_and_counted_whole() {
    let budget = Budget::unlimited();
    let outbox = Outbox::new(1 << 30, Arc::clone(&budget));
    let large = payload(1, 300_000);
    futures::executor::block_on(push(&outbox, 1, &large, false));
    let state = outbox.lock();
    assert!(
        state.buf.len() < 64,
        "copied: {} bytes in the buffer",
        state.buf.len()
    );
    assert_eq!(state.splices.len(), 1);
    assert_eq!(state.splices[0].bytes.as_ptr(), large.as_ptr());
    assert_eq!(state.queued(), state.buf.len() + large.len());
    assert_eq!(budget.used(), state.queued());
    assert_eq!(state.appended, state.queued() as u64);
}

#[tokio::test]
async fn frames_keep_their_order_through_partial_vectored_writes() {
    for step in [1usize, 7, 4096, 100_003] {
        let budget = Budget::unlimited();
        let outbox = Arc::new(Outbox::new(1 << 30, Arc::clone(&budget)));
        let got = Arc::new(StdMutex::new(Vec::new()));
        let sent: Vec<(u64, Bytes)> = (1..=12u64)
            .map(|id| (id, payload(id, if id % 3 == 1 { 40_000 } else { 50 })))
            .collect();
        // Some frames are written directly by their producer (with what is queued), the
        // others by the writer task.
        for (id, data) in &sent[..4] {
            push(&outbox, *id, data, false).await;
        }
        let writer = tokio::spawn({
            let outbox = Arc::clone(&outbox);
            let io = Trickle {
                got: Arc::clone(&got),
                ..Trickle::new(step, usize::MAX)
            };
            async move { outbox.run_writer(io).await }
        });
        for (id, data) in &sent[4..] {
            push(&outbox, *id, data, id % 2 == 0).await;
        }
        outbox.close_after_flush();
        tokio::time::timeout(Duration::from_secs(20), writer)
            .await
            .expect("the writer did not end")
            .unwrap()
            .unwrap();
        let wire = got.lock().unwrap().clone();
        assert_eq!(frames(&wire), sent, "step {step}");
        assert_eq!(budget.used(), 0, "step {step}");
        assert_eq!(outbox.lock().appended, wire.len() as u64);
    }
}

#[tokio::test]
async fn the_budget_is_exact_after_many_large_frames() {
    let budget = Budget::unlimited();
    let outbox = Arc::new(Outbox::new(256 * 1024, Arc::clone(&budget)));
    let (mut reader, writer) = tokio::io::duplex(64 * 1024);
    let writing = tokio::spawn({
        let outbox = Arc::clone(&outbox);
        async move { outbox.run_writer(writer).await }
    });
    let reading = tokio::spawn(async move {
        let mut wire = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut wire)
            .await
            .map(|_| wire)
    });
    let mut sent = Vec::new();
    for id in 0..200u64 {
        let data = payload(id, if id % 2 == 0 { 70_000 } else { 17 });
        push(&outbox, id, &data, id % 5 == 0).await;
        // Bounded: never far past the limit (one frame may go into a full queue's place).
        assert!(outbox.lock().queued() <= 256 * 1024 + 70_100);
        sent.push((id, data));
    }
    outbox.close_after_flush();
    let timeout = Duration::from_secs(30);
    tokio::time::timeout(timeout, writing)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let wire = tokio::time::timeout(timeout, reading)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(frames(&wire), sent);
    assert_eq!(budget.used(), 0);
}
