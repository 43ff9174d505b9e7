//! `ferry::SharedBytes` across processes: 256 MiB both ways, a payload sent on without a
//! copy, the mapping undone when the last reference drops, no descriptor growth, and a
//! hostile client (truncated, unsealed or oversized segments) that gets a typed refusal
//! while the server lives on.
//!
//! The server is this test binary run again through `ferry::child::spawn` with
//! `FERRY_SHM_ROLE` set and `--exact child_role`. A server that died of `SIGBUS` would fail
//! the next call with `Closed`.
//!
//! Linux and Windows (under Wine too): the hostile sides forge their segments with
//! `memfd_create` on Linux and with sections of the paging file on Windows ([`forge`]).
//! Descriptors and mappings are counted on Linux only (`/proc`).
#![cfg(any(target_os = "linux", windows))]

mod support;

use ferry::{Handle, SharedBytes};
use serde::{Deserialize, Serialize};
use support::{one_at_a_time, until_counts, within};

const ROLE: &str = "FERRY_SHM_ROLE";
/// Set for a hostile server.
const HOSTILE: &str = "FERRY_SHM_HOSTILE";

/// The server's bound on one shared payload in these tests.
const SERVER_LIMIT: u64 = 300 << 20;

/// What the server saw of a payload.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub len: u64,
    pub sum: u64,
    pub mapped: bool,
}

#[ferry::service]
pub trait Shm {
    /// The payload's length and byte sum, and whether the server mapped it.
    async fn digest(&self, data: SharedBytes) -> Digest;
    /// A payload of `len` bytes, byte `i` = `(i + seed) % 251`.
    async fn make(&self, len: u64, seed: u8) -> SharedBytes;
    /// The payload, sent back as it came.
    async fn echo(&self, data: SharedBytes) -> SharedBytes;
    /// How many descriptors the server has open.
    async fn open_fds(&self) -> usize;
}

/// What a hostile client sends in place of a `SharedBytes`: any handle, any length.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename = "SharedBytes")]
pub struct Forged(pub Handle, pub u64);

/// The same service seen by a hostile client.
pub mod hostile {
    use super::{Digest, Forged};

    #[ferry::service(name = "Shm")]
    pub trait Shm {
        async fn digest(&self, data: Forged) -> Digest;
        /// Seed 0: a segment cut short of the length claimed; otherwise an honest one.
        async fn make(&self, len: u64, seed: u8) -> Forged;
    }
}

/// A hostile server: `make` may answer with a truncated segment.
struct HostileImpl;

impl hostile::Shm for HostileImpl {
    async fn digest(&self, _data: Forged) -> Digest {
        Digest {
            len: 0,
            sum: 0,
            mapped: false,
        }
    }

    async fn make(&self, len: u64, seed: u8) -> Forged {
        let handle = if seed == 0 {
            forge::short(len as usize, 0, len / 2)
        } else {
            forge::sealed(len as usize, seed)
        };
        Forged(handle, len)
    }
}

struct ShmImpl;

impl Shm for ShmImpl {
    async fn digest(&self, data: SharedBytes) -> Digest {
        Digest {
            len: data.len() as u64,
            sum: sum(&data),
            mapped: data.is_mapped(),
        }
    }

    async fn make(&self, len: u64, seed: u8) -> SharedBytes {
        SharedBytes::from_writer(len as usize, |buf| fill(buf, seed)).expect("segment")
    }

    async fn echo(&self, data: SharedBytes) -> SharedBytes {
        data
    }

    async fn open_fds(&self) -> usize {
        open_fds()
    }
}

fn fill(buf: &mut [u8], seed: u8) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte = ((i + seed as usize) % 251) as u8;
    }
}

fn sum(data: &[u8]) -> u64 {
    data.iter().map(|b| u64::from(*b)).sum()
}

fn expected_sum(len: usize, seed: u8) -> u64 {
    let mut buf = vec![0; len];
    fill(&mut buf, seed);
    sum(&buf)
}

/// How many descriptors this process has open; 0 on Windows (under Wine `/proc` is there,
/// but it counts Wine's own descriptors, not the program's handles).
fn open_fds() -> usize {
    if cfg!(target_os = "linux") {
        std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
    } else {
        0
    }
}

/// Awaits a call that moves 256 MiB: each side writes or reads every byte, in a debug
/// build, which under Wine on a loaded machine takes more than the usual 10 s bound.
async fn slowly<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(120), call)
        .await
        .expect("timed out after 120 s")
}

/// Not a test of its own: the server process. Without the role variable it does nothing.
#[test]
fn child_role() {
    if std::env::var_os(ROLE).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let link = ferry::child::connect_parent().await.expect("parent link");
        let options = ferry::ServerOptions::new().max_shared_bytes(SERVER_LIMIT);
        let server = ferry::Server::with_options(options);
        if std::env::var_os(HOSTILE).is_some() {
            server
                .serve(hostile::ShmServer::new(HostileImpl))
                .serve_stream(link)
                .await;
        } else {
            server
                .serve(ShmServer::new(ShmImpl))
                .serve_stream(link)
                .await;
        }
    });
}

