//! The discrete-event engine: virtual time in nanoseconds and an event queue
//! ordered by (time, scheduling order).
//!
//! What it is: a calendar queue of small `Copy` events; ties at the same
//! instant pop in the order they were scheduled, so a run depends only on its
//! seed.
//! What it is not: a process/coroutine framework. Models are plain state
//! machines that pop an event, update their state and schedule more events.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Virtual time in nanoseconds since the start of the run.
pub type Nanos = u64;

pub const NANOS_PER_SEC: f64 = 1e9;

#[inline]
pub fn secs(s: f64) -> Nanos {
    // Round to nearest without libm's round(): s >= 0 here.
    if s <= 0.0 {
        return 0;
    }
    let ns = s * NANOS_PER_SEC + 0.5;
    // Below 2^63 the signed conversion is exact and cheaper; it gives the
    // same value as `as u64` there, which still handles the rest (saturating).
    if ns < 9.0e18 { ns as i64 as Nanos } else { ns as Nanos }
}

pub fn to_secs(t: Nanos) -> f64 {
    t as f64 / NANOS_PER_SEC
}

const SLOT_SHIFT: u32 = 20; // a slot is 2^20 ns ≈ 1.05 ms
const SLOTS: u64 = 4096; // the calendar covers ≈ 4.3 s ahead
const MASK: u64 = SLOTS - 1;
/// Above this many events a slot is sorted by the standard library's stable
/// sort instead of insertion sort.
const INSERTION_SORT_MAX: usize = 32;
/// Initial capacity of a slot (a few events per millisecond is typical), so
/// the first pass over the ring does not grow every slot one by one.
const SLOT_CAPACITY: usize = 8;

/// An event in the calendar: its time and payload. Scheduling order needs no
/// sequence number here: a slot's events are appended in scheduling order and
/// sorted stably by time.
#[derive(Clone, Copy)]
struct Entry<E> {
    at: Nanos,
    ev: E,
}

/// An event beyond the calendar's horizon, ordered by (time, sequence).
struct Far<E> {
    at: Nanos,
    seq: u64,
    ev: E,
}

impl<E> PartialEq for Far<E> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<E> Eq for Far<E> {}
impl<E> PartialOrd for Far<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Far<E> {
    /// Reversed, so the max-heap pops the earliest (time, sequence) first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// The event queue: a calendar queue.
///
/// Events due within the next ≈4.3 s go into a ring of ≈1 ms slots (O(1)
/// append); when time reaches a slot, its events are sorted once by time
/// (stable, so ties keep scheduling order; a slot that arrived in order costs
/// one pass) into `ready` and popped from the front. An event scheduled into
/// the current slot is inserted after every pending event due at or before it
/// (usually an append). Events further out wait in a small binary heap (`far`)
/// ordered by (time, sequence) and move into the ring, in that order, as soon
/// as the calendar covers them, before any event can be scheduled directly
/// into their slot. So every event pops in exact (time, scheduling order).
/// `now` only moves forward.
pub struct EventQueue<E> {
    /// The current slot's events sorted by time; `ready[pos..]` are pending.
    ready: Vec<Entry<E>>,
    pos: usize,
    slots: Vec<Vec<Entry<E>>>,
    in_slots: usize,
    /// The slot whose events are in `ready`; every event in `slots` is later.
    cur: u64,
    far: BinaryHeap<Far<E>>,
    far_seq: u64,
    /// The slot of the earliest far event (`u64::MAX` when there is none).
    far_slot: u64,
    now: Nanos,
    popped: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue::new()
    }
}

/// Stable sort by time: insertion sort for the usual handful of events (one
/// pass when they arrived in order), the standard stable sort beyond that.
#[inline]
fn sort_by_time<E: Copy>(v: &mut [Entry<E>]) {
    if v.len() > INSERTION_SORT_MAX {
        v.sort_by_key(|e| e.at);
        return;
    }
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1].at > x.at {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}

