//! The contract between the jobs daemon and `jobsctl`: the service trait and every type
//! that crosses the connection. Both binaries compile this one file (`mod jobs;`), so
//! they always agree; in a real project it is a small library crate both depend on.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The endpoint both sides use unless told otherwise (`--name`). A plain name: the socket
/// lives in the user's runtime directory (a named pipe on Windows).
pub const DEFAULT_NAME: &str = "ferry-example.jobs";

/// A job's number, given by the daemon.
pub type JobId = u64;

/// What to run: `steps` steps of `step_ms` milliseconds each (the demo's stand-in for
/// real work).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobSpec {
    /// A label for people.
    pub name: String,
    /// How many steps the job has.
    pub steps: u32,
    /// How long one step takes, in milliseconds.
    pub step_ms: u64,
}

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Still working.
    Running,
    /// Every step done.
    Done,
    /// Stopped by a `cancel` call.
    Cancelled,
}

/// A job's progress: sent by `status` and, on every change, by `watch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The job.
    pub id: JobId,
    /// Its label.
    pub name: String,
    /// Steps done so far.
    pub done: u32,
    /// Steps in all.
    pub total: u32,
    /// Running, done or cancelled.
    pub state: JobState,
}

/// Why the daemon refused a request: an application error, a plain serde enum. The
/// client gets it as the `Err` of the method's own `Result`, apart from `ferry::Error`
/// (which says the call itself failed: no daemon, connection lost, deadline passed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobError {
    /// No job has this number.
    NotFound(JobId),
    /// The job has ended already (done or cancelled).
    Finished(JobId),
    /// The spec is not acceptable; the text says why.
    InvalidSpec(String),
    /// The daemon runs as many jobs as it allows.
    TooManyJobs {
        /// The daemon's limit.
        limit: usize,
    },
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::NotFound(id) => write!(f, "no job {id}"),
            JobError::Finished(id) => write!(f, "job {id} has already ended"),
            JobError::InvalidSpec(why) => write!(f, "invalid job: {why}"),
            JobError::TooManyJobs { limit } => write!(f, "too many jobs running (limit {limit})"),
        }
    }
}

impl std::error::Error for JobError {}

/// The jobs daemon's service.
#[ferry::service]
pub trait Jobs {
    /// Starts a job; returns its number.
    async fn submit(&self, spec: JobSpec) -> Result<JobId, JobError>;
    /// Where a job stands now.
    async fn status(&self, id: JobId) -> Result<Progress, JobError>;
    /// Every job the daemon knows, oldest first.
    async fn list(&self) -> Vec<Progress>;
    /// Stops a running job.
    async fn cancel(&self, id: JobId) -> Result<Progress, JobError>;
    /// The job's progress now and on every change, until it ends: refused with `NotFound`
    /// before any item when there is no such job.
    async fn watch(
        &self,
        cx: &ferry::Context,
        id: JobId,
    ) -> Result<ferry::Streaming<Progress>, JobError>;
}
