//! [`Capture`]: a call's reply kept as bytes instead of being sent, for middleware that
//! sees the reply before it goes out (the `tower` feature).

use std::sync::Mutex;

use bytes::Bytes;
use ferry_codec::StatusCode;

/// Where a captured call's reply goes.
#[derive(Debug, Default)]
pub(crate) struct Capture(Mutex<Captured>);

/// A captured call's reply, so far. (Only the `tower` feature reads it.)
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) enum Captured {
    /// Nothing replied yet.
    #[default]
    Waiting,
    /// The encoded return value, and the handles it holds (by index).
    Value(Bytes, Vec<crate::handle::Handle>),
    /// An error status and its message.
    Error(StatusCode, String),
    /// The call replied with a stream, sent directly (streams are not captured).
    Streamed,
}

impl Capture {
    fn lock(&self) -> std::sync::MutexGuard<'_, Captured> {
        // A panic while holding this lock leaves a valid value.
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Keeps `reply`, unless the call streams (then its replies go out directly). Returns
    /// whether it was kept.
    pub(crate) fn keep(&self, reply: Captured) -> bool {
        let mut captured = self.lock();
        if matches!(*captured, Captured::Streamed) {
            return false;
        }
        *captured = reply;
        true
    }

    /// The call replies with a stream: from now on its replies are sent directly.
    pub(crate) fn streamed(&self) {
        *self.lock() = Captured::Streamed;
    }

    /// Takes what was captured.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn take(&self) -> Captured {
        let mut captured = self.lock();
        match &*captured {
            Captured::Streamed => Captured::Streamed,
            _ => std::mem::take(&mut *captured),
        }
    }
}
