//! OTLP trace decoding into core [`Span`]s.
//!
//! Two paths, one result: [`decode_traces_protobuf`] walks the protobuf wire
//! format directly and borrows every string from the payload (the hot path —
//! it skips attribute values the graph does not use without decoding them),
//! and [`spans_from_request`] converts an already-decoded
//! `ExportTraceServiceRequest` (OTLP/JSON and gRPC). Tests and the fuzz
//! target check that both agree.
//!
//! Spans with invalid trace or span ids are rejected and counted in the
//! partial-success answer. Not here: HTTP, queues or the graph.

use std::borrow::Cow;

use faultline_core::graph::{AttrValue, Span, SpanAttributes, SpanContext, SpanId, SpanKind, SpanStatus, TraceId};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use crate::wire::{FIXED32, FIXED64, LEN, Reader, VARINT};
use crate::{DecodeError, Encoding, PartialSuccess};

/// The service name used when a resource has no `service.name` (as the SDKs do).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Decoded spans and what was rejected.
#[derive(Debug, Default, PartialEq)]
pub struct DecodedSpans<'a> {
    pub spans: Vec<Span<'a>>,
    pub rejected: PartialSuccess,
}

/// Decodes an OTLP `ExportTraceServiceRequest` body. Protobuf borrows from
/// `bytes`; JSON (spec encoding: hex ids, camelCase, int64 as strings)
/// produces owned spans.
pub fn decode_otlp_traces(bytes: &[u8], encoding: Encoding) -> Result<DecodedSpans<'_>, DecodeError> {
    match encoding {
        Encoding::Protobuf => decode_traces_protobuf(bytes),
        Encoding::Json => {
            let req: ExportTraceServiceRequest = serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
            Ok(spans_from_request(&req))
        }
    }
}

fn reject(p: &mut PartialSuccess, why: &str) {
    p.rejected += 1;
    if p.message.is_empty() {
        p.message = format!("rejected spans: {why}");
    }
}

/// Ids: trace 16 bytes non-zero, span 8 bytes non-zero, parent empty or 8 bytes.
fn ids(trace: &[u8], span: &[u8], parent: &[u8]) -> Result<(TraceId, SpanId, Option<SpanId>), &'static str> {
    let t = TraceId::from_slice(trace).filter(|t| t.0 != [0; 16]).ok_or("trace_id must be 16 bytes and not all zero")?;
    let s = SpanId::from_slice(span).ok_or("span_id must be 8 bytes and not all zero")?;
    let p = if parent.is_empty() || parent == [0; 8] { None } else { Some(SpanId::from_slice(parent).ok_or("parent_span_id must be empty or 8 bytes")?) };
    Ok((t, s, p))
}

// ---------------------------------------------------------------- protobuf

/// Parses an `AnyValue` message into a scalar, if it is one.
fn any_value<'a>(r: &Reader<'a>, b: &'a [u8]) -> Result<Option<AttrValue<'a>>, DecodeError> {
    let mut r = r.nested(b);
    let mut v = None;
    while !r.is_empty() {
        let (f, wt) = r.key()?;
        v = match (f, wt) {
            (1, LEN) => Some(AttrValue::Str(Cow::Borrowed(r.str()?))),
            (2, VARINT) => Some(AttrValue::Bool(r.varint()? != 0)),
            (3, VARINT) => Some(AttrValue::Int(r.varint()? as i64)),
            (4, FIXED64) => Some(AttrValue::Double(f64::from_bits(r.fixed64()?))),
            (1..=4, _) => return Err(r.err("wrong wire type for AnyValue")),
            (5..=7, LEN) => {
                r.bytes()?;
                None // arrays, maps and bytes are not used by the graph
            }
            _ => {
                r.skip(f, wt)?;
                v
            }
        };
    }
    Ok(v)
}

/// Parses a `KeyValue`; returns the key and (only for wanted keys) the value.
fn key_value<'a>(r: &Reader<'a>, b: &'a [u8], wanted: impl Fn(&str) -> bool) -> Result<Option<(&'a str, AttrValue<'a>)>, DecodeError> {
    let mut r = r.nested(b);
    let mut key = "";
    let mut val: Option<&'a [u8]> = None;
    while !r.is_empty() {
        let (f, wt) = r.key()?;
        match (f, wt) {
            (1, LEN) => key = r.str()?,
            (2, LEN) => val = Some(r.bytes()?),
            (1 | 2, _) => return Err(r.err("wrong wire type for KeyValue")),
            _ => r.skip(f, wt)?,
        }
    }
    if !wanted(key) {
        return Ok(None);
    }
    match val {
        Some(b) => Ok(any_value(&r, b)?.map(|v| (key, v))),
        None => Ok(None),
    }
}

