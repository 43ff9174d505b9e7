//! Who is on the other end of a stream, and who this process is.

use crate::error::TransportError;
use crate::sys;

/// The identity of the peer process, as the operating system reports it.
///
/// Filled once, when the stream is accepted or connected. A value is `None` when the
/// platform does not report it (Unix has no `sid`; Windows has no `uid`/`gid`).
///
/// The `with_*` methods make one by hand, for example to test an authorization rule:
///
/// ```
/// use ferry_transport::PeerCredentials;
/// let root = PeerCredentials::new().with_pid(Some(1)).with_uid(Some(0));
/// assert_eq!(root.uid(), Some(0));
/// assert_eq!(root.sid(), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerCredentials {
    pub(crate) pid: Option<u32>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) sid: Option<String>,
    pub(crate) administrator: bool,
}

impl PeerCredentials {
    /// Credentials that say nothing (every value `None`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Process id of the peer.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Effective user id of the peer (Unix).
    pub fn uid(&self) -> Option<u32> {
        self.uid
    }

    /// Effective group id of the peer (Unix).
    pub fn gid(&self) -> Option<u32> {
        self.gid
    }

    /// Security identifier of the peer's user, as `S-1-5-...` (Windows).
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// Whether the peer's token has the Administrators group enabled (Windows: an elevated
    /// administrator, or LocalSystem). Always `false` on Unix, where the superuser is uid 0,
    /// and when the token could not be read.
    pub fn administrator(&self) -> bool {
        self.administrator
    }

    /// Who this process runs as, in the form a peer would see it: the process id and the
    /// effective uid and gid (`geteuid`/`getegid`) on Unix; the process id and the token's
    /// user SID and groups on Windows.
    ///
    /// Read from the operating system at each call, without opening anything on Unix, so
    /// it works when the process is out of file descriptors, and follows a change of
    /// effective user.
    pub fn of_this_process() -> Result<PeerCredentials, TransportError> {
        sys::own_credentials()
    }

    /// These credentials with process id `pid`.
    #[must_use]
    pub fn with_pid(mut self, pid: Option<u32>) -> Self {
        self.pid = pid;
        self
    }

    /// These credentials with user id `uid`.
    #[must_use]
    pub fn with_uid(mut self, uid: Option<u32>) -> Self {
        self.uid = uid;
        self
    }

    /// These credentials with group id `gid`.
    #[must_use]
    pub fn with_gid(mut self, gid: Option<u32>) -> Self {
        self.gid = gid;
        self
    }

    /// These credentials with user SID `sid`.
    #[must_use]
    pub fn with_sid(mut self, sid: Option<String>) -> Self {
        self.sid = sid;
        self
    }

    /// These credentials with the Administrators flag set to `administrator`.
    #[must_use]
    pub fn with_administrator(mut self, administrator: bool) -> Self {
        self.administrator = administrator;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What this process reads about itself is what a peer reads about it (Unix: the
    /// socket's credentials; Windows: the pipe's process id and that process's token).
    #[tokio::test]
    async fn this_process_is_its_own_peer() {
        let (a, _b) = crate::pair().unwrap();
        let own = PeerCredentials::of_this_process().unwrap();
        assert_eq!(&own, a.peer_credentials());
        assert_eq!(own.pid(), Some(std::process::id()));
        #[cfg(unix)]
        assert!(own.uid().is_some() && own.sid().is_none() && !own.administrator());
        #[cfg(windows)]
        assert!(own.sid().is_some_and(|sid| sid.starts_with("S-1-")));
    }
}
