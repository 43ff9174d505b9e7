//! The per-frame handle tables, set around encoding and decoding one frame's payload.
//!
//! A [`Handle`] inside a value cannot be written as bytes: while a payload is encoded, each
//! handle is duplicated into the *outgoing* table and the payload carries its index there;
//! while a payload is decoded, each index is looked up in the *incoming* table, the handles
//! that came with the frame. The tables live in a thread-local slot only for the duration of
//! one `encode`/`decode` call (encoders and decoders are synchronous), so there is no
//! global state and no table outlives its frame.
//!
//! Nearly every payload carries no handle, and every one is encoded inside a scope, so the
//! encoding scope costs a few plain thread-local reads and writes: its state ([`Mode`]) is
//! a `Copy` value in a `Cell`, the reason of a refusal is formatted only when a handle meets
//! it, and the table itself (shared by nested scopes, each owning the entries from its
//! `base` on) is touched only when a handle is met.

use std::cell::{Cell, RefCell};

use super::Handle;

/// Why the current thread's encoder cannot send handles.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    /// Said as is.
    Said(&'static str),
    /// The connection speaks this protocol version, older than handle passing.
    Version(u16),
}

impl From<&'static str> for Refusal {
    fn from(reason: &'static str) -> Self {
        Refusal::Said(reason)
    }
}

impl Refusal {
    fn message(self) -> String {
        match self {
            Refusal::Said(reason) => reason.to_owned(),
            Refusal::Version(version) => format!(
                "cannot send a ferry::Handle: the connection speaks protocol version {version}, \
                 and handles need version {}",
                ferry_codec::HANDLES_VERSION
            ),
        }
    }
}

/// What the current thread's encoder may do with handles.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// No payload is being encoded.
    Outside,
    /// Handles go into `TABLE`, from index `base` on (index 0 of this frame).
    Table { base: usize },
    /// This frame cannot carry handles, for this reason.
    Refused(Refusal),
}

enum DecodeScope {
    /// The handles that came with the frame; each is taken once.
    Table(Vec<Option<Handle>>),
    /// Schema tracing: a placeholder stands for each handle.
    Tracing,
}

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Outside) };
    /// The outgoing handles of the scopes under way on this thread (innermost last).
    static TABLE: RefCell<Vec<Handle>> = const { RefCell::new(Vec::new()) };
    /// The length of `TABLE`, read without touching it (the common case adds nothing).
    static COUNT: Cell<usize> = const { Cell::new(0) };
    static DECODE: RefCell<Option<DecodeScope>> = const { RefCell::new(None) };
}

/// Restores the previous encoding mode, and drops the entries a scope left in the table,
/// on every way out (a panicking encoder included).
struct RestoreMode {
    previous: Mode,
    mark: usize,
}

impl Drop for RestoreMode {
    #[inline]
    fn drop(&mut self) {
        MODE.set(self.previous);
        if COUNT.get() != self.mark {
            // Only when the encoder failed out of the scope (a panic): the entries go.
            let _ = TABLE.try_with(|table| table.borrow_mut().truncate(self.mark));
            COUNT.set(self.mark);
        }
    }
}

#[inline]
fn enter_mode(mode: impl FnOnce(usize) -> Mode) -> RestoreMode {
    let mark = COUNT.get();
    RestoreMode {
        previous: MODE.replace(mode(mark)),
        mark,
    }
}

/// Restores the previous decoding scope on every way out (a panicking decoder included).
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

/// Runs `encode` with an outgoing table; returns its result and duplicates of the handles
/// it met, in index order.
#[inline]
pub(crate) fn encoding<R>(encode: impl FnOnce() -> R) -> (R, Vec<Handle>) {
    let restore = enter_mode(|base| Mode::Table { base });
    let result = encode();
    let mark = restore.mark;
    if COUNT.get() == mark {
        // The common case: no handle met.
        return (result, Vec::new());
    }
    let table = TABLE.with_borrow_mut(|table| table.split_off(mark));
    COUNT.set(mark);
    drop(restore);
    (result, table)
}

