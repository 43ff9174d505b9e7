//! Whether the runtime directory of plain names can be trusted: one check, made by a server
//! before it binds and by a client before every connection attempt.
//!
//! A directory is trusted when it is a real directory (not a symbolic link), owned by the
//! caller or by root, and neither group nor others may write it. Anyone else who can create
//! entries in it could put their own socket at a plain name and answer the calls meant for
//! the real server.
//!
//! The directory is opened with `O_DIRECTORY | O_NOFOLLOW` and the open descriptor is
//! checked (`fstat`), so a symbolic link or a directory swapped in between a look-up and the
//! check cannot pass. What remains is the moment between the check and the `bind`/`connect`
//! on the path: replacing the checked directory then takes write access to its parent (for
//! `/tmp/ferry-<uid>`, the sticky `/tmp` lets only its owner rename it), and a client's
//! default server-identity check catches a server of another user anyway.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::runtime_dir::RuntimeDir;
use crate::error::TransportError;

/// What to do about a directory someone else may control.
const FOREIGN_ADVICE: &str = "another user may have made it to receive ferry connections \
     meant for you: remove it (a ferry server creates it again) or set FERRY_RUNTIME_DIR to a \
     directory only you can write";

/// Checks `dir` for a server about to bind a plain name in it: creates it (one level, mode
/// `0o700`) when missing, then requires it to be trusted (see the module docs).
///
/// A directory named by `XDG_RUNTIME_DIR` or `TMPDIR` that holds the runtime directory must
/// already exist: it is never created on the fly.
pub(crate) fn prepare(dir: &RuntimeDir, uid: u32) -> Result<(), TransportError> {
    if open_trusted(&dir.path, uid)?.is_some() {
        return Ok(());
    }
    require_base(dir)?;
    let address = dir.path.display().to_string();
    match fs::DirBuilder::new().mode(0o700).create(&dir.path) {
        Ok(()) => tracing::debug!(dir = %address, "created runtime directory"),
        // Another process made it first; it is checked below like any other.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(TransportError::io("create directory", &address, err)),
    }
    match open_trusted(&dir.path, uid)? {
        Some(_) => Ok(()),
        None => Err(TransportError::io(
            "open directory",
            &address,
            io::Error::from(io::ErrorKind::NotFound),
        )),
    }
}

/// Checks `dir` for a client about to connect to a plain name in it: `Ok(true)` when it is
/// trusted, `Ok(false)` when it does not exist (yet: no server has run there).
pub(crate) fn check_for_connect(dir: &RuntimeDir, uid: u32) -> Result<bool, TransportError> {
    if open_trusted(&dir.path, uid)?.is_some() {
        return Ok(true);
    }
    require_base(dir)?;
    Ok(false)
}

/// Creates the missing parents of an explicit socket path; nothing is checked there, the
/// caller chose the place.
pub(crate) fn create_parents(dir: &Path) -> Result<(), TransportError> {
    if fs::symlink_metadata(dir).is_ok() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| TransportError::io("create directory", &dir.display().to_string(), err))
}

