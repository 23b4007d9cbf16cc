//! Faultline's telemetry receivers: OTLP over gRPC and HTTP (protobuf and
//! JSON, gzip) for traces, metrics and logs, and Prometheus remote-write 1.0,
//! decoded into `faultline-core` signals and fed through a bounded queue into
//! the core dependency graph.
//!
//! - Pure decoders: [`decode_otlp_traces`], [`decode_otlp_metrics`],
//!   [`decode_otlp_logs`], [`decode_remote_write`], [`gunzip`].
//! - [`Ingest`]: the bounded queue, the task that feeds the
//!   `DependencyGraph`, the axum [`Ingest::router`], the tonic
//!   [`Ingest::serve_grpc`], graph queries and Prometheus counters.
//!
//! - [`inflight`]: the budget of request bytes being read and decoded at
//!   once, shared with the server's API routes.
//! - [`auth`]: reading a sender's credential (`Bearer`, Basic) and the
//!   [`auth::Authenticator`] seam the server implements over its tokens.
//!
//! Not here: the main HTTP API, configuration files or the CLI (the server
//! crate mounts the router and owns the listeners' flags).

pub mod auth;
mod grpc;
mod http;
pub mod inflight;
mod ingest;
mod metrics;
mod traces;
mod wire;

pub use ingest::{Ingest, IngestClock, IngestConfig, IngestStats};

pub use metrics::{
    DecodedLogs, DecodedMetrics, ScanSummary, decode_otlp_logs, decode_otlp_metrics, decode_remote_write, logs_from_request, metrics_from_request, prompb,
    scan_remote_write, unsnappy,
};
pub use traces::{DecodedSpans, UNKNOWN_SERVICE, decode_otlp_traces, decode_traces_protobuf, spans_from_request};

/// How an OTLP body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// What a request rejected (OTLP partial success): how many records and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartialSuccess {
    pub rejected: i64,
    pub message: String,
}

/// Why a payload could not be decoded. The message says what and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid OTLP protobuf: {0}")]
    Protobuf(String),
    #[error("invalid remote-write protobuf: {0}")]
    RemoteWrite(String),
    #[error("invalid OTLP JSON: {0}")]
    Json(String),
    #[error("invalid snappy block: {0}")]
    Snappy(String),
    #[error("invalid gzip: {0}")]
    Gzip(String),
    #[error("payload larger than {limit} bytes after decompression")]
    TooLarge { limit: usize },
}

impl DecodeError {
    /// A short label for metrics: `protobuf` (OTLP or remote-write), `json`, `snappy`, `gzip`, `too_large`.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Protobuf(_) | DecodeError::RemoteWrite(_) => "protobuf",
            DecodeError::Json(_) => "json",
            DecodeError::Snappy(_) => "snappy",
            DecodeError::Gzip(_) => "gzip",
            DecodeError::TooLarge { .. } => "too_large",
        }
    }
}

/// Decompresses a gzip body, refusing to produce more than `max` bytes (a
/// small compressed body can expand enormously).
pub fn gunzip(bytes: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read;
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(max));
    let mut d = flate2::read::GzDecoder::new(bytes).take(max as u64 + 1);
    d.read_to_end(&mut out).map_err(|e| DecodeError::Gzip(e.to_string()))?;
    if out.len() > max {
        return Err(DecodeError::TooLarge { limit: max });
    }
    Ok(out)
}
