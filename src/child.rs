//! Child-process links: spawn a process with a connection to it already made, without a
//! public endpoint name.
//!
//! The parent calls [`spawn`] with a [`Command`](tokio::process::Command) and gets a
//! [`Child`]: the process and a connected [`Stream`]. The child calls [`connect_parent`]
//! once and gets the other end. Either side can then serve a service on its stream
//! ([`Server::serve_stream`](crate::Server::serve_stream)) or call one
//! (`{Trait}Client::from_stream`).
//!
//! ```no_run
//! # #[ferry::service] pub trait Work { async fn square(&self, n: u64) -> u64; }
//! # struct Worker;
//! # impl Work for Worker { async fn square(&self, n: u64) -> u64 { n * n } }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! if ferry::child::has_parent_link() {
//!     // In the child: serve the parent until it hangs up.
//!     let link = ferry::child::connect_parent().await?;
//!     ferry::Server::new().serve(WorkServer::new(Worker)).serve_stream(link).await;
//! } else {
//!     // In the parent: start a copy of this program and call it.
//!     let exe = std::env::current_exe()?;
//!     let child = ferry::child::spawn(tokio::process::Command::new(exe)).await?;
//!     let (mut process, link) = child.into_parts();
//!     let worker = WorkClient::from_stream(link, &ferry::ClientOptions::default()).await?;
//!     assert_eq!(worker.square(7).await?, 49);
//!     drop(worker);
//!     process.wait().await.ok();
//! }
//! # Ok(()) }
//! ```
//!
//! # How the link is made
//!
//! - **Unix** (default): a `socketpair`. The child's end is inherited at a descriptor
//!   named in [`PARENT_FD_ENV`]; only the spawned process inherits it (it stays
//!   close-on-exec in the parent, so processes spawned by other threads do not get it).
//! - **Windows**, and on Unix with [`ChildOptions::named_endpoint`]: a private endpoint
//!   with a random name, bound before the child starts and named in
//!   [`PARENT_ENDPOINT_ENV`]. The parent accepts one connection, from the spawned process
//!   itself when the platform reports the peer's process id, and then removes the endpoint.
//!   The child must connect within [`ChildOptions::link_timeout`].
//!
//! Either way [`spawn`] returns only once the link is connected, and [`PARENT_PID_ENV`]
//! lets the child tell a link meant for it from one its own parent inherited.
//!
//! The child's process is the parent's business: set
//! [`kill_on_drop`](tokio::process::Command::kill_on_drop) on the command, or wait for it.
//! When either process exits its end closes, and the other one's calls fail with
//! [`ErrorKind::Closed`](crate::ErrorKind::Closed).

#[cfg(unix)]
mod inherit;
mod link;
mod named;
mod options;

use std::fmt;

use ferry_transport::Stream;

use crate::error::Error;

pub use link::{connect_parent, has_parent_link};
pub use options::ChildOptions;

/// Environment variable naming the inherited socket descriptor of a Unix child link.
///
/// ```
/// // Set by `ferry::child::spawn` in the child's environment; read by `connect_parent`.
/// let linked = std::env::var_os(ferry::child::PARENT_FD_ENV).is_some();
/// # drop(linked);
/// ```
pub const PARENT_FD_ENV: &str = "FERRY_PARENT_FD";

/// Environment variable naming the private endpoint of a named child link (Windows, or
/// Unix with [`ChildOptions::named_endpoint`]).
///
/// ```
/// if let Some(address) = std::env::var_os(ferry::child::PARENT_ENDPOINT_ENV) {
///     println!("the parent listens at {address:?}");
/// }
/// ```
pub const PARENT_ENDPOINT_ENV: &str = "FERRY_PARENT_ENDPOINT";

/// Environment variable holding the parent's process id, so that a grandchild that
/// inherited the environment does not take a link meant for its parent.
///
/// ```
/// let parent = std::env::var(ferry::child::PARENT_PID_ENV).ok();
/// # drop(parent);
/// ```
pub const PARENT_PID_ENV: &str = "FERRY_PARENT_PID";

