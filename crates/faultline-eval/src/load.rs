//! Loaders that turn one dataset case folder into a [`DiagnosisInput`].
//!
//! Two layouts are understood (see each dataset's README under
//! `shared/data/rca`): the RCD Sock Shop layout (`normal.csv` then
//! `anomalous.csv`, one row per second) and the Nezha layout (`metrics/*.csv.gz`
//! one row per pod per minute, optional `minutes/` trace and log files, and
//! optional `baseline/` fault-free minutes). Loaders only reshape data: they
//! never read labels or the inject time, and nothing here depends on a case id.
//!
//! Not here: scoring (see `lib.rs`) or any ranking logic (in
//! `faultline_core::diagnose`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use faultline_core::diagnose::{DiagnosisInput, MetricSeries, SeriesKind};
use faultline_core::finding::Subject;
use faultline_core::ids::{FlowName, ServiceName};
use faultline_core::model::Interaction;
use faultline_core::time::Timestamp;

use crate::EvalError;
use crate::code_path::{self, PathEvent, Paths, blamed_paths};

/// Measure name of the per-call network time derived from spans; either end
/// of the call may cause it (see `MetricSeries::shared`).
pub const NETWORK_GAP: &str = "network_time_ms";

/// Measure name of a service's log code-path surprisal against the
/// fault-free reference minute.
pub const LOG_PATH: &str = "log_path_surprisal_nats";

/// Measure name of a service's blamed code-path change share (see
/// [`crate::code_path`]).
pub const CODE_PATH: &str = "code_path_changed_share";

/// Width of the bins that trace and log events are counted in.
pub const EVENT_BIN_SECS: i64 = 10;

/// Measures that count as symptoms, not origin evidence, in a case that
/// has trace and log events with a reference minute (see `nezha_case`).
pub const TRACE_CASE_SYMPTOMS: &[&str] =
    &["PodServerLatencyP90(s)", "PodServerLatencyP95(s)", "PodServerLatencyP99(s)", "span_duration_median_ms", "span_count", LOG_PATH];

fn open_csv(path: &Path) -> Result<csv::Reader<Box<dyn Read>>, EvalError> {
    let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
    let read: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
    Ok(csv::ReaderBuilder::new().flexible(true).from_reader(read))
}

fn headers(r: &mut csv::Reader<Box<dyn Read>>, path: &Path) -> Result<Vec<String>, EvalError> {
    Ok(r.headers().map_err(|e| EvalError::csv(path, e))?.iter().map(str::to_owned).collect())
}

fn service(name: &str, path: &Path) -> Result<ServiceName, EvalError> {
    ServiceName::new(name).map_err(|e| EvalError::Format { path: path.to_owned(), reason: e.to_string() })
}

/// Accumulates series keyed by (subject, measure).
type SeriesKey = (Subject, String);
type SeriesData = (SeriesKind, Vec<(Timestamp, f64)>);

#[derive(Default)]
struct Builder {
    series: BTreeMap<SeriesKey, SeriesData>,
    /// Trials behind each point of `SeriesKind::Proportion` series (same order).
    trials: BTreeMap<SeriesKey, Vec<f64>>,
    /// Measures that describe a service's outgoing calls, not the service.
    symptoms: BTreeSet<String>,
    calls: BTreeSet<Interaction>,
    /// End of the fault-free reference recording that trace and log series
    /// start with (their baseline).
    reference_end: Option<Timestamp>,
    /// The time the case was captured up to (its last trace or log event):
    /// the diagnosis runs as of then, so later points are not given.
    now: Option<Timestamp>,
}

