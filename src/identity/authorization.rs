//! The server's rule for which peers may connect.

use std::fmt;
use std::sync::Arc;

use ferry_transport::PeerCredentials;

use super::{describe, is_same_user_or_admin};

/// A user-supplied check of a peer's credentials.
pub(crate) type Check = dyn Fn(&PeerCredentials) -> bool + Send + Sync + 'static;

/// Which clients a server lets in, decided once per connection from the peer's
/// credentials, before its handshake is answered.
#[derive(Clone, Default)]
pub(crate) enum Authorization {
    /// The server's own user, and root / LocalSystem / Administrators (the default).
    #[default]
    SameUser,
    /// Any peer the endpoint lets connect.
    AnyUser,
    /// The user's own check.
    Custom(Arc<Check>),
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Authorization::SameUser => "SameUser",
            Authorization::AnyUser => "AnyUser",
            Authorization::Custom(_) => "Custom(..)",
        })
    }
}

impl Authorization {
    /// `Ok(())` when `peer` may connect, else the reason it may not (told to the client
    /// and logged). `own` is the server's user, read once when it bound
    /// ([`own_user`](super::own_user)).
    pub(crate) fn check(
        &self,
        peer: &PeerCredentials,
        own: Option<&PeerCredentials>,
    ) -> Result<(), String> {
        match self {
            Authorization::AnyUser => Ok(()),
            Authorization::SameUser => {
                let Some(own) = own else {
                    return Err(
                        "the server cannot tell which user it runs as, so it admits no one"
                            .to_owned(),
                    );
                };
                if is_same_user_or_admin(peer, own) {
                    Ok(())
                } else {
                    Err(format!(
                        "this server admits only its own user ({}) and administrators, not {}",
                        describe(own),
                        describe(peer)
                    ))
                }
            }
            Authorization::Custom(check) => {
                if check(peer) {
                    Ok(())
                } else {
                    Err(format!(
                        "the server's authorization check refused {} (pid {})",
                        describe(peer),
                        peer.pid()
                            .map_or_else(|| "unknown".to_owned(), |pid| pid.to_string())
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32) -> PeerCredentials {
        PeerCredentials::new()
            .with_pid(Some(42))
            .with_uid(Some(uid))
            .with_gid(Some(uid))
    }

    #[test]
    fn any_and_custom() {
        assert!(Authorization::AnyUser.check(&peer(12345), None).is_ok());
        assert!(Authorization::AnyUser
            .check(&PeerCredentials::default(), None)
            .is_ok());
        let only_7 = Authorization::Custom(Arc::new(|p: &PeerCredentials| p.uid() == Some(7)));
        assert!(only_7.check(&peer(7), None).is_ok());
        let refused = only_7.check(&peer(8), None).unwrap_err();
        assert_eq!(
            refused,
            "the server's authorization check refused uid 8 (pid 42)"
        );
        assert_eq!(format!("{only_7:?}"), "Custom(..)");
    }

    #[test]
    fn same_user_admits_own_user_and_root_only() {
        let own = peer(1000);
        let policy = Authorization::default();
        assert!(policy.check(&peer(1000), Some(&own)).is_ok());
        assert!(policy.check(&peer(0), Some(&own)).is_ok());
        let refused = policy.check(&peer(1001), Some(&own)).unwrap_err();
        assert!(refused.contains("not uid 1001"), "{refused}");
        assert!(policy
            .check(&PeerCredentials::default(), Some(&own))
            .is_err());
        // A server that cannot tell who it is admits no one by this rule.
        let refused = policy.check(&peer(1000), None).unwrap_err();
        assert!(refused.contains("cannot tell"), "{refused}");
    }
}
