//! A name resolved to a Unix socket address.

use std::io;
use std::path::{Path, PathBuf};

use tokio::net::UnixStream;

use super::runtime_dir::{self, RuntimeDir};
use super::stream::Stream;
use super::{effective_uid, private_dir};
use crate::credentials::PeerCredentials;
use crate::error::TransportError;
use crate::name::{Name, NameKind};

/// Size of `sockaddr_un::sun_path`, which must also hold the terminating NUL.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SUN_PATH_LEN: usize = 108;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SUN_PATH_LEN: usize = 104;

/// Socket paths must fit `sun_path`; say so with the numbers instead of a bare `EINVAL`.
fn check_path_len(path: &Path) -> Result<(), TransportError> {
    let len = path.as_os_str().len();
    if len == 0 {
        return Err(TransportError::InvalidName {
            name: String::new(),
            reason: "socket path is empty".into(),
        });
    }
    if len >= SUN_PATH_LEN {
        return Err(TransportError::InvalidName {
            name: path.display().to_string(),
            reason: format!(
                "socket path is {len} bytes, the limit is {}",
                SUN_PATH_LEN - 1
            ),
        });
    }
    Ok(())
}

/// Where a name points on Unix.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A socket file. `plain` is the runtime directory when the path came from a plain
    /// name, so that directory must be trusted.
    Path {
        path: PathBuf,
        plain: Option<RuntimeDir>,
    },
    /// A Linux abstract socket name, without the leading NUL.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    Abstract(Vec<u8>),
}

impl Target {
    /// Resolves `name`, reading the environment for plain names.
    pub(crate) fn resolve(name: &Name) -> Result<Target, TransportError> {
        match name.kind() {
            NameKind::Plain(plain) => {
                let dir = runtime_dir::current_runtime_dir();
                let path = runtime_dir::socket_path_in(&dir.path, plain);
                check_path_len(&path)?;
                Ok(Target::Path {
                    path,
                    plain: Some(dir),
                })
            }
            NameKind::Path(path) => {
                check_path_len(path)?;
                Ok(Target::Path {
                    path: path.clone(),
                    plain: None,
                })
            }
            #[cfg(any(target_os = "linux", target_os = "android"))]
            NameKind::Abstract(bytes) => Ok(Target::Abstract(bytes.clone())),
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            NameKind::Abstract(_) => Err(TransportError::Unsupported("abstract socket names")),
            NameKind::Pipe(_) => Err(TransportError::Unsupported("named pipes")),
        }
    }

    /// The path handed to the socket calls; abstract names start with NUL, which both
    /// tokio and socket2 read as the abstract namespace.
    pub(crate) fn socket_path(&self) -> PathBuf {
        match self {
            Target::Path { path, .. } => path.clone(),
            Target::Abstract(bytes) => {
                use std::ffi::OsString;
                use std::os::unix::ffi::OsStringExt;
                let mut raw = Vec::with_capacity(bytes.len() + 1);
                raw.push(0);
                raw.extend_from_slice(bytes);
                PathBuf::from(OsString::from_vec(raw))
            }
        }
    }

    /// Checked before each connection attempt: the runtime directory of a plain name must
    /// be trusted, as a server requires before it binds there. `Ok(false)` when that
    /// directory does not exist (no server has run there), so there is nothing to connect
    /// to; always `Ok(true)` for explicit paths and abstract names.
    pub(crate) fn check(&self) -> Result<bool, TransportError> {
        match self {
            Target::Path {
                plain: Some(dir), ..
            } => private_dir::check_for_connect(dir, effective_uid()),
            _ => Ok(true),
        }
    }

    /// One connection attempt: connected at once when the system can (no wait for
    /// readiness, see [`dial`](super::dial)), else through tokio's connect.
    pub(crate) async fn connect(&self) -> io::Result<(Stream, PeerCredentials)> {
        let path = self.socket_path();
        let stream = match super::dial::connect_now(&path)? {
            Some(stream) => stream,
            None => UnixStream::connect(path).await?,
        };
        Ok(Stream::with_credentials(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_paths_are_invalid_names() {
        let long = format!("/tmp/{}.sock", "x".repeat(SUN_PATH_LEN));
        match Target::resolve(&Name::path(&long)) {
            Err(TransportError::InvalidName { name, reason }) => {
                assert_eq!(name, long);
                assert!(
                    reason.contains(&format!("{} bytes", long.len())),
                    "{reason}"
                );
            }
            other => panic!("expected InvalidName, got {other:?}"),
        }
        let fits = format!("/{}", "x".repeat(SUN_PATH_LEN - 2));
        assert!(Target::resolve(&Name::path(fits)).is_ok());
        assert!(Target::resolve(&Name::path("")).is_err());
    }
}
