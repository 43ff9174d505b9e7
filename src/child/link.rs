//! The child's side of a link: [`connect_parent`].

use ferry_transport::Stream;

use crate::child::{PARENT_ENDPOINT_ENV, PARENT_FD_ENV, PARENT_PID_ENV};
use crate::error::{Error, ErrorKind};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The parent's process id, where the standard library can tell it.
fn parent_pid() -> Option<u32> {
    #[cfg(unix)]
    {
        Some(std::os::unix::process::parent_id())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Checks that the link in the environment was made for this process, not inherited
/// from a parent that is itself a linked child.
fn check_meant_for_us() -> Result<(), Error> {
    let (Some(meant), Some(actual)) = (var(PARENT_PID_ENV), parent_pid()) else {
        return Ok(());
    };
    if meant.trim() == actual.to_string() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Connect,
            format!(
                "the parent link in the environment was made by process {meant}, but this process's parent is {actual}"
            ),
        ))
    }
}

/// Whether this process was spawned by [`spawn`](crate::child::spawn) and has a link to
/// take with [`connect_parent`].
///
/// ```no_run
/// # async fn demo() -> Result<(), ferry::Error> {
/// if ferry::child::has_parent_link() {
///     let link = ferry::child::connect_parent().await?;
///     # drop(link);
/// }
/// # Ok(()) }
/// ```
pub fn has_parent_link() -> bool {
    (var(PARENT_FD_ENV).is_some() && cfg!(unix) || var(PARENT_ENDPOINT_ENV).is_some())
        && check_meant_for_us().is_ok()
}

/// In a child spawned by [`spawn`](crate::child::spawn): the stream to the parent.
///
/// Call it once, inside a tokio runtime (a second call fails). Fails with
/// [`ErrorKind::Connect`](crate::ErrorKind::Connect) when this process has no parent link
/// (it was not spawned that way, or the link was meant for its parent), or the link cannot
/// be taken.
///
/// ```no_run
/// # #[ferry::service] pub trait Work { async fn square(&self, n: u64) -> u64; }
/// # struct Worker;
/// # impl Work for Worker { async fn square(&self, n: u64) -> u64 { n * n } }
/// # async fn demo() -> Result<(), ferry::Error> {
/// let link = ferry::child::connect_parent().await?;
/// ferry::Server::new().serve(WorkServer::new(Worker)).serve_stream(link).await;
/// # Ok(()) }
/// ```
pub async fn connect_parent() -> Result<Stream, Error> {
    check_meant_for_us()?;
    #[cfg(unix)]
    if let Some(fd) = var(PARENT_FD_ENV) {
        return super::inherit::connect(&fd);
    }
    if let Some(address) = var(PARENT_ENDPOINT_ENV) {
        return super::named::connect(&address).await;
    }
    Err(Error::new(
        ErrorKind::Connect,
        format!(
            "no parent link: this process was not spawned by ferry::child::spawn ({PARENT_FD_ENV} and {PARENT_ENDPOINT_ENV} are unset)"
        ),
    ))
}
