//! The argument tuple of a method without parameters.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeTuple, Serializer};

/// The arguments of a method that takes none: an empty tuple.
///
/// Encodes as nothing in bincode and as `[]` in JSON (Rust's `()` would be `null` in JSON).
/// Decoding also accepts JSON `null`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NoArgs;

impl Serialize for NoArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_tuple(0)?.end()
    }
}

impl<'de> Deserialize<'de> for NoArgs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Self-describing formats (JSON) may hold `[]` or `null`; compact ones hold nothing.
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(NoArgsVisitor)
        } else {
            deserializer.deserialize_tuple(0, NoArgsVisitor)
        }
    }
}

struct NoArgsVisitor;

impl<'de> Visitor<'de> for NoArgsVisitor {
    type Value = NoArgs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an empty argument list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoArgs, A::Error> {
        match seq.next_element::<de::IgnoredAny>()? {
            None => Ok(NoArgs),
            Some(_) => Err(de::Error::invalid_length(1, &self)),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<NoArgs, E> {
        Ok(NoArgs)
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::{Bincode, Format, Json};

    #[test]
    fn encodings() {
        let mut out = BytesMut::new();
        Bincode::encode(&NoArgs, &mut out).unwrap();
        assert!(out.is_empty());
        Json::encode(&NoArgs, &mut out).unwrap();
        assert_eq!(&out[..], b"[]");
    }

    #[test]
    fn decodings() {
        assert_eq!(Bincode::decode::<NoArgs>(&[]).unwrap(), NoArgs);
        assert_eq!(Json::decode::<NoArgs>(b"[]").unwrap(), NoArgs);
        assert_eq!(Json::decode::<NoArgs>(b" null ").unwrap(), NoArgs);
        assert!(Json::decode::<NoArgs>(b"[1]").is_err());
        assert!(Json::decode::<NoArgs>(b"{}").is_err());
        assert!(Json::decode::<NoArgs>(b"0").is_err());
    }
}
