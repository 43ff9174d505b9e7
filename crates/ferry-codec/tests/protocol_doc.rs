//! Checks every example block of `docs/protocol.md` against the bytes this crate produces.
//!
//! A block is a fenced code block whose info string carries `name=<name>`. Hex blocks hold
//! hex bytes with `#` comments; `json-lines` blocks hold one JSON value per line.

use std::collections::BTreeMap;
use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use ferry_codec::{
    begin_request, encode_request_with, finish_frame, flags, signature_hash, FormatId, Frame,
    FrameDecoder, FrameKind, HandshakeStatus, Hello, Metadata, MetadataLimits, MethodEntry,
    MethodTable, StatusCode, Welcome, DEFAULT_MAX_FRAME,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const CANONICAL: &str = "service Calc { add(i64,i64)->i64; }";
const CANONICAL_HASH: u64 = 0xd68b_eadf_fe90_afc0;

struct Block {
    lang: String,
    lines: Vec<String>,
}

fn read_blocks() -> BTreeMap<String, Block> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut blocks = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut words = info.split_whitespace();
        let lang = words.next().unwrap_or("").to_owned();
        let name = words.find_map(|w| w.strip_prefix("name="));
        let body: Vec<String> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .map(str::to_owned)
            .collect();
        if lang == "hex" || lang == "json-lines" {
            assert!(name.is_some(), "example block without name=: {line}");
        }
        if let Some(name) = name {
            let previous = blocks.insert(name.to_owned(), Block { lang, lines: body });
            assert!(previous.is_none(), "two blocks named {name}");
        }
    }
    blocks
}

/// Splits a line into its content and its `#` comment, both trimmed.
fn split_comment(line: &str) -> (&str, &str) {
    match line.split_once('#') {
        Some((content, comment)) => (content.trim(), comment.trim()),
        None => (line.trim(), ""),
    }
}

fn parse_hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|pair| {
            assert_eq!(pair.len(), 2, "hex byte {pair:?} is not two digits");
            u8::from_str_radix(pair, 16).unwrap_or_else(|e| panic!("hex byte {pair:?}: {e}"))
        })
        .collect()
}

fn hex_block(blocks: &BTreeMap<String, Block>, name: &str) -> Vec<u8> {
    let block = blocks
        .get(name)
        .unwrap_or_else(|| panic!("docs/protocol.md has no block name={name}"));
    assert_eq!(block.lang, "hex", "block {name}");
    block
        .lines
        .iter()
        .flat_map(|l| parse_hex(split_comment(l).0))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x} ")).collect()
}

fn assert_frame(doc: &[u8], expected_wire: &BytesMut, expected: &Frame, name: &str) {
    assert_eq!(
        hex(doc),
        hex(expected_wire),
        "block {name} differs from the codec"
    );
    let mut buf = BytesMut::from(doc);
    let frame = FrameDecoder::new(DEFAULT_MAX_FRAME)
        .decode(&mut buf)
        .unwrap()
        .unwrap_or_else(|| panic!("block {name} is not a whole frame"));
    assert!(buf.is_empty(), "block {name} has bytes after the frame");
    assert_eq!(&frame, expected, "block {name}");
}

fn request(format: FormatId, id: u64, deadline: Option<u32>) -> BytesMut {
    let mut out = BytesMut::new();
    let start = begin_request(&mut out, id, 0, deadline);
    format.encode(&(1i64, 2i64), &mut out).unwrap();
    finish_frame(&mut out, start, DEFAULT_MAX_FRAME).unwrap();
    out
}

/// Every named block; those of section 11 (introspection) need the runtime and are checked
/// by the `ferry` crate's `tests/introspect.rs`.
const ALL_NAMES: &[&str] = &[
    "bincode-examples",
    "cancel",
    "canonical-signature",
    "early-request",
    "error",
    "error-early-rejected",
    "error-metadata",
    "goaway",
    "hello",
    "hello-introspect",
    "introspect-describe-schema",
    "introspect-signature",
    "json-examples",
    "ping",
    "pong",
    "request",
    "request-deadline",
    "request-describe",
    "request-handles",
    "request-json",
    "request-metadata",
    "response",
    "response-handles-windows",
    "response-metadata",
    "schema-examples",
    "schema-json",
    "schema-method-hashes",
    "shared-bytes",
    "welcome-ok",
    "welcome-rejected",
];

