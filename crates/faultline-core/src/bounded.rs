//! Bounds on what the network can make the server hold: [`LruMap`], a map
//! with a fixed capacity that evicts its least recently seen entry to make
//! room (and counts what it evicted), and [`clip`] / [`clip_owned`], which
//! cut a string arriving from the network to a documented byte length.
//!
//! Why eviction rather than refusal: a table that refuses new keys once full
//! lets a burst of junk lock real newcomers out until the junk ages away; a
//! table that evicts the least recently seen entry keeps serving whatever is
//! active now, and junk that is never seen again is the first to go.
//!
//! "Recently seen" is the order of calls (a counter), not a clock, so the
//! eviction order is deterministic and needs no time argument.
//!
//! Not here: which cap each table has (their owners' configs say so), or
//! anything that does IO.

use std::borrow::Borrow;
use std::collections::BTreeMap;

/// The most bytes kept of a label or annotation name arriving from the network.
pub const MAX_LABEL_NAME_BYTES: usize = 128;
/// The most bytes kept of a label value arriving from the network.
pub const MAX_LABEL_VALUE_BYTES: usize = 1024;
/// The most bytes kept of an annotation value (summaries and descriptions are prose).
pub const MAX_ANNOTATION_VALUE_BYTES: usize = 4096;
/// The most labels (or annotations) kept of one alert or series.
pub const MAX_LABELS: usize = 64;
/// The most bytes kept of an identifier arriving from the network: dedup
/// keys, fingerprints, routing keys, probe and check-in names.
pub const MAX_KEY_BYTES: usize = 256;

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut in place to at most `max` bytes, at a character boundary.
pub fn clip_owned(mut s: String, max: usize) -> String {
    let keep = clip(&s, max).len();
    s.truncate(keep);
    s
}

/// A map holding at most `cap` entries; inserting a new key into a full map
/// evicts the least recently seen one. `insert`, `get_mut` and
/// `get_or_insert_with` count as seeing a key; `get` and iteration do not.
#[derive(Clone, Debug)]
pub struct LruMap<K: Ord + Clone, V> {
    cap: usize,
    entries: BTreeMap<K, (u64, V)>,
    order: BTreeMap<u64, K>,
    next: u64,
    evicted: u64,
}

/// An unbounded map that still keeps the recency order (for an owner that
/// evicts by its own rule, with `pop_oldest`).
impl<K: Ord + Clone, V> Default for LruMap<K, V> {
    fn default() -> LruMap<K, V> {
        LruMap::new(usize::MAX)
    }
}

impl<K: Ord + Clone, V> LruMap<K, V> {
    /// A map of at most `cap` entries (at least one).
    pub fn new(cap: usize) -> LruMap<K, V> {
        LruMap { cap: cap.max(1), entries: BTreeMap::new(), order: BTreeMap::new(), next: 0, evicted: 0 }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries evicted to make room so far (only grows).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn stamp(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.get(k).map(|(_, v)| v)
    }

    pub fn contains_key<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.contains_key(k)
    }

    /// The value under `k`, marking it seen.
    pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let stamp = self.stamp();
        let (old, v) = self.entries.get_mut(k)?;
        if let Some(key) = self.order.remove(old) {
            self.order.insert(stamp, key);
        }
        *old = stamp;
        Some(v)
    }

    /// Inserts or replaces `k`, marking it seen; returns the entry evicted
    /// to make room, if one was.
    pub fn insert(&mut self, k: K, v: V) -> Option<(K, V)> {
        if let Some(slot) = self.get_mut(&k) {
            *slot = v;
            return None;
        }
        let evicted = if self.entries.len() >= self.cap { self.pop_oldest() } else { None };
        if evicted.is_some() {
            self.evicted += 1;
        }
        let stamp = self.stamp();
        self.order.insert(stamp, k.clone());
        self.entries.insert(k, (stamp, v));
        evicted
    }

    /// The value under `k` (made with `f` if absent, evicting the least
    /// recently seen entry if the map is full), marking it seen.
    pub fn get_or_insert_with(&mut self, k: K, f: impl FnOnce() -> V) -> &mut V {
        if !self.entries.contains_key(&k) {
            self.insert(k.clone(), f());
        }
        // Invariant: `k` is present — it was there or was inserted just now
        // (the eviction above removed another key: the map holds at least one).
        self.get_mut(&k).expect("present after insert")
    }

    pub fn remove<Q>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (stamp, v) = self.entries.remove(k)?;
        self.order.remove(&stamp);
        Some(v)
    }

    /// Removes and returns the least recently seen entry (not counted as an eviction).
    pub fn pop_oldest(&mut self) -> Option<(K, V)> {
        let (_, k) = self.order.pop_first()?;
        let (_, v) = self.entries.remove(&k)?;
        Some((k, v))
    }

    /// Keeps the entries for which `f` answers true.
    pub fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        let order = &mut self.order;
        self.entries.retain(|k, (stamp, v)| {
            let keep = f(k, v);
            if !keep {
                order.remove(stamp);
            }
            keep
        });
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, (_, v))| (k, v))
    }

    /// Entries in key order, mutably (not counted as seeing them).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|(k, (_, v))| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.keys()
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.values().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.values_mut().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_at_a_char_boundary() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("abcdef", 3), "abc");
        // "é" is two bytes: cutting inside it keeps the character out.
        assert_eq!(clip("aé", 2), "a");
        assert_eq!(clip_owned("aéb".to_owned(), 3), "aé");
    }

    #[test]
    fn a_full_map_evicts_the_least_recently_seen_entry_and_counts_it() {
        let mut m = LruMap::new(3);
        m.insert("a", 1);
        m.insert("b", 2);
        m.insert("c", 3);
        // Seeing "a" makes "b" the least recently seen.
        *m.get_mut("a").unwrap() += 10;
        assert_eq!(m.insert("d", 4), Some(("b", 2)));
        assert_eq!(m.evicted(), 1);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), ["a", "c", "d"]);
        // get_or_insert_with sees too: "c" is next out, then "a" survives "e".
        m.get_or_insert_with("a", || 0);
        *m.get_or_insert_with("e", || 5) += 1;
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), ["a", "d", "e"]);
        assert_eq!(m.get("e"), Some(&6));
        assert_eq!(m.evicted(), 2);
        // Replacing a present key evicts nothing.
        assert_eq!(m.insert("a", 0), None);
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn remove_and_retain_keep_the_order_consistent() {
        let mut m = LruMap::new(2);
        m.insert(1, "x");
        m.insert(2, "y");
        m.remove(&1);
        m.insert(3, "z");
        assert_eq!(m.evicted(), 0);
        m.retain(|k, _| *k != 2);
        m.insert(4, "w");
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [3, 4]);
        assert_eq!(m.pop_oldest(), Some((3, "z")));
    }
}
