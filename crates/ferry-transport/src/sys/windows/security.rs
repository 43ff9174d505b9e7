//! Security descriptors for pipe instances, and the user SIDs of processes.

use std::ffi::c_void;
use std::io;
use std::ptr;

use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenUser, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_QUERY,
    TOKEN_USER,
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

/// The user SID of this process, as `S-1-5-...`.
pub(crate) fn current_user_sid() -> io::Result<String> {
    // SAFETY: GetCurrentProcess returns a pseudo handle that needs no closing.
    let process = unsafe { GetCurrentProcess() };
    token_user_sid(process)
}

/// The user SID of process `pid`, when this process may query it.
pub(crate) fn process_user_sid(pid: u32) -> Option<String> {
    // SAFETY: plain call; a null result is checked below.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        tracing::debug!(pid, error = %io::Error::last_os_error(), "cannot open peer process");
        return None;
    }
    let process = OwnedHandle(process);
    token_user_sid(process.0)
        .inspect_err(|err| tracing::debug!(pid, error = %err, "cannot read peer user"))
        .ok()
}

/// Reads `TokenUser` from the token of `process` and formats its SID.
fn token_user_sid(process: HANDLE) -> io::Result<String> {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: `process` is a valid process handle; `token` is a valid out pointer.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let token = OwnedHandle(token);
    // TOKEN_USER holds a pointer into the same buffer, so the buffer must be aligned for
    // pointers: use u64 words.
    let mut buf = vec![0u64; 16];
    loop {
        let len = u32::try_from(buf.len() * 8).unwrap_or(u32::MAX);
        let mut needed = 0u32;
        // SAFETY: `buf` is writable for `len` bytes and `needed` is a valid out pointer.
        let ok = unsafe {
            GetTokenInformation(
                token.0,
                TokenUser,
                buf.as_mut_ptr().cast::<c_void>(),
                len,
                &mut needed,
            )
        };
        if ok != 0 {
            break;
        }
        let err = io::Error::last_os_error();
        if needed as usize <= buf.len() * 8 || needed > 64 * 1024 {
            return Err(err);
        }
        buf = vec![0u64; (needed as usize).div_ceil(8)];
    }
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
    fn own_sid_is_read_and_descriptors_parse() {
        let sid = current_user_sid().unwrap();
        assert!(sid.starts_with("S-1-"), "{sid}");
        assert_eq!(process_user_sid(std::process::id()).as_deref(), Some(&*sid));
        let sd = SecurityDescriptor::for_access(&PipeAccess::Owner).unwrap();
        assert!(sd.sddl().contains(&sid));
        assert!(SecurityDescriptor::from_sddl("not sddl").is_err());
    }
}
