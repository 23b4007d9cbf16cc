//! `LatencySketch`: a small, mergeable latency sketch with relative-error
//! quantiles (the DDSketch idea: logarithmic buckets).
//!
//! A value `v` (milliseconds) lands in bucket `i = ceil(log_γ v)` with
//! `γ = (1+α)/(1−α)`; the bucket's representative `2γ^i/(γ+1)` is within
//! relative error `α` of every value in it. Buckets are a dense `u32` array
//! over the occupied index range, so inserting is O(1) and two sketches merge
//! by adding counts.
//!
//! What it is not: unbounded. At most [`MAX_BINS`] buckets are kept (a value
//! range of about four decades); when a sketch would span more, the lowest
//! buckets are folded together, so only the lowest quantiles of an extremely
//! wide distribution lose accuracy. Values below [`MIN_VALUE_MS`] (1 µs),
//! zero, negative or NaN count as zero.

/// Relative accuracy: every quantile is within 1 % of the exact value (we use
/// 0.99 % so rounding never pushes it over).
pub const RELATIVE_ACCURACY: f64 = 0.0099;
/// Smallest value distinguished from zero, in milliseconds (1 µs).
pub const MIN_VALUE_MS: f64 = 0.001;
/// Most buckets one sketch keeps (4 bytes each).
pub const MAX_BINS: usize = 480;

const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);

#[inline]
fn ln_gamma() -> f64 {
    GAMMA.ln()
}

