//! Per-call metadata (protocol version 3): a small map of keys to text or binary values
//! that travels in a block at the start of a REQUEST body (after the deadline), or of a
//! RESPONSE or ERROR body, when the frame has the [`METADATA`](crate::flags::METADATA) flag.
//!
//! Block layout (all integers little-endian):
//!
//! | size | field |
//! |---|---|
//! | 4 | `u32` block length `B`: the bytes that follow in the block |
//! | 2 | `u16` number of entries `C` |
//! | then, `C` times: | |
//! | 1 | `u8` key length `K`, `1..=255` |
//! | K | key: ASCII `a-z`, `0-9`, `-`, `_`, `.`; the keys of one block are distinct |
//! | 1 | `u8` value type: `0` UTF-8 text, `1` binary |
//! | 4 | `u32` value length `V` |
//! | V | value |
//!
//! A receiver checks `4 + B` against its size limit before it reads an entry, so a block
//! never costs more memory than the limit.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// Default most entries in one block: 32.
pub const DEFAULT_MAX_METADATA_ENTRIES: usize = 32;
/// Default longest key: 64 bytes.
pub const DEFAULT_MAX_METADATA_KEY: usize = 64;
/// Default largest block, its 4-byte length included: 8 KiB.
pub const DEFAULT_MAX_METADATA_SIZE: usize = 8 * 1024;
/// The longest key the wire can carry (its length is a `u8`).
pub const MAX_METADATA_KEY: usize = 255;

const TEXT: u8 = 0;
const BINARY: u8 = 1;

/// One metadata value: UTF-8 text or bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataValue {
    /// UTF-8 text (value type `0`).
    Text(String),
    /// Any bytes (value type `1`).
    Binary(Bytes),
}

impl MetadataValue {
    /// The text, for a text value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetadataValue::Text(text) => Some(text),
            MetadataValue::Binary(_) => None,
        }
    }

    /// The bytes of the value (of the text, for a text value).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            MetadataValue::Text(text) => text.as_bytes(),
            MetadataValue::Binary(bytes) => bytes,
        }
    }
}

impl From<&str> for MetadataValue {
    fn from(text: &str) -> Self {
        MetadataValue::Text(text.to_owned())
    }
}

impl From<String> for MetadataValue {
    fn from(text: String) -> Self {
        MetadataValue::Text(text)
    }
}

impl From<Bytes> for MetadataValue {
    fn from(bytes: Bytes) -> Self {
        MetadataValue::Binary(bytes)
    }
}

impl From<Vec<u8>> for MetadataValue {
    fn from(bytes: Vec<u8>) -> Self {
        MetadataValue::Binary(Bytes::from(bytes))
    }
}

impl From<&[u8]> for MetadataValue {
    fn from(bytes: &[u8]) -> Self {
        MetadataValue::Binary(Bytes::copy_from_slice(bytes))
    }
}

/// A small map of per-call metadata: lowercase ASCII keys to text or binary values, in the
/// order they were first inserted.
///
/// ```
/// use ferry_codec::Metadata;
///
/// let mut md = Metadata::new();
/// md.insert("locale", "fr-CH").unwrap();
/// md.insert("token-bin", vec![1u8, 2, 3]).unwrap();
/// assert_eq!(md.get_str("locale"), Some("fr-CH"));
/// assert!(md.insert("Locale", "x").is_err()); // keys are lowercase
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, MetadataValue)>,
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(key, value)| (key, value)))
            .finish()
    }
}

impl Metadata {
    /// An empty map.
    pub const fn new() -> Self {
        Metadata {
            entries: Vec::new(),
        }
    }

    /// Sets `key` to `value`; returns the value it replaces.
    ///
    /// # Errors
    ///
    /// [`MetadataError::InvalidKey`] when `key` is empty, longer than 255 bytes, or has a
    /// character other than ASCII `a-z`, `0-9`, `-`, `_` and `.`. (Limits on the count and
    /// the size are checked when the metadata is sent.)
    pub fn insert(
        &mut self,
        key: &str,
        value: impl Into<MetadataValue>,
    ) -> Result<Option<MetadataValue>, MetadataError> {
        check_key(key.as_bytes())?;
        let value = value.into();
        if let Some((_, old)) = self.entries.iter_mut().find(|(k, _)| k == key) {
            return Ok(Some(std::mem::replace(old, value)));
        }
        self.entries.push((key.to_owned(), value));
        Ok(None)
    }

