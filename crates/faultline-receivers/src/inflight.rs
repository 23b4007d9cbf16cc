//! The budget of request bytes in flight: what every request body being
//! read, decompressed or decoded may hold in memory at once, across every
//! HTTP route that reads one (ingest and API share one budget).
//!
//! Why: the ingest queue bounds what waits for the graph, and the body limit
//! bounds one request, but neither bounds how many requests are being read
//! and decoded at the same time — 16 concurrent 7 MiB remote-write bodies
//! held 16 × (body + decompressed copy) before the queue could refuse any of
//! them. A request reserves its announced body size (`Content-Length`, or the
//! route's body limit when it is sent chunked) before its body is read, and
//! a decoder reserves what it decompresses; a reservation that does not fit
//! is refused at once with the protocol's retryable answer (the sender's
//! retry finds room when the others are done), never queued in memory.
//! A reservation is given back when it is dropped, so every exit path of a
//! handler releases it.
//!
//! Like the ingest queue, one request is always admitted when nothing else
//! is in flight, however large: a body the route accepts must not be
//! refused for ever.
//!
//! Not here: the body limits themselves (`DefaultBodyLimit` on each router)
//! or what is held after decoding (the ingest queue's byte budget).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Default bytes in flight over all requests: 64 MiB.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

/// The shared budget. Cheap to clone; clones share one count.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    max: usize,
    held: AtomicUsize,
    refused: Counter,
    held_gauge: Gauge,
}

impl Default for BodyBudget {
    fn default() -> BodyBudget {
        BodyBudget::new(DEFAULT_MAX_BYTES)
    }
}

impl BodyBudget {
    pub fn new(max: usize) -> BodyBudget {
        BodyBudget { inner: Arc::new(Inner { max: max.max(1), held: AtomicUsize::new(0), refused: Counter::default(), held_gauge: Gauge::default() }) }
    }

    pub fn max(&self) -> usize {
        self.inner.max
    }

    /// Bytes reserved now.
    pub fn held(&self) -> usize {
        self.inner.held.load(Ordering::Acquire)
    }

    /// Requests (or decodes) refused for want of room, since start.
    pub fn refused(&self) -> u64 {
        self.inner.refused.get()
    }

    /// `faultline_request_bytes_in_flight` and `faultline_request_bytes_refused_total`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register("faultline_request_bytes_in_flight", "Request body bytes being read or decoded now", self.inner.held_gauge.clone());
        registry.register("faultline_request_bytes_refused", "Requests refused because the bytes in flight were at their budget", self.inner.refused.clone());
    }

    /// Reserves `n` bytes, or `None` (counted) when they do not fit and
    /// something else is in flight.
    pub fn try_reserve(&self, n: usize) -> Option<Reservation> {
        // Add first, so concurrent reservations cannot all pass the check.
        let before = self.inner.held.fetch_add(n, Ordering::AcqRel);
        if before > 0 && before.saturating_add(n) > self.inner.max {
            self.inner.held.fetch_sub(n, Ordering::AcqRel);
            self.inner.refused.inc();
            return None;
        }
        self.inner.held_gauge.set(before.saturating_add(n) as i64);
        Some(Reservation { budget: self.clone(), bytes: n })
    }
}

/// Bytes held under the budget until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: BodyBudget,
    bytes: usize,
}

impl Reservation {
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let left = self.budget.inner.held.fetch_sub(self.bytes, Ordering::AcqRel).saturating_sub(self.bytes);
        self.budget.inner.held_gauge.set(left as i64);
    }
}

/// The bytes a request announces: its `Content-Length` (at most `limit`: a
/// longer body is refused by the body limit before it is read), or `limit`
/// when the length is not announced (chunked). Zero for a request without a
/// body.
pub fn announced(headers: &axum::http::HeaderMap, limit: usize) -> usize {
    use axum::http::header;
    match headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX).min(limit),
        None if headers.contains_key(header::TRANSFER_ENCODING) => limit,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_past_the_budget_are_refused_and_dropping_gives_them_back() {
        let b = BodyBudget::new(100);
        let first = b.try_reserve(60).expect("fits");
        assert!(b.try_reserve(50).is_none(), "60 + 50 > 100");
        let second = b.try_reserve(40).expect("60 + 40 fits exactly");
        assert_eq!(b.held(), 100);
        drop(first);
        assert_eq!(b.held(), 40);
        assert!(b.try_reserve(60).is_some());
        drop(second);
        assert_eq!(b.held(), 0);
        assert_eq!(b.refused(), 1);
    }

    #[test]
    fn one_oversized_request_is_admitted_when_nothing_else_is_in_flight() {
        let b = BodyBudget::new(10);
        let big = b.try_reserve(1_000).expect("alone, it is admitted");
        assert!(b.try_reserve(1).is_none(), "but nothing beside it");
        drop(big);
        assert!(b.try_reserve(1).is_some());
    }

    #[test]
    fn the_announced_size_is_the_content_length_capped_by_the_limit() {
        use axum::http::{HeaderMap, HeaderValue, header};
        let mut h = HeaderMap::new();
        assert_eq!(announced(&h, 1024), 0, "no body");
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("300"));
        assert_eq!(announced(&h, 1024), 300);
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("18446744073709551615"));
        assert_eq!(announced(&h, 1024), 1024, "an absurd length is the limit, not an overflow");
        h.remove(header::CONTENT_LENGTH);
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert_eq!(announced(&h, 1024), 1024, "chunked: the limit");
    }
}
