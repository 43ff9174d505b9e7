//! Security descriptors for pipe instances, and who processes run as (their token's user
//! SID and whether it holds the Administrators group).

use std::ffi::c_void;
use std::io;
use std::ptr;

use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, IsWellKnownSid, TokenGroups, TokenUser, WinBuiltinAdministratorsSid,
    PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, SID_AND_ATTRIBUTES, TOKEN_GROUPS,
    TOKEN_INFORMATION_CLASS, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

use crate::os::windows::PipeAccess;

/// A self-relative security descriptor made from SDDL, freed on drop.
#[derive(Debug)]
pub(crate) struct SecurityDescriptor {
    raw: PSECURITY_DESCRIPTOR,
    sddl: String,
}

// SAFETY: the descriptor is written once by ConvertStringSecurityDescriptorToSecurityDescriptorW
// and only read afterwards (CreateNamedPipeW copies it), so sharing the pointer between
// threads cannot race; it is freed exactly once, in drop.
unsafe impl Send for SecurityDescriptor {}
// SAFETY: see `Send`; nothing mutates the descriptor through a shared reference.
unsafe impl Sync for SecurityDescriptor {}

impl SecurityDescriptor {
    /// The descriptor for `access`, for pipes created by this process.
    pub(crate) fn for_access(access: &PipeAccess) -> io::Result<SecurityDescriptor> {
        SecurityDescriptor::from_sddl(&sddl_for(access, &current_user_sid()?))
    }

    /// Parses SDDL such as `D:P(A;;GA;;;SY)`.
    pub(crate) fn from_sddl(sddl: &str) -> io::Result<SecurityDescriptor> {
        let wide = to_wide(sddl);
        let mut raw: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: `wide` is NUL-terminated and outlives the call; `raw` is a valid out
        // pointer; the size out pointer may be null.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                wide.as_ptr(),
                SDDL_REVISION_1,
                &mut raw,
                ptr::null_mut(),
            )
        };
        if ok == 0 || raw.is_null() {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid security descriptor {sddl:?}: {err}"),
            ));
        }
        Ok(SecurityDescriptor {
            raw,
            sddl: sddl.to_owned(),
        })
    }

    /// The SDDL this descriptor was made from.
    pub(crate) fn sddl(&self) -> &str {
        &self.sddl
    }

    /// Security attributes pointing at this descriptor (non-inheritable handle). Valid
    /// while `self` lives.
    pub(crate) fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.raw,
            bInheritHandle: 0,
        }
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: `raw` was allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW
        // with LocalAlloc and is freed only here.
        unsafe { LocalFree(self.raw) };
    }
}

/// The SDDL of `access`: a protected DACL (no inherited entries) that grants full
/// control to `owner`, SYSTEM and Administrators, plus what `access` adds.
pub(crate) fn sddl_for(access: &PipeAccess, owner: &str) -> String {
    let base = format!("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;{owner})");
    match access {
        PipeAccess::Owner => base,
        // Read and write for every authenticated user; remote ones are still rejected by
        // PIPE_REJECT_REMOTE_CLIENTS, so this means the users of this machine.
        PipeAccess::LocalUsers => format!("{base}(A;;GRGW;;;AU)"),
        PipeAccess::Sddl(sddl) => sddl.clone(),
    }
}

/// An owned kernel handle, closed on drop.
struct OwnedHandle(HANDLE);

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by us, is valid and is closed only here.
        unsafe { CloseHandle(self.0) };
    }
}

/// Who a process runs as, read from its access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenIdentity {
    /// The token's user, as `S-1-5-...`.
    pub(crate) sid: String,
    /// Whether the token has the Administrators group enabled: an elevated administrator
    /// or LocalSystem (a filtered administrator token holds the group for deny only).
    pub(crate) administrator: bool,
}

/// The user SID of this process, as `S-1-5-...`.
pub(crate) fn current_user_sid() -> io::Result<String> {
    current_identity().map(|identity| identity.sid)
}

/// Who this process runs as.
pub(crate) fn current_identity() -> io::Result<TokenIdentity> {
    // SAFETY: GetCurrentProcess returns a pseudo handle that needs no closing.
    let process = unsafe { GetCurrentProcess() };
    token_identity(process)
}

/// Who process `pid` runs as, when this process may query it.
pub(crate) fn process_identity(pid: u32) -> Option<TokenIdentity> {
    // SAFETY: plain call; a null result is checked below.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        tracing::debug!(pid, error = %io::Error::last_os_error(), "cannot open peer process");
        return None;
    }
    let process = OwnedHandle(process);
    token_identity(process.0)
        .inspect_err(|err| tracing::debug!(pid, error = %err, "cannot read peer user"))
        .ok()
}

/// The user SID of process `pid`, when this process may query it.
#[cfg(test)]
pub(crate) fn process_user_sid(pid: u32) -> Option<String> {
    process_identity(pid).map(|identity| identity.sid)
}

/// Reads the user and the groups of the token of `process`.
fn token_identity(process: HANDLE) -> io::Result<TokenIdentity> {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: `process` is a valid process handle; `token` is a valid out pointer.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let token = OwnedHandle(token);
    let sid = token_user_sid(&token)?;
    let administrator = token_has_administrators(&token).unwrap_or_else(|err| {
        tracing::debug!(error = %err, "cannot read token groups");
        false
    });
    Ok(TokenIdentity { sid, administrator })
}

