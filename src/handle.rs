//! [`Handle`]: an open file, socket or pipe passed to the other process as an argument or
//! a result.

mod frames;
mod scope;

use std::fmt;
use std::fs::File;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{self, Serializer};
use serde::{Deserialize, Serialize};

pub(crate) use frames::{HandleFrames, Incoming};
#[cfg(feature = "tower")]
pub(crate) use scope::resend;
pub(crate) use scope::{decoding, encoding, is_tracing, refusing, tracing};

#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
#[cfg(windows)]
use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle, OwnedHandle, RawHandle};

#[cfg(unix)]
type Owned = OwnedFd;
#[cfg(windows)]
type Owned = OwnedHandle;

/// The name the payload gives a handle: a newtype around its index in the frame.
const SERDE_NAME: &str = "Handle";

/// An owned operating-system handle (a file descriptor on Unix, a `HANDLE` on Windows)
/// that can be sent to the other process wherever a serde type can: as a call's argument,
/// as its result, or inside a struct or enum of either.
///
/// The receiving process gets its own handle to the same open file, socket or pipe (on
/// Unix a descriptor passed with `SCM_RIGHTS`, close-on-exec; on Windows a handle
/// duplicated into it with the same access rights). The sender keeps its handle: sending
/// encodes a duplicate, so a `Handle` passed by reference can be sent again, and it closes
/// when it is dropped as usual.
///
/// Handles travel only on connections of protocol version 3 or later, in the arguments
/// and results of calls (not in stream items), at most
/// [`MAX_HANDLES`](ferry_codec::MAX_HANDLES) per call or reply; elsewhere the call fails
/// with [`ErrorKind::Encode`](crate::ErrorKind::Encode) before anything is sent. Decoding a
/// `Handle` outside a ferry call fails. See `docs/protocol.md`, section 8.4.
///
/// ```no_run
/// # fn demo() -> std::io::Result<()> {
/// let log = std::fs::File::create("/tmp/app.log")?;
/// let handle = ferry::Handle::from(log);
/// // ...pass `handle` as an argument; the other side turns it back into a file:
/// let file = std::fs::File::from(handle);
/// # drop(file); Ok(()) }
/// ```
pub struct Handle {
    inner: Owned,
}

impl Handle {
    /// Another handle to the same open object (`dup` / `DuplicateHandle`).
    pub fn try_clone(&self) -> std::io::Result<Handle> {
        Ok(Handle {
            inner: self.inner.try_clone()?,
        })
    }

    /// A handle to the null device, standing for a real one while a service's schema is
    /// traced (the trace builds values and drops them).
    fn placeholder() -> std::io::Result<Handle> {
        let null = if cfg!(windows) { "NUL" } else { "/dev/null" };
        Ok(Handle::from(File::open(null)?))
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(unix)]
        let raw = self.inner.as_raw_fd() as i64;
        #[cfg(windows)]
        let raw = self.inner.as_raw_handle() as usize as i64;
        f.debug_tuple("Handle").field(&raw).finish()
    }
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let index = scope::add(self).map_err(ser::Error::custom)?;
        serializer.serialize_newtype_struct(SERDE_NAME, &index)
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Handle, D::Error> {
        struct IndexVisitor;
        impl<'de> Visitor<'de> for IndexVisitor {
            type Value = Handle;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the index of a handle")
            }

            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Handle, D::Error> {
                let index = u32::deserialize(deserializer)?;
                scope::take(index).map_err(de::Error::custom)
            }

            fn visit_u64<E: de::Error>(self, index: u64) -> Result<Handle, E> {
                // Self-describing formats (JSON) hand the newtype's content directly.
                let index = u32::try_from(index)
                    .map_err(|_| E::custom(format!("handle index {index} out of range")))?;
                scope::take(index).map_err(E::custom)
            }
        }
        deserializer.deserialize_newtype_struct(SERDE_NAME, IndexVisitor)
    }
}

macro_rules! convert {
    ($($ty:ty),* $(,)?) => {$(
        impl From<$ty> for Handle {
            fn from(value: $ty) -> Handle {
                Handle { inner: Owned::from(value) }
            }
        }

        impl From<Handle> for $ty {
            fn from(handle: Handle) -> $ty {
                <$ty>::from(handle.inner)
            }
        }
    )*};
}

convert!(File);

#[cfg(unix)]
convert!(
    std::net::TcpStream,
    std::net::TcpListener,
    std::net::UdpSocket,
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixListener,
    std::os::unix::net::UnixDatagram
);

impl From<Owned> for Handle {
    fn from(inner: Owned) -> Handle {
        Handle { inner }
    }
}

impl From<Handle> for Owned {
    fn from(handle: Handle) -> Owned {
        handle.inner
    }
}

impl From<Handle> for std::process::Stdio {
    /// The handle as a child process's standard input, output or error.
    fn from(handle: Handle) -> std::process::Stdio {
        std::process::Stdio::from(handle.inner)
    }
}

macro_rules! from_child_stdio {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Handle {
            /// The parent's end of a child process's pipe.
            fn from(pipe: $ty) -> Handle {
                Handle { inner: Owned::from(pipe) }
            }
        }
    )*};
}

from_child_stdio!(
    std::process::ChildStdin,
    std::process::ChildStdout,
    std::process::ChildStderr
);

#[cfg(unix)]
impl AsFd for Handle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

#[cfg(unix)]
impl AsRawFd for Handle {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

#[cfg(windows)]
impl AsHandle for Handle {
    fn as_handle(&self) -> BorrowedHandle<'_> {
        self.inner.as_handle()
    }
}

#[cfg(windows)]
impl AsRawHandle for Handle {
    fn as_raw_handle(&self) -> RawHandle {
        self.inner.as_raw_handle()
    }
}
