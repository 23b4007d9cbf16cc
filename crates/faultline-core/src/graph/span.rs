//! `Span`: the protocol-neutral input the dependency graph learns from.
//!
//! Receivers decode OTLP (or the simulator synthesises) spans into this shape.
//! It carries only what the graph needs: ids, service, kind, name, times,
//! status, links and the handful of semantic-convention attributes that name
//! peers and classify failures. [`SpanAttributes::set`] maps attribute keys —
//! current and common older semantic-convention names — onto those fields, so
//! every decoder applies the same rules.
//!
//! Not here: decoding of any wire format (that is `faultline-receivers`), and
//! no attribute bag: unknown attributes are dropped at the edge.

use std::borrow::Cow;

/// A W3C trace id (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// A span id (8 bytes). The all-zero id is invalid and means "none".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    /// From a byte slice; `None` unless exactly 16 bytes.
    pub fn from_slice(b: &[u8]) -> Option<TraceId> {
        b.try_into().ok().map(TraceId)
    }
    /// Lowercase hex, as W3C trace context and trace UIs spell it.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write as _;
        self.0.iter().fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

impl SpanId {
    /// From a byte slice; `None` unless exactly 8 bytes and not all zero.
    pub fn from_slice(b: &[u8]) -> Option<SpanId> {
        let a: [u8; 8] = b.try_into().ok()?;
        (a != [0; 8]).then_some(SpanId(a))
    }
}

/// OTLP span kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SpanKind {
    #[default]
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// From the OTLP enum number (0 unspecified, 1 internal, 2 server, 3 client,
    /// 4 producer, 5 consumer); unknown numbers are `Internal`.
    pub fn from_otlp(n: i32) -> SpanKind {
        match n {
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Internal,
        }
    }
}

/// OTLP span status code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SpanStatus {
    #[default]
    Unset,
    Ok,
    Error,
}

impl SpanStatus {
    /// From the OTLP enum number (0 unset, 1 ok, 2 error).
    pub fn from_otlp(n: i32) -> SpanStatus {
        match n {
            1 => SpanStatus::Ok,
            2 => SpanStatus::Error,
            _ => SpanStatus::Unset,
        }
    }
}

/// A reference to another span (a link, or a parent in another trace).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanContext {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

/// An attribute value as decoders see it.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Double(f64),
    Bool(bool),
}

impl<'a> AttrValue<'a> {
    fn into_str(self) -> Option<Cow<'a, str>> {
        match self {
            AttrValue::Str(s) if !s.is_empty() => Some(s),
            AttrValue::Int(i) => Some(Cow::Owned(i.to_string())),
            _ => None,
        }
    }
    fn as_int(&self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(*i),
            AttrValue::Str(s) => s.trim().parse().ok(),
            AttrValue::Double(d) if d.is_finite() => Some(*d as i64),
            _ => None,
        }
    }
}

/// The semantic-convention attributes the graph uses. Where a current and an
/// older name both exist, the current one wins whatever order they arrive in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanAttributes<'a> {
    /// `peer.service`.
    pub peer_service: Option<Cow<'a, str>>,
    /// `server.address`, older `net.peer.name` / `net.host.name` (client side),
    /// `http.host`.
    pub server_address: Option<Cow<'a, str>>,
    /// `url.full`, older `http.url`.
    pub url: Option<Cow<'a, str>>,
    /// `db.system.name`, older `db.system`.
    pub db_system: Option<Cow<'a, str>>,
    /// `messaging.system`.
    pub messaging_system: Option<Cow<'a, str>>,
    /// `messaging.destination.name`, older `messaging.destination`.
    pub messaging_destination: Option<Cow<'a, str>>,
    /// `http.response.status_code`, older `http.status_code`.
    pub http_status: Option<u16>,
    /// `rpc.grpc.status_code`.
    pub grpc_status: Option<u8>,
    /// `http.request.resend_count`.
    pub resend_count: Option<u32>,
    /// `error.type`, or an exception type.
    pub error_type: Option<Cow<'a, str>>,
    /// `cloud.availability_zone` (a resource attribute; decoders copy it
    /// onto each span of the resource).
    pub availability_zone: Option<Cow<'a, str>>,
    /// Bit set of which fields came from a *current* name (so an older name
    /// arriving later does not overwrite it).
    current: u8,
}

const CUR_SERVER_ADDRESS: u8 = 1;
const CUR_URL: u8 = 2;
const CUR_DB: u8 = 4;
const CUR_DEST: u8 = 8;
const CUR_HTTP_STATUS: u8 = 16;

fn set_pref<'a>(slot: &mut Option<Cow<'a, str>>, current: &mut u8, bit: u8, is_current: bool, v: AttrValue<'a>) {
    if !is_current && *current & bit != 0 {
        return;
    }
    if let Some(s) = v.into_str() {
        *slot = Some(s);
        if is_current {
            *current |= bit;
        }
    }
}

impl<'a> SpanAttributes<'a> {
    /// Whether `key` is an attribute this type keeps (decoders may skip
    /// decoding the value of any other key).
    pub fn wants(key: &str) -> bool {
        matches!(
            key,
            "peer.service"
                | "server.address"
                | "net.peer.name"
                | "http.host"
                | "url.full"
                | "http.url"
                | "db.system"
                | "db.system.name"
                | "messaging.system"
                | "messaging.destination.name"
                | "messaging.destination"
                | "http.response.status_code"
                | "http.status_code"
                | "rpc.grpc.status_code"
                | "http.request.resend_count"
                | "error.type"
                | "exception.type"
                | "cloud.availability_zone"
        )
    }

