//! Shared-memory segments on Windows: sections backed by the paging file. See `crate::shm`
//! for the policy.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::NonNull;

use windows_sys::Win32::Foundation::{DuplicateHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, MapViewOfFile, UnmapViewOfFile, VirtualQuery, FILE_MAP, FILE_MAP_READ,
    FILE_MAP_WRITE, MEMORY_BASIC_INFORMATION, MEMORY_MAPPED_VIEW_ADDRESS, MEM_COMMIT,
    PAGE_READWRITE,
};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

use crate::shm::SegmentError;

/// A section being written: its (full access) handle and a writable view.
pub(crate) struct Writer {
    section: OwnedHandle,
    view: Mapping,
}

impl Writer {
    pub(crate) fn create(len: usize) -> Result<Self, SegmentError> {
        // A section cannot be empty: an empty segment is a one-byte section nobody maps.
        let size = (len as u64).max(1);
        // SAFETY: INVALID_HANDLE_VALUE asks for a section backed by the paging file; no
        // security attributes (default, not inheritable) and no name.
        let raw = unsafe {
            CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                std::ptr::null(),
                PAGE_READWRITE,
                (size >> 32) as u32,
                size as u32,
                std::ptr::null(),
            )
        };
        if raw.is_null() {
            return Err(SegmentError::os(
                "CreateFileMappingW",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: a new handle that nothing else owns.
        let section = unsafe { OwnedHandle::from_raw_handle(raw) };
        let view = Mapping::new(&section, len, FILE_MAP_WRITE)?;
        Ok(Writer { section, view })
    }

    pub(crate) fn len(&self) -> usize {
        self.view.len
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the view is writable, `len` bytes long, lives as long as `self`, and
        // `&mut self` makes this the only reference into it; nobody else has the section.
        unsafe { std::slice::from_raw_parts_mut(self.view.ptr.as_ptr(), self.view.len) }
    }

    /// Drops the writable view and the full-access handle; keeps a read-only one.
    pub(crate) fn seal(self) -> Result<OwnedHandle, SegmentError> {
        let Writer { section, view } = self;
        drop(view);
        let mut read_only: HANDLE = std::ptr::null_mut();
        // SAFETY: both process handles are the current-process pseudo handle, the source is
        // a section we own, and the target is a local out parameter.
        let ok = unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                section.as_raw_handle(),
                GetCurrentProcess(),
                &mut read_only,
                FILE_MAP_READ,
                0,
                0,
            )
        };
        if ok == 0 {
            return Err(SegmentError::os(
                "DuplicateHandle",
                io::Error::last_os_error(),
            ));
        }
        drop(section);
        // SAFETY: DuplicateHandle succeeded, so this is a new handle that nothing else owns.
        Ok(unsafe { OwnedHandle::from_raw_handle(read_only) })
    }
}

/// A read-only view handed out to users.
pub(crate) struct View {
    map: Mapping,
}

impl View {
    pub(crate) fn map(section: &OwnedHandle, len: usize) -> Result<Self, SegmentError> {
        Ok(View {
            map: Mapping::new(section, len, FILE_MAP_READ)?,
        })
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: the view is readable, committed and `len` bytes long for as long as `self`
        // lives (checked by `receive` for a peer's section; our own is committed at creation).
        unsafe { std::slice::from_raw_parts(self.map.ptr.as_ptr(), self.map.len) }
    }
}

/// What `receive` made of a handle.
pub(crate) enum Opened {
    Mapped(View),
    // Windows never copies; the variant keeps the platforms' shapes the same.
    #[allow(dead_code)]
    Copied(Vec<u8>),
}

/// Maps `len` (> 0) bytes of a peer's section read-only and checks that every page of the
/// view is committed memory, so no read can fault.
pub(crate) fn receive(section: &OwnedHandle, len: usize) -> Result<Opened, SegmentError> {
    // MapViewOfFile fails (an `Os` error) when the section is shorter than `len`.
    let view = View::map(section, len)?;
    let mut info = MEMORY_BASIC_INFORMATION::default();
    // SAFETY: the address is the start of our view; `info` has room for one structure.
    let written = unsafe {
        VirtualQuery(
            view.map.ptr.as_ptr().cast(),
            &mut info,
            std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
        )
    };
    if written == 0 {
        return Err(SegmentError::os("VirtualQuery", io::Error::last_os_error()));
    }
    if info.State != MEM_COMMIT || info.RegionSize < len {
        let actual = if info.State == MEM_COMMIT {
            info.RegionSize as u64
        } else {
            0
        };
        return Err(SegmentError::Truncated {
            claimed: len as u64,
            actual,
        });
    }
    Ok(Opened::Mapped(view))
}

/// A view of the first `len` bytes of a section; unmapped on drop. A zero length maps
/// nothing.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the view is plain memory owned by this value; the raw pointer is what stops the
// compiler from seeing that. Shared access is read-only (`View`) or needs `&mut` (`Writer`).
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` gives no way to write.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(section: &OwnedHandle, len: usize, access: FILE_MAP) -> Result<Self, SegmentError> {
        if len == 0 {
            return Ok(Mapping {
                ptr: NonNull::dangling(),
                len,
            });
        }
        // SAFETY: a new view chosen by the system, of a section handle we hold.
        let view = unsafe { MapViewOfFile(section.as_raw_handle(), access, 0, 0, len) };
        let ptr = NonNull::new(view.Value.cast::<u8>())
            .ok_or_else(|| SegmentError::os("MapViewOfFile", io::Error::last_os_error()))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: the address is what MapViewOfFile returned, and no slice into the view
            // outlives `self` (slices borrow the owner).
            unsafe {
                UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS {
                    Value: self.ptr.as_ptr().cast(),
                })
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_section_cannot_be_mapped_writable() {
        let mut writer = Writer::create(4096).expect("create");
        writer.as_mut_slice().fill(3);
        let section = writer.seal().expect("seal");
        assert!(Mapping::new(&section, 4096, FILE_MAP_WRITE).is_err());
        let view = View::map(&section, 4096).expect("read-only view");
        assert!(view.as_slice().iter().all(|b| *b == 3));
    }
}
