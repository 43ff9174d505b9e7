//! The server's accepting Welcome (encoded once per service, protocol version and payload
//! format when the server is made): each client gets the one of its own version and format,
//! with the method table from version 2 on.

mod support;

use bytes::BytesMut;
use ferry::codec::{FormatId, HandshakeStatus, Hello, Welcome, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::{start_calc, within, CALC_SERVICE_INFO};

/// Says `hello` on a new connection to `name` and returns the server's answer.
async fn welcome_for(name: &str, hello: Hello) -> Welcome {
    let name = ferry::Name::new(name).expect("name");
    let mut stream = within(ferry::transport::connect(&name))
        .await
        .expect("connect");
    let mut out = BytesMut::new();
    hello.encode(&mut out).expect("hello");
    stream.write_all(&out).await.expect("write");
    let mut buf = BytesMut::new();
    within(async {
        loop {
            if let Some(welcome) = Welcome::decode(&mut buf).expect("welcome") {
                return welcome;
            }
            assert_ne!(stream.read_buf(&mut buf).await.expect("read"), 0, "closed");
        }
    })
    .await
}

#[tokio::test]
async fn each_version_and_format_gets_its_own_welcome() {
    let (name, _handle, _probe) = start_calc().await;
    let service = &CALC_SERVICE_INFO;
    for version in 1..=PROTOCOL_VERSION {
        for format in [FormatId::Bincode, FormatId::Json] {
            let hello = Hello {
                version,
                format: format.as_u8(),
                flags: Hello::BIND_BY_NAME,
                max_frame: 1 << 20,
                signature: service.signature,
                service: service.name.to_owned(),
            };
            let welcome = welcome_for(&name, hello).await;
            let what = format!("version {version}, format {}", format.name());
            assert_eq!(welcome.status, HandshakeStatus::OK, "{what}");
            assert_eq!(welcome.version, version, "{what}");
            assert_eq!(welcome.format, format.as_u8(), "{what}");
            assert!(welcome.message.is_empty(), "{what}");
            match welcome.methods {
                None => assert_eq!(version, 1, "{what}: no method table"),
                Some(table) => {
                    assert!(version >= 2, "{what}: a method table");
                    let names: Vec<&str> = table
                        .entries()
                        .iter()
                        .map(|entry| entry.name.as_str())
                        .collect();
                    assert_eq!(names, service.methods, "{what}");
                }
            }
        }
    }
}