    /// This map with `key` set to `value` (see [`Metadata::insert`]).
    ///
    /// # Errors
    ///
    /// As [`Metadata::insert`].
    pub fn with(
        mut self,
        key: &str,
        value: impl Into<MetadataValue>,
    ) -> Result<Self, MetadataError> {
        self.insert(key, value)?;
        Ok(self)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `key` when it is text.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(MetadataValue::as_str)
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<MetadataValue> {
        let position = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(position).1)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetadataValue)> {
        self.entries
            .iter()
            .map(|(key, value)| (key.as_str(), value))
    }

    /// Size of the encoded block in bytes, its 4-byte length included.
    pub fn encoded_len(&self) -> usize {
        4 + 2
            + self
                .entries
                .iter()
                .map(|(key, value)| 1 + key.len() + 1 + 4 + value.as_bytes().len())
                .sum::<usize>()
    }

    /// Checks the map against `limits`: what a sender does before it sends.
    ///
    /// # Errors
    ///
    /// [`MetadataError::TooManyEntries`], [`MetadataError::KeyTooLong`] or
    /// [`MetadataError::TooLarge`].
    pub fn check(&self, limits: &MetadataLimits) -> Result<(), MetadataError> {
        if self.entries.len() > limits.max_entries {
            return Err(MetadataError::TooManyEntries {
                count: self.entries.len(),
                limit: limits.max_entries,
            });
        }
        if let Some((key, _)) = self.entries.iter().find(|(k, _)| k.len() > limits.max_key) {
            return Err(MetadataError::KeyTooLong {
                len: key.len(),
                limit: limits.max_key,
            });
        }
        let size = self.encoded_len();
        if size > limits.max_size {
            return Err(MetadataError::TooLarge {
                size: size as u64,
                limit: limits.max_size,
            });
        }
        Ok(())
    }

    /// Appends the block to `out`. Check the map with [`Metadata::check`] first: a map
    /// whose block does not fit the wire's `u32` and `u16` fields cannot pass any limit.
    pub fn encode(&self, out: &mut BytesMut) {
        let len = self.encoded_len();
        out.reserve(len);
        out.put_u32_le(u32::try_from(len - 4).unwrap_or(u32::MAX));
        out.put_u16_le(u16::try_from(self.entries.len()).unwrap_or(u16::MAX));
        for (key, value) in &self.entries {
            // Keys are at most 255 bytes (checked on insert).
            out.put_u8(key.len() as u8);
            out.put_slice(key.as_bytes());
            let (kind, bytes) = match value {
                MetadataValue::Text(text) => (TEXT, text.as_bytes()),
                MetadataValue::Binary(bytes) => (BINARY, &bytes[..]),
            };
            out.put_u8(kind);
            out.put_u32_le(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
            out.put_slice(bytes);
        }
    }

    /// Reads the block at the start of `body` and returns it with the rest of the body
    /// (which shares memory with `body`).
    ///
    /// # Errors
    ///
    /// [`MetadataError::TooLarge`] when the announced block exceeds `limits` (checked
    /// before anything is read), [`MetadataError::TooManyEntries`] and
    /// [`MetadataError::KeyTooLong`] for those limits, [`MetadataError::Malformed`] when
    /// the bytes are no valid block.
    pub fn split(
        body: &Bytes,
        limits: &MetadataLimits,
    ) -> Result<(Metadata, Bytes), MetadataError> {
        let Some(prefix) = body.first_chunk::<4>() else {
            return Err(malformed(format!(
                "body of {} bytes has no room for the 4-byte block length",
                body.len()
            )));
        };
        let len = u64::from(u32::from_le_bytes(*prefix));
        let size = 4 + len;
        if size > limits.max_size as u64 {
            return Err(MetadataError::TooLarge {
                size,
                limit: limits.max_size,
            });
        }
        // `size <= max_size`, a `usize`.
        let size = size as usize;
        if size > body.len() {
            return Err(malformed(format!(
                "block of {size} bytes is longer than the body of {} bytes",
                body.len()
            )));
        }
        let metadata = decode_entries(&body[4..size], limits)?;
        Ok((metadata, body.slice(size..)))
    }
}

fn decode_entries(mut block: &[u8], limits: &MetadataLimits) -> Result<Metadata, MetadataError> {
    let count = usize::from(u16::from_le_bytes(*take::<2>(&mut block, "entry count")?));
    if count > limits.max_entries {
        return Err(MetadataError::TooManyEntries {
            count,
            limit: limits.max_entries,
        });
    }
    let mut metadata = Metadata {
        entries: Vec::with_capacity(count),
    };
    for _ in 0..count {
        let [key_len] = *take::<1>(&mut block, "key length")?;
        let key_len = usize::from(key_len);
        if key_len > limits.max_key {
            return Err(MetadataError::KeyTooLong {
                len: key_len,
                limit: limits.max_key,
            });
        }
        let key = take_slice(&mut block, key_len, "key")?;
        check_key(key)?;
        // Checked: ASCII only.
        let key = String::from_utf8_lossy(key).into_owned();
        if metadata.get(&key).is_some() {
            return Err(malformed(format!("key `{key}` appears twice")));
        }
        let [kind] = *take::<1>(&mut block, "value type")?;
        let value_len = u32::from_le_bytes(*take::<4>(&mut block, "value length")?) as usize;
        let value = take_slice(&mut block, value_len, "value")?;
        let value = match kind {
            TEXT => match std::str::from_utf8(value) {
                Ok(text) => MetadataValue::Text(text.to_owned()),
                Err(_) => {
                    return Err(malformed(format!(
                        "text value of `{key}` is not valid UTF-8"
                    )))
                }
            },
            BINARY => MetadataValue::Binary(Bytes::copy_from_slice(value)),
            other => {
                return Err(malformed(format!(
                    "value type {other} of `{key}` is unknown"
                )))
            }
        };
        metadata.entries.push((key, value));
    }
    if !block.is_empty() {
        return Err(malformed(format!(
            "{} bytes after the last entry",
            block.len()
        )));
    }
    Ok(metadata)
}

fn take<'a, const N: usize>(
    block: &mut &'a [u8],
    what: &str,
) -> Result<&'a [u8; N], MetadataError> {
    let Some((head, rest)) = block.split_first_chunk::<N>() else {
        return Err(malformed(format!("block ends inside a {what}")));
    };
    *block = rest;
    Ok(head)
}