impl Builder {
    fn push(&mut self, subject: Subject, measure: &str, kind: SeriesKind, at: Timestamp, value: f64) {
        self.series.entry((subject, measure.to_owned())).or_insert_with(|| (kind, Vec::new())).1.push((at, value));
    }
    fn push_proportion(&mut self, subject: Subject, measure: &str, at: Timestamp, successes: f64, trials: f64) {
        let key = (subject, measure.to_owned());
        self.trials.entry(key.clone()).or_default().push(trials);
        self.series.entry(key).or_insert_with(|| (SeriesKind::Proportion, Vec::new())).1.push((at, successes));
    }
    fn finish(mut self) -> DiagnosisInput {
        DiagnosisInput {
            series: self
                .series
                .into_iter()
                .map(|((subject, measure), (kind, points))| {
                    let trials = self.trials.remove(&(subject.clone(), measure.clone())).unwrap_or_default();
                    let keep = |t: Timestamp| self.now.is_none_or(|now| t <= now);
                    let trials: Vec<f64> = trials.into_iter().zip(&points).filter(|(_, p)| keep(p.0)).map(|(n, _)| n).collect();
                    let points: Vec<(Timestamp, f64)> = points.into_iter().filter(|p| keep(p.0)).collect();
                    let symptom = self.symptoms.contains(&measure);
                    let shared = measure == NETWORK_GAP;
                    let events = shared || measure == LOG_PATH || measure == CODE_PATH || measure.starts_with("span_");
                    let reference_until = if events { self.reference_end } else { None };
                    let min_scale = min_scale(&measure);
                    // The code-path share is blamed on the deepest changed service of each trace.
                    let attributed = measure == CODE_PATH;
                    MetricSeries { subject, measure, kind, points, symptom, shared, reference_until, trials, min_scale, attributed }
                })
                .collect(),
            calls: self.calls.into_iter().collect(),
        }
    }
}

// ---------------------------------------------------------------- RCD Sock Shop

/// Sock Shop (RCD): `normal.csv` and `anomalous.csv`, columns
/// `<container>_<cpu|mem|lod|lat_50|lat_90|lat_99>`. Both windows are given in
/// time order as one series per column; the diagnosis finds the change itself.
/// `*_lat_50` and `*_lat_99` are dropped, as in the published protocol.
pub fn rcd_case(dir: &Path) -> Result<DiagnosisInput, EvalError> {
    let mut b = Builder::default();
    for file in ["normal.csv", "anomalous.csv"] {
        let path = dir.join(file);
        let mut r = open_csv(&path)?;
        let cols = headers(&mut r, &path)?;
        let mut subjects = Vec::new();
        for c in &cols {
            subjects.push(rcd_column(c, &path)?);
        }
        for rec in r.records() {
            let rec = rec.map_err(|e| EvalError::csv(&path, e))?;
            let Some(t) = rec.get(0).and_then(|s| s.trim().parse::<f64>().ok()) else { continue };
            let at = Timestamp::from_millis((t * 1000.0) as i64);
            for (i, v) in rec.iter().enumerate().skip(1) {
                if let (Some(Some((subject, measure))), Ok(x)) = (subjects.get(i), v.trim().parse::<f64>()) {
                    b.push(subject.clone(), measure, SeriesKind::Gauge, at, x);
                }
            }
        }
    }
    Ok(b.finish())
}

fn rcd_column(col: &str, path: &Path) -> Result<Option<(Subject, String)>, EvalError> {
    if col == "time" {
        return Ok(None);
    }
    let Some((container, metric)) = col.split_once('_') else { return Ok(None) };
    let svc = service(container, path)?;
    Ok(match metric {
        "cpu" => Some((Subject::Resource { service: svc, resource: "cpu".into() }, "cpu_percent".into())),
        "mem" => Some((Subject::Resource { service: svc, resource: "memory".into() }, "memory_bytes".into())),
        "lod" => Some((Subject::Service { service: svc }, "requests_per_s".into())),
        "lat_90" => Some((Subject::Service { service: svc }, "latency_p90_s".into())),
        _ => None,
    })
}

// ---------------------------------------------------------------- Nezha

/// The smallest move that can matter for a Nezha pod measure whose unit its
/// name gives: a hundredth of a core (10 millicores, or one percentage point
/// of the pod's CPU limit). A pod idling at 3 % of a core that rises to 5 %
/// has not run out of CPU, however quiet its baseline was; log bursts, GC
/// and health checks move CPU by that much without any fault.
fn min_scale(measure: &str) -> Option<f64> {
    match measure {
        "CpuUsage(m)" => Some(10.0),
        "CpuUsageRate(%)" => Some(1.0),
        _ => None,
    }
}

/// The pod's service: the pod name without its ReplicaSet hash and pod suffix.
pub fn pod_service(pod: &str) -> &str {
    let mut parts = pod.rsplitn(3, '-');
    let (Some(_), Some(_), Some(svc)) = (parts.next(), parts.next(), parts.next()) else { return pod };
    svc
}

/// Which resource a Nezha pod metric column describes (`None`: a service-level
/// measure). Node-level columns are skipped by the caller.
fn nezha_resource(col: &str) -> Option<&'static str> {
    if col.starts_with("Cpu") {
        Some("cpu")
    } else if col.starts_with("Memory") {
        Some("memory")
    } else if col.starts_with("Network") {
        Some("network")
    } else if col.starts_with("Syscall") {
        Some("syscalls")
    } else {
        None
    }
}

