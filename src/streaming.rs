//! [`Streaming`] (to send) and [`Incoming`] (received): a sequence of values that travels
//! as one call's argument or reply, paced by credits so that a slow consumer slows its
//! producer.

mod table;

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use ferry_codec::{Bulk, FormatId};
use futures::Stream;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::budget::Held;
use crate::error::{Error, ErrorKind};

pub(crate) use table::{pump, PumpError, StreamLink, StreamTable};

/// Items a receiver accepts before it grants more: the stream's window.
pub(crate) const WINDOW: u32 = 32;

/// A stream of `T` to send: a service method's reply stream (server to client) or its
/// stream argument (client to server). What arrives on the other side is an [`Incoming<T>`].
///
/// Make one from any `futures::Stream` ([`Streaming::new`]), an iterator
/// ([`Streaming::from_iter`]) or a channel ([`Streaming::channel`], which also gives the
/// handle a server keeps to push values to a client later). In a service trait, write
/// `ferry::Streaming<T>` in both places; the macro gives the receiving side an
/// [`Incoming<T>`]: the client's method returns one for a reply stream, and the server's
/// implementation takes one for a stream argument. A received stream is a different type
/// from one to send, so passing it on unchanged does not compile; forward its items with
/// [`Streaming::new`] instead.
///
/// Flow control: the receiver grants the sender a window of items and renews it as its
/// consumer takes them, so a consumer that stops reading stops the producer, and memory
/// stays bounded on both sides. Dropping a received stream cancels it at the sender.
///
/// ```
/// use futures::StreamExt;
///
/// #[ferry::service]
/// pub trait Counter {
///     /// Counts from 0 to `n - 1`.
///     async fn count(&self, n: u32) -> ferry::Streaming<u32>;
///     /// Adds up what the client sends.
///     async fn sum(&self, values: ferry::Streaming<u32>) -> u64;
/// }
///
/// struct Impl;
/// impl Counter for Impl {
///     async fn count(&self, n: u32) -> ferry::Streaming<u32> {
///         ferry::Streaming::from_iter(0..n)
///     }
///     async fn sum(&self, mut values: ferry::Incoming<u32>) -> u64 {
///         let mut total = 0;
///         while let Some(Ok(value)) = values.next().await {
///             total += u64::from(value);
///         }
///         total
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ferry::Error> {
/// let (server_end, client_end) = ferry::transport::pair().unwrap();
/// tokio::spawn(ferry::Server::new().serve(CounterServer::new(Impl)).serve_stream(server_end));
/// let counter = CounterClient::from_stream(client_end, &Default::default()).await?;
///
/// let numbers: Vec<u32> = counter.count(5).await?.map(|n| n.unwrap()).collect().await;
/// assert_eq!(numbers, [0, 1, 2, 3, 4]);
/// assert_eq!(counter.sum(ferry::Streaming::from_iter(1..=4)).await?, 10);
/// # Ok(()) }
/// ```
pub struct Streaming<T> {
    source: Pin<Box<dyn Stream<Item = T> + Send + 'static>>,
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streaming").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Streaming<T> {
    /// A stream that sends what `stream` yields.
    pub fn new(stream: impl Stream<Item = T> + Send + 'static) -> Self {
        Streaming {
            source: Box::pin(stream),
        }
    }

    /// A stream that sends the items of `iter`.
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I>(iter: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        Streaming::new(futures::stream::iter(iter))
    }

    /// A stream fed through a [`StreamSender`]: the way a server keeps a handle to a client
    /// and pushes values to it later (publish/subscribe). `capacity` bounds the values
    /// queued in this process; [`StreamSender::send`] waits when it is full.
    pub fn channel(capacity: usize) -> (StreamSender<T>, Streaming<T>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (StreamSender { tx }, Streaming::new(stream))
    }
}

impl<T> Streaming<T> {
    /// The items to send.
    pub(crate) fn into_source(self) -> Pin<Box<dyn Stream<Item = T> + Send + 'static>> {
        self.source
    }
}

/// A stream of `T` arriving from the peer: the client's end of a reply stream, or the
/// server's end of a stream argument. A `futures::Stream` of `Result<T, ferry::Error>`
/// that ends after the last item; an error (the call failed, the connection closed, an
/// item did not decode) is its last item.
///
/// Dropping it before its end cancels the stream at the sender: a client's reply stream
/// cancels its call. See [`Streaming`] for flow control and an example.
pub struct Incoming<T> {
    inner: Option<Remote>,
    _item: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Incoming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("ended", &self.inner.is_none())
            .finish_non_exhaustive()
    }
}

