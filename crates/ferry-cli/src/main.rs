//! `ferry`: list, describe, call and ping ferry servers from a shell.
//!
//! Every command talks to the `ferry.introspect` service every ferry server hosts
//! (docs/protocol.md section 11); `call` then calls the service with JSON payloads. The
//! exit codes are in [`exit`] and docs/cli.md.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod call;
mod describe;
mod exit;
mod list;
mod ping;
mod render;
mod target;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use exit::{Code, Failure};

/// Talk to ferry servers: list them, describe their services, call their methods, ping
/// them.
///
/// Exit codes: 0 success, 1 the server answered with an error, 2 bad command line,
/// 3 cannot connect (or the connection was lost), 4 unknown service or method,
/// 5 bad arguments, 6 timeout, 7 other failure, 130 interrupted (Ctrl-C).
#[derive(Debug, Parser)]
#[command(name = "ferry", version)]
struct Cli {
    /// Seconds to wait for a server to connect and to answer (a reply stream is not
    /// bounded).
    #[arg(long, global = true, default_value_t = 10.0, value_name = "SECONDS")]
    timeout: f64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Endpoints in the runtime directory (on Windows, the machine's pipes that answer as
    /// ferry servers): live or stale, server pid, services.
    List {
        /// Only these endpoints (names or paths) instead of every one.
        names: Vec<String>,
    },
    /// The services, methods and schemas of the server at NAME.
    Describe {
        /// The endpoint: a plain name (`myapp.calc`), a socket path or a pipe name.
        name: String,
    },
    /// Calls a method with JSON arguments and prints the reply as JSON (a reply stream as
    /// JSON lines, until it ends or Ctrl-C).
    Call {
        /// The endpoint: a plain name, a socket path or a pipe name.
        name: String,
        /// `Service.method`, for example `Calc.add`.
        method: String,
        /// The arguments: a JSON array with one element per argument, e.g. `[1, 2]`.
        #[arg(default_value = "[]")]
        args: String,
    },
    /// Connects and measures the handshake and round trips (PING frames; a call to
    /// `ferry.introspect` against a protocol version 1 server).
    Ping {
        /// The endpoint: a plain name, a socket path or a pipe name.
        name: String,
        /// How many round trips.
        #[arg(long, short = 'c', default_value_t = 4)]
        count: u32,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(Code::Usage as u8)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ferry: cannot start the async runtime: {err}");
            return ExitCode::from(Code::Other as u8);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("ferry: {}", failure.message);
            ExitCode::from(failure.code as u8)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if !(cli.timeout.is_finite() && cli.timeout > 0.0) {
        return Err(Failure::new(
            Code::Usage,
            format!(
                "--timeout must be a positive number of seconds, not {}",
                cli.timeout
            ),
        ));
    }
    let timeout = Duration::from_secs_f64(cli.timeout);
    match cli.command {
        Command::List { names } => list::run(&names, timeout).await,
        Command::Describe { name } => describe::run(&name, timeout).await,
        Command::Call { name, method, args } => call::run(&name, &method, &args, timeout).await,
        Command::Ping { name, count } => ping::run(&name, count, timeout).await,
    }
}