/// A spawned child process and the stream connected to it, from [`spawn`].
///
/// ```no_run
/// # async fn demo() -> Result<(), ferry::Error> {
/// let mut command = tokio::process::Command::new("my-plugin");
/// command.kill_on_drop(true);
/// let mut child = ferry::child::spawn(command).await?;
/// println!("plugin pid {:?}", child.id());
/// let (process, link) = child.into_parts();
/// # drop((process, link));
/// # Ok(()) }
/// ```
pub struct Child {
    process: tokio::process::Child,
    stream: Stream,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.process.id())
            .field("stream", &self.stream)
            .finish()
    }
}

impl Child {
    /// The child's process id, while it runs (`None` once it has been waited for).
    ///
    /// ```no_run
    /// # fn demo(child: ferry::child::Child) {
    /// if let Some(pid) = child.id() {
    ///     println!("worker {pid}");
    /// }
    /// # }
    /// ```
    pub fn id(&self) -> Option<u32> {
        self.process.id()
    }

    /// The child process, to wait for or kill it.
    ///
    /// ```no_run
    /// # async fn demo(mut child: ferry::child::Child) {
    /// child.process_mut().start_kill().ok();
    /// # }
    /// ```
    pub fn process_mut(&mut self) -> &mut tokio::process::Child {
        &mut self.process
    }

    /// The stream connected to the child.
    ///
    /// ```no_run
    /// # fn demo(child: ferry::child::Child) {
    /// println!("child link peer: {:?}", child.stream().peer_credentials());
    /// # }
    /// ```
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Splits into the process and the stream, e.g. to make a `{Trait}Client::from_stream`.
    ///
    /// ```no_run
    /// # async fn demo(child: ferry::child::Child) {
    /// let (mut process, link) = child.into_parts();
    /// drop(link); // the child reads end of stream
    /// process.wait().await.ok();
    /// # }
    /// ```
    pub fn into_parts(self) -> (tokio::process::Child, Stream) {
        (self.process, self.stream)
    }
}

/// Spawns `command` with a link to this process, with the default [`ChildOptions`].
///
/// Must be called inside a tokio runtime. Returns once the link is connected. Fails with
/// [`ErrorKind::Connect`](crate::ErrorKind::Connect) when the process cannot be started or
/// the link cannot be made (for a named link: the child exited or did not connect in
/// time; the child is then killed).
///
/// ```no_run
/// # async fn demo() -> Result<(), ferry::Error> {
/// let mut command = tokio::process::Command::new("my-worker");
/// command.arg("--serve-parent").kill_on_drop(true);
/// let child = ferry::child::spawn(command).await?;
/// # drop(child);
/// # Ok(()) }
/// ```
pub async fn spawn(command: impl Into<tokio::process::Command>) -> Result<Child, Error> {
    spawn_with(command, &ChildOptions::default()).await
}

/// Spawns `command` with a link to this process, with the given options.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferry::Error> {
/// use std::time::Duration;
/// let options = ferry::child::ChildOptions::new().link_timeout(Duration::from_secs(30));
/// let child = ferry::child::spawn_with(std::process::Command::new("my-worker"), &options).await?;
/// # drop(child);
/// # Ok(()) }
/// ```
pub async fn spawn_with(
    command: impl Into<tokio::process::Command>,
    options: &ChildOptions,
) -> Result<Child, Error> {
    let mut command = command.into();
    command.env(PARENT_PID_ENV, std::process::id().to_string());
    #[cfg(unix)]
    if !options.named {
        command.env_remove(PARENT_ENDPOINT_ENV);
        let (process, stream) = inherit::spawn(command)?;
        return Ok(Child { process, stream });
    }
    command.env_remove(PARENT_FD_ENV);
    let (process, stream) = named::spawn(command, options.link_timeout).await?;
    Ok(Child { process, stream })
}
