//! Robust statistics for diagnosis: median, quantiles, IQR/MAD scale and the
//! robust z-score of a value against a baseline sample.
//!
//! Not here: anything about time or change points; these functions work on
//! plain slices of finite values and never panic (empty input gives `None`).

/// The `q`-quantile (0..=1) of `sorted` with linear interpolation.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let q = q.clamp(0.0, 1.0);
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// Sorts the finite values of `xs` (NaN and infinities are dropped).
pub fn sorted_finite(xs: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = xs.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Location and scale of a baseline sample, robust to outliers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    pub median: f64,
    /// Never zero: floored as described in [`Baseline::fit`].
    pub scale: f64,
}

/// How to floor the scale of a baseline whose spread is (near) zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleFloor {
    /// Fraction of |median| the scale is at least (a flat series must move by
    /// at least this share of its level to look anomalous).
    pub relative: f64,
    /// For counts: the scale is at least `sqrt(max(median, 1))` (Poisson noise).
    pub poisson: bool,
    /// Absolute lower bound.
    pub absolute: f64,
}

impl Baseline {
    /// Median and a robust scale: the larger of IQR/1.349 and 1.4826·MAD
    /// (both estimate σ for normal data), floored by `floor`.
    pub fn fit(sample: &[f64], floor: ScaleFloor) -> Option<Baseline> {
        let sorted = sorted_finite(sample.iter().copied());
        let median = quantile_sorted(&sorted, 0.5)?;
        let iqr = quantile_sorted(&sorted, 0.75)? - quantile_sorted(&sorted, 0.25)?;
        let dev = sorted_finite(sorted.iter().map(|x| (x - median).abs()));
        let mad = quantile_sorted(&dev, 0.5)?;
        let mut scale = (iqr / 1.349).max(1.4826 * mad);
        scale = scale.max(floor.relative * median.abs()).max(floor.absolute);
        if floor.poisson {
            scale = scale.max(median.max(1.0).sqrt());
        }
        Some(Baseline { median, scale })
    }

    /// Signed robust z-score of `x`.
    pub fn z(&self, x: f64) -> f64 {
        (x - self.median) / self.scale
    }
}

/// The median of the finite values of `xs`.
pub fn median(xs: &[f64]) -> Option<f64> {
    quantile_sorted(&sorted_finite(xs.iter().copied()), 0.5)
}
