//! Tests across processes: the test binary runs itself again (`current_exe()`) as a child
//! with a role (`server`, `client`, ...) and an endpoint name in its environment and
//! `--exact child_role`, so that only the file's `child_role` test runs there.
//!
//! The child side is [`run_role`], called from that test; the parent side is
//! [`ChildProcess`]. The child reports its progress as lines of its standard output
//! ([`say`]), which the parent waits for ([`ChildProcess::expect_line`]).

use std::future::Future;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::within;

/// The child's role, in its environment.
const ROLE: &str = "FERRY_TEST_ROLE";
/// The child's endpoint name, in its environment.
const NAME: &str = "FERRY_TEST_NAME";

/// The body of a file's `child_role` test: in a child process, runs `main(role, name)` on
/// a runtime of two worker threads; in a normal test run (no role) does nothing.
pub fn run_role<F>(main: impl FnOnce(String, String) -> F)
where
    F: Future<Output = ()>,
{
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let name = std::env::var(NAME).expect("child without an endpoint name");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(main(role, name));
}

/// Writes `line` on a line of its own (the test harness may have begun one).
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "\n{line}\n");
    let _ = out.flush();
}

/// The command that starts this test binary as a child of role `role` on endpoint `name`;
/// add to it what the role needs, then [`ChildProcess::start`] it.
pub fn command(role: &str, name: &str) -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = Command::new(exe);
    command
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(NAME, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A child process and its output; dropping it kills it, so a failing test leaves nothing
/// behind.
pub struct ChildProcess {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl ChildProcess {
    /// Starts a child of role `role` on endpoint `name`.
    pub fn spawn(role: &str, name: &str) -> ChildProcess {
        ChildProcess::start(command(role, name))
    }

    /// Starts a child server on `name` and waits until it says `ready`.
    pub async fn server(name: &str) -> ChildProcess {
        let mut server = ChildProcess::spawn("server", name);
        server.expect_line("ready").await;
        server
    }

    /// Starts `command` (made by [`command`]).
    pub fn start(mut command: Command) -> ChildProcess {
        let mut child = command.spawn().expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        ChildProcess {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id().expect("child running")
    }

    /// Reads the child's output until a line equal to `wanted`.
    pub async fn expect_line(&mut self, wanted: &str) {
        loop {
            match within(self.lines.next_line()).await.expect("child output") {
                Some(line) if line == wanted => return,
                Some(_) => continue,
                None => panic!("child exited before saying {wanted:?}"),
            }
        }
    }

    /// Reads the child's output until `count` lines that start with `prefix` came.
    pub async fn expect_lines_starting(&mut self, prefix: &str, count: usize) {
        let mut seen = 0;
        while seen < count {
            match within(self.lines.next_line()).await.expect("child output") {
                Some(line) if line.starts_with(prefix) => seen += 1,
                Some(_) => continue,
                None => panic!("child exited after {seen} of {count} lines {prefix:?}"),
            }
        }
    }

    /// Kills the child, then waits until the process is gone.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("kill child");
        within(self.child.wait()).await.expect("wait for child");
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