/// Runs `encode` where handles cannot go, saying why when one is met.
#[inline]
pub(crate) fn refusing<R>(reason: impl Into<Refusal>, encode: impl FnOnce() -> R) -> R {
    let reason = reason.into();
    let _restore = enter_mode(|_| Mode::Refused(reason));
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
    match MODE.get() {
        Mode::Table { base } => TABLE.with_borrow_mut(|table| {
            if table.len() - base >= ferry_codec::MAX_HANDLES {
                return Err(format!(
                    "more than {} handles in one frame",
                    ferry_codec::MAX_HANDLES
                ));
            }
            let entry = handle
                .try_clone()
                .map_err(|err| format!("cannot duplicate a handle to send it: {err}"))?;
            table.push(entry);
            COUNT.set(table.len());
            Ok((table.len() - 1 - base) as u32)
        }),
        Mode::Refused(reason) => Err(reason.message()),
        Mode::Outside => {
            Err("a ferry::Handle can only be sent as an argument or result of a call".to_owned())
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_codec::FormatId;

    fn handle() -> Handle {
        Handle::placeholder().expect("the null device")
    }

    fn index_of(handle: &Handle) -> Result<u32, String> {
        add(handle)
    }

    #[test]
    fn a_scope_that_meets_no_handle_returns_an_empty_table() {
        let (value, table) = encoding(|| 7);
        assert_eq!(value, 7);
        assert!(table.is_empty());
        assert_eq!(COUNT.get(), 0);
    }

    #[test]
    fn nested_scopes_each_number_their_own_handles_from_zero() {
        let (inner, outer) = encoding(|| {
            let first = index_of(&handle());
            let (indices, inner) = encoding(|| [index_of(&handle()), index_of(&handle())]);
            let after = index_of(&handle());
            (first, indices, inner.len(), after)
        });
        let (first, indices, inner_len, after) = inner;
        assert_eq!(first, Ok(0));
        assert_eq!(indices, [Ok(0), Ok(1)]);
        assert_eq!(inner_len, 2);
        assert_eq!(after, Ok(1));
        assert_eq!(outer.len(), 2);
        assert_eq!(COUNT.get(), 0);
    }

    #[test]
    fn a_refusal_inside_a_scope_says_why_and_ends_with_its_encoder() {
        let (results, table) = encoding(|| {
            let refused = refusing(Refusal::Version(2), || index_of(&handle()));
            let said = refusing("not in stream items", || index_of(&handle()));
            (refused, said, index_of(&handle()))
        });
        let (refused, said, after) = results;
        let refused = refused.unwrap_err();
        assert!(refused.contains("protocol version 2"), "{refused}");
        assert!(refused.contains("need version 3"), "{refused}");
        assert_eq!(said.unwrap_err(), "not in stream items");
        assert_eq!(after, Ok(0));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn outside_a_scope_a_handle_cannot_be_encoded() {
        let err = FormatId::Bincode
            .encode(&handle(), &mut bytes::BytesMut::new())
            .unwrap_err();
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            source
                .as_deref()
                .is_some_and(|s| s.contains("argument or result of a call")),
            "{source:?}"
        );
    }

    #[test]
    fn a_panicking_encoder_leaves_no_handle_and_no_scope_behind() {
        let panicked = std::panic::catch_unwind(|| {
            encoding(|| {
                index_of(&handle()).expect("in a scope");
                panic!("the encoder failed");
            })
        });
        assert!(panicked.is_err());
        assert_eq!(COUNT.get(), 0);
        assert!(TABLE.with_borrow(Vec::is_empty));
        assert!(index_of(&handle()).is_err(), "the scope is over");
        let (index, table) = encoding(|| index_of(&handle()));
        assert_eq!(index, Ok(0));
        assert_eq!(table.len(), 1);
    }
}
