//! The one integration-test binary of `faultline-receivers`: decoder tests
//! (`decode`) and servers driven by real clients nobody here wrote
//! (`server`: the OpenTelemetry Rust SDK's OTLP exporters over HTTP and
//! gRPC, reqwest for raw bodies; `python_sdk`: the OpenTelemetry Python SDK
//! from PyPI over HTTP and gRPC; `prometheus`: Debian's Prometheus
//! remote-writing what it scraped).

mod decode;
mod prometheus;
mod python_sdk;
mod server;

/// SplitMix64: a tiny, named, seeded PRNG for generated payloads.
pub struct SplitMix(pub u64);
impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