fn take_slice<'a>(block: &mut &'a [u8], len: usize, what: &str) -> Result<&'a [u8], MetadataError> {
    if len > block.len() {
        return Err(malformed(format!("block ends inside a {what}")));
    }
    let (head, rest) = block.split_at(len);
    *block = rest;
    Ok(head)
}

fn malformed(reason: String) -> MetadataError {
    MetadataError::Malformed(reason)
}

fn check_key(key: &[u8]) -> Result<(), MetadataError> {
    let shown = || String::from_utf8_lossy(key).into_owned();
    if key.is_empty() {
        return Err(MetadataError::InvalidKey {
            key: String::new(),
            reason: "it is empty",
        });
    }
    if key.len() > MAX_METADATA_KEY {
        return Err(MetadataError::InvalidKey {
            key: shown(),
            reason: "it is longer than 255 bytes",
        });
    }
    let allowed = |b: &u8| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.');
    if !key.iter().all(allowed) {
        return Err(MetadataError::InvalidKey {
            key: shown(),
            reason: "keys are ASCII a-z, 0-9, '-', '_' and '.'",
        });
    }
    Ok(())
}

/// Bounds on the metadata of one call, checked by a sender before it sends and by a
/// receiver before it reads. The defaults: 32 entries, keys of 64 bytes, blocks of 8 KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataLimits {
    max_entries: usize,
    max_key: usize,
    max_size: usize,
}

impl Default for MetadataLimits {
    fn default() -> Self {
        MetadataLimits {
            max_entries: DEFAULT_MAX_METADATA_ENTRIES,
            max_key: DEFAULT_MAX_METADATA_KEY,
            max_size: DEFAULT_MAX_METADATA_SIZE,
        }
    }
}

impl MetadataLimits {
    /// The default limits.
    pub fn new() -> Self {
        MetadataLimits::default()
    }

    /// Most entries in one block (default 32, at most 65535).
    #[must_use]
    pub fn max_entries(mut self, max: usize) -> Self {
        self.max_entries = max.min(usize::from(u16::MAX));
        self
    }

    /// Longest key in bytes (default 64, at most 255).
    #[must_use]
    pub fn max_key(mut self, max: usize) -> Self {
        self.max_key = max.min(MAX_METADATA_KEY);
        self
    }

    /// Largest block in bytes, its 4-byte length included (default 8 KiB).
    #[must_use]
    pub fn max_size(mut self, max: usize) -> Self {
        self.max_size = max;
        self
    }

    /// The limit on the number of entries.
    pub fn entries_limit(&self) -> usize {
        self.max_entries
    }

    /// The limit on the length of a key.
    pub fn key_limit(&self) -> usize {
        self.max_key
    }

    /// The limit on the size of a block.
    pub fn size_limit(&self) -> usize {
        self.max_size
    }
}

