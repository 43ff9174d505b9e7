//! The jobs daemon example and its command line client (`examples/daemon/`), run as a user
//! would: both binaries built by cargo, the daemon on a unique endpoint, `jobsctl` commands
//! checked by their output and exit status, then SIGINT: the daemon must end a `watch`
//! stream cleanly, exit with status 0 and leave no socket behind (and the same at SIGTERM).
#![cfg(unix)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;

use support::{unique_name, within};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The two example binaries.
#[derive(Clone, Debug)]
struct Examples {
    daemon: PathBuf,
    jobsctl: PathBuf,
}

/// Builds both examples once per test process (a no-op when `cargo test` built them
/// already) with the profile and target directory of this test binary, and returns their
/// paths as cargo reports them.
fn examples() -> Examples {
    static EXAMPLES: OnceLock<Result<Examples, String>> = OnceLock::new();
    EXAMPLES
        .get_or_init(build_examples)
        .clone()
        .unwrap_or_else(|err| panic!("{err}"))
}

fn build_examples() -> Result<Examples, String> {
    // `<target>/<profile>/deps/<this test>`: the profile is the name of that folder.
    let exe = std::env::current_exe().map_err(|err| format!("test binary path: {err}"))?;
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .ok_or_else(|| format!("no profile folder above {}", exe.display()))?;
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or("no target directory")?;
    let mut cargo = std::process::Command::new(option_env!("CARGO").unwrap_or("cargo"));
    cargo
        .args([
            "build",
            "--workspace",
            "--example",
            "daemon",
            "--example",
            "jobsctl",
        ])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cargo.arg("--release");
        }
        other => {
            cargo.args(["--profile", other]);
        }
    }
    let output = cargo
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build of the examples failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // One JSON message a line; an executable artifact names its target and its path.
    let mut daemon = None;
    let mut jobsctl = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(path) = message["executable"].as_str() else {
            continue;
        };
        match message["target"]["name"].as_str() {
            Some("daemon") => daemon = Some(PathBuf::from(path)),
            Some("jobsctl") => jobsctl = Some(PathBuf::from(path)),
            _ => {}
        }
    }
    match (daemon, jobsctl) {
        (Some(daemon), Some(jobsctl)) => Ok(Examples { daemon, jobsctl }),
        _ => Err("cargo built the examples but named no executable for both".into()),
    }
}

/// Runs `jobsctl --name NAME ARGS...` to its end.
async fn jobsctl(name: &str, args: &[&str]) -> Output {
    let output = Command::new(examples().jobsctl)
        .arg("--name")
        .arg(name)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    within(output).await.expect("run jobsctl")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Checks the exit status and the whole standard output of a command.
fn assert_output(output: &Output, code: i32, wanted_stdout: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit status; stdout {:?}, stderr {:?}",
        stdout(output),
        stderr(output)
    );
    assert_eq!(stdout(output), wanted_stdout, "stderr {:?}", stderr(output));
}