    /// Applies one attribute; unknown keys are ignored.
    pub fn set(&mut self, key: &str, v: AttrValue<'a>) {
        let c = &mut self.current;
        match key {
            "peer.service" => {
                if let Some(s) = v.into_str() {
                    self.peer_service = Some(s);
                }
            }
            "server.address" => set_pref(&mut self.server_address, c, CUR_SERVER_ADDRESS, true, v),
            "net.peer.name" | "http.host" => set_pref(&mut self.server_address, c, CUR_SERVER_ADDRESS, false, v),
            "url.full" => set_pref(&mut self.url, c, CUR_URL, true, v),
            "http.url" => set_pref(&mut self.url, c, CUR_URL, false, v),
            "db.system.name" => set_pref(&mut self.db_system, c, CUR_DB, true, v),
            "db.system" => set_pref(&mut self.db_system, c, CUR_DB, false, v),
            "messaging.system" => {
                if let Some(s) = v.into_str() {
                    self.messaging_system = Some(s);
                }
            }
            "messaging.destination.name" => set_pref(&mut self.messaging_destination, c, CUR_DEST, true, v),
            "messaging.destination" => set_pref(&mut self.messaging_destination, c, CUR_DEST, false, v),
            "http.response.status_code" | "http.status_code" => {
                let is_current = key == "http.response.status_code";
                if !is_current && *c & CUR_HTTP_STATUS != 0 {
                    return;
                }
                if let Some(n) = v.as_int().and_then(|n| u16::try_from(n).ok()) {
                    self.http_status = Some(n);
                    if is_current {
                        *c |= CUR_HTTP_STATUS;
                    }
                }
            }
            "rpc.grpc.status_code" => self.grpc_status = v.as_int().and_then(|n| u8::try_from(n).ok()),
            "http.request.resend_count" => self.resend_count = v.as_int().and_then(|n| u32::try_from(n).ok()),
            "error.type" => {
                if let Some(s) = v.into_str() {
                    self.error_type = Some(s);
                }
            }
            "cloud.availability_zone" => {
                if let Some(s) = v.into_str() {
                    self.availability_zone = Some(s);
                }
            }
            // From a span event named "exception"; error.type wins.
            "exception.type" if self.error_type.is_none() => self.error_type = v.into_str(),
            _ => {}
        }
    }

    pub fn into_owned(self) -> SpanAttributes<'static> {
        fn own(s: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
            s.map(|s| Cow::Owned(s.into_owned()))
        }
        SpanAttributes {
            peer_service: own(self.peer_service),
            server_address: own(self.server_address),
            url: own(self.url),
            db_system: own(self.db_system),
            messaging_system: own(self.messaging_system),
            messaging_destination: own(self.messaging_destination),
            http_status: self.http_status,
            grpc_status: self.grpc_status,
            resend_count: self.resend_count,
            error_type: own(self.error_type),
            availability_zone: own(self.availability_zone),
            current: self.current,
        }
    }
}

/// One finished span, as the dependency graph consumes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Span<'a> {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// The emitting service (`service.name` of the resource).
    pub service: Cow<'a, str>,
    pub kind: SpanKind,
    pub name: Cow<'a, str>,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub status: SpanStatus,
    pub status_message: Option<Cow<'a, str>>,
    pub attributes: SpanAttributes<'a>,
    pub links: Vec<SpanContext>,
}

impl Span<'_> {
    /// Duration in milliseconds (0 if the end is before the start).
    pub fn duration_ms(&self) -> f64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos) as f64 / 1e6
    }

    /// A copy that owns all its strings.
    pub fn into_owned(self) -> Span<'static> {
        Span {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            service: Cow::Owned(self.service.into_owned()),
            kind: self.kind,
            name: Cow::Owned(self.name.into_owned()),
            start_unix_nanos: self.start_unix_nanos,
            end_unix_nanos: self.end_unix_nanos,
            status: self.status,
            status_message: self.status_message.map(|s| Cow::Owned(s.into_owned())),
            attributes: self.attributes.into_owned(),
            links: self.links,
        }
    }

    /// Whether this span, on its own, reports a failure: error status, HTTP
    /// 5xx, or a gRPC code that means the server failed.
    pub fn is_error(&self) -> bool {
        self.status == SpanStatus::Error
            || self.attributes.http_status.is_some_and(|c| c >= 500)
            || self.attributes.grpc_status.is_some_and(|c| matches!(c, 2 | 4 | 8 | 12 | 13 | 14 | 15))
            || self.is_timeout()
    }

    /// Whether this span reports a timeout: gRPC DEADLINE_EXCEEDED, HTTP 408 or
    /// 504, or an error type / status message naming a timeout or deadline.
    pub fn is_timeout(&self) -> bool {
        fn names_timeout(s: &str) -> bool {
            let l = s.to_ascii_lowercase();
            l.contains("timeout") || l.contains("timed out") || l.contains("deadline")
        }
        self.attributes.grpc_status == Some(4)
            || matches!(self.attributes.http_status, Some(408 | 504))
            || self.attributes.error_type.as_deref().is_some_and(names_timeout)
            || (self.status == SpanStatus::Error && self.status_message.as_deref().is_some_and(names_timeout))
    }
}

/// The host of a URL (`scheme://user@host:port/path` → `host`), if any.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(stripped) = hostport.strip_prefix('[') { stripped.split(']').next()? } else { hostport.split(':').next()? };
    (!host.is_empty()).then_some(host)
}
