//! The introspection service every server hosts: through a raw-socket JSON client that
//! sends the bytes of docs/protocol.md section 11 (as a client in another language would),
//! through the typed client, on `serve_stream`, and the reserved `ferry.` names.

mod support;

use ferry::introspect::{IntrospectClient, INTROSPECT_SERVICE_INFO, SERVICE_NAME};
use ferry::transport::ToName;
use ferry::ErrorKind;
use serde_json::Value;
use support::{start_calc, unique_name, within, CalcServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The named block of docs/protocol.md: its lines, comments and all.
fn doc_block(name: &str) -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        if info.split_whitespace().any(|w| w == format!("name={name}")) {
            return lines
                .take_while(|l| !l.starts_with("```"))
                .map(str::to_owned)
                .collect();
        }
    }
    panic!("docs/protocol.md has no block name={name}");
}

/// The bytes of a hex block (`#` starts a comment).
fn doc_hex(name: &str) -> Vec<u8> {
    doc_block(name)
        .iter()
        .flat_map(|line| {
            let content = line.split('#').next().unwrap_or("");
            content
                .split_whitespace()
                .map(|pair| u8::from_str_radix(pair, 16).expect("hex byte"))
                .collect::<Vec<u8>>()
        })
        .collect()
}

#[test]
fn the_documented_signature_is_the_service_s() {
    let block = doc_block("introspect-signature");
    assert_eq!(block, [INTROSPECT_SERVICE_INFO.canonical]);
    assert_eq!(INTROSPECT_SERVICE_INFO.name, SERVICE_NAME);
    assert_eq!(INTROSPECT_SERVICE_INFO.signature, 0x3890_581c_7c15_0156);
    assert_eq!(INTROSPECT_SERVICE_INFO.methods, ["describe"]);
}

/// Reads exactly `n` bytes.
async fn read_n(stream: &mut ferry::transport::Stream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    within(stream.read_exact(&mut buf)).await.expect("read");
    buf
}

#[tokio::test]
async fn a_raw_json_client_describes_a_server_with_the_documented_bytes() {
    let (name, _server, _probe) = start_calc().await;
    let mut stream = within(ferry::transport::connect(&name.as_str().to_name().unwrap()))
        .await
        .expect("connect");

    // The Hello and the REQUEST exactly as docs/protocol.md section 11 spells them.
    let hello = doc_hex("hello-introspect");
    let request = doc_hex("request-describe");
    assert_eq!(&hello[..4], b"FRRY");
    within(stream.write_all(&hello)).await.unwrap();

    // Welcome: 18 bytes then the message.
    let welcome = read_n(&mut stream, 18).await;
    assert_eq!(&welcome[..4], b"FRRY");
    assert_eq!(welcome[6], 0, "status OK");
    assert_eq!(welcome[7], 1, "format JSON");
    let message_len = u16::from_le_bytes([welcome[16], welcome[17]]);
    assert_eq!(message_len, 0);

    within(stream.write_all(&request)).await.unwrap();
    let header = read_n(&mut stream, 16).await;
    let body_len = u32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
    assert_eq!(header[4], 0x02, "kind RESPONSE");
    assert_eq!(u64::from_le_bytes(header[8..16].try_into().unwrap()), 1);
    let body = read_n(&mut stream, body_len).await;
    let reply: Value = serde_json::from_slice(&body).expect("the reply is JSON");

    assert_eq!(reply["pid"], std::process::id());
    assert_eq!(reply["protocol"], ferry::codec::PROTOCOL_VERSION);
    assert_eq!(reply["ferry"], env!("CARGO_PKG_VERSION"));
    let services = reply["services"].as_array().expect("services");
    let names: Vec<&str> = services.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["Calc", "ferry.introspect"]);
    let calc = &services[0];
    assert_eq!(
        calc["signature"],
        format!("{:#018x}", support::CALC_SERVICE_INFO.signature)
    );
    assert_eq!(calc["canonical"], support::CALC_SERVICE_INFO.canonical);
    let methods = calc["methods"].as_array().expect("methods");
    assert_eq!(methods.len(), support::CALC_SERVICE_INFO.methods.len());
    for (index, method) in methods.iter().enumerate() {
        assert_eq!(method["index"], index);
        assert_eq!(method["name"], support::CALC_SERVICE_INFO.methods[index]);
        let schema = support::CALC_SERVICE_INFO
            .method_schema(index as u16)
            .expect("Calc describes its schemas");
        assert_eq!(method["hash"], format!("{:#018x}", schema.hash()));
        let text = method["schema"].as_str().expect("the schema as JSON text");
        let json: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(json, schema.to_json());
        assert_eq!(
            &ferry::codec::schema::MethodSchema::from_json(&json).unwrap(),
            schema
        );
    }
}

#[test]
fn the_documented_describe_schema_is_the_service_s() {
    let schema = INTROSPECT_SERVICE_INFO.method_schema(0).expect("describe");
    let block = doc_block("introspect-describe-schema");
    let (hash, text) = block[0].split_once(' ').expect("hash then text");
    assert_eq!(text, schema.canonical());
    assert_eq!(hash, format!("{:#018x}", schema.hash()));
}

#[tokio::test]
async fn the_typed_client_describes_over_bincode() {
    let (name, _server, _probe) = start_calc().await;
    let client = within(IntrospectClient::connect(name.as_str()))
        .await
        .expect("connect");
    let description = within(client.describe()).await.expect("describe");
    assert_eq!(description.pid, std::process::id());
    let calc = description.service("Calc").expect("Calc");
    assert_eq!(
        calc.signature_hash(),
        Some(support::CALC_SERVICE_INFO.signature)
    );
    assert_eq!(calc.method("div").map(|m| m.index), Some(1));
    let own = description.service(SERVICE_NAME).expect("itself");
    assert_eq!(
        own.signature_hash(),
        Some(INTROSPECT_SERVICE_INFO.signature)
    );
}

#[tokio::test]
async fn serve_stream_hosts_it_too() {
    let (client_end, server_end) = ferry::transport::pair().expect("pair");
    let (service, _probe) = support::calc();
    tokio::spawn(
        ferry::Server::new()
            .serve(CalcServer::new(service))
            .serve_stream(server_end),
    );
    let client = within(IntrospectClient::from_stream(
        client_end,
        &ferry::ClientOptions::default(),
    ))
    .await
    .expect("handshake");
    let description = within(client.describe()).await.expect("describe");
    assert!(description.service("Calc").is_some());
}

/// A user service that takes a reserved name.
#[ferry::service(name = "ferry.mine")]
pub trait Squatter {
    async fn nothing(&self);
}

struct SquatterImpl;

impl Squatter for SquatterImpl {
    async fn nothing(&self) {}
}

#[tokio::test]
async fn a_user_service_cannot_take_a_reserved_name() {
    let err = ferry::Server::new()
        .serve(SquatterServer::new(SquatterImpl))
        .bind(unique_name("reserved"))
        .await
        .expect_err("a reserved name is refused");
    assert_eq!(err.kind(), ErrorKind::Usage);
    assert!(
        support::chain(&err).contains("service name `ferry.mine` is reserved"),
        "{err}"
    );
}