/// A child process whose output is read line by line; dropping it kills it.
struct Running {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Running {
    fn spawn(command: &mut Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        Running {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    async fn next_line(&mut self) -> String {
        within(self.lines.next_line())
            .await
            .expect("read stdout")
            .expect("the process ended its output early")
    }

    /// Waits for the end; returns the exit status, the rest of stdout, and stderr.
    async fn finish(self) -> (std::process::ExitStatus, String, String) {
        let Running { child, mut lines } = self;
        let output = within(child.wait_with_output()).await.expect("wait");
        let mut rest = String::new();
        while let Some(line) = within(lines.next_line()).await.expect("read stdout") {
            rest.push_str(&line);
            rest.push('\n');
        }
        (
            output.status,
            rest,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// Starts the daemon on `name`; returns it and the path of its socket, checked to exist.
async fn start_daemon(name: &str) -> (Running, String) {
    let mut daemon = Running::spawn(Command::new(examples().daemon).arg("--name").arg(name));
    let listening = daemon.next_line().await;
    let socket = listening
        .strip_prefix("jobs daemon: listening on ")
        .unwrap_or_else(|| panic!("first line {listening:?}"))
        .to_owned();
    assert!(Path::new(&socket).exists(), "no socket at {socket}");
    (daemon, socket)
}

/// Sends `signal` (`INT`, `TERM`) to the process.
fn signal(process: &Running, signal: &str) {
    let pid = process.child.id().expect("pid").to_string();
    let kill = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(&pid)
        .status();
    assert!(
        kill.expect("run kill").success(),
        "kill -{signal} {pid} failed"
    );
}

#[tokio::test]
async fn jobsctl_without_a_daemon_says_so_and_fails() {
    let name = unique_name("jobs-absent");
    let output = jobsctl(&name, &["list"]).await;
    assert_output(&output, 3, "");
    let wanted = format!("jobsctl: the jobs daemon is not running at `{name}`; start it with");
    assert!(
        stderr(&output).starts_with(&wanted),
        "{:?}",
        stderr(&output)
    );
}

#[tokio::test]
async fn daemon_and_jobsctl_work_together_and_ctrl_c_stops_the_daemon() {
    let name = unique_name("jobs");
    let (daemon, socket) = start_daemon(&name).await;

    // A short job, watched to its end: the stream is read as an iterator by the CLI.
    assert_output(
        &jobsctl(&name, &["submit", "build", "3", "20"]).await,
        0,
        "submitted job 1\n",
    );
    let watch = jobsctl(&name, &["watch", "1"]).await;
    assert_eq!(watch.status.code(), Some(0), "{watch:?}");
    let lines: Vec<String> = stdout(&watch).lines().map(str::to_owned).collect();
    assert_eq!(
        lines.last().map(String::as_str),
        Some("job 1 (build): done, 3/3 steps")
    );
    for pair in lines.windows(2) {
        assert_ne!(pair[0], pair[1], "every item is a change: {lines:?}");
    }
    for line in &lines[..lines.len() - 1] {
        assert!(line.starts_with("job 1 (build): running, "), "{lines:?}");
    }
    assert_output(
        &jobsctl(&name, &["status", "1"]).await,
        0,
        "job 1 (build): done, 3/3 steps\n",
    );

    // Application errors: the daemon's `JobError`, printed, exit status 1.
    let output = jobsctl(&name, &["status", "99"]).await;
    assert_output(&output, 1, "");
    assert_eq!(stderr(&output), "jobsctl: no job 99\n");
    let output = jobsctl(&name, &["submit", "empty", "0"]).await;
    assert_output(&output, 1, "");
    assert_eq!(
        stderr(&output),
        "jobsctl: invalid job: 0 steps (a job has 1 to 10000)\n"
    );
    let output = jobsctl(&name, &["watch", "42"]).await;
    assert_output(&output, 1, "");
    assert_eq!(stderr(&output), "jobsctl: no job 42\n");

    // A long job, cancelled; cancelling it again is refused.
    let long = ["submit", "long", "10000", "60000"];
    assert_output(&jobsctl(&name, &long).await, 0, "submitted job 2\n");
    let cancelled = "job 2 (long): cancelled, 0/10000 steps\n";
    assert_output(&jobsctl(&name, &["cancel", "2"]).await, 0, cancelled);
    let output = jobsctl(&name, &["cancel", "2"]).await;
    assert_output(&output, 1, "");
    assert_eq!(stderr(&output), "jobsctl: job 2 has already ended\n");
    let list = format!("job 1 (build): done, 3/3 steps\n{cancelled}");
    assert_output(&jobsctl(&name, &["list"]).await, 0, &list);

    // A watch in flight when Ctrl-C comes: the daemon ends the stream and exits.
    assert_output(&jobsctl(&name, &long).await, 0, "submitted job 3\n");
    let mut watcher = Running::spawn(
        Command::new(examples().jobsctl)
            .arg("--name")
            .arg(&name)
            .args(["watch", "3"]),
    );
    assert_eq!(
        watcher.next_line().await,
        "job 3 (long): running, 0/10000 steps"
    );
    signal(&daemon, "INT");

    let (status, rest, errors) = daemon.finish().await;
    assert_eq!(status.code(), Some(0), "daemon: {rest:?} {errors:?}");
    assert_eq!(rest, "jobs daemon: shutting down\njobs daemon: stopped\n");
    assert!(
        !Path::new(&socket).exists(),
        "the socket {socket} is still there"
    );

    let (status, rest, errors) = watcher.finish().await;
    assert_eq!(status.code(), Some(3), "watch: {rest:?} {errors:?}");
    assert_eq!(rest, "");
    assert_eq!(errors, "jobsctl: the daemon stopped before the job ended\n");

    // And now the daemon is gone, the CLI says so.
    let output = jobsctl(&name, &["list"]).await;
    assert_output(&output, 3, "");
    assert!(
        stderr(&output).contains("the jobs daemon is not running"),
        "{:?}",
        stderr(&output)
    );
}

#[tokio::test]
async fn sigterm_stops_the_daemon_gracefully_too() {
    let name = unique_name("jobs-term");
    let (daemon, socket) = start_daemon(&name).await;
    assert_output(&jobsctl(&name, &["list"]).await, 0, "no jobs\n");
    signal(&daemon, "TERM");
    let (status, rest, errors) = daemon.finish().await;
    assert_eq!(status.code(), Some(0), "daemon: {rest:?} {errors:?}");
    assert_eq!(rest, "jobs daemon: shutting down\njobs daemon: stopped\n");
    assert!(
        !Path::new(&socket).exists(),
        "the socket {socket} is still there"
    );
}
