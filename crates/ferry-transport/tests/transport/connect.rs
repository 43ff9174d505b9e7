//! Connecting: absent servers, waiting for a server, credentials, many clients.

use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use ferry_transport::{
    connect, connect_with, ConnectOptions, Listener, ListenerOptions, Name, TransportError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{runtime_dir, scratch_dir, unique_name, within};

#[tokio::test]
async fn absent_server_is_not_found() {
    let name = Name::new(&unique_name("absent")).unwrap();
    match within(connect(&name)).await {
        Err(TransportError::NotFound { address, .. }) => assert_eq!(address, name.address()),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn refused_connection_is_not_found() {
    let scratch = scratch_dir();
    let path = scratch.join("refused.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = within(connect(&Name::path(&path))).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn wait_succeeds_when_server_appears_later() {
    let name = Name::new(&unique_name("later")).unwrap();
    let server_name = name.clone();
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let listener = Listener::bind(&server_name, &ListenerOptions::new()).unwrap();
        let mut stream = listener.accept().await.unwrap();
        stream.write_all(b"hello").await.unwrap();
    });
    let options = ConnectOptions::new().wait(Duration::from_secs(15));
    let mut stream = within(connect_with(&name, &options)).await.unwrap();
    let mut buf = [0; 5];
    within(stream.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"hello");
    within(server).await.unwrap();
}

#[tokio::test]
async fn wait_gives_up_with_connect_timeout() {
    let name = Name::new(&unique_name("never")).unwrap();
    let options = ConnectOptions::new().wait(Duration::from_millis(300));
    match within(connect_with(&name, &options)).await {
        Err(err @ TransportError::ConnectTimeout { .. }) => {
            assert!(err.is_timeout());
            let TransportError::ConnectTimeout { address, waited } = err else {
                unreachable!()
            };
            assert_eq!(address, name.address());
            assert!(waited >= Duration::from_millis(300), "{waited:?}");
        }
        other => panic!("expected ConnectTimeout, got {other:?}"),
    }
}

#[tokio::test]
async fn peer_credentials_name_this_process() {
    let name = Name::new(&unique_name("cred")).unwrap();
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    let (client, server) = within(async { tokio::join!(connect(&name), listener.accept()) }).await;
    let (client, server) = (client.unwrap(), server.unwrap());
    // The runtime directory was created by this process, so it carries our uid.
    let uid = std::fs::metadata(runtime_dir()).unwrap().uid();
    let gid = std::fs::metadata(runtime_dir()).unwrap().gid();
    for cred in [client.peer_credentials(), server.peer_credentials()] {
        assert_eq!(cred.pid(), Some(std::process::id()));
        assert_eq!(cred.uid(), Some(uid));
        assert_eq!(cred.gid(), Some(gid));
        assert_eq!(cred.sid(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_clients() {
    const CLIENTS: u32 = 64;
    let name = Name::new(&unique_name("many")).unwrap();
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    let server = tokio::spawn(async move {
        let mut handlers = Vec::new();
        for _ in 0..CLIENTS {
            let mut stream = listener.accept().await.unwrap();
            handlers.push(tokio::spawn(async move {
                let mut buf = [0; 4];
                stream.read_exact(&mut buf).await.unwrap();
                let n = u32::from_le_bytes(buf);
                stream.write_all(&(n * 2).to_le_bytes()).await.unwrap();
            }));
        }
        for handler in handlers {
            handler.await.unwrap();
        }
    });
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let name = name.clone();
        clients.push(tokio::spawn(async move {
            let options = ConnectOptions::new().wait(Duration::from_secs(10));
            let mut stream = connect_with(&name, &options).await.unwrap();
            stream.write_all(&i.to_le_bytes()).await.unwrap();
            let mut buf = [0; 4];
            stream.read_exact(&mut buf).await.unwrap();
            assert_eq!(u32::from_le_bytes(buf), i * 2);
        }));
    }
    for client in clients {
        within(client).await.unwrap();
    }
    within(server).await.unwrap();
}

#[tokio::test]
async fn path_from_string_with_slash() {
    let scratch = scratch_dir();
    let path = scratch.join("s.sock");
    let name = Name::new(path.to_str().unwrap()).unwrap();
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    assert_eq!(listener.address(), path.display().to_string());
    let (client, server) = within(async { tokio::join!(connect(&name), listener.accept()) }).await;
    client.unwrap();
    server.unwrap();
}

/// Polls `connect(name)` once, on this thread, with no I/O driver turn in between.
fn connect_on_first_poll(name: &Name) -> ferry_transport::Stream {
    let mut connecting = std::pin::pin!(connect(name));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match connecting.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(stream) => stream.unwrap(),
        std::task::Poll::Pending => panic!("connecting to {name} waited for the runtime"),
    }
}

/// A Unix socket connects at once: the connect does not wait for the socket's readiness
/// (a turn of the runtime's I/O driver, a wake-up from another thread on a multi-thread
/// runtime), and the stream works.
#[tokio::test]
async fn connects_without_waiting_for_readiness() {
    let scratch = scratch_dir();
    let mut names = vec![
        Name::new(&unique_name("now")).unwrap(),
        Name::path(scratch.join("now.sock")),
    ];
    if cfg!(any(target_os = "linux", target_os = "android")) {
        names.push(Name::new(&format!("@{}", unique_name("now"))).unwrap());
    }
    for name in names {
        let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
        let mut client = connect_on_first_poll(&name);
        assert_eq!(client.peer_credentials().pid(), Some(std::process::id()));
        let mut server = within(listener.accept()).await.unwrap();
        within(client.write_all(b"now")).await.unwrap();
        let mut buf = [0; 3];
        within(server.read_exact(&mut buf)).await.unwrap();
        assert_eq!(&buf, b"now", "{name}");
    }
}
