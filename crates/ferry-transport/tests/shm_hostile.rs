//! Segments from a hostile peer: truncated, unsealed, half-sealed, not shared memory at
//! all. Each gives a typed error or a copy, never a mapping that can fault.
//!
//! The checks run in a child process (this test binary again), so that a `SIGBUS` would
//! show as the child dying of a signal, a failure, instead of killing the test harness.
#![cfg(target_os = "linux")]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;

use ferry_transport::shm::{receive, Received, SegmentError};

const CHILD_ENV: &str = "FERRY_SHM_HOSTILE_CHILD";
const PASSED: &str = "hostile segment checks passed";

/// A memfd of `len` bytes of `fill`, with `seals` added.
fn memfd(len: usize, fill: u8, seals: libc::c_int) -> OwnedFd {
    // SAFETY: a NUL-terminated name; the flags are valid for memfd_create.
    let raw = unsafe {
        libc::memfd_create(
            c"hostile".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    assert!(
        raw >= 0,
        "memfd_create: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let file = std::fs::File::from(fd.try_clone().expect("dup"));
    std::io::Write::write_all(&mut &file, &vec![fill; len]).expect("write");
    if seals != 0 {
        // SAFETY: fd is open; F_ADD_SEALS takes an int.
        let added = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) };
        assert_eq!(added, 0, "seal: {}", std::io::Error::last_os_error());
    }
    fd
}

fn truncate(fd: &OwnedFd, len: u64) -> std::io::Result<()> {
    std::fs::File::from(fd.try_clone()?).set_len(len)
}

fn hostile_checks() {
    // 1. Unsealed and truncated below the claim: refused before anything is read.
    let fd = memfd(4096, 1, 0);
    truncate(&fd, 1000).expect("truncate");
    let err = receive(fd, 4096).expect_err("truncated segment accepted");
    assert!(
        matches!(
            err,
            SegmentError::Truncated {
                claimed: 4096,
                actual: 1000
            }
        ),
        "{err}"
    );

    // 2. Sealed, but shorter than claimed.
    let fd = memfd(4096, 2, libc::F_SEAL_SHRINK | libc::F_SEAL_WRITE);
    let err = receive(fd, 8192).expect_err("short sealed segment accepted");
    assert!(matches!(err, SegmentError::Truncated { .. }), "{err}");

    // 3. Unsealed: copied; the sender truncating it afterwards changes nothing.
    let fd = memfd(3 * 4096, 3, 0);
    let keep = fd.try_clone().expect("dup");
    match receive(fd, 3 * 4096).expect("unsealed segment") {
        Received::Copied(bytes) => {
            truncate(&keep, 0).expect("truncate after send");
            assert!(bytes.iter().all(|b| *b == 3) && bytes.len() == 3 * 4096);
        }
        other => panic!("an unsealed segment was not copied: {other:?}"),
    }

    // 4. Sealed against shrinking but not writing: still copied.
    let fd = memfd(4096, 4, libc::F_SEAL_SHRINK);
    assert!(matches!(receive(fd, 4096), Ok(Received::Copied(_))));

    // 5. Sealed against writing but not shrinking: copied, and a truncation during or
    //    after the copy cannot fault (pread stops short).
    let fd = memfd(4096, 5, libc::F_SEAL_WRITE);
    let keep = fd.try_clone().expect("dup");
    match receive(fd, 4096).expect("half-sealed segment") {
        Received::Copied(bytes) => {
            truncate(&keep, 0).expect("truncate after send");
            assert!(bytes.iter().all(|b| *b == 5));
        }
        other => panic!("a segment that can shrink was mapped: {other:?}"),
    }

    // 6. Not shared memory at all: a socket has no size.
    let (socket, _other) = std::os::unix::net::UnixStream::pair().expect("socket pair");
    let err = receive(OwnedFd::from(socket), 10).expect_err("socket accepted");
    assert!(
        matches!(err, SegmentError::Truncated { actual: 0, .. }),
        "{err}"
    );

    // 7. Properly sealed: mapped; the sender can no longer shrink it, every byte reads.
    let fd = memfd(
        2 * 4096,
        7,
        libc::F_SEAL_SHRINK | libc::F_SEAL_WRITE | libc::F_SEAL_GROW,
    );
    let keep = fd.try_clone().expect("dup");
    match receive(fd, 2 * 4096).expect("sealed segment") {
        Received::Mapped { view, .. } => {
            assert!(truncate(&keep, 0).is_err(), "a sealed segment shrank");
            assert!(view.iter().all(|b| *b == 7));
        }
        other => panic!("a sealed segment was copied: {other:?}"),
    }
}

#[test]
fn hostile_segments_give_typed_errors_never_a_fault() {
    if std::env::var_os(CHILD_ENV).is_some() {
        hostile_checks();
        println!("{PASSED}");
        return;
    }
    let output = Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "hostile_segments_give_typed_errors_never_a_fault",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(PASSED),
        "child failed ({}), a signal means a fault:\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
