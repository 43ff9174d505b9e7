//! A jobs daemon: runs jobs in the background and answers `jobsctl` (its command line
//! client, `examples/daemon/jobsctl.rs`) over a ferry socket. Copy the three files of this
//! folder as the start of your own daemon + CLI pair; `docs/guide.md` walks through them.
//!
//! ```text
//! cargo run --example daemon                      # terminal 1: serve until Ctrl-C
//! cargo run --example jobsctl -- submit build 5   # terminal 2: a job of 5 steps
//! cargo run --example jobsctl -- watch 1          # its progress until it ends
//! cargo run --example jobsctl -- list
//! ```
//!
//! Both take `--name NAME` to use another endpoint than `ferry-example.jobs`. Ctrl-C (or
//! SIGTERM on Unix) shuts the daemon down gracefully: it stops accepting, lets calls in
//! flight finish, ends `watch` streams cleanly, removes its socket and exits with status 0.

mod jobs;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use jobs::{JobError, JobId, JobSpec, JobState, Jobs, JobsServer, Progress};

/// How many jobs may run at once.
const MAX_RUNNING: usize = 16;

/// One job: its progress (every change is published to the `watch` receivers) and the
/// task that does the work.
struct Job {
    progress: watch::Sender<Progress>,
    task: tokio::task::AbortHandle,
}

/// The service: every job since the daemon started.
#[derive(Default)]
struct Daemon {
    jobs: Mutex<Vec<Job>>,
}

impl Daemon {
    /// The progress channel of job `id`.
    fn progress(&self, id: JobId) -> Result<watch::Sender<Progress>, JobError> {
        let jobs = self
            .jobs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let index = usize::try_from(id)
            .ok()
            .and_then(|id| id.checked_sub(1))
            .ok_or(JobError::NotFound(id))?;
        jobs.get(index)
            .map(|job| job.progress.clone())
            .ok_or(JobError::NotFound(id))
    }
}

fn check(spec: &JobSpec) -> Result<(), JobError> {
    if spec.name.trim().is_empty() {
        return Err(JobError::InvalidSpec("the name is empty".into()));
    }
    if !(1..=10_000).contains(&spec.steps) {
        let why = format!("{} steps (a job has 1 to 10000)", spec.steps);
        return Err(JobError::InvalidSpec(why));
    }
    if spec.step_ms > 60_000 {
        let why = format!("steps of {} ms (at most 60000)", spec.step_ms);
        return Err(JobError::InvalidSpec(why));
    }
    Ok(())
}

/// The work of one job: a step at a time, publishing each. Stops quietly when the job was
/// cancelled meanwhile.
async fn run_job(progress: watch::Sender<Progress>, steps: u32, step: Duration) {
    for done in 1..=steps {
        tokio::time::sleep(step).await;
        let running = progress.send_if_modified(|now| {
            if now.state != JobState::Running {
                return false;
            }
            now.done = done;
            if done == steps {
                now.state = JobState::Done;
            }
            true
        });
        if !running {
            return;
        }
    }
}

impl Jobs for Daemon {
    async fn submit(&self, spec: JobSpec) -> Result<JobId, JobError> {
        check(&spec)?;
        let mut jobs = self
            .jobs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let running = jobs
            .iter()
            .filter(|job| job.progress.borrow().state == JobState::Running)
            .count();
        if running >= MAX_RUNNING {
            return Err(JobError::TooManyJobs { limit: MAX_RUNNING });
        }
        let id = jobs.len() as JobId + 1;
        let (progress, _) = watch::channel(Progress {
            id,
            name: spec.name,
            done: 0,
            total: spec.steps,
            state: JobState::Running,
        });
        let step = Duration::from_millis(spec.step_ms);
        let task = tokio::spawn(run_job(progress.clone(), spec.steps, step)).abort_handle();
        jobs.push(Job { progress, task });
        tracing::info!(id, "job submitted");
        Ok(id)
    }

    async fn status(&self, id: JobId) -> Result<Progress, JobError> {
        Ok(self.progress(id)?.borrow().clone())
    }

    async fn list(&self) -> Vec<Progress> {
        let jobs = self
            .jobs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        jobs.iter()
            .map(|job| job.progress.borrow().clone())
            .collect()
    }

    async fn cancel(&self, id: JobId) -> Result<Progress, JobError> {
        let progress = self.progress(id)?;
        let cancelled = progress.send_if_modified(|now| {
            let running = now.state == JobState::Running;
            if running {
                now.state = JobState::Cancelled;
            }
            running
        });
        if !cancelled {
            return Err(JobError::Finished(id));
        }
        let jobs = self
            .jobs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(job) = jobs.iter().find(|job| job.progress.borrow().id == id) {
            job.task.abort();
        }
        tracing::info!(id, "job cancelled");
        let now = progress.borrow().clone();
        Ok(now)
    }

    async fn watch(
        &self,
        cx: &ferry::Context,
        id: JobId,
    ) -> Result<ferry::Streaming<Progress>, JobError> {
        let mut updates = self.progress(id)?.subscribe();
        let first = updates.borrow_and_update().clone();
        let running = first.state == JobState::Running;
        // The current progress, then each change, until the job ends.
        let changes =
            futures::stream::unfold((updates, running), |(mut updates, running)| async move {
                if !running {
                    return None;
                }
                updates.changed().await.ok()?;
                let now = updates.borrow_and_update().clone();
                let running = now.state == JobState::Running;
                Some((now, (updates, running)))
            });
        let items = futures::stream::once(async move { first }).chain(changes);
        // A daemon that shuts down ends the stream cleanly instead of cutting it.
        Ok(ferry::Streaming::new(items.take_until(cx.shutdown())))
    }
}

/// Resolves at Ctrl-C (SIGINT), or at SIGTERM on Unix (what service managers send). The
/// handlers are installed before this returns, so a signal that comes early is not lost.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(windows)]
    {
        let mut ctrl_c = tokio::signal::windows::ctrl_c()?;
        Ok(async move {
            ctrl_c.recv().await;
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ferry logs through `tracing`; RUST_LOG=ferry=debug shows every connection.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();

    let name = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => jobs::DEFAULT_NAME.to_owned(),
        [flag, name] if flag == "--name" => name.clone(),
        _ => {
            eprintln!("usage: daemon [--name NAME]");
            std::process::exit(2);
        }
    };

    let stop = shutdown_signal()?;
    let daemon = Arc::new(Daemon::default());
    let server = ferry::Server::new()
        .serve(JobsServer::from_arc(Arc::clone(&daemon)))
        .bind(name.as_str())
        .await?;
    println!("jobs daemon: listening on {}", server.address());

    // The handle can stop the server from anywhere: here, from a signal.
    let shutdown = server.shutdown_handle();
    tokio::spawn(async move {
        stop.await;
        println!("jobs daemon: shutting down");
        shutdown.shutdown();
    });
    server.run().await?;

    // Calls in flight are done; stop the jobs that still run.
    for job in daemon
        .jobs
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .iter()
    {
        job.task.abort();
    }
    println!("jobs daemon: stopped");
    Ok(())
}
