//! Windows-only extras.

use crate::listener::ListenerOptions;

/// Who may connect to a pipe (and create instances of it), as set with
/// [`ListenerOptionsExt::pipe_access`].
///
/// Every variant keeps remote clients out (`PIPE_REJECT_REMOTE_CLIENTS`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PipeAccess {
    /// The user who created the pipe, `SYSTEM` and the `Administrators` group (the
    /// default). SDDL: `D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;<creating user's SID>)`.
    #[default]
    Owner,
    /// [`PipeAccess::Owner`] plus read and write for every authenticated user of this
    /// machine (`(A;;GRGW;;;AU)`), e.g. for a service that serves the desktop programs of
    /// other users.
    ///
    /// Generic write on a pipe includes the right to create instances of it, so such a
    /// user could also offer instances of their own while this server has fewer than
    /// `max_instances`; clients that care can check the server with
    /// [`ConnectOptions::require_server_pid`](crate::ConnectOptions::require_server_pid).
    LocalUsers,
    /// A security descriptor in SDDL, used as given (e.g. `"D:P(A;;GA;;;SY)(A;;GRGW;;;IU)"`).
    Sddl(String),
}

/// Windows-only settings of [`ListenerOptions`].
pub trait ListenerOptionsExt: Sized {
    /// Who may connect; the default is [`PipeAccess::Owner`].
    fn pipe_access(self, access: PipeAccess) -> Self;
}

impl ListenerOptionsExt for ListenerOptions {
    fn pipe_access(mut self, access: PipeAccess) -> Self {
        self.pipe_access = access;
        self
    }
}
