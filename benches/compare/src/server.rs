//! Servers run in child processes: this binary re-runs itself with the serve role. The child
//! prints `ready` once it listens and exits when its standard input closes, so a parent that
//! dies leaves no server behind.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::echo::{other, Impl};

/// First argument that selects the server role.
pub(crate) const SERVE_ROLE: &str = "__serve";

/// Tells the parent that the server listens.
pub(crate) fn ready() {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
}

/// Entry of the server role: `__serve <impl> <socket path> <mt|ct>`.
pub(crate) fn serve_main(args: &[String]) -> ExitCode {
    let [name, path, rt] = args else {
        eprintln!("usage: ferry-compare {SERVE_ROLE} <impl> <path> <mt|ct>");
        return ExitCode::from(2);
    };
    let Some(imp) = Impl::from_name(name) else {
        eprintln!("ferry-compare server: no implementation {name:?}");
        return ExitCode::from(2);
    };
    // End with the parent: its end of our stdin closes when it exits.
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = io::stdin().lock().read_to_end(&mut sink);
        std::process::exit(0);
    });
    let runtime = match build_runtime(rt == "mt") {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ferry-compare server: {err}");
            return ExitCode::FAILURE;
        }
    };
    let path = PathBuf::from(path);
    let served = runtime.block_on(async move {
        match imp {
            Impl::Raw => {
                let listener = tokio::net::UnixListener::bind(&path)?;
                ready();
                crate::raw::serve(listener).await
            }
            Impl::Ferry => crate::ferry_echo::serve(&path).await,
            Impl::Tarpc => crate::tarpc_echo::serve(&path).await,
        }
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ferry-compare {} server: {err}", imp.name());
            ExitCode::FAILURE
        }
    }
}

/// A tokio runtime: multi-thread (as many workers as cores) or current-thread.
pub(crate) fn build_runtime(multi_thread: bool) -> io::Result<tokio::runtime::Runtime> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build()
}

/// A running server child; told to exit when dropped (its stdin closes), and killed if it
/// has not within [`EXIT_GRACE`]. Exiting on its own lets a profiler that wraps the child
/// (`valgrind --trace-children=yes`) write out what it counted.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    /// Kept open: closing it tells the child to exit.
    stdin: Option<ChildStdin>,
    path: PathBuf,
}

impl ServerProcess {
    /// Starts a server of `imp` on `path` and waits until it listens.
    pub(crate) fn start(imp: Impl, path: &Path, multi_thread: bool) -> io::Result<ServerProcess> {
        let _ = std::fs::remove_file(path);
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg(SERVE_ROLE)
            .arg(imp.name())
            .arg(path)
            .arg(if multi_thread { "mt" } else { "ct" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut server = ServerProcess {
            child,
            stdin,
            path: path.to_owned(),
        };
        let mut line = String::new();
        if let Some(stdout) = stdout {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        if line.trim() != "ready" {
            let status = server.child.try_wait()?;
            return Err(other(
                &format!("{} server", imp.name()),
                format!("did not start (status {status:?})"),
            ));
        }
        Ok(server)
    }

    /// The server's resident set size in KiB, from `/proc` (Linux).
    pub(crate) fn rss_kib(&self) -> io::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .ok_or_else(|| other("rss", "no VmRSS line in /proc/<pid>/status"))
    }
}

/// How long a dropped server child has to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let until = Instant::now() + EXIT_GRACE;
        while Instant::now() < until {
            match self.child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Ok(Some(_)) | Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.path);
    }
}
