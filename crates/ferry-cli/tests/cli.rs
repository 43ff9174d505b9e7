//! The `ferry` command end to end: a server started here, the command run as a child
//! process against it.

use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ferry::Streaming;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum State {
    Queued,
    Running,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub name: String,
    pub owner: String,
    pub state: State,
}

#[ferry::service]
pub trait Jobs {
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> i64;
    /// A job by id.
    async fn job(&self, id: u64) -> Job;
    /// Always fails on the server (its handler panics).
    async fn fail(&self);
    /// Counts from 0 up to `n`.
    async fn count(&self, n: u32) -> Streaming<u32>;
    /// Counts from 0 up to `n`, or refuses to count to 0.
    async fn count_some(&self, n: u32) -> Result<Streaming<u32>, String>;
}

struct JobsImpl;

impl Jobs for JobsImpl {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn job(&self, id: u64) -> Job {
        Job {
            name: format!("job-{id}"),
            owner: "root".into(),
            state: State::Running,
        }
    }

    async fn fail(&self) {
        panic!("this handler always fails");
    }

    async fn count(&self, n: u32) -> Streaming<u32> {
        Streaming::from_iter(0..n)
    }

    async fn count_some(&self, n: u32) -> Result<Streaming<u32>, String> {
        if n == 0 {
            return Err("nothing to count".into());
        }
        Ok(Streaming::from_iter(0..n))
    }
}

