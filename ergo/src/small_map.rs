//! A map that stays a short vector while it is small (the common case: a
//! process has a link or two) and becomes a hash map when it grows (a
//! supervisor of 10,000 children has 10,000 links), so that adding and
//! removing an entry never costs time in proportion to the entries.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// Entries past which the vector becomes a hash map.
const SPILL: usize = 16;

pub(crate) enum SmallMap<K, V> {
    /// In insertion order.
    Small(Vec<(K, V)>),
    /// Boxed, so that an empty map costs a process no more than a `Vec`.
    Large(Box<FxHashMap<K, V>>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Small(Vec::new())
    }
}

impl<K: Copy + Eq + Hash, V> SmallMap<K, V> {
    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            SmallMap::Small(v) => v.len(),
            SmallMap::Large(m) => m.len(),
        }
    }

    #[cfg(test)]
    fn contains_key(&self, key: &K) -> bool {
        match self {
            SmallMap::Small(v) => v.iter().any(|(k, _)| k == key),
            SmallMap::Large(m) => m.contains_key(key),
        }
    }

    /// Adds `key` unless it is there already; `true` when it was added.
    pub(crate) fn insert_new(&mut self, key: K, value: V) -> bool {
        match self {
            SmallMap::Small(v) => {
                if v.iter().any(|(k, _)| *k == key) {
                    return false;
                }
                if v.len() < SPILL {
                    v.push((key, value));
                    return true;
                }
                let mut m: FxHashMap<K, V> = std::mem::take(v).into_iter().collect();
                m.insert(key, value);
                *self = SmallMap::Large(Box::new(m));
                true
            }
            SmallMap::Large(m) => match m.entry(key) {
                std::collections::hash_map::Entry::Occupied(_) => false,
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(value);
                    true
                }
            },
        }
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        match self {
            SmallMap::Small(v) => {
                let i = v.iter().position(|(k, _)| k == key)?;
                Some(v.remove(i).1)
            }
            SmallMap::Large(m) => m.remove(key),
        }
    }

    /// Every entry (in insertion order while the map is small).
    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = (&K, &V)> + '_> {
        match self {
            SmallMap::Small(v) => Box::new(v.iter().map(|(k, v)| (k, v))),
            SmallMap::Large(m) => Box::new(m.iter()),
        }
    }

    /// Takes every entry out, leaving the map empty.
    pub(crate) fn take_all(&mut self) -> Vec<(K, V)> {
        match std::mem::take(self) {
            SmallMap::Small(v) => v,
            SmallMap::Large(m) => m.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_a_set_of_unique_keys_across_the_spill() {
        let mut m: SmallMap<u32, u32> = SmallMap::default();
        for k in 0..100 {
            assert!(m.insert_new(k, k * 2));
            assert!(!m.insert_new(k, 0), "a key is only added once");
        }
        assert_eq!(m.len(), 100);
        assert!(matches!(m, SmallMap::Large(_)));
        for k in (0..100).step_by(2) {
            assert_eq!(m.remove(&k), Some(k * 2));
            assert_eq!(m.remove(&k), None);
        }
        assert!(m.contains_key(&1) && !m.contains_key(&0));
        let mut left: Vec<u32> = m.take_all().into_iter().map(|(k, _)| k).collect();
        left.sort();
        assert_eq!(left, (1..100).step_by(2).collect::<Vec<_>>());
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn small_maps_keep_insertion_order_and_cost_no_more_than_a_vec() {
        let mut m: SmallMap<u32, ()> = SmallMap::default();
        for k in [5, 3, 9] {
            m.insert_new(k, ());
        }
        m.remove(&3);
        let keys: Vec<u32> = m.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [5, 9]);
        assert_eq!(
            std::mem::size_of::<SmallMap<u32, ()>>(),
            std::mem::size_of::<Vec<(u32, ())>>()
        );
    }
}
