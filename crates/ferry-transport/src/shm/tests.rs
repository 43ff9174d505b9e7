use super::*;

fn filled(len: usize) -> Segment {
    let mut writer = SegmentWriter::create(len).expect("create");
    for (i, byte) in writer.as_mut_slice().iter_mut().enumerate() {
        *byte = (i % 251) as u8;
    }
    writer.seal().expect("seal")
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_sealed_segment_reads_back_what_was_written() {
    let segment = filled(100_000);
    assert_eq!(segment.len(), 100_000);
    let view = segment.map().expect("map");
    assert_eq!(&view[..], &pattern(100_000)[..]);
}

#[test]
fn a_received_sealed_segment_is_mapped_not_copied() {
    let segment = filled(70_000);
    let handle = segment.try_clone().expect("clone").into_handle();
    match receive(handle, 70_000).expect("receive") {
        Received::Mapped { view, segment } => {
            assert_eq!(&view[..], &pattern(70_000)[..]);
            assert_eq!(segment.len(), 70_000);
        }
        Received::Copied(_) if cfg!(not(any(target_os = "linux", windows))) => {}
        Received::Copied(_) => panic!("a sealed segment was copied"),
    }
}

#[test]
fn a_claim_shorter_than_the_segment_maps_only_the_claim() {
    let segment = filled(10_000);
    let handle = segment.try_clone().expect("clone").into_handle();
    let received = receive(handle, 4_000).expect("receive");
    let bytes: &[u8] = match &received {
        Received::Mapped { view, .. } => view,
        Received::Copied(bytes) => bytes,
    };
    assert_eq!(bytes, &pattern(4_000)[..]);
}

#[test]
fn a_claim_longer_than_the_segment_is_truncated() {
    // Page-aligned on Unix, where fstat gives the exact size; on Windows a view past the
    // end of the section cannot be mapped.
    let segment = filled(8192);
    let handle = segment.try_clone().expect("clone").into_handle();
    let error = receive(handle, 3 * 65536).expect_err("longer claim accepted");
    if cfg!(unix) {
        assert!(
            matches!(
                error,
                SegmentError::Truncated {
                    claimed: 196_608,
                    actual: 8192
                }
            ),
            "{error}"
        );
    }
}

#[test]
fn empty_segments_work_on_both_sides() {
    let segment = SegmentWriter::create(0)
        .expect("create")
        .seal()
        .expect("seal");
    assert!(segment.is_empty());
    assert!(segment.map().expect("map").is_empty());
    match receive(segment.into_handle(), 0).expect("receive") {
        Received::Copied(bytes) => assert!(bytes.is_empty()),
        Received::Mapped { .. } => panic!("an empty segment was mapped"),
    }
}

#[cfg(unix)]
#[test]
fn an_unsealed_file_is_copied_and_a_short_one_refused() {
    let path = std::env::temp_dir().join(format!("ferry-shm-unit-{}", std::process::id()));
    std::fs::write(&path, pattern(5000)).expect("write");
    let open = || std::os::fd::OwnedFd::from(std::fs::File::open(&path).expect("open"));
    match receive(open(), 5000).expect("receive") {
        Received::Copied(bytes) => assert_eq!(bytes, pattern(5000)),
        Received::Mapped { .. } => panic!("an unsealed file was mapped"),
    }
    let error = receive(open(), 5001).expect_err("short file accepted");
    assert!(
        matches!(
            error,
            SegmentError::Truncated {
                claimed: 5001,
                actual: 5000
            }
        ),
        "{error}"
    );
    std::fs::remove_file(&path).ok();
}

#[test]
fn a_length_beyond_the_address_space_is_refused() {
    let segment = filled(16);
    let error = receive(segment.into_handle(), u64::MAX).expect_err("accepted");
    if usize::BITS < 64 {
        assert!(matches!(error, SegmentError::TooLarge { .. }), "{error}");
    }
}
