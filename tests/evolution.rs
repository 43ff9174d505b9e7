//! Version skew between a client and a server built from different versions of one
//! service: the method table of the version 2 handshake, methods bound by name, a typed
//! error for a method the server lacks or has with another schema, and the strict contract.
//!
//! Each module defines the service `Jobs` (the same wire name) its own way, as two builds
//! of a daemon and its command line tool would.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ferry::contract::{Call, Handler, ServiceDispatch, ServiceInfo};
use support::{start, within};

/// The first release.
mod old {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum State {
        Queued,
        Running,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Job {
        pub name: String,
        pub owner: String,
        pub state: State,
    }

    #[ferry::service(name = "Jobs")]
    pub trait Jobs {
        async fn count(&self) -> u64;
        async fn job(&self, id: u64) -> Job;
        async fn state(&self, id: u64) -> State;
        async fn rename(&self, id: u64, name: String) -> bool;
    }

    pub struct Impl;

    impl Jobs for Impl {
        async fn count(&self) -> u64 {
            3
        }
        async fn job(&self, _id: u64) -> Job {
            Job {
                name: "first".into(),
                owner: "root".into(),
                state: State::Queued,
            }
        }
        async fn state(&self, _id: u64) -> State {
            State::Queued
        }
        async fn rename(&self, id: u64, name: String) -> bool {
            id == 1 && !name.is_empty()
        }
    }
}

/// The next release: one method more (written first, so every index moves), `rename`
/// takes an alias of `u64`, and the struct and enum that `job` and `state` return have
/// their fields and variants in another order under an unchanged trait text.
mod new {
    use serde::{Deserialize, Serialize};

    pub type JobId = u64;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum State {
        Running,
        Queued,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Job {
        pub owner: String,
        pub name: String,
        pub state: State,
    }

    #[ferry::service(name = "Jobs")]
    pub trait Jobs {
        async fn cancel(&self, id: JobId) -> bool;
        async fn count(&self) -> u64;
        async fn job(&self, id: u64) -> Job;
        async fn state(&self, id: u64) -> State;
        async fn rename(&self, id: JobId, name: String) -> bool;
    }

    pub struct Impl;

    impl Jobs for Impl {
        async fn cancel(&self, id: JobId) -> bool {
            id == 1
        }
        async fn count(&self) -> u64 {
            30
        }
        async fn job(&self, _id: u64) -> Job {
            Job {
                owner: "root".into(),
                name: "first".into(),
                state: State::Queued,
            }
        }
        async fn state(&self, _id: u64) -> State {
            State::Queued
        }
        async fn rename(&self, id: JobId, name: String) -> bool {
            id == 1 && !name.is_empty()
        }
    }
}

/// Wraps a service and counts the calls that reach it: proof of what was sent.
struct Counted<S> {
    inner: S,
    calls: Arc<AtomicUsize>,
}

impl<S: ServiceDispatch> ServiceDispatch for Counted<S> {
    fn info(&self) -> &'static ServiceInfo {
        self.inner.info()
    }

