//! Typed channels between processes: a bounded queue that feels like a thread channel.
//!
//! One process binds a name and gets a [`Receiver<T>`]; any number of processes connect to
//! that name and get a [`Sender<T>`]. Items travel as ferry calls, so a channel has the same
//! endpoint rules, security defaults and payload formats as any ferry service.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferry::Error> {
//! // In the receiving process:
//! let mut jobs = ferry::channel::bind::<String>("myapp.jobs").await?;
//!
//! // In any number of sending processes:
//! let tx = ferry::channel::connect::<String>("myapp.jobs").await?;
//! tx.send("resize photo.jpg".to_owned()).await?;
//!
//! // Back in the receiver:
//! while let Some(job) = jobs.recv().await {
//!     println!("{job}");
//! }
//! # Ok(()) }
//! ```
//!
//! # Delivery
//!
//! [`Sender::send`] returns once the item sits in the receiver's bounded queue: the call's
//! reply *is* the acknowledgement, so an `Ok` item is never lost and never delivered twice.
//! While the queue is full, `send` waits (backpressure reaches every sending process).
//! Items sent one after another from one task arrive in that order; items sent at the same
//! time from different tasks or processes interleave in no defined order.
//!
//! # Lifetime
//!
//! The receiver decides when the channel ends: dropping it, or calling
//! [`Receiver::close`], removes the endpoint and makes every further `send` fail with
//! [`ErrorKind::Closed`](crate::ErrorKind::Closed). The senders do not: when all of them are
//! gone the receiver keeps waiting, because new senders may connect at any time. So
//! [`Receiver::recv`] returns `None` only after [`Receiver::close`], once the queue is drained.
//!
//! # Types
//!
//! The handshake of every sender carries `std::any::type_name::<T>()`; a `Sender<u32>`
//! cannot connect to a `Receiver<String>` (it fails with
//! [`ErrorKind::ServiceMismatch`](crate::ErrorKind::ServiceMismatch)). The check compares
//! type *names*: two builds whose `T` has the same path but a different shape are not told
//! apart, and compilers are free to print a name differently, so build both sides with the
//! same compiler and the same definition of `T`.
//!
//! # Without an async runtime
//!
//! [`bind_blocking`], [`connect_blocking`], [`Sender::send_blocking`] and
//! [`Receiver::recv_blocking`] work from plain threads. They share one small internal tokio
//! runtime (one worker thread named `ferry-blocking`, started on first use and kept for the
//! life of the process) that drives the sockets; the calling thread blocks.

mod options;
mod receiver;
mod sender;
mod service;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use ferry_transport::ToName;

pub use options::ChannelOptions;
pub use receiver::Receiver;
pub use sender::Sender;

/// What an item type must be to travel through a channel.
///
/// Implemented for every `Serialize + DeserializeOwned + Send + 'static` type.
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Job {
///     id: u64,
///     path: String,
/// }
///
/// fn travels<T: ferry::channel::Item>() {}
/// travels::<Job>();
/// travels::<(u32, Vec<u8>)>();
/// ```
pub trait Item: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Item for T {}

/// Binds `name` and returns the receiving end of a channel of `T`, with the default
/// [`ChannelOptions`] (a queue of 64 items).
///
/// Must be called inside a tokio runtime; the channel's endpoint is served by a task on it.
/// Fails when the name is invalid or taken by a live endpoint.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferry::Error> {
/// let mut numbers = ferry::channel::bind::<u64>("myapp.numbers").await?;
/// let first = numbers.recv().await;
/// # Ok(()) }
/// ```
pub async fn bind<T: Item>(name: impl ToName) -> Result<Receiver<T>, Error> {
    bind_with(name, &ChannelOptions::default()).await
}

/// Binds `name` with the given options and returns the receiving end of a channel of `T`.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferry::Error> {
/// let options = ferry::channel::ChannelOptions::new().capacity(1024);
/// let mut events = ferry::channel::bind_with::<String>("myapp.events", &options).await?;
/// # Ok(()) }
/// ```
pub async fn bind_with<T: Item>(
    name: impl ToName,
    options: &ChannelOptions,
) -> Result<Receiver<T>, Error> {
    Receiver::bind(name, options).await
}

/// Connects to the channel bound at `name` and returns a sending end, with the default
/// [`ChannelOptions`] (fail at once when no receiver is there).
///
/// Fails with [`ErrorKind::Connect`](crate::ErrorKind::Connect) when nothing listens at the
/// name, and with [`ErrorKind::ServiceMismatch`](crate::ErrorKind::ServiceMismatch) when the
/// endpoint is not a channel or carries another item type.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferry::Error> {
/// let tx = ferry::channel::connect::<u64>("myapp.numbers").await?;
/// tx.send(42).await?;
/// # Ok(()) }
/// ```
pub async fn connect<T: Item>(name: impl ToName) -> Result<Sender<T>, Error> {
    connect_with(name, &ChannelOptions::default()).await
}

/// Connects to the channel bound at `name` with the given options.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferry::Error> {
/// use std::time::Duration;
/// let options = ferry::channel::ChannelOptions::new().wait_for_receiver(Duration::from_secs(5));
/// let tx = ferry::channel::connect_with::<u64>("myapp.numbers", &options).await?;
/// # Ok(()) }
/// ```
pub async fn connect_with<T: Item>(
    name: impl ToName,
    options: &ChannelOptions,
) -> Result<Sender<T>, Error> {
    Sender::connect(name, options).await
}

/// [`bind_with`] for code without an async runtime: the endpoint is served by ferry's
/// internal runtime thread (see the [module docs](self#without-an-async-runtime)).
///
/// # Errors
///
/// Besides those of [`bind_with`]: [`ErrorKind::Usage`](crate::ErrorKind::Usage) when called
/// on a thread that drives async tasks (inside `async` code); use [`bind_with`] there. Plain
/// threads and `tokio::task::spawn_blocking` threads are fine.
///
/// ```no_run
/// let options = ferry::channel::ChannelOptions::new();
/// let mut rx = ferry::channel::bind_blocking::<String>("myapp.log", &options)?;
/// while let Some(line) = rx.recv_blocking() {
///     println!("{line}");
/// }
/// # Ok::<(), ferry::Error>(())
/// ```
pub fn bind_blocking<T: Item>(
    name: impl ToName,
    options: &ChannelOptions,
) -> Result<Receiver<T>, Error> {
    crate::blocking::block_on(Receiver::bind(name, options))
}

/// [`connect_with`] for code without an async runtime: the connection is driven by ferry's
/// internal runtime thread (see the [module docs](self#without-an-async-runtime)).
///
/// # Errors
///
/// Besides those of [`connect_with`]: [`ErrorKind::Usage`](crate::ErrorKind::Usage) when called
/// on a thread that drives async tasks (inside `async` code); use [`connect_with`] there. Plain
/// threads and `tokio::task::spawn_blocking` threads are fine.
///
/// ```no_run
/// let options = ferry::channel::ChannelOptions::new();
/// let tx = ferry::channel::connect_blocking::<String>("myapp.log", &options)?;
/// tx.send_blocking("hello".to_owned())?;
/// # Ok::<(), ferry::Error>(())
/// ```
pub fn connect_blocking<T: Item>(
    name: impl ToName,
    options: &ChannelOptions,
) -> Result<Sender<T>, Error> {
    crate::blocking::block_on(Sender::connect(name, options))
}
