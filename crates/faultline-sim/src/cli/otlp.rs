//! OTLP/JSON export of a running simulation to a Faultline (or any OTLP/HTTP
//! receiver): each finished attempt becomes a client span (caller) and, unless
//! it timed out, a server span (callee); queue depths become gauges. Bodies
//! are POSTed over a minimal blocking HTTP/1.1 client on `std::net`.
//!
//! What it is: the `--otlp URL [--speed N]` path of `faultline sim run`, used
//! only by the CLI (it reads the wall clock to stamp and pace). What it is
//! not: a general OTLP exporter (no protobuf, gzip, TLS or retries).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::series::Series;
use crate::world::AttemptRecord;

/// Where to send: host, port and path prefix of an `http://` URL.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub base: String,
    /// An ingest token sent as `Authorization: Bearer` (Faultline needs one).
    pub token: Option<String>,
}

pub fn parse_url(url: &str) -> Result<Endpoint, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("--otlp {url:?}: only http:// URLs are supported"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("--otlp {url:?}: bad port {p:?}"))?),
        None => (hostport, 80),
    };
    if host.is_empty() {
        return Err(format!("--otlp {url:?}: missing host"));
    }
    Ok(Endpoint { host: host.to_owned(), port, base: path.to_owned(), token: None })
}

/// POSTs a JSON body to `base + path`; Ok for any 2xx answer.
pub fn post(ep: &Endpoint, path: &str, body: &str) -> Result<(), String> {
    let addr = format!("{}:{}", ep.host, ep.port);
    let mut s = TcpStream::connect(&addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
    let auth = ep.token.as_ref().map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "POST {}{} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{auth}Connection: close\r\n\r\n",
        ep.base,
        path,
        ep.host,
        body.len()
    );
    s.write_all(head.as_bytes()).and_then(|_| s.write_all(body.as_bytes())).map_err(|e| format!("sending to {addr}: {e}"))?;
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    let status_line = text.lines().next().unwrap_or("");
    let code = status_line.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(c) if (200..300).contains(&c) => Ok(()),
        _ => Err(format!("{addr}{}{path} answered {status_line:?}", ep.base)),
    }
}

fn kv_str(out: &mut String, k: &str, v: &str) {
    let _ = write!(out, r#"{{"key":"{k}","value":{{"stringValue":{}}}}}"#, serde_json::Value::String(v.to_owned()));
}

/// An `ExportTraceServiceRequest` in OTLP/JSON for the given attempts, at
/// most `max` of them (an even, deterministic sample). `epoch_ns` is the
/// Unix time of virtual time 0; `id_base` keeps ids unique across batches.
pub fn traces_json(series: &Series, attempts: &[AttemptRecord], epoch_ns: u64, max: usize, id_base: u64) -> String {
    let stride = attempts.len().div_ceil(max.max(1)).max(1);
    // Group spans by the service that emits them.
    let mut by_service: Vec<(String, Vec<String>)> = Vec::new();
    let mut push = |svc: &str, span: String| match by_service.iter_mut().find(|(s, _)| s == svc) {
        Some((_, v)) => v.push(span),
        None => by_service.push((svc.to_owned(), vec![span])),
    };
    for (n, a) in attempts.iter().step_by(stride).enumerate() {
        let Some(e) = series.edges.get(a.edge as usize) else { continue };
        let id = id_base + n as u64 + 1;
        let trace = format!("{id:032x}");
        let (client_id, server_id) = (format!("{:016x}", 2 * id), format!("{:016x}", 2 * id + 1));
        let (start, end) = (epoch_ns + a.start, epoch_ns + a.end.max(a.start));
        let error = matches!(a.outcome, "error" | "timeout");
        let status = if error { r#"{"code":2}"# } else { r#"{"code":1}"# };
        let mut attrs = String::new();
        kv_str(&mut attrs, "peer.service", &e.callee);
        if a.attempt > 1 {
            let _ = write!(attrs, r#",{{"key":"http.request.resend_count","value":{{"intValue":"{}"}}}}"#, a.attempt - 1);
        }
        if a.outcome == "timeout" {
            attrs.push(',');
            kv_str(&mut attrs, "error.type", "timeout");
        }
        // Span names are the operation, as an HTTP server would name them.
        let name = serde_json::Value::String(format!("POST /{}", e.callee));
        push(
            &e.caller,
            format!(
                r#"{{"traceId":"{trace}","spanId":"{client_id}","name":{name},"kind":3,"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":[{attrs}],"status":{status}}}"#
            ),
        );
        if a.outcome != "timeout" {
            push(
                &e.callee,
                format!(
                    r#"{{"traceId":"{trace}","spanId":"{server_id}","parentSpanId":"{client_id}","name":{name},"kind":2,"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","status":{status}}}"#
                ),
            );
        }
    }
    let mut out = String::from(r#"{"resourceSpans":["#);
    for (i, (svc, spans)) in by_service.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"resource":{"attributes":["#);
        kv_str(&mut out, "service.name", svc);
        let _ = write!(out, r#"]}},"scopeSpans":[{{"scope":{{"name":"faultline-sim"}},"spans":[{}]}}]}}"#, spans.join(","));
    }
    out.push_str("]}");
    out
}

/// An `ExportMetricsServiceRequest` in OTLP/JSON with every metric the
/// simulator reports for `window` in-process (`Series::window_signals`:
/// queue depth, utilisation, pool and resource use, answer correctness), one
/// gauge point each, grouped by service, labels as point attributes — so a
/// receiver rebuilds the same `MetricPoint`s the in-process path produces.
pub fn metrics_json(series: &Series, window: u32, epoch_ns: u64) -> String {
    let epoch = faultline_core::Timestamp::from_millis((epoch_ns / 1_000_000) as i64);
    let mut by_service: Vec<(String, Vec<String>)> = Vec::new();
    for s in series.window_signals(window, epoch) {
        let faultline_core::Signal::Metric(m) = s else { continue };
        let t = m.at.as_millis().max(0) as u64 * 1_000_000;
        let mut attrs = String::new();
        for (i, (k, v)) in m.labels.iter().enumerate() {
            if i > 0 {
                attrs.push(',');
            }
            kv_str(&mut attrs, k, v);
        }
        let value = if m.value.is_finite() { m.value } else { 0.0 };
        let point = format!(
            r#"{{"name":{},"gauge":{{"dataPoints":[{{"timeUnixNano":"{t}","asDouble":{value},"attributes":[{attrs}]}}]}}}}"#,
            serde_json::Value::String(m.name.clone())
        );
        let svc = m.service.as_ref().map_or("unknown_service", |s| s.as_str()).to_owned();
        match by_service.iter_mut().find(|(s, _)| *s == svc) {
            Some((_, v)) => v.push(point),
            None => by_service.push((svc, vec![point])),
        }
    }
    let mut out = String::from(r#"{"resourceMetrics":["#);
    for (i, (svc, metrics)) in by_service.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"resource":{"attributes":["#);
        kv_str(&mut out, "service.name", svc);
        let _ = write!(out, r#"]}},"scopeMetrics":[{{"scope":{{"name":"faultline-sim"}},"metrics":[{}]}}]}}"#, metrics.join(","));
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_and_without_port_and_path() {
        assert_eq!(parse_url("http://localhost:4318").unwrap(), Endpoint { host: "localhost".into(), port: 4318, base: String::new(), token: None });
        assert_eq!(parse_url("http://h/otlp/").unwrap(), Endpoint { host: "h".into(), port: 80, base: "/otlp".into(), token: None });
        assert!(parse_url("https://h").is_err());
        assert!(parse_url("http://h:x").is_err());
    }
}
