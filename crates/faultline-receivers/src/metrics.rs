//! OTLP metrics and logs, and Prometheus remote-write 1.0, decoded into core
//! signals ([`MetricPoint`], [`LogEvent`]).
//!
//! Metrics: gauge and sum points become one point each; histograms,
//! exponential histograms and summaries become `<name>_count` and
//! `<name>_sum` points. Labels are the point attributes (scalars only, at
//! most [`MAX_LABELS`]); the resource's `service.name` becomes the point's
//! service. Logs: only records at ERROR severity or above are kept as
//! signals (Faultline is not a log store); the rest are counted.
//! Remote-write: snappy (raw block format) then protobuf `WriteRequest`,
//! with the decompressed size checked before allocating.
//!
//! Not here: HTTP, queues, or windowing (the core graph does that).

use std::collections::BTreeMap;

use faultline_core::ServiceName;
use faultline_core::signal::{LogEvent, MetricPoint};
use faultline_core::time::Timestamp;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;

use crate::traces::resource_service;
use crate::{DecodeError, Encoding, PartialSuccess};

/// Most labels kept per point.
pub const MAX_LABELS: usize = 32;
/// Longest label value / log body kept, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;
pub const MAX_LOG_BODY: usize = 4096;

fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn scalar(kv: &KeyValue) -> Option<String> {
    Some(match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => clip(s, MAX_VALUE_LEN),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        _ => return None,
    })
}

fn labels(attrs: &[KeyValue]) -> BTreeMap<String, String> {
    attrs.iter().filter_map(|kv| Some((clip(&kv.key, 256), scalar(kv)?))).take(MAX_LABELS).collect()
}

fn ts(ns: u64) -> Timestamp {
    Timestamp::from_millis((ns / 1_000_000).min(i64::MAX as u64) as i64)
}

/// Decoded metric points and what was rejected.
#[derive(Debug, Default, PartialEq)]
pub struct DecodedMetrics {
    pub points: Vec<MetricPoint>,
    pub rejected: PartialSuccess,
}

/// Decodes an OTLP `ExportMetricsServiceRequest` body.
pub fn decode_otlp_metrics(bytes: &[u8], encoding: Encoding) -> Result<DecodedMetrics, DecodeError> {
    let req = match encoding {
        Encoding::Protobuf => ExportMetricsServiceRequest::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))?,
        Encoding::Json => serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?,
    };
    Ok(metrics_from_request(&req))
}

/// Converts a decoded metrics request into points.
pub fn metrics_from_request(req: &ExportMetricsServiceRequest) -> DecodedMetrics {
    let mut out = DecodedMetrics::default();
    for rm in &req.resource_metrics {
        let service = rm.resource.as_ref().and_then(|r| resource_service(&r.attributes)).and_then(|s| ServiceName::new(s).ok());
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                if m.name.is_empty() {
                    out.rejected.rejected += 1;
                    out.rejected.message = "rejected data points: metric without a name".into();
                    continue;
                }
                let mut push = |name: String, attrs: &[KeyValue], t: u64, v: f64| {
                    out.points.push(MetricPoint { name, labels: labels(attrs), service: service.clone(), at: ts(t), value: v });
                };
                let name = clip(&m.name, 256);
                match &m.data {
                    Some(metric::Data::Gauge(g)) => {
                        for p in &g.data_points {
                            push(name.clone(), &p.attributes, p.time_unix_nano, number(p.value));
                        }
                    }
                    Some(metric::Data::Sum(s)) => {
                        for p in &s.data_points {
                            push(name.clone(), &p.attributes, p.time_unix_nano, number(p.value));
                        }
                    }
                    Some(metric::Data::Histogram(h)) => {
                        for p in &h.data_points {
                            push(format!("{name}_count"), &p.attributes, p.time_unix_nano, p.count as f64);
                            if let Some(s) = p.sum {
                                push(format!("{name}_sum"), &p.attributes, p.time_unix_nano, s);
                            }
                        }
                    }
                    Some(metric::Data::ExponentialHistogram(h)) => {
                        for p in &h.data_points {
                            push(format!("{name}_count"), &p.attributes, p.time_unix_nano, p.count as f64);
                            if let Some(s) = p.sum {
                                push(format!("{name}_sum"), &p.attributes, p.time_unix_nano, s);
                            }
                        }
                    }
                    Some(metric::Data::Summary(s)) => {
                        for p in &s.data_points {
                            push(format!("{name}_count"), &p.attributes, p.time_unix_nano, p.count as f64);
                            push(format!("{name}_sum"), &p.attributes, p.time_unix_nano, p.sum);
                        }
                    }
                    None => {}
                }
            }
        }
    }
    out
}

