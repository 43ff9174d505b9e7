//! [`CallTable`]: the calls in flight on one connection, by request id.
//!
//! The client keeps the callers waiting for a reply, the server the handlers running; both
//! need the same things: an insert that refuses a duplicate id (through the map's entry
//! API), a removal when the call ends, and a close that fails or stops every call at once
//! and refuses new ones.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

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
    calls: HashMap<u64, E>,
    /// Set once the connection is closed: why.
    closed: Option<Error>,
}

impl<E> Default for CallTable<E> {
    fn default() -> Self {
        CallTable {
            calls: HashMap::new(),
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
        for entry in table.close(Error::closed("gone")) {
            entry.close(table.closed().unwrap());
        }
        assert_eq!(rx.try_recv().unwrap(), "gone");
        assert!(matches!(
            table.insert(2, Probe(tx)),
            Err(InsertError::Closed(reason)) if reason.to_string() == "gone"
        ));
        assert!(table.close(Error::closed("later")).is_empty());
        assert_eq!(table.closed().unwrap().to_string(), "gone");
    }
}
