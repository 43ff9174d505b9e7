//! Who is on the other end of a stream.

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
}