fn number(v: Option<number_data_point::Value>) -> f64 {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => f64::NAN,
    }
}

/// Decoded log events (ERROR and above), how many records were read in all,
/// and what was rejected.
#[derive(Debug, Default, PartialEq)]
pub struct DecodedLogs {
    pub events: Vec<LogEvent>,
    pub records: u64,
    pub rejected: PartialSuccess,
}

/// Decodes an OTLP `ExportLogsServiceRequest` body.
pub fn decode_otlp_logs(bytes: &[u8], encoding: Encoding) -> Result<DecodedLogs, DecodeError> {
    let req = match encoding {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))?,
        Encoding::Json => serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?,
    };
    Ok(logs_from_request(&req))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Converts a decoded logs request, keeping ERROR (severity number ≥ 17, or
/// severity text error/fatal/critical) and above.
pub fn logs_from_request(req: &ExportLogsServiceRequest) -> DecodedLogs {
    let mut out = DecodedLogs::default();
    for rl in &req.resource_logs {
        let service = rl.resource.as_ref().and_then(|r| resource_service(&r.attributes)).and_then(|s| ServiceName::new(s).ok());
        for sl in &rl.scope_logs {
            for r in &sl.log_records {
                out.records += 1;
                let text = r.severity_text.to_ascii_lowercase();
                let severe = r.severity_number >= 17 || text.starts_with("err") || text.starts_with("fatal") || text.starts_with("crit");
                if !severe {
                    continue;
                }
                let body = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => clip(s, MAX_LOG_BODY),
                    Some(v) => clip(&format!("{v:?}"), MAX_LOG_BODY),
                    None => String::new(),
                };
                let t = if r.time_unix_nano != 0 { r.time_unix_nano } else { r.observed_time_unix_nano };
                out.events.push(LogEvent {
                    service: service.clone(),
                    at: ts(t),
                    severity: if r.severity_text.is_empty() {
                        if r.severity_number >= 21 { "FATAL".into() } else { "ERROR".into() }
                    } else {
                        clip(&r.severity_text, 32)
                    },
                    body,
                    trace_id: (r.trace_id.len() == 16).then(|| hex(&r.trace_id)),
                });
            }
        }
    }
    out
}

// ------------------------------------------------- Prometheus remote-write

/// Remote-write 1.0 messages (prometheus/prompb/remote.proto, types.proto),
/// only the fields we read.
pub mod prompb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

/// Decompresses a remote-write body (snappy block format), refusing more
/// than `max_decoded` bytes (checked from the header before allocating).
pub fn unsnappy(bytes: &[u8], max_decoded: usize) -> Result<Vec<u8>, DecodeError> {
    let len = snap::raw::decompress_len(bytes).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > max_decoded {
        return Err(DecodeError::TooLarge { limit: max_decoded });
    }
    snap::raw::Decoder::new().decompress_vec(bytes).map_err(|e| DecodeError::Snappy(e.to_string()))
}

/// Counts from one scan of a `WriteRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanSummary {
    pub series: u64,
    pub samples: u64,
    pub rejected: PartialSuccess,
}