#[test]
fn every_named_block_is_checked() {
    let blocks = read_blocks();
    let names: Vec<&str> = blocks.keys().map(String::as_str).collect();
    assert_eq!(names, ALL_NAMES, "add a check for new blocks");
}

#[test]
fn canonical_signature_and_hash() {
    let blocks = read_blocks();
    let block = &blocks["canonical-signature"];
    assert_eq!(block.lines, [CANONICAL]);
    assert_eq!(signature_hash(CANONICAL), CANONICAL_HASH);
}

#[test]
fn hello() {
    let doc = hex_block(&read_blocks(), "hello");
    let hello = Hello {
        version: 3,
        format: FormatId::Bincode.as_u8(),
        flags: Hello::BIND_BY_NAME | Hello::EARLY,
        max_frame: 16 * 1024 * 1024,
        signature: signature_hash(CANONICAL),
        service: "Calc".to_owned(),
    };
    let mut out = BytesMut::new();
    hello.encode(&mut out).unwrap();
    assert_eq!(hex(&doc), hex(&out));
    let mut buf = BytesMut::from(&doc[..]);
    assert_eq!(Hello::decode(&mut buf).unwrap(), Some(hello));
    assert!(buf.is_empty());
}

#[test]
fn welcome_ok() {
    let doc = hex_block(&read_blocks(), "welcome-ok");
    let mut welcome = Welcome::accept(FormatId::Bincode.as_u8(), DEFAULT_MAX_FRAME, 64);
    use ferry_codec::schema::{MethodSchema, TypeSchema};
    let i64_ = || TypeSchema::of::<i64>().unwrap();
    let add = MethodSchema::new("add", vec![i64_(), i64_()], i64_());
    assert_eq!(
        add.hash(),
        0x72fa_6025_3074_a7b8,
        "the hash of section 10.3"
    );
    welcome.methods = Some(
        MethodTable::new(vec![MethodEntry {
            name: add.name.clone(),
            hash: add.hash(),
        }])
        .unwrap(),
    );
    let mut out = BytesMut::new();
    welcome.encode(&mut out);
    assert_eq!(hex(&doc), hex(&out));
    let mut buf = BytesMut::from(&doc[..]);
    assert_eq!(Welcome::decode(&mut buf).unwrap(), Some(welcome));
    assert!(buf.is_empty());
}

#[test]
fn welcome_rejected() {
    let doc = hex_block(&read_blocks(), "welcome-rejected");
    let welcome = Welcome::reject(HandshakeStatus::UNKNOWN_SERVICE, 0, "no service `Calk`");
    let mut out = BytesMut::new();
    welcome.encode(&mut out);
    assert_eq!(hex(&doc), hex(&out));
    let mut buf = BytesMut::from(&doc[..]);
    let decoded = Welcome::decode(&mut buf).unwrap().unwrap();
    assert_eq!(decoded, welcome);
    assert!(!decoded.status.is_ok());
}

#[test]
fn request_without_deadline() {
    let doc = hex_block(&read_blocks(), "request");
    let expected = Frame::request(1, 0, Bytes::from_static(&[0x02, 0x04]));
    assert_frame(
        &doc,
        &request(FormatId::Bincode, 1, None),
        &expected,
        "request",
    );
    let (deadline, args) = expected.split_deadline().unwrap();
    assert_eq!(deadline, None);
    assert_eq!(
        FormatId::Bincode.decode::<(i64, i64)>(&args).unwrap(),
        (1, 2)
    );
}

