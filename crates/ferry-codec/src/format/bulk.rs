//! Byte strings in bulk: a `Vec<u8>` copied whole instead of one element at a time, and a
//! `Bytes` decoded as a slice of the frame it arrived in instead of a copy.
//!
//! serde sees a `Vec<u8>` as a sequence of `u8`, which bincode writes and reads one element
//! at a time; `Bytes` decodes through an owned buffer of its own. Both travel as the same
//! bytes either way (bincode: a varint length, then the bytes; JSON: an array of numbers), so
//! the wrappers here change the speed, never the encoding, and never a method's schema.
//!
//! | wrapper | compact formats (bincode) | human-readable formats (JSON) |
//! | --- | --- | --- |
//! | [`BulkRef`] (encode) | a `Vec<u8>` as one byte string | the value's own `Serialize` |
//! | [`Bulk`] (decode) | a `Vec<u8>` in one copy; a `Bytes` sliced from the frame given to [`FormatId::decode_frame`], or copied when there is none | the value's own `Deserialize` |
//!
//! Any other type passes through both wrappers unchanged.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

use super::FormatId;
use crate::CodecError;

/// Bodies shorter than this are not shared with what they decode to: a `Bytes` in them is
/// copied, which costs less than sharing a small buffer.
pub const SLICE_MIN: usize = 4096;

thread_local! {
    /// The frame body being decoded on this thread by [`FormatId::decode_frame`].
    static FRAME: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Sets [`FRAME`] for the duration of one decode and restores what was there (decoding is
/// synchronous, so the thread-local cannot leak to another call).
struct FrameScope {
    previous: Option<Bytes>,
}

impl FrameScope {
    fn enter(body: &Bytes) -> FrameScope {
        let previous = FRAME.with(|frame| frame.replace(Some(body.clone())));
        FrameScope { previous }
    }
}

impl Drop for FrameScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        FRAME.with(|frame| *frame.borrow_mut() = previous);
    }
}

impl FormatId {
    /// Decodes a `T` from a frame body, like [`FormatId::decode`], except that a
    /// `Bytes` read through [`Bulk`] or [`frame_bytes`](crate::frame_bytes) is a slice of
    /// `body` (no allocation, no copy) when `body` is at least [`SLICE_MIN`] bytes long.
    ///
    /// Such a slice keeps the whole of `body`'s allocation alive for as long as it lives.
    pub fn decode_frame<T: DeserializeOwned>(self, body: &Bytes) -> Result<T, CodecError> {
        if body.len() < SLICE_MIN {
            return self.decode(body);
        }
        let _scope = FrameScope::enter(body);
        self.decode(body)
    }
}

/// A `Bytes` for `bytes`: a slice of the frame being decoded when `bytes` lies inside it,
/// a copy otherwise.
fn slice_of_frame(bytes: &[u8]) -> Bytes {
    FRAME.with(|frame| match frame.borrow().as_ref() {
        Some(frame) if contains(frame, bytes) => frame.slice_ref(bytes),
        _ => Bytes::copy_from_slice(bytes),
    })
}

/// Whether `part` lies within `whole`'s memory.
fn contains(whole: &[u8], part: &[u8]) -> bool {
    let start = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    at >= start && at.saturating_add(part.len()) <= start.saturating_add(whole.len())
}

/// Moves `value` into `T` when they are the same type.
fn cast<V: 'static, T: 'static>(value: V) -> Option<T> {
    let mut slot = Some(value);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
}

/// Encodes `T` as its own `Serialize` would, except that a `Vec<u8>` goes to a compact
/// format as one byte string (the same bytes, in one copy).
#[derive(Debug)]
pub struct BulkRef<'a, T>(pub &'a T);

impl<T: Serialize + 'static> Serialize for BulkRef<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            let value = self.0 as &dyn Any;
            if let Some(bytes) = value.downcast_ref::<Vec<u8>>() {
                return serializer.serialize_bytes(bytes);
            }
            if let Some(bytes) = value.downcast_ref::<Bytes>() {
                return crate::splice::offering(bytes, || serializer.serialize_bytes(bytes));
            }
        }
        self.0.serialize(serializer)
    }
}

/// Encodes an owned `T` as [`BulkRef`] does, except that a `Vec<u8>` is first turned into a
/// `Bytes` (without a copy), so that a large one can go by reference (see
/// [`encode_spliced`](crate::encode_spliced)). The bytes on the wire are the same.
#[derive(Debug)]
pub struct BulkValue<T>(Owned<T>);

