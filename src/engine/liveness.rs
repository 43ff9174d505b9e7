//! [`Liveness`]: when the peer was last heard from, and the keepalive that PINGs it when it
//! has been silent.
//!
//! | state | event | next |
//! | --- | --- | --- |
//! | quiet for less than `interval` | bytes from the peer | quiet again from now |
//! | quiet for `interval` | (timer) | PING sent, waiting |
//! | waiting | bytes from the peer (a PONG or any frame) | quiet again from then |
//! | waiting for `interval` more | (timer) | the peer is unresponsive: the connection stops |
//!
//! The read loop marks the peer heard before each read and after every read that brought
//! bytes, so a large frame that is still arriving counts as life. While this side itself
//! does not read (a server waiting for room in its outbox, or for a call to end before it
//! starts another: backpressure), the keepalive is paused, since a PONG could not be seen;
//! the clock restarts when reading does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use ferry_codec::Frame;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{Role, Stop};
use crate::error::Error;
use crate::outbox::Outbox;

/// The keepalive state of one connection.
pub(crate) struct Liveness {
    /// The keepalive interval, or `None` when this side sends no PINGs.
    interval: Option<Duration>,
    /// When the connection started: `heard_at` counts from here.
    epoch: Instant,
    /// How many times the peer was heard from (a change means "heard since").
    heard: AtomicU64,
    /// Milliseconds from `epoch` to the last time the peer was heard from.
    heard_at: AtomicU64,
    /// The number carried by the last PING sent (its 8 bytes, little-endian).
    last_ping: AtomicU64,
    /// This side is not reading (backpressure): silence proves nothing.
    paused: AtomicBool,
    /// PINGs sent on request ([`Liveness::probe`]), by number, waiting for their PONG.
    probes: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    /// The number of the next requested PING: from 2^63 up, apart from the keepalive's.
    next_probe: AtomicU64,
}

/// The first number of requested PINGs; the keepalive counts from 1.
const FIRST_PROBE: u64 = 1 << 63;

/// Pauses the keepalive until dropped; see [`Liveness::pause`].
pub(crate) struct Paused<'a>(&'a Liveness);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.paused.store(false, Ordering::Relaxed);
        self.0.heard();
    }
}

impl Liveness {
    pub(crate) fn new(interval: Option<Duration>) -> Self {
        Liveness {
            interval,
            epoch: Instant::now(),
            heard: AtomicU64::new(0),
            heard_at: AtomicU64::new(0),
            last_ping: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            probes: Mutex::new(HashMap::new()),
            next_probe: AtomicU64::new(FIRST_PROBE),
        }
    }

    fn probes(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<()>>> {
        // A panic while holding this lock leaves a valid map: go on with it.
        self.probes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// A PING to send on request: its number, and what resolves when its PONG arrives.
    /// The PING must then be sent, and [`forget_probe`](Self::forget_probe) called if its
    /// PONG is no longer awaited.
    pub(crate) fn probe(&self) -> (u64, oneshot::Receiver<()>) {
        let number = self.next_probe.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.probes().insert(number, tx);
        (number, rx)
    }

    /// The PONG of PING `number` is no longer awaited.
    pub(crate) fn forget_probe(&self, number: u64) {
        self.probes().remove(&number);
    }

    /// This side stops reading for a while (backpressure): no PING goes out and the peer
    /// is not judged until the returned guard is dropped.
    pub(crate) fn pause(&self) -> Paused<'_> {
        self.paused.store(true, Ordering::Relaxed);
        Paused(self)
    }

    fn silent_since(&self, seen: u64) -> bool {
        !self.paused.load(Ordering::Relaxed) && self.heard.load(Ordering::Acquire) == seen
    }

    /// The peer was heard from (or this side is about to read again).
    pub(crate) fn heard(&self) {
        if self.interval.is_none() {
            return;
        }
        let millis = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.heard_at.store(millis, Ordering::Relaxed);
        self.heard.fetch_add(1, Ordering::Release);
    }

    /// A PONG arrived (it counts as hearing from the peer like any frame).
    pub(crate) fn on_pong(&self, data: [u8; 8]) {
        let number = u64::from_le_bytes(data);
        if let Some(waiting) = self.probes().remove(&number) {
            let _ = waiting.send(());
            return;
        }
        if number == 0 || number != self.last_ping.load(Ordering::Relaxed) {
            debug!(
                ?data,
                "ignored a PONG that answers no PING this side sent last"
            );
        }
    }

    /// Runs the keepalive: resolves when the peer stays silent for two intervals (a PING
    /// went out after the first). Never resolves without a keepalive.
    pub(crate) async fn watch<R: Role>(&self, outbox: &Outbox) -> Stop {
        let Some(interval) = self.interval else {
            return std::future::pending().await;
        };
        loop {
            let seen = self.heard.load(Ordering::Acquire);
            let at = Duration::from_millis(self.heard_at.load(Ordering::Relaxed));
            tokio::time::sleep_until(self.epoch + at + interval).await;
            if !self.silent_since(seen) {
                continue;
            }
            let number = self.last_ping.fetch_add(1, Ordering::Relaxed) + 1;
            debug!(
                number,
                "{} silent for {interval:?}; sending a PING",
                R::PEER
            );
            outbox.push_frame_now(&Frame::ping(number.to_le_bytes()));
            outbox.flush_now();
            tokio::time::sleep(interval).await;
            if self.silent_since(seen) {
                warn!(
                    ?interval,
                    "{} did not answer a PING; closing the connection",
                    R::PEER
                );
                return Stop::Unresponsive(Error::closed(format!(
                    "{} did not answer a PING within {interval:?} (keepalive)",
                    R::PEER
                )));
            }
        }
    }
}
