//! The echo example: one server, many client processes, every reply checked byte for byte.
//!
//! ```text
//! cargo run --release --example echo                      # server + 8 client processes x 8 tasks
//! cargo run --release --example echo -- --clients-processes 4 --tasks 16 --calls 500 --payload 65536
//! cargo run --release --example echo -- --serve my.echo   # terminal 1: a server until Ctrl-C
//! cargo run --release --example echo -- --connect my.echo # terminal 2: clients against it
//! ```
//!
//! Every client task has its own connection and makes `--calls` calls with payload sizes
//! varying from 0 to `--payload` bytes. The last line reads
//! `echo: <clients> clients, <calls> calls, <errors> errors, <ops> calls/s, p50 <us> us, p99 <us> us`,
//! and the exit status is non-zero when any call failed or any reply differed.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The service: returns what it is sent.
#[ferry::service]
pub trait Echo {
    /// Returns `data` unchanged.
    async fn echo(&self, data: Bytes) -> Bytes;
}

struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(&self, data: Bytes) -> Bytes {
        data
    }
}

const USAGE: &str = "usage: echo [--clients-processes N] [--tasks N] [--calls N] [--payload BYTES]
            [--serve NAME | --connect NAME]

  (no --serve/--connect)  start a server and N client processes against it (default)
  --serve NAME            only serve NAME until Ctrl-C
  --connect NAME          only run clients against the server at NAME
  --clients-processes N   client processes (default 8)
  --tasks N               concurrent tasks per process, each with its own connection (default 8)
  --calls N               calls per task (default 1000)
  --payload BYTES         largest payload; sizes vary from 0 to it (default 4096)";

