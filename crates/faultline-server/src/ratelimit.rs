//! Admission budgets for public endpoints: token buckets per source (client
//! address) under one global bucket, on whatever clock the caller reads
//! (`now` is passed in; nothing here reads a clock or does IO).
//!
//! What it is: `SourceLimiter`, which admits a request when both its
//! source's bucket and the global bucket hold a token, and otherwise says
//! which one refused and when a token will be there (for `Retry-After`). A
//! source is an IPv4 address or an IPv6 /64 (one subscriber line usually
//! owns a whole /64, so counting single IPv6 addresses would let one client
//! rotate through them).
//!
//! Memory is bounded: a source whose bucket has refilled is no different
//! from an unknown one and is forgotten (swept at most once a minute, and
//! whenever the table is full), and at most `max_sources` are tracked. Only
//! admitted requests add a source, so the global rate bounds the table too;
//! if it is full of busy sources anyway, the source idle longest is dropped
//! (it starts again with a full bucket — still under the global ceiling).
//!
//! What it is not: finding the client's address (`http::client_ip`) or
//! answering 429 (the handler).

use std::collections::HashMap;
use std::net::IpAddr;

use faultline_core::Timestamp;

/// A bucket of `per_minute` tokens refilled continuously at that rate.
#[derive(Clone, Copy, Debug, PartialEq)]
struct TokenBucket {
    tokens: f64,
    at: Timestamp,
}

/// A hair of slack: refills summed in steps must not miss a whole token by rounding.
const SLACK: f64 = 1e-9;

impl TokenBucket {
    fn full(per_minute: u32, now: Timestamp) -> TokenBucket {
        TokenBucket { tokens: capacity(per_minute), at: now }
    }

    /// The bucket as it is at `now` (time never runs backwards here).
    fn refilled(self, per_minute: u32, now: Timestamp) -> TokenBucket {
        let elapsed = (now - self.at).as_millis().max(0) as f64;
        TokenBucket { tokens: (self.tokens + elapsed * per_ms(per_minute)).min(capacity(per_minute)), at: self.at.max(now) }
    }

    fn has_token(&self) -> bool {
        self.tokens >= 1.0 - SLACK
    }

    fn is_full(&self, per_minute: u32) -> bool {
        self.tokens >= capacity(per_minute) - SLACK
    }

    fn take(&mut self) {
        self.tokens = (self.tokens - 1.0).max(0.0);
    }

    /// Whole seconds until the next token (at least 1).
    fn wait_secs(&self, per_minute: u32) -> u64 {
        (((1.0 - self.tokens).max(0.0) / per_ms(per_minute)) / 1000.0).ceil().max(1.0) as u64
    }
}

fn capacity(per_minute: u32) -> f64 {
    f64::from(per_minute.max(1))
}

fn per_ms(per_minute: u32) -> f64 {
    capacity(per_minute) / 60_000.0
}

/// Who a request is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    V4(std::net::Ipv4Addr),
    /// The upper 64 bits of an IPv6 address.
    V6Prefix(u64),
    /// No address is known (a router served without connection info): all
    /// such requests share one bucket.
    Unknown,
}

impl Source {
    pub fn of(ip: Option<IpAddr>) -> Source {
        match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => Source::V4(v4),
            Some(IpAddr::V6(v6)) => Source::V6Prefix((v6.to_bits() >> 64) as u64),
            None => Source::Unknown,
        }
    }
}

/// Why a request was not admitted, and in how many whole seconds the
/// refusing bucket has a token again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// This source used its own budget.
    Source { wait_secs: u64 },
    /// All sources together used the global budget.
    Global { wait_secs: u64 },
}

/// Per-source buckets under a global one. See the module doc.
#[derive(Debug)]
pub struct SourceLimiter {
    per_source: u32,
    global: u32,
    max_sources: usize,
    global_bucket: Option<TokenBucket>,
    sources: HashMap<Source, TokenBucket>,
    last_sweep: Option<Timestamp>,
}

/// How often idle sources are forgotten when the table is not full.
const SWEEP_EVERY_MS: i64 = 60_000;

impl SourceLimiter {
    /// `per_source` and `global` are tokens per minute (each also the burst);
    /// at most `max_sources` sources are remembered.
    pub fn new(per_source: u32, global: u32, max_sources: usize) -> SourceLimiter {
        SourceLimiter { per_source, global, max_sources: max_sources.max(1), global_bucket: None, sources: HashMap::new(), last_sweep: None }
    }

    /// Admits one request from `source` at `now`, taking a token from its
    /// bucket and from the global one, or takes nothing and says which
    /// refused (the source's own budget is looked at first, so one client
    /// over its budget does not use up the global one).
    pub fn admit(&mut self, source: Source, now: Timestamp) -> Result<(), Refused> {
        if self.last_sweep.is_none_or(|t| (now - t).as_millis() >= SWEEP_EVERY_MS) {
            self.sweep(now);
        }
        let mut own = self.sources.get(&source).map_or_else(|| TokenBucket::full(self.per_source, now), |b| b.refilled(self.per_source, now));
        let mut global = self.global_bucket.map_or_else(|| TokenBucket::full(self.global, now), |b| b.refilled(self.global, now));
        if !own.has_token() {
            return Err(Refused::Source { wait_secs: own.wait_secs(self.per_source) });
        }
        if !global.has_token() {
            return Err(Refused::Global { wait_secs: global.wait_secs(self.global) });
        }
        own.take();
        global.take();
        self.global_bucket = Some(global);
        if !self.sources.contains_key(&source) && self.sources.len() >= self.max_sources {
            self.sweep(now);
            if self.sources.len() >= self.max_sources {
                self.evict_longest_idle();
            }
        }
        self.sources.insert(source, own);
        Ok(())
    }

