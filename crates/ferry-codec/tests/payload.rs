//! Payloads through both formats, including large byte payloads.

use bytes::{Bytes, BytesMut};
use ferry_codec::{
    begin_request, finish_frame, Bincode, CodecError, Format, FormatId, FrameDecoder, Json, NoArgs,
    DEFAULT_MAX_FRAME,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

const FORMATS: [FormatId; 2] = [FormatId::Bincode, FormatId::Json];

fn mib_of_bytes() -> Vec<u8> {
    (0..1024 * 1024).map(|i: u32| (i % 251) as u8).collect()
}

#[test]
fn one_mib_bytes_round_trips() {
    let data = Bytes::from(mib_of_bytes());
    for format in FORMATS {
        let mut out = BytesMut::new();
        format.encode(&data, &mut out).unwrap();
        let back: Bytes = format.decode(&out).unwrap();
        assert_eq!(back, data, "{format}");
    }
}

#[test]
fn one_mib_serde_bytes_round_trips_inside_a_frame() {
    let data = serde_bytes::ByteBuf::from(mib_of_bytes());
    for format in FORMATS {
        let mut wire = BytesMut::new();
        let start = begin_request(&mut wire, 9, 2, Some(250));
        format.encode(&(7u32, &data), &mut wire).unwrap();
        finish_frame(&mut wire, start, DEFAULT_MAX_FRAME).unwrap();

        let frame = FrameDecoder::default().decode(&mut wire).unwrap().unwrap();
        let (deadline, args) = frame.split_deadline().unwrap();
        assert_eq!(deadline, Some(250));
        let (n, back): (u32, serde_bytes::ByteBuf) = format.decode(&args).unwrap();
        assert_eq!(n, 7);
        assert_eq!(back, data, "{format}");
    }
}

#[test]
fn payload_larger_than_peer_limit_fails_locally() {
    let data = serde_bytes::ByteBuf::from(mib_of_bytes());
    let mut wire = BytesMut::from(&b"queued"[..]);
    let start = begin_request(&mut wire, 1, 0, None);
    Bincode::encode(&(&data,), &mut wire).unwrap();
    let err = finish_frame(&mut wire, start, 1024).unwrap_err();
    assert!(matches!(err, CodecError::FrameTooLarge { limit: 1024, .. }));
    assert_eq!(err.status(), ferry_codec::StatusCode::FRAME_TOO_LARGE);
    assert_eq!(&wire[..], b"queued");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Point,
    Circle { radius: f64 },
    Line(i32, i32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    name: String,
    tags: Vec<String>,
    score: Option<i64>,
    shape: Shape,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
}

fn any_record() -> impl Strategy<Value = Record> {
    let shape = prop_oneof![
        Just(Shape::Point),
        // Quarter steps: exact in binary, so JSON text round-trips them exactly.
        any::<i32>().prop_map(|r| Shape::Circle {
            radius: f64::from(r) / 4.0
        }),
        (any::<i32>(), any::<i32>()).prop_map(|(a, b)| Shape::Line(a, b)),
    ];
    (
        "\\PC{0,20}",
        proptest::collection::vec("[a-z]{0,5}", 0..4),
        any::<Option<i64>>(),
        shape,
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(name, tags, score, shape, blob)| Record {
            name,
            tags,
            score,
            shape,
            blob,
        })
}

proptest! {
    #[test]
    fn records_round_trip(record in any_record(), n in any::<u64>(), m in any::<i128>()) {
        for format in FORMATS {
            let mut out = BytesMut::new();
            format.encode(&(n, &record), &mut out).unwrap();
            let back: (u64, Record) = format.decode(&out).unwrap();
            prop_assert_eq!(&back, &(n, record.clone()));
        }
        // i128 goes through bincode (JSON numbers are limited to 64 bits in serde_json by default).
        let mut out = BytesMut::new();
        Bincode::encode(&m, &mut out).unwrap();
        prop_assert_eq!(Bincode::decode::<i128>(&out).unwrap(), m);
    }

    /// Arbitrary bytes never make a decoder panic or allocate past what the input can hold.
    #[test]
    fn arbitrary_payloads_give_typed_errors(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        for format in FORMATS {
            match format.decode::<(String, Vec<u64>, serde_bytes::ByteBuf, Shape)>(&input) {
                Ok(_) => {}
                Err(CodecError::Decode { format: name, .. }) => prop_assert_eq!(name, format.name()),
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
    }
}

#[test]
fn zero_argument_calls() {
    let mut out = BytesMut::new();
    Bincode::encode(&NoArgs, &mut out).unwrap();
    assert!(out.is_empty());
    Json::encode(&NoArgs, &mut out).unwrap();
    assert_eq!(&out[..], b"[]");
    assert_eq!(Json::decode::<()>(b"null").unwrap(), ());
}