/// A server process and the raw link to it.
async fn spawn_server() -> (tokio::process::Child, ferry::transport::Stream) {
    spawn(false).await
}

async fn spawn(hostile: bool) -> (tokio::process::Child, ferry::transport::Stream) {
    let mut command = tokio::process::Command::new(std::env::current_exe().expect("exe"));
    command
        .args(["child_role", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, "1")
        .kill_on_drop(true);
    if hostile {
        command.env(HOSTILE, "1");
    }
    let child = within(ferry::child::spawn(command)).await.expect("spawn");
    child.into_parts()
}

async fn server() -> (tokio::process::Child, ShmClient) {
    let (process, link) = spawn_server().await;
    let client = within(ShmClient::from_stream(
        link,
        &ferry::ClientOptions::default(),
    ))
    .await
    .expect("client");
    (process, client)
}

#[test]
fn payloads_of_256_mib_travel_both_ways() {
    one_at_a_time(async {
        const LEN: usize = 256 << 20;
        let (_process, client) = server().await;
        let data = SharedBytes::from_writer(LEN, |buf| fill(buf, 3)).expect("segment");
        let want = expected_sum(LEN, 3);
        let digest = slowly(client.digest(data)).await.expect("digest");
        assert_eq!(
            digest,
            Digest {
                len: LEN as u64,
                sum: want,
                mapped: true
            }
        );

        let reply = slowly(client.make(LEN as u64, 9)).await.expect("make");
        assert!(reply.is_mapped());
        assert_eq!(reply.len(), LEN);
        assert_eq!(sum(&reply), expected_sum(LEN, 9));
    });
}

// Linux: the mappings are read from /proc/self/maps.
#[cfg(target_os = "linux")]
#[test]
fn a_received_payload_is_unmapped_when_its_last_reference_drops() {
    one_at_a_time(async {
        let (_process, client) = server().await;
        let reply = within(client.make(1 << 20, 1)).await.expect("make");
        let address = reply.as_ptr() as usize;
        let mapped = || {
            let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
            maps.lines()
                .filter(|line| line.contains("ferry-shared"))
                .any(|line| line.split('-').next() == Some(&format!("{address:x}")[..]))
        };
        assert!(mapped(), "the reply is not a mapping at {address:#x}");
        let slice = reply.to_bytes().slice(100..200);
        drop(reply);
        assert!(mapped(), "unmapped while a slice lives");
        drop(slice);
        assert!(!mapped(), "still mapped after the last reference dropped");
    });
}

#[test]
fn an_echoed_payload_and_many_calls_leave_no_descriptors_behind() {
    one_at_a_time(async {
        let (_process, client) = server().await;
        let data = SharedBytes::from_writer(64 << 10, |buf| fill(buf, 5)).expect("segment");
        // Warm up: the connection's own descriptors settle.
        within(client.echo(data.clone())).await.expect("echo");
        let (ours, theirs) = (open_fds(), within(client.open_fds()).await.expect("fds"));
        for _ in 0..300 {
            let back = within(client.echo(data.clone())).await.expect("echo");
            assert_eq!(back, data);
            assert!(back.is_mapped());
        }
        until_counts((ours, theirs), || async {
            (open_fds(), client.open_fds().await.expect("fds"))
        })
        .await;
    });
}

/// Segments made by hand, as a hostile peer would: honest ones and short ones.
mod forge {
    use ferry::Handle;

    /// A memfd holding `len` bytes of pattern `seed`, with `seals` added, then cut to `cut`.
    #[cfg(target_os = "linux")]
    pub fn memfd(len: usize, seed: u8, seals: libc::c_int, cut: Option<u64>) -> Handle {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        // SAFETY: a NUL-terminated name and valid flags.
        let raw = unsafe {
            libc::memfd_create(
                c"forged".as_ptr(),
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
        let mut buf = vec![0; len];
        super::fill(&mut buf, seed);
        std::io::Write::write_all(&mut &file, &buf).expect("write");
        if let Some(cut) = cut {
            file.set_len(cut).expect("truncate");
        }
        if seals != 0 {
            // SAFETY: fd is open; F_ADD_SEALS takes an int.
            let added = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) };
            assert_eq!(added, 0, "seal: {}", std::io::Error::last_os_error());
        }
        Handle::from(fd)
    }

    /// The seals an honest Linux sender adds (all but `F_SEAL_SEAL`).
    #[cfg(target_os = "linux")]
    pub const SEALED: libc::c_int = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;

    /// An honest segment: `len` bytes of pattern `seed`, sealed.
    #[cfg(target_os = "linux")]
    pub fn sealed(len: usize, seed: u8) -> Handle {
        memfd(len, seed, SEALED, None)
    }

    /// A segment that holds only `actual` bytes of pattern `seed` of the `len` written
    /// (unsealed, cut short).
    #[cfg(target_os = "linux")]
    pub fn short(len: usize, seed: u8, actual: u64) -> Handle {
        memfd(len, seed, 0, Some(actual))
    }

    /// A section of `len` bytes of pattern `seed`, given out read-only.
    #[cfg(windows)]
    pub fn section(len: usize, seed: u8) -> Handle {
        let mut writer = ferry::transport::shm::SegmentWriter::create(len).expect("section");
        super::fill(writer.as_mut_slice(), seed);
        Handle::from(writer.seal().expect("seal").into_handle())
    }

    /// An honest segment: `len` bytes of pattern `seed`, read-only.
    #[cfg(windows)]
    pub fn sealed(len: usize, seed: u8) -> Handle {
        section(len, seed)
    }

    /// A section of only `actual` bytes of pattern `seed` (a section cannot shrink: it is
    /// made short).
    #[cfg(windows)]
    pub fn short(_len: usize, seed: u8, actual: u64) -> Handle {
        section(actual as usize, seed)
    }
}

/// Sends `forged` as a payload of `claimed` bytes; the server must refuse it.
async fn refused(client: &hostile::ShmClient, forged: Handle, claimed: u64) -> ferry::Error {
    let err = within(client.digest(Forged(forged, claimed)))
        .await
        .expect_err("a forged segment was accepted");
    assert_eq!(err.kind(), ferry::ErrorKind::Rejected, "{err}");
    err
}

#[test]
fn a_hostile_client_gets_typed_refusals_and_the_server_lives_on() {
    one_at_a_time(async {
        let (_process, link) = spawn_server().await;
        let client = within(hostile::ShmClient::from_stream(
            link,
            &ferry::ClientOptions::default(),
        ))
        .await
        .expect("client");

        // Claims more than the segment holds: refused, nothing read.
        let err = refused(&client, forge::short(8192, 1, 1000), 8192).await;
        if cfg!(unix) {
            // Windows cannot tell how short: mapping the claimed length fails.
            assert!(support::chain(&err).contains("shorter than"), "{err}");
        }
        // Short by more than a Windows allocation unit (64 KiB).
        refused(&client, forge::sealed(4096, 1), 3 * 65536).await;

        // Beyond the server's limit (refused before the segment is looked at).
        let err = refused(&client, forge::sealed(4096, 1), SERVER_LIMIT + 1).await;
        assert!(support::chain(&err).contains("exceeds limit"), "{err}");

        // Not shared memory at all: on Windows a file (which Unix reads as an unsealed
        // segment, copied), on Unix a socket.
        #[cfg(windows)]
        {
            let file = std::fs::File::open(std::env::current_exe().expect("exe")).expect("open");
            refused(&client, Handle::from(file), 10).await;
        }
        #[cfg(unix)]
        {
            let (socket, _other) = std::os::unix::net::UnixStream::pair().expect("pair");
            refused(&client, Handle::from(socket), 10).await;
        }

        #[cfg(target_os = "linux")]
        {
            // Sealed but short.
            refused(
                &client,
                forge::memfd(4096, 1, forge::SEALED, None),
                3 * 4096,
            )
            .await;
            // Sparse beyond the limit: nothing is written past the first page.
            refused(
                &client,
                forge::memfd(4096, 1, 0, Some(SERVER_LIMIT + 1)),
                SERVER_LIMIT + 1,
            )
            .await;
            // Unsealed and whole: copied, not mapped, correct.
            let digest = within(client.digest(Forged(forge::memfd(50_000, 4, 0, None), 50_000)))
                .await
                .expect("an unsealed segment");
            assert_eq!(
                digest,
                Digest {
                    len: 50_000,
                    sum: expected_sum(50_000, 4),
                    mapped: false
                }
            );
        }

        // The server is alive and well: an honest segment.
        let digest = within(client.digest(Forged(forge::sealed(10_000, 6), 10_000)))
            .await
            .expect("the server died");
        assert_eq!(
            digest,
            Digest {
                len: 10_000,
                sum: expected_sum(10_000, 6),
                mapped: true
            }
        );
    });
}

#[test]
fn a_truncated_segment_from_a_hostile_server_fails_the_call_not_the_client() {
    one_at_a_time(async {
        let (_process, link) = spawn(true).await;
        let client = within(ShmClient::from_stream(
            link,
            &ferry::ClientOptions::default(),
        ))
        .await
        .expect("client");
        let err = within(client.make(64 << 10, 0))
            .await
            .expect_err("a truncated reply was accepted");
        assert_eq!(err.kind(), ferry::ErrorKind::Protocol, "{err}");
        if cfg!(unix) {
            // Windows cannot tell how short: mapping the claimed length fails.
            assert!(support::chain(&err).contains("shorter than"), "{err}");
        }
        // The connection is still there: an honest reply maps.
        let reply = within(client.make(64 << 10, 7))
            .await
            .expect("honest reply");
        assert!(reply.is_mapped());
        assert_eq!(sum(&reply), expected_sum(64 << 10, 7));
    });
}
