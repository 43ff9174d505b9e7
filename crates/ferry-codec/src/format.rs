//! Payload formats: how arguments and return values become frame bodies.

use bytes::BytesMut;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::CodecError;

mod bincode;
mod bulk;
mod json;
mod no_args;

pub use self::bincode::Bincode;
pub use self::bulk::{frame_bytes, Bulk, BulkRef, BulkValue, SLICE_MIN};
pub use self::json::Json;
pub use self::no_args::NoArgs;

/// A payload format, chosen by the client in its [`Hello`](crate::Hello).
///
/// Implementations append to the output buffer directly (no temporary buffer) and leave
/// it unchanged when encoding fails.
pub trait Format {
    /// The number that names this format on the wire.
    const ID: FormatId;

    /// Appends `value` to `out`.
    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut BytesMut) -> Result<(), CodecError>;

    /// Reads a `T` from the start of `bytes`.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError>;
}

/// The payload format byte of the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FormatId {
    /// bincode 2 with its standard configuration: varint integers, little-endian.
    #[default]
    Bincode = 0,
    /// JSON text, UTF-8.
    Json = 1,
}

impl FormatId {
    /// The format with wire number `v`, if it is one this crate knows.
    pub fn from_u8(v: u8) -> Option<FormatId> {
        match v {
            0 => Some(FormatId::Bincode),
            1 => Some(FormatId::Json),
            _ => None,
        }
    }

    /// The wire number of this format.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// A short lowercase name: `"bincode"` or `"json"`.
    pub fn name(self) -> &'static str {
        match self {
            FormatId::Bincode => "bincode",
            FormatId::Json => "json",
        }
    }

    /// Appends `value` encoded in this format to `out`; `out` is unchanged on error.
    pub fn encode<T: Serialize + ?Sized>(
        self,
        value: &T,
        out: &mut BytesMut,
    ) -> Result<(), CodecError> {
        match self {
            FormatId::Bincode => Bincode::encode(value, out),
            FormatId::Json => Json::encode(value, out),
        }
    }

    /// Decodes a `T` encoded in this format.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        match self {
            FormatId::Bincode => Bincode::decode(bytes),
            FormatId::Json => Json::decode(bytes),
        }
    }
}

impl std::fmt::Display for FormatId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(FormatId::from_u8(0), Some(FormatId::Bincode));
        assert_eq!(FormatId::from_u8(1), Some(FormatId::Json));
        assert_eq!(FormatId::from_u8(2), None);
        assert_eq!(FormatId::Json.as_u8(), 1);
        assert_eq!(FormatId::default(), FormatId::Bincode);
        assert_eq!(FormatId::Bincode.name(), "bincode");
        assert_eq!(Bincode::ID, FormatId::Bincode);
        assert_eq!(Json::ID, FormatId::Json);
    }

    #[test]
    fn tuple_args_in_both_formats() {
        let mut out = BytesMut::new();
        FormatId::Bincode.encode(&(1i64, 2i64), &mut out).unwrap();
        assert_eq!(&out[..], &[0x02, 0x04]);
        let mut out = BytesMut::new();
        FormatId::Json.encode(&(1i64, 2i64), &mut out).unwrap();
        assert_eq!(&out[..], b"[1,2]");
        assert_eq!(
            FormatId::Json.decode::<(i64, i64)>(b"[1,2]").unwrap(),
            (1, 2)
        );
        assert_eq!(
            FormatId::Bincode.decode::<(i64, i64)>(&[2, 4]).unwrap(),
            (1, 2)
        );
    }

    #[test]
    fn encode_appends() {
        let mut out = BytesMut::from(&b"head"[..]);
        FormatId::Json.encode("x", &mut out).unwrap();
        FormatId::Bincode.encode(&7u8, &mut out).unwrap();
        assert_eq!(&out[..], b"head\"x\"\x07");
    }

    #[test]
    fn decode_errors_are_typed() {
        let err = FormatId::Json.decode::<u32>(b"\"no\"").unwrap_err();
        assert!(matches!(err, CodecError::Decode { format: "json", .. }));
        let err = FormatId::Bincode.decode::<String>(&[5, b'a']).unwrap_err();
        assert!(matches!(
            err,
            CodecError::Decode {
                format: "bincode",
                ..
            }
        ));
        assert_eq!(err.status(), crate::StatusCode::BAD_ARGUMENTS);
    }
}
