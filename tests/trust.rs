//! Trust in what answers at a name: a runtime directory that another user could control is
//! refused by servers and clients alike, a missing `XDG_RUNTIME_DIR` is an error, not a
//! tree made on the fly, and by default a client talks only to a server of its own user
//! (or root), which `ServerUser::Any` relaxes. A server knows its own user without a
//! file descriptor, so it admits its own user even when it has none to spare.
//!
//! Each case needs its own runtime directory, which is read from the environment, so it
//! runs in a child process: this test binary run again (`current_exe()`) with
//! `FERRY_TRUST_ROLE` naming the role and `--exact child_role` so that only the role runs.
//! The child prints one line per outcome; the parent checks them.
//!
//! Directories and servers "of another user" are made with `chown` and `setuid` to an
//! unused uid, which takes root; without root those cases are skipped (and say so).
#![cfg(unix)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use ferry::transport::TransportError;
use support::*;
use tokio::process::Command;

const ROLE: &str = "FERRY_TRUST_ROLE";
/// The names a child serves or calls, separated by `;`.
const NAMES: &str = "FERRY_TRUST_NAMES";
/// A uid no account uses.
const OTHER_UID: u32 = 54321;
/// The plain name the cases use; each child has its own runtime directory.
const VICTIM: &str = "victim";

/// Not a test of its own: the entry point of the child processes. Without the role
/// variable (a normal test run) it does nothing.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let names = std::env::var(NAMES).unwrap_or_default();
    let names: Vec<&str> = names.split(';').filter(|n| !n.is_empty()).collect();
    match role.as_str() {
        "bind-and-connect" => runtime.block_on(bind_and_connect()),
        "foreign-server" => runtime.block_on(foreign_server(&names)),
        "identity-client" => runtime.block_on(identity_client(&names)),
        "server-at-fd-limit" => runtime.block_on(server_at_fd_limit(names[0])),
        other => panic!("unknown child role {other}"),
    }
}

/// Binds a socket at each name as root, becomes [`OTHER_UID`], then listens: the peer
/// credentials a client reads are those of the `listen` call. Serves Calc on each.
async fn foreign_server(names: &[&str]) {
    use ferry::transport::Name;
    let mut sockets = Vec::new();
    for name in names {
        let name = Name::new(name).expect("name");
        let socket = tokio::net::UnixSocket::new_stream().expect("socket");
        // Plain names resolve to the runtime directory of this child's environment.
        let address = name.address();
        let path = match address.strip_prefix('@') {
            Some(abstract_name) => {
                let mut raw = vec![0u8];
                raw.extend_from_slice(abstract_name.as_bytes());
                PathBuf::from(
                    <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(raw),
                )
            }
            None => PathBuf::from(address),
        };
        socket.bind(&path).expect("bind");
        sockets.push(socket);
    }
    // SAFETY: plain calls; their results are checked.
    unsafe {
        assert_eq!(libc::setgid(OTHER_UID), 0, "setgid");
        assert_eq!(libc::setuid(OTHER_UID), 0, "setuid");
    }
    for socket in sockets {
        let listener = socket.listen(64).expect("listen");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let stream = stream.into_std().expect("into_std");
                let stream = ferry::transport::Stream::from_std(stream).expect("from_std");
                let (service, _probe) = calc();
                tokio::spawn(
                    ferry::Server::new()
                        .serve(CalcServer::new(service))
                        .serve_stream(stream),
                );
            }
        });
    }
    line("ready");
    std::future::pending::<()>().await;
}

/// Calls each name with the default options, with `ServerUser::Any` and with
/// `ServerUser::Uid(OTHER_UID)`; prints each outcome as `<index>-<option>`.
async fn identity_client(names: &[&str]) {
    use ferry::{ClientOptions, ServerUser};
    for (index, name) in names.iter().enumerate() {
        for (option, options) in [
            ("default", ClientOptions::new()),
            ("any", ClientOptions::new().server_user(ServerUser::Any)),
            (
                "uid",
                ClientOptions::new().server_user(ServerUser::Uid(OTHER_UID)),
            ),
        ] {
            let outcome = match CalcClient::connect_with(*name, &options).await {
                Ok(calc) => calc.add(1, 2).await.map(|sum| sum.to_string()),
                Err(err) => Err(err),
            };
            let what = format!("{index}-{option}");
            match outcome {
                Ok(sum) => line(&format!("{what} ok {sum}")),
                Err(err) => say(&what, Some(&err)),
            }
        }
    }
}

/// Serves Calc at `name`, then takes every file descriptor but one: the next client's
/// connection gets the last one, and nothing is left for anything else.
async fn server_at_fd_limit(name: &str) {
    let limit = libc::rlimit {
        rlim_cur: 64,
        rlim_max: 64,
    };
    // SAFETY: `limit` is a valid rlimit; lowering a limit needs no privilege.
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) },
        0,
        "setrlimit"
    );
    let (service, _probe) = calc();
    let bound = ferry::Server::new()
        .serve(CalcServer::new(service))
        .bind(name)
        .await
        .expect("bind");
    tokio::spawn(bound.run());
    // Let the accept loop start (and take what it takes) before the descriptors run out.
    tokio::task::yield_now().await;
    let mut held = Vec::new();
    loop {
        match fs::File::open("/dev/null") {
            Ok(file) => held.push(file),
            Err(err) if err.raw_os_error() == Some(libc::EMFILE) => break,
            Err(err) => panic!("open: {err}"),
        }
    }
    held.pop();
    line("ready");
    std::future::pending::<()>().await;
}

