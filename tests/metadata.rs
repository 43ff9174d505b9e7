//! Per-call metadata (protocol version 3): round trips across processes, limits on both
//! sides, malformed blocks, and peers of protocol version 2.
//!
//! The server of the cross-process test is this test binary run again in a role
//! (`support::child`).

mod support;

use bytes::{Bytes, BytesMut};
use ferry::codec::{flags, FormatId, Frame, FrameDecoder, FrameKind, Hello, Welcome};
use ferry::{ClientOptions, ErrorKind, Metadata, MetadataLimits, MetadataValue, StatusCode};
use support::child::{run_role, say, ChildProcess};
use support::raw::RawClient;
use support::{unique_name, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[ferry::service]
pub trait Tags {
    /// The request's metadata, text values as text and binary values as hex.
    async fn seen(&self, cx: &ferry::Context) -> Vec<(String, String)>;
    /// Sets reply metadata `echo` to the request's `ask` (or `none`) and returns 7.
    async fn answer(&self, cx: &ferry::Context) -> u32;
    /// Sets `count` reply entries (as many as the server's limits allow) and returns how
    /// many it set.
    async fn many(&self, cx: &ferry::Context, count: u32) -> u32;
    /// Sets reply metadata `error-id` to the request's `ask`, then panics: the ERROR
    /// carries it.
    async fn fails(&self, cx: &ferry::Context) -> u32;
}

struct TagsImpl;

impl Tags for TagsImpl {
    async fn seen(&self, cx: &ferry::Context) -> Vec<(String, String)> {
        cx.metadata()
            .iter()
            .map(|(key, value)| {
                let shown = match value {
                    MetadataValue::Text(text) => text.clone(),
                    MetadataValue::Binary(bytes) => {
                        bytes.iter().map(|b| format!("{b:02x}")).collect()
                    }
                    other => format!("{other:?}"),
                };
                (key.to_owned(), shown)
            })
            .collect()
    }

    async fn answer(&self, cx: &ferry::Context) -> u32 {
        let ask = cx.metadata().get_str("ask").unwrap_or("none").to_owned();
        cx.set_reply_metadata("echo", ask).expect("reply metadata");
        7
    }

    async fn many(&self, cx: &ferry::Context, count: u32) -> u32 {
        let mut set = 0;
        for n in 0..count {
            if cx.set_reply_metadata(&format!("k{n}"), "v").is_err() {
                break;
            }
            set += 1;
        }
        set
    }

    async fn fails(&self, cx: &ferry::Context) -> u32 {
        let ask = cx.metadata().get_str("ask").unwrap_or("none").to_owned();
        cx.set_reply_metadata("error-id", ask)
            .expect("reply metadata");
        panic!("failing on purpose, after setting reply metadata");
    }
}

/// Not a test of its own: the entry point of the child server. Without a role (a normal
/// test run) it does nothing.
#[test]
fn child_role() {
    run_role(|role, name| async move {
        assert_eq!(role, "server");
        let bound = ferry::Server::new()
            .serve(TagsServer::new(TagsImpl))
            .bind(name.as_str())
            .await
            .expect("child server bind");
        let server = tokio::spawn(bound.run());
        say("ready");
        let _ = server.await;
    });
}

fn method(name: &str) -> ferry::contract::MethodRef {
    TAGS_SERVICE_INFO.method(name).expect("a method of Tags")
}

fn text(md: &Metadata, key: &str) -> String {
    md.get_str(key).unwrap_or("(none)").to_owned()
}

#[tokio::test]
async fn metadata_round_trips_across_processes() {
    let name = unique_name("metadata");
    let mut child = ChildProcess::server(&name).await;

    let tags = within(TagsClient::connect(name.as_str())).await.unwrap();
    assert!(tags.client().supports_metadata());
    // Without metadata: nothing arrives.
    assert!(within(tags.seen()).await.unwrap().is_empty());

    let md = Metadata::new()
        .with("locale", "fr-CH")
        .unwrap()
        .with("token-bin", vec![0u8, 0xff, 7])
        .unwrap();
    let seen = within(tags.with_metadata(md.clone()).seen()).await.unwrap();
    assert_eq!(
        seen,
        vec![
            ("locale".to_owned(), "fr-CH".to_owned()),
            ("token-bin".to_owned(), "00ff07".to_owned()),
        ]
    );
    // The view carries it; the original handle does not.
    assert!(within(tags.seen()).await.unwrap().is_empty());

    // Reply metadata, read through the untyped client.
    let asking = tags
        .client()
        .with_metadata(Metadata::new().with("ask", "hi").unwrap());
    let (value, reply): (u32, Metadata) =
        within(asking.call_with_reply_metadata(method("answer"), &()))
            .await
            .unwrap();
    assert_eq!(value, 7);
    assert_eq!(text(&reply, "echo"), "hi");
    // A typed call ignores reply metadata and still decodes its value.
    assert_eq!(within(tags.answer()).await.unwrap(), 7);

    // A handler that fails after setting reply metadata: the ERROR carries it.
    let err = within(
        tags.with_metadata(Metadata::new().with("ask", "e-7").unwrap())
            .fails(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::INTERNAL), "{err}");
    let reply = err.reply_metadata().expect("metadata on the ERROR");
    assert_eq!(text(reply, "error-id"), "e-7");
    // The same through `call_with_reply_metadata`.
    let err = within(asking.call_with_reply_metadata::<_, u32>(method("fails"), &()))
        .await
        .unwrap_err();
    assert_eq!(
        err.reply_metadata()
            .map(|md| text(md, "error-id"))
            .as_deref(),
        Some("hi")
    );

    drop(tags);
    child.kill().await;
}

/// A Tags server on one end of a socket pair, with `options`, and a client on the other.
async fn pair(server: ferry::ServerOptions, client: ClientOptions) -> TagsClient {
    let (a, b) = ferry::transport::pair().unwrap();
    tokio::spawn(
        ferry::Server::with_options(server)
            .serve(TagsServer::new(TagsImpl))
            .serve_stream(b),
    );
    within(TagsClient::from_stream(a, &client)).await.unwrap()
}

#[tokio::test]
async fn limits_are_enforced_on_both_sides() {
    let small = MetadataLimits::new().max_entries(2);
    let tags = pair(
        ferry::ServerOptions::new().metadata_limits(small),
        ClientOptions::new(),
    )
    .await;
    let three = Metadata::new()
        .with("a", "1")
        .unwrap()
        .with("b", "2")
        .unwrap()
        .with("c", "3")
        .unwrap();
    // The server refuses the call, typed and named; the connection lives on.
    let err = within(tags.with_metadata(three.clone()).seen())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_ARGUMENTS), "{err}");
    assert!(
        support::chain(&err).contains("bad metadata: metadata of 3 entries exceeds limit of 2"),
        "{err}"
    );
    assert_eq!(within(tags.seen()).await.unwrap(), vec![]);
    // A handler cannot set reply metadata past the server's limits.
    assert_eq!(within(tags.many(5)).await.unwrap(), 2);

    // The client checks its own limits before sending: nothing goes out.
    let tags = pair(
        ferry::ServerOptions::new(),
        ClientOptions::new().metadata_limits(MetadataLimits::new().max_size(20)),
    )
    .await;
    let err = within(tags.with_metadata(three).seen()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
    assert_eq!(
        support::chain(&err),
        "metadata over the limits; the call was not sent: metadata of 30 bytes exceeds limit of 20"
    );
    // Reply metadata past the client's limits fails that call only.
    let tight = pair(
        ferry::ServerOptions::new(),
        ClientOptions::new().metadata_limits(MetadataLimits::new().max_entries(1)),
    )
    .await;
    let err = within(
        tight
            .client()
            .call_with_reply_metadata::<_, u32>(method("many"), &(3u32,)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert_eq!(
        support::chain(&err),
        "bad metadata in the server's reply: metadata of 3 entries exceeds limit of 1"
    );
    assert_eq!(within(tight.many(1)).await.unwrap(), 1);
}

/// A raw client of a Tags server on the other end of a socket pair, with protocol
/// `version`.
async fn raw_client(version: u16) -> (RawClient, Welcome) {
    let (a, b) = ferry::transport::pair().unwrap();
    tokio::spawn(
        ferry::Server::new()
            .serve(TagsServer::new(TagsImpl))
            .serve_stream(b),
    );
    let info = &TAGS_SERVICE_INFO;
    let mut hello = Hello::new(info.name, info.signature, FormatId::Bincode);
    hello.version = version;
    RawClient::handshake(a, &hello).await
}

fn request_with_block(id: u64, method: u16, block: &[u8]) -> Frame {
    let mut frame = Frame::request(id, method, Bytes::copy_from_slice(block));
    frame.flags |= flags::METADATA;
    frame
}

#[tokio::test]
async fn malformed_metadata_fails_the_call_and_the_connection_lives() {
    let (mut raw, welcome) = raw_client(3).await;
    assert_eq!(welcome.version, 3);
    // A key with an upper-case letter; then a block longer than the body.
    raw.send(&request_with_block(
        1,
        0,
        &[9, 0, 0, 0, 1, 0, 1, b'A', 0, 0, 0, 0, 0],
    ))
    .await;
    let reply = raw.frame().await;
    assert_eq!((reply.kind, reply.id), (FrameKind::ERROR, 1));
    assert_eq!(reply.status(), StatusCode::BAD_ARGUMENTS);
    assert!(
        reply.message().starts_with("bad metadata: "),
        "{}",
        reply.message()
    );
    raw.send(&request_with_block(2, 0, &[200, 0, 0, 0, 0, 0]))
        .await;
    let reply = raw.frame().await;
    assert_eq!((reply.kind, reply.id), (FrameKind::ERROR, 2));
    assert!(
        reply.message().contains("malformed metadata"),
        "{}",
        reply.message()
    );
    // A valid block with no entries, then the call runs.
    raw.send(&request_with_block(3, 0, &[2, 0, 0, 0, 0, 0]))
        .await;
    let reply = raw.frame().await;
    assert_eq!((reply.kind, reply.id), (FrameKind::RESPONSE, 3));
    assert_eq!(
        FormatId::Bincode
            .decode::<Vec<(String, String)>>(&reply.body)
            .unwrap(),
        vec![]
    );
}

#[tokio::test]
async fn a_version_2_client_has_no_metadata() {
    let (mut raw, welcome) = raw_client(2).await;
    assert_eq!(welcome.version, 2);
    // On version 2 the flag is reserved and ignored: the body is the arguments (none).
    let mut frame = Frame::request(1, 1, Bytes::new());
    frame.flags |= flags::METADATA;
    raw.send(&frame).await;
    let reply = raw.frame().await;
    assert_eq!((reply.kind, reply.id), (FrameKind::RESPONSE, 1));
    // The handler set reply metadata; a version 2 client does not get it.
    assert_eq!(reply.flags & flags::METADATA, 0);
    assert_eq!(FormatId::Bincode.decode::<u32>(&reply.body).unwrap(), 7);
}

#[tokio::test]
async fn metadata_to_a_version_2_server_is_dropped() {
    let (a, mut b) = ferry::transport::pair().unwrap();
    // A server that speaks version 2: it answers the Welcome, then checks the REQUEST.
    let server = tokio::spawn(async move {
        let mut buf = BytesMut::new();
        let hello = loop {
            if let Some(hello) = Hello::decode(&mut buf).unwrap() {
                break hello;
            }
            assert!(b.read_buf(&mut buf).await.unwrap() > 0);
        };
        assert_eq!(hello.version, ferry::codec::PROTOCOL_VERSION);
        let mut welcome = Welcome::accept(hello.format, 1 << 20, 8);
        welcome.version = 2;
        let mut out = BytesMut::new();
        welcome.encode(&mut out);
        b.write_all(&out).await.unwrap();
        let mut decoder = FrameDecoder::default();
        let request = loop {
            if let Some(frame) = decoder.decode(&mut buf).unwrap() {
                break frame;
            }
            assert!(b.read_buf(&mut buf).await.unwrap() > 0);
        };
        let mut out = BytesMut::new();
        let mut body = BytesMut::new();
        FormatId::Bincode
            .encode(&Vec::<(String, String)>::new(), &mut body)
            .unwrap();
        Frame::new(FrameKind::RESPONSE, request.id, body.freeze()).encode(&mut out);
        b.write_all(&out).await.unwrap();
        request
    });
    let tags = within(TagsClient::from_stream(a, &ClientOptions::new()))
        .await
        .unwrap();
    assert!(!tags.client().supports_metadata());
    let md = Metadata::new().with("locale", "fr").unwrap();
    assert_eq!(within(tags.with_metadata(md).seen()).await.unwrap(), vec![]);
    let request = within(server).await.unwrap();
    assert_eq!(request.flags & flags::METADATA, 0, "no metadata flag on v2");
    assert!(request.body.is_empty(), "no metadata block on v2");
}

/// `service Late { late(())->u32; plain(())->u32; }`, written by hand: `late` sets reply
/// metadata only after its reply went out, so the entry stays in the call's reply state.
const LATE: ferry::contract::ServiceInfo = ferry::contract::ServiceInfo::new(
    "Late",
    "service Late { late(())->u32; plain(())->u32; }",
    &["late", "plain"],
);

struct Late;

impl ferry::contract::ServiceDispatch for Late {
    fn info(&self) -> &'static ferry::contract::ServiceInfo {
        &LATE
    }

    fn dispatch(&self, method: u16, call: ferry::contract::Call) -> ferry::contract::Handler {
        ferry::contract::Handler::run(async move {
            call.reply(&u32::from(method)).await;
            if method == 0 {
                call.context()
                    .set_reply_metadata("late", "set after the reply")
                    .expect("reply metadata");
            }
        })
    }
}

#[tokio::test]
async fn reply_metadata_left_by_one_call_never_reaches_the_next() {
    let (a, b) = ferry::transport::pair().unwrap();
    tokio::spawn(ferry::Server::new().serve(Late).serve_stream(b));
    let client = within(ferry::Client::from_stream(a, &LATE, &ClientOptions::new()))
        .await
        .unwrap();
    let late = LATE.method("late").unwrap();
    let plain = LATE.method("plain").unwrap();
    for _ in 0..3 {
        let (value, metadata) = within(client.call_with_reply_metadata::<_, u32>(late, &()))
            .await
            .unwrap();
        assert_eq!((value, metadata.len()), (0, 0));
        // One connection, one call at a time: the next call's reply state is the one the
        // last call left, made as good as new.
        let (value, metadata) = within(client.call_with_reply_metadata::<_, u32>(plain, &()))
            .await
            .unwrap();
        assert_eq!(value, 1);
        assert!(metadata.is_empty(), "{metadata:?}");
    }
}
