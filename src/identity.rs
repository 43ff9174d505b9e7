//! Who runs a process: this one's user, the default "same user" rule, and the checks built
//! on it (the server's [`Authorization`] of clients, the client's [`ServerUser`]).

mod authorization;
mod server_user;

use ferry_transport::PeerCredentials;
use tracing::warn;

pub(crate) use authorization::Authorization;
pub use server_user::ServerUser;

/// The Windows security identifier of the LocalSystem account.
pub(crate) const SID_LOCAL_SYSTEM: &str = "S-1-5-18";
/// The Windows security identifier of the built-in Administrators group (the owner an
/// elevated administrator's token reports).
pub(crate) const SID_ADMINISTRATORS: &str = "S-1-5-32-544";

/// The user this process runs as, in the form the transport reports a peer (uid and gid on
/// Unix, the SID on Windows), without the process id. `None` when the platform cannot tell.
///
/// Read from the operating system at each call ([`PeerCredentials::of_this_process`]:
/// `geteuid`/`getegid` on Unix, the process token on Windows), so it needs no connection
/// and no file descriptor: a server out of descriptors still knows who it is. A server
/// reads it once, when it binds; a client when it connects.
pub(crate) fn own_user() -> Option<PeerCredentials> {
    match PeerCredentials::of_this_process() {
        Ok(own) => Some(own.with_pid(None)),
        Err(err) => {
            warn!(error = %crate::ErrorChain::new(&err), "cannot learn the user this process runs as");
            None
        }
    }
}

/// Whether `peer` runs as the same user as `own`, or as the superuser (root; on Windows
/// LocalSystem, or a token with the Administrators group enabled).
///
/// Decides on the user identity only, never on the process id. A side whose user the
/// platform did not report (a `None` uid on Unix, a `None` SID on Windows) never matches:
/// unknown is not the same.
pub(crate) fn is_same_user_or_admin(peer: &PeerCredentials, own: &PeerCredentials) -> bool {
    if let Some(uid) = peer.uid() {
        if uid == 0 || Some(uid) == own.uid() {
            return true;
        }
    }
    if peer.administrator() {
        return true;
    }
    if let Some(sid) = peer.sid() {
        if sid_is_admin(sid) || own.sid().is_some_and(|own| sid_matches(sid, own)) {
            return true;
        }
    }
    false
}

/// Whether a SID names LocalSystem or the Administrators group.
pub(crate) fn sid_is_admin(sid: &str) -> bool {
    sid_matches(sid, SID_LOCAL_SYSTEM) || sid_matches(sid, SID_ADMINISTRATORS)
}

/// SIDs in their `S-1-...` text form; the prefix letter is case-insensitive.
pub(crate) fn sid_matches(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// `peer`'s user for a log line or an error message.
pub(crate) fn describe(peer: &PeerCredentials) -> String {
    let user = match (peer.uid(), peer.sid()) {
        (Some(uid), _) => format!("uid {uid}"),
        (None, Some(sid)) => format!("SID {sid}"),
        (None, None) => "an unknown user".to_owned(),
    };
    if peer.administrator() {
        format!("{user} (an administrator)")
    } else {
        user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(uid: u32) -> PeerCredentials {
        PeerCredentials::new()
            .with_pid(Some(1))
            .with_uid(Some(uid))
            .with_gid(Some(uid))
    }

    fn windows(sid: &str) -> PeerCredentials {
        PeerCredentials::new()
            .with_pid(Some(1))
            .with_sid(Some(sid.to_owned()))
    }

    #[test]
    fn unix_same_user_or_root() {
        let own = unix(1000);
        assert!(is_same_user_or_admin(&unix(1000), &own));
        assert!(is_same_user_or_admin(&unix(0), &own));
        assert!(!is_same_user_or_admin(&unix(1001), &own));
        assert!(!is_same_user_or_admin(&PeerCredentials::default(), &own));
        // Unknown on our side: only root still matches.
        let unknown = PeerCredentials::default();
        assert!(!is_same_user_or_admin(&unix(1000), &unknown));
        assert!(is_same_user_or_admin(&unix(0), &unknown));
    }

    #[test]
    fn windows_same_sid_or_system() {
        let own = windows("S-1-5-21-1-2-3-1001");
        assert!(is_same_user_or_admin(&windows("S-1-5-21-1-2-3-1001"), &own));
        assert!(is_same_user_or_admin(&windows("s-1-5-21-1-2-3-1001"), &own));
        assert!(is_same_user_or_admin(&windows("S-1-5-18"), &own));
        assert!(is_same_user_or_admin(&windows("S-1-5-32-544"), &own));
        assert!(!is_same_user_or_admin(
            &windows("S-1-5-21-1-2-3-1002"),
            &own
        ));
        // A prefix is not a match.
        assert!(!is_same_user_or_admin(&windows("S-1-5-21-1-2-3-100"), &own));
        assert!(!is_same_user_or_admin(
            &windows("S-1-5-21-1-2-3-1001"),
            &PeerCredentials::default()
        ));
    }

    #[test]
    fn windows_administrators_token() {
        let own = windows("S-1-5-21-1-2-3-1001");
        let admin = windows("S-1-5-21-1-2-3-500").with_administrator(true);
        assert!(is_same_user_or_admin(&admin, &own));
        // The flag alone, with no user reported, still names an administrator.
        let flag_only = PeerCredentials::new().with_administrator(true);
        assert!(is_same_user_or_admin(&flag_only, &own));
    }

    #[test]
    fn descriptions() {
        assert_eq!(describe(&unix(7)), "uid 7");
        assert_eq!(describe(&windows("S-1-5-18")), "SID S-1-5-18");
        assert_eq!(describe(&PeerCredentials::default()), "an unknown user");
    }

    #[cfg(unix)]
    #[test]
    fn own_user_is_this_process_user() {
        let own = own_user().expect("own user");
        let meta = std::fs::metadata("/proc/self").ok();
        assert!(own.uid().is_some());
        assert_eq!(own.pid(), None);
        if let Some(meta) = meta {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(own.uid(), Some(meta.uid()));
        }
        assert!(is_same_user_or_admin(&own, &own));
    }
}