/// Walks a decompressed remote-write `WriteRequest` without allocating per
/// label: calls `f(name, labels, samples)` once per series with a name
/// (labels without `__name__`, in wire order; sample times in ms). Series
/// without `__name__` are counted as rejected.
pub fn scan_remote_write<'a>(raw: &'a [u8], f: impl FnMut(&'a str, &[(&'a str, &'a str)], &[(Timestamp, f64)])) -> Result<ScanSummary, DecodeError> {
    // The wire reader speaks of protobuf in general; say which protocol.
    scan_write_request(raw, f).map_err(|e| match e {
        DecodeError::Protobuf(m) => DecodeError::RemoteWrite(m),
        e => e,
    })
}

fn scan_write_request<'a>(raw: &'a [u8], mut f: impl FnMut(&'a str, &[(&'a str, &'a str)], &[(Timestamp, f64)])) -> Result<ScanSummary, DecodeError> {
    use crate::wire::{FIXED64, LEN, Reader, VARINT};
    let mut out = ScanSummary::default();
    let mut labels: Vec<(&'a str, &'a str)> = Vec::with_capacity(16);
    let mut samples: Vec<(Timestamp, f64)> = Vec::with_capacity(16);
    let mut r = Reader::new(raw);
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        if field != 1 {
            r.skip(field, wt)?;
            continue;
        }
        r.expect(wt, LEN)?;
        let ts = r.bytes()?;
        let mut tr = r.nested(ts);
        labels.clear();
        samples.clear();
        let mut name: Option<&'a str> = None;
        while !tr.is_empty() {
            let (field, wt) = tr.key()?;
            match (field, wt) {
                (1, LEN) => {
                    let lb = tr.bytes()?;
                    let mut lr = tr.nested(lb);
                    let (mut k, mut v) = ("", "");
                    while !lr.is_empty() {
                        let (f2, w2) = lr.key()?;
                        match (f2, w2) {
                            (1, LEN) => k = lr.str()?,
                            (2, LEN) => v = lr.str()?,
                            (1 | 2, _) => return Err(lr.err("wrong wire type for Label")),
                            _ => lr.skip(f2, w2)?,
                        }
                    }
                    if k == "__name__" {
                        name = Some(v);
                    } else if labels.len() < MAX_LABELS {
                        labels.push((k, v));
                    }
                }
                (2, LEN) => {
                    let sb = tr.bytes()?;
                    let mut sr = tr.nested(sb);
                    let (mut value, mut t) = (0.0f64, 0i64);
                    while !sr.is_empty() {
                        let (f2, w2) = sr.key()?;
                        match (f2, w2) {
                            (1, FIXED64) => value = f64::from_bits(sr.fixed64()?),
                            (2, VARINT) => t = sr.varint()? as i64,
                            (1 | 2, _) => return Err(sr.err("wrong wire type for Sample")),
                            _ => sr.skip(f2, w2)?,
                        }
                    }
                    samples.push((Timestamp::from_millis(t), value));
                }
                (1 | 2, _) => return Err(tr.err("wrong wire type for TimeSeries")),
                _ => tr.skip(field, wt)?,
            }
        }
        match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                out.series += 1;
                out.samples += samples.len() as u64;
                f(n, &labels, &samples);
            }
            None => {
                out.rejected.rejected += samples.len() as i64;
                out.rejected.message = "rejected samples: series without __name__".into();
            }
        }
    }
    Ok(out)
}

/// Decodes a remote-write 1.0 body into owned points (snappy, then protobuf).
/// `max_decoded` bounds the decompressed size.
pub fn decode_remote_write(bytes: &[u8], max_decoded: usize) -> Result<DecodedMetrics, DecodeError> {
    let raw = unsnappy(bytes, max_decoded)?;
    let mut out = DecodedMetrics::default();
    let summary = scan_remote_write(&raw, |name, labels, samples| {
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (clip(k, 256), clip(v, MAX_VALUE_LEN))).collect();
        for &(at, value) in samples {
            out.points.push(MetricPoint { name: name.to_owned(), labels: labels.clone(), service: None, at, value });
        }
    })?;
    out.rejected = summary.rejected;
    Ok(out)
}
