//! The receiving side's bound on one [`SharedBytes`](super::SharedBytes), set around the
//! decoding of a payload, like the handle tables (`crate::handle`): a thread-local slot that
//! lives only for one synchronous `decode` call.

use std::cell::Cell;

use super::DEFAULT_MAX_SHARED_BYTES;
use crate::Handle;

thread_local! {
    static LIMIT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Restores the previous bound on every way out.
struct Restore(Option<u64>);

impl Drop for Restore {
    #[inline]
    fn drop(&mut self) {
        LIMIT.set(self.0);
    }
}

/// Runs `decode` over a payload that came with `handles`, with those handles as its
/// incoming table (`crate::handle::decoding`) and `limit` as the largest shared payload it
/// accepts.
///
/// A payload that came with no handle enters neither scope: nothing in it can take a
/// handle, and a [`SharedBytes`](super::SharedBytes) takes its segment's handle before it
/// reads the bound (a schema trace, which needs no handle, returns before it too). Most
/// payloads are such, and this is on the path of every call.
#[inline]
pub(crate) fn receiving<R>(limit: u64, handles: Vec<Handle>, decode: impl FnOnce() -> R) -> R {
    if handles.is_empty() {
        return decode();
    }
    let _restore = Restore(LIMIT.replace(Some(limit)));
    crate::handle::decoding(handles, decode)
}

/// The bound in force: the one set by [`receiving`], else the default.
pub(super) fn current() -> u64 {
    LIMIT.get().unwrap_or(DEFAULT_MAX_SHARED_BYTES)
}
