//! `ferry::Handle` across processes: a file and a pipe passed as arguments and results, a
//! handle inside a struct, and 1000 calls passing descriptors with no descriptor growth on
//! either side.
//!
//! The server is this test binary run again in a role (`support::child`). On Windows (under
//! Wine too) the "pipe" is a file holding the text, and descriptors are not counted.

mod support;

use std::io::Read;
#[cfg(unix)]
use std::io::Write;
#[cfg(unix)]
use std::os::fd::{FromRawFd, OwnedFd};

use ferry::Handle;
use serde::{Deserialize, Serialize};
use support::child::{run_role, say, ChildProcess};
use support::{one_at_a_time, unique_name, within};

/// A handle with a label, to pass one inside a struct.
#[derive(Debug, Serialize, Deserialize)]
pub struct Labeled {
    pub label: String,
    pub file: Handle,
    pub more: Option<Handle>,
}

/// A handle with a large payload, which goes by reference in the frame's write.
#[derive(Debug, Serialize, Deserialize)]
pub struct Bulky {
    pub file: Handle,
    #[serde(with = "ferry::frame_bytes")]
    pub data: bytes::Bytes,
}

#[ferry::service]
pub trait Fds {
    /// Reads the handle to its end.
    async fn read_all(&self, handle: Handle) -> String;
    /// A pipe's read end, with `text` written into it and the write end closed.
    async fn pipe_with(&self, text: String) -> Handle;
    /// Reads both handles of `item`; returns the texts and a handle to a pipe holding the
    /// label.
    async fn labeled(&self, item: Labeled) -> (String, Labeled);
    /// The size of the file behind the handle.
    async fn size(&self, handle: Handle) -> u64;
    /// How many descriptors the server process has open.
    async fn open_fds(&self) -> usize;
    /// How many handles came.
    async fn count(&self, handles: Vec<Handle>) -> usize;
    /// Reads the handle; returns the text, and the same payload with a pipe holding "back".
    async fn bulky(&self, item: Bulky) -> (String, Bulky);
}

struct FdsImpl;

impl Fds for FdsImpl {
    async fn read_all(&self, handle: Handle) -> String {
        read_to_string(handle)
    }

    async fn pipe_with(&self, text: String) -> Handle {
        pipe_holding(&text)
    }

    async fn labeled(&self, item: Labeled) -> (String, Labeled) {
        let mut text = read_to_string(item.file);
        if let Some(more) = item.more {
            text.push_str(&read_to_string(more));
        }
        let reply = Labeled {
            file: pipe_holding(&item.label),
            label: item.label,
            more: None,
        };
        (text, reply)
    }

    async fn size(&self, handle: Handle) -> u64 {
        std::fs::File::from(handle)
            .metadata()
            .map_or(0, |m| m.len())
    }

    async fn open_fds(&self) -> usize {
        open_fds()
    }

    async fn bulky(&self, item: Bulky) -> (String, Bulky) {
        let text = read_to_string(item.file);
        let reply = Bulky {
            file: pipe_holding("back"),
            data: item.data,
        };
        (text, reply)
    }

    async fn count(&self, handles: Vec<Handle>) -> usize {
        handles.len()
    }
}

fn read_to_string(handle: Handle) -> String {
    let mut text = String::new();
    std::fs::File::from(handle)
        .read_to_string(&mut text)
        .expect("read the handle");
    text
}

/// A pipe's read end holding `text` (its write end closed).
#[cfg(unix)]
fn pipe_holding(text: &str) -> Handle {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: pipe returned two fresh descriptors that nothing else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut write = std::fs::File::from(write);
    write.write_all(text.as_bytes()).expect("write the pipe");
    drop(write);
    Handle::from(read)
}

/// A file holding `text`, read from its start (Windows: no anonymous pipe in std).
#[cfg(not(unix))]
fn pipe_holding(text: &str) -> Handle {
    Handle::from(temp_file(text))
}

/// How many descriptors this process has open (0 where `/proc` does not tell).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// Not a test of its own: the entry point of the server process. Without a role (a normal
/// test run) it does nothing.
#[test]
fn child_role() {
    run_role(|_role, name| async move {
        let bound = ferry::Server::new()
            .serve(FdsServer::new(FdsImpl))
            .bind(&*name)
            .await
            .expect("child server bind");
        say("ready");
        let _ = bound.run().await;
    });
}

/// A server process (killed when dropped) and a client of it.
async fn spawn_server() -> (ChildProcess, FdsClient) {
    let name = unique_name("handles");
    let server = ChildProcess::server(&name).await;
    let client = within(FdsClient::connect(&*name)).await.expect("connect");
    (server, client)
}

fn temp_file(text: &str) -> std::fs::File {
    let path = std::env::temp_dir().join(unique_name("handles-file"));
    std::fs::write(&path, text).expect("write a temporary file");
    // Opened again: read from the start on the other side.
    let file = std::fs::File::open(&path).expect("open the temporary file");
    if cfg!(unix) {
        let _ = std::fs::remove_file(&path);
    }
    file
}