/// Pod measures that describe what arrives at the pod rather than what the
/// pod does: its client-side latency (its callees' time), and the traffic it
/// is given — request rate (`PodWorkload`), syscalls and network bytes move
/// with the load its callers send. They help find the change point but are
/// not evidence that the pod is the origin.
fn is_nezha_symptom(col: &str) -> bool {
    col.starts_with("PodClient") || col.starts_with("PodWorkload") || col.starts_with("Syscall") || col.ends_with("Bytes")
}

fn nezha_pods(path: &Path, b: &mut Builder) -> Result<(), EvalError> {
    let mut r = open_csv(path)?;
    let cols = headers(&mut r, path)?;
    let ts = cols.iter().position(|c| c == "TimeStamp");
    let pod = cols.iter().position(|c| c == "PodName");
    let (Some(ts), Some(pod)) = (ts, pod) else {
        return Err(EvalError::Format { path: path.to_owned(), reason: "needs TimeStamp and PodName columns".into() });
    };
    for rec in r.records() {
        let rec = rec.map_err(|e| EvalError::csv(path, e))?;
        let (Some(t), Some(p)) = (rec.get(ts).and_then(|s| s.parse::<f64>().ok()), rec.get(pod)) else { continue };
        let svc = service(pod_service(p), path)?;
        let at = Timestamp::from_millis((t * 1000.0) as i64);
        for (i, col) in cols.iter().enumerate() {
            if i == ts || i == pod || col == "Time" || col.starts_with("Node") {
                continue;
            }
            let Some(x) = rec.get(i).and_then(|s| s.parse::<f64>().ok()) else { continue };
            let subject = match nezha_resource(col) {
                Some(res) => Subject::Resource { service: svc.clone(), resource: res.into() },
                None => Subject::Service { service: svc.clone() },
            };
            if is_nezha_symptom(col) {
                b.symptoms.insert(col.clone());
            }
            b.push(subject, col, SeriesKind::Gauge, at, x);
        }
    }
    Ok(())
}

fn nezha_front(path: &Path, b: &mut Builder) -> Result<(), EvalError> {
    let mut r = open_csv(path)?;
    let cols = headers(&mut r, path)?;
    let Some(ts) = cols.iter().position(|c| c == "TimeStamp") else { return Ok(()) };
    let flow = Subject::Flow { flow: FlowName::new("frontend").map_err(|e| EvalError::Format { path: path.to_owned(), reason: e.to_string() })? };
    for rec in r.records() {
        let rec = rec.map_err(|e| EvalError::csv(path, e))?;
        let Some(t) = rec.get(ts).and_then(|s| s.parse::<f64>().ok()) else { continue };
        let at = Timestamp::from_millis((t * 1000.0) as i64);
        for (i, col) in cols.iter().enumerate() {
            if i == ts || col == "Time" || col == "ServiceName" {
                continue;
            }
            if let Some(x) = rec.get(i).and_then(|s| s.parse::<f64>().ok()) {
                b.push(flow.clone(), col, SeriesKind::Gauge, at, x);
            }
        }
    }
    Ok(())
}

/// Istio per-edge latency: one column per `caller_callee`.
fn nezha_edges(path: &Path, side: &str, b: &mut Builder) -> Result<(), EvalError> {
    let mut r = open_csv(path)?;
    let cols = headers(&mut r, path)?;
    let Some(ts) = cols.iter().position(|c| c == "timestamp") else { return Ok(()) };
    let mut edges = Vec::new();
    for c in &cols {
        edges.push(match c.split_once('_') {
            Some((a, z)) if c != "timestamp" => Some(Interaction { caller: service(a, path)?, callee: service(z, path)?, operation: String::new() }),
            _ => None,
        });
    }
    let measure = format!("p50_latency_{side}");
    for rec in r.records() {
        let rec = rec.map_err(|e| EvalError::csv(path, e))?;
        let Some(t) = rec.get(ts).and_then(|s| s.parse::<f64>().ok()) else { continue };
        let at = Timestamp::from_millis((t * 1000.0) as i64);
        for (i, e) in edges.iter().enumerate() {
            let (Some(e), Some(x)) = (e, rec.get(i).and_then(|s| s.parse::<f64>().ok())) else { continue };
            b.calls.insert(e.clone());
            b.push(Subject::Interaction { interaction: e.clone() }, &measure, SeriesKind::Gauge, at, x);
        }
    }
    Ok(())
}

