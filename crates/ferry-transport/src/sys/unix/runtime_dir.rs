//! Where plain names live on Unix (the mapping only; [`super::private_dir`] checks the place).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::name::RUNTIME_DIR_ENV;

/// The environment variables the mapping reads, captured so the mapping itself is pure.
#[derive(Debug, Default, Clone)]
pub(crate) struct RuntimeEnv {
    /// `FERRY_RUNTIME_DIR`.
    pub(crate) ferry_runtime_dir: Option<OsString>,
    /// `XDG_RUNTIME_DIR`.
    pub(crate) xdg_runtime_dir: Option<OsString>,
    /// `TMPDIR`.
    pub(crate) tmpdir: Option<OsString>,
}

impl RuntimeEnv {
    fn from_process() -> Self {
        Self {
            ferry_runtime_dir: std::env::var_os(RUNTIME_DIR_ENV),
            xdg_runtime_dir: std::env::var_os("XDG_RUNTIME_DIR"),
            tmpdir: std::env::var_os("TMPDIR"),
        }
    }
}

/// Treats unset and empty the same, as the XDG base directory spec asks.
fn non_empty(value: &Option<OsString>) -> Option<&Path> {
    value.as_deref().filter(|v| !v.is_empty()).map(Path::new)
}

/// The directory that holds the sockets of plain names, and where its location came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuntimeDir {
    /// The directory itself; a server creates it (one level, mode `0o700`) when missing.
    pub(crate) path: PathBuf,
    /// The environment variable that placed it inside another directory, and that
    /// directory, which must already exist: ferry never creates it.
    pub(crate) base: Option<(&'static str, PathBuf)>,
}

impl RuntimeDir {
    fn plain(path: PathBuf) -> Self {
        Self { path, base: None }
    }

    fn inside(variable: &'static str, base: &Path, leaf: &str) -> Self {
        Self {
            path: base.join(leaf),
            base: Some((variable, base.to_path_buf())),
        }
    }
}

/// Linux: `$XDG_RUNTIME_DIR/ferry`, or `/tmp/ferry-<uid>` without it.
pub(crate) fn linux_runtime_dir(env: &RuntimeEnv, uid: u32) -> RuntimeDir {
    if let Some(dir) = non_empty(&env.ferry_runtime_dir) {
        return RuntimeDir::plain(dir.to_path_buf());
    }
    match non_empty(&env.xdg_runtime_dir) {
        Some(xdg) if xdg.is_absolute() => RuntimeDir::inside("XDG_RUNTIME_DIR", xdg, "ferry"),
        _ => RuntimeDir::plain(PathBuf::from(format!("/tmp/ferry-{uid}"))),
    }
}

/// Other Unix systems: `$TMPDIR/ferry-<uid>`, or `/tmp/ferry-<uid>` without it.
pub(crate) fn other_runtime_dir(env: &RuntimeEnv, uid: u32) -> RuntimeDir {
    if let Some(dir) = non_empty(&env.ferry_runtime_dir) {
        return RuntimeDir::plain(dir.to_path_buf());
    }
    let leaf = format!("ferry-{uid}");
    match non_empty(&env.tmpdir) {
        Some(tmp) => RuntimeDir::inside("TMPDIR", tmp, &leaf),
        None => RuntimeDir::plain(Path::new("/tmp").join(leaf)),
    }
}

/// The runtime directory for this platform.
pub(crate) fn runtime_dir(env: &RuntimeEnv, uid: u32) -> RuntimeDir {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        linux_runtime_dir(env, uid)
    } else {
        other_runtime_dir(env, uid)
    }
}

/// The runtime directory of this process's environment and effective user.
pub(crate) fn current_runtime_dir() -> RuntimeDir {
    runtime_dir(&RuntimeEnv::from_process(), super::effective_uid())
}

/// The socket path of a plain name in `dir`.
pub(crate) fn socket_path_in(dir: &Path, plain: &str) -> PathBuf {
    dir.join(format!("{plain}.sock"))
}

/// The socket path of a plain name, read from this process's environment.
pub(crate) fn plain_socket_path(plain: &str) -> PathBuf {
    socket_path_in(&current_runtime_dir().path, plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(ferry: Option<&str>, xdg: Option<&str>, tmp: Option<&str>) -> RuntimeEnv {
        RuntimeEnv {
            ferry_runtime_dir: ferry.map(Into::into),
            xdg_runtime_dir: xdg.map(Into::into),
            tmpdir: tmp.map(Into::into),
        }
    }

    #[test]
    fn linux_mapping() {
        let d = |e: &RuntimeEnv| linux_runtime_dir(e, 1000).path;
        assert_eq!(
            d(&env(None, Some("/run/user/1000"), None)),
            Path::new("/run/user/1000/ferry")
        );
        assert_eq!(
            d(&env(None, None, Some("/var/tmp"))),
            Path::new("/tmp/ferry-1000")
        );
        assert_eq!(d(&env(None, Some(""), None)), Path::new("/tmp/ferry-1000"));
        assert_eq!(
            d(&env(None, Some("relative"), None)),
            Path::new("/tmp/ferry-1000")
        );
        assert_eq!(
            d(&env(Some("/x/y"), Some("/run/user/1000"), None)),
            Path::new("/x/y")
        );
        assert_eq!(
            d(&env(Some(""), Some("/run/user/7"), None)),
            Path::new("/run/user/7/ferry")
        );
    }

    #[test]
    fn other_unix_mapping() {
        let d = |e: &RuntimeEnv| other_runtime_dir(e, 501).path;
        assert_eq!(
            d(&env(None, None, Some("/var/folders/xy/T"))),
            Path::new("/var/folders/xy/T/ferry-501")
        );
        assert_eq!(
            d(&env(None, Some("/run/user/501"), None)),
            Path::new("/tmp/ferry-501")
        );
        assert_eq!(d(&env(None, None, Some(""))), Path::new("/tmp/ferry-501"));
        assert_eq!(d(&env(Some("/x"), None, Some("/t"))), Path::new("/x"));
    }

    #[test]
    fn only_directories_named_by_a_variable_must_exist() {
        let xdg = linux_runtime_dir(&env(None, Some("/run/user/7"), None), 7);
        assert_eq!(
            xdg.base,
            Some(("XDG_RUNTIME_DIR", PathBuf::from("/run/user/7")))
        );
        assert_eq!(linux_runtime_dir(&env(None, None, None), 7).base, None);
        assert_eq!(
            linux_runtime_dir(&env(Some("/x"), None, None), 7).base,
            None
        );
        let tmp = other_runtime_dir(&env(None, None, Some("/var/t")), 7);
        assert_eq!(tmp.base, Some(("TMPDIR", PathBuf::from("/var/t"))));
        assert_eq!(other_runtime_dir(&env(None, None, None), 7).base, None);
    }

    #[test]
    fn socket_file_name() {
        assert_eq!(
            socket_path_in(Path::new("/run/user/1/ferry"), "myapp.echo"),
            Path::new("/run/user/1/ferry/myapp.echo.sock")
        );
    }
}