#[test]
fn a_file_is_read_by_the_other_process() {
    one_at_a_time(async {
        let (_server, client) = spawn_server().await;
        let file = temp_file("written by the client");
        let text = within(client.read_all(Handle::from(file)))
            .await
            .expect("read_all");
        assert_eq!(text, "written by the client");
    });
}

#[test]
fn pipes_go_both_ways() {
    one_at_a_time(async {
        let (_server, client) = spawn_server().await;
        // A pipe's read end as an argument...
        let text = within(client.read_all(pipe_holding("through a pipe")))
            .await
            .expect("read_all");
        assert_eq!(text, "through a pipe");
        // ...and as a result.
        let handle = within(client.pipe_with("from the server".into()))
            .await
            .expect("pipe_with");
        assert_eq!(read_to_string(handle), "from the server");
    });
}

#[test]
fn handles_inside_structs() {
    one_at_a_time(async {
        let (_server, client) = spawn_server().await;
        let item = Labeled {
            label: "the label".into(),
            file: Handle::from(temp_file("first ")),
            more: Some(pipe_holding("second")),
        };
        let (text, reply) = within(client.labeled(item)).await.expect("labeled");
        assert_eq!(text, "first second");
        assert_eq!(reply.label, "the label");
        assert!(reply.more.is_none());
        assert_eq!(read_to_string(reply.file), "the label");
    });
}

#[test]
fn a_handle_goes_with_a_frame_whose_payload_goes_by_reference() {
    one_at_a_time(async {
        let (_server, client) = spawn_server().await;
        let data = bytes::Bytes::from((0..300_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        for round in 0..3 {
            let item = Bulky {
                file: Handle::from(temp_file("with a large payload")),
                data: data.clone(),
            };
            let (text, reply) = within(client.bulky(item)).await.expect("bulky");
            assert_eq!(text, "with a large payload", "round {round}");
            assert_eq!(reply.data, data, "round {round}");
            assert_eq!(read_to_string(reply.file), "back", "round {round}");
        }
    });
}

/// Calls with and without handles written together: the server may read a frame that
/// carries none and the next one, which carries a descriptor, in one read (Linux runs a
/// read on into bytes sent with descriptors). Each frame must get its own: the one
/// without handles must not claim the descriptor (the connection would close as if the
/// client broke the protocol).
#[test]
fn calls_with_and_without_handles_written_together() {
    one_at_a_time(async {
        let (_server, client) = spawn_server().await;
        let file = Handle::from(temp_file("twelve bytes"));
        for round in 0..50 {
            let (before, size, after) = within(async {
                tokio::join!(
                    client.count(Vec::new()),
                    client.size(file.try_clone().unwrap()),
                    client.count(Vec::new()),
                )
            })
            .await;
            assert_eq!(before.expect("count before"), 0, "round {round}");
            assert_eq!(size.expect("size"), 12, "round {round}");
            assert_eq!(after.expect("count after"), 0, "round {round}");
        }
    });
}

#[cfg(target_os = "linux")]
#[test]
fn a_thousand_calls_leave_no_descriptor_behind() {
    one_at_a_time(async {
        let (_server, client) = spawn_server().await;
        let file = Handle::from(temp_file("twelve bytes"));
        // Warm up: the connection's own descriptors are open after the first calls.
        for _ in 0..10 {
            assert_eq!(
                within(client.size(file.try_clone().unwrap()))
                    .await
                    .unwrap(),
                12
            );
            let _ = within(client.pipe_with("x".into())).await.unwrap();
        }
        let (mine, theirs) = (open_fds(), within(client.open_fds()).await.unwrap());
        for _ in 0..500 {
            assert_eq!(
                within(client.size(file.try_clone().unwrap()))
                    .await
                    .unwrap(),
                12
            );
            let handle = within(client.pipe_with("y".into())).await.unwrap();
            assert_eq!(read_to_string(handle), "y");
        }
        support::until_counts((mine, theirs), || async {
            (open_fds(), client.open_fds().await.unwrap())
        })
        .await;
    });
}

#[test]
fn more_handles_than_a_frame_carries_fail_the_call_unsent() {
    one_at_a_time(async {
        let (_server, client) = spawn_server().await;
        let file = Handle::from(temp_file("x"));
        let handles =
            |n: usize| -> Vec<Handle> { (0..n).map(|_| file.try_clone().unwrap()).collect() };
        assert_eq!(within(client.count(handles(64))).await.unwrap(), 64);
        let err = within(client.count(handles(65))).await.unwrap_err();
        assert_eq!(err.kind(), ferry::ErrorKind::Encode, "{err}");
        assert!(
            support::chain(&err).contains("more than 64 handles"),
            "{err:#}"
        );
        // The connection is still fine.
        assert_eq!(within(client.count(handles(1))).await.unwrap(), 1);
    });
}
