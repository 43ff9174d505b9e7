//! Trust in what answers at a plain name: a runtime directory that another user could
//! control is refused by servers and clients alike, and a missing `XDG_RUNTIME_DIR` is an
//! error, not a tree made on the fly.
//!
//! Each case needs its own runtime directory, which is read from the environment, so it
//! runs in a child process: this test binary run again (`current_exe()`) with
//! `FERRY_TRUST_ROLE` naming the role and `--exact child_role` so that only the role runs.
//! The child prints one line per outcome; the parent checks them.
//!
//! Directories "of another user" are made with `chown` to an unused uid, which takes root;
//! without root those cases are skipped (and say so).
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
    match role.as_str() {
        "bind-and-connect" => runtime.block_on(bind_and_connect()),
        other => panic!("unknown child role {other}"),
    }
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
    use std::io::Write;
    let line = match err {
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
            format!("{what} {:?} {variant} {err}", err.kind())
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "\n{line}\n");
    let _ = out.flush();
}

/// Runs the child with `env` and returns its outcome lines by what they are about.
async fn run_child(env: &[(&str, &Path)], remove: &[&str]) -> Outcomes {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = Command::new(exe);
    command
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE, "bind-and-connect")
        .env_remove("FERRY_RUNTIME_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    for key in remove {
        command.env_remove(key);
    }
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
        let outcomes = run_child(&[("FERRY_RUNTIME_DIR", &dir)], &[]).await;
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
    let outcomes = run_child(&[("FERRY_RUNTIME_DIR", &link)], &[]).await;
    assert_refused(&outcomes, &link, "symbolic link");
    assert_untouched(&trap);
}

#[tokio::test]
async fn a_trusted_directory_still_works() {
    let base = scratch();
    let dir = base.0.join("ferry");
    let outcomes = run_child(&[("FERRY_RUNTIME_DIR", &dir)], &[]).await;
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
    let outcomes = run_child(&[("XDG_RUNTIME_DIR", &missing)], &[]).await;
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
    let outcomes = run_child(&[("XDG_RUNTIME_DIR", &missing)], &[]).await;
    assert_eq!(outcomes.of("bind"), "ok");
    assert_eq!(outcomes.of("connect"), "ok");
    assert!(missing.join("ferry").is_dir());
}
