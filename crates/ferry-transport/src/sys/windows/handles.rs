//! Handles duplicated into the peer process (`DuplicateHandle`).

use std::io;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr;

use windows_sys::Win32::Foundation::{
    DuplicateHandle, DUPLICATE_CLOSE_SOURCE, DUPLICATE_SAME_ACCESS, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcess, PROCESS_DUP_HANDLE};

/// Opens process `pid` with the right to duplicate handles into it.
pub(crate) fn open_process(pid: u32) -> io::Result<OwnedHandle> {
    // SAFETY: OpenProcess takes plain values and returns a new handle or null.
    let process = unsafe { OpenProcess(PROCESS_DUP_HANDLE, 0, pid) };
    if process.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `process` is a fresh handle that nothing else owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(process as RawHandle) })
}

/// Duplicates `handle` into `process` with the same access, not inheritable; returns the
/// value it has there.
pub(crate) fn duplicate_into(process: &OwnedHandle, handle: BorrowedHandle<'_>) -> io::Result<u64> {
    let mut target: HANDLE = ptr::null_mut();
    // SAFETY: both handles are open for the call (borrowed and owned); `target` is a valid
    // out pointer; the pseudo handle of GetCurrentProcess needs no closing.
    let ok = unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            handle.as_raw_handle() as HANDLE,
            process.as_raw_handle() as HANDLE,
            &mut target,
            0,
            0,
            DUPLICATE_SAME_ACCESS,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(target as usize as u64)
}

/// Closes the handle `value` of `process` (one this process duplicated into it).
pub(crate) fn close_in(process: &OwnedHandle, value: u64) {
    // SAFETY: DUPLICATE_CLOSE_SOURCE with no target closes the source handle in `process`
    // and touches no memory of ours; a wrong value fails harmlessly in that process's table.
    unsafe {
        DuplicateHandle(
            process.as_raw_handle() as HANDLE,
            value as usize as HANDLE,
            ptr::null_mut(),
            ptr::null_mut(),
            0,
            0,
            DUPLICATE_CLOSE_SOURCE,
        );
    }
}

/// Takes ownership of the handle `value` of this process, which a peer duplicated into it.
pub(crate) fn adopt(value: u64) -> io::Result<OwnedHandle> {
    let raw = usize::try_from(value).map_err(|_| invalid(value))? as HANDLE;
    if raw.is_null() || raw == INVALID_HANDLE_VALUE {
        return Err(invalid(value));
    }
    // SAFETY: the peer duplicated this handle into this process for us to own (the wire
    // contract); nothing else in this process knows its value, so owning it is sound as
    // long as the peer keeps that contract (peers are of the same user, docs/security.md).
    Ok(unsafe { OwnedHandle::from_raw_handle(raw as RawHandle) })
}

fn invalid(value: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("handle value {value:#x} is not a handle"),
    )
}
