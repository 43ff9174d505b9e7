use super::*;

#[test]
fn a_written_payload_reads_back_as_slice_and_bytes() {
    let shared = SharedBytes::from_writer(300_000, |buf| {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte = (i % 253) as u8;
        }
    })
    .expect("create");
    assert_eq!(shared.len(), 300_000);
    assert!(shared.is_mapped());
    assert!(shared
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i % 253) as u8));
    let bytes = shared.to_bytes();
    assert_eq!(bytes.as_ptr(), shared.as_ptr(), "to_bytes copied");
    assert_eq!(
        SharedBytes::try_from(vec![1, 2, 3]).expect("vec")[..],
        [1, 2, 3]
    );
    assert_eq!(
        SharedBytes::try_from(Bytes::from_static(b"abc")).expect("bytes")[..],
        *b"abc"
    );
    assert!(SharedBytes::copy_from_slice(&[]).expect("empty").is_empty());
}

/// The lines of `/proc/self/maps` that map `address`.
#[cfg(target_os = "linux")]
fn mapped_at(address: usize) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    maps.lines()
        .filter(|line| {
            let range = line.split(' ').next().unwrap_or("");
            let start = range.split('-').next().unwrap_or("");
            usize::from_str_radix(start, 16) == Ok(address) && line.contains("ferry-shared")
        })
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn the_mapping_is_undone_when_the_last_reference_drops() {
    let shared = SharedBytes::from_writer(1 << 20, |buf| buf.fill(9)).expect("create");
    let address = shared.as_ptr() as usize;
    assert_eq!(mapped_at(address), 1, "not mapped at {address:#x}");
    let bytes = shared.to_bytes();
    let slice = bytes.slice(10..20);
    let clone = shared.clone();
    drop(shared);
    drop(bytes);
    drop(clone);
    assert_eq!(mapped_at(address), 1, "unmapped while a slice lives");
    assert_eq!(slice[..], [9; 10]);
    drop(slice);
    assert_eq!(mapped_at(address), 0, "still mapped after the last drop");
}
