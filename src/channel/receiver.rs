//! [`Receiver`]: the one receiving end of a channel, which owns its endpoint.

use std::fmt;

use ferry_transport::ToName;
use tokio::sync::mpsc;

use crate::channel::service::ChannelService;
use crate::channel::{ChannelOptions, Item};
use crate::error::Error;
use crate::server::{Server, ShutdownHandle};

/// The receiving end of a channel of `T`, from [`bind`](crate::channel::bind).
///
/// It owns the channel's endpoint: dropping it (or [`close`](Receiver::close)) removes the
/// endpoint and fails every further send with [`ErrorKind::Closed`](crate::ErrorKind::Closed).
///
/// ```no_run
/// # async fn demo() -> Result<(), ferry::Error> {
/// let mut rx = ferry::channel::bind::<(u32, String)>("myapp.tasks").await?;
/// while let Some((id, task)) = rx.recv().await {
///     println!("{id}: {task}");
/// }
/// # Ok(()) }
/// ```
pub struct Receiver<T> {
    queue: mpsc::Receiver<T>,
    address: String,
    capacity: usize,
    shutdown: ShutdownHandle,
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("item", &std::any::type_name::<T>())
            .field("address", &self.address)
            .field("capacity", &self.capacity)
            .field("queued", &self.queue.len())
            .finish()
    }
}

impl<T: Item> Receiver<T> {
    pub(crate) async fn bind(name: impl ToName, options: &ChannelOptions) -> Result<Self, Error> {
        let (tx, queue) = mpsc::channel(options.capacity);
        let bound = Server::with_options(options.server.clone())
            .serve_reserved(ChannelService::new(tx))
            .bind(name)
            .await?;
        let address = bound.address();
        let shutdown = bound.shutdown_handle();
        tokio::spawn(async move {
            if let Err(err) = bound.run().await {
                tracing::warn!(error = %crate::ErrorChain::new(&err), "channel endpoint stopped");
            }
        });
        Ok(Receiver {
            queue,
            address,
            capacity: options.capacity,
            shutdown,
        })
    }
}

impl<T> Receiver<T> {
    /// Waits for the next item.
    ///
    /// Returns `None` only after [`close`](Receiver::close), once every queued item has been
    /// received: senders going away do not end the channel, since new ones may connect.
    /// Cancel-safe: dropping the future loses no item.
    ///
    /// ```no_run
    /// # async fn demo(mut rx: ferry::channel::Receiver<u64>) {
    /// if let Some(n) = rx.recv().await {
    ///     println!("got {n}");
    /// }
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Option<T> {
        self.queue.recv().await
    }

    /// Waits for the next item, blocking this thread; the same contract as
    /// [`recv`](Receiver::recv).
    ///
    /// Works from any thread without an async runtime (the receiver may have been bound by
    /// [`bind_blocking`](crate::channel::bind_blocking) or on a runtime that is still running).
    ///
    /// # Panics
    ///
    /// When called on a thread that drives async tasks (inside `async` code); use [`recv`](Receiver::recv) there.
    /// Plain threads and `tokio::task::spawn_blocking` threads are fine.
    ///
    /// ```no_run
    /// # fn demo(mut rx: ferry::channel::Receiver<u64>) {
    /// let handle = std::thread::spawn(move || rx.recv_blocking());
    /// # }
    /// ```
    pub fn recv_blocking(&mut self) -> Option<T> {
        self.queue.blocking_recv()
    }

    /// Takes the next item if one is queued right now.
    ///
    /// ```no_run
    /// # fn demo(mut rx: ferry::channel::Receiver<u64>) {
    /// while let Some(n) = rx.try_recv() {
    ///     println!("{n}");
    /// }
    /// # }
    /// ```
    pub fn try_recv(&mut self) -> Option<T> {
        self.queue.try_recv().ok()
    }

    /// Closes the channel: the endpoint goes away, new and waiting sends fail with
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed), and the items already queued can
    /// still be received; after them [`recv`](Receiver::recv) returns `None`.
    ///
    /// ```no_run
    /// # async fn demo(mut rx: ferry::channel::Receiver<u64>) {
    /// rx.close();
    /// while let Some(left) = rx.recv().await {
    ///     println!("drained {left}");
    /// }
    /// # }
    /// ```
    pub fn close(&mut self) {
        self.queue.close();
        self.shutdown.shutdown();
    }

    /// The platform address of the endpoint: a socket path or a pipe name.
    ///
    /// ```no_run
    /// # fn demo(rx: ferry::channel::Receiver<u64>) {
    /// println!("listening at {}", rx.address());
    /// # }
    /// ```
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The queue size (see [`ChannelOptions::capacity`]).
    ///
    /// ```no_run
    /// # fn demo(rx: ferry::channel::Receiver<u64>) {
    /// assert_eq!(rx.capacity(), 64);
    /// # }
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.queue.close();
        self.shutdown.shutdown();
    }
}
