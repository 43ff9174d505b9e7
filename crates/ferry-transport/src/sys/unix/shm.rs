//! Shared-memory segments on Unix: sealed memfds where the OS has them (Linux, Android,
//! FreeBSD), unlinked temporary files elsewhere (macOS). See `crate::shm` for the policy.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;

use crate::shm::SegmentError;

/// The seals that make a segment's bytes and size final.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const FINAL_SEALS: libc::c_int =
    libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;

/// The seals a receiver needs before it maps: nobody can write or shrink.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const MAPPABLE_SEALS: libc::c_int = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK;

/// Extra `mmap` flags for the writer's mapping, which is written whole: on Linux its pages
/// are allocated in one go instead of one fault per page.
#[cfg(any(target_os = "linux", target_os = "android"))]
const POPULATE: libc::c_int = libc::MAP_POPULATE;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const POPULATE: libc::c_int = 0;

/// A segment being written: its descriptor and a writable shared mapping.
pub(crate) struct Writer {
    fd: OwnedFd,
    /// The descriptor handed out after sealing where the OS has no seals: read-only.
    #[cfg_attr(
        any(target_os = "linux", target_os = "android", target_os = "freebsd"),
        allow(dead_code)
    )]
    read_only: Option<OwnedFd>,
    map: Mapping,
}

impl Writer {
    pub(crate) fn create(len: usize) -> Result<Self, SegmentError> {
        let size =
            libc::off_t::try_from(len).map_err(|_| SegmentError::TooLarge { len: len as u64 })?;
        let (fd, read_only) = create_fd()?;
        // SAFETY: fd is an open descriptor we own; ftruncate reads no memory of ours.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size) } != 0 {
            return Err(SegmentError::os("ftruncate", io::Error::last_os_error()));
        }
        let map = Mapping::new(&fd, len, libc::PROT_READ | libc::PROT_WRITE, POPULATE)?;
        keep_from_children(&map)?;
        Ok(Writer { fd, read_only, map })
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is writable, `len` bytes long, lives as long as `self`, and
        // `&mut self` makes this the only reference into it in this process. Nobody else has
        // the descriptor before `seal`.
        unsafe { std::slice::from_raw_parts_mut(self.map.ptr.as_ptr(), self.map.len) }
    }

    /// Drops the writable mapping, then seals; returns the descriptor to hand out.
    pub(crate) fn seal(self) -> Result<OwnedFd, SegmentError> {
        let Writer { fd, read_only, map } = self;
        drop(map);
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        {
            let _ = read_only;
            // SAFETY: fd is an open descriptor we own; F_ADD_SEALS takes an int argument.
            if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, FINAL_SEALS) } != 0 {
                return Err(SegmentError::os("seal", io::Error::last_os_error()));
            }
            Ok(fd)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        {
            drop(fd);
            read_only.ok_or_else(|| {
                SegmentError::os("seal", io::Error::other("no read-only descriptor"))
            })
        }
    }
}

/// A new memfd, allowed to be sealed, closed on exec.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn create_fd() -> Result<(OwnedFd, Option<OwnedFd>), SegmentError> {
    use std::os::fd::FromRawFd;
    // SAFETY: the name is a NUL-terminated string that outlives the call.
    let raw = unsafe {
        libc::memfd_create(
            c"ferry-shared".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if raw < 0 {
        return Err(SegmentError::os("memfd_create", io::Error::last_os_error()));
    }
    // SAFETY: memfd_create returned a new descriptor that nothing else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(raw) }, None))
}

/// A new file of a random name in the temporary directory, opened twice (read-write to fill
/// it, read-only to hand out) and unlinked at once. Used where there is no memfd: macOS's
/// shared-memory objects cannot be sealed nor read with `pread`, which the receiver's copy
/// needs, and a descriptor opened read-only cannot be truncated by whoever receives it.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn create_fd() -> Result<(OwnedFd, Option<OwnedFd>), SegmentError> {
    use std::hash::{BuildHasher, Hasher};
    use std::os::unix::fs::OpenOptionsExt;
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let path = std::env::temp_dir().join(format!(
        "ferry-shared-{}-{:016x}",
        std::process::id(),
        hasher.finish()
    ));
    let write = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| SegmentError::os("create temporary file", e))?;
    let read = std::fs::File::open(&path);
    let _ = std::fs::remove_file(&path);
    let read = read.map_err(|e| SegmentError::os("open temporary file", e))?;
    Ok((write.into(), Some(read.into())))
}

/// A read-only mapping handed out to users.
pub(crate) struct View {
    map: Mapping,
}

impl View {
    pub(crate) fn map(fd: &OwnedFd, len: usize) -> Result<Self, SegmentError> {
        Ok(View {
            map: Mapping::new(fd, len, libc::PROT_READ, 0)?,
        })
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is readable and `len` bytes long for as long as `self` lives.
        // Its bytes do not change: it is either this process's own sealed segment or one
        // that `receive` found sealed against writing and shrinking, so no read can fault.
        unsafe { std::slice::from_raw_parts(self.map.ptr.as_ptr(), self.map.len) }
    }
}

