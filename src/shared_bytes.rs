//! [`SharedBytes`]: a large byte payload passed to the other process in shared memory.

mod limit;

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use ferry_transport::shm::{self, Received, Segment, SegmentError, SegmentWriter};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{self, SerializeTupleStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::Handle;

pub(crate) use limit::receiving;

/// The largest [`SharedBytes`] a client or server accepts unless told otherwise
/// ([`ClientOptions::max_shared_bytes`](crate::ClientOptions::max_shared_bytes),
/// [`ServerOptions::max_shared_bytes`](crate::ServerOptions::max_shared_bytes)): 1 GiB.
pub const DEFAULT_MAX_SHARED_BYTES: u64 = 1024 * 1024 * 1024;

/// The name the payload gives a shared segment: a tuple struct of its handle and length.
const SERDE_NAME: &str = "SharedBytes";

/// A byte payload that travels in shared memory: the receiving process maps the sender's
/// pages instead of reading the bytes through the connection.
///
/// Build one from bytes (one copy, into the segment) or write it in place with
/// [`SharedBytes::from_writer`] (no copy); pass it as an argument or result, also inside
/// a struct. Both sides read it as `&[u8]` ([`Deref`]) or as a [`Bytes`]
/// ([`SharedBytes::to_bytes`]) that shares the mapping: the mapping is undone when the
/// last of them drops.
///
/// **How it travels.** The sender writes the bytes into a new shared-memory segment (a
/// memfd on Linux and FreeBSD, an unlinked temporary file on other Unix, a section backed
/// by the paging file on Windows) and seals it, so that neither it nor anyone can change or
/// resize the bytes any more; on the wire a `SharedBytes` is a [`Handle`] to the segment
/// and its length. It therefore needs what a `Handle` needs: a connection of protocol
/// version 3 that can carry handles; elsewhere the call fails with
/// [`ErrorKind::Encode`](crate::ErrorKind::Encode), nothing sent. Its length is not bounded
/// by the frame limit, only by the receiver's
/// [`max_shared_bytes`](crate::ServerOptions::max_shared_bytes) (default 1 GiB).
///
/// **What the receiver checks.** A segment shorter than its claimed length, or longer than
/// the receiver's limit, fails the decode (the call is rejected, or the reply is a protocol
/// error), never a fault. A segment sealed against writing and shrinking is mapped
/// read-only; any other (a hostile or foreign sender, or macOS, which has no seals) is
/// copied into ordinary memory with `pread`, which cannot fault either. See
/// [`ferry_transport::shm`] for the details per platform.
///
/// **Memory.** A mapped payload is the sender's pages, shared; it is not counted by the
/// connection's memory budget (which bounds buffered frames), only by `max_shared_bytes`
/// per value. A copied one is heap memory of the receiver, bounded the same way.
///
/// ```no_run
/// # fn demo() -> Result<(), ferry::Error> {
/// let frame = ferry::SharedBytes::from_writer(64 << 20, |buf| buf.fill(7))?;
/// assert_eq!(frame.len(), 64 << 20);
/// // ...pass `frame` as an argument; the other side reads `&frame[..]`.
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SharedBytes {
    bytes: Bytes,
    /// The segment, kept to send it (again); shared by clones.
    segment: Option<Arc<Segment>>,
}

impl SharedBytes {
    /// A new segment of `len` bytes, zero-filled, that `write` fills in place.
    pub fn from_writer(len: usize, write: impl FnOnce(&mut [u8])) -> Result<Self, crate::Error> {
        let mut writer = SegmentWriter::create(len).map_err(segment_error)?;
        write(writer.as_mut_slice());
        let segment = writer.seal().map_err(segment_error)?;
        SharedBytes::from_segment(segment)
    }

    /// A new segment holding a copy of `data`.
    pub fn copy_from_slice(data: &[u8]) -> Result<Self, crate::Error> {
        SharedBytes::from_writer(data.len(), |buf| buf.copy_from_slice(data))
    }

    /// The bytes as a [`Bytes`] sharing the mapping (no copy).
    pub fn to_bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// The bytes as a [`Bytes`] sharing the mapping (no copy).
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether the bytes are a mapping of a shared segment. A received payload that had to
    /// be copied (see above) is not; sending it again writes it into a new segment.
    pub fn is_mapped(&self) -> bool {
        self.segment.is_some()
    }

    fn from_segment(segment: Segment) -> Result<Self, crate::Error> {
        let view = segment.map().map_err(segment_error)?;
        Ok(SharedBytes {
            bytes: Bytes::from_owner(view),
            segment: Some(Arc::new(segment)),
        })
    }

    /// The bytes of a received segment, checked against `limit`.
    fn receive(handle: Handle, len: u64, limit: u64) -> Result<Self, String> {
        if len > limit {
            return Err(format!(
                "shared payload of {len} bytes exceeds limit of {limit}"
            ));
        }
        match shm::receive(handle.into(), len).map_err(|err| err.to_string())? {
            Received::Mapped { view, segment } => Ok(SharedBytes {
                bytes: Bytes::from_owner(view),
                segment: Some(Arc::new(segment)),
            }),
            Received::Copied(bytes) => {
                tracing::debug!(len, "shared payload not sealed: copied");
                Ok(SharedBytes {
                    bytes: Bytes::from(bytes),
                    segment: None,
                })
            }
            _ => Err("shared payload in an unknown form".to_owned()),
        }
    }
}

fn segment_error(err: SegmentError) -> crate::Error {
    crate::Error::shared_memory(err)
}

impl Deref for SharedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl PartialEq for SharedBytes {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for SharedBytes {}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBytes")
            .field("len", &self.len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

impl TryFrom<&[u8]> for SharedBytes {
    type Error = crate::Error;

    fn try_from(data: &[u8]) -> Result<Self, crate::Error> {
        SharedBytes::copy_from_slice(data)
    }
}

impl TryFrom<Vec<u8>> for SharedBytes {
    type Error = crate::Error;

    fn try_from(data: Vec<u8>) -> Result<Self, crate::Error> {
        SharedBytes::copy_from_slice(&data)
    }
}

impl TryFrom<Bytes> for SharedBytes {
    type Error = crate::Error;

    fn try_from(data: Bytes) -> Result<Self, crate::Error> {
        SharedBytes::copy_from_slice(&data)
    }
}

impl Serialize for SharedBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let cannot = |err: &(dyn std::error::Error + 'static)| {
            ser::Error::custom(format!(
                "cannot send a shared payload: {}",
                crate::ErrorChain::new(err)
            ))
        };
        // A copied payload has no segment: it gets a new one for each send.
        let handle = match &self.segment {
            Some(segment) => segment.try_clone().map_err(|err| cannot(&err))?,
            None => {
                let mut writer = SegmentWriter::create(self.len()).map_err(|err| cannot(&err))?;
                writer.as_mut_slice().copy_from_slice(&self.bytes);
                writer.seal().map_err(|err| cannot(&err))?
            }
        };
        let mut tuple = serializer.serialize_tuple_struct(SERDE_NAME, 2)?;
        tuple.serialize_field(&Handle::from(handle.into_handle()))?;
        tuple.serialize_field(&(self.len() as u64))?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for SharedBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SegmentVisitor;
        impl<'de> Visitor<'de> for SegmentVisitor {
            type Value = SharedBytes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a shared segment's handle and length")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SharedBytes, A::Error> {
                let handle: Handle = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let len: u64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if crate::handle::is_tracing() {
                    // A schema trace: the handle is a placeholder, not a segment.
                    drop(handle);
                    return Ok(SharedBytes {
                        bytes: Bytes::new(),
                        segment: None,
                    });
                }
                SharedBytes::receive(handle, len, limit::current()).map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_tuple_struct(SERDE_NAME, 2, SegmentVisitor)
    }
}

#[cfg(test)]
mod tests;
