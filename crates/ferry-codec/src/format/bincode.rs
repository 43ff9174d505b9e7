//! The bincode 2 payload format (standard configuration).

use bytes::{BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Format, FormatId};
use crate::CodecError;

const NAME: &str = "bincode";

/// bincode 2 with its standard configuration: little-endian, variable-length integers.
///
/// A tuple is its fields one after another; the unit tuple is empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

impl Format for Bincode {
    const ID: FormatId = FormatId::Bincode;

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut BytesMut) -> Result<(), CodecError> {
        let start = out.len();
        let config = ::bincode::config::standard();
        ::bincode::serde::encode_into_writer(value, BytesMutWriter(out), config).map_err(|e| {
            out.truncate(start);
            CodecError::Encode {
                format: NAME,
                source: Box::new(e),
            }
        })
    }

    /// Trailing bytes after the value are ignored.
    ///
    /// bincode sizes a string or byte buffer from its length prefix before reading it, so
    /// the decoder is given a limit on the bytes it may claim, chosen from a few fixed steps
    /// at or above twice `bytes.len()` (bincode counts a buffer's bytes once when it sizes
    /// the buffer and once when it reads them, and each length prefix at its full width):
    /// a valid payload always fits, and a lying length prefix fails instead of allocating
    /// far beyond the payload.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        const KIB: usize = 1024;
        const MIB: usize = 1024 * KIB;
        let config = ::bincode::config::standard();
        let need = bytes.len().saturating_mul(2).saturating_add(4 * KIB);
        let decoded = if need <= 128 * KIB {
            ::bincode::serde::borrow_decode_from_slice(bytes, config.with_limit::<{ 128 * KIB }>())
        } else if need <= 4 * MIB {
            ::bincode::serde::borrow_decode_from_slice(bytes, config.with_limit::<{ 4 * MIB }>())
        } else if need <= 64 * MIB {
            ::bincode::serde::borrow_decode_from_slice(bytes, config.with_limit::<{ 64 * MIB }>())
        } else if need <= 1024 * MIB {
            ::bincode::serde::borrow_decode_from_slice(bytes, config.with_limit::<{ 1024 * MIB }>())
        } else {
            ::bincode::serde::borrow_decode_from_slice(
                bytes,
                config.with_limit::<{ u32::MAX as usize }>(),
            )
        };
        decoded
            .map(|(value, _read)| value)
            .map_err(|e| CodecError::Decode {
                format: NAME,
                source: Box::new(e),
            })
    }
}

/// Lets bincode write straight into a `BytesMut`.
struct BytesMutWriter<'a>(&'a mut BytesMut);

impl ::bincode::enc::write::Writer for BytesMutWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), ::bincode::error::EncodeError> {
        // A large byte string offered for splicing is left out (see `crate::splice`).
        if crate::splice::take(self.0, bytes) {
            return Ok(());
        }
        self.0.put_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte payloads at and around each limit step decode (bincode counts their bytes twice).
    #[test]
    fn byte_payloads_of_every_size_class_round_trip() {
        for len in [
            0usize,
            65_536,
            65_536 + 7,
            2 * 1024 * 1024,
            12 * 1024 * 1024,
            16 * 1024 * 1024 - 16,
        ] {
            let payload = bytes::Bytes::from(vec![0xA5u8; len]);
            let mut out = BytesMut::new();
            Bincode::encode(&(&payload,), &mut out).unwrap();
            let (back,): (bytes::Bytes,) = Bincode::decode(&out).unwrap();
            assert_eq!(back.len(), len);
            assert_eq!(back, payload);
        }
    }

    #[test]
    fn standard_config_varints() {
        let mut out = BytesMut::new();
        Bincode::encode(&(3i64, 250u64, 251u64, "hi"), &mut out).unwrap();
        // zigzag 3 -> 6; 250 fits one byte; 251 -> 0xFB + u16 LE; string: varint length + bytes
        assert_eq!(&out[..], &[0x06, 250, 0xFB, 251, 0, 2, b'h', b'i']);
        assert_eq!(
            Bincode::decode::<(i64, u64, u64, String)>(&out).unwrap(),
            (3, 250, 251, "hi".to_owned())
        );
    }

    #[test]
    fn unit_is_empty() {
        let mut out = BytesMut::new();
        Bincode::encode(&(), &mut out).unwrap();
        assert!(out.is_empty());
        Bincode::decode::<()>(&[]).unwrap();
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        assert_eq!(Bincode::decode::<u8>(&[7, 8, 9]).unwrap(), 7);
    }

    #[test]
    fn lying_length_prefix_does_not_allocate() {
        // String claiming u64::MAX / 2 bytes: 0xFD + u64 LE.
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        let err = Bincode::decode::<String>(&bytes).unwrap_err();
        assert!(matches!(err, CodecError::Decode { .. }));
        let err = Bincode::decode::<Vec<u8>>(&bytes).unwrap_err();
        assert!(matches!(err, CodecError::Decode { .. }));
        // A length just above the tier limit.
        let mut bytes = vec![0xFC];
        bytes.extend_from_slice(&(64 * 1024 + 1u32).to_le_bytes());
        assert!(Bincode::decode::<String>(&bytes).is_err());
    }

    #[test]
    fn large_payload_within_tier_decodes() {
        let value = "x".repeat(100 * 1024);
        let mut out = BytesMut::new();
        Bincode::encode(&value, &mut out).unwrap();
        assert_eq!(Bincode::decode::<String>(&out).unwrap(), value);
    }

    #[test]
    fn failed_encode_leaves_buffer_unchanged() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("refused"))
            }
        }
        let mut out = BytesMut::from(&b"keep"[..]);
        let err = Bincode::encode(&(1u32, Fails), &mut out).unwrap_err();
        assert!(matches!(
            err,
            CodecError::Encode {
                format: "bincode",
                ..
            }
        ));
        assert_eq!(&out[..], b"keep");
    }
}