/// A mergeable latency sketch (values in milliseconds).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencySketch {
    /// Bucket index of `bins[0]`.
    offset: i32,
    bins: Vec<u32>,
    zero: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl LatencySketch {
    pub fn new() -> LatencySketch {
        LatencySketch::default()
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the recorded values (ms).
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Exact smallest and largest value recorded, if any.
    pub fn min_max(&self) -> Option<(f64, f64)> {
        (self.count > 0).then_some((self.min, self.max))
    }

    /// Approximate heap bytes held by the buckets.
    pub fn heap_bytes(&self) -> usize {
        self.bins.capacity() * std::mem::size_of::<u32>()
    }

    /// Records one value in milliseconds.
    pub fn insert(&mut self, ms: f64) {
        self.insert_n(ms, 1);
    }

    fn insert_n(&mut self, ms: f64, n: u32) {
        if n == 0 {
            return;
        }
        let v = if ms.is_finite() && ms > 0.0 { ms } else { 0.0 };
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += u64::from(n);
        self.sum += v * f64::from(n);
        if v < MIN_VALUE_MS {
            self.zero += u64::from(n);
            return;
        }
        let idx = bucket_index(v);
        self.add_to_bucket(idx, n);
    }

    fn add_to_bucket(&mut self, idx: i32, n: u32) {
        if self.bins.is_empty() {
            self.offset = idx;
            self.bins.push(n);
            return;
        }
        let lo = self.offset;
        let hi = self.offset + self.bins.len() as i32 - 1;
        let idx = if idx < lo {
            if (hi - idx) as usize + 1 > MAX_BINS {
                // Too wide: fold into the lowest kept bucket.
                lo
            } else {
                let grow = (lo - idx) as usize;
                self.bins.splice(0..0, std::iter::repeat_n(0, grow));
                self.offset = idx;
                idx
            }
        } else if idx > hi {
            let new_len = (idx - lo) as usize + 1;
            if new_len > MAX_BINS {
                self.collapse_lowest(new_len - MAX_BINS);
            }
            let len = (idx - self.offset) as usize + 1;
            self.bins.resize(len, 0);
            idx
        } else {
            idx
        };
        let slot = &mut self.bins[(idx - self.offset) as usize];
        *slot = slot.saturating_add(n);
    }

    /// Folds the lowest `k` buckets into the next one up.
    fn collapse_lowest(&mut self, k: usize) {
        let k = k.min(self.bins.len().saturating_sub(1));
        if k == 0 {
            return;
        }
        let folded = self.bins[..=k].iter().fold(0u32, |a, &b| a.saturating_add(b));
        self.bins.drain(..k);
        self.bins[0] = folded;
        self.offset += k as i32;
    }

    /// Adds every value of `other` into `self`.
    pub fn merge(&mut self, other: &LatencySketch) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.min = other.min;
            self.max = other.max;
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.count += other.count;
        self.sum += other.sum;
        self.zero += other.zero;
        if other.bins.is_empty() {
            return;
        }
        // Grow once to the union range (bounded by MAX_BINS), then add.
        let o_lo = other.offset;
        let o_hi = other.offset + other.bins.len() as i32 - 1;
        if self.bins.is_empty() {
            self.offset = o_lo;
            self.bins = other.bins.clone();
            return;
        }
        let lo = self.offset.min(o_lo);
        let hi = (self.offset + self.bins.len() as i32 - 1).max(o_hi);
        let mut lo_kept = lo;
        if (hi - lo) as usize + 1 > MAX_BINS {
            lo_kept = hi - MAX_BINS as i32 + 1;
        }
        if lo_kept > self.offset {
            self.collapse_lowest((lo_kept - self.offset) as usize);
        }
        if lo_kept < self.offset {
            let grow = (self.offset - lo_kept) as usize;
            self.bins.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = lo_kept;
        }
        let need = (hi - self.offset) as usize + 1;
        if self.bins.len() < need {
            self.bins.resize(need, 0);
        }
        for (j, &c) in other.bins.iter().enumerate() {
            let idx = (o_lo + j as i32).max(self.offset);
            let slot = &mut self.bins[(idx - self.offset) as usize];
            *slot = slot.saturating_add(c);
        }
    }

    /// The `q`-quantile (0 ≤ q ≤ 1), within [`RELATIVE_ACCURACY`] of the exact
    /// value `sorted[floor(q·(n−1))]`; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !q.is_finite() {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        if rank < self.zero {
            return Some(0.0_f64.max(self.min));
        }
        let mut cum = self.zero;
        for (j, &c) in self.bins.iter().enumerate() {
            cum += u64::from(c);
            if cum > rank {
                let v = representative(self.offset + j as i32);
                return Some(v.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

/// A sketch as saved across a restart (`graph::persist`): its fields as
/// they are, checked on the way back in, since a saved file is input too.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedSketch {
    pub offset: i32,
    pub bins: Vec<u32>,
    pub zero: u64,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl LatencySketch {
    pub fn to_saved(&self) -> SavedSketch {
        SavedSketch { offset: self.offset, bins: self.bins.clone(), zero: self.zero, count: self.count, sum: self.sum, min: self.min, max: self.max }
    }

    /// The sketch back from its saved form, or why it cannot be: too many
    /// buckets, an offset no value in range maps to (bucket arithmetic
    /// must not overflow), counts that do not add up, non-finite sums.
    pub fn from_saved(s: SavedSketch) -> Result<LatencySketch, String> {
        // Values are clamped to [MIN_VALUE_MS, ~1e15 ms] in practice; a
        // wider margin still keeps `offset + MAX_BINS` far from i32's ends.
        let (lo, hi) = (bucket_index(MIN_VALUE_MS) - 1, bucket_index(1e18));
        if s.bins.len() > MAX_BINS {
            return Err(format!("{} buckets (at most {MAX_BINS})", s.bins.len()));
        }
        if !s.bins.is_empty() && !(lo..=hi).contains(&s.offset) {
            return Err(format!("bucket offset {} outside {lo}..={hi}", s.offset));
        }
        let binned: u64 = s.bins.iter().map(|&b| u64::from(b)).sum();
        if binned.checked_add(s.zero) != Some(s.count) {
            return Err(format!("count {} is not zero {} + buckets {binned}", s.count, s.zero));
        }
        if !(s.sum.is_finite() && s.min.is_finite() && s.max.is_finite()) || s.min > s.max {
            return Err("sum, min or max is not a finite, ordered value".into());
        }
        Ok(LatencySketch { offset: s.offset, bins: s.bins, zero: s.zero, count: s.count, sum: s.sum, min: s.min, max: s.max })
    }
}

#[inline]
fn bucket_index(v: f64) -> i32 {
    (v.ln() / ln_gamma()).ceil() as i32
}

#[inline]
fn representative(idx: i32) -> f64 {
    2.0 * GAMMA.powi(idx) / (GAMMA + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    fn check(values: &[f64]) {
        let mut s = LatencySketch::new();
        for &v in values {
            s.insert(v);
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
            let e = exact(&sorted, q);
            let got = s.quantile(q).unwrap();
            assert!((got - e).abs() <= 0.01 * e, "q={q}: got {got}, exact {e}");
        }
    }

    #[test]
    fn empty_sketch_has_no_quantiles() {
        assert_eq!(LatencySketch::new().quantile(0.5), None);
    }

    #[test]
    fn zero_and_garbage_values_count_as_zero() {
        let mut s = LatencySketch::new();
        s.insert(0.0);
        s.insert(f64::NAN);
        s.insert(-3.0);
        s.insert(10.0);
        assert_eq!(s.count(), 4);
        assert_eq!(s.quantile(0.5), Some(0.0));
        assert!((s.quantile(1.0).unwrap() - 10.0).abs() < 0.1);
    }

    #[test]
    fn too_wide_ranges_stay_bounded_and_keep_high_quantiles() {
        let mut s = LatencySketch::new();
        for i in 0..10_000 {
            s.insert(0.001 * 1.01f64.powi(i % 2000));
        }
        assert!(s.bins.len() <= MAX_BINS);
        let mut sorted: Vec<f64> = (0..10_000).map(|i| 0.001 * 1.01f64.powi(i % 2000)).collect();
        sorted.sort_by(f64::total_cmp);
        let e = exact(&sorted, 0.99);
        assert!((s.quantile(0.99).unwrap() - e).abs() <= 0.01 * e);
    }

    proptest! {
        #[test]
        fn quantiles_within_one_percent(exps in proptest::collection::vec(-0.3f64..3.7, 1..2000)) {
            // Log-uniform values from 0.5 ms to 5 s.
            let values: Vec<f64> = exps.iter().map(|e| 10f64.powf(*e)).collect();
            check(&values);
        }

        #[test]
        fn merge_equals_inserting_everything(a in proptest::collection::vec(-0.3f64..3.7, 0..500),
                                             b in proptest::collection::vec(-0.3f64..3.7, 0..500)) {
            let (mut sa, mut sb, mut all) = (LatencySketch::new(), LatencySketch::new(), LatencySketch::new());
            for e in &a { let v = 10f64.powf(*e); sa.insert(v); all.insert(v); }
            for e in &b { let v = 10f64.powf(*e); sb.insert(v); all.insert(v); }
            sa.merge(&sb);
            prop_assert_eq!(sa.count(), all.count());
            for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
                prop_assert_eq!(sa.quantile(q), all.quantile(q));
            }
            if !a.is_empty() || !b.is_empty() {
                let mut vals: Vec<f64> = a.iter().chain(&b).map(|e| 10f64.powf(*e)).collect();
                vals.sort_by(f64::total_cmp);
                for q in [0.5, 0.9, 0.99] {
                    let e = exact(&vals, q);
                    prop_assert!((sa.quantile(q).unwrap() - e).abs() <= 0.01 * e);
                }
            }
        }
    }
}