#[derive(Debug)]
enum Owned<T> {
    /// A `Vec<u8>`, now a `Bytes`.
    Bytes(Bytes),
    /// Any other type.
    Value(T),
}

impl<T: 'static> BulkValue<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        let mut slot = Some(value);
        let vec = (&mut slot as &mut dyn Any)
            .downcast_mut::<Option<Vec<u8>>>()
            .and_then(Option::take);
        match (vec, slot) {
            (_, Some(value)) => BulkValue(Owned::Value(value)),
            (Some(vec), None) => BulkValue(Owned::Bytes(Bytes::from(vec))),
            // Cannot happen: the value is in one of the two.
            (None, None) => BulkValue(Owned::Bytes(Bytes::new())),
        }
    }
}

impl<T: Serialize + 'static> Serialize for BulkValue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Owned::Value(value) => BulkRef(value).serialize(serializer),
            // What a `Vec<u8>` writes there: an array of numbers.
            Owned::Bytes(bytes) if serializer.is_human_readable() => {
                serializer.collect_seq(bytes.iter())
            }
            Owned::Bytes(bytes) => {
                crate::splice::offering(bytes, || serializer.serialize_bytes(bytes))
            }
        }
    }
}

/// Decodes `T` as its own `Deserialize` would, except in a compact format: a `Vec<u8>` is
/// read in one copy, and a `Bytes` is a slice of the frame (see
/// [`FormatId::decode_frame`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bulk<T>(pub T);

impl<T> Bulk<T> {
    /// The decoded value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<'de, T: DeserializeOwned + 'static> serde::Deserialize<'de> for Bulk<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            let wanted = TypeId::of::<T>();
            let value = if wanted == TypeId::of::<Vec<u8>>() {
                cast(deserializer.deserialize_bytes(VecVisitor)?)
            } else if wanted == TypeId::of::<Bytes>() {
                cast(deserializer.deserialize_bytes(FrameVisitor)?)
            } else {
                return T::deserialize(deserializer).map(Bulk);
            };
            return value
                .map(Bulk)
                .ok_or_else(|| de::Error::custom("byte string of another type"));
        }
        T::deserialize(deserializer).map(Bulk)
    }
}

/// Reads a byte string into a `Vec<u8>` in one copy.
struct VecVisitor;

impl<'de> Visitor<'de> for VecVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }
}

/// Reads a byte string into a `Bytes`, sliced from the frame being decoded when it can be.
struct FrameVisitor;

impl<'de> Visitor<'de> for FrameVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Bytes, E> {
        Ok(slice_of_frame(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }
}

/// `#[serde(with = "...")]` for a `Bytes` field inside a struct: in a compact format, the
/// field decodes as a slice of the frame it came in (see [`FormatId::decode_frame`]);
/// elsewhere, and when encoding, it behaves as `Bytes` does (a byte string; in JSON, an array
/// of numbers, and a string is accepted too).
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Chunk {
///     offset: u64,
///     #[serde(with = "ferry_codec::frame_bytes")]
///     data: bytes::Bytes,
/// }
/// ```
pub mod frame_bytes {
    use bytes::Bytes;
    use serde::{Deserializer, Serializer};

    use super::{FrameVisitor, JsonBytesVisitor};

    /// Encodes `bytes` as a byte string.
    pub fn serialize<S: Serializer>(bytes: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            // What `Bytes` itself writes to JSON: an array of numbers.
            serializer.collect_seq(bytes.iter())
        } else {
            crate::splice::offering(bytes, || serializer.serialize_bytes(bytes))
        }
    }

    /// Decodes a byte string, as a slice of the frame when it can.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_byte_buf(JsonBytesVisitor)
        } else {
            deserializer.deserialize_bytes(FrameVisitor)
        }
    }
}

/// What `Bytes` accepts from JSON: an array of numbers, or a string's UTF-8 bytes.
struct JsonBytesVisitor;

