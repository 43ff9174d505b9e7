//! `jobsctl`: the command line client of the jobs daemon (`examples/daemon/main.rs`).
//! Plain synchronous code: no async runtime, the generated `JobsBlockingClient` parks the
//! thread for each call, and `watch` reads the daemon's stream as an iterator.
//!
//! ```text
//! jobsctl [--name NAME] submit JOB_NAME STEPS [STEP_MS]
//! jobsctl [--name NAME] status ID
//! jobsctl [--name NAME] list
//! jobsctl [--name NAME] cancel ID
//! jobsctl [--name NAME] watch ID
//! ```
//!
//! Exit status: 0 done, 1 the daemon refused (a `JobError`), 2 bad usage, 3 the call
//! failed (no daemon running, connection lost, deadline passed).

mod jobs;

use std::process::ExitCode;
use std::time::Duration;

use jobs::{JobError, JobState, JobsBlockingClient, Progress};

const USAGE: &str = "usage: jobsctl [--name NAME] submit JOB_NAME STEPS [STEP_MS] | status ID | list | cancel ID | watch ID";

/// Why a command failed, and so the exit status.
enum Failure {
    /// The command line makes no sense.
    Usage(String),
    /// The daemon answered with an application error.
    Refused(JobError),
    /// The call did not complete.
    Call(ferry::Error),
    /// A `watch` stream ended before its job did: the daemon shut down.
    Cut,
}

impl From<JobError> for Failure {
    fn from(err: JobError) -> Self {
        Failure::Refused(err)
    }
}

impl From<ferry::Error> for Failure {
    fn from(err: ferry::Error) -> Self {
        Failure::Call(err)
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut name = jobs::DEFAULT_NAME.to_owned();
    if args.first().map(String::as_str) == Some("--name") {
        if args.len() < 2 {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        name = args.remove(1);
        args.remove(0);
    }
    match run(&name, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(why)) => {
            eprintln!("jobsctl: {why}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Refused(err)) => {
            eprintln!("jobsctl: {err}");
            ExitCode::from(1)
        }
        Err(Failure::Call(err)) if err.is_connect() => {
            eprintln!("jobsctl: the jobs daemon is not running at `{name}`; start it with `cargo run --example daemon -- --name {name}`");
            eprintln!("jobsctl: ({err:#})");
            ExitCode::from(3)
        }
        Err(Failure::Call(err)) => {
            eprintln!("jobsctl: the call failed: {err:#}");
            ExitCode::from(3)
        }
        Err(Failure::Cut) => {
            eprintln!("jobsctl: the daemon stopped before the job ended");
            ExitCode::from(3)
        }
    }
}

fn run(name: &str, args: &[String]) -> Result<(), Failure> {
    let (command, rest) = args
        .split_first()
        .ok_or_else(|| Failure::Usage("no command".into()))?;
    match (command.as_str(), rest) {
        ("submit", [job, steps, more @ ..]) if more.len() <= 1 => {
            let spec = jobs::JobSpec {
                name: job.clone(),
                steps: number(steps)?,
                step_ms: more
                    .first()
                    .map(|ms| number(ms))
                    .transpose()?
                    .unwrap_or(500),
            };
            let id = connect(name)?.submit(spec)??;
            println!("submitted job {id}");
        }
        ("status", [id]) => {
            let progress = connect(name)?.status(number(id)?)??;
            println!("{}", line(&progress));
        }
        ("list", []) => {
            let jobs = connect(name)?.list()?;
            if jobs.is_empty() {
                println!("no jobs");
            }
            for progress in &jobs {
                println!("{}", line(progress));
            }
        }
        ("cancel", [id]) => {
            let progress = connect(name)?.cancel(number(id)?)??;
            println!("{}", line(&progress));
        }
        ("watch", [id]) => {
            // A stream lasts as long as the job: no call deadline on this connection.
            let client = JobsBlockingClient::connect(name)?;
            let mut last = None;
            for progress in client.watch(number(id)?)?? {
                let progress = progress?;
                println!("{}", line(&progress));
                last = Some(progress.state);
            }
            if last == Some(JobState::Running) {
                return Err(Failure::Cut);
            }
        }
        (other, _) => {
            return Err(Failure::Usage(format!(
                "bad command `{other}` or arguments"
            )))
        }
    }
    Ok(())
}

/// A blocking client for one short command, whose calls have a deadline of 10 s.
fn connect(name: &str) -> Result<JobsBlockingClient, ferry::Error> {
    let options = ferry::ClientOptions::new().timeout(Duration::from_secs(10));
    JobsBlockingClient::connect_with(name, &options)
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, Failure> {
    text.parse()
        .map_err(|_| Failure::Usage(format!("`{text}` is not a valid number")))
}

/// One line about a job, for people.
fn line(progress: &Progress) -> String {
    let Progress {
        id,
        name,
        done,
        total,
        state,
    } = progress;
    let state = match state {
        JobState::Running => "running",
        JobState::Done => "done",
        JobState::Cancelled => "cancelled",
    };
    format!("job {id} ({name}): {state}, {done}/{total} steps")
}
