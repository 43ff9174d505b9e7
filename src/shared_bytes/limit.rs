//! The receiving side's bound on one [`SharedBytes`](super::SharedBytes), set around the
//! decoding of a payload, like the handle tables (`crate::handle`): a thread-local slot that
//! lives only for one synchronous `decode` call.

use std::cell::Cell;

use super::DEFAULT_MAX_SHARED_BYTES;

thread_local! {
    static LIMIT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Restores the previous bound on every way out.
struct Restore(Option<u64>);

impl Drop for Restore {
    fn drop(&mut self) {
        LIMIT.with(|slot| slot.set(self.0));
    }
}

/// Runs `decode` with `limit` as the largest shared payload it accepts.
pub(crate) fn receiving<R>(limit: u64, decode: impl FnOnce() -> R) -> R {
    let _restore = Restore(LIMIT.with(|slot| slot.replace(Some(limit))));
    decode()
}

/// The bound in force: the one set by [`receiving`], else the default.
pub(super) fn current() -> u64 {
    LIMIT.with(Cell::get).unwrap_or(DEFAULT_MAX_SHARED_BYTES)
}