impl<'de> Visitor<'de> for JsonBytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte array or a string")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        // Never trust a size hint from the peer beyond a small start.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            out.push(byte);
        }
        Ok(Bytes::from(out))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use serde::{Deserialize, Serialize};

    use super::*;

    fn encode<T: Serialize>(format: FormatId, value: &T) -> Bytes {
        let mut out = BytesMut::new();
        format.encode(value, &mut out).unwrap();
        out.freeze()
    }

    #[test]
    fn a_vec_encodes_to_the_same_bytes_in_both_formats() {
        for len in [0usize, 1, 127, 128, 250, 251, 8191, 8193, 70_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            for format in [FormatId::Bincode, FormatId::Json] {
                let plain = encode(format, &(&data, 5u32));
                let bulk = encode(format, &(BulkRef(&data), 5u32));
                assert_eq!(plain, bulk, "{format} {len}");
                let (back, five): (Bulk<Vec<u8>>, u32) = format.decode_frame(&plain).unwrap();
                assert_eq!((back.0, five), (data.clone(), 5));
                let (back, _): (Vec<u8>, u32) = format.decode(&bulk).unwrap();
                assert_eq!(back, data);
            }
        }
    }

    #[test]
    fn bytes_decode_as_a_slice_of_a_large_frame() {
        let data = Bytes::from(vec![0x5Au8; SLICE_MIN * 4]);
        let body = encode(FormatId::Bincode, &(&data, 9u8));
        let (back, nine): (Bulk<Bytes>, u8) = FormatId::Bincode.decode_frame(&body).unwrap();
        assert_eq!((&back.0, nine), (&data, 9));
        assert!(
            contains(&body, &back.0),
            "the decoded Bytes is not in the frame"
        );
        // Outside `decode_frame`, and in JSON, it is a copy.
        let (copy, _): (Bulk<Bytes>, u8) = FormatId::Bincode.decode(&body).unwrap();
        assert!(!contains(&body, &copy.0));
        let json = encode(FormatId::Json, &(&data, 9u8));
        let (back, _): (Bulk<Bytes>, u8) = FormatId::Json.decode_frame(&json).unwrap();
        assert_eq!(back.0, data);
        // The scope ended with the decode.
        FRAME.with(|frame| assert!(frame.borrow().is_none()));
    }

    #[test]
    fn small_bodies_are_copied() {
        let data = Bytes::from_static(b"small");
        let body = encode(FormatId::Bincode, &(&data,));
        let (back,): (Bulk<Bytes>,) = FormatId::Bincode.decode_frame(&body).unwrap();
        assert_eq!(back.0, data);
        assert!(!contains(&body, &back.0));
    }

    #[test]
    fn a_bulk_value_encodes_as_its_value() {
        for len in [0usize, 5, 70_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 3) as u8).collect();
            for format in [FormatId::Bincode, FormatId::Json] {
                let plain = encode(format, &(&data, 5u32, "x"));
                let owned = encode(
                    format,
                    &(BulkValue::new(data.clone()), 5u32, BulkValue::new("x")),
                );
                assert_eq!(plain, owned, "{format} {len}");
            }
        }
    }

    #[test]
    fn other_types_pass_through() {
        let body = encode(
            FormatId::Bincode,
            &(BulkRef(&"text".to_owned()), BulkRef(&7u16)),
        );
        let (text, seven): (Bulk<String>, Bulk<u16>) =
            FormatId::Bincode.decode_frame(&body).unwrap();
        assert_eq!((text.0.as_str(), seven.0), ("text", 7));
    }

    #[test]
    fn a_lying_length_is_a_decode_error() {
        let mut body = vec![0xFC];
        body.extend_from_slice(&(1u32 << 30).to_le_bytes());
        body.extend_from_slice(&[0; SLICE_MIN]);
        let body = Bytes::from(body);
        assert!(FormatId::Bincode
            .decode_frame::<Bulk<Vec<u8>>>(&body)
            .is_err());
        assert!(FormatId::Bincode
            .decode_frame::<Bulk<Bytes>>(&body)
            .is_err());
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Chunk {
        offset: u64,
        #[serde(with = "crate::frame_bytes")]
        data: Bytes,
    }

    #[test]
    fn a_nested_frame_bytes_field_is_sliced_and_keeps_the_encoding() {
        let chunk = Chunk {
            offset: 3,
            data: Bytes::from(vec![1u8; 2 * SLICE_MIN]),
        };
        #[derive(Serialize)]
        struct Plain<'a> {
            offset: u64,
            data: &'a [u8],
        }
        let plain = Plain {
            offset: 3,
            data: &chunk.data,
        };
        for format in [FormatId::Bincode, FormatId::Json] {
            let body = encode(format, &chunk);
            assert_eq!(body, encode(format, &plain), "{format}");
            let back: Chunk = format.decode_frame(&body).unwrap();
            assert_eq!(back, chunk);
            assert_eq!(contains(&body, &back.data), format == FormatId::Bincode);
        }
        let from_string: Chunk = FormatId::Json
            .decode(br#"{"offset":1,"data":"hi"}"#)
            .unwrap();
        assert_eq!(&from_string.data[..], b"hi");
    }
}