fn nezha_dependency(path: &Path, b: &mut Builder) -> Result<(), EvalError> {
    let mut r = open_csv(path)?;
    for rec in r.records() {
        let rec = rec.map_err(|e| EvalError::csv(path, e))?;
        let (Some(a), Some(z)) = (rec.get(0), rec.get(1)) else { continue };
        // Placement edges (service → node IP) are not calls.
        if z.chars().all(|c| c.is_ascii_digit() || c == '.') {
            continue;
        }
        b.calls.insert(Interaction { caller: service(a, path)?, callee: service(z, path)?, operation: String::new() });
    }
    Ok(())
}

fn bin_of(nanos: i64) -> Timestamp {
    let secs = nanos.div_euclid(1_000_000_000);
    Timestamp::from_secs(secs - secs.rem_euclid(EVENT_BIN_SECS))
}

/// The spans of a recording (reference and case minute files together),
/// each once: the minute files overlap (one TrainTicket file spans three
/// minutes and holds the next file's spans again), and a span counted twice
/// would make a one-bin spike look held for several bins. Spans are binned
/// only when every file is read, so a bin cut by a file boundary is one
/// point, and a call whose client span is in another file than its server
/// span is still paired.
#[derive(Default)]
struct SpanSet {
    /// Span id → (service, outgoing HTTP call?, duration in µs, bin).
    spans: BTreeMap<String, (String, bool, f64, Timestamp)>,
    /// (parent span id, child span id) for every non-root span.
    children: Vec<(String, String)>,
}

impl SpanSet {
    /// Reads one trace file: spans not seen before are kept, their bins
    /// added to `bins` and their code-path events to `path_events`.
    fn read(&mut self, path: &Path, bins: &mut BTreeSet<Timestamp>, path_events: &mut Vec<PathEvent>) -> Result<(), EvalError> {
        let mut r = open_csv(path)?;
        let cols = headers(&mut r, path)?;
        let col = |n: &str| cols.iter().position(|c| c == n);
        let (Some(sid), Some(pid), Some(pod), Some(start), Some(dur)) =
            (col("SpanID"), col("ParentID"), col("PodName"), col("StartTimeUnixNano"), col("Duration"))
        else {
            return Err(EvalError::Format { path: path.to_owned(), reason: "missing span columns".into() });
        };
        let opn = col("OperationName");
        let tid = col("TraceID");
        for rec in r.records() {
            let rec = rec.map_err(|e| EvalError::csv(path, e))?;
            let (Some(s), Some(p), Some(pd), Some(st), Some(d)) = (rec.get(sid), rec.get(pid), rec.get(pod), rec.get(start), rec.get(dur)) else { continue };
            let (Ok(st), Ok(d)) = (st.parse::<i64>(), d.parse::<f64>()) else { continue };
            if self.spans.contains_key(s) {
                continue;
            }
            let svc = pod_service(pd).to_owned();
            let bin = bin_of(st);
            bins.insert(bin);
            let client = opn.and_then(|i| rec.get(i)).is_some_and(|o| o.starts_with("HTTP "));
            if let (Some(trace), Some(op)) = (tid.and_then(|i| rec.get(i)), opn.and_then(|i| rec.get(i))) {
                path_events.push(PathEvent {
                    trace: trace.to_owned(),
                    service: svc.clone(),
                    at: st,
                    event: format!("S:{op}"),
                    span: Some((s.to_owned(), p.to_owned())),
                });
            }
            if p != "root" {
                self.children.push((p.to_owned(), s.to_owned()));
            }
            self.spans.insert(s.to_owned(), (svc, client, d, bin));
        }
        Ok(())
    }

