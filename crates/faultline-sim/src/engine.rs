//! The discrete-event engine: virtual time in nanoseconds and an event queue
//! ordered by (time, sequence number).
//!
//! What it is: a calendar queue of small `Copy` events keyed by (time, sequence);
//! ties at the same instant pop in the order they were scheduled, so a run
//! depends only on its seed.
//! What it is not: a process/coroutine framework. Models are plain state
//! machines that pop an event, update their state and schedule more events.

/// Virtual time in nanoseconds since the start of the run.
pub type Nanos = u64;

pub const NANOS_PER_SEC: f64 = 1e9;

pub fn secs(s: f64) -> Nanos {
    // Round to nearest without libm's round(): s >= 0 here.
    if s <= 0.0 { 0 } else { (s * NANOS_PER_SEC + 0.5) as Nanos }
}

pub fn to_secs(t: Nanos) -> f64 {
    t as f64 / NANOS_PER_SEC
}

/// (time, sequence) packed into one key: unique, and ordered exactly as the
/// pair is.
#[inline]
fn key(at: Nanos, seq: u64) -> u128 {
    ((at as u128) << 64) | seq as u128
}

const SLOT_SHIFT: u32 = 20; // a slot is 2^20 ns ≈ 1.05 ms
const SLOTS: u64 = 4096; // the calendar covers ≈ 4.3 s ahead
const MASK: u64 = SLOTS - 1;

/// The event queue: a calendar queue over packed (time, sequence) keys.
///
/// Events due within the next ≈4.3 s go into a ring of ≈1 ms slots (O(1)
/// insert); the current slot is sorted once into `ready` and popped from its
/// end. Events further out wait in a small binary heap (`far`) and move into
/// the ring as time reaches them. Every event still pops in exact (time,
/// sequence) order. `now` only moves forward.
pub struct EventQueue<E> {
    ready: Vec<(u128, E)>,
    slots: Vec<Vec<(u128, E)>>,
    in_slots: usize,
    /// The slot whose events are in `ready`; every event in `slots` is later.
    cur: u64,
    far: std::collections::BinaryHeap<std::cmp::Reverse<FarKey>>,
    far_items: Vec<Option<E>>,
    far_free: Vec<usize>,
    seq: u64,
    now: Nanos,
    popped: u64,
}

/// A far-future event's key and the index of its payload.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FarKey(u128, usize);

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue::new()
    }
}

#[inline]
fn slot_of(k: u128) -> u64 {
    ((k >> 64) as u64) >> SLOT_SHIFT
}

impl<E: Copy> EventQueue<E> {
    pub fn new() -> EventQueue<E> {
        EventQueue {
            ready: Vec::with_capacity(64),
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            in_slots: 0,
            cur: 0,
            far: std::collections::BinaryHeap::new(),
            far_items: Vec::new(),
            far_free: Vec::new(),
            seq: 0,
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
        self.ready.len() + self.in_slots + self.far.len()
    }

    /// Schedules `ev` at absolute time `at` (clamped to now: no time travel).
    #[inline]
    pub fn at(&mut self, at: Nanos, ev: E) {
        let at = at.max(self.now);
        self.seq += 1;
        self.insert(key(at, self.seq), ev);
    }

    #[inline]
    fn insert(&mut self, k: u128, ev: E) {
        let s = slot_of(k);
        if s <= self.cur {
            // Due in the current slot: keep `ready` sorted, latest first.
            let pos = self.ready.partition_point(|x| x.0 > k);
            self.ready.insert(pos, (k, ev));
        } else if s < self.cur + SLOTS {
            self.slots[(s & MASK) as usize].push((k, ev));
            self.in_slots += 1;
        } else {
            let i = match self.far_free.pop() {
                Some(i) => {
                    self.far_items[i] = Some(ev);
                    i
                }
                None => {
                    self.far_items.push(Some(ev));
                    self.far_items.len() - 1
                }
            };
            self.far.push(std::cmp::Reverse(FarKey(k, i)));
        }
    }

    /// Schedules `ev` after `delay`.
    #[inline]
    pub fn after(&mut self, delay: Nanos, ev: E) {
        self.at(self.now.saturating_add(delay), ev);
    }

    /// Moves far events that the calendar now covers into their slots.
    fn pull_far(&mut self) {
        while let Some(&std::cmp::Reverse(FarKey(k, i))) = self.far.peek() {
            if slot_of(k) >= self.cur + SLOTS {
                break;
            }
            self.far.pop();
            let ev = self.far_items[i].take();
            self.far_free.push(i);
            if let Some(ev) = ev {
                let s = slot_of(k);
                if s <= self.cur {
                    let pos = self.ready.partition_point(|x| x.0 > k);
                    self.ready.insert(pos, (k, ev));
                } else {
                    self.slots[(s & MASK) as usize].push((k, ev));
                    self.in_slots += 1;
                }
            }
        }
    }

    /// Makes `ready` non-empty if any event is pending. Returns false when empty.
    #[inline]
    fn fill_ready(&mut self) -> bool {
        if !self.ready.is_empty() {
            return true;
        }
        loop {
            if self.in_slots == 0 {
                // Nothing in the ring: jump straight to the first far event.
                let Some(&std::cmp::Reverse(FarKey(k, _))) = self.far.peek() else { return false };
                self.cur = slot_of(k);
                self.pull_far();
                if !self.ready.is_empty() {
                    return true;
                }
                continue;
            }
            self.cur += 1;
            if !self.far.is_empty() {
                self.pull_far();
            }
            let slot = &mut self.slots[(self.cur & MASK) as usize];
            if !slot.is_empty() {
                self.in_slots -= slot.len();
                std::mem::swap(&mut self.ready, slot);
                self.ready.sort_unstable_by_key(|x| std::cmp::Reverse(x.0));
                return true;
            }
            if !self.ready.is_empty() {
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
        let &(k, _) = self.ready.last()?;
        let at = (k >> 64) as Nanos;
        if at > until {
            return None;
        }
        let (_, ev) = self.ready.pop()?;
        self.now = at;
        self.popped += 1;
        Some(ev)
    }

    /// Time of the next event, if any.
    pub fn peek_time(&mut self) -> Option<Nanos> {
        if !self.fill_ready() {
            return None;
        }
        self.ready.last().map(|&(k, _)| (k >> 64) as Nanos)
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
