//! The simulator's named, seeded PRNG: xoshiro256++ seeded through splitmix64,
//! plus the few distributions the world model samples.
//!
//! What it is: a zero-dependency generator whose output depends only on the
//! seed, so the same seed gives bit-identical runs on every platform and
//! every future build. What it is not: cryptographic, or a general
//! statistics library.

/// splitmix64: expands one `u64` seed into well-mixed state words.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// xoshiro256++ (Blackman and Vigna), the simulator's only source of randomness.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut sm = SplitMix64::new(seed);
        Rng { s: [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()] }
    }

    /// An independent stream derived from this seed and a stream number, so
    /// adding a component does not shift the random numbers of the others.
    pub fn stream(seed: u64, stream: u64) -> Rng {
        Rng::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1]: safe to take the logarithm of.
    #[inline]
    pub fn f64_open0(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    #[inline]
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Exponential with the given mean, by the ziggurat method (Marsaglia and
    /// Tsang 2000; 256 layers): ≈ 99 % of samples cost one 64-bit draw, a
    /// multiply and a compare; the rest take a wedge or tail test with one
    /// `exp` or `ln`. Exact in distribution (not an approximation).
    #[inline]
    pub fn exp(&mut self, mean: f64) -> f64 {
        mean * self.exp1()
    }

    /// Standard exponential (mean 1), by the ziggurat.
    #[inline]
    pub fn exp1(&mut self) -> f64 {
        let z = ExpZiggurat::get();
        loop {
            let bits = self.next_u64();
            // Low 8 bits pick the layer; the top 53 bits give an independent uniform.
            let i = (bits & 0xff) as usize;
            let u = (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            let x = u * z.x[i];
            if x < z.x[i + 1] {
                return x;
            }
            if let Some(x) = self.exp1_slow(z, i, x) {
                return x;
            }
        }
    }

    /// The ziggurat's rare paths: the tail beyond the base layer and the
    /// wedges (rejection against the density).
    #[cold]
    #[inline(never)]
    fn exp1_slow(&mut self, z: &ExpZiggurat, i: usize, x: f64) -> Option<f64> {
        if i == 0 {
            // The exponential's tail beyond r is r + Exp(1) (memorylessness).
            return Some(EXP_ZIG_R - self.f64_open0().ln());
        }
        let y = z.f[i] + self.f64() * (z.f[i + 1] - z.f[i]);
        (y < (-x).exp()).then_some(x)
    }

    /// Uniform integer in [0, n); n must be > 0 (returns 0 for n == 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift; the tiny bias is irrelevant for simulation.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (p >= 1.0 || self.f64() < p)
    }

    /// Standard normal (Box–Muller, one value per call; simple and exact enough).
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let u1 = self.f64_open0();
        let u2 = self.f64();
        mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Right edge of the exponential ziggurat's base layer, and the area of each
/// of its 256 layers (Marsaglia and Tsang 2000, table for n = 256).
const EXP_ZIG_R: f64 = 7.697_117_470_131_487;
const EXP_ZIG_V: f64 = 3.949_659_822_581_572e-3;

/// Layer edges `x[i]` (x[0] is the base layer's virtual width v/f(r),
/// x[1] = r, decreasing to x[256] = 0) and densities f[i] = e^-x[i].
struct ExpZiggurat {
    x: [f64; 257],
    f: [f64; 257],
}

impl ExpZiggurat {
    fn build() -> ExpZiggurat {
        let mut x = [0.0; 257];
        let mut f = [0.0; 257];
        let fr = (-EXP_ZIG_R).exp();
        x[0] = EXP_ZIG_V / fr;
        x[1] = EXP_ZIG_R;
        for i in 2..256 {
            // Layer i-1 has area v: x[i-1] * (f(x[i]) - f(x[i-1])) = v.
            x[i] = -(EXP_ZIG_V / x[i - 1] + (-x[i - 1]).exp()).ln();
        }
        x[256] = 0.0;
        for i in 0..257 {
            f[i] = (-x[i]).exp();
        }
        f[0] = 0.0; // the base layer's floor
        ExpZiggurat { x, f }
    }

    #[inline]
    fn get() -> &'static ExpZiggurat {
        static TABLES: std::sync::OnceLock<ExpZiggurat> = std::sync::OnceLock::new();
        TABLES.get_or_init(ExpZiggurat::build)
    }
}

/// Zipf(s) over `n` ranks, sampled by binary search in a precomputed CDF.
#[derive(Clone, Debug)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// `s = 0` is uniform.
    pub fn new(n: usize, s: f64) -> Zipf {
        let n = n.max(1);
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for k in 1..=n {
            acc += 1.0 / (k as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }
    pub fn len(&self) -> usize {
        self.cdf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.cdf.is_empty()
    }
    /// A rank in [0, n): rank 0 is the most popular.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.f64();
        self.cdf.partition_point(|&c| c <= u).min(self.cdf.len() - 1)
    }
    /// Probability mass of the most popular rank.
    pub fn top_share(&self) -> f64 {
        self.cdf[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::stream(7, 1);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn moments_are_right() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let mean_exp: f64 = (0..n).map(|_| r.exp(2.0)).sum::<f64>() / n as f64;
        assert!((mean_exp - 2.0).abs() < 0.03, "{mean_exp}");
        let mean_u: f64 = (0..n).map(|_| r.f64()).sum::<f64>() / n as f64;
        assert!((mean_u - 0.5).abs() < 0.005);
        let xs: Vec<f64> = (0..n).map(|_| r.normal(10.0, 2.0)).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
        assert!((m - 10.0).abs() < 0.03 && (v.sqrt() - 2.0).abs() < 0.03, "{m} {v}");
    }

    #[test]
    fn ziggurat_exponential_matches_the_cdf_and_the_tail() {
        let mut r = Rng::new(11);
        let n = 1_000_000;
        let mut xs: Vec<f64> = (0..n).map(|_| r.exp1()).collect();
        xs.sort_by(f64::total_cmp);
        // Kolmogorov–Smirnov distance to 1 - e^-x; the 0.1 % critical value is 1.95/√n.
        let d = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let cdf = 1.0 - (-x).exp();
                (cdf - i as f64 / n as f64).abs().max((cdf - (i + 1) as f64 / n as f64).abs())
            })
            .fold(0.0, f64::max);
        assert!(d < 1.95 / (n as f64).sqrt(), "KS distance {d}");
        // The tail beyond the base layer (r ≈ 7.7) and the wedges are exercised.
        let beyond_8 = xs.iter().filter(|&&x| x > 8.0).count() as f64;
        let expect = n as f64 * (-8.0f64).exp(); // ≈ 335
        assert!((beyond_8 - expect).abs() < 5.0 * expect.sqrt(), "{beyond_8} vs {expect}");
        assert!(xs[0] >= 0.0 && xs[n - 1] > 12.0);
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.005 && (var - 1.0).abs() < 0.01, "{mean} {var}");
    }

    #[test]
    fn zipf_top_rank_dominates() {
        let z = Zipf::new(100, 1.2);
        let mut r = Rng::new(3);
        let hits = (0..100_000).filter(|_| z.sample(&mut r) == 0).count() as f64 / 100_000.0;
        assert!((hits - z.top_share()).abs() < 0.01);
        let u = Zipf::new(10, 0.0);
        assert!((u.top_share() - 0.1).abs() < 1e-12);
    }
}