#[test]
fn request_with_deadline() {
    let doc = hex_block(&read_blocks(), "request-deadline");
    let expected = Frame::request(2, 0, Bytes::from_static(&[0x02, 0x04])).with_deadline(1500);
    let wire = request(FormatId::Bincode, 2, Some(1500));
    assert_frame(&doc, &wire, &expected, "request-deadline");
    let (deadline, args) = expected.split_deadline().unwrap();
    assert_eq!(deadline, Some(1500));
    assert_eq!(
        FormatId::Bincode.decode::<(i64, i64)>(&args).unwrap(),
        (1, 2)
    );
}

#[test]
fn request_json() {
    let doc = hex_block(&read_blocks(), "request-json");
    let expected = Frame::request(4, 0, Bytes::from_static(b"[1,2]"));
    assert_frame(
        &doc,
        &request(FormatId::Json, 4, None),
        &expected,
        "request-json",
    );
    assert_eq!(
        FormatId::Json.decode::<(i64, i64)>(&expected.body).unwrap(),
        (1, 2)
    );
}

#[test]
fn request_with_metadata() {
    let doc = hex_block(&read_blocks(), "request-metadata");
    let metadata = Metadata::new().with("locale", "fr").unwrap();
    let mut wire = BytesMut::new();
    encode_request_with(
        &mut wire,
        5,
        0,
        flags::METADATA,
        Some(1500),
        DEFAULT_MAX_FRAME,
        |buf| {
            metadata.encode(buf);
            FormatId::Bincode.encode(&(1i64, 2i64), buf)
        },
    )
    .unwrap();
    let mut body = BytesMut::new();
    metadata.encode(&mut body);
    body.extend_from_slice(&[0x02, 0x04]);
    let mut expected = Frame::request(5, 0, body.freeze()).with_deadline(1500);
    expected.flags |= flags::METADATA;
    assert_frame(&doc, &wire, &expected, "request-metadata");
    let (deadline, rest) = expected.split_deadline().unwrap();
    assert_eq!(deadline, Some(1500));
    let (decoded, args) = Metadata::split(&rest, &MetadataLimits::default()).unwrap();
    assert_eq!(decoded, metadata);
    assert_eq!(
        FormatId::Bincode.decode::<(i64, i64)>(&args).unwrap(),
        (1, 2)
    );
}

#[test]
fn response_with_metadata() {
    let doc = hex_block(&read_blocks(), "response-metadata");
    let metadata = Metadata::new().with("cost", vec![0x2au8]).unwrap();
    let mut body = BytesMut::new();
    metadata.encode(&mut body);
    FormatId::Bincode.encode(&3i64, &mut body).unwrap();
    let mut expected = Frame::new(FrameKind::RESPONSE, 5, body.freeze());
    expected.flags = flags::METADATA;
    let mut wire = BytesMut::new();
    expected.encode(&mut wire);
    assert_frame(&doc, &wire, &expected, "response-metadata");
    let (decoded, value) = Metadata::split(&expected.body, &MetadataLimits::default()).unwrap();
    assert_eq!(decoded.get("cost").unwrap().as_bytes(), &[0x2a]);
    assert_eq!(FormatId::Bincode.decode::<i64>(&value).unwrap(), 3);
}

/// Section 8.6: reply metadata on an ERROR, in front of its message.
#[test]
fn error_metadata() {
    let doc = hex_block(&read_blocks(), "error-metadata");
    let metadata = Metadata::new().with("error-id", "e-42").unwrap();
    let message = "the handler of `fail` panicked";
    let mut body = BytesMut::new();
    metadata.encode(&mut body);
    body.extend_from_slice(message.as_bytes());
    let mut expected = Frame::new(FrameKind::ERROR, 5, body.freeze());
    expected.flags = flags::METADATA;
    expected.aux = StatusCode::INTERNAL.0;
    let mut wire = BytesMut::new();
    expected.encode(&mut wire);
    assert_frame(&doc, &wire, &expected, "error-metadata");
    let (decoded, rest) = Metadata::split(&expected.body, &MetadataLimits::default()).unwrap();
    assert_eq!(decoded.get_str("error-id"), Some("e-42"));
    assert_eq!(&rest[..], message.as_bytes());
}

