//! Who is on the other end of a stream.

/// The identity of the peer process, as the operating system reports it.
///
/// Filled once, when the stream is accepted or connected. A field is `None` when the
/// platform does not report it (Unix has no `sid`; Windows has no `uid`/`gid`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Process id of the peer.
    pub pid: Option<u32>,
    /// Effective user id of the peer (Unix).
    pub uid: Option<u32>,
    /// Effective group id of the peer (Unix).
    pub gid: Option<u32>,
    /// Security identifier of the peer's user, as `S-1-5-...` (Windows).
    pub sid: Option<String>,
}