    /// Span counts and durations per service, per `EVENT_BIN_SECS` bin; the
    /// caller → callee edges seen between spans of different services; and
    /// per call edge and bin the median network time.
    fn emit(&self, b: &mut Builder, dir: &Path) -> Result<(), EvalError> {
        let mut per: BTreeMap<(&str, Timestamp), Vec<f64>> = BTreeMap::new();
        for (svc, _, d, bin) in self.spans.values() {
            per.entry((svc, *bin)).or_default().push(d / 1000.0);
        }
        // Network time of a call: the caller's client span minus the callee's
        // server span under it (what neither side spent working).
        let mut gaps: BTreeMap<(&str, &str, Timestamp), Vec<f64>> = BTreeMap::new();
        for (p, c) in &self.children {
            let (Some((parent, client, pd, _)), Some((child, _, d, bin))) = (self.spans.get(p), self.spans.get(c)) else { continue };
            if parent == child {
                continue;
            }
            b.calls.insert(Interaction { caller: service(parent, dir)?, callee: service(child, dir)?, operation: String::new() });
            if *client {
                gaps.entry((parent, child, *bin)).or_default().push(((pd - d) / 1000.0).max(0.0));
            }
        }
        for ((caller, callee, bin), g) in gaps {
            let interaction = Interaction { caller: service(caller, dir)?, callee: service(callee, dir)?, operation: String::new() };
            if let Some(m) = faultline_core::diagnose::robust::median(&g) {
                b.push(Subject::Interaction { interaction }, NETWORK_GAP, SeriesKind::Gauge, bin, m);
            }
        }
        for ((svc, bin), mut ds) in per {
            let subject = Subject::Service { service: service(svc, dir)? };
            ds.sort_by(f64::total_cmp);
            b.push(subject.clone(), "span_count", SeriesKind::Count, bin, ds.len() as f64);
            let med = ds[ds.len() / 2];
            b.push(subject, "span_duration_median_ms", SeriesKind::Gauge, bin, med);
        }
        Ok(())
    }
}

/// The log template of a raw log line: level plus the logger/location token
/// that follows it (e.g. `ERROR f.m.s.BasicServiceImpl#415`), else `other`.
pub fn log_template(line: &str) -> String {
    for level in ["ERROR", "WARN", "INFO", "DEBUG"] {
        let mut rest = line;
        while let Some(i) = rest.find(level) {
            let before_ok = i == 0 || rest.as_bytes()[i - 1].is_ascii_whitespace();
            let after = &rest[i + level.len()..];
            if before_ok && after.starts_with(char::is_whitespace) {
                let token = after.split_whitespace().next().unwrap_or("");
                return format!("{level} {token}");
            }
            rest = after;
        }
    }
    "other".to_owned()
}

/// One log line: (trace, service) it belongs to, time in ns, template.
type LogEvent = ((String, String), i64, String);

/// The log lines of one file as (trace, service), time and template.
/// Earliest plausible event time: 2000-01-01 in Unix nanoseconds. Some
/// Nezha log rows carry an overflowed `TimeUnixNano` (e.g.
/// −6795364578871345152) beside a correct `Timestamp` text.
const PLAUSIBLE_NS: i64 = 946_684_800_000_000_000;

/// A log line's time in Unix nanoseconds: `TimeUnixNano` when plausible,
/// else the `Timestamp` text (RFC 3339, read as UTC when it has no offset),
/// else `None` (the line is skipped rather than binned at a bogus time).
fn log_time_ns(nanos: Option<&str>, stamp: Option<&str>) -> Option<i64> {
    if let Some(n) = nanos.and_then(|s| s.parse::<i64>().ok()).filter(|n| *n >= PLAUSIBLE_NS) {
        return Some(n);
    }
    let s = stamp?.trim();
    let has_offset = s.ends_with('Z') || s.ends_with('z') || s.get(19..).is_some_and(|tail| tail.contains('+') || tail.contains('-'));
    let parsed = if has_offset { Timestamp::parse_rfc3339(s) } else { Timestamp::parse_rfc3339(&format!("{s}Z")) };
    parsed.ok().map(|t| t.as_millis().saturating_mul(1_000_000)).filter(|n| *n >= PLAUSIBLE_NS)
}

/// Reads one log file into `out`, skipping rows already in `seen` (pod,
/// time, raw line): the minute files overlap, as the trace files do.
fn nezha_logs(path: &Path, seen: &mut BTreeSet<(String, i64, String)>, out: &mut Vec<LogEvent>) -> Result<(), EvalError> {
    let mut r = open_csv(path)?;
    let cols = headers(&mut r, path)?;
    let col = |n: &str| cols.iter().position(|c| c == n);
    let (Some(tn), Some(pod), Some(log)) = (col("TimeUnixNano"), col("PodName"), col("Log")) else {
        return Err(EvalError::Format { path: path.to_owned(), reason: "missing log columns".into() });
    };
    let trace = col("TraceID");
    let stamp = col("Timestamp");
    for rec in r.records() {
        let rec = rec.map_err(|e| EvalError::csv(path, e))?;
        let t = log_time_ns(rec.get(tn), stamp.and_then(|i| rec.get(i)));
        let (Some(t), Some(p), Some(l)) = (t, rec.get(pod), rec.get(log)) else { continue };
        let text = serde_json::from_str::<serde_json::Value>(l)
            .ok()
            .and_then(|v| v.get("log").and_then(|s| s.as_str()).map(str::to_owned))
            .unwrap_or_else(|| l.to_owned());
        if !seen.insert((p.to_owned(), t, l.to_owned())) {
            continue;
        }
        let tid = trace.and_then(|i| rec.get(i)).unwrap_or("").to_owned();
        out.push(((tid, pod_service(p).to_owned()), t, log_template(&text)));
    }
    Ok(())
}

