//! Child-process links: the parent spawns a copy of this test binary and calls it over the
//! link. Only the portable API is used, so the same test runs on Unix and on Windows.

use std::process::Stdio;
use std::time::Duration;

use ferry::child::{self, ChildOptions};
use ferry::{ClientOptions, Server};

/// Selects the role of a re-run of this test binary (unset in the parent).
const ROLE_ENV: &str = "FERRY_CHILD_TEST_ROLE";
const LIMIT: Duration = Duration::from_secs(30);

#[ferry::service]
trait Probe {
    /// The child's process id.
    async fn pid(&self) -> u32;
    async fn square(&self, n: u64) -> u64;
    /// Whether a second `connect_parent` is refused.
    async fn second_connect_refused(&self) -> bool;
    /// Ends the child process without replying.
    async fn quit(&self);
}

struct ProbeImpl;

impl Probe for ProbeImpl {
    async fn pid(&self) -> u32 {
        std::process::id()
    }

    async fn square(&self, n: u64) -> u64 {
        n * n
    }

    async fn second_connect_refused(&self) -> bool {
        child::connect_parent().await.is_err()
    }

    async fn quit(&self) {
        std::process::exit(0);
    }
}

/// The entry point of the child processes; a no-op in a normal test run.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    match role.as_str() {
        "serve" => {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async {
                assert!(child::has_parent_link());
                let link = child::connect_parent().await.expect("the parent link");
                Server::new()
                    .serve(ProbeServer::new(ProbeImpl))
                    .serve_stream(link)
                    .await;
            });
        }
        "exit" => {}
        other => panic!("unknown role {other:?}"),
    }
}

fn command(role: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn call_over_the_link(options: &ChildOptions) {
    let child = tokio::time::timeout(LIMIT, child::spawn_with(command("serve"), options))
        .await
        .expect("spawned in time")
        .expect("spawn with a link");
    let child_pid = child.id().expect("running");
    let (mut process, link) = child.into_parts();
    let probe = tokio::time::timeout(LIMIT, ProbeClient::from_stream(link, &ClientOptions::new()))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let pid = tokio::time::timeout(LIMIT, probe.pid())
        .await
        .expect("in time")
        .expect("pid");
    assert_eq!(pid, child_pid, "the link leads to the spawned process");
    let square = tokio::time::timeout(LIMIT, probe.square(12))
        .await
        .expect("in time")
        .expect("square");
    assert_eq!(square, 144);
    let refused = tokio::time::timeout(LIMIT, probe.second_connect_refused())
        .await
        .expect("in time")
        .expect("second connect");
    assert!(refused, "the link can be taken once");

    // Hanging up ends the child's server, and with it the child.
    drop(probe);
    let status = tokio::time::timeout(LIMIT, process.wait())
        .await
        .expect("the child exits in time")
        .expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn parent_calls_a_child_over_its_link() {
    call_over_the_link(&ChildOptions::new()).await;
}

#[tokio::test]
async fn parent_calls_a_child_over_a_named_link() {
    call_over_the_link(&ChildOptions::new().named_endpoint(true)).await;
}

#[tokio::test]
async fn calls_fail_closed_when_the_child_dies() {
    let child = tokio::time::timeout(LIMIT, child::spawn(command("serve")))
        .await
        .expect("spawned in time")
        .expect("spawn");
    let (mut process, link) = child.into_parts();
    let probe = tokio::time::timeout(LIMIT, ProbeClient::from_stream(link, &ClientOptions::new()))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let err = tokio::time::timeout(LIMIT, probe.quit())
        .await
        .expect("in time")
        .expect_err("the child exited instead of replying");
    assert!(err.is_closed(), "{err:?}");
    tokio::time::timeout(LIMIT, process.wait())
        .await
        .expect("the child exits in time")
        .expect("wait");
}

#[tokio::test]
async fn a_child_that_never_connects_fails_the_named_spawn() {
    let options = ChildOptions::new().named_endpoint(true);
    let err = tokio::time::timeout(LIMIT, child::spawn_with(command("exit"), &options))
        .await
        .expect("in time")
        .expect_err("the child exits without connecting");
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn a_process_without_a_link_cannot_connect_to_a_parent() {
    if child::has_parent_link() {
        return; // this test binary itself was started as a linked child
    }
    let err = child::connect_parent()
        .await
        .expect_err("no link in this process");
    assert!(err.is_connect(), "{err:?}");
}
