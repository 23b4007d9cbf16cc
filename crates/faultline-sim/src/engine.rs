//! The discrete-event engine: virtual time in nanoseconds and an event queue
//! ordered by (time, sequence number).
//!
//! What it is: a binary heap of small `Copy` events; ties at the same instant
//! pop in the order they were scheduled, so a run depends only on its seed.
//! What it is not: a process/coroutine framework. Models are plain state
//! machines that pop an event, update their state and schedule more events.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Virtual time in nanoseconds since the start of the run.
pub type Nanos = u64;

pub const NANOS_PER_SEC: f64 = 1e9;

pub fn secs(s: f64) -> Nanos {
    if s <= 0.0 { 0 } else { (s * NANOS_PER_SEC).round() as Nanos }
}

pub fn to_secs(t: Nanos) -> f64 {
    t as f64 / NANOS_PER_SEC
}

struct Entry<E> {
    at: Nanos,
    seq: u64,
    ev: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Entry<E> {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> Ordering {
        o.at.cmp(&self.at).then(o.seq.cmp(&self.seq))
    }
}

/// The event queue. `now` only moves forward.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    seq: u64,
    now: Nanos,
    popped: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue::new()
    }
}

impl<E: Copy> EventQueue<E> {
    pub fn new() -> EventQueue<E> {
        EventQueue { heap: BinaryHeap::with_capacity(1024), seq: 0, now: 0, popped: 0 }
    }

    #[inline]
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Events popped so far (the engine's event count).
    pub fn popped(&self) -> u64 {
        self.popped
    }

    pub fn pending(&self) -> usize {
        self.heap.len()
    }

    /// Schedules `ev` at absolute time `at` (clamped to now: no time travel).
    #[inline]
    pub fn at(&mut self, at: Nanos, ev: E) {
        let at = at.max(self.now);
        self.seq += 1;
        self.heap.push(Entry { at, seq: self.seq, ev });
    }

    /// Schedules `ev` after `delay`.
    #[inline]
    pub fn after(&mut self, delay: Nanos, ev: E) {
        self.at(self.now.saturating_add(delay), ev);
    }

    /// Pops the next event if it is due at or before `until`, advancing `now`.
    #[inline]
    pub fn pop_until(&mut self, until: Nanos) -> Option<E> {
        if self.heap.peek()?.at > until {
            return None;
        }
        let e = self.heap.pop()?;
        self.now = e.at;
        self.popped += 1;
        Some(e.ev)
    }

    /// Time of the next event, if any.
    pub fn peek_time(&self) -> Option<Nanos> {
        self.heap.peek().map(|e| e.at)
    }

    /// Moves `now` forward to `t` when no event is due before it.
    pub fn advance_to(&mut self, t: Nanos) {
        if t > self.now {
            self.now = t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_schedule_order() {
        let mut q = EventQueue::new();
        q.at(5, 'b');
        q.at(3, 'a');
        q.at(5, 'c');
        q.at(9, 'd');
        let mut out = Vec::new();
        while let Some(e) = q.pop_until(6) {
            out.push((q.now(), e));
        }
        assert_eq!(out, vec![(3, 'a'), (5, 'b'), (5, 'c')]);
        assert_eq!(q.peek_time(), Some(9));
        q.after(0, 'e'); // at now=5, before 'd'
        assert_eq!(q.pop_until(u64::MAX), Some('e'));
        assert_eq!(q.pop_until(u64::MAX), Some('d'));
        assert_eq!(q.popped(), 5);
    }
}