/// Writes `text` on a line of its own (the test harness may have begun one).
fn line(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "\n{text}\n");
    let _ = out.flush();
}

/// Binds a server at [`VICTIM`], then connects a client to it; prints each outcome.
async fn bind_and_connect() {
    let (service, _probe) = calc();
    let bound = ferry::Server::new()
        .serve(CalcServer::new(service))
        .bind(VICTIM)
        .await;
    say("bind", bound.as_ref().err());
    if let Ok(bound) = bound {
        tokio::spawn(bound.run());
    }
    let client = CalcClient::connect(VICTIM).await;
    say("connect", client.as_ref().err());
}

/// One outcome as a line: `<what> ok`, or `<what> <kind> <transport variant> <message>`.
fn say(what: &str, err: Option<&ferry::Error>) {
    let text = match err {
        None => format!("{what} ok"),
        Some(err) => {
            let variant = std::error::Error::source(err)
                .and_then(|source| source.downcast_ref::<TransportError>())
                .map_or("-", |source| match source {
                    TransportError::UnsafeDirectory { .. } => "UnsafeDirectory",
                    TransportError::MissingRuntimeDirectory { .. } => "MissingRuntimeDirectory",
                    TransportError::NotFound { .. } => "NotFound",
                    _ => "other",
                });
            format!("{what} {:?} {variant} {}", err.kind(), support::chain(err))
        }
    };
    line(&text);
}

/// The command that runs this binary as the child `role`, with `env`.
fn child(role: &str, env: &[(&str, &std::ffi::OsStr)]) -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = Command::new(exe);
    command
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env_remove("FERRY_RUNTIME_DIR")
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Runs the child `bind-and-connect` with `env` and returns its outcome lines.
async fn run_child(env: &[(&str, &Path)]) -> Outcomes {
    let env: Vec<_> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    collect(child("bind-and-connect", &env)).await
}

/// Runs `command` to its end and returns its outcome lines.
async fn collect(mut command: Command) -> Outcomes {
    let output = within(command.output()).await.expect("run child");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Outcomes(stdout)
}

struct Outcomes(String);

impl Outcomes {
    /// The line about `what`, without its first word.
    fn of(&self, what: &str) -> &str {
        self.0
            .lines()
            .find_map(|line| line.strip_prefix(what)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no outcome for {what} in {:?}", self.0))
    }
}

/// A fresh scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> Scratch {
    let dir = std::env::temp_dir().join(unique_name("trust"));
    fs::create_dir(&dir).expect("scratch dir");
    Scratch(dir)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A runtime directory with `mode`, owned by [`OTHER_UID`], and a live socket of that
/// "user" at [`VICTIM`] in it: the squatter's trap.
fn squatted_dir(base: &Path, mode: u32) -> (PathBuf, std::os::unix::net::UnixListener) {
    let dir = base.join("ferry");
    fs::create_dir(&dir).expect("squatted dir");
    let trap = std::os::unix::net::UnixListener::bind(dir.join(format!("{VICTIM}.sock")))
        .expect("squatter's socket");
    trap.set_nonblocking(true).expect("nonblocking");
    fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).expect("chmod");
    std::os::unix::fs::chown(&dir, Some(OTHER_UID), Some(OTHER_UID)).expect("chown");
    (dir, trap)
}

/// Connections never made to the squatter's socket are not in its backlog.
fn assert_untouched(trap: &std::os::unix::net::UnixListener) {
    match trap.accept() {
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a client reached the squatter's socket: {other:?}"),
    }
}

fn assert_refused(outcomes: &Outcomes, dir: &Path, reason: &str) {
    let bind = outcomes.of("bind");
    assert!(bind.starts_with("Server UnsafeDirectory"), "{bind}");
    assert!(bind.contains(&dir.display().to_string()), "{bind}");
    assert!(bind.contains(reason), "{bind}");
    let connect = outcomes.of("connect");
    assert!(
        connect.starts_with("ServerIdentity UnsafeDirectory"),
        "{connect}"
    );
    assert!(connect.contains(reason), "{connect}");
    // It says what to do.
    assert!(connect.contains("remove it"), "{connect}");
}

#[tokio::test]
async fn a_directory_of_another_user_is_refused_by_server_and_client() {
    if !is_root() {
        eprintln!("skipped: making a directory of another user takes root");
        return;
    }
    for mode in [0o777, 0o700] {
        let base = scratch();
        let (dir, trap) = squatted_dir(&base.0, mode);
        let outcomes = run_child(&[("FERRY_RUNTIME_DIR", &dir)]).await;
        assert_refused(&outcomes, &dir, &format!("belongs to uid {OTHER_UID}"));
        assert_untouched(&trap);
    }
}