/// The directory a variable named, which must exist.
fn require_base(dir: &RuntimeDir) -> Result<(), TransportError> {
    let Some((variable, base)) = &dir.base else {
        return Ok(());
    };
    match fs::metadata(base) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            Err(TransportError::MissingRuntimeDirectory {
                variable,
                path: base.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// Opens `dir` without following a symbolic link and checks the open directory:
/// `Ok(None)` when it does not exist.
pub(crate) fn open_trusted(dir: &Path, uid: u32) -> Result<Option<fs::File>, TransportError> {
    let address = dir.display().to_string();
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
    {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) if is_not_a_directory(&err) => return Err(not_a_directory(dir, err)),
        Err(err) => return Err(TransportError::io("open directory", &address, err)),
    };
    let meta = file
        .metadata()
        .map_err(|err| TransportError::io("stat", &address, err))?;
    check(dir, &meta, uid)?;
    Ok(Some(file))
}

/// What `open(O_DIRECTORY | O_NOFOLLOW)` answers for a symbolic link or a file: `ELOOP`
/// (FreeBSD: `EMLINK`) and `ENOTDIR`.
fn is_not_a_directory(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(code) if code == libc::ELOOP || code == libc::EMLINK || code == libc::ENOTDIR
    )
}

/// The refusal of something at `dir` that is not a real directory, or the open error when
/// a parent of `dir` is what failed.
fn not_a_directory(dir: &Path, err: io::Error) -> TransportError {
    let reason = match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => match fs::read_link(dir) {
            Ok(target) => format!(
                "it is a symbolic link (to {}), not a directory",
                target.display()
            ),
            Err(_) => "it is a symbolic link, not a directory".to_owned(),
        },
        Ok(meta) if !meta.is_dir() => "it is not a directory".to_owned(),
        _ => return TransportError::io("open directory", &dir.display().to_string(), err),
    };
    TransportError::UnsafeDirectory {
        path: dir.to_path_buf(),
        reason,
        advice: FOREIGN_ADVICE.to_owned(),
    }
}