/// A service's code path as transitions between consecutive log templates
/// of one trace (`start` before the first line, `end` after the last):
/// (service, time in ns, from, to).
fn log_transitions(mut events: Vec<LogEvent>) -> Vec<(String, i64, String, String)> {
    events.sort();
    let mut out = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let key = events[i].0.clone();
        let mut j = i;
        let mut prev = "start".to_owned();
        while j < events.len() && events[j].0 == key {
            out.push((key.1.clone(), events[j].1, prev, events[j].2.clone()));
            prev = events[j].2.clone();
            j += 1;
        }
        // Lines without a trace id are not one code path.
        if key.0.is_empty() {
            out.truncate(out.len() - (j - i));
        } else {
            out.push((key.1.clone(), events[j - 1].1, prev, "end".to_owned()));
        }
        i = j;
    }
    out
}

/// Transition counts of the fault-free reference: (service, from) → to → n.
type PathModel = BTreeMap<(String, String), BTreeMap<String, f64>>;

/// Surprisal (nats) of `from → to` under the reference model with add-½
/// smoothing over the successors seen plus one unseen; `None` when the
/// reference never saw `from` in that service.
fn surprisal(model: &PathModel, svc: &str, from: &str, to: &str) -> Option<f64> {
    let next = model.get(&(svc.to_owned(), from.to_owned()))?;
    let n: f64 = next.values().sum();
    let k = next.len() as f64 + 1.0;
    let c = next.get(to).copied().unwrap_or(0.0);
    Some(-((c + 0.5) / (n + 0.5 * k)).ln())
}

fn minute_files(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>, EvalError> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut v: Vec<PathBuf> =
        rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix))).collect();
    v.sort();
    Ok(v)
}

/// The fault-free minute folders of a Nezha dataset, by their start time
/// (`baseline/<YYYYMMDDTHHMM>`).
fn baselines(dataset: &Path) -> Vec<(i64, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dataset.join("baseline")) else { return Vec::new() };
    let mut v: Vec<(i64, PathBuf)> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            Some((folder_epoch(&name)?, p))
        })
        .collect();
    v.sort();
    v
}

/// `YYYYMMDDTHHMM` as Unix seconds (UTC).
fn folder_epoch(name: &str) -> Option<i64> {
    if name.len() != 13 || name.as_bytes()[8] != b'T' {
        return None;
    }
    let s = format!("{}-{}-{}T{}:{}:00Z", &name[0..4], &name[4..6], &name[6..8], &name[9..11], &name[11..13]);
    Timestamp::parse_rfc3339(&s).ok().map(|t| t.as_millis() / 1000)
}