/// What `receive` made of a handle.
pub(crate) enum Opened {
    Mapped(View),
    Copied(Vec<u8>),
}

/// Checks a received descriptor and maps or copies `len` (> 0) bytes of it.
pub(crate) fn receive(fd: &OwnedFd, len: usize) -> Result<Opened, SegmentError> {
    // Seals first: once sealed against shrinking, the size read next cannot decrease.
    let sealed = is_sealed(fd);
    let actual = size_of(fd)?;
    if actual < len as u64 {
        return Err(SegmentError::Truncated {
            claimed: len as u64,
            actual,
        });
    }
    if sealed {
        return Ok(Opened::Mapped(View::map(fd, len)?));
    }
    copy_out(fd, len).map(Opened::Copied)
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn is_sealed(fd: &OwnedFd) -> bool {
    // SAFETY: fd is open; F_GET_SEALS takes no argument. A descriptor that is not a memfd
    // answers -1 (EINVAL), i.e. not sealed.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & MAPPABLE_SEALS == MAPPABLE_SEALS
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn is_sealed(_fd: &OwnedFd) -> bool {
    false
}

fn size_of(fd: &OwnedFd) -> Result<u64, SegmentError> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fd is open and `stat` has room for one `struct stat`.
    if unsafe { libc::fstat(fd.as_raw_fd(), stat.as_mut_ptr()) } != 0 {
        return Err(SegmentError::os("fstat", io::Error::last_os_error()));
    }
    // SAFETY: fstat succeeded, so it filled the structure.
    let stat = unsafe { stat.assume_init() };
    Ok(u64::try_from(stat.st_size).unwrap_or(0))
}

/// Reads `len` bytes from offset 0 with `pread`, which stops short at the end of a file
/// that shrank instead of faulting.
fn copy_out(fd: &OwnedFd, len: usize) -> Result<Vec<u8>, SegmentError> {
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len)
        .map_err(|_| SegmentError::TooLarge { len: len as u64 })?;
    while bytes.len() < len {
        let filled = bytes.len();
        let spare = bytes.spare_capacity_mut();
        // SAFETY: fd is open; the buffer is the vector's spare capacity, at least
        // `len - filled` bytes long; pread writes at most that many.
        let read = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                len - filled,
                filled as libc::off_t,
            )
        };
        if read < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(SegmentError::os("pread", error));
        }
        if read == 0 {
            return Err(SegmentError::Truncated {
                claimed: len as u64,
                actual: filled as u64,
            });
        }
        // SAFETY: pread initialised `read` more bytes right after the first `filled`.
        unsafe { bytes.set_len(filled + read as usize) };
    }
    Ok(bytes)
}

/// A shared mapping of the first `len` bytes of a descriptor; unmapped on drop. A zero
/// length maps nothing.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; the raw pointer is what stops
// the compiler from seeing that. Shared access is read-only (`View`) or needs `&mut`
// (`Writer`).
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` gives no way to write.
unsafe impl Sync for Mapping {}

/// Keeps the writable mapping out of child processes: a child forked by another thread
/// (any `Command::spawn`) between `mmap` and `seal` would inherit it until it execs, and a
/// writable shared mapping anywhere makes `F_SEAL_WRITE` fail with `EBUSY`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn keep_from_children(map: &Mapping) -> Result<(), SegmentError> {
    if map.len == 0 {
        return Ok(());
    }
    // SAFETY: ptr/len are exactly the mapping mmap returned; MADV_DONTFORK only changes
    // whether a fork copies it, never its contents.
    if unsafe { libc::madvise(map.ptr.as_ptr().cast(), map.len, libc::MADV_DONTFORK) } != 0 {
        return Err(SegmentError::os("madvise", io::Error::last_os_error()));
    }
    Ok(())
}

/// Elsewhere a fork in the window can still make sealing fail (a typed error, never a
/// wrong segment); FreeBSD's `minherit` could close that window.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn keep_from_children(_map: &Mapping) -> Result<(), SegmentError> {
    Ok(())
}

impl Mapping {
    fn new(
        fd: &OwnedFd,
        len: usize,
        protection: libc::c_int,
        flags: libc::c_int,
    ) -> Result<Self, SegmentError> {
        if len == 0 {
            return Ok(Mapping {
                ptr: NonNull::dangling(),
                len,
            });
        }
        // SAFETY: a new mapping chosen by the kernel, of an open descriptor; nothing of ours
        // is overwritten.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                protection,
                libc::MAP_SHARED | flags,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(SegmentError::os("mmap", io::Error::last_os_error()));
        }
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| SegmentError::os("mmap", io::Error::other("null mapping")))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: ptr/len are exactly what mmap returned, and no slice into the mapping
            // outlives `self` (slices borrow the owner).
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_segment_cannot_be_mapped_writable() {
        let mut writer = Writer::create(4096).expect("create");
        writer.as_mut_slice().fill(3);
        let fd = writer.seal().expect("seal");
        assert!(Mapping::new(&fd, 4096, libc::PROT_READ | libc::PROT_WRITE, 0).is_err());
        let view = View::map(&fd, 4096).expect("read-only view");
        assert!(view.as_slice().iter().all(|b| *b == 3));
    }
}
