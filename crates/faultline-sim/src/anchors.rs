//! Published-behaviour models that do not fit the request/response world:
//! the optimistic-concurrency contention model behind AWS's "Exponential
//! Backoff and Jitter" (Brooker, 2015), run on the same event engine.
//!
//! What it is: N clients racing to update one versioned row (read, then a
//! conditional write; on conflict back off and start over), with network
//! delay |N(10 ms, 2 ms)| per message and an infinitely fast server, as the
//! post describes. What it is not: a copy of the post's code; the model is
//! re-implemented from its description (simulator-anchors.md §2.1).

use crate::engine::{EventQueue, secs, to_secs};
use crate::rng::Rng;
use crate::scenario::{BackoffKind, Jitter};

/// A backoff strategy of the AWS comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    NoBackoff,
    Exponential,
    FullJitter,
    EqualJitter,
    Decorrelated,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [Strategy::NoBackoff, Strategy::Exponential, Strategy::FullJitter, Strategy::EqualJitter, Strategy::Decorrelated];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::NoBackoff => "no backoff",
            Strategy::Exponential => "exponential",
            Strategy::FullJitter => "full jitter",
            Strategy::EqualJitter => "equal jitter",
            Strategy::Decorrelated => "decorrelated",
        }
    }

    /// The same strategy as world-model retry settings.
    pub fn as_policy(self) -> (BackoffKind, Jitter) {
        match self {
            Strategy::NoBackoff => (BackoffKind::None, Jitter::None),
            Strategy::Exponential => (BackoffKind::Exponential, Jitter::None),
            Strategy::FullJitter => (BackoffKind::Exponential, Jitter::Full),
            Strategy::EqualJitter => (BackoffKind::Exponential, Jitter::Equal),
            Strategy::Decorrelated => (BackoffKind::Exponential, Jitter::Decorrelated),
        }
    }
}

#[derive(Clone, Copy)]
enum OccEv {
    ReadAtServer(u32),
    ReadReply(u32, u64),
    WriteAtServer(u32, u64),
    WriteReply(u32, bool),
    Resend(u32),
}

/// Result of one contention trial: write calls made and when the last client finished.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OccResult {
    pub calls: u64,
    pub completion_ms: f64,
    pub events: u64,
}

/// One trial: `clients` race on one row. Base 5 ms, cap 2 s, as in the post.
pub fn occ_trial(clients: u32, strategy: Strategy, seed: u64) -> OccResult {
    let (base, cap) = (0.005, 2.0);
    let mut rng = Rng::new(seed);
    let mut q: EventQueue<OccEv> = EventQueue::new();
    let mut failures = vec![0i32; clients as usize];
    let mut sleep = vec![base; clients as usize];
    let mut version = 0u64;
    let mut calls = 0u64;
    let mut done = 0u32;
    let mut last = 0u64;
    let net = |rng: &mut Rng| secs(rng.normal(0.010, 0.002).abs());
    for c in 0..clients {
        let d = net(&mut rng);
        q.at(d, OccEv::ReadAtServer(c));
    }
    while let Some(ev) = q.pop_until(u64::MAX) {
        match ev {
            OccEv::ReadAtServer(c) => {
                let d = net(&mut rng);
                q.after(d, OccEv::ReadReply(c, version));
            }
            OccEv::ReadReply(c, v) => {
                calls += 1;
                let d = net(&mut rng);
                q.after(d, OccEv::WriteAtServer(c, v));
            }
            OccEv::WriteAtServer(c, v) => {
                let ok = v == version;
                if ok {
                    version += 1;
                }
                let d = net(&mut rng);
                q.after(d, OccEv::WriteReply(c, ok));
            }
            OccEv::WriteReply(c, ok) => {
                if ok {
                    done += 1;
                    last = q.now();
                    if done == clients {
                        break;
                    }
                    continue;
                }
                let i = c as usize;
                failures[i] += 1;
                let expo = (base * 2f64.powi(failures[i])).min(cap);
                let s = match strategy {
                    Strategy::NoBackoff => 0.0,
                    Strategy::Exponential => expo,
                    Strategy::FullJitter => rng.uniform(0.0, expo),
                    Strategy::EqualJitter => expo / 2.0 + rng.uniform(0.0, expo / 2.0),
                    Strategy::Decorrelated => {
                        sleep[i] = rng.uniform(base, sleep[i] * 3.0).min(cap);
                        sleep[i]
                    }
                };
                q.after(secs(s), OccEv::Resend(c));
            }
            OccEv::Resend(c) => {
                let d = net(&mut rng);
                q.after(d, OccEv::ReadAtServer(c));
            }
        }
    }
    OccResult { calls, completion_ms: to_secs(last) * 1000.0, events: q.popped() }
}

/// Mean calls and completion time over `trials` seeds.
pub fn occ_mean(clients: u32, strategy: Strategy, trials: u32, seed: u64) -> (f64, f64) {
    let mut c = 0.0;
    let mut t = 0.0;
    for k in 0..trials {
        let r = occ_trial(clients, strategy, seed.wrapping_mul(1000).wrapping_add(k as u64));
        c += r.calls as f64;
        t += r.completion_ms;
    }
    (c / trials as f64, t / trials as f64)
}
