//! The method table a version 2 [`Welcome`](crate::Welcome) carries: the name and schema
//! hash of each method of the accepted service, in the server's method order.

use std::collections::HashSet;

use bytes::BufMut;

use super::{text, u16_at, u64_at};
use crate::CodecError;

/// Largest encoded method table, in bytes (its count and entries, not its length field).
pub const MAX_METHOD_TABLE: usize = 65_536;

/// Longest method name a table entry can carry, in bytes.
pub const MAX_METHOD_NAME: usize = 255;

/// One method as the server serves it: its name and its schema hash (section 10.3 of
/// `docs/protocol.md`). Its index in the table is the index a REQUEST for it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodEntry {
    /// The method's name, 1 to 255 bytes of UTF-8.
    pub name: String,
    /// FNV-1a 64 of the method's canonical schema text.
    pub hash: u64,
}

/// The methods of a service in the server's order, checked: at most 65535 of them, names
/// 1 to 255 bytes long and distinct, and at most [`MAX_METHOD_TABLE`] bytes encoded.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MethodTable {
    entries: Vec<MethodEntry>,
}

impl MethodTable {
    /// A table of `entries`, in the order the server indexes them.
    ///
    /// Fails with [`CodecError::BadHandshake`] when a name is empty, longer than 255 bytes
    /// or repeated, or when the table would exceed [`MAX_METHOD_TABLE`] bytes.
    pub fn new(entries: Vec<MethodEntry>) -> Result<MethodTable, CodecError> {
        let mut size = 2usize;
        let mut seen = HashSet::with_capacity(entries.len());
        for entry in &entries {
            let len = entry.name.len();
            if len == 0 || len > MAX_METHOD_NAME {
                return Err(CodecError::BadHandshake(format!(
                    "method name of {len} bytes; it must be 1 to {MAX_METHOD_NAME}"
                )));
            }
            if !seen.insert(entry.name.as_str()) {
                return Err(CodecError::BadHandshake(format!(
                    "method `{}` appears twice in the method table",
                    entry.name
                )));
            }
            size += 1 + len + 8;
        }
        if size > MAX_METHOD_TABLE {
            return Err(CodecError::BadHandshake(format!(
                "method table of {size} bytes exceeds {MAX_METHOD_TABLE}"
            )));
        }
        Ok(MethodTable { entries })
    }

    /// The entries, by the server's method index.
    pub fn entries(&self) -> &[MethodEntry] {
        &self.entries
    }

    /// The server's index and the entry of method `name`.
    pub fn find(&self, name: &str) -> Option<(u16, &MethodEntry)> {
        let index = self.entries.iter().position(|e| e.name == name)?;
        // `new` and `decode` keep at most 65535 entries.
        Some((u16::try_from(index).ok()?, &self.entries[index]))
    }

    /// The encoded size: count and entries.
    pub(super) fn encoded_len(&self) -> usize {
        2 + self
            .entries
            .iter()
            .map(|e| 1 + e.name.len() + 8)
            .sum::<usize>()
    }

    /// Appends count and entries (the checks of [`new`](Self::new) make every cast exact).
    pub(super) fn encode(&self, out: &mut impl BufMut) {
        out.put_u16_le(self.entries.len() as u16);
        for entry in &self.entries {
            out.put_u8(entry.name.len() as u8);
            out.put_slice(entry.name.as_bytes());
            out.put_u64_le(entry.hash);
        }
    }

    /// Reads a table from exactly `bytes` (count and entries, nothing after them).
    pub(super) fn decode(bytes: &[u8]) -> Result<MethodTable, CodecError> {
        let malformed = |what: String| CodecError::BadHandshake(format!("method table: {what}"));
        if bytes.len() < 2 {
            return Err(malformed(format!(
                "{} bytes, too short for its count",
                bytes.len()
            )));
        }
        let count = usize::from(u16_at(bytes, 0));
        // Each entry takes at least 10 bytes: check the count before reserving for it.
        if count > (bytes.len() - 2) / 10 {
            return Err(malformed(format!(
                "{count} methods cannot fit in {} bytes",
                bytes.len()
            )));
        }
        let mut entries = Vec::with_capacity(count);
        let mut at = 2;
        for index in 0..count {
            let Some(&len) = bytes.get(at) else {
                return Err(malformed(format!("entry {index} is cut short")));
            };
            let len = usize::from(len);
            if len == 0 {
                return Err(malformed(format!("entry {index} has an empty name")));
            }
            let end = at + 1 + len + 8;
            if bytes.len() < end {
                return Err(malformed(format!("entry {index} is cut short")));
            }
            let name = text(&bytes[at + 1..at + 1 + len], "method name")?;
            let hash = u64_at(bytes, at + 1 + len);
            entries.push(MethodEntry { name, hash });
            at = end;
        }
        if at != bytes.len() {
            return Err(malformed(format!(
                "{} bytes after its {count} entries",
                bytes.len() - at
            )));
        }
        MethodTable::new(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, hash: u64) -> MethodEntry {
        MethodEntry {
            name: name.to_owned(),
            hash,
        }
    }

    #[test]
    fn round_trip_and_lookup() {
        let table = MethodTable::new(vec![entry("add", 1), entry("div", u64::MAX)]).unwrap();
        let mut out = Vec::new();
        table.encode(&mut out);
        assert_eq!(out.len(), table.encoded_len());
        assert_eq!(MethodTable::decode(&out).unwrap(), table);
        assert_eq!(table.find("div").unwrap().0, 1);
        assert!(table.find("mul").is_none());
    }

    #[test]
    fn bad_tables_are_refused() {
        assert!(MethodTable::new(vec![entry("", 0)]).is_err());
        assert!(MethodTable::new(vec![entry(&"m".repeat(256), 0)]).is_err());
        assert!(MethodTable::new(vec![entry("a", 0), entry("a", 1)]).is_err());
        let many: Vec<_> = (0..6000)
            .map(|i| entry(&format!("method{i:05}"), 0))
            .collect();
        assert!(MethodTable::new(many).is_err(), "over 64 KiB");

        let mut out = Vec::new();
        MethodTable::new(vec![entry("a", 7)])
            .unwrap()
            .encode(&mut out);
        assert!(
            MethodTable::decode(&out[..out.len() - 1]).is_err(),
            "cut short"
        );
        let mut longer = out.clone();
        longer.push(0);
        assert!(MethodTable::decode(&longer).is_err(), "trailing byte");
        assert!(
            MethodTable::decode(&[0xff, 0xff, 0, 0]).is_err(),
            "count too big"
        );
        let mut empty_name = out.clone();
        empty_name[2] = 0;
        assert!(MethodTable::decode(&empty_name).is_err());
        let mut twice = Vec::new();
        twice.extend_from_slice(&[2, 0]);
        twice.extend_from_slice(&out[2..]);
        twice.extend_from_slice(&out[2..]);
        assert!(MethodTable::decode(&twice).is_err(), "duplicate name");
    }
}
