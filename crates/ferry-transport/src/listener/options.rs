//! How a listener is created.

/// Options for [`Listener::bind`](crate::Listener::bind).
///
/// The default is safe: only the owner may connect (Unix mode `0o600`; on Windows a
/// descriptor for the creating user, `SYSTEM` and `Administrators`, see
/// `os::windows::PipeAccess` there), and a socket file
/// left behind by a dead server is replaced.
#[derive(Clone, Debug)]
pub struct ListenerOptions {
    pub(crate) mode: u32,
    pub(crate) reclaim_stale: bool,
    pub(crate) backlog: u32,
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) max_instances: usize,
    #[cfg(windows)]
    pub(crate) pipe_access: crate::os::windows::PipeAccess,
}

/// Default of [`ListenerOptions::max_instances`].
pub const DEFAULT_MAX_INSTANCES: usize = 4096;

impl Default for ListenerOptions {
    fn default() -> Self {
        Self {
            mode: 0o600,
            reclaim_stale: true,
            backlog: 1024,
            max_instances: DEFAULT_MAX_INSTANCES,
            #[cfg(windows)]
            pipe_access: Default::default(),
        }
    }
}

impl ListenerOptions {
    /// The default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Permission bits of the socket file (Unix; default `0o600`, owner only). Only the
    /// `0o777` bits are kept.
    ///
    /// They are set before the socket starts listening, so no client can connect while
    /// looser bits apply. Ignored for abstract names and on Windows.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// Whether to replace a socket file whose server is gone (default `true`).
    ///
    /// A file is stale when connecting to it is refused. A socket with a live server is
    /// never replaced.
    pub fn reclaim_stale(mut self, yes: bool) -> Self {
        self.reclaim_stale = yes;
        self
    }

    /// How many connections the operating system queues before they are accepted
    /// (default 1024; the system may lower it).
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog.max(1);
        self
    }

    /// Most pipe instances, waiting or connected, at once (Windows; at least 1, default
    /// [`DEFAULT_MAX_INSTANCES`] = 4096; ignored on Unix, where `backlog` and the runtime's
    /// connection limit apply).
    ///
    /// While that many clients are connected, no instance waits: a new client finds the
    /// pipe busy and keeps retrying until one of them leaves or its connect timeout passes.
    pub fn max_instances(mut self, n: usize) -> Self {
        self.max_instances = n.max(1);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_owner_only() {
        let o = ListenerOptions::new();
        assert_eq!(o.mode, 0o600);
        assert!(o.reclaim_stale);
        assert_eq!(o.backlog, 1024);
        let o = o.mode(0o4666).reclaim_stale(false).backlog(0);
        assert_eq!(o.mode, 0o666);
        assert!(!o.reclaim_stale);
        assert_eq!(o.backlog, 1);
        assert_eq!(o.max_instances, DEFAULT_MAX_INSTANCES);
        assert_eq!(o.clone().max_instances(0).max_instances, 1);
        assert_eq!(o.clone().max_instances(100_000).max_instances, 100_000);
        assert_eq!(o.max_instances(7).max_instances, 7);
    }
}