impl<E: Copy> EventQueue<E> {
    pub fn new() -> EventQueue<E> {
        EventQueue {
            ready: Vec::with_capacity(64),
            pos: 0,
            slots: (0..SLOTS).map(|_| Vec::with_capacity(SLOT_CAPACITY)).collect(),
            in_slots: 0,
            cur: 0,
            far: BinaryHeap::new(),
            far_seq: 0,
            far_slot: u64::MAX,
            now: 0,
            popped: 0,
        }
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
        self.ready.len() - self.pos + self.in_slots + self.far.len()
    }

    /// Schedules `ev` at absolute time `at` (clamped to now: no time travel).
    #[inline(always)]
    pub fn at(&mut self, at: Nanos, ev: E) {
        let at = at.max(self.now);
        let s = at >> SLOT_SHIFT;
        if s.wrapping_sub(self.cur + 1) < SLOTS - 1 {
            // cur < s < cur + SLOTS: the common case.
            self.slots[(s & MASK) as usize].push(Entry { at, ev });
            self.in_slots += 1;
        } else if s <= self.cur {
            self.insert_ready(at, ev);
        } else {
            self.push_far(at, ev);
        }
    }

    #[inline(never)]
    fn push_far(&mut self, at: Nanos, ev: E) {
        self.far_seq += 1;
        self.far.push(Far { at, seq: self.far_seq, ev });
        self.far_slot = self.far_slot.min(at >> SLOT_SHIFT);
    }

    /// Due in the current slot: after every pending event due at or before `at`.
    #[inline(never)]
    fn insert_ready(&mut self, at: Nanos, ev: E) {
        match self.ready.last() {
            Some(last) if last.at > at && self.pos < self.ready.len() => {
                let i = self.pos + self.ready[self.pos..].partition_point(|x| x.at <= at);
                self.ready.insert(i, Entry { at, ev });
            }
            _ => self.ready.push(Entry { at, ev }),
        }
    }

    /// Schedules `ev` after `delay`.
    #[inline(always)]
    pub fn after(&mut self, delay: Nanos, ev: E) {
        self.at(self.now.saturating_add(delay), ev);
    }

    /// Moves far events that the calendar now covers into their slots, in
    /// (time, sequence) order.
    fn pull_far(&mut self) {
        while let Some(f) = self.far.peek() {
            let s = f.at >> SLOT_SHIFT;
            if s >= self.cur + SLOTS {
                break;
            }
            let Some(f) = self.far.pop() else { break };
            if s <= self.cur {
                self.insert_ready(f.at, f.ev);
            } else {
                self.slots[(s & MASK) as usize].push(Entry { at: f.at, ev: f.ev });
                self.in_slots += 1;
            }
        }
        self.far_slot = self.far.peek().map_or(u64::MAX, |f| f.at >> SLOT_SHIFT);
    }

    /// Makes `ready[pos..]` non-empty if any event is pending. Returns false
    /// when the queue is empty.
    #[inline]
    fn fill_ready(&mut self) -> bool {
        self.pos < self.ready.len() || self.next_slot()
    }

    /// Moves to the next non-empty slot.
    #[inline(never)]
    fn next_slot(&mut self) -> bool {
        self.ready.clear();
        self.pos = 0;
        loop {
            if self.in_slots == 0 {
                // Nothing in the ring: jump straight to the first far event.
                let Some(f) = self.far.peek() else { return false };
                self.cur = f.at >> SLOT_SHIFT;
                self.pull_far();
                if !self.ready.is_empty() {
                    return true;
                }
                continue;
            }
            self.cur += 1;
            if self.far_slot < self.cur + SLOTS {
                self.pull_far();
            }
            let slot = &mut self.slots[(self.cur & MASK) as usize];
            if !slot.is_empty() {
                self.in_slots -= slot.len();
                std::mem::swap(&mut self.ready, slot);
                sort_by_time(&mut self.ready);
                return true;
            }
        }
    }

