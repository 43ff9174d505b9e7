//! Helpers shared by the integration tests.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Upper bound for any await in these tests.
pub const LIMIT: Duration = Duration::from_secs(20);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The base scratch directory of this test process.
fn base() -> PathBuf {
    std::env::temp_dir().join(format!("ferry-transport-test-{}", std::process::id()))
}

/// Points `FERRY_RUNTIME_DIR` at a directory of this process (not yet created, in a base
/// directory that is) and returns it.
pub fn runtime_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        remove_leftovers();
        std::fs::create_dir_all(base()).unwrap();
        let dir = base().join("runtime");
        std::env::set_var(ferry_transport::RUNTIME_DIR_ENV, &dir);
        dir
    })
}

/// Removes the directories of earlier test processes that have exited (Linux, via `/proc`).
fn remove_leftovers() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix("ferry-transport-test-"))
        else {
            continue;
        };
        if Path::new("/proc/self").exists() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A plain name unique to this process and call.
pub fn unique_name(tag: &str) -> String {
    runtime_dir();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t{}-{n}-{tag}", std::process::id())
}

/// A fresh directory for explicit socket paths, removed with everything in it on drop.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a [`Scratch`] directory.
pub fn scratch_dir() -> Scratch {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = base().join(format!("scratch-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// Awaits `future`, failing the test instead of hanging.
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("operation hung")
}
