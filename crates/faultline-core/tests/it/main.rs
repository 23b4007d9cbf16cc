//! The one integration-test binary of `faultline-core` (one binary per crate
//! keeps link time down). Each module is one area: tidy checks, fixture-driven
//! oracle tests against `../shared/data`, and so on.

mod detect_oracles;
mod probe_oracles;
mod response;
mod slo_oracles;
mod slo_promtool;
mod tidy;