    /// Pops the next event if it is due at or before `until`, advancing `now`.
    #[inline]
    pub fn pop_until(&mut self, until: Nanos) -> Option<E> {
        if !self.fill_ready() {
            return None;
        }
        let e = *self.ready.get(self.pos)?;
        if e.at > until {
            return None;
        }
        self.pos += 1;
        self.now = e.at;
        self.popped += 1;
        Some(e.ev)
    }

    /// Time of the next event, if any.
    pub fn peek_time(&mut self) -> Option<Nanos> {
        if !self.fill_ready() {
            return None;
        }
        self.ready.get(self.pos).map(|e| e.at)
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

    #[test]
    fn ties_keep_scheduling_order_across_the_far_heap_the_ring_and_the_current_slot() {
        let mut q = EventQueue::new();
        let t = 10_000_000_000; // beyond the ring's horizon: goes to the far heap
        q.at(t, 1);
        q.at(t, 2);
        q.at(t - 1_000_000_000, 0); // within the horizon: the ring
        assert_eq!(q.pop_until(u64::MAX), Some(0));
        // Now t is within the horizon: later events at t join the ring after 1 and 2.
        q.at(t, 3);
        q.at(t + 1, 5);
        assert_eq!(q.pop_until(u64::MAX), Some(1));
        // The current slot: a tie with pending events goes after them.
        q.at(t, 4);
        assert_eq!(q.pending(), 4);
        let rest: Vec<i32> = std::iter::from_fn(|| q.pop_until(u64::MAX)).collect();
        assert_eq!(rest, vec![2, 3, 4, 5]);
        assert_eq!(q.now(), t + 1);
        // A slot with many out-of-order events (the stable-sort path).
        for i in 0..100u64 {
            q.at(t + 1 + (99 - i) % 10, i as i32);
        }
        let out: Vec<i32> = std::iter::from_fn(|| q.pop_until(u64::MAX)).collect();
        let mut expect: Vec<i32> = (0..100).collect();
        expect.sort_by_key(|&i| ((99 - i) % 10, i));
        assert_eq!(out, expect);
    }

    #[test]
    fn secs_rounds_to_the_nearest_nanosecond_and_saturates() {
        assert_eq!(secs(-1.0), 0);
        assert_eq!(secs(1.5e-9), 2);
        assert_eq!(secs(0.1), 100_000_000);
        assert_eq!(secs(1e12), u64::MAX);
        assert_eq!(secs(f64::INFINITY), u64::MAX);
    }

    #[test]
    fn matches_a_sort_by_time_then_sequence_under_random_scheduling() {
        let mut rng = crate::rng::Rng::new(42);
        let mut q = EventQueue::new();
        let mut reference: Vec<(u64, u64)> = Vec::new(); // (time, id)
        let mut out = Vec::new();
        let mut id = 0u64;
        for _ in 0..2000 {
            // Schedule 0..3 events at now + small delays (many ties), then pop one.
            for _ in 0..rng.below(4) {
                let at = q.now() + if rng.chance(0.1) { rng.below(10_000_000_000) } else { rng.below(5) * 1_000_000 };
                q.at(at, id);
                reference.push((at, id));
                id += 1;
            }
            if let Some(e) = q.pop_until(u64::MAX) {
                out.push(e);
            }
        }
        while let Some(e) = q.pop_until(u64::MAX) {
            out.push(e);
        }
        // Pops are in (time, id) order among events available at each point;
        // globally, times never decrease and equal times keep scheduling order.
        let times: Vec<u64> = out.iter().map(|&e| reference[e as usize].0).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        for w in out.windows(2) {
            let (a, b) = (reference[w[0] as usize], reference[w[1] as usize]);
            if a.0 == b.0 {
                assert!(a.1 < b.1, "ties pop in scheduling order");
            }
        }
        assert_eq!(out.len() as u64, id);
    }
}
