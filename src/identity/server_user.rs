//! [`ServerUser`]: the user a client requires its server to run as.

use ferry_transport::PeerCredentials;

use super::{describe, is_same_user_or_admin, own_user, sid_matches};
use crate::error::{Error, ErrorKind};

/// The user a client requires the server to run as, checked right after connecting and
/// before the handshake is sent (see
/// [`ClientOptions::server_user`](crate::ClientOptions::server_user)).
///
/// The check reads the credentials the operating system reports for the server end of
/// the connection (Unix: the socket's peer credentials; Windows: the token of the pipe's
/// server process), so a process that squats the endpoint name, or a rogue pipe server,
/// is caught before the client tells it anything. A mismatch fails the connect with
/// [`ErrorKind::ServerIdentity`].
///
/// The default is [`ServerUser::SameUser`], for every kind of name. To reach a server of
/// another user, name that user, or use [`ServerUser::Any`] to trust whatever answers:
///
/// ```
/// use ferry::{ClientOptions, ServerUser};
/// // A CLI run by root talking to a daemon that runs as uid 998:
/// let options = ClientOptions::new().server_user(ServerUser::Uid(998));
/// // Any server at all (the endpoint's place and permissions are trusted instead):
/// let anyone = ClientOptions::new().server_user(ServerUser::Any);
/// # drop((options, anyone));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerUser {
    /// No check: whatever answers at the name is trusted, whoever runs it.
    Any,
    /// The user this client runs as, or the superuser (root; on Windows LocalSystem or a
    /// token with the Administrators group enabled), who could impersonate any server
    /// anyway. The default.
    #[default]
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
        // The text of what was wanted is made only for the error: a connect that passes
        // the check formats nothing.
        let wanted = match self {
            ServerUser::Any => return Ok(()),
            ServerUser::SameUser => {
                let own = own_user();
                if own
                    .as_ref()
                    .is_some_and(|own| is_same_user_or_admin(server, own))
                {
                    return Ok(());
                }
                match own {
                    Some(own) => format!(
                        "this client's user ({}) or an administrator",
                        describe(&own)
                    ),
                    None => "this client's user (which the platform did not report)".to_owned(),
                }
            }
            ServerUser::Uid(uid) => {
                if server.uid() == Some(*uid) {
                    return Ok(());
                }
                format!("uid {uid}")
            }
            ServerUser::Sid(sid) => {
                if server.sid().is_some_and(|s| sid_matches(s, sid)) {
                    return Ok(());
                }
                format!("SID {sid}")
            }
        };
        Err(Error::new(
            ErrorKind::ServerIdentity,
            format!(
                "the server at {address} runs as {}, not as {wanted} as required (pid {}); \
                 nothing was sent to it. If that server is the one you want, say whom to \
                 expect with ClientOptions::server_user (ServerUser::Uid, ServerUser::Sid, \
                 or ServerUser::Any to trust any)",
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
        assert!(
            err.to_string().starts_with(
                "the server at /run/x.sock runs as uid 6, not as uid 5 as required (pid 9); \
                 nothing was sent to it."
            ),
            "{err}"
        );
        assert!(err.to_string().contains("ServerUser::Any"), "{err}");
        assert!(ServerUser::Sid("S-1-5-18".into())
            .check(&server(0), "x")
            .is_err());
        let system = PeerCredentials::new().with_sid(Some("S-1-5-18".into()));
        assert!(ServerUser::Sid("S-1-5-18".into())
            .check(&system, "x")
            .is_ok());
        assert!(ServerUser::Uid(0).check(&system, "x").is_err());
    }

    #[test]
    fn same_user_is_the_default() {
        assert_eq!(ServerUser::default(), ServerUser::SameUser);
    }

    #[cfg(unix)]
    #[test]
    fn same_user() {
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
