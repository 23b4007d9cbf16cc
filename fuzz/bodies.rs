//! The bodies of the fuzz targets, one function per target: what each does
//! with an input, and the property it checks (no panic; where stated, more).
//! Shared by the cargo-fuzz targets (`fuzz_targets/*.rs`) and by the bounded,
//! seeded mutation run in the normal test suite (`faultline-server`
//! `tests/it/fuzz.rs`), so both exercise the same code. Not here: the
//! differential OTLP trace check (`otlp_traces_protobuf`), which needs the
//! `opentelemetry-proto` types only the fuzz workspace has.
#![allow(dead_code)] // each cargo-fuzz target uses one function of this file

use faultline_core::Timestamp;

/// Alertmanager v2 (`/api/v2/alerts`), Alertmanager webhook v4, PagerDuty
/// Events v2 and the generic alert: alerts or errors, never a panic.
pub fn alert_decoders(data: &[u8]) {
    use faultline_server::http::alerts;
    let now = Timestamp::from_millis(1_800_000_000_000);
    let _ = alerts::decode_am_v2(data, now);
    let _ = alerts::decode_am_webhook(data, now);
    let _ = alerts::decode_pd(data, now, || "generated-dedup-key".to_owned());
    let _ = alerts::decode_generic(data, now);
}

/// The response configuration, as YAML and as TOML: a config or a clear
/// error. Secrets (`*_env`) resolve to a fixed value; a relative
/// `catalogue_file` is looked up under a directory that does not exist.
pub fn response_config(data: &[u8]) {
    use faultline_server::response_config::ResponseConfig;
    if let Ok(text) = std::str::from_utf8(data) {
        let base = std::path::Path::new("/nonexistent/faultline-fuzz");
        let env = |_: &str| Some("fuzz-secret".to_owned());
        let _ = ResponseConfig::from_text(text, false, base, &env);
        let _ = ResponseConfig::from_text(text, true, base, &env);
    }
}

/// Prometheus remote-write, on raw bytes (snappy framing errors) and on
/// snappy-compressed input (protobuf errors).
pub fn remote_write(data: &[u8]) {
    let _ = faultline_receivers::decode_remote_write(data, 1 << 20);
    if let Ok(c) = snap::raw::Encoder::new().compress_vec(data) {
        let _ = faultline_receivers::decode_remote_write(&c, 1 << 20);
    }
}

/// OTLP/JSON traces.
pub fn otlp_traces_json(data: &[u8]) {
    let _ = faultline_receivers::decode_otlp_traces(data, faultline_receivers::Encoding::Json);
}

/// OTLP metrics (JSON if it starts with `{`, else protobuf), fed to a graph.
pub fn otlp_metrics(data: &[u8]) {
    use faultline_receivers::{Encoding, decode_otlp_metrics};
    let enc = if data.first() == Some(&b'{') { Encoding::Json } else { Encoding::Protobuf };
    if let Ok(d) = decode_otlp_metrics(data, enc) {
        let mut g = faultline_core::graph::DependencyGraph::default();
        for p in &d.points {
            g.observe_metric(p, p.at);
        }
    }
}

/// OTLP logs (JSON if it starts with `{`, else protobuf).
pub fn otlp_logs(data: &[u8]) {
    use faultline_receivers::{Encoding, decode_otlp_logs};
    let enc = if data.first() == Some(&b'{') { Encoding::Json } else { Encoding::Protobuf };
    let _ = decode_otlp_logs(data, enc);
}

/// gzip: never more than the limit comes out.
pub fn gunzip(data: &[u8]) {
    if let Ok(out) = faultline_receivers::gunzip(data, 1 << 16) {
        assert!(out.len() <= 1 << 16, "gunzip produced {} bytes over a limit of 65536", out.len());
    }
}

/// Catalogue YAML (own format and Backstage).
pub fn catalogue_yaml(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = faultline_core::catalogue::Catalogue::from_yaml(s);
        let _ = faultline_core::catalogue::Catalogue::from_backstage_yaml(s);
    }
}