/// Metadata that cannot be set, sent or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A key that is empty, too long for the wire, or has a character not allowed.
    #[error("metadata key {key:?} is invalid: {reason}")]
    InvalidKey {
        /// The key (invalid bytes replaced).
        key: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// More entries than the limit.
    #[error("metadata of {count} entries exceeds limit of {limit}")]
    TooManyEntries {
        /// Entries in the block.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A key longer than the limit.
    #[error("metadata key of {len} bytes exceeds limit of {limit}")]
    KeyTooLong {
        /// Length of the key.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A block larger than the limit.
    #[error("metadata of {size} bytes exceeds limit of {limit}")]
    TooLarge {
        /// Size of the block, its length field included.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// Bytes that are no valid block.
    #[error("malformed metadata: {0}")]
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metadata {
        Metadata::new()
            .with("locale", "fr")
            .unwrap()
            .with("bin", vec![0xffu8, 0])
            .unwrap()
    }

    #[test]
    fn round_trip_and_layout() {
        let md = sample();
        let mut out = BytesMut::new();
        md.encode(&mut out);
        assert_eq!(out.len(), md.encoded_len());
        out.extend_from_slice(b"rest");
        let (back, rest) = Metadata::split(&out.freeze(), &MetadataLimits::default()).unwrap();
        assert_eq!(back, md);
        assert_eq!(&rest[..], b"rest");
    }

    #[test]
    fn keys_are_checked() {
        let mut md = Metadata::new();
        assert!(md.insert("", "x").is_err());
        assert!(md.insert("Upper", "x").is_err());
        assert!(md.insert("sp ace", "x").is_err());
        assert!(md.insert(&"k".repeat(256), "x").is_err());
        assert_eq!(md.insert("a.b_c-9", "x").unwrap(), None);
        assert_eq!(
            md.insert("a.b_c-9", "y").unwrap(),
            Some(MetadataValue::from("x"))
        );
        assert_eq!(md.len(), 1);
        assert_eq!(md.remove("a.b_c-9"), Some(MetadataValue::from("y")));
        assert!(md.is_empty());
    }

    #[test]
    fn limits_on_send_and_receive() {
        let md = sample();
        let small = MetadataLimits::new().max_entries(1);
        assert_eq!(
            md.check(&small).unwrap_err().to_string(),
            "metadata of 2 entries exceeds limit of 1"
        );
        let mut out = BytesMut::new();
        md.encode(&mut out);
        let body = out.freeze();
        assert!(matches!(
            Metadata::split(&body, &small),
            Err(MetadataError::TooManyEntries { count: 2, limit: 1 })
        ));
        let tiny = MetadataLimits::new().max_size(10);
        assert!(matches!(
            Metadata::split(&body, &tiny),
            Err(MetadataError::TooLarge { limit: 10, .. })
        ));
        let short_keys = MetadataLimits::new().max_key(3);
        assert!(matches!(
            md.check(&short_keys),
            Err(MetadataError::KeyTooLong { len: 6, limit: 3 })
        ));
        assert!(matches!(
            Metadata::split(&body, &short_keys),
            Err(MetadataError::KeyTooLong { len: 6, limit: 3 })
        ));
    }

    #[test]
    fn malformed_blocks() {
        let limits = MetadataLimits::default();
        let cases: &[&[u8]] = &[
            &[1, 0],                                            // no room for the length
            &[9, 0, 0, 0, 1, 0],                                // block longer than the body
            &[2, 0, 0, 0, 1, 0],                                // ends inside an entry
            &[3, 0, 0, 0, 0, 0, 7],                             // bytes after the last entry
            &[9, 0, 0, 0, 1, 0, 1, b'A', 0, 0, 0, 0, 0],        // bad key
            &[9, 0, 0, 0, 1, 0, 1, b'a', 2, 0, 0, 0, 0],        // unknown type
            &[10, 0, 0, 0, 1, 0, 1, b'a', 0, 1, 0, 0, 0, 0xff], // text not UTF-8
            &[
                16, 0, 0, 0, 2, 0, 1, b'a', 1, 0, 0, 0, 0, 1, b'a', 1, 0, 0, 0, 0,
            ], // twice
        ];
        for case in cases {
            let body = Bytes::copy_from_slice(case);
            let err = Metadata::split(&body, &limits).unwrap_err();
            assert!(
                matches!(
                    err,
                    MetadataError::Malformed(_) | MetadataError::InvalidKey { .. }
                ),
                "{case:?}: {err}"
            );
        }
    }
}
