//! Typed channels: many sender processes, one receiver, bounded, typed errors, blocking API.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry::channel::{self, ChannelOptions};

/// Selects the role of a re-run of this test binary (unset in the parent).
const ROLE_ENV: &str = "FERRY_CHANNEL_TEST_ROLE";
const LIMIT: Duration = Duration::from_secs(60);

fn unique_name(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "chan-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Kills every child still running when the test leaves, on any path.
struct Children(Vec<Child>);

impl Children {
    /// Waits for every child to exit and asserts that each succeeded.
    fn wait_success(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for child in &mut self.0 {
            loop {
                match child.try_wait().expect("try_wait") {
                    Some(status) => {
                        assert!(status.success(), "sender process failed: {status}");
                        break;
                    }
                    None if Instant::now() > deadline => panic!("sender process did not finish"),
                    None => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The entry point of the sender processes; a no-op in a normal test run.
///
/// Role `send:<name>:<sender>:<count>` sends `(sender, 0..count)` to the channel at `name`.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let parts: Vec<&str> = role.split(':').collect();
    let ["send", name, sender, count] = parts[..] else {
        panic!("unknown role {role:?}");
    };
    let sender: u32 = sender.parse().expect("sender id");
    let count: u32 = count.parse().expect("count");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let options = ChannelOptions::new().wait_for_receiver(Duration::from_secs(20));
        let tx = tokio::time::timeout(LIMIT, channel::connect_with::<(u32, u32)>(name, &options))
            .await
            .expect("connect in time")
            .expect("connect");
        for seq in 0..count {
            tokio::time::timeout(LIMIT, tx.send((sender, seq)))
                .await
                .expect("send in time")
                .expect("send");
        }
    });
}

fn spawn_sender(name: &str, sender: u32, count: u32) -> Child {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, format!("send:{name}:{sender}:{count}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn a sender process")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_sender_processes_lose_and_duplicate_nothing() {
    const SENDERS: u32 = 8;
    const COUNT: u32 = 300;
    let name = unique_name("many");
    // A small queue, so the senders spend most of the run waiting for room.
    let options = ChannelOptions::new().capacity(16);
    let mut rx = channel::bind_with::<(u32, u32)>(name.as_str(), &options)
        .await
        .expect("bind");
    let mut children = Children(
        (0..SENDERS)
            .map(|sender| spawn_sender(&name, sender, COUNT))
            .collect(),
    );

    let mut next: HashMap<u32, u32> = HashMap::new();
    for _ in 0..SENDERS * COUNT {
        let (sender, seq) = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .expect("an item in time")
            .expect("the channel is open");
        assert!(sender < SENDERS, "unknown sender {sender}");
        let expected = next.entry(sender).or_insert(0);
        // Per-sender order, no gap (loss) and no repeat (duplicate).
        assert_eq!(
            seq, *expected,
            "sender {sender}: got {seq}, expected {expected}"
        );
        *expected += 1;
    }
    tokio::task::block_in_place(|| children.wait_success(LIMIT));
    assert_eq!(next.len(), SENDERS as usize);
    assert!(next.values().all(|&n| n == COUNT), "{next:?}");
    assert!(rx.try_recv().is_none(), "nothing beyond what was sent");
}

#[tokio::test]
async fn sending_to_a_dropped_receiver_is_a_closed_error() {
    let name = unique_name("dropped");
    let rx = channel::bind::<String>(name.as_str()).await.expect("bind");
    let tx = channel::connect::<String>(name.as_str())
        .await
        .expect("connect");
    tokio::time::timeout(LIMIT, tx.send("first".into()))
        .await
        .expect("in time")
        .expect("the receiver is there");
    drop(rx);
    let err = tokio::time::timeout(LIMIT, tx.send("second".into()))
        .await
        .expect("in time")
        .expect_err("the receiver is gone");
    assert!(err.is_closed(), "{err:?}");
    let err = tokio::time::timeout(LIMIT, tx.send("third".into()))
        .await
        .expect("in time")
        .expect_err("still gone");
    assert!(err.is_closed(), "{err:?}");
}

#[tokio::test]
async fn close_drains_the_queue_then_ends() {
    let name = unique_name("close");
    let mut rx = channel::bind::<u64>(name.as_str()).await.expect("bind");
    let tx = channel::connect::<u64>(name.as_str())
        .await
        .expect("connect");
    for n in 0..3 {
        tokio::time::timeout(LIMIT, tx.send(n))
            .await
            .expect("in time")
            .expect("send");
    }
    rx.close();
    let err = tokio::time::timeout(LIMIT, tx.send(99))
        .await
        .expect("in time")
        .expect_err("closed");
    assert!(err.is_closed(), "{err:?}");
    let mut drained = Vec::new();
    while let Some(n) = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("in time")
    {
        drained.push(n);
    }
    assert_eq!(drained, [0, 1, 2]);
}

#[tokio::test]
async fn a_full_queue_holds_the_sender_back() {
    let name = unique_name("full");
    let options = ChannelOptions::new().capacity(2);
    let mut rx = channel::bind_with::<u32>(name.as_str(), &options)
        .await
        .expect("bind");
    let tx = channel::connect::<u32>(name.as_str())
        .await
        .expect("connect");
    for n in 0..2 {
        tokio::time::timeout(LIMIT, tx.send(n))
            .await
            .expect("in time")
            .expect("send");
    }
    let mut third = Box::pin(tx.send(2));
    // The queue is full: the third send stays unanswered.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut third)
            .await
            .is_err(),
        "a send into a full queue completed"
    );
    assert_eq!(rx.recv().await, Some(0));
    tokio::time::timeout(LIMIT, third)
        .await
        .expect("room was made")
        .expect("send");
    assert_eq!(rx.recv().await, Some(1));
    assert_eq!(rx.recv().await, Some(2));
}

#[tokio::test]
async fn a_sender_of_another_type_is_refused_at_connect() {
    let name = unique_name("types");
    let _rx = channel::bind::<String>(name.as_str()).await.expect("bind");
    let err = channel::connect::<u32>(name.as_str())
        .await
        .expect_err("u32 is not String");
    assert!(err.is_service_mismatch(), "{err:?}");
    let message = ferry::ErrorChain::new(&err).to_string();
    assert!(message.contains("u32"), "{message}");
    assert!(message.contains("string"), "{message}");
}

#[test]
fn blocking_send_and_recv_from_plain_threads() {
    const THREADS: u32 = 4;
    const COUNT: u32 = 100;
    let name = unique_name("blocking");
    let options = ChannelOptions::new().capacity(8);
    let mut rx = channel::bind_blocking::<(u32, u32)>(name.as_str(), &options).expect("bind");

    let senders: Vec<_> = (0..THREADS)
        .map(|thread| {
            let name = name.clone();
            std::thread::spawn(move || {
                let tx =
                    channel::connect_blocking::<(u32, u32)>(name.as_str(), &ChannelOptions::new())
                        .expect("connect");
                for seq in 0..COUNT {
                    tx.send_blocking((thread, seq)).expect("send");
                }
            })
        })
        .collect();

    // Receive on a plain thread too; the test thread only waits, with a limit.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut next = HashMap::new();
        for _ in 0..THREADS * COUNT {
            let Some((thread, seq)) = rx.recv_blocking() else {
                break;
            };
            let expected: &mut u32 = next.entry(thread).or_insert(0);
            assert_eq!(seq, *expected, "thread {thread} out of order");
            *expected += 1;
        }
        let _ = done_tx.send(next);
    });
    let next = done_rx.recv_timeout(LIMIT).expect("every item in time");
    assert_eq!(next.len(), THREADS as usize);
    assert!(next.values().all(|&n| n == COUNT), "{next:?}");
    for sender in senders {
        sender.join().expect("sender thread");
    }
}
