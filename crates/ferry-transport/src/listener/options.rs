//! How a listener is created.

/// Options for [`Listener::bind`](crate::Listener::bind).
///
/// The default is safe: only the owner may connect (Unix mode `0o600`), and a socket file
/// left behind by a dead server is replaced.
#[derive(Clone, Debug)]
pub struct ListenerOptions {
    pub(crate) mode: u32,
    pub(crate) reclaim_stale: bool,
    pub(crate) backlog: u32,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        Self {
            mode: 0o600,
            reclaim_stale: true,
            backlog: 1024,
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
    }
}
