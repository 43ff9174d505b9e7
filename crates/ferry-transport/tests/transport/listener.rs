//! Binding: directory and socket modes, stale files, live servers, cleanup.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use ferry_transport::{connect, Listener, ListenerOptions, Name, TransportError};

use crate::support::{runtime_dir, scratch_dir, unique_name, within};

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn plain_name_gets_private_dir_and_socket() {
    let name = Name::new(&unique_name("modes")).unwrap();
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    let path = runtime_dir().join(format!("{}.sock", name.as_plain().unwrap()));
    assert_eq!(listener.address(), path.display().to_string());
    assert_eq!(name.address(), listener.address());
    assert_eq!(listener.name(), &name);
    assert_eq!(mode(runtime_dir()), 0o700);
    assert_eq!(mode(&path), 0o600);
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()));
}

#[tokio::test]
async fn mode_option_is_applied() {
    let scratch = scratch_dir();
    let path = scratch.join("m.sock");
    let _listener =
        Listener::bind(&Name::path(&path), &ListenerOptions::new().mode(0o660)).unwrap();
    assert_eq!(mode(&path), 0o660);
}

#[tokio::test]
async fn explicit_path_creates_missing_parent() {
    let scratch = scratch_dir();
    let parent = scratch.join("missing");
    let path = parent.join("p.sock");
    let _listener = Listener::bind(&Name::path(&path), &ListenerOptions::new()).unwrap();
    assert_eq!(mode(&parent), 0o700);
    assert!(path.exists());
}

#[tokio::test]
async fn stale_socket_is_replaced() {
    let scratch = scratch_dir();
    let path = scratch.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "std leaves the file behind");
    let listener = Listener::bind(&Name::path(&path), &ListenerOptions::new()).unwrap();
    // A left-over file would refuse the connection; ours accepts it.
    let name = Name::path(&path);
    let (client, server) = within(async { tokio::join!(connect(&name), listener.accept()) }).await;
    client.unwrap();
    server.unwrap();
}

#[tokio::test]
async fn stale_socket_kept_without_reclaim() {
    let scratch = scratch_dir();
    let path = scratch.join("keep.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = Listener::bind(
        &Name::path(&path),
        &ListenerOptions::new().reclaim_stale(false),
    )
    .unwrap_err();
    assert!(
        matches!(err, TransportError::Io { op: "bind", .. }),
        "{err:?}"
    );
    // Still the left-over file: connecting is refused.
    let err = within(connect(&Name::path(&path))).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn live_socket_is_not_stolen() {
    let name = Name::new(&unique_name("live")).unwrap();
    let first = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    match Listener::bind(&name, &ListenerOptions::new()) {
        Err(err @ TransportError::AddressInUse { .. }) => {
            let TransportError::AddressInUse { address, pid, uid } = &err else {
                unreachable!()
            };
            assert_eq!(*address, name.address());
            // The server holding it is this process, found through a probe connection.
            #[cfg(unix)]
            {
                let me = ferry_transport::PeerCredentials::of_this_process().unwrap();
                assert_eq!(*pid, Some(std::process::id()));
                assert_eq!(*uid, me.uid());
                assert_eq!(
                    err.to_string(),
                    format!(
                        "address {address} is in use by a running server (process {}, user {})",
                        std::process::id(),
                        me.uid().unwrap()
                    )
                );
            }
            #[cfg(not(unix))]
            let _ = (pid, uid);
        }
        other => panic!("expected AddressInUse, got {other:?}"),
    }
    // The first server still works.
    let (client, server) = within(async { tokio::join!(connect(&name), first.accept()) }).await;
    client.unwrap();
    server.unwrap();
}

#[tokio::test]
async fn live_std_socket_is_not_stolen() {
    let scratch = scratch_dir();
    let path = scratch.join("std-live.sock");
    let _other = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let err = Listener::bind(&Name::path(&path), &ListenerOptions::new()).unwrap_err();
    assert!(
        matches!(err, TransportError::AddressInUse { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn regular_file_is_not_replaced() {
    let scratch = scratch_dir();
    let path = scratch.join("file.sock");
    fs::write(&path, b"data").unwrap();
    let err = Listener::bind(&Name::path(&path), &ListenerOptions::new()).unwrap_err();
    assert!(matches!(err, TransportError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("bind"));
    assert_eq!(fs::read(&path).unwrap(), b"data");
}

#[tokio::test]
async fn socket_file_removed_on_drop() {
    let name = Name::new(&unique_name("drop")).unwrap();
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    let path = std::path::PathBuf::from(listener.address());
    assert!(path.exists());
    drop(listener);
    assert!(!path.exists());
    // And the name can be bound again.
    let _again = Listener::bind(&name, &ListenerOptions::new()).unwrap();
}

#[tokio::test]
async fn accept_is_cancel_safe() {
    let name = Name::new(&unique_name("cancel")).unwrap();
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    // Start and abandon an accept before any client exists.
    tokio::select! {
        biased;
        _ = listener.accept() => panic!("no client yet"),
        _ = tokio::task::yield_now() => {}
    }
    let (client, server) = within(async { tokio::join!(connect(&name), listener.accept()) }).await;
    client.unwrap();
    server.unwrap();
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[tokio::test]
async fn abstract_names() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let name = Name::new(&format!("@{}", unique_name("abstract"))).unwrap();
    assert!(name.address().starts_with('@'));
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    assert!(matches!(
        Listener::bind(&name, &ListenerOptions::new()),
        Err(TransportError::AddressInUse { .. })
    ));
    let (client, server) = within(async { tokio::join!(connect(&name), listener.accept()) }).await;
    let (mut client, mut server) = (client.unwrap(), server.unwrap());
    within(client.write_all(b"hi")).await.unwrap();
    let mut buf = [0; 2];
    within(server.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"hi");
    drop(listener);
    // Gone with its listener: nothing left to reclaim.
    let err = within(connect(&name)).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}
