//! A small, bounded memo of values that are costly to derive from request bytes the same
//! clients send again and again (a client certificate's parse, a public key's point
//! decompression). Guards: memory — at most `limit` entries, emptied when full, so a client
//! sending ever new inputs costs derivations, never memory; only successful derivations are
//! kept, so a malformed input is refused every time.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

/// Values by their input, at most `limit` of them.
#[derive(Debug)]
pub(super) struct Memo<K, V> {
    map: Mutex<HashMap<K, V>>,
    limit: usize,
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    pub(super) fn new(limit: usize) -> Self {
        Memo {
            map: Mutex::new(HashMap::new()),
            limit,
        }
    }

    /// The value for `input`: remembered, or derived by `make` (outside the lock) and kept.
    pub(super) fn get_or_make<Q, E>(
        &self,
        input: &Q,
        make: impl FnOnce(&Q) -> Result<V, E>,
    ) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(v) = self.lock().get(input) {
            return Ok(v.clone());
        }
        let v = make(input)?;
        let mut map = self.lock();
        if map.len() >= self.limit {
            map.clear();
        }
        map.insert(input.to_owned(), v.clone());
        Ok(v)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::Memo;

    #[test]
    fn keeps_successes_only_and_never_grows_past_its_limit() {
        let memo: Memo<String, usize> = Memo::new(2);
        let calls = std::cell::Cell::new(0);
        let len = |s: &str| -> Result<usize, ()> {
            calls.set(calls.get() + 1);
            if s.is_empty() { Err(()) } else { Ok(s.len()) }
        };
        assert_eq!(memo.get_or_make("abc", len), Ok(3));
        assert_eq!(memo.get_or_make("abc", len), Ok(3));
        assert_eq!(calls.get(), 1, "remembered");
        assert_eq!(memo.get_or_make("", len), Err(()));
        assert_eq!(memo.get_or_make("", len), Err(()));
        assert_eq!(calls.get(), 3, "a failure is derived again every time");
        assert_eq!(memo.get_or_make("de", len), Ok(2));
        assert_eq!(memo.get_or_make("fghi", len), Ok(4));
        assert!(memo.lock().len() <= 2);
    }
}