impl<T> Incoming<T> {
    pub(crate) fn new(remote: Remote) -> Self {
        Incoming {
            inner: Some(remote),
            _item: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + 'static> Stream for Incoming<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // `Incoming` holds only owned data; it is `Unpin`.
        let this = &mut *self;
        let Some(remote) = &mut this.inner else {
            return Poll::Ready(None);
        };
        match remote.poll_bytes(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(RemoteItem::Item(body, _held)) => {
                // The item's share of the budget is given back once it is decoded (or, for a
                // `Bytes` sliced from a large frame, once that slice is dropped). A `Vec<u8>`
                // item is read in one copy, a `Bytes` item is a slice of its frame.
                Poll::Ready(Some(
                    remote
                        .format
                        .decode_frame::<Bulk<T>>(&body)
                        .map(Bulk::into_inner)
                        .map_err(|err| {
                            Error::codec(ErrorKind::Protocol, "cannot decode a stream item", err)
                        }),
                ))
            }
            Poll::Ready(RemoteItem::End) => {
                this.inner = None;
                Poll::Ready(None)
            }
            Poll::Ready(RemoteItem::Failed(err)) => {
                this.inner = None;
                Poll::Ready(Some(Err(err)))
            }
        }
    }
}

/// The handle that feeds a [`Streaming::channel`]: keep it to push values to the client
/// that holds the other end. Cheap to clone.
#[derive(Debug)]
pub struct StreamSender<T> {
    tx: mpsc::Sender<T>,
}

impl<T> Clone for StreamSender<T> {
    fn clone(&self) -> Self {
        StreamSender {
            tx: self.tx.clone(),
        }
    }
}

impl<T> StreamSender<T> {
    /// Queues `value`, waiting while the queue is full. Fails with the value when the
    /// stream is gone (the client dropped it or disconnected).
    pub async fn send(&self, value: T) -> Result<(), T> {
        self.tx.send(value).await.map_err(|err| err.0)
    }

    /// Queues `value` if there is room right now.
    pub fn try_send(&self, value: T) -> Result<(), T> {
        self.tx.try_send(value).map_err(|err| match err {
            mpsc::error::TrySendError::Full(value) | mpsc::error::TrySendError::Closed(value) => {
                value
            }
        })
    }

    /// Whether the receiving side is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves when the receiving side is gone: a publisher's cue to forget this
    /// subscriber.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// What arrives for a remote stream.
pub(crate) enum RemoteItem {
    /// An item's bytes and their share of the connection's budget.
    Item(Bytes, Held),
    End,
    Failed(Error),
}

/// The receiving end of a stream that the peer sends.
pub(crate) struct Remote {
    id: u64,
    format: FormatId,
    rx: mpsc::UnboundedReceiver<RemoteItem>,
    link: Arc<dyn StreamLink>,
    /// Items taken since the last credit grant.
    consumed: u32,
    ended: bool,
}

impl Remote {
    pub(crate) fn new(
        id: u64,
        format: FormatId,
        rx: mpsc::UnboundedReceiver<RemoteItem>,
        link: Arc<dyn StreamLink>,
    ) -> Self {
        Remote {
            id,
            format,
            rx,
            link,
            consumed: 0,
            ended: false,
        }
    }

    /// Drops this end of a stream whose call is over (it was answered without a stream):
    /// nothing is cancelled.
    pub(crate) fn finish(mut self) {
        self.ended = true;
    }

    fn poll_bytes(&mut self, cx: &mut Context<'_>) -> Poll<RemoteItem> {
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(RemoteItem::Item(body, held))) => {
                self.consumed += 1;
                if self.consumed >= WINDOW / 2 {
                    self.link.grant(self.id, self.consumed);
                    self.consumed = 0;
                }
                Poll::Ready(RemoteItem::Item(body, held))
            }
            Poll::Ready(Some(other)) => {
                self.ended = true;
                Poll::Ready(other)
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(RemoteItem::Failed(Error::closed(
                    "the connection closed before the stream ended",
                )))
            }
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.link.dropped(self.id, self.ended);
    }
}