#[test]
fn response() {
    let doc = hex_block(&read_blocks(), "response");
    let mut body = BytesMut::new();
    FormatId::Bincode.encode(&3i64, &mut body).unwrap();
    let expected = Frame::new(FrameKind::RESPONSE, 1, body.freeze());
    let mut wire = BytesMut::new();
    expected.encode(&mut wire);
    assert_frame(&doc, &wire, &expected, "response");
    assert_eq!(FormatId::Bincode.decode::<i64>(&expected.body).unwrap(), 3);
}

/// Section 8.4: a request with one handle (Unix: the count alone), and a reply with one
/// (Windows: the value, then the count). A handle is a newtype around its `u32` index, which
/// bincode writes as the index alone.
#[test]
fn handles() {
    use ferry_codec::{append_handle_trailer, encode_request_with, flags, split_handle_trailer};
    let blocks = read_blocks();

    let doc = hex_block(&blocks, "request-handles");
    let mut wire = BytesMut::new();
    encode_request_with(&mut wire, 4, 0, 0, None, DEFAULT_MAX_FRAME, |buf| {
        FormatId::Bincode.encode(&(0u32,), buf)
    })
    .unwrap();
    append_handle_trailer(&mut wire, 0, 1, &[], DEFAULT_MAX_FRAME).unwrap();
    let mut expected = Frame::request(4, 0, Bytes::from_static(&[0x00, 0x01, 0x00]));
    expected.flags = flags::HANDLES;
    assert_frame(&doc, &wire, &expected, "request-handles");
    let (payload, count, values) = split_handle_trailer(&expected, false).unwrap();
    assert_eq!((count, values), (1, vec![]));
    assert_eq!(FormatId::Bincode.decode::<(u32,)>(&payload).unwrap(), (0,));

    let doc = hex_block(&blocks, "response-handles-windows");
    let mut wire = BytesMut::new();
    ferry_codec::encode_frame_with(
        &mut wire,
        FrameKind::RESPONSE,
        0,
        0,
        4,
        DEFAULT_MAX_FRAME,
        |buf| FormatId::Bincode.encode(&0u32, buf),
    )
    .unwrap();
    append_handle_trailer(&mut wire, 0, 1, &[0x1f4], DEFAULT_MAX_FRAME).unwrap();
    let (_, frame_bytes) = wire.split_at(16);
    let mut expected = Frame::new(FrameKind::RESPONSE, 4, Bytes::copy_from_slice(frame_bytes));
    expected.flags = flags::HANDLES;
    assert_frame(&doc, &wire, &expected, "response-handles-windows");
    let (payload, count, values) = split_handle_trailer(&expected, true).unwrap();
    assert_eq!((count, values), (1, vec![0x1f4]));
    assert_eq!(FormatId::Bincode.decode::<u32>(&payload).unwrap(), 0);
}

#[test]
fn error() {
    let doc = hex_block(&read_blocks(), "error");
    let expected = Frame::error(
        3,
        StatusCode::UNKNOWN_METHOD,
        "no method 7 in service `Calc`",
    );
    let mut wire = BytesMut::new();
    expected.encode(&mut wire);
    assert_frame(&doc, &wire, &expected, "error");
}

#[test]
fn early_request() {
    let doc = hex_block(&read_blocks(), "early-request");
    let mut wire = BytesMut::new();
    ferry_codec::encode_early_request_with(&mut wire, 1, 0, None, DEFAULT_MAX_FRAME, |buf| {
        FormatId::Bincode.encode(&(1i64, 2i64), buf)
    })
    .unwrap();
    let mut expected = Frame::request(1, 0, Bytes::from_static(&[0x02, 0x04]));
    expected.kind = FrameKind::EARLY_REQUEST;
    assert_frame(&doc, &wire, &expected, "early-request");
}

#[test]
fn error_early_rejected() {
    let doc = hex_block(&read_blocks(), "error-early-rejected");
    let expected = Frame::error(1, StatusCode::EARLY_REJECTED, "early request not run");
    let mut wire = BytesMut::new();
    expected.encode(&mut wire);
    assert_frame(&doc, &wire, &expected, "error-early-rejected");
}