fn unique_name(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "ferry-cli-test-{what}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts a Jobs server on a fresh name; it runs until the test's runtime ends.
async fn start() -> String {
    let name = unique_name("srv");
    let bound = ferry::Server::new()
        .serve(JobsServer::new(JobsImpl))
        .bind(name.as_str())
        .await
        .expect("bind");
    tokio::spawn(bound.run());
    name
}

/// Runs `ferry args...` (killed if it takes more than 60 s).
async fn ferry(args: &[&str]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("ferry did not finish within 60 s")
        .expect("ferry runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).replace("\r\n", "\n")
}

/// Asserts the exit code, showing the output when it differs.
fn assert_code(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_shows_a_live_server_with_its_pid_and_services() {
    let name = start().await;
    let output = ferry(&["list", &name]).await;
    assert_code(&output, 0);
    let out = stdout(&output);
    let line = out
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{out}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        columns,
        [
            name.as_str(),
            "live",
            &std::process::id().to_string(),
            "Jobs"
        ]
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn list_scans_the_runtime_directory_live_and_stale() {
    let name = start().await;
    // A socket file nobody serves any more.
    let stale = unique_name("stale");
    let path = ferry::Name::new(&stale).unwrap().address();
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind a socket"));
    let output = ferry(&["list"]).await;
    let _ = std::fs::remove_file(&path);
    assert_code(&output, 0);
    let out = stdout(&output);
    let row = |n: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(n))
            .unwrap_or_else(|| panic!("no line for {n} in:\n{out}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        row(&name)[1..],
        ["live", &std::process::id().to_string(), "Jobs"]
    );
    assert_eq!(row(&stale)[1..], ["stale", "-", "-"]);
}

#[cfg(windows)]
#[tokio::test(flavor = "multi_thread")]
async fn list_scans_the_pipes_for_ferry_servers() {
    let name = start().await;
    let output = ferry(&["list"]).await;
    if std::env::var_os("FERRY_UNDER_WINE").is_some() {
        // Wine cannot enumerate \\.\pipe\ (FindFirstFile fails with "bad device type"):
        // the scan must say so and point at `ferry list NAME...`, which works there.
        assert_code(&output, 7);
        assert!(
            stderr(&output).contains("ferry list NAME"),
            "{}",
            stderr(&output)
        );
        return;
    }
    assert_code(&output, 0);
    let out = stdout(&output);
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{out}"));
    assert!(line.contains("live"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_shows_methods_and_types() {
    let name = start().await;
    let output = ferry(&["describe", &name]).await;
    assert_code(&output, 0);
    let out = stdout(&output);
    for expected in [
        &format!("server pid {}", std::process::id()),
        "service Jobs (signature 0x",
        "0  add(i64, i64) -> i64   [0x72fa60253074a7b8]",
        "1  job(u64) -> Job",
        "2  fail() -> ()",
        "3  count(u32) -> Stream<u32>",
        "4  count_some(u32) -> Result<Stream<u32>, string>",
        "struct Job { name: string, owner: string, state: State }",
        "enum State { Queued, Running }",
        "service ferry.introspect",
    ] {
        assert!(out.contains(expected), "{expected:?} missing in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn call_prints_the_reply_as_json() {
    let name = start().await;
    let output = ferry(&["call", &name, "Jobs.add", "[40, 2]"]).await;
    assert_code(&output, 0);
    assert_eq!(stdout(&output), "42\n");

    let output = ferry(&["call", &name, "Jobs.job", "[7]"]).await;
    assert_code(&output, 0);
    let reply: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(
        reply,
        serde_json::json!({"name": "job-7", "owner": "root", "state": "Running"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn call_prints_a_stream_as_json_lines() {
    let name = start().await;
    let output = ferry(&["call", &name, "Jobs.count", "[3]"]).await;
    assert_code(&output, 0);
    assert_eq!(stdout(&output), "0\n1\n2\n");
    // A stream after a result: the error when the method refuses, the items otherwise.
    let output = ferry(&["call", &name, "Jobs.count_some", "[0]"]).await;
    assert_code(&output, 0);
    assert_eq!(stdout(&output), "{\"Err\":\"nothing to count\"}\n");
    let output = ferry(&["call", &name, "Jobs.count_some", "[2]"]).await;
    assert_code(&output, 0);
    assert_eq!(stdout(&output), "0\n1\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_error_exits_1() {
    let name = start().await;
    let output = ferry(&["call", &name, "Jobs.fail"]).await;
    assert_code(&output, 1);
    assert!(stderr(&output).contains("INTERNAL"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_usage_exits_2() {
    let output = ferry(&["call"]).await;
    assert_code(&output, 2);
    let output = ferry(&["call", "some.name", "nodot"]).await;
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("is not `Service.method`"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_endpoint_exits_3() {
    let nobody = unique_name("nobody");
    let output = ferry(&["call", &nobody, "Jobs.add", "[1, 2]"]).await;
    assert_code(&output, 3);
    assert!(
        stderr(&output).contains("no server at"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_service_or_method_exits_4() {
    let name = start().await;
    let output = ferry(&["call", &name, "Jobs.nope", "[]"]).await;
    assert_code(&output, 4);
    assert!(
        stderr(&output)
            .contains("service `Jobs` has no method `nope`; its methods are add, job, fail, count"),
        "{}",
        stderr(&output)
    );
    let output = ferry(&["call", &name, "Nope.add", "[]"]).await;
    assert_code(&output, 4);
    assert!(
        stderr(&output).contains("no service `Nope`") && stderr(&output).contains("Jobs"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_exit_5_and_say_where() {
    let name = start().await;
    let output = ferry(&["call", &name, "Jobs.add", "[1,"]).await;
    assert_code(&output, 5);
    assert!(
        stderr(&output).contains("not valid JSON"),
        "{}",
        stderr(&output)
    );

    let output = ferry(&["call", &name, "Jobs.add", r#"["one", 2]"#]).await;
    assert_code(&output, 5);
    let err = stderr(&output);
    assert!(err.contains("`argument 0`: expected"), "{err}");
    assert!(err.contains("found"), "{err}");
    assert!(err.contains("add(i64, i64) -> i64"), "{err}");

    let output = ferry(&["call", &name, "Jobs.add", "[1]"]).await;
    assert_code(&output, 5);
    assert!(
        stderr(&output).contains("an array of 2 arguments"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ping_measures_round_trips_with_ping_frames() {
    let name = start().await;
    let output = ferry(&["ping", &name, "--count", "3"]).await;
    assert_code(&output, 0);
    let out = stdout(&output);
    assert_eq!(out.matches("(PING frame)").count(), 3, "{out}");
    assert!(out.contains("3 round trips: min "), "{out}");
    assert!(
        out.contains(&format!("server pid {}", std::process::id())),
        "{out}"
    );
}