    /// How many sources are remembered.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// Forgets every source whose bucket has refilled by `now`.
    fn sweep(&mut self, now: Timestamp) {
        let per_source = self.per_source;
        self.sources.retain(|_, b| !b.refilled(per_source, now).is_full(per_source));
        self.last_sweep = Some(now);
    }

    /// Drops the source that last took a token longest ago (ties: the
    /// smallest source, so the choice does not depend on hash order).
    fn evict_longest_idle(&mut self) {
        if let Some(oldest) = self.sources.iter().min_by_key(|(s, b)| (b.at, **s)).map(|(s, _)| *s) {
            self.sources.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(T0 + ms)
    }

    fn ip(s: &str) -> Source {
        Source::of(Some(s.parse().unwrap()))
    }

    #[test]
    fn one_source_over_its_budget_leaves_the_others_theirs() {
        let mut l = SourceLimiter::new(2, 60, 100);
        assert_eq!(l.admit(ip("203.0.113.1"), at(0)), Ok(()));
        assert_eq!(l.admit(ip("203.0.113.1"), at(0)), Ok(()));
        for _ in 0..10 {
            assert_eq!(l.admit(ip("203.0.113.1"), at(0)), Err(Refused::Source { wait_secs: 30 }), "one token in 30 s at 2 a minute");
        }
        assert_eq!(l.admit(ip("198.51.100.7"), at(0)), Ok(()), "another client is not affected");
        assert_eq!(l.admit(ip("203.0.113.1"), at(29_999)), Err(Refused::Source { wait_secs: 1 }));
        assert_eq!(l.admit(ip("203.0.113.1"), at(30_000)), Ok(()), "refilled");
    }

    #[test]
    fn the_global_ceiling_holds_across_sources_and_refusals_cost_nothing() {
        let mut l = SourceLimiter::new(2, 3, 100);
        for (i, s) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"].into_iter().enumerate() {
            assert_eq!(l.admit(ip(s), at(i as i64)), Ok(()), "{s}");
        }
        assert_eq!(l.admit(ip("203.0.113.4"), at(3)), Err(Refused::Global { wait_secs: 20 }), "one token in 20 s at 3 a minute");
        // A refusal by the global budget took nothing from the source: once
        // the global bucket has a token, this source still has both of its own.
        assert_eq!(l.admit(ip("203.0.113.4"), at(20_003)), Ok(()));
        assert_eq!(l.admit(ip("203.0.113.4"), at(40_003)), Ok(()));
        // And a source refused by its own budget does not use the global one.
        let mut l = SourceLimiter::new(1, 2, 100);
        assert_eq!(l.admit(ip("203.0.113.1"), at(0)), Ok(()));
        assert!(matches!(l.admit(ip("203.0.113.1"), at(1)), Err(Refused::Source { .. })));
        assert_eq!(l.admit(ip("203.0.113.2"), at(2)), Ok(()), "the global token is still there");
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let mut l = SourceLimiter::new(1, 60, 100);
        assert_eq!(l.admit(ip("2001:db8:1:2::1"), at(0)), Ok(()));
        assert!(matches!(l.admit(ip("2001:db8:1:2:ffff::9"), at(0)), Err(Refused::Source { .. })), "same /64");
        assert_eq!(l.admit(ip("2001:db8:1:3::1"), at(0)), Ok(()), "another /64");
        assert_eq!(ip("::ffff:203.0.113.9"), ip("203.0.113.9"));
        assert_eq!(Source::of(None), Source::Unknown);
    }

    #[test]
    fn idle_sources_are_forgotten_and_the_table_is_capped() {
        let mut l = SourceLimiter::new(6, 1_000_000, 4);
        for i in 0..4 {
            assert_eq!(l.admit(ip(&format!("203.0.113.{i}")), at(i)), Ok(()));
        }
        assert_eq!(l.tracked(), 4);
        // Full: a new source drops the one idle longest (.0), not a newer one.
        assert_eq!(l.admit(ip("198.51.100.1"), at(10)), Ok(()));
        assert_eq!(l.tracked(), 4);
        for _ in 0..5 {
            assert_eq!(l.admit(ip("203.0.113.1"), at(11)), Ok(()));
        }
        assert!(matches!(l.admit(ip("203.0.113.1"), at(11)), Err(Refused::Source { .. })), ".1 was kept with its count");
        // One token refills in 10 s at 6 a minute, a whole bucket in 60 s: a
        // minute after their last request every source is idle and forgotten.
        assert_eq!(l.admit(ip("192.0.2.1"), at(60_011)), Ok(()));
        assert_eq!(l.tracked(), 1, "only the newest");
        // Never more than the cap, whatever the traffic.
        let mut l = SourceLimiter::new(6, 1_000_000, 50);
        for i in 0..10_000u32 {
            let _ = l.admit(Source::of(Some(IpAddr::V4(i.into()))), at(i64::from(i)));
            assert!(l.tracked() <= 50);
        }
    }
}