#[test]
fn cancel() {
    let doc = hex_block(&read_blocks(), "cancel");
    let expected = Frame::new(FrameKind::CANCEL, 2, Bytes::new());
    let mut wire = BytesMut::new();
    expected.encode(&mut wire);
    assert_frame(&doc, &wire, &expected, "cancel");
}

#[test]
fn goaway() {
    let doc = hex_block(&read_blocks(), "goaway");
    let expected = Frame::goaway(5);
    let mut wire = BytesMut::new();
    expected.encode(&mut wire);
    assert_frame(&doc, &wire, &expected, "goaway");
    assert_eq!(expected.kind, FrameKind::GOAWAY);
    assert_eq!(expected.goaway_last_id().unwrap(), 5);
}

#[test]
fn ping_and_pong() {
    let data = *b"ferry\x00\x00\x01";
    for (name, expected) in [("ping", Frame::ping(data)), ("pong", Frame::pong(data))] {
        let doc = hex_block(&read_blocks(), name);
        let mut wire = BytesMut::new();
        expected.encode(&mut wire);
        assert_frame(&doc, &wire, &expected, name);
        assert_eq!(expected.ping_data().unwrap(), data);
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Color {
    Red,
    Green,
    Blue,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Command {
    Move { x: i32, y: i32 },
}

type Check = Box<dyn Fn(FormatId, &[u8])>;

/// Encodes `value`, compares with `doc`, and decodes `doc` back to `value`.
fn check<T>(value: T) -> Check
where
    T: Serialize + DeserializeOwned + PartialEq + Debug + 'static,
{
    Box::new(move |format, doc| {
        let mut out = BytesMut::new();
        format.encode(&value, &mut out).unwrap();
        assert_eq!(hex(doc), hex(&out), "{format} encoding of {value:?}");
        assert_eq!(format.decode::<T>(doc).unwrap(), value, "{format} decoding");
    })
}

/// Checks a block of one example per line; `expected` pairs each line's comment with its value.
fn check_lines(name: &str, format: FormatId, expected: Vec<(&str, Check)>) {
    let blocks = read_blocks();
    let block = &blocks[name];
    let lines: Vec<(&str, &str)> = block.lines.iter().map(|l| split_comment(l)).collect();
    let comments: Vec<&str> = lines.iter().map(|(_, c)| *c).collect();
    let wanted: Vec<&str> = expected.iter().map(|(c, _)| *c).collect();
    assert_eq!(comments, wanted, "lines of block {name}");
    for ((content, _), (_, check)) in lines.iter().zip(&expected) {
        let bytes = match format {
            FormatId::Json => content.as_bytes().to_vec(),
            _ => parse_hex(content),
        };
        check(format, &bytes);
    }
}

#[test]
fn bincode_examples() {
    check_lines(
        "bincode-examples",
        FormatId::Bincode,
        vec![
            ("3u64", check(3u64)),
            ("251u32", check(251u32)),
            ("70000u32", check(70000u32)),
            ("-2i64", check(-2i64)),
            ("true", check(true)),
            ("\"hi\"", check("hi".to_owned())),
            ("None::<u8>", check(None::<u8>)),
            ("Some(true)", check(Some(true))),
            ("vec![1u16, 300]", check(vec![1u16, 300])),
            ("Color::Green (variant index 1)", check(Color::Green)),
            ("the arguments (1i64, 2i64)", check((1i64, 2i64))),
            ("Ok::<(), u8>(())", check(Ok::<(), u8>(()))),
            ("Err::<(), u8>(5)", check(Err::<(), u8>(5))),
        ],
    );
    // Keep the other variants used, so the indices in the doc stay meaningful.
    assert_ne!(Color::Red, Color::Blue);
}

#[test]
fn json_examples() {
    check_lines(
        "json-examples",
        FormatId::Json,
        vec![
            ("the arguments (1i64, 2i64)", check((1i64, 2i64))),
            (
                "the arguments (String::from(\"a\"),)",
                check((String::from("a"),)),
            ),
            ("no arguments", check(ferry_codec::NoArgs)),
            ("the return value 3i64", check(3i64)),
            ("None::<u8>, and the return value ()", {
                let none = check(None::<u8>);
                let unit = check(());
                Box::new(move |f, d| {
                    none(f, d);
                    unit(f, d);
                })
            }),
            ("Color::Green", check(Color::Green)),
            (
                "Command::Move { x: 1, y: 2 }",
                check(Command::Move { x: 1, y: 2 }),
            ),
            (
                "serde_bytes::ByteBuf::from(b\"hi\")",
                check(serde_bytes::ByteBuf::from(b"hi".to_vec())),
            ),
            ("Ok::<(), u8>(())", check(Ok::<(), u8>(()))),
            ("Err::<(), u8>(5)", check(Err::<(), u8>(5))),
        ],
    );
}

/// The types of the examples of section 10.
#[allow(dead_code)]
mod schema_types {
    use serde::Deserialize;

    pub type Id = u64;

    /// A newtype struct named `Id` (the alias above takes the Rust name).
    #[derive(Deserialize)]
    #[serde(rename = "Id")]
    pub struct NewId(pub u64);

    #[derive(Deserialize)]
    pub struct Job {
        pub name: String,
        pub owner: String,
        pub state: State,
    }

    #[derive(Deserialize)]
    pub enum State {
        Queued,
        Running,
    }

    #[derive(Deserialize)]
    pub enum Shape {
        Dot,
        Circle(f64),
        Rect(f64, f64),
        Move { x: i32, y: i32 },
    }

    #[derive(Deserialize)]
    pub struct Node {
        pub value: u32,
        pub children: Vec<Node>,
    }

    #[derive(Deserialize)]
    #[serde(rename = "job-spec", rename_all = "kebab-case")]
    pub struct Renamed {
        pub max_retries: u8,
        #[serde(rename = "q\"uote\\")]
        pub odd: u8,
    }

    /// `Job` with the fields `name` and `owner` swapped.
    pub mod swapped_fields {
        #[derive(serde::Deserialize)]
        pub struct Job {
            pub owner: String,
            pub name: String,
            pub state: super::State,
        }
    }

    /// `Job` with the variants of its state swapped.
    pub mod swapped_variants {
        #[derive(serde::Deserialize)]
        pub struct Job {
            pub name: String,
            pub owner: String,
            pub state: State,
        }

        #[derive(serde::Deserialize)]
        pub enum State {
            Running,
            Queued,
        }
    }
}

fn shape_text<T: DeserializeOwned>() -> String {
    ferry_codec::schema::Shape::of::<T>().unwrap().canonical()
}

#[test]
fn schema_examples() {
    use schema_types::*;
    let blocks = read_blocks();
    let block = &blocks["schema-examples"];
    let lines: Vec<(&str, &str)> = block.lines.iter().map(|l| split_comment(l)).collect();
    let expected: Vec<(&str, Vec<String>)> = vec![
        (
            "u64, and type Id = u64",
            vec![shape_text::<u64>(), shape_text::<Id>()],
        ),
        (
            "Option<Vec<String>>",
            vec![shape_text::<Option<Vec<String>>>()],
        ),
        (
            "HashMap<String, i32>",
            vec![shape_text::<std::collections::HashMap<String, i32>>()],
        ),
        ("[u16; 3]", vec![shape_text::<[u16; 3]>()]),
        (
            "Vec<u8>, bytes::Bytes, serde_bytes::ByteBuf",
            vec![
                shape_text::<Vec<u8>>(),
                shape_text::<Bytes>(),
                shape_text::<serde_bytes::ByteBuf>(),
            ],
        ),
        ("struct Id(u64)", vec![shape_text::<NewId>()]),
        ("Job", vec![shape_text::<Job>()]),
        ("Shape", vec![shape_text::<Shape>()]),
        ("Node", vec![shape_text::<Node>()]),
        ("Renamed", vec![shape_text::<Renamed>()]),
    ];
    let comments: Vec<&str> = lines.iter().map(|(_, c)| *c).collect();
    let wanted: Vec<&str> = expected.iter().map(|(c, _)| *c).collect();
    assert_eq!(comments, wanted, "lines of block schema-examples");
    for ((text, comment), (_, texts)) in lines.iter().zip(&expected) {
        for from_rust in texts {
            assert_eq!(text, from_rust, "schema-examples: {comment}");
        }
    }
}

fn job_method<T: DeserializeOwned>() -> ferry_codec::schema::MethodSchema {
    use ferry_codec::schema::{MethodSchema, TypeSchema};
    MethodSchema::new(
        "job",
        vec![TypeSchema::of::<u64>().unwrap()],
        TypeSchema::of::<T>().unwrap(),
    )
}

#[test]
fn schema_method_hashes() {
    use ferry_codec::schema::{MethodSchema, TypeSchema};
    use schema_types::*;
    let blocks = read_blocks();
    let block = &blocks["schema-method-hashes"];
    let of = |ty: Result<TypeSchema, _>| ty.unwrap();
    let expected: Vec<(&str, MethodSchema)> = vec![
        (
            "add(a: i64, b: i64) -> i64",
            MethodSchema::new(
                "add",
                vec![of(TypeSchema::of::<i64>()); 2],
                of(TypeSchema::of::<i64>()),
            ),
        ),
        (
            "reset()",
            MethodSchema::new("reset", vec![], of(TypeSchema::of::<()>())),
        ),
        (
            "watch(dir: String) -> Streaming<u32>",
            MethodSchema::new(
                "watch",
                vec![of(TypeSchema::of::<String>())],
                of(TypeSchema::stream_of::<u32>()),
            ),
        ),
        ("job(id: u64) -> Job", job_method::<Job>()),
        (
            "job with the fields name and owner swapped",
            job_method::<swapped_fields::Job>(),
        ),
        (
            "job with the variants Queued and Running swapped",
            job_method::<swapped_variants::Job>(),
        ),
    ];
    let lines: Vec<(&str, &str)> = block.lines.iter().map(|l| split_comment(l)).collect();
    let comments: Vec<&str> = lines.iter().map(|(_, c)| *c).collect();
    let wanted: Vec<&str> = expected.iter().map(|(c, _)| *c).collect();
    assert_eq!(comments, wanted, "lines of block schema-method-hashes");
    let mut hashes = std::collections::HashSet::new();
    for ((content, comment), (_, method)) in lines.iter().zip(&expected) {
        let (hash, text) = content.split_once(' ').expect("hash, then text");
        let hash = u64::from_str_radix(hash.trim_start_matches("0x"), 16).unwrap();
        assert_eq!(text.trim(), method.canonical(), "{comment}");
        assert_eq!(hash, method.hash(), "{comment}: {:#018x}", method.hash());
        assert_eq!(hash, signature_hash(text.trim()), "{comment}");
        assert!(hashes.insert(hash), "{comment}: hash repeated");
    }
}

#[test]
fn schema_json() {
    let blocks = read_blocks();
    let block = &blocks["schema-json"];
    assert_eq!(block.lang, "json");
    let doc: serde_json::Value = serde_json::from_str(&block.lines.concat()).unwrap();
    assert_eq!(doc, job_method::<schema_types::Job>().to_json());
}

/// A handle's place in a payload: its index in the frame's handles (protocol.md 8.4).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Handle")]
struct HandleIndex(u32);

/// `ferry::SharedBytes` on the wire: the segment's handle and the length (protocol.md 8.5).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename = "SharedBytes")]
struct SharedSegment(HandleIndex, u64);

#[test]
fn shared_bytes() {
    check_lines(
        "shared-bytes",
        FormatId::Bincode,
        vec![(
            "SharedBytes: handle 0, 1048576 bytes",
            check(SharedSegment(HandleIndex(0), 1 << 20)),
        )],
    );
}
