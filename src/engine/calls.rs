//! [`CallTable`]: the calls in flight on one connection, by request id.
//!
//! The client keeps the callers waiting for a reply, the server the handlers running; both
//! need the same things: an insert that refuses a duplicate id (through the map's entry
//! API), a removal when the call ends, and a close that fails or stops every call at once
//! and refuses new ones.
//!
//! The ids are hashed with [`IdHasher`], a keyed multiply-and-fold: a few instructions
//! where SipHash takes a few dozen per lookup. On a server the ids are the peer's choice,
//! so the key is random per table (a client cannot pick ids that collide without knowing
//! it), and the table never holds more than the connection's calls in flight.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use crate::error::Error;

/// What the table holds for one call, and how that call ends when its connection closes.
pub(crate) trait CallEntry: Send + 'static {
    /// The connection closed with `reason`: end the call.
    fn close(self, reason: &Error);
}

/// Why a call was not added to the table.
#[derive(Debug)]
pub(crate) enum InsertError {
    /// The connection is closed; the reason it closed.
    Closed(Error),
    /// A call with this id is in flight already.
    Duplicate,
}

/// Calls in flight, by request id, and whether the connection is closed.
pub(crate) struct CallTable<E> {
    calls: HashMap<u64, E, IdKey>,
    /// Set once the connection is closed: why.
    closed: Option<Error>,
}

impl<E> Default for CallTable<E> {
    fn default() -> Self {
        CallTable {
            calls: HashMap::with_hasher(IdKey::random()),
            closed: None,
        }
    }
}

impl<E: CallEntry> CallTable<E> {
    /// Adds call `id`, unless the connection is closed or `id` is in flight already.
    pub(crate) fn insert(&mut self, id: u64, entry: E) -> Result<(), InsertError> {
        if let Some(reason) = &self.closed {
            return Err(InsertError::Closed(reason.duplicate()));
        }
        match self.calls.entry(id) {
            Entry::Occupied(_) => Err(InsertError::Duplicate),
            Entry::Vacant(slot) => {
                slot.insert(entry);
                Ok(())
            }
        }
    }

    /// Whether call `id` may be added: the same refusals as [`CallTable::insert`], without
    /// adding it (a call that may end before anything else reads the table need not be in
    /// it).
    pub(crate) fn vacant(&self, id: u64) -> Result<(), InsertError> {
        if let Some(reason) = &self.closed {
            return Err(InsertError::Closed(reason.duplicate()));
        }
        if self.calls.contains_key(&id) {
            return Err(InsertError::Duplicate);
        }
        Ok(())
    }

    /// Takes call `id` out of the table, if it is there.
    pub(crate) fn remove(&mut self, id: u64) -> Option<E> {
        self.calls.remove(&id)
    }

    /// Calls in flight.
    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }

    /// Why the connection closed, if it did.
    pub(crate) fn closed(&self) -> Option<&Error> {
        self.closed.as_ref()
    }

    /// Marks the connection closed (the first reason wins) and hands back every call in
    /// flight, to be ended with [`CallEntry::close`] outside the lock.
    pub(crate) fn close(&mut self, reason: Error) -> Vec<E> {
        if self.closed.is_none() {
            self.closed = Some(reason);
        }
        self.calls.drain().map(|(_, entry)| entry).collect()
    }
}

/// The random key of one table's [`IdHasher`]s.
#[derive(Clone, Copy)]
pub(crate) struct IdKey {
    k0: u64,
    k1: u64,
}

impl IdKey {
    /// A key drawn from the standard library's per-thread random seed (each
    /// [`RandomState`] differs from the last), once per table.
    fn random() -> Self {
        let state = RandomState::new();
        let k0 = state.hash_one(0x243f_6a88_85a3_08d3_u64);
        let k1 = state.hash_one(0x1319_8a2e_0370_7344_u64);
        // An odd multiplier: the multiplication is a bijection of the low 64 bits.
        IdKey { k0, k1: k1 | 1 }
    }
}