#[tokio::test]
async fn a_symlink_to_a_directory_is_refused_by_server_and_client() {
    let base = scratch();
    // The link points at a directory that would pass every other check, holding a live
    // socket at the name.
    let real = base.0.join("real");
    fs::create_dir(&real).expect("real dir");
    fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).expect("chmod");
    let trap = std::os::unix::net::UnixListener::bind(real.join(format!("{VICTIM}.sock")))
        .expect("socket behind the link");
    trap.set_nonblocking(true).expect("nonblocking");
    let link = base.0.join("ferry");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let outcomes = run_child(&[("FERRY_RUNTIME_DIR", &link)]).await;
    assert_refused(&outcomes, &link, "symbolic link");
    assert_untouched(&trap);
}

#[tokio::test]
async fn a_trusted_directory_still_works() {
    let base = scratch();
    let dir = base.0.join("ferry");
    let outcomes = run_child(&[("FERRY_RUNTIME_DIR", &dir)]).await;
    assert_eq!(outcomes.of("bind"), "ok");
    assert_eq!(outcomes.of("connect"), "ok");
    let mode = fs::metadata(&dir).expect("made").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[tokio::test]
async fn a_missing_xdg_runtime_dir_is_an_error_not_a_new_tree() {
    let base = scratch();
    let missing = base.0.join("run/user/4242");
    let outcomes = run_child(&[("XDG_RUNTIME_DIR", &missing)]).await;
    for what in ["bind", "connect"] {
        let outcome = outcomes.of(what);
        assert!(outcome.contains("MissingRuntimeDirectory"), "{outcome}");
        assert!(
            outcome.contains(&format!(
                "XDG_RUNTIME_DIR names {}, which does not exist",
                missing.display()
            )),
            "{outcome}"
        );
    }
    assert!(!base.0.join("run").exists(), "a tree was created");
    // An existing one gets a `ferry` directory of the server's inside.
    fs::create_dir_all(&missing).expect("xdg dir");
    let outcomes = run_child(&[("XDG_RUNTIME_DIR", &missing)]).await;
    assert_eq!(outcomes.of("bind"), "ok");
    assert_eq!(outcomes.of("connect"), "ok");
    assert!(missing.join("ferry").is_dir());
}

/// A running child server; killed when dropped (`kill_on_drop`).
struct Running {
    _child: tokio::process::Child,
}

impl Running {
    /// Spawns `command` and waits for its `ready` line.
    async fn start(mut command: Command) -> Running {
        use tokio::io::AsyncBufReadExt;
        let mut child = command.spawn().expect("spawn child server");
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        loop {
            match within(lines.next_line()).await.expect("read child") {
                Some(line) if line == "ready" => break,
                Some(_) => continue,
                None => {
                    let status = within(child.wait()).await;
                    panic!("child server exited before it was ready: {status:?}");
                }
            }
        }
        // Keep its output flowing somewhere.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Running { _child: child }
    }
}

#[tokio::test]
async fn a_server_of_another_user_is_refused_by_default_for_every_kind_of_name() {
    if !is_root() {
        eprintln!("skipped: running a server as another user takes root");
        return;
    }
    let base = scratch();
    // A trusted runtime directory (root's, 0700): only the server's user is wrong.
    let dir = base.0.join("ferry");
    fs::create_dir(&dir).expect("runtime dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
    let explicit = base.0.join("explicit.sock");
    let abstract_name = format!("@{}", unique_name("trust-abstract"));
    let names = format!("{VICTIM};{};{abstract_name}", explicit.display());
    let env = [
        ("FERRY_RUNTIME_DIR", dir.as_os_str()),
        (NAMES, std::ffi::OsStr::new(&names)),
    ];
    let _server = Running::start(child("foreign-server", &env)).await;
    let outcomes = collect(child("identity-client", &env)).await;
    for index in 0..3 {
        let refused = outcomes.of(&format!("{index}-default"));
        assert!(refused.starts_with("ServerIdentity"), "{index}: {refused}");
        assert!(
            refused.contains(&format!(
                "runs as uid {OTHER_UID}, not as this client's user (uid 0)"
            )),
            "{index}: {refused}"
        );
        assert!(refused.contains("ServerUser::Any"), "{index}: {refused}");
        assert_eq!(outcomes.of(&format!("{index}-any")), "ok 3", "{index}");
        assert_eq!(outcomes.of(&format!("{index}-uid")), "ok 3", "{index}");
    }
}

#[tokio::test]
async fn a_server_out_of_file_descriptors_still_admits_its_own_user() {
    let base = scratch();
    let path = base.0.join("limit.sock");
    let env = [(NAMES, path.as_os_str())];
    let _server = Running::start(child("server-at-fd-limit", &env)).await;
    let calc = within(CalcClient::connect(path.to_str().expect("utf-8 path")))
        .await
        .expect("connect: the server must admit its own user");
    assert_eq!(within(calc.add(1, 2)).await.expect("call"), 3);
}
