//! Who may call: the server's authorization of peers, and the client's check of the
//! server's user.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use ferry::codec::{Frame, HandshakeStatus, Hello, Welcome};
use ferry::transport::ToName;
use ferry::{ClientOptions, ErrorKind, PeerCredentials, Server, ServerOptions, ServerUser};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// This process's effective user id, as the file system sees it.
#[cfg(unix)]
fn own_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    let dir = std::env::temp_dir().join(unique_name("uid"));
    std::fs::create_dir(&dir).expect("temp dir");
    let uid = std::fs::metadata(&dir).expect("metadata").uid();
    let _ = std::fs::remove_dir(&dir);
    uid
}

async fn calc_server(options: ServerOptions) -> (String, ferry::ShutdownHandle, Probe) {
    let (service, probe) = calc();
    let (name, handle, _task) =
        start(Server::with_options(options).serve(CalcServer::new(service))).await;
    (name, handle, probe)
}

#[tokio::test]
async fn the_hook_sees_the_peer_and_can_refuse_it() {
    let seen = Arc::new(Mutex::new(Vec::<PeerCredentials>::new()));
    let options = ServerOptions::new().authorize({
        let seen = Arc::clone(&seen);
        move |peer| {
            seen.lock().unwrap().push(peer.clone());
            false
        }
    });
    let (name, server, _probe) = calc_server(options).await;
    let err = within(CalcClient::connect(name.as_str()))
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::NotAuthorized, "{err}");
    assert!(err.is_not_authorized());
    assert!(
        support::chain(&err).contains("authorization check refused"),
        "{err}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].pid(), Some(std::process::id()));
    #[cfg(unix)]
    assert_eq!(seen[0].uid(), Some(own_uid()));
    within(async {
        while server.connections() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_hook_can_admit() {
    let options = ServerOptions::new().authorize(|peer| peer.pid() == Some(std::process::id()));
    let (name, _server, _probe) = calc_server(options).await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    assert_eq!(within(calc.add(2, 2)).await.unwrap(), 4);
}

#[tokio::test]
async fn a_refused_peer_gets_no_call_dispatched() {
    let options = ServerOptions::new().authorize(|_| false);
    let (name, server, mut probe) = calc_server(options).await;
    let mut stream = within(ferry::transport::connect(&name.as_str().to_name().unwrap()))
        .await
        .unwrap();
    // The hello and a call in one write: the call must never run.
    let mut out = BytesMut::new();
    Hello::new(
        CALC_SERVICE_INFO.name,
        CALC_SERVICE_INFO.signature,
        ferry::FormatId::Bincode,
    )
    .encode(&mut out)
    .unwrap();
    let hang = CALC_SERVICE_INFO
        .methods
        .iter()
        .position(|m| *m == "hang")
        .unwrap() as u16;
    let mut args = BytesMut::new();
    ferry::FormatId::Bincode
        .encode(&(7u64,), &mut args)
        .unwrap();
    Frame::request(1, hang, args.freeze()).encode(&mut out);
    within(stream.write_all(&out)).await.unwrap();
    let mut buf = BytesMut::new();
    let welcome = loop {
        if let Some(welcome) = Welcome::decode(&mut buf).unwrap() {
            break welcome;
        }
        assert!(within(stream.read_buf(&mut buf)).await.unwrap() > 0);
    };
    assert_eq!(welcome.status, HandshakeStatus::NOT_AUTHORIZED);
    assert_eq!(
        within(stream.read_buf(&mut buf)).await.unwrap(),
        0,
        "closed"
    );
    within(async {
        while server.connections() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(probe.started.try_recv().is_err(), "a refused call ran");
}

#[tokio::test]
async fn the_default_admits_the_same_user() {
    let (name, _server, _probe) = calc_server(ServerOptions::new()).await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    assert_eq!(within(calc.add(1, 1)).await.unwrap(), 2);
}

#[tokio::test]
async fn allow_any_user_admits() {
    let (name, _server, _probe) = calc_server(ServerOptions::new().allow_any_user()).await;
    let calc = within(CalcClient::connect(name.as_str())).await.unwrap();
    assert_eq!(within(calc.add(1, 1)).await.unwrap(), 2);
}

#[tokio::test]
async fn the_client_checks_the_server_user() {
    let (name, _server, _probe) = calc_server(ServerOptions::new()).await;
    let same = ClientOptions::new().server_user(ServerUser::SameUser);
    let calc = within(CalcClient::connect_with(name.as_str(), &same))
        .await
        .unwrap();
    assert_eq!(within(calc.add(1, 2)).await.unwrap(), 3);

    #[cfg(unix)]
    {
        let uid = own_uid();
        let exact = ClientOptions::new().server_user(ServerUser::Uid(uid));
        within(CalcClient::connect_with(name.as_str(), &exact))
            .await
            .unwrap();

        let other = uid.wrapping_add(1).max(1);
        let wrong = ClientOptions::new().server_user(ServerUser::Uid(other));
        let err = within(CalcClient::connect_with(name.as_str(), &wrong))
            .await
            .expect_err("wrong server user");
        assert_eq!(err.kind(), ErrorKind::ServerIdentity, "{err}");
        assert!(err.is_server_identity());
        assert!(
            support::chain(&err).contains(&format!("runs as uid {uid}, not as uid {other}")),
            "{err}"
        );
        let sid = ClientOptions::new().server_user(ServerUser::Sid("S-1-5-18".into()));
        let err = within(CalcClient::connect_with(name.as_str(), &sid))
            .await
            .expect_err("no SID on Unix");
        assert_eq!(err.kind(), ErrorKind::ServerIdentity, "{err}");
    }
}
