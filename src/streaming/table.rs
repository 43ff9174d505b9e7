//! The per-connection bookkeeping of open streams: what arrives (inbound, with the credit
//! the sender still has) and what leaves (outbound, paced by the credit the peer granted).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use ferry_codec::{BulkRef, CodecError, FormatId, Frame, FrameKind};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};

use super::RemoteItem;
use crate::budget::Held;
use crate::engine::send_payload;
use crate::error::Error;
use crate::outbox::{Outbox, QueueError};

/// What a connection does for the receiving end of one of its streams.
pub(crate) trait StreamLink: Send + Sync + 'static {
    /// Grants the sender of stream `id` `items` more items (sends a CREDIT frame).
    fn grant(&self, id: u64, items: u32);
    /// The receiving end of stream `id` was dropped; `ended` when after its last item.
    fn dropped(&self, id: u64, ended: bool);
}

/// An inbound stream: where its items go and how many more the sender may send.
pub(crate) struct Inbound {
    tx: mpsc::UnboundedSender<RemoteItem>,
    credit: u32,
}

/// Open streams of one connection, by the id of the call they belong to.
#[derive(Default)]
pub(crate) struct StreamTable {
    inbound: HashMap<u64, Inbound>,
    outbound: HashMap<u64, Arc<Semaphore>>,
}

impl StreamTable {
    /// Registers an inbound stream whose sender starts with `credit` items.
    pub(crate) fn open_inbound(
        &mut self,
        id: u64,
        credit: u32,
    ) -> mpsc::UnboundedReceiver<RemoteItem> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inbound.insert(id, Inbound { tx, credit });
        rx
    }

    /// Records a grant made to the sender of stream `id`.
    pub(crate) fn granted(&mut self, id: u64, items: u32) {
        if let Some(inbound) = self.inbound.get_mut(&id) {
            inbound.credit = inbound.credit.saturating_add(items);
        }
    }

    pub(crate) fn remove_inbound(&mut self, id: u64) {
        self.inbound.remove(&id);
    }

    /// Routes a STREAM_ITEM. An item beyond the granted credit is a protocol violation; an
    /// item for a stream no longer open (dropped by its consumer) is ignored.
    /// `held` (the item's share of the connection's budget) goes with it to the consumer.
    pub(crate) fn on_item(&mut self, id: u64, body: Bytes, held: Held) -> Result<(), String> {
        let Some(inbound) = self.inbound.get_mut(&id) else {
            return Ok(());
        };
        if inbound.credit == 0 {
            return Err(format!("stream {id} sent an item without credit"));
        }
        inbound.credit -= 1;
        // The receiver may be gone already; its drop removes the entry soon.
        let _ = inbound.tx.send(RemoteItem::Item(body, held));
        Ok(())
    }

    /// Routes a STREAM_END; `false` when `id` is no inbound stream.
    pub(crate) fn on_end(&mut self, id: u64) -> bool {
        match self.inbound.remove(&id) {
            Some(inbound) => {
                let _ = inbound.tx.send(RemoteItem::End);
                true
            }
            None => false,
        }
    }

    /// Routes an ERROR for an inbound stream; gives the error back when `id` is none.
    pub(crate) fn on_error(&mut self, id: u64, err: Error) -> Result<(), Error> {
        match self.inbound.remove(&id) {
            Some(inbound) => {
                let _ = inbound.tx.send(RemoteItem::Failed(err));
                Ok(())
            }
            None => Err(err),
        }
    }

    /// The credit gate of outbound stream `id`, created empty when new.
    pub(crate) fn outbound(&mut self, id: u64) -> Arc<Semaphore> {
        Arc::clone(
            self.outbound
                .entry(id)
                .or_insert_with(|| Arc::new(Semaphore::new(0))),
        )
    }

    /// Routes a CREDIT frame; `false` when `id` is no outbound stream.
    pub(crate) fn on_credit(&mut self, id: u64, items: u32) -> bool {
        match self.outbound.get(&id) {
            Some(gate) => {
                // Bounded by the semaphore's maximum; a peer granting absurd amounts only
                // lets us send as fast as we can.
                let room = Semaphore::MAX_PERMITS.saturating_sub(gate.available_permits());
                gate.add_permits((items as usize).min(room));
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove_outbound(&mut self, id: u64) {
        if let Some(gate) = self.outbound.remove(&id) {
            gate.close();
        }
    }

    /// The connection is gone: inbound streams fail with `reason`, outbound ones stop.
    pub(crate) fn close_all(&mut self, reason: &Error) {
        for (_, inbound) in self.inbound.drain() {
            let _ = inbound.tx.send(RemoteItem::Failed(reason.duplicate()));
        }
        for (_, gate) in self.outbound.drain() {
            gate.close();
        }
    }
}

/// Why sending a stream stopped early.
#[derive(Debug)]
pub(crate) enum PumpError {
    /// The connection or the stream's credit gate closed.
    Closed,
    /// An item could not be encoded (or was larger than the peer accepts).
    Encode(CodecError),
}

/// Sends the items of `stream` as STREAM_ITEM frames of stream `id`, one credit each, then
/// STREAM_END.
pub(crate) async fn pump<T: Serialize + 'static>(
    outbox: &Outbox,
    id: u64,
    format: FormatId,
    max_frame: u32,
    mut stream: Pin<Box<dyn Stream<Item = T> + Send + 'static>>,
    credits: Arc<Semaphore>,
) -> Result<(), PumpError> {
    loop {
        // Take the credit first: a consumer that stops reading stops the producer.
        match credits.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return Err(PumpError::Closed),
        }
        let Some(item) = stream.next().await else {
            break;
        };
        // A `Vec<u8>` item goes as one byte string (the same bytes as serde's own path).
        let item = BulkRef(&item);
        send_payload(
            outbox,
            None,
            FrameKind::STREAM_ITEM,
            id,
            None,
            format,
            max_frame,
            &item,
        )
        .await
        .map_err(|err| match err {
            QueueError::Closed => PumpError::Closed,
            QueueError::Encode(err) => PumpError::Encode(err),
        })?;
    }
    let end = Frame::stream_end(id);
    outbox
        .push(|buf| {
            end.encode(buf);
            Ok::<(), CodecError>(())
        })
        .await
        .map_err(|_| PumpError::Closed)
}
