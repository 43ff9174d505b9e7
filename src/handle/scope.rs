//! The per-frame handle tables, set around encoding and decoding one frame's payload.
//!
//! A [`Handle`] inside a value cannot be written as bytes: while a payload is encoded, each
//! handle is duplicated into the *outgoing* table and the payload carries its index there;
//! while a payload is decoded, each index is looked up in the *incoming* table, the handles
//! that came with the frame. The tables live in a thread-local slot only for the duration of
//! one `encode`/`decode` call (encoders and decoders are synchronous), so there is no
//! global state and no table outlives its frame.

use std::cell::RefCell;

use super::Handle;

/// What the current thread's encoder may do with handles.
enum EncodeScope {
    /// Handles go into this table.
    Table(Vec<Handle>),
    /// This frame cannot carry handles, for this reason.
    Refused(String),
}

enum DecodeScope {
    /// The handles that came with the frame; each is taken once.
    Table(Vec<Option<Handle>>),
    /// Schema tracing: a placeholder stands for each handle.
    Tracing,
}

thread_local! {
    static ENCODE: RefCell<Option<EncodeScope>> = const { RefCell::new(None) };
    static DECODE: RefCell<Option<DecodeScope>> = const { RefCell::new(None) };
}

/// Restores the previous scope on every way out (a panicking encoder included).
struct Restore<T: 'static> {
    slot: &'static std::thread::LocalKey<RefCell<Option<T>>>,
    previous: Option<Option<T>>,
}

impl<T> Drop for Restore<T> {
    fn drop(&mut self) {
        let previous = self.previous.take().flatten();
        self.slot.with(|slot| *slot.borrow_mut() = previous);
    }
}

fn enter<T>(slot: &'static std::thread::LocalKey<RefCell<Option<T>>>, scope: T) -> Restore<T> {
    let previous = slot.with(|slot| slot.borrow_mut().replace(scope));
    Restore {
        slot,
        previous: Some(previous),
    }
}

fn leave<T>(restore: &mut Restore<T>) -> Option<T> {
    let previous = restore.previous.take().flatten();
    restore
        .slot
        .with(|slot| std::mem::replace(&mut *slot.borrow_mut(), previous))
}

/// Runs `encode` with an outgoing table; returns its result and duplicates of the handles
/// it met, in index order.
pub(crate) fn encoding<R>(encode: impl FnOnce() -> R) -> (R, Vec<Handle>) {
    let mut restore = enter(&ENCODE, EncodeScope::Table(Vec::new()));
    let result = encode();
    let table = match leave(&mut restore) {
        Some(EncodeScope::Table(table)) => table,
        _ => Vec::new(),
    };
    (result, table)
}

/// Runs `encode` where handles cannot go, saying why when one is met.
pub(crate) fn refusing<R>(reason: impl Into<String>, encode: impl FnOnce() -> R) -> R {
    let _restore = enter(&ENCODE, EncodeScope::Refused(reason.into()));
    encode()
}

/// Runs `decode` with the handles that came with a frame; handles it did not take are
/// closed when it returns.
pub(crate) fn decoding<R>(handles: Vec<Handle>, decode: impl FnOnce() -> R) -> R {
    if handles.is_empty() {
        return decode();
    }
    let table = handles.into_iter().map(Some).collect();
    let _restore = enter(&DECODE, DecodeScope::Table(table));
    decode()
}

/// Runs a schema trace, in which each handle decodes as a placeholder.
pub(crate) fn tracing<R>(trace: impl FnOnce() -> R) -> R {
    let _restore = enter(&DECODE, DecodeScope::Tracing);
    trace()
}

/// Whether a schema trace runs on this thread (handles decode as placeholders).
pub(crate) fn is_tracing() -> bool {
    DECODE.with(|slot| matches!(&*slot.borrow(), Some(DecodeScope::Tracing)))
}

/// Puts `handle` in the outgoing table; returns its index.
pub(super) fn add(handle: &Handle) -> Result<u32, String> {
    ENCODE.with(|slot| match &mut *slot.borrow_mut() {
        Some(EncodeScope::Table(table)) => {
            if table.len() >= ferry_codec::MAX_HANDLES {
                return Err(format!(
                    "more than {} handles in one frame",
                    ferry_codec::MAX_HANDLES
                ));
            }
            let entry = handle
                .try_clone()
                .map_err(|err| format!("cannot duplicate a handle to send it: {err}"))?;
            table.push(entry);
            Ok((table.len() - 1) as u32)
        }
        Some(EncodeScope::Refused(reason)) => Err(reason.clone()),
        None => {
            Err("a ferry::Handle can only be sent as an argument or result of a call".to_owned())
        }
    })
}

/// Takes handle `index` from the incoming table.
pub(super) fn take(index: u32) -> Result<Handle, String> {
    DECODE.with(|slot| match &mut *slot.borrow_mut() {
        Some(DecodeScope::Table(table)) => table
            .get_mut(index as usize)
            .and_then(Option::take)
            .ok_or_else(|| {
                format!(
                    "handle {index} is not among the {} that came with the frame, or was taken twice",
                    table.len()
                )
            }),
        Some(DecodeScope::Tracing) => Handle::placeholder()
            .map_err(|err| format!("cannot make a placeholder handle: {err}")),
        None => Err(format!(
            "handle {index}: no handles came with this payload"
        )),
    })
}

/// Puts `handles` in the outgoing table in order, so that an already encoded payload that
/// names them by index `0..` travels with them (the `tower` feature's replies and calls).
#[cfg(feature = "tower")]
pub(crate) fn resend(handles: &[Handle]) -> Result<(), ferry_codec::CodecError> {
    for handle in handles {
        add(handle).map_err(|message| ferry_codec::CodecError::Encode {
            format: "handle",
            source: message.into(),
        })?;
    }
    Ok(())
}