/// Decodes an OTLP/protobuf `ExportTraceServiceRequest`, borrowing strings.
pub fn decode_traces_protobuf(bytes: &[u8]) -> Result<DecodedSpans<'_>, DecodeError> {
    let mut out = DecodedSpans::default();
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let (f, wt) = r.key()?;
        if f == 1 {
            r.expect(wt, LEN)?;
            let rs = r.bytes()?;
            resource_spans(&r, rs, &mut out)?;
        } else {
            r.skip(f, wt)?;
        }
    }
    Ok(out)
}

fn resource_spans<'a>(parent: &Reader<'a>, b: &'a [u8], out: &mut DecodedSpans<'a>) -> Result<(), DecodeError> {
    // First the resource (it may come after the spans on the wire).
    let mut service: Option<&'a str> = None;
    // `cloud.availability_zone` is a resource attribute: copied onto each span.
    let mut zone: Option<AttrValue<'a>> = None;
    let mut r = parent.nested(b);
    while !r.is_empty() {
        let (f, wt) = r.key()?;
        if f == 1 {
            r.expect(wt, LEN)?;
            let res = r.bytes()?;
            let mut rr = r.nested(res);
            while !rr.is_empty() {
                let (f, wt) = rr.key()?;
                if f == 1 {
                    rr.expect(wt, LEN)?;
                    let kv = rr.bytes()?;
                    match key_value(&rr, kv, |k| k == "service.name" || k == "cloud.availability_zone")? {
                        Some(("service.name", v)) => service = service_name(v).or(service),
                        Some((_, v)) => zone = Some(v),
                        None => {}
                    }
                } else {
                    rr.skip(f, wt)?;
                }
            }
        } else {
            r.skip(f, wt)?;
        }
    }
    let service = service.unwrap_or(UNKNOWN_SERVICE);
    let mut r = parent.nested(b);
    while !r.is_empty() {
        let (f, wt) = r.key()?;
        if f == 2 {
            r.expect(wt, LEN)?;
            let ss = r.bytes()?;
            let mut sr = r.nested(ss);
            while !sr.is_empty() {
                let (f, wt) = sr.key()?;
                if f == 2 {
                    sr.expect(wt, LEN)?;
                    let sb = sr.bytes()?;
                    span(&sr, sb, service, zone.as_ref(), out)?;
                } else {
                    sr.skip(f, wt)?;
                }
            }
        } else {
            r.skip(f, wt)?;
        }
    }
    Ok(())
}

fn service_name(v: AttrValue<'_>) -> Option<&str> {
    match v {
        AttrValue::Str(Cow::Borrowed(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn span<'a>(parent: &Reader<'a>, b: &'a [u8], service: &'a str, zone: Option<&AttrValue<'a>>, out: &mut DecodedSpans<'a>) -> Result<(), DecodeError> {
    let mut r = parent.nested(b);
    let (mut trace, mut id, mut par): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
    let mut s = Span { service: Cow::Borrowed(service), ..Span::default() };
    if let Some(z) = zone {
        s.attributes.set("cloud.availability_zone", z.clone());
    }
    let mut events: Vec<&'a [u8]> = Vec::new();
    let mut links: Vec<&'a [u8]> = Vec::new();
    while !r.is_empty() {
        let (f, wt) = r.key()?;
        match f {
            1 | 2 | 4 | 5 | 9 | 11 | 13 | 15 => r.expect(wt, LEN)?,
            6 => r.expect(wt, VARINT)?,
            7 | 8 => r.expect(wt, FIXED64)?,
            16 => r.expect(wt, FIXED32)?,
            _ => {}
        }
        match f {
            1 => trace = r.bytes()?,
            2 => id = r.bytes()?,
            4 => par = r.bytes()?,
            5 => s.name = Cow::Borrowed(r.str()?),
            6 => s.kind = SpanKind::from_otlp(r.varint()? as i32),
            7 => s.start_unix_nanos = r.fixed64()?,
            8 => s.end_unix_nanos = r.fixed64()?,
            9 => {
                let kv = r.bytes()?;
                if let Some((k, v)) = key_value(&r, kv, SpanAttributes::wants)? {
                    s.attributes.set(k, v);
                }
            }
            11 => events.push(r.bytes()?),
            13 => links.push(r.bytes()?),
            15 => {
                let st = r.bytes()?;
                let mut sr = r.nested(st);
                while !sr.is_empty() {
                    let (f, wt) = sr.key()?;
                    match (f, wt) {
                        (2, LEN) => s.status_message = Some(Cow::Borrowed(sr.str()?)),
                        (3, VARINT) => s.status = SpanStatus::from_otlp(sr.varint()? as i32),
                        (2 | 3, _) => return Err(sr.err("wrong wire type for Status")),
                        _ => sr.skip(f, wt)?,
                    }
                }
            }
            _ => r.skip(f, wt)?,
        }
    }
    for e in events {
        event(&r, e, &mut s.attributes)?;
    }
    for l in links {
        if let Some(c) = link(&r, l)? {
            s.links.push(c);
        }
    }
    if s.status_message.as_deref() == Some("") {
        s.status_message = None;
    }
    match ids(trace, id, par) {
        Ok((t, i, p)) => {
            s.trace_id = t;
            s.span_id = i;
            s.parent_span_id = p;
            out.spans.push(s);
        }
        Err(why) => reject(&mut out.rejected, why),
    }
    Ok(())
}

/// An `exception` event contributes its `exception.type`.
fn event<'a>(parent: &Reader<'a>, b: &'a [u8], attrs: &mut SpanAttributes<'a>) -> Result<(), DecodeError> {
    let mut r = parent.nested(b);
    let mut name = "";
    let mut kvs: Vec<&'a [u8]> = Vec::new();
    while !r.is_empty() {
        let (f, wt) = r.key()?;
        match (f, wt) {
            (2, LEN) => name = r.str()?,
            (3, LEN) => kvs.push(r.bytes()?),
            (2 | 3, _) => return Err(r.err("wrong wire type for Event")),
            _ => r.skip(f, wt)?,
        }
    }
    if name == "exception" {
        for kv in kvs {
            if let Some((k, v)) = key_value(&r, kv, |k| k == "exception.type")? {
                attrs.set(k, v);
            }
        }
    }
    Ok(())
}

fn link<'a>(parent: &Reader<'a>, b: &'a [u8]) -> Result<Option<SpanContext>, DecodeError> {
    let mut r = parent.nested(b);
    let (mut t, mut s): (&[u8], &[u8]) = (&[], &[]);
    while !r.is_empty() {
        let (f, wt) = r.key()?;
        match (f, wt) {
            (1, LEN) => t = r.bytes()?,
            (2, LEN) => s = r.bytes()?,
            (1 | 2, _) => return Err(r.err("wrong wire type for Link")),
            _ => r.skip(f, wt)?,
        }
    }
    Ok(ids(t, s, &[]).ok().map(|(trace_id, span_id, _)| SpanContext { trace_id, span_id }))
}

// ------------------------------------------------------- decoded messages

pub(crate) fn attr_value(v: &AnyValue) -> Option<AttrValue<'_>> {
    match v.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(AttrValue::Str(Cow::Borrowed(s))),
        any_value::Value::BoolValue(b) => Some(AttrValue::Bool(*b)),
        any_value::Value::IntValue(i) => Some(AttrValue::Int(*i)),
        any_value::Value::DoubleValue(d) => Some(AttrValue::Double(*d)),
        _ => None,
    }
}

