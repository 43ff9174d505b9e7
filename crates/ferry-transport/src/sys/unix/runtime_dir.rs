//! Where plain names live on Unix, and making sure that place is private.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::TransportError;
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

/// Linux: `$XDG_RUNTIME_DIR/ferry`, or `/tmp/ferry-<uid>` without it.
pub(crate) fn linux_runtime_dir(env: &RuntimeEnv, uid: u32) -> PathBuf {
    if let Some(dir) = non_empty(&env.ferry_runtime_dir) {
        return dir.to_path_buf();
    }
    match non_empty(&env.xdg_runtime_dir) {
        Some(xdg) if xdg.is_absolute() => xdg.join("ferry"),
        _ => PathBuf::from(format!("/tmp/ferry-{uid}")),
    }
}

/// Other Unix systems: `$TMPDIR/ferry-<uid>`, or `/tmp/ferry-<uid>` without it.
pub(crate) fn other_runtime_dir(env: &RuntimeEnv, uid: u32) -> PathBuf {
    if let Some(dir) = non_empty(&env.ferry_runtime_dir) {
        return dir.to_path_buf();
    }
    let base = non_empty(&env.tmpdir).unwrap_or(Path::new("/tmp"));
    base.join(format!("ferry-{uid}"))
}

/// The runtime directory for this platform.
pub(crate) fn runtime_dir(env: &RuntimeEnv, uid: u32) -> PathBuf {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        linux_runtime_dir(env, uid)
    } else {
        other_runtime_dir(env, uid)
    }
}

/// The socket path of a plain name in `dir`.
pub(crate) fn socket_path_in(dir: &Path, plain: &str) -> PathBuf {
    dir.join(format!("{plain}.sock"))
}

/// The socket path of a plain name, read from this process's environment.
pub(crate) fn plain_socket_path(plain: &str) -> PathBuf {
    let dir = runtime_dir(&RuntimeEnv::from_process(), super::effective_uid());
    socket_path_in(&dir, plain)
}

/// Creates `dir` (mode `0o700`) when missing; when `private` also checks that it is a real
/// directory owned by `uid` that neither group nor others may write.
pub(crate) fn prepare_dir(dir: &Path, private: bool, uid: u32) -> Result<(), TransportError> {
    let address = dir.display().to_string();
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|err| TransportError::io("create directory", &address, err))?;
            tracing::debug!(dir = %address, "created runtime directory");
            // Checked again: another process may have created it first.
            fs::symlink_metadata(dir).map_err(|err| TransportError::io("stat", &address, err))?
        }
        Err(err) => return Err(TransportError::io("stat", &address, err)),
    };
    if !private {
        return Ok(());
    }
    check_private(dir, &meta, uid)
}

/// The ownership and permission rules for the runtime directory.
pub(crate) fn check_private(
    dir: &Path,
    meta: &fs::Metadata,
    uid: u32,
) -> Result<(), TransportError> {
    let unsafe_dir = |reason: String| TransportError::UnsafeDirectory {
        path: dir.to_path_buf(),
        reason,
    };
    if !meta.file_type().is_dir() {
        return Err(unsafe_dir(
            "not a directory (symbolic links are refused)".into(),
        ));
    }
    if meta.uid() != uid {
        return Err(unsafe_dir(format!(
            "owned by uid {} instead of {uid}",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "mode {mode:o} lets group or others write"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn env(ferry: Option<&str>, xdg: Option<&str>, tmp: Option<&str>) -> RuntimeEnv {
        RuntimeEnv {
            ferry_runtime_dir: ferry.map(Into::into),
            xdg_runtime_dir: xdg.map(Into::into),
            tmpdir: tmp.map(Into::into),
        }
    }

    #[test]
    fn linux_mapping() {
        let d = |e: &RuntimeEnv| linux_runtime_dir(e, 1000);
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
        let d = |e: &RuntimeEnv| other_runtime_dir(e, 501);
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
    fn socket_file_name() {
        assert_eq!(
            socket_path_in(Path::new("/run/user/1/ferry"), "myapp.echo"),
            Path::new("/run/user/1/ferry/myapp.echo.sock")
        );
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ferry-rd-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn creates_missing_dir_private() {
        let base = scratch("create");
        let dir = base.join("a/b");
        let uid = super::super::effective_uid();
        prepare_dir(&dir, true, uid).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // A second call accepts the directory it made.
        prepare_dir(&dir, true, uid).unwrap();
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn refuses_writable_or_foreign_dirs() {
        let dir = scratch("loose");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let uid = super::super::effective_uid();
        match prepare_dir(&dir, true, uid) {
            Err(TransportError::UnsafeDirectory { reason, .. }) => {
                assert!(reason.contains("777"), "{reason}")
            }
            other => panic!("expected UnsafeDirectory, got {other:?}"),
        }
        // Not checked when the caller chose the path.
        prepare_dir(&dir, false, uid).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        match prepare_dir(&dir, true, uid.wrapping_add(1)) {
            Err(TransportError::UnsafeDirectory { reason, .. }) => {
                assert!(reason.contains("owned by uid"), "{reason}")
            }
            other => panic!("expected UnsafeDirectory, got {other:?}"),
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_symlinked_dir() {
        let base = scratch("link");
        fs::create_dir(&base).unwrap();
        let real = base.join("real");
        fs::create_dir(&real).unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let uid = super::super::effective_uid();
        assert!(matches!(
            prepare_dir(&link, true, uid),
            Err(TransportError::UnsafeDirectory { .. })
        ));
        fs::remove_dir_all(&base).unwrap();
    }
}
