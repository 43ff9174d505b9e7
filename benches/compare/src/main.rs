//! ferry-compare: measures ferry against a hand-written tokio Unix socket echo ("raw") and
//! tarpc, on the same echo workloads, in one run, with servers in child processes.
//!
//! ```text
//! cargo run --release -p ferry-compare -- --quick     # under a minute
//! cargo run --release -p ferry-compare                # the full run, a few minutes
//! cargo run --release -p ferry-compare -- --help
//! ```
//!
//! It prints a table with ratios to raw and writes `target/ferry-bench/compare.json`.

#[cfg(unix)]
mod echo;
#[cfg(unix)]
mod ferry_echo;
#[cfg(unix)]
mod options;
#[cfg(unix)]
mod raw;
#[cfg(unix)]
mod report;
#[cfg(unix)]
mod run;
#[cfg(unix)]
mod scenario;
#[cfg(unix)]
mod server;
#[cfg(unix)]
mod shared;
#[cfg(unix)]
mod tarpc_echo;

use std::process::ExitCode;

#[cfg(unix)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(server::SERVE_ROLE) {
        return server::serve_main(&args[1..]);
    }
    let options = match options::Options::parse(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{}", options::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("ferry-compare: {message}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    match run::run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ferry-compare: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(unix))]
fn main() -> ExitCode {
    eprintln!("ferry-compare measures the Unix transport; it runs on Unix only");
    ExitCode::FAILURE
}