/// A Nezha case: pod metrics, frontend SLI, Istio edges and dependency graph
/// when present, and trace and log events of the case's minute files together
/// with the latest fault-free baseline minute recorded before them.
pub fn nezha_case(dataset: &Path, dir: &Path) -> Result<DiagnosisInput, EvalError> {
    let mut b = Builder::default();
    let m = dir.join("metrics");
    nezha_pods(&m.join("pods.csv.gz"), &mut b)?;
    let front = m.join("front_service.csv.gz");
    if front.exists() {
        nezha_front(&front, &mut b)?;
    }
    for side in ["source", "destination"] {
        let p = m.join(format!("{side}_50.csv.gz"));
        if p.exists() {
            nezha_edges(&p, side, &mut b)?;
        }
    }
    let dep = m.join("dependency.csv");
    if dep.exists() {
        nezha_dependency(&dep, &mut b)?;
    }

    let traces = minute_files(&dir.join("minutes"), "_trace.csv.gz")?;
    let logs = minute_files(&dir.join("minutes"), "_log.csv.gz")?;
    if traces.is_empty() && logs.is_empty() {
        return Ok(b.finish());
    }
    // The baseline minute: the latest fault-free minute that starts no later
    // than the case's first trace or log event (never chosen by inject time).
    let first_event = first_event_time(&traces, &logs)?;
    let base = first_event.and_then(|t0| baselines(dataset).into_iter().rev().find(|(e, _)| Timestamp::from_secs(*e) <= t0));
    // The reference (fault-free) minute is each event series' baseline.
    // Reference and case files are read into one span set and one set of
    // log rows, each span and line once (see `SpanSet`).
    let mut spans = SpanSet::default();
    let mut log_rows = BTreeSet::new();
    let reference_end = match &base {
        Some((_, bdir)) => {
            let mut end = None;
            let mut bins = BTreeSet::new();
            let mut ref_paths = Vec::new();
            for f in minute_files(&bdir.join("minutes"), "_trace.csv.gz")? {
                spans.read(&f, &mut bins, &mut ref_paths)?;
            }
            let mut events = Vec::new();
            for f in minute_files(&bdir.join("minutes"), "_log.csv.gz")? {
                nezha_logs(&f, &mut log_rows, &mut events)?;
            }
            if let Some(last) = bins.iter().next_back() {
                end = Some(*last);
            }
            ref_paths.extend(events.iter().filter(|e| !e.0.0.is_empty()).map(|((trace, service), at, t)| PathEvent {
                trace: trace.clone(),
                service: service.clone(),
                at: *at,
                event: format!("L:{t}"),
                span: None,
            }));
            Some((end, log_transitions(events), ref_paths))
        }
        None => None,
    };
    let mut bins = BTreeSet::new();
    let mut case_paths = Vec::new();
    for f in &traces {
        spans.read(f, &mut bins, &mut case_paths)?;
    }
    spans.emit(&mut b, dir)?;
    let mut events = Vec::new();
    for f in &logs {
        nezha_logs(f, &mut log_rows, &mut events)?;
    }
    let Some((end, reference, ref_paths)) = reference_end else { return Ok(b.finish()) };
    case_paths.extend(events.iter().filter(|e| !e.0.0.is_empty()).map(|((trace, service), at, t)| PathEvent {
        trace: trace.clone(),
        service: service.clone(),
        at: *at,
        event: format!("L:{t}"),
        span: None,
    }));
    // Code-path change, blamed on the deepest changed service of each trace,
    // as a share of the service's traces per bin (reference bins included).
    let ref_paths = Paths::build(&ref_paths);
    let path_model = code_path::PathModel::fit(&ref_paths);
    let mut shares: BTreeMap<(String, Timestamp), (f64, f64)> = BTreeMap::new();
    for p in [&ref_paths, &Paths::build(&case_paths)] {
        for (svc, ps) in blamed_paths(p, &path_model) {
            for (at, blamed) in ps {
                let e = shares.entry((svc.clone(), bin_of(at))).or_default();
                e.0 += f64::from(u8::from(blamed));
                e.1 += 1.0;
            }
        }
    }
    for ((svc, bin), (k, n)) in shares {
        b.push_proportion(Subject::Service { service: service(&svc, dir)? }, CODE_PATH, bin, k, n);
    }
    let mut model: PathModel = BTreeMap::new();
    for (svc, _, from, to) in &reference {
        *model.entry((svc.clone(), from.clone())).or_default().entry(to.clone()).or_default() += 1.0;
    }
    // Per service and bin: the mean surprisal of its code-path transitions
    // under the reference model (reference bins included, in-sample).
    let mut per: BTreeMap<(String, Timestamp), (f64, f64)> = BTreeMap::new();
    for (svc, t, from, to) in reference.iter().chain(log_transitions(events).iter()) {
        if let Some(x) = surprisal(&model, svc, from, to) {
            let e = per.entry((svc.clone(), bin_of(*t))).or_default();
            e.0 += x;
            e.1 += 1.0;
        }
    }
    for ((svc, bin), (sum, n)) in per {
        b.push(Subject::Service { service: service(&svc, dir)? }, LOG_PATH, SeriesKind::Gauge, bin, sum / n);
    }
    // With traces and logs against a fault-free reference, origin evidence
    // is what says where a failure starts: the code path blamed on the
    // deepest changed service, the network time of each call, resources.
    // Latency (pod server quantiles, span durations) includes every callee's
    // time, span counts follow the load callers send, and the per-service
    // log-sequence surprisal is seen in every caller that logs the errors it
    // receives: they locate the change but are symptoms here. (Without
    // traces, as in Online Boutique, server latency stays origin evidence:
    // it is the only view of a service's own slowness there.)
    for m in TRACE_CASE_SYMPTOMS {
        b.symptoms.insert((*m).to_owned());
    }
    b.now = bins.iter().next_back().map(|t| *t + faultline_core::time::Duration::from_secs(EVENT_BIN_SECS - 1));
    b.reference_end = end.map(|e| e + faultline_core::time::Duration::from_secs(EVENT_BIN_SECS - 1));
    Ok(b.finish())
}