#[derive(Clone, Debug)]
struct Args {
    processes: usize,
    tasks: usize,
    calls: usize,
    payload: usize,
    serve: Option<String>,
    connect: Option<String>,
    /// Internal: this process is a client started by the parent; print raw results.
    child: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        processes: 8,
        tasks: 8,
        calls: 1000,
        payload: 4096,
        serve: None,
        connect: None,
        child: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |flag: &str, text: String| {
            text.parse::<usize>()
                .map_err(|_| format!("{flag} takes a whole number, not {text:?}"))
        };
        match flag.as_str() {
            "--clients-processes" => args.processes = number(&flag, value(&flag)?)?,
            "--tasks" => args.tasks = number(&flag, value(&flag)?)?,
            "--calls" => args.calls = number(&flag, value(&flag)?)?,
            "--payload" => args.payload = number(&flag, value(&flag)?)?,
            "--serve" => args.serve = Some(value(&flag)?),
            "--connect" => args.connect = Some(value(&flag)?),
            "--child" => args.child = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.serve.is_some() && args.connect.is_some() {
        return Err("--serve and --connect exclude each other".into());
    }
    if args.processes == 0 || args.tasks == 0 {
        return Err("--clients-processes and --tasks must be at least 1".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("echo: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("echo: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        if let Some(name) = &args.serve {
            serve(name).await
        } else if let Some(name) = &args.connect {
            connect(name, &args).await
        } else {
            run_all(&args).await
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("echo: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `--serve NAME`: a server until Ctrl-C.
async fn serve(name: &str) -> Result<bool, String> {
    let server = bind(name).await?;
    server
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|err| err.to_string())?;
    Ok(true)
}

async fn bind(name: &str) -> Result<ferry::BoundServer, String> {
    let server = ferry::Server::new()
        .serve(EchoServer::new(EchoImpl))
        .bind(name)
        .await
        .map_err(|err| format!("cannot serve {name}: {err:#}"))?;
    println!("listening on {}", server.address());
    Ok(server)
}

/// The default: a server here, client processes re-running this binary.
async fn run_all(args: &Args) -> Result<bool, String> {
    let name = format!("ferry-echo-{}", std::process::id());
    let server = bind(&name).await?;
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.run());
    let exe = std::env::current_exe().map_err(|err| format!("cannot find this program: {err}"))?;
    let started = Instant::now();
    let mut children = Vec::new();
    for _ in 0..args.processes {
        let child = tokio::process::Command::new(&exe)
            .args(["--connect", &name, "--child"])
            .args(["--tasks", &args.tasks.to_string()])
            .args(["--calls", &args.calls.to_string()])
            .args(["--payload", &args.payload.to_string()])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("cannot start a client process: {err}"))?;
        children.push(child);
    }
    let mut totals = Totals::default();
    let mut failed_processes = 0;
    for mut child in children {
        let Some(stdout) = child.stdout.take() else {
            failed_processes += 1;
            continue;
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut reported = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(report) = Totals::parse(&line) {
                totals.merge(report);
                reported = true;
            }
        }
        let status = child.wait().await.map_err(|err| err.to_string())?;
        if !reported {
            // Its calls never reported back: count them all as failed.
            totals.errors += args.tasks * args.calls;
            failed_processes += 1;
        } else if !status.success() && totals.errors == 0 {
            failed_processes += 1;
        }
    }
    let elapsed = started.elapsed();
    shutdown.shutdown();
    let _ = serving.await;
    if failed_processes > 0 {
        eprintln!("echo: {failed_processes} client processes failed");
    }
    let clients = args.processes * args.tasks;
    Ok(totals.print(clients, elapsed) && failed_processes == 0)
}

/// `--connect NAME`: `--tasks` connections making `--calls` calls each.
async fn connect(name: &str, args: &Args) -> Result<bool, String> {
    // Fail with a clear message when the name is wrong or the server is not up.
    let probe = EchoClient::connect(name)
        .await
        .map_err(|err| format!("{err:#}"))?;
    drop(probe);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..args.tasks {
        let name = name.to_owned();
        let (calls, payload) = (args.calls, args.payload);
        tasks.spawn(async move { client_task(&name, task, calls, payload).await });
    }
    let mut totals = Totals::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(report) => totals.merge(report),
            Err(err) => {
                eprintln!("echo: a client task failed: {err}");
                totals.errors += args.calls;
            }
        }
    }
    if args.child {
        println!("{}", totals.encode());
        return Ok(totals.errors == 0);
    }
    Ok(totals.print(args.tasks, started.elapsed()))
}

async fn client_task(name: &str, task: usize, calls: usize, payload: usize) -> Totals {
    let mut totals = Totals::default();
    let client = match EchoClient::connect(name).await {
        Ok(client) => client,
        Err(err) => {
            eprintln!("echo: task {task}: {err:#}");
            totals.errors = calls;
            return totals;
        }
    };
    let seed = (std::process::id() as usize) ^ (task << 20);
    for call in 0..calls {
        let data = payload_for(seed, call, payload);
        let started = Instant::now();
        let result = client.echo(data.clone()).await;
        totals
            .latencies_us
            .push(started.elapsed().as_micros() as u64);
        totals.calls += 1;
        match result {
            Ok(reply) if reply == data => {}
            Ok(reply) => {
                totals.errors += 1;
                eprintln!(
                    "echo: task {task} call {call}: reply of {} bytes differs from the {} bytes sent",
                    reply.len(),
                    data.len()
                );
            }
            Err(err) => {
                totals.errors += 1;
                eprintln!("echo: task {task} call {call}: {err:#}");
            }
        }
    }
    totals
}

/// A payload of varying size (0 to `max` bytes) whose content depends on the call.
fn payload_for(seed: usize, call: usize, max: usize) -> Bytes {
    let mix = seed
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add(call.wrapping_mul(0x85EB_CA6B));
    let len = if max == 0 { 0 } else { mix % (max + 1) };
    let mut state = mix as u32 | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    Bytes::from(bytes)
}

#[derive(Default)]
struct Totals {
    calls: usize,
    errors: usize,
    latencies_us: Vec<u64>,
}

impl Totals {
    fn merge(&mut self, other: Totals) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
    }

    /// One line a child prints for its parent: `report <calls> <errors> <latency>...`.
    fn encode(&self) -> String {
        let mut line = format!("report {} {}", self.calls, self.errors);
        for latency in &self.latencies_us {
            line.push(' ');
            line.push_str(&latency.to_string());
        }
        line
    }

    fn parse(line: &str) -> Option<Totals> {
        let mut words = line.strip_prefix("report ")?.split(' ');
        let calls = words.next()?.parse().ok()?;
        let errors = words.next()?.parse().ok()?;
        let latencies_us = words
            .map(|w| w.parse().ok())
            .collect::<Option<Vec<u64>>>()?;
        Some(Totals {
            calls,
            errors,
            latencies_us,
        })
    }

    /// Prints the summary line; `true` when there were no errors.
    fn print(mut self, clients: usize, elapsed: Duration) -> bool {
        self.latencies_us.sort_unstable();
        let percentile = |p: f64| -> u64 {
            if self.latencies_us.is_empty() {
                return 0;
            }
            let index = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
            self.latencies_us[index]
        };
        let ops = self.calls as f64 / elapsed.as_secs_f64().max(1e-9);
        println!(
            "echo: {clients} clients, {} calls, {} errors, {:.0} calls/s, p50 {} us, p99 {} us",
            self.calls,
            self.errors,
            ops,
            percentile(0.50),
            percentile(0.99)
        );
        self.errors == 0
    }
}
