//! Byte payloads across a socket: `Vec<u8>` (copied in bulk) and `Bytes` (sliced from the
//! frame) of every size class up to the frame limit, in both formats, against a service whose
//! types are spelled so that the macro does not see them as byte strings (the plain serde
//! path): the bytes on the wire and the schemas are the same either way.

mod support;

use bytes::Bytes;
use ferry::{ClientOptions, ErrorKind, FormatId, Server, ServerOptions};
use serde::{Deserialize, Serialize};
use support::*;

/// The frame limit of both sides: room for two 1 MiB payloads in JSON (two characters a
/// byte), small enough that the largest payload is quick to test.
const MAX_FRAME: u32 = 5 * 1024 * 1024;

/// A struct with byte fields, marked so that they travel in bulk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    pub id: u32,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    #[serde(with = "ferry::frame_bytes")]
    pub frame: Bytes,
}

/// The same struct without any marks: the plain serde path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Packet")]
pub struct PlainPacket {
    pub id: u32,
    pub data: Vec<u8>,
    pub frame: Vec<u8>,
}

#[ferry::service(name = "Blobs")]
pub trait Blobs {
    async fn echo_vec(&self, data: Vec<u8>) -> Vec<u8>;
    async fn echo_bytes(&self, data: Bytes) -> bytes::Bytes;
    async fn echo_packet(&self, packet: Packet) -> Packet;
    async fn sizes(&self, a: std::vec::Vec<u8>, b: Bytes, c: u8) -> (usize, usize, u8);
}

/// Aliases hide the byte strings from the macro, which then uses serde's own path.
type Blob = Vec<u8>;
type Buf = Bytes;

#[ferry::service(name = "Blobs")]
pub trait BlobsPlain {
    async fn echo_vec(&self, data: Blob) -> Blob;
    async fn echo_bytes(&self, data: Buf) -> Buf;
    async fn echo_packet(&self, packet: PlainPacket) -> PlainPacket;
    async fn sizes(&self, a: Blob, b: Buf, c: u8) -> (usize, usize, u8);
}

struct BlobsImpl;

impl Blobs for BlobsImpl {
    async fn echo_vec(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }
    async fn echo_bytes(&self, data: Bytes) -> Bytes {
        data
    }
    async fn echo_packet(&self, packet: Packet) -> Packet {
        packet
    }
    async fn sizes(&self, a: Vec<u8>, b: Bytes, c: u8) -> (usize, usize, u8) {
        (a.len(), b.len(), c)
    }
}

impl BlobsPlain for BlobsImpl {
    async fn echo_vec(&self, data: Blob) -> Blob {
        data
    }
    async fn echo_bytes(&self, data: Buf) -> Buf {
        data
    }
    async fn echo_packet(&self, packet: PlainPacket) -> PlainPacket {
        packet
    }
    async fn sizes(&self, a: Blob, b: Buf, c: u8) -> (usize, usize, u8) {
        (a.len(), b.len(), c)
    }
}

fn server() -> Server {
    Server::with_options(ServerOptions::new().max_frame(MAX_FRAME))
}

fn options(format: FormatId) -> ClientOptions {
    ClientOptions::new().format(format).max_frame(MAX_FRAME)
}

/// A payload of `len` bytes; zeros in JSON, where each costs two characters (`0,`).
fn payload(format: FormatId, len: usize) -> Vec<u8> {
    match format {
        FormatId::Json => vec![0; len],
        _ => (0..len).map(|i| (i % 251) as u8).collect(),
    }
}

/// The largest payload whose request (header aside) fits in one frame.
fn largest(format: FormatId) -> usize {
    let encoded_len = |len: usize| {
        let mut out = bytes::BytesMut::new();
        let args = (payload(format, len),);
        ferry::codec::encode_request_with(&mut out, 1, 0, 0, None, u32::MAX, |out| {
            format.encode(&args, out)
        })
        .expect("encodes");
        out.len() - ferry::codec::HEADER_LEN
    };
    let per_byte = if format == FormatId::Json { 2 } else { 1 };
    let mut len = MAX_FRAME as usize / per_byte - 16;
    loop {
        let spare = MAX_FRAME as usize - encoded_len(len);
        if spare < per_byte {
            return len;
        }
        len += spare / per_byte;
    }
}