/// `GetTokenInformation` of `class` into a buffer of u64 words: the structures it returns
/// hold pointers into the same buffer, so it must be aligned for pointers.
fn token_information(token: &OwnedHandle, class: TOKEN_INFORMATION_CLASS) -> io::Result<Vec<u64>> {
    let mut buf = vec![0u64; 16];
    loop {
        let len = u32::try_from(buf.len() * 8).unwrap_or(u32::MAX);
        let mut needed = 0u32;
        // SAFETY: `buf` is writable for `len` bytes and `needed` is a valid out pointer.
        let ok = unsafe {
            GetTokenInformation(
                token.0,
                class,
                buf.as_mut_ptr().cast::<c_void>(),
                len,
                &mut needed,
            )
        };
        if ok != 0 {
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if needed as usize <= buf.len() * 8 || needed > 256 * 1024 {
            return Err(err);
        }
        buf = vec![0u64; (needed as usize).div_ceil(8)];
    }
}

/// The token's user SID as text.
fn token_user_sid(token: &OwnedHandle) -> io::Result<String> {
    let buf = token_information(token, TokenUser)?;
    // SAFETY: the call succeeded, so the buffer starts with an initialized TOKEN_USER,
    // suitably aligned (u64 words).
    let user = unsafe { &*buf.as_ptr().cast::<TOKEN_USER>() };
    let mut text: *mut u16 = ptr::null_mut();
    // SAFETY: the SID points into `buf`, which lives until the end of this function;
    // `text` is a valid out pointer.
    if unsafe { ConvertSidToStringSidW(user.User.Sid, &mut text) } == 0 || text.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `text` is a NUL-terminated UTF-16 string allocated with
    // LocalAlloc; we read up to the NUL, copy it, then free it once.
    let sid = unsafe {
        let mut len = 0;
        while *text.add(len) != 0 {
            len += 1;
        }
        let sid = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
        LocalFree(text.cast());
        sid
    };
    Ok(sid)
}

/// `SE_GROUP_ENABLED`: the group counts in access checks.
const GROUP_ENABLED: u32 = 0x4;
/// `SE_GROUP_USE_FOR_DENY_ONLY`: the group only denies (a filtered administrator token).
const GROUP_DENY_ONLY: u32 = 0x10;

/// Whether the token holds the Administrators group enabled (not for deny only).
fn token_has_administrators(token: &OwnedHandle) -> io::Result<bool> {
    let buf = token_information(token, TokenGroups)?;
    // SAFETY: the call succeeded, so the buffer starts with an initialized TOKEN_GROUPS,
    // suitably aligned (u64 words).
    let groups = unsafe { &*buf.as_ptr().cast::<TOKEN_GROUPS>() };
    let count = groups.GroupCount as usize;
    // The entries follow each other from `Groups`; never read past the buffer.
    let room = (buf.len() * 8).saturating_sub(std::mem::offset_of!(TOKEN_GROUPS, Groups))
        / size_of::<SID_AND_ATTRIBUTES>();
    // SAFETY: `Groups` starts an array of `GroupCount` entries inside `buf` (bounded by
    // `room` above); each SID points into `buf`, which lives until the end of this function.
    let entries = unsafe { std::slice::from_raw_parts(groups.Groups.as_ptr(), count.min(room)) };
    Ok(entries.iter().any(|group| {
        grants_access(group.Attributes)
            // SAFETY: the SID points into `buf` (see above).
            && unsafe { IsWellKnownSid(group.Sid, WinBuiltinAdministratorsSid) } != 0
    }))
}

/// Whether a group with these attributes counts for access: enabled, and not deny-only.
fn grants_access(attributes: u32) -> bool {
    attributes & GROUP_ENABLED != 0 && attributes & GROUP_DENY_ONLY == 0
}

/// `s` as NUL-terminated UTF-16.
pub(crate) fn to_wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sddl_names_owner_system_and_admins_only() {
        let sddl = sddl_for(&PipeAccess::Owner, "S-1-5-21-1-2-3-1001");
        assert_eq!(
            sddl,
            "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;S-1-5-21-1-2-3-1001)"
        );
        let wide = sddl_for(&PipeAccess::LocalUsers, "S-1-5-21-1-2-3-1001");
        assert!(wide.starts_with(&sddl) && wide.ends_with("(A;;GRGW;;;AU)"));
        let custom = sddl_for(&PipeAccess::Sddl("D:(A;;GA;;;WD)".into()), "S-1-1");
        assert_eq!(custom, "D:(A;;GA;;;WD)");
    }

    #[test]
    fn only_enabled_groups_grant_access() {
        // Mandatory, enabled by default, enabled: an elevated administrator's group.
        assert!(grants_access(0x7));
        // A filtered (not elevated) administrator token: deny only.
        assert!(!grants_access(GROUP_DENY_ONLY));
        assert!(!grants_access(GROUP_DENY_ONLY | GROUP_ENABLED));
        // Present but disabled.
        assert!(!grants_access(0x2));
    }

    #[test]
    fn own_sid_is_read_and_descriptors_parse() {
        let sid = current_user_sid().unwrap();
        assert!(sid.starts_with("S-1-"), "{sid}");
        assert_eq!(process_user_sid(std::process::id()).as_deref(), Some(&*sid));
        let own = current_identity().unwrap();
        assert_eq!(own.sid, sid);
        assert_eq!(process_identity(std::process::id()), Some(own));
        let sd = SecurityDescriptor::for_access(&PipeAccess::Owner).unwrap();
        assert!(sd.sddl().contains(&sid));
        assert!(SecurityDescriptor::from_sddl("not sddl").is_err());
    }
}