    fn dispatch(&self, method: u16, call: Call) -> Handler {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.dispatch(method, call)
    }
}

fn counted<S: ServiceDispatch>(inner: S) -> (Counted<S>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Counted {
        inner,
        calls: Arc::clone(&calls),
    };
    (counted, calls)
}

#[test]
fn the_two_versions_differ_as_the_tests_assume() {
    assert_ne!(
        old::JOBS_SERVICE_INFO.signature,
        new::JOBS_SERVICE_INFO.signature
    );
    let old = old::JOBS_SERVICE_INFO.method_schemas().unwrap();
    let new = new::JOBS_SERVICE_INFO.method_schemas().unwrap();
    // count and rename (u64 and an alias of it) match; job and state do not.
    assert_eq!(old[0].hash(), new[1].hash());
    assert_eq!(old[3].hash(), new[4].hash());
    assert_ne!(old[1].hash(), new[2].hash());
    assert_ne!(old[2].hash(), new[3].hash());
}

/// (a) and (d): a server that gained a method, and spells an argument type by an alias,
/// serves a client of the first release: every method the two agree on is callable.
#[tokio::test]
async fn an_old_client_works_with_a_server_that_gained_a_method() {
    let (name, _shutdown, _task) =
        start(ferry::Server::new().serve(new::JobsServer::new(new::Impl))).await;
    let client = within(old::JobsClient::connect(name.as_str()))
        .await
        .unwrap();
    assert_eq!(
        within(client.count()).await.unwrap(),
        30,
        "the server's count"
    );
    assert!(within(client.rename(1, "x".into())).await.unwrap());
}

/// (b): a client of the next release against a server of the first: everything but the new
/// method works; the new method fails when called, with a typed error, and is not sent.
#[tokio::test]
async fn a_new_client_works_with_an_old_server_except_for_the_new_method() {
    let (service, calls) = counted(old::JobsServer::new(old::Impl));
    let (name, _shutdown, _task) = start(ferry::Server::new().serve(service)).await;
    let client = within(new::JobsClient::connect(name.as_str()))
        .await
        .unwrap();
    assert_eq!(within(client.count()).await.unwrap(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let err = within(client.cancel(1)).await.unwrap_err();
    assert!(err.is_incompatible(), "{err:?}");
    assert_eq!(err.kind(), ferry::ErrorKind::Incompatible);
    let message = support::chain(&err);
    assert!(message.contains("`cancel`"), "{message}");
    assert!(message.contains("not on the server"), "{message}");
    assert!(message.contains("not sent"), "{message}");

    // A call after it reaches the server as the second one: the failed call sent nothing.
    assert!(within(client.rename(1, "y".into())).await.unwrap());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "cancel was not sent");
}

/// (c): the same trait text with swapped struct fields and swapped enum variants used to
/// return plausible, wrong data; now each such method is refused, saying where.
#[tokio::test]
async fn swapped_fields_and_variants_are_refused_saying_where() {
    let (service, calls) = counted(old::JobsServer::new(old::Impl));
    let (name, _shutdown, _task) = start(ferry::Server::new().serve(service)).await;
    let client = within(new::JobsClient::connect(name.as_str()))
        .await
        .unwrap();

    let err = within(client.job(1)).await.unwrap_err();
    assert!(err.is_incompatible(), "{err:?}");
    let message = support::chain(&err);
    assert!(message.contains("method `job`"), "{message}");
    assert!(
        message.contains("struct `Job` field 0 is `owner` here and `name` on the server"),
        "{message}"
    );

    let err = within(client.state(1)).await.unwrap_err();
    assert!(err.is_incompatible(), "{err:?}");
    let message = support::chain(&err);
    assert!(message.contains("method `state`"), "{message}");
    assert!(
        message.contains("variant 0 is `Running` here and `Queued` on the server"),
        "{message}"
    );

    assert_eq!(within(client.count()).await.unwrap(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "only count was sent");
}

/// Over a stream (no name to read the server's schemas from), the difference is still
/// refused, by hash.
#[tokio::test]
async fn a_difference_without_the_servers_schema_is_refused_by_hash() {
    let (a, b) = ferry::transport::pair().unwrap();
    tokio::spawn(
        ferry::Server::new()
            .serve(old::JobsServer::new(old::Impl))
            .serve_stream(a),
    );
    let client = within(new::JobsClient::from_stream(
        b,
        &ferry::ClientOptions::default(),
    ))
    .await
    .unwrap();
    let err = within(client.job(1)).await.unwrap_err();
    assert!(err.is_incompatible(), "{err:?}");
    assert!(
        support::chain(&err).contains("schema differs (hash 0x"),
        "{err}"
    );
    assert_eq!(within(client.count()).await.unwrap(), 3);
}

/// (e): with a strict contract any difference fails the connect, naming the methods.
#[tokio::test]
async fn a_strict_contract_refuses_any_difference() {
    let (name, _shutdown, _task) =
        start(ferry::Server::new().serve(new::JobsServer::new(new::Impl))).await;
    let strict = ferry::ClientOptions::new().strict_contract(true);
    let err = within(old::JobsClient::connect_with(name.as_str(), &strict))
        .await
        .unwrap_err();
    assert!(err.is_service_mismatch(), "{err:?}");
    let message = support::chain(&err);
    assert!(message.contains("strict contract"), "{message}");
    assert!(message.contains("the server has `cancel`"), "{message}");
    assert!(message.contains("method `job`"), "{message}");

    // The same version on both sides passes the strict check.
    let same = within(new::JobsClient::connect_with(name.as_str(), &strict))
        .await
        .unwrap();
    assert!(within(same.cancel(1)).await.unwrap());
}

/// A client of protocol version 1 is checked by the whole-service signature, as before:
/// accepted when it matches, refused when it differs; its Welcome has no method table.
#[tokio::test]
async fn a_version_1_client_is_checked_by_signature() {
    use bytes::BytesMut;
    use ferry::codec::{HandshakeStatus, Hello, Welcome};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    for (signature, accepted) in [
        (old::JOBS_SERVICE_INFO.signature, true),
        (new::JOBS_SERVICE_INFO.signature, false),
    ] {
        let (a, mut b) = ferry::transport::pair().unwrap();
        tokio::spawn(
            ferry::Server::new()
                .serve(old::JobsServer::new(old::Impl))
                .serve_stream(a),
        );
        let mut hello = Hello::new("Jobs", signature, ferry::FormatId::Bincode);
        hello.version = 1;
        hello.flags = Hello::BIND_BY_NAME; // ignored in version 1
        let mut out = BytesMut::new();
        hello.encode(&mut out).unwrap();
        within(b.write_all(&out)).await.unwrap();
        let mut buf = BytesMut::new();
        let welcome = loop {
            if let Some(welcome) = Welcome::decode(&mut buf).unwrap() {
                break welcome;
            }
            let mut chunk = [0u8; 256];
            let n = within(b.read(&mut chunk)).await.unwrap();
            assert!(n > 0, "closed before the welcome");
            buf.extend_from_slice(&chunk[..n]);
        };
        if accepted {
            assert_eq!(welcome.version, 1);
        }
        assert_eq!(welcome.methods, None);
        let status = if accepted {
            HandshakeStatus::OK
        } else {
            HandshakeStatus::SIGNATURE_MISMATCH
        };
        assert_eq!(welcome.status, status, "{}", welcome.message);
        assert!(buf.is_empty(), "nothing after a version 1 welcome");
    }
}

/// A version 2 server sends the table in the server's order with each method's hash.
#[tokio::test]
async fn the_welcome_carries_the_servers_method_table() {
    use bytes::BytesMut;
    use ferry::codec::{Hello, Welcome};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (a, mut b) = ferry::transport::pair().unwrap();
    tokio::spawn(
        ferry::Server::new()
            .serve(new::JobsServer::new(new::Impl))
            .serve_stream(a),
    );
    let mut hello = Hello::new("Jobs", 0, ferry::FormatId::Bincode);
    hello.flags = Hello::BIND_BY_NAME;
    let mut out = BytesMut::new();
    hello.encode(&mut out).unwrap();
    within(b.write_all(&out)).await.unwrap();
    let mut buf = BytesMut::new();
    let welcome = loop {
        if let Some(welcome) = Welcome::decode(&mut buf).unwrap() {
            break welcome;
        }
        let mut chunk = [0u8; 256];
        let n = within(b.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "closed before the welcome: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    assert_eq!(welcome.version, ferry::codec::PROTOCOL_VERSION);
    let table = welcome.methods.expect("a method table");
    let schemas = new::JOBS_SERVICE_INFO.method_schemas().unwrap();
    let got: Vec<(&str, u64)> = table
        .entries()
        .iter()
        .map(|e| (e.name.as_str(), e.hash))
        .collect();
    let expected: Vec<(&str, u64)> = schemas
        .iter()
        .map(|s| (s.name.as_str(), s.hash()))
        .collect();
    assert_eq!(got, expected);
}

mod undescribable {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum Loose {
        Number(u64),
        Text(String),
    }

    #[ferry::service]
    pub trait Lax {
        async fn fine(&self) -> u8;
        async fn loose(&self) -> Loose;
    }

    pub struct Impl;

    impl Lax for Impl {
        async fn fine(&self) -> u8 {
            1
        }
        async fn loose(&self) -> Loose {
            Loose::Number(1)
        }
    }
}

/// A type that cannot be described fails `bind` and `connect` with an error naming the
/// service, the method and the type: never a silent fallback.
#[tokio::test]
async fn an_undescribable_type_fails_bind_and_connect() {
    let server = ferry::Server::new().serve(undescribable::LaxServer::new(undescribable::Impl));
    let err = within(server.bind(support::unique_name("lax")))
        .await
        .unwrap_err();
    assert!(err.is_usage(), "{err:?}");
    let message = support::chain(&err);
    for part in ["`Lax`", "`loose`", "the return value", "Loose"] {
        assert!(message.contains(part), "{part} in {message}");
    }

    let (_a, b) = ferry::transport::pair().unwrap();
    let err = within(undescribable::LaxClient::from_stream(
        b,
        &ferry::ClientOptions::default(),
    ))
    .await
    .unwrap_err();
    assert!(err.is_usage(), "{err:?}");
    let message = support::chain(&err);
    for part in ["`Lax`", "`loose`", "the return value", "Loose"] {
        assert!(message.contains(part), "{part} in {message}");
    }
}

/// A method returning `Result<Streaming<T>, E>` in two releases of `Logs`: the next one
/// adds a method in front, so the method moves.
mod logs {
    pub mod old {
        #[ferry::service(name = "Logs")]
        pub trait Logs {
            async fn follow(&self, query: String) -> Result<ferry::Streaming<u32>, String>;
        }
    }

    pub mod new {
        #[ferry::service(name = "Logs")]
        pub trait Logs {
            async fn size(&self) -> u64;
            async fn follow(&self, query: String) -> Result<ferry::Streaming<u32>, String>;
        }

        pub struct Impl;

        impl Logs for Impl {
            async fn size(&self) -> u64 {
                0
            }
            async fn follow(&self, query: String) -> Result<ferry::Streaming<u32>, String> {
                if query.is_empty() {
                    return Err("empty query".into());
                }
                Ok(ferry::Streaming::from_iter([1, 2]))
            }
        }
    }
}

/// A stream-result method is bound by name like any other: the old client's `follow`
/// reaches the server's `follow`, not whatever sits at its old index.
#[tokio::test]
async fn a_stream_result_method_is_bound_by_name() {
    use futures::StreamExt;

    let (name, _shutdown, _task) =
        start(ferry::Server::new().serve(logs::new::LogsServer::new(logs::new::Impl))).await;
    let client = within(logs::old::LogsClient::connect(name.as_str()))
        .await
        .unwrap();
    let refused = within(client.follow(String::new())).await.unwrap();
    assert_eq!(refused.err().as_deref(), Some("empty query"));
    let items = within(client.follow("x".into())).await.unwrap().unwrap();
    let items: Vec<u32> = within(items.map(Result::unwrap).collect()).await;
    assert_eq!(items, [1, 2]);
}