/// Payload sizes: empty, one byte, around the reader's 8 KiB frame threshold (header and
/// length prefix included), 1 MiB and the largest that fits in a frame.
fn sizes(format: FormatId) -> Vec<usize> {
    let mut sizes = vec![0, 1, 8191, 8192, 8193];
    sizes.extend(8170..=8180);
    sizes.extend([1024 * 1024, largest(format)]);
    sizes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vec_and_bytes_round_trip_at_every_size_in_both_formats() {
    let (name, _server, _task) = start(server().serve(BlobsServer::new(BlobsImpl))).await;
    for format in [FormatId::Bincode, FormatId::Json] {
        let blobs = within(BlobsClient::connect_with(name.as_str(), &options(format)))
            .await
            .unwrap();
        for len in sizes(format) {
            let data = payload(format, len);
            let back = within(blobs.echo_vec(data.clone())).await.unwrap();
            assert!(
                back == data,
                "{format}: Vec<u8> of {len} bytes came back changed"
            );
            let data = Bytes::from(data);
            let back = within(blobs.echo_bytes(data.clone())).await.unwrap();
            assert!(
                back == data,
                "{format}: Bytes of {len} bytes came back changed"
            );
        }
        // One byte more than fits is refused with a typed error, before it is sent.
        let too_long = payload(format, largest(format) + 1);
        let err = within(blobs.echo_vec(too_long)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FrameTooLarge, "{format}: {err}");
        // The connection still works.
        assert_eq!(
            within(blobs.sizes(vec![1; 3], Bytes::from_static(b"ab"), 7))
                .await
                .unwrap(),
            (3, 2, 7)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_and_plain_paths_interoperate_in_both_directions() {
    let (bulk_name, _bulk, _task) = start(server().serve(BlobsServer::new(BlobsImpl))).await;
    let (plain_name, _plain, _task) = start(server().serve(BlobsPlainServer::new(BlobsImpl))).await;
    for format in [FormatId::Bincode, FormatId::Json] {
        let options = options(format).strict_contract(true);
        // A bulk client calls a plain server, a plain client a bulk server.
        let bulk = within(BlobsClient::connect_with(plain_name.as_str(), &options))
            .await
            .unwrap();
        let plain = within(BlobsPlainClient::connect_with(bulk_name.as_str(), &options))
            .await
            .unwrap();
        for len in [0, 1, 300, 70_000, 1024 * 1024] {
            let data = payload(format, len);
            assert!(within(bulk.echo_vec(data.clone())).await.unwrap() == data);
            assert!(within(plain.echo_vec(data.clone())).await.unwrap() == data);
            let data = Bytes::from(data);
            assert!(within(bulk.echo_bytes(data.clone())).await.unwrap() == data);
            assert!(within(plain.echo_bytes(data.clone())).await.unwrap() == data);
            assert_eq!(
                within(bulk.sizes(data.to_vec(), data.clone(), 9))
                    .await
                    .unwrap(),
                (len, len, 9)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_byte_fields_round_trip_and_match_the_plain_struct() {
    let (bulk_name, _bulk, _task) = start(server().serve(BlobsServer::new(BlobsImpl))).await;
    let (plain_name, _plain, _task) = start(server().serve(BlobsPlainServer::new(BlobsImpl))).await;
    for format in [FormatId::Bincode, FormatId::Json] {
        let options = options(format).strict_contract(true);
        let to_bulk = within(BlobsClient::connect_with(bulk_name.as_str(), &options))
            .await
            .unwrap();
        let to_plain = within(BlobsClient::connect_with(plain_name.as_str(), &options))
            .await
            .unwrap();
        let plain = within(BlobsPlainClient::connect_with(bulk_name.as_str(), &options))
            .await
            .unwrap();
        for len in [0, 5, 100_000] {
            let packet = Packet {
                id: 42,
                data: payload(format, len),
                frame: Bytes::from(payload(format, len / 2)),
            };
            assert_eq!(
                within(to_bulk.echo_packet(packet.clone())).await.unwrap(),
                packet
            );
            assert_eq!(
                within(to_plain.echo_packet(packet.clone())).await.unwrap(),
                packet
            );
            let twin = PlainPacket {
                id: packet.id,
                data: packet.data.clone(),
                frame: packet.frame.to_vec(),
            };
            assert_eq!(within(plain.echo_packet(twin.clone())).await.unwrap(), twin);
        }
    }
}

#[test]
fn the_schemas_do_not_see_the_bulk_path() {
    use ferry::contract::ServiceDispatch;
    let bulk = BlobsServer::new(BlobsImpl);
    let plain = BlobsPlainServer::new(BlobsImpl);
    let bulk = bulk.info().method_schemas().unwrap();
    let plain = plain.info().method_schemas().unwrap();
    assert_eq!(bulk.len(), plain.len());
    for (bulk, plain) in bulk.iter().zip(plain.iter()) {
        assert_eq!(
            (&bulk.name, bulk.canonical()),
            (&plain.name, plain.canonical())
        );
    }
    assert!(
        bulk[0].canonical().contains("bytes"),
        "{}",
        bulk[0].canonical()
    );
}

#[ferry::service]
pub trait Chunks {
    async fn vec_chunks(&self, count: u32, len: u32) -> ferry::Streaming<Vec<u8>>;
    async fn bytes_chunks(&self, count: u32, len: u32) -> ferry::Streaming<Bytes>;
    async fn total(&self, chunks: ferry::Streaming<Vec<u8>>) -> u64;
}

struct ChunksImpl;

impl Chunks for ChunksImpl {
    async fn vec_chunks(&self, count: u32, len: u32) -> ferry::Streaming<Vec<u8>> {
        ferry::Streaming::from_iter((0..count).map(move |i| vec![i as u8; len as usize]))
    }
    async fn bytes_chunks(&self, count: u32, len: u32) -> ferry::Streaming<Bytes> {
        ferry::Streaming::from_iter(
            (0..count).map(move |i| Bytes::from(vec![i as u8; len as usize])),
        )
    }
    async fn total(&self, mut chunks: ferry::Incoming<Vec<u8>>) -> u64 {
        use futures::StreamExt;
        let mut total = 0;
        while let Some(chunk) = chunks.next().await {
            let Ok(chunk) = chunk else { return u64::MAX };
            total += chunk.iter().map(|&b| u64::from(b)).sum::<u64>();
        }
        total
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_stream_items_round_trip_in_both_formats() {
    use futures::StreamExt;
    let (name, _server, _task) = start(server().serve(ChunksServer::new(ChunksImpl))).await;
    for format in [FormatId::Bincode, FormatId::Json] {
        let chunks = within(ChunksClient::connect_with(name.as_str(), &options(format)))
            .await
            .unwrap();
        for len in [0u32, 1, 8193, 300_000] {
            let items: Vec<_> = within(
                within(chunks.vec_chunks(3, len))
                    .await
                    .unwrap()
                    .collect::<Vec<_>>(),
            )
            .await;
            assert_eq!(items.len(), 3);
            for (i, item) in items.into_iter().enumerate() {
                assert!(
                    item.unwrap() == vec![i as u8; len as usize],
                    "{format} {len}"
                );
            }
            let items: Vec<_> = within(
                within(chunks.bytes_chunks(3, len))
                    .await
                    .unwrap()
                    .collect::<Vec<_>>(),
            )
            .await;
            for (i, item) in items.into_iter().enumerate() {
                assert!(
                    item.unwrap() == vec![i as u8; len as usize],
                    "{format} {len}"
                );
            }
            let upload = ferry::Streaming::from_iter((0..3).map(move |_| vec![2u8; len as usize]));
            assert_eq!(
                within(chunks.total(upload)).await.unwrap(),
                6 * u64::from(len)
            );
        }
    }
}