impl BuildHasher for IdKey {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            key: *self,
            hash: 0,
        }
    }
}

/// Hashes a request id: the id mixed with the key, multiplied by the other half of the
/// key into 128 bits, and the two halves folded together; [`Hasher::finish`] folds once
/// more with a fixed constant. One fold alone leaves the top bits (which the table's
/// control bytes use) badly spread for some keys: close ids differ by small multiples of
/// the key there.
/// The second fold's multiplier: odd, with its bits spread (2^64 / the golden ratio).
const FINISH: u64 = 0x9e37_79b9_7f4a_7c15;

pub(crate) struct IdHasher {
    key: IdKey,
    hash: u64,
}

impl IdHasher {
    fn mix(&mut self, value: u64) {
        let product = u128::from(value ^ self.key.k0 ^ self.hash) * u128::from(self.key.k1);
        // Truncations meant: the low and the high half of the product.
        self.hash = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed; any other input still hashes, eight bytes at a time.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    fn finish(&self) -> u64 {
        let product = u128::from(self.hash) * u128::from(FINISH);
        // Truncations meant, as in `mix`.
        (product as u64) ^ ((product >> 64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Probe(std::sync::mpsc::Sender<String>);

    impl CallEntry for Probe {
        fn close(self, reason: &Error) {
            let _ = self.0.send(reason.to_string());
        }
    }

    #[test]
    fn duplicates_and_closed_tables_refuse_inserts() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut table = CallTable::default();
        table.insert(1, Probe(tx.clone())).unwrap();
        assert!(matches!(
            table.insert(1, Probe(tx.clone())),
            Err(InsertError::Duplicate)
        ));
        assert_eq!(table.len(), 1);
        assert!(matches!(table.vacant(1), Err(InsertError::Duplicate)));
        assert!(table.vacant(2).is_ok());
        for entry in table.close(Error::closed("gone")) {
            entry.close(table.closed().unwrap());
        }
        assert_eq!(rx.try_recv().unwrap(), "gone");
        assert!(matches!(
            table.insert(2, Probe(tx)),
            Err(InsertError::Closed(reason)) if reason.to_string() == "gone"
        ));
        assert!(matches!(table.vacant(3), Err(InsertError::Closed(_))));
        assert!(table.close(Error::closed("later")).is_empty());
        assert_eq!(table.closed().unwrap().to_string(), "gone");
    }

    #[test]
    fn ids_hash_apart_and_keys_differ_per_table() {
        // Many keys: a weak mix fails only for some of them (one fold alone left as few as
        // 40 of the 128 top-bit patterns for some keys).
        for _ in 0..200 {
            let key = IdKey::random();
            let hashes: std::collections::HashSet<u64> =
                (1..=10_000u64).map(|id| key.hash_one(id)).collect();
            assert_eq!(hashes.len(), 10_000, "sequential ids collide");
            // The top seven bits select a group's control byte: they spread too.
            let tops: std::collections::HashSet<u64> =
                (1..=1_000u64).map(|id| key.hash_one(id) >> 57).collect();
            assert!(tops.len() > 100, "only {} top-bit patterns", tops.len());
        }
        let key = IdKey::random();
        let other = IdKey::random();
        assert_ne!(
            key.hash_one(7u64),
            other.hash_one(7u64),
            "tables share a key"
        );
    }

    #[test]
    fn lookups_find_what_was_inserted() {
        let (tx, _rx) = std::sync::mpsc::channel();
        let mut table = CallTable::default();
        for id in (1..=500u64).map(|n| n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            table.insert(id, Probe(tx.clone())).unwrap();
        }
        assert_eq!(table.len(), 500);
        for id in (1..=500u64).map(|n| n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            assert!(matches!(table.vacant(id), Err(InsertError::Duplicate)));
            assert!(table.remove(id).is_some());
        }
        assert_eq!(table.len(), 0);
        assert!(table.vacant(7).is_ok());
    }
}
