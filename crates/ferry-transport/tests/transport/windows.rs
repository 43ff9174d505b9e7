//! Named pipes: instances, busy pipes, timeouts, disconnects, peer identity, squatting.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ferry_transport::os::windows::{ListenerOptionsExt, PipeAccess};
use ferry_transport::{
    connect, connect_with, pair, ConnectOptions, Listener, ListenerOptions, Name, TransportError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Upper bound for any await in these tests.
const LIMIT: Duration = Duration::from_secs(20);

/// Selects the role of a child process started by a test (see [`Child`] helpers below).
const CHILD_ROLE_ENV: &str = "FERRY_TRANSPORT_TEST_CHILD";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique_name(tag: &str) -> Name {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Name::new(&format!("ferry-test-{}-{n}-{tag}", std::process::id())).unwrap()
}

async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("operation hung")
}

/// Wine accepts a second first instance of a name and ignores pipe ACLs.
fn under_wine() -> bool {
    std::env::var_os("FERRY_UNDER_WINE").is_some()
}

#[tokio::test]
async fn many_clients_are_served_each_on_its_own_instance() {
    const CLIENTS: usize = 64;
    let name = unique_name("many");
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let name = name.clone();
            tokio::spawn(async move {
                let mut stream = connect(&name).await.unwrap();
                stream.write_all(&[i as u8]).await.unwrap();
                let mut back = [0; 2];
                stream.read_exact(&mut back).await.unwrap();
                assert_eq!(back, [i as u8, 0xEE]);
                stream
            })
        })
        .collect();
    // Hold every server end at once: each is a distinct, live pipe instance.
    let mut served = Vec::new();
    for _ in 0..CLIENTS {
        let mut stream = within(listener.accept()).await.unwrap();
        let mut byte = [0; 1];
        within(stream.read_exact(&mut byte)).await.unwrap();
        within(stream.write_all(&[byte[0], 0xEE])).await.unwrap();
        served.push(stream);
    }
    let mut seen = Vec::new();
    for client in clients {
        let stream = within(client).await.unwrap();
        seen.push(stream);
    }
    assert_eq!(served.len(), CLIENTS);
    assert_eq!(seen.len(), CLIENTS);
}

#[tokio::test]
async fn busy_pipe_is_retried_until_an_instance_frees_up() {
    let name = unique_name("busy");
    let listener = Listener::bind(&name, &ListenerOptions::new().max_instances(1)).unwrap();
    let first = within(connect(&name)).await.unwrap();
    let first_served = within(listener.accept()).await.unwrap();

    // The only instance is taken: a short attempt keeps retrying, then times out.
    let short = ConnectOptions::new().attempt_timeout(Duration::from_millis(300));
    match within(connect_with(&name, &short)).await {
        Err(TransportError::ConnectTimeout { address, .. }) => assert_eq!(address, name.address()),
        other => panic!("expected ConnectTimeout on a busy pipe, got {other:?}"),
    }

    // A patient client gets through once the first connection is gone.
    let second_name = name.clone();
    let second = tokio::spawn(async move {
        let options = ConnectOptions::new().attempt_timeout(LIMIT);
        let mut stream = connect_with(&second_name, &options).await.unwrap();
        stream.write_all(b"second").await.unwrap();
        stream
    });
    drop(first);
    drop(first_served);
    let mut served = within(listener.accept()).await.unwrap();
    let mut buf = [0; 6];
    within(served.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"second");
    within(second).await.unwrap();
}

#[tokio::test]
async fn no_server_is_not_found_or_a_timeout_when_waiting() {
    let name = unique_name("absent");
    match within(connect(&name)).await {
        Err(TransportError::NotFound { address, .. }) => assert_eq!(address, name.address()),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let options = ConnectOptions::new().wait(Duration::from_millis(300));
    let err = within(connect_with(&name, &options)).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn waiting_client_finds_a_server_that_appears_later() {
    let name = unique_name("later");
    let server_name = name.clone();
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let listener = Listener::bind(&server_name, &ListenerOptions::new()).unwrap();
        let mut stream = listener.accept().await.unwrap();
        stream.write_all(b"hi").await.unwrap();
        stream
    });
    let options = ConnectOptions::new().wait(LIMIT);
    let mut stream = within(connect_with(&name, &options)).await.unwrap();
    let mut buf = [0; 2];
    within(stream.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"hi");
    within(server).await.unwrap();
}

#[tokio::test]
async fn server_leaving_mid_call_ends_the_client_stream() {
    let name = unique_name("srv-gone");
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    let mut client = within(connect(&name)).await.unwrap();
    let mut server = within(listener.accept()).await.unwrap();
    within(client.write_all(b"request")).await.unwrap();
    let mut buf = [0; 7];
    within(server.read_exact(&mut buf)).await.unwrap();
    server.write_all(b"par").await.unwrap();
    drop(server);
    // What was written before the server left still arrives, then end of stream.
    let mut rest = Vec::new();
    within(client.read_to_end(&mut rest)).await.unwrap();
    assert_eq!(rest, b"par");
    let err = within(async {
        loop {
            if let Err(err) = client.write_all(b"more").await {
                break err;
            }
        }
    })
    .await;
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err:?}");
}