pub(crate) fn resource_service(attrs: &[KeyValue]) -> Option<&str> {
    attrs
        .iter()
        .filter(|kv| kv.key == "service.name")
        .filter_map(|kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        })
        .next_back()
}

/// Converts a decoded request (JSON or gRPC) into owned spans.
pub fn spans_from_request(req: &ExportTraceServiceRequest) -> DecodedSpans<'static> {
    let mut out = DecodedSpans::default();
    for rs in &req.resource_spans {
        let service = rs.resource.as_ref().and_then(|r| resource_service(&r.attributes)).unwrap_or(UNKNOWN_SERVICE);
        let zone = rs
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().rfind(|kv| kv.key == "cloud.availability_zone"))
            .and_then(|kv| kv.value.as_ref().and_then(attr_value));
        for ss in &rs.scope_spans {
            for sp in &ss.spans {
                let (t, i, p) = match ids(&sp.trace_id, &sp.span_id, &sp.parent_span_id) {
                    Ok(x) => x,
                    Err(why) => {
                        reject(&mut out.rejected, why);
                        continue;
                    }
                };
                let mut s = Span {
                    trace_id: t,
                    span_id: i,
                    parent_span_id: p,
                    service: Cow::Borrowed(service),
                    kind: SpanKind::from_otlp(sp.kind),
                    name: Cow::Borrowed(&sp.name),
                    start_unix_nanos: sp.start_time_unix_nano,
                    end_unix_nanos: sp.end_time_unix_nano,
                    ..Span::default()
                };
                if let Some(z) = &zone {
                    s.attributes.set("cloud.availability_zone", z.clone());
                }
                for kv in &sp.attributes {
                    if SpanAttributes::wants(&kv.key)
                        && let Some(v) = kv.value.as_ref().and_then(attr_value)
                    {
                        s.attributes.set(&kv.key, v);
                    }
                }
                for e in sp.events.iter().filter(|e| e.name == "exception") {
                    for kv in e.attributes.iter().filter(|kv| kv.key == "exception.type") {
                        if let Some(v) = kv.value.as_ref().and_then(attr_value) {
                            s.attributes.set(&kv.key, v);
                        }
                    }
                }
                for l in &sp.links {
                    if let Ok((trace_id, span_id, _)) = ids(&l.trace_id, &l.span_id, &[]) {
                        s.links.push(SpanContext { trace_id, span_id });
                    }
                }
                if let Some(st) = &sp.status {
                    s.status = SpanStatus::from_otlp(st.code);
                    if !st.message.is_empty() {
                        s.status_message = Some(Cow::Borrowed(&st.message));
                    }
                }
                out.spans.push(s.into_owned());
            }
        }
    }
    out
}
