//! The JSON payload format.

use bytes::{BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Format, FormatId};
use crate::CodecError;

const NAME: &str = "json";

/// JSON text in UTF-8, as written by `serde_json` (compact, no trailing newline).
///
/// A tuple is an array; arguments of a call are always an array (`[]` for none, see
/// [`NoArgs`](crate::NoArgs)).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Format for Json {
    const ID: FormatId = FormatId::Json;

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut BytesMut) -> Result<(), CodecError> {
        let start = out.len();
        serde_json::to_writer((&mut *out).writer(), value).map_err(|e| {
            out.truncate(start);
            CodecError::Encode {
                format: NAME,
                source: Box::new(e),
            }
        })
    }

    /// The whole slice must be one JSON value (surrounding whitespace allowed).
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::Decode {
            format: NAME,
            source: Box::new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_output() {
        let mut out = BytesMut::new();
        Json::encode(&(1, "a b", [true]), &mut out).unwrap();
        assert_eq!(&out[..], br#"[1,"a b",[true]]"#);
    }

    #[test]
    fn failed_encode_leaves_buffer_unchanged() {
        let mut map = std::collections::BTreeMap::new();
        map.insert((1, 2), 3); // non-string keys cannot be JSON object keys
        let mut out = BytesMut::from(&b"keep"[..]);
        let err = Json::encode(&map, &mut out).unwrap_err();
        assert!(matches!(err, CodecError::Encode { format: "json", .. }));
        assert_eq!(&out[..], b"keep");
    }

    #[test]
    fn invalid_utf8_is_a_decode_error() {
        let err = Json::decode::<String>(b"\"\xff\"").unwrap_err();
        assert!(matches!(err, CodecError::Decode { format: "json", .. }));
    }
}