#[tokio::test]
async fn client_leaving_mid_call_ends_the_server_stream() {
    let name = unique_name("cli-gone");
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    let client = within(connect(&name)).await.unwrap();
    let server = within(listener.accept()).await.unwrap();
    let (mut read, mut write) = server.into_split();
    let reader = tokio::spawn(async move {
        let mut rest = Vec::new();
        read.read_to_end(&mut rest).await.map(|_| rest)
    });
    tokio::task::yield_now().await;
    drop(client);
    assert_eq!(within(reader).await.unwrap().unwrap(), b"");
    let err = within(async {
        loop {
            if let Err(err) = write.write_all(b"reply").await {
                break err;
            }
        }
    })
    .await;
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err:?}");
}

#[tokio::test]
async fn split_halves_work_concurrently() {
    let name = unique_name("split");
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    let client = within(connect(&name)).await.unwrap();
    let server = within(listener.accept()).await.unwrap();
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let expected = payload.clone();
    let writer = tokio::spawn(async move {
        cw.write_all(&payload).await.unwrap();
        cw
    });
    // Echo back through the other half while the client is still writing.
    let echo = tokio::spawn(async move {
        let mut buf = vec![0; 8192];
        let mut total = 0;
        while total < 200_000 {
            let n = sr.read(&mut buf).await.unwrap();
            assert_ne!(n, 0, "early end of stream");
            sw.write_all(&buf[..n]).await.unwrap();
            total += n;
        }
        (sr, sw)
    });
    let mut back = vec![0; 200_000];
    within(cr.read_exact(&mut back)).await.unwrap();
    assert!(back == expected, "echoed bytes differ");
    within(writer).await.unwrap();
    within(echo).await.unwrap();
}

#[tokio::test]
async fn both_sides_know_the_peer_process_and_user() {
    let name = unique_name("pid");
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    let client = within(connect(&name)).await.unwrap();
    let server = within(listener.accept()).await.unwrap();
    let me = std::process::id();
    assert_eq!(client.peer_credentials().pid(), Some(me));
    assert_eq!(server.peer_credentials().pid(), Some(me));
    let sid = server
        .peer_credentials()
        .sid()
        .expect("client sid")
        .to_owned();
    assert!(sid.starts_with("S-1-"), "{sid}");
    assert_eq!(client.peer_credentials().sid(), Some(&*sid));
    assert_eq!(client.peer_credentials().uid(), None);
    // Both ends read the same token as this process reads of itself, groups included.
    let own = ferry_transport::PeerCredentials::of_this_process().unwrap();
    assert_eq!(client.peer_credentials(), &own);
    assert_eq!(server.peer_credentials(), &own);
}

#[tokio::test]
async fn required_server_pid_is_checked() {
    let name = unique_name("require");
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    // Accept (and drop) whatever comes, so every attempt finds a free instance.
    let server = tokio::spawn(async move {
        loop {
            let _ = listener.accept().await;
        }
    });
    let wrong = std::process::id().wrapping_add(1);
    match within(connect_with(
        &name,
        &ConnectOptions::new().require_server_pid(wrong),
    ))
    .await
    {
        Err(TransportError::UnexpectedServer {
            expected, actual, ..
        }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, Some(std::process::id()));
        }
        other => panic!("expected UnexpectedServer, got {other:?}"),
    }
    let right = ConnectOptions::new().require_server_pid(std::process::id());
    within(connect_with(&name, &right)).await.unwrap();
    server.abort();
}

