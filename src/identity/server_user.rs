//! [`ServerUser`]: the user a client requires its server to run as.

use ferry_transport::PeerCredentials;

use super::{describe, is_same_user_or_admin, own_user, sid_matches};
use crate::error::{Error, ErrorKind};

/// The user a client requires the server to run as, checked right after connecting and
/// before the handshake is sent (see
/// [`ClientOptions::server_user`](crate::ClientOptions::server_user)).
///
/// The check reads the credentials the operating system reports for the server end of
/// the connection, so a process that squats the endpoint name, or a rogue pipe server,
/// is caught before the client tells it anything. A mismatch fails the connect with
/// [`ErrorKind::ServerIdentity`].
///
/// ```
/// use ferry::{ClientOptions, ServerUser};
/// // A CLI talking to a root daemon:
/// let options = ClientOptions::new().server_user(ServerUser::Uid(0));
/// # drop(options);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerUser {
    /// No check (the default): the endpoint's location and permissions are trusted.
    #[default]
    Any,
    /// The user this client runs as, or the superuser (root; on Windows LocalSystem or
    /// the Administrators group), who could impersonate any server anyway.
    SameUser,
    /// Exactly this Unix user id. Never matches on Windows.
    Uid(u32),
    /// Exactly this Windows security identifier, as `S-1-5-...`. Never matches on Unix.
    Sid(String),
}

impl ServerUser {
    /// `Ok(())` when `server` (the peer credentials of a connected client stream) runs as
    /// the required user.
    pub(crate) fn check(&self, server: &PeerCredentials, address: &str) -> Result<(), Error> {
        let (matches, wanted) = match self {
            ServerUser::Any => return Ok(()),
            ServerUser::SameUser => match own_user() {
                Some(own) => (
                    is_same_user_or_admin(server, own),
                    format!("this client's user ({}) or an administrator", describe(own)),
                ),
                None => (
                    false,
                    "this client's user (which the platform did not report)".to_owned(),
                ),
            },
            ServerUser::Uid(uid) => (server.uid() == Some(*uid), format!("uid {uid}")),
            ServerUser::Sid(sid) => (
                server.sid().is_some_and(|s| sid_matches(s, sid)),
                format!("SID {sid}"),
            ),
        };
        if matches {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::ServerIdentity,
            format!(
                "the server at {address} runs as {}, not as {wanted} as required (pid {})",
                describe(server),
                server
                    .pid()
                    .map_or_else(|| "unknown".to_owned(), |pid| pid.to_string())
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(uid: u32) -> PeerCredentials {
        PeerCredentials::new()
            .with_pid(Some(9))
            .with_uid(Some(uid))
            .with_gid(Some(uid))
    }

    #[test]
    fn exact_user() {
        assert!(ServerUser::Any
            .check(&PeerCredentials::default(), "x")
            .is_ok());
        assert!(ServerUser::Uid(5).check(&server(5), "x").is_ok());
        let err = ServerUser::Uid(5)
            .check(&server(6), "/run/x.sock")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ServerIdentity);
        assert!(err.is_server_identity());
        assert_eq!(
            err.to_string(),
            "the server at /run/x.sock runs as uid 6, not as uid 5 as required (pid 9)"
        );
        assert!(ServerUser::Sid("S-1-5-18".into())
            .check(&server(0), "x")
            .is_err());
        let system = PeerCredentials::new().with_sid(Some("S-1-5-18".into()));
        assert!(ServerUser::Sid("S-1-5-18".into())
            .check(&system, "x")
            .is_ok());
        assert!(ServerUser::Uid(0).check(&system, "x").is_err());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn same_user() {
        let own = own_user().expect("own user").uid().expect("own uid");
        assert!(ServerUser::SameUser.check(&server(own), "x").is_ok());
        assert!(ServerUser::SameUser.check(&server(0), "x").is_ok());
        let other = own.wrapping_add(1).max(1);
        let err = ServerUser::SameUser.check(&server(other), "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ServerIdentity);
        assert!(
            err.to_string().contains(&format!("runs as uid {other}")),
            "{err}"
        );
        assert!(ServerUser::SameUser
            .check(&PeerCredentials::default(), "x")
            .is_err());
    }
}
