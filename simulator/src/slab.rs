//! A free-list arena with generation tags, so events that outlive their object (a timeout of a
//! call that already finished) are recognised as stale without searching.

#[derive(Debug, Clone)]
pub struct Slab<T> {
    items: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    live: usize,
}

/// (index, generation).
pub type Key = (u32, u32);

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }
}

impl<T> Slab<T> {
    #[inline]
    pub fn insert(&mut self, v: T) -> Key {
        self.live += 1;
        if let Some(i) = self.free.pop() {
            let slot = &mut self.items[i as usize];
            slot.1 = Some(v);
            (i, slot.0)
        } else {
            self.items.push((0, Some(v)));
            ((self.items.len() - 1) as u32, 0)
        }
    }

    #[inline]
    pub fn get(&self, k: Key) -> Option<&T> {
        match self.items.get(k.0 as usize) {
            Some((g, Some(v))) if *g == k.1 => Some(v),
            _ => None,
        }
    }

    #[inline]
    pub fn get_mut(&mut self, k: Key) -> Option<&mut T> {
        match self.items.get_mut(k.0 as usize) {
            Some((g, Some(v))) if *g == k.1 => Some(v),
            _ => None,
        }
    }

    #[inline]
    pub fn remove(&mut self, k: Key) -> Option<T> {
        let slot = self.items.get_mut(k.0 as usize)?;
        if slot.0 != k.1 {
            return None;
        }
        let v = slot.1.take()?;
        slot.0 = slot.0.wrapping_add(1);
        self.free.push(k.0);
        self.live -= 1;
        Some(v)
    }

    /// Keys of the live items `f` accepts, in index order.
    pub fn keys_where(&self, f: impl Fn(&T) -> bool) -> Vec<Key> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, (g, v))| v.as_ref().filter(|v| f(v)).map(|_| (i as u32, *g)))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
}