/// Kills the child on every path out of a test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Re-runs this test binary as `role` for `name`, running only `test`.
fn spawn_child(test: &str, role: &str, name: &Name) -> KillOnDrop {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE_ENV, format!("{role}|{}", name.address()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// The role this process was started for, if it is a child.
fn child_role() -> Option<(String, Name)> {
    let value = std::env::var(CHILD_ROLE_ENV).ok()?;
    let (role, address) = value.split_once('|')?;
    Some((role.to_owned(), Name::new(address).unwrap()))
}

#[tokio::test]
async fn peer_process_ids_across_processes() {
    const TEST: &str = "windows::peer_process_ids_across_processes";
    if let Some((role, name)) = child_role() {
        // Child: a client that tells its pid, or a server that does.
        let mut stream = match role.as_str() {
            "client" => within(connect_with(&name, &ConnectOptions::new().wait(LIMIT)))
                .await
                .unwrap(),
            _ => {
                let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
                within(listener.accept()).await.unwrap()
            }
        };
        within(stream.write_all(&std::process::id().to_le_bytes()))
            .await
            .unwrap();
        let mut done = [0; 1];
        let _ = within(stream.read(&mut done)).await;
        return;
    }

    // The child as client: the server sees its pid.
    let name = unique_name("xclient");
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    let _child = spawn_child(TEST, "client", &name);
    let mut served = within(listener.accept()).await.unwrap();
    let mut pid = [0; 4];
    within(served.read_exact(&mut pid)).await.unwrap();
    let child_pid = u32::from_le_bytes(pid);
    assert_ne!(child_pid, std::process::id());
    assert_eq!(served.peer_credentials().pid(), Some(child_pid));
    within(served.write_all(b"x")).await.unwrap();

    // The child as server: the client sees its pid, and can require it.
    let name = unique_name("xserver");
    let _child = spawn_child(TEST, "server", &name);
    let mut stream = within(connect_with(&name, &ConnectOptions::new().wait(LIMIT)))
        .await
        .unwrap();
    within(stream.read_exact(&mut pid)).await.unwrap();
    let child_pid = u32::from_le_bytes(pid);
    assert_ne!(child_pid, std::process::id());
    assert_eq!(stream.peer_credentials().pid(), Some(child_pid));
    within(stream.write_all(b"x")).await.unwrap();
}

#[tokio::test]
async fn a_taken_name_is_refused() {
    // Wine does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE: a second server on the name
    // gets an instance of its own there instead of ERROR_ACCESS_DENIED.
    if under_wine() {
        eprintln!("skipped: Wine does not enforce first_pipe_instance");
        return;
    }
    let name = unique_name("squat");
    let squatter = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    match Listener::bind(&name, &ListenerOptions::new()) {
        Err(TransportError::AddressInUse { address, .. }) => assert_eq!(address, name.address()),
        other => panic!("expected AddressInUse, got {other:?}"),
    }
    drop(squatter);
    Listener::bind(&name, &ListenerOptions::new()).unwrap();
}

#[tokio::test]
async fn wider_access_and_custom_descriptors_bind() {
    let name = unique_name("wide");
    let options = ListenerOptions::new().pipe_access(PipeAccess::LocalUsers);
    let listener = Listener::bind(&name, &options).unwrap();
    let _client = within(connect(&name)).await.unwrap();
    within(listener.accept()).await.unwrap();

    let bad = ListenerOptions::new().pipe_access(PipeAccess::Sddl("not sddl".into()));
    let err = Listener::bind(&unique_name("bad-sddl"), &bad).unwrap_err();
    assert!(
        matches!(err, TransportError::Io { op: "bind", .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn pair_is_connected_both_ways() {
    let (mut a, mut b) = pair().unwrap();
    within(a.write_all(b"ping")).await.unwrap();
    let mut buf = [0; 4];
    within(b.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"ping");
    within(b.write_all(b"pong")).await.unwrap();
    within(a.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"pong");
    assert_eq!(a.peer_credentials().pid(), Some(std::process::id()));
    assert_eq!(b.peer_credentials().pid(), Some(std::process::id()));
    drop(a);
    let mut rest = Vec::new();
    within(b.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn unix_only_names_are_refused() {
    assert!(Name::new("/tmp/x.sock").is_err());
    let err = Listener::bind(&Name::path("C:/x.sock"), &ListenerOptions::new()).unwrap_err();
    assert!(matches!(err, TransportError::Unsupported(_)), "{err:?}");
}

#[tokio::test]
async fn full_pipe_names_work() {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = Name::new(&format!(r"\\.\pipe\ferry-full-{}-{n}", std::process::id())).unwrap();
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    assert_eq!(listener.address(), name.address());
    let mut client = within(connect(&name)).await.unwrap();
    let mut server = within(listener.accept()).await.unwrap();
    within(client.write_all(b"x")).await.unwrap();
    let mut buf = [0; 1];
    within(server.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"x");
}

#[tokio::test]
async fn a_write_blocked_on_a_full_pipe_fails_when_the_reader_leaves() {
    let name = unique_name("full");
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    let client = within(connect(&name)).await.unwrap();
    let server = within(listener.accept()).await.unwrap();
    let (_read, mut write) = server.into_split();
    let chunk = vec![7u8; 64 * 1024];
    fill(&mut write).await;
    drop(client);
    let err = within(async {
        loop {
            if let Err(err) = write.write_all(&chunk).await {
                break err;
            }
        }
    })
    .await;
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err:?}");
}

/// Fills the pipe through `write` until a write no longer completes.
async fn fill(write: &mut (impl AsyncWriteExt + Unpin)) {
    let chunk = vec![7u8; 64 * 1024];
    while let Ok(result) =
        tokio::time::timeout(Duration::from_millis(500), write.write_all(&chunk)).await
    {
        result.unwrap();
    }
}

#[tokio::test]
async fn dropping_an_end_with_a_stuck_write_still_closes_it() {
    // Both sides write and neither reads: the client's last write can never finish, yet
    // dropping the client must close its end so the server sees the disconnect.
    let name = unique_name("stuck");
    let listener = Listener::bind(&name, &ListenerOptions::new()).unwrap();
    let mut client = within(connect(&name)).await.unwrap();
    let server = within(listener.accept()).await.unwrap();
    let (_read, mut write) = server.into_split();
    fill(&mut client).await;
    fill(&mut write).await;
    drop(client);
    let err = within(async {
        loop {
            if let Err(err) = write.write_all(b"more").await {
                break err;
            }
        }
    })
    .await;
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err:?}");
}
