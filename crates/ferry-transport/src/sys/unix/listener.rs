//! Binding a Unix socket: private directory, mode before listen, stale files, cleanup.

use std::fs;
use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tokio::net::{UnixListener, UnixSocket};

use super::private_dir;
use super::stream::Stream;
use super::target::Target;
use crate::credentials::PeerCredentials;
use crate::error::TransportError;
use crate::listener::ListenerOptions;
use crate::name::Name;

/// A listening tokio `UnixListener`, and the socket file it owns.
#[derive(Debug)]
pub(crate) struct Listener {
    io: UnixListener,
    file: Option<SocketFile>,
}

/// A socket file this listener created, identified by device and inode so that drop
/// never removes a file that another server put in its place.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    fn identify(path: &Path) -> io::Result<SocketFile> {
        let meta = fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    fn is_still_ours(&self) -> bool {
        fs::symlink_metadata(&self.path)
            .map(|meta| meta.dev() == self.dev && meta.ino() == self.ino)
            .unwrap_or(false)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            if file.is_still_ours() {
                if let Err(err) = fs::remove_file(&file.path) {
                    tracing::debug!(path = %file.path.display(), error = %err, "cannot remove socket file");
                }
            }
        }
    }
}

/// What a connection attempt says about an existing socket file.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    /// A server accepts (or queues) connections: its process and user id, when the probe
    /// connection could read them.
    Live { pid: Option<u32>, uid: Option<u32> },
    /// Connection refused: the server is gone, the file is left over.
    Stale,
    /// The file disappeared in the meantime.
    Gone,
}

impl Listener {
    pub(crate) fn bind(
        name: &Name,
        address: &str,
        options: &ListenerOptions,
    ) -> Result<Listener, TransportError> {
        let target = Target::resolve(name)?;
        let Target::Path { path, plain } = &target else {
            return bind_abstract(&target, address, options);
        };
        match plain {
            Some(dir) => private_dir::prepare(dir, super::effective_uid())?,
            None => {
                if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    private_dir::create_parents(dir)?;
                }
            }
        }
        let in_use = match bind_path(path, options) {
            Ok(listener) => return Ok(listener),
            Err(err) if err.kind() == io::ErrorKind::AddrInUse => err,
            Err(err) => return Err(TransportError::io("bind", address, err)),
        };
        let meta = fs::symlink_metadata(path).ok();
        if meta.as_ref().is_some_and(|m| !m.file_type().is_socket()) {
            return Err(TransportError::Io {
                op: "bind",
                address: address.to_owned(),
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ),
            });
        }
        match probe(path) {
            Probe::Live { pid, uid } => {
                return Err(TransportError::AddressInUse {
                    address: address.to_owned(),
                    pid,
                    uid,
                })
            }
            Probe::Stale if !options.reclaim_stale => {
                return Err(TransportError::io("bind", address, in_use));
            }
            Probe::Stale => {
                tracing::debug!(%address, "replacing stale socket file");
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => {
                        return Err(TransportError::io("remove stale socket", address, err))
                    }
                }
            }
            Probe::Gone => {}
        }
        bind_path(path, options).map_err(|err| match err.kind() {
            // Someone else bound it between our probe and our bind.
            io::ErrorKind::AddrInUse => TransportError::AddressInUse {
                address: address.to_owned(),
                pid: None,
                uid: None,
            },
            _ => TransportError::io("bind", address, err),
        })
    }

    pub(crate) async fn accept(&self) -> io::Result<(Stream, PeerCredentials)> {
        let (stream, _addr) = self.io.accept().await?;
        Ok(Stream::with_credentials(stream))
    }
}

/// Binds, applies the mode, then listens: until `listen` every connect is refused, so no
/// client reaches the socket while its mode is still the umask default.
fn bind_path(path: &Path, options: &ListenerOptions) -> io::Result<Listener> {
    let socket = UnixSocket::new_stream()?;
    socket.bind(path)?;
    // From here on the file exists; remove it again if a later step fails.
    let finish = || -> io::Result<Listener> {
        fs::set_permissions(path, fs::Permissions::from_mode(options.mode))?;
        let file = SocketFile::identify(path)?;
        let io = socket.listen(options.backlog)?;
        Ok(Listener {
            io,
            file: Some(file),
        })
    };
    finish().inspect_err(|_| {
        let _ = fs::remove_file(path);
    })
}

fn bind_abstract(
    target: &Target,
    address: &str,
    options: &ListenerOptions,
) -> Result<Listener, TransportError> {
    let bind = || -> io::Result<UnixListener> {
        let socket = UnixSocket::new_stream()?;
        socket.bind(target.socket_path())?;
        socket.listen(options.backlog)
    };
    match bind() {
        Ok(io) => Ok(Listener { io, file: None }),
        // Abstract sockets vanish with their server, so in use always means live.
        Err(err) if err.kind() == io::ErrorKind::AddrInUse => Err(TransportError::AddressInUse {
            address: address.to_owned(),
            pid: None,
            uid: None,
        }),
        Err(err) => Err(TransportError::io("bind", address, err)),
    }
}

/// Tries to connect to `path` without blocking: the first poll of tokio's connect makes the
/// `connect(2)` call on a non-blocking socket, which for Unix sockets answers at once.
fn probe(path: &Path) -> Probe {
    let socket = match UnixSocket::new_stream() {
        Ok(socket) => socket,
        // Cannot tell; never steal.
        Err(_) => {
            return Probe::Live {
                pid: None,
                uid: None,
            }
        }
    };
    let connect = pin!(socket.connect(path));
    let mut cx = Context::from_waker(Waker::noop());
    match connect.poll(&mut cx) {
        Poll::Ready(Err(err)) if err.kind() == io::ErrorKind::ConnectionRefused => Probe::Stale,
        Poll::Ready(Err(err)) if err.kind() == io::ErrorKind::NotFound => Probe::Gone,
        // Connected, queued (in progress), or an error we do not understand.
        _ => {
            let (pid, uid) = holder(path).unwrap_or_default();
            Probe::Live { pid, uid }
        }
    }
}

/// The process and user id of the server listening at `path`, read from the credentials
/// of a connection to it (those of a connected socket are the listener's, readable before
/// the server accepts it). `None` when no connection is made at once: the connect never
/// waits (a full backlog fails it with `EAGAIN`).
fn holder(path: &Path) -> Option<(Option<u32>, Option<u32>)> {
    let cred = super::dial::connect_now(path).ok()??.peer_cred().ok()?;
    Some((
        cred.pid().and_then(|pid| u32::try_from(pid).ok()),
        Some(cred.uid()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ferry-ls-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn probe_tells_live_from_stale() {
        let dir = scratch("probe");
        let path = dir.join("s.sock");
        assert_eq!(probe(&path), Probe::Gone);
        let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(
            probe(&path),
            Probe::Live {
                pid: Some(std::process::id()),
                uid: Some(crate::sys::effective_uid()),
            }
        );
        drop(live);
        assert_eq!(probe(&path), Probe::Stale);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn drop_leaves_a_replaced_file_alone() {
        let dir = scratch("replaced");
        let path = dir.join("s.sock");
        let ours = Listener::bind(&Name::path(&path), "x", &ListenerOptions::new()).unwrap();
        fs::remove_file(&path).unwrap();
        let theirs = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(ours);
        assert!(path.exists(), "the other server's socket file was removed");
        drop(theirs);
        fs::remove_dir_all(&dir).unwrap();
    }
}