/// The ownership and permission rules, on the metadata of the open directory.
fn check(dir: &Path, meta: &fs::Metadata, uid: u32) -> Result<(), TransportError> {
    let refuse = |reason: String, advice: String| {
        Err(TransportError::UnsafeDirectory {
            path: dir.to_path_buf(),
            reason,
            advice,
        })
    };
    if !meta.is_dir() {
        return refuse("it is not a directory".into(), FOREIGN_ADVICE.into());
    }
    let owner = meta.uid();
    if owner != uid && owner != 0 {
        return refuse(
            format!("it belongs to uid {owner}, not to uid {uid} or root"),
            FOREIGN_ADVICE.into(),
        );
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return refuse(
            format!("its mode {mode:o} lets group or others write in it"),
            format!(
                "if you made it, run `chmod go-w {}` and check what it holds; otherwise remove it",
                dir.display()
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// A uid no account uses, for directories "of another user".
    const OTHER_UID: u32 = 54321;

    fn uid() -> u32 {
        super::super::effective_uid()
    }

    /// A fresh base directory, removed on drop.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ferry-pd-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        Scratch(dir)
    }

    fn at(path: PathBuf) -> RuntimeDir {
        RuntimeDir { path, base: None }
    }

    fn refusal(result: Result<impl std::fmt::Debug, TransportError>) -> (String, String) {
        match result {
            Err(TransportError::UnsafeDirectory { reason, advice, .. }) => (reason, advice),
            other => panic!("expected UnsafeDirectory, got {other:?}"),
        }
    }

    /// A directory owned by another user: as root through `chown`, otherwise by checking
    /// for a caller that is not this process's user.
    fn foreign_dir(path: &Path, mode: u32) -> u32 {
        fs::create_dir(path).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        if uid() == 0 {
            std::os::unix::fs::chown(path, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
            0
        } else {
            uid() + 1
        }
    }

    #[test]
    fn creates_a_missing_dir_private_and_accepts_it_again() {
        let base = scratch("create");
        let dir = at(base.0.join("ferry"));
        prepare(&dir, uid()).unwrap();
        let mode = fs::metadata(&dir.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        prepare(&dir, uid()).unwrap();
        assert!(check_for_connect(&dir, uid()).unwrap());
    }

    #[test]
    fn never_creates_a_tree() {
        let base = scratch("tree");
        let dir = at(base.0.join("a/b"));
        let err = prepare(&dir, uid()).unwrap_err();
        assert!(
            matches!(
                err,
                TransportError::Io {
                    op: "create directory",
                    ..
                }
            ),
            "{err:?}"
        );
        let source = std::error::Error::source(&err).map(|s| s.to_string());
        assert_eq!(
            source.as_deref(),
            Some("No such file or directory (os error 2)"),
            "{err}"
        );
        assert!(!base.0.join("a").exists());
    }

    #[test]
    fn a_missing_variable_dir_is_an_error_for_both_sides() {
        let base = scratch("xdg");
        let xdg = base.0.join("run-user");
        let dir = RuntimeDir {
            path: xdg.join("ferry"),
            base: Some(("XDG_RUNTIME_DIR", xdg.clone())),
        };
        for result in [
            prepare(&dir, uid()).map(|()| true),
            check_for_connect(&dir, uid()),
        ] {
            match result {
                Err(TransportError::MissingRuntimeDirectory { variable, path }) => {
                    assert_eq!(variable, "XDG_RUNTIME_DIR");
                    assert_eq!(path, xdg);
                }
                other => panic!("expected MissingRuntimeDirectory, got {other:?}"),
            }
        }
        assert!(!xdg.exists(), "the variable's directory was created");
        // Once it exists, the server makes its own directory inside it.
        fs::create_dir(&xdg).unwrap();
        assert!(!check_for_connect(&dir, uid()).unwrap());
        prepare(&dir, uid()).unwrap();
        assert!(check_for_connect(&dir, uid()).unwrap());
    }

    #[test]
    fn refuses_a_dir_of_another_user_both_modes() {
        for mode in [0o777, 0o700] {
            let base = scratch(&format!("foreign{mode:o}"));
            let dir = at(base.0.join("ferry"));
            let caller = foreign_dir(&dir.path, mode);
            let (reason, advice) = refusal(prepare(&dir, caller));
            assert!(reason.contains("belongs to uid"), "{reason}");
            assert!(advice.contains("remove it"), "{advice}");
            let (reason, _) = refusal(check_for_connect(&dir, caller));
            assert!(reason.contains("belongs to uid"), "{reason}");
        }
    }

    #[test]
    fn refuses_a_writable_dir_even_of_its_own_user() {
        let base = scratch("loose");
        let dir = at(base.0.join("ferry"));
        fs::create_dir(&dir.path).unwrap();
        fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o777)).unwrap();
        let (reason, advice) = refusal(check_for_connect(&dir, uid()));
        assert!(reason.contains("mode 777"), "{reason}");
        assert!(advice.contains("chmod go-w"), "{advice}");
        fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o770)).unwrap();
        refusal(prepare(&dir, uid()));
        fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&dir, uid()).unwrap();
    }

    #[test]
    fn refuses_a_symlink_even_to_a_good_dir() {
        let base = scratch("link");
        let real = base.0.join("real");
        fs::create_dir(&real).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
        let dir = at(base.0.join("ferry"));
        std::os::unix::fs::symlink(&real, &dir.path).unwrap();
        let (reason, _) = refusal(prepare(&dir, uid()));
        assert!(reason.contains("symbolic link"), "{reason}");
        let (reason, _) = refusal(check_for_connect(&dir, uid()));
        assert!(reason.contains("symbolic link"), "{reason}");
        // A dangling link is refused too, not replaced by a directory.
        fs::remove_dir(&real).unwrap();
        refusal(prepare(&dir, uid()));
        assert!(!real.exists());
    }

    #[test]
    fn refuses_a_file() {
        let base = scratch("file");
        let dir = at(base.0.join("ferry"));
        fs::write(&dir.path, b"").unwrap();
        let (reason, _) = refusal(check_for_connect(&dir, uid()));
        assert!(reason.contains("not a directory"), "{reason}");
    }

    #[test]
    fn a_root_owned_dir_is_trusted() {
        if uid() != 0 {
            return; // only root can make one
        }
        let base = scratch("root");
        let dir = at(base.0.join("ferry"));
        fs::create_dir(&dir.path).unwrap();
        fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_for_connect(&dir, OTHER_UID).unwrap());
    }
}
