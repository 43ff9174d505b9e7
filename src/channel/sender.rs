//! [`Sender`]: a sending end of a channel, one connection to the receiver.

use std::fmt;
use std::marker::PhantomData;

use ferry_codec::StatusCode;
use ferry_transport::ToName;

use crate::channel::service::{self, SendReply, SEND};
use crate::channel::{ChannelOptions, Item};
use crate::client::Client;
use crate::contract::MethodRef;
use crate::error::{Error, ErrorKind};

/// A sending end of a channel of `T`, from [`connect`](crate::channel::connect).
///
/// Cheap to clone: clones share one connection and may send from many tasks at once.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferry::Error> {
/// let tx = ferry::channel::connect::<(u32, String)>("myapp.tasks").await?;
/// for id in 0..10 {
///     tx.send((id, format!("task {id}"))).await?;
/// }
/// # Ok(()) }
/// ```
pub struct Sender<T> {
    client: Client,
    /// The channel service's one method.
    send: MethodRef,
    _item: PhantomData<fn(T)>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            client: self.client.clone(),
            send: self.send,
            _item: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("item", &std::any::type_name::<T>())
            .field("client", &self.client)
            .finish()
    }
}

impl<T: Item> Sender<T> {
    pub(crate) async fn connect(
        name: impl ToName,
        options: &ChannelOptions,
    ) -> Result<Self, Error> {
        let name = name
            .to_name()
            .map_err(|err| Error::transport(ErrorKind::Connect, "cannot connect", err))?;
        // A channel has one method: an item type that differs is refused at connect.
        let strict = options.client.clone().strict_contract(true);
        let info = service::info::<T>();
        let client = Client::connect(&name, info, &strict).await.map_err(|err| {
            if err.is_service_mismatch() {
                let message = format!(
                    "the endpoint {} is not a channel of `{}`",
                    name.address(),
                    std::any::type_name::<T>()
                );
                Error::new(ErrorKind::ServiceMismatch, message).with_source(err)
            } else {
                err
            }
        })?;
        Ok(Sender {
            client,
            send: MethodRef::at(info, SEND),
            _item: PhantomData,
        })
    }

    /// Sends `item` and waits until the receiver has queued it; waits while its queue is
    /// full.
    ///
    /// `Ok` means the item is in the receiver's queue. Fails with
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed) when the receiver is closed, dropped
    /// or gone (its process ended); the item was then not queued, except in one race: a
    /// receiver that closes right after queueing may leave its acknowledgement unsent.
    ///
    /// Not cancel-safe: dropping the future may or may not deliver the item.
    ///
    /// ```no_run
    /// # async fn demo(tx: ferry::channel::Sender<u64>) {
    /// match tx.send(7).await {
    ///     Ok(()) => {}
    ///     Err(err) if err.is_closed() => println!("the receiver went away"),
    ///     Err(err) => println!("send failed: {err}"),
    /// }
    /// # }
    /// ```
    pub async fn send(&self, item: T) -> Result<(), Error> {
        let reply = self.client.call::<_, SendReply>(self.send, &(&item,)).await;
        match reply {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(Error::closed(format!("channel send failed: {reason}"))),
            Err(err) if err.status() == Some(StatusCode::SHUTTING_DOWN) => {
                Err(Error::closed("channel send failed: the receiver is closed").with_source(err))
            }
            Err(err) => Err(err),
        }
    }

    /// [`send`](Sender::send), blocking this thread: for code without an async runtime.
    ///
    /// The connection is driven by the runtime the sender was connected on, or by ferry's
    /// internal runtime thread for [`connect_blocking`](crate::channel::connect_blocking).
    ///
    /// # Errors
    ///
    /// Those of [`send`](Sender::send), and [`ErrorKind::Usage`](crate::ErrorKind::Usage)
    /// when called on a thread that drives async tasks (inside `async` code); use
    /// [`send`](Sender::send) there. Plain threads and `tokio::task::spawn_blocking` threads
    /// are fine.
    ///
    /// ```no_run
    /// # fn demo(tx: ferry::channel::Sender<u64>) -> Result<(), ferry::Error> {
    /// std::thread::spawn(move || tx.send_blocking(1)).join().ok();
    /// # Ok(()) }
    /// ```
    pub fn send_blocking(&self, item: T) -> Result<(), Error> {
        crate::blocking::block_on(self.send(item))
    }

    /// Whether the connection to the receiver is closed; every further send fails.
    ///
    /// ```no_run
    /// # fn demo(tx: ferry::channel::Sender<u64>) {
    /// if tx.is_closed() {
    ///     println!("the receiver is gone");
    /// }
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}