/// The earliest event time in the first trace and log file (files are sorted
/// by name, which is the minute they cover).
fn first_event_time(traces: &[PathBuf], logs: &[PathBuf]) -> Result<Option<Timestamp>, EvalError> {
    let mut first: Option<Timestamp> = None;
    for (files, column) in [(traces, "StartTimeUnixNano"), (logs, "TimeUnixNano")] {
        let Some(path) = files.first() else { continue };
        let mut r = open_csv(path)?;
        let cols = headers(&mut r, path)?;
        let Some(i) = cols.iter().position(|c| c == column) else { continue };
        for rec in r.records() {
            let rec = rec.map_err(|e| EvalError::csv(path, e))?;
            if let Some(n) = rec.get(i).and_then(|s| s.parse::<i64>().ok()).filter(|n| *n >= PLAUSIBLE_NS) {
                let t = Timestamp::from_millis(n.div_euclid(1_000_000));
                first = Some(first.map_or(t, |f| f.min(t)));
            }
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overflowed_log_time_falls_back_to_the_timestamp_text() {
        // As in a Nezha TrainTicket log row: TimeUnixNano overflowed, the text is right.
        let t = log_time_ns(Some("-6795364578871345152"), Some("2023-01-29T09:20:29.295"));
        assert_eq!(t, Some(1_674_984_029_295_000_000));
        assert_eq!(log_time_ns(Some("1674984080720782462"), Some("garbage")), Some(1_674_984_080_720_782_462));
        assert_eq!(log_time_ns(Some("-1"), Some("2023-01-29T09:20:29.295Z")), Some(1_674_984_029_295_000_000));
        assert_eq!(log_time_ns(Some("-1"), Some("not a time")), None);
        assert_eq!(log_time_ns(None, None), None);
    }

    #[test]
    fn overlapping_trace_files_count_each_span_once_and_pair_calls_across_files() {
        let dir = std::env::temp_dir().join(format!("faultline-spanset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let head = "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n";
        let t = 1_674_984_000_000_000_000_i64;
        let client = format!("t1,c1,root,ts-a-service-5d-x1,HTTP GET,{t},{},9000\n", t + 9_000_000);
        let server1 = format!("t1,s1,c1,ts-b-service-7f-y2,GET /b,{},{},4000\n", t + 1_000_000, t + 5_000_000);
        let client2 = format!("t2,c2,root,ts-a-service-5d-x1,HTTP GET,{},{},8000\n", t + 1_000, t + 8_001_000);
        let server2 = format!("t2,s2,c2,ts-b-service-7f-y2,GET /b,{},{},2000\n", t + 2_000_000, t + 4_000_000);
        // The second file repeats s1 (the files overlap) and holds the
        // server span of a call whose client span is in the first file.
        std::fs::write(dir.join("a.csv"), format!("{head}{client}{server1}{client2}")).unwrap();
        std::fs::write(dir.join("b.csv"), format!("{head}{server1}{server2}")).unwrap();
        let (mut spans, mut bins, mut events) = (SpanSet::default(), BTreeSet::new(), Vec::new());
        spans.read(&dir.join("a.csv"), &mut bins, &mut events).unwrap();
        spans.read(&dir.join("b.csv"), &mut bins, &mut events).unwrap();
        let mut b = Builder::default();
        spans.emit(&mut b, &dir).unwrap();
        let input = b.finish();
        std::fs::remove_dir_all(&dir).ok();
        let find = |measure: &str, svc: Option<&str>| {
            input
                .series
                .iter()
                .find(|s| s.measure == measure && svc.is_none_or(|n| matches!(&s.subject, Subject::Service { service } if service.as_str() == n)))
                .map(|s| s.points.clone())
        };
        assert_eq!(events.len(), 4, "each span's path event once");
        assert_eq!(find("span_count", Some("ts-b-service")).unwrap(), vec![(Timestamp::from_millis(t / 1_000_000), 2.0)]);
        // Network time: c1 − s1 = 5 ms and c2 − s2 = 6 ms, median of one bin.
        let gaps = find(NETWORK_GAP, None).unwrap();
        assert_eq!(gaps.len(), 1);
        assert!((gaps[0].1 - 5.5).abs() < 1e-9, "{gaps:?}");
    }
}
