//! Codec micro-benchmarks: encoding and decoding one request frame with a 64 B and a
//! 1 MiB `Bytes` argument in the bincode payload format, exactly as a client and a server do
//! it on the hot path (header, arguments tuple, length patch; then frame cut and decode).
//!
//! The `bytes_1MiB` group sets a 1 MiB `Vec<u8>` argument beside a `memcpy` of the same
//! size: encoded and decoded through serde's own path (one element at a time) and through
//! the bulk path the service macro uses (`BulkRef`/`Bulk`), and a `Bytes` decoded as a
//! slice of its frame.
//!
//! `cargo bench --bench codec`

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferry::codec::{begin_frame, finish_frame, Bulk, BulkRef, FormatId, FrameDecoder, FrameKind};
use std::hint::black_box;

const SIZES: [(&str, usize); 2] = [("64B", 64), ("1MiB", 1024 * 1024)];
const MAX_FRAME: u32 = 16 * 1024 * 1024;

fn encode_request(out: &mut BytesMut, id: u64, data: &Bytes) {
    let start = begin_frame(out, FrameKind::REQUEST, 0, 0, id);
    FormatId::Bincode
        .encode(&(data,), out)
        .expect("a Bytes argument always encodes");
    finish_frame(out, start, MAX_FRAME).expect("the frame is below the limit");
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_request");
    for (name, size) in SIZES {
        let data = Bytes::from(vec![0xA5u8; size]);
        let mut out = BytesMut::with_capacity(size + 64);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &data, |b, data| {
            b.iter(|| {
                out.clear();
                encode_request(&mut out, 7, black_box(data));
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_request");
    for (name, size) in SIZES {
        let data = Bytes::from(vec![0xA5u8; size]);
        let mut wire = BytesMut::new();
        encode_request(&mut wire, 7, &data);
        let wire = wire.freeze();
        let mut decoder = FrameDecoder::new(MAX_FRAME);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &wire, |b, wire| {
            b.iter(|| {
                // The copy into the read buffer stands for the socket read.
                let mut buf = BytesMut::from(&wire[..]);
                let frame = decoder
                    .decode(&mut buf)
                    .expect("a valid frame")
                    .expect("a whole frame");
                let (args,): (Bytes,) = FormatId::Bincode
                    .decode(&frame.body)
                    .expect("valid arguments");
                black_box(args.len())
            })
        });
    }
    group.finish();
}

fn bytes_1mib(c: &mut Criterion) {
    const SIZE: usize = 1024 * 1024;
    let mut group = c.benchmark_group("bytes_1MiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    let data: Vec<u8> = (0..SIZE).map(|i| i as u8).collect();
    let mut out = BytesMut::with_capacity(SIZE + 64);
    group.bench_function("memcpy", |b| {
        let mut copy = vec![0u8; SIZE];
        b.iter(|| {
            copy.copy_from_slice(black_box(&data));
            black_box(copy.as_ptr())
        })
    });
    group.bench_function("encode_vec_serde", |b| {
        b.iter(|| {
            out.clear();
            FormatId::Bincode
                .encode(&(black_box(&data),), &mut out)
                .expect("encodes");
            black_box(out.len())
        })
    });
    group.bench_function("encode_vec_bulk", |b| {
        b.iter(|| {
            out.clear();
            FormatId::Bincode
                .encode(&(BulkRef(black_box(&data)),), &mut out)
                .expect("encodes");
            black_box(out.len())
        })
    });
    let mut body = BytesMut::new();
    FormatId::Bincode
        .encode(&(&data,), &mut body)
        .expect("encodes");
    let body = body.freeze();
    group.bench_function("decode_vec_serde", |b| {
        b.iter(|| {
            let (back,): (Vec<u8>,) = FormatId::Bincode
                .decode_frame(black_box(&body))
                .expect("decodes");
            black_box(back.len())
        })
    });
    group.bench_function("decode_vec_bulk", |b| {
        b.iter(|| {
            let (back,): (Bulk<Vec<u8>>,) = FormatId::Bincode
                .decode_frame(black_box(&body))
                .expect("decodes");
            black_box(back.0.len())
        })
    });
    group.bench_function("decode_bytes_sliced", |b| {
        b.iter(|| {
            let (back,): (Bulk<Bytes>,) = FormatId::Bincode
                .decode_frame(black_box(&body))
                .expect("decodes");
            black_box(back.0.len())
        })
    });
    group.finish();
}

criterion_group!(benches, encode, decode, bytes_1mib);
criterion_main!(benches);
