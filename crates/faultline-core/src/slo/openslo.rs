//! OpenSLO v1 objects (SLO, SLI with ratio or threshold metrics, AlertPolicy,
//! AlertCondition, AlertNotificationTarget, Service, DataSource): parsing,
//! validation that names the offending field, and conversion of SLOs into
//! the engine's `SloSpec`.
//!
//! Validation follows the spec and the reference validator (`oslo`):
//! RFC-1123 names, unknown fields rejected, `op` forbidden on ratio SLIs,
//! exactly one time window, `target` xor `targetPercent`, one condition per
//! alert policy. Not here: v1alpha/v2alpha objects (rejected as unsupported).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::node::{Node, Sink, SpecError, SpecErrors, index, join, kind, parse_yaml_objects};
use super::spec::{Objective, Sli, SloSpec, SloTarget};
use super::windows::{AlertSeverity, AlertWindows, BurnPair};
use crate::time::Duration;

const DAY: i64 = 86_400_000;

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    pub display_name: Option<String>,
    /// Values may be lists in OpenSLO; single values become one-item lists.
    pub labels: BTreeMap<String, Vec<String>>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSource {
    pub metric_source_ref: Option<String>,
    pub source_type: Option<String>,
    /// Arbitrary data-source specific fields (e.g. `query`).
    pub spec: Value,
}

impl MetricSource {
    /// The `query` field of the source spec, when there is one.
    pub fn query(&self) -> String {
        self.spec.get("query").and_then(|q| q.as_str()).map(str::to_owned).unwrap_or_else(|| self.spec.to_string())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SliMetric {
    Threshold {
        source: MetricSource,
    },
    /// `good`/`bad` over `total`.
    Ratio {
        counter: bool,
        good: Option<MetricSource>,
        bad: Option<MetricSource>,
        total: MetricSource,
    },
    /// A stored ratio; `success` = good/total, else bad/total.
    Raw {
        counter: bool,
        raw: MetricSource,
        success: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliObject {
    pub metadata: Metadata,
    pub description: String,
    pub metric: SliMetric,
}

// Parsed once per file; the size difference between variants is irrelevant.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IndicatorRef {
    Inline(SliObject),
    Ref(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub duration_text: String,
    /// Calendar units are approximated: M = 30 d, Q = 90 d, Y = 365 d.
    pub duration: Duration,
    pub rolling: bool,
    pub calendar: Option<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloObjective {
    pub display_name: Option<String>,
    pub op: Option<String>,
    pub value: Option<f64>,
    pub objective: Objective,
    pub time_slice_target: Option<f64>,
    pub time_slice_window: Option<Duration>,
    pub composite_weight: Option<f64>,
    pub indicator: Option<IndicatorRef>,
}

#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PolicyRef {
    Inline(AlertPolicyObject),
    Ref(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloObject {
    pub metadata: Metadata,
    pub description: String,
    pub service: String,
    pub indicator: Option<IndicatorRef>,
    pub time_window: TimeWindow,
    pub budgeting_method: String,
    pub objectives: Vec<SloObjective>,
    pub alert_policies: Vec<PolicyRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurnRateCondition {
    pub kind: String,
    pub op: Option<String>,
    pub threshold: f64,
    pub lookback_window: Duration,
    pub alert_after: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertConditionObject {
    pub metadata: Metadata,
    pub description: String,
    pub severity: String,
    pub condition: BurnRateCondition,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ConditionRef {
    Inline(AlertConditionObject),
    Ref(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TargetRef {
    Inline(NotificationTargetObject),
    Ref(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertPolicyObject {
    pub metadata: Metadata,
    pub description: String,
    pub alert_when_no_data: bool,
    pub alert_when_resolved: bool,
    pub alert_when_breaching: bool,
    pub condition: ConditionRef,
    pub notification_targets: Vec<TargetRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationTargetObject {
    pub metadata: Metadata,
    pub description: String,
    pub target: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceObject {
    pub metadata: Metadata,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSourceObject {
    pub metadata: Metadata,
    pub description: String,
    pub source_type: String,
    pub connection_details: Value,
}

/// One OpenSLO v1 object.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum OpenSloObject {
    Slo(SloObject),
    Sli(SliObject),
    AlertPolicy(AlertPolicyObject),
    AlertCondition(AlertConditionObject),
    AlertNotificationTarget(NotificationTargetObject),
    Service(ServiceObject),
    DataSource(DataSourceObject),
}

impl OpenSloObject {
    pub fn name(&self) -> &str {
        match self {
            OpenSloObject::Slo(o) => &o.metadata.name,
            OpenSloObject::Sli(o) => &o.metadata.name,
            OpenSloObject::AlertPolicy(o) => &o.metadata.name,
            OpenSloObject::AlertCondition(o) => &o.metadata.name,
            OpenSloObject::AlertNotificationTarget(o) => &o.metadata.name,
            OpenSloObject::Service(o) => &o.metadata.name,
            OpenSloObject::DataSource(o) => &o.metadata.name,
        }
    }
}

/// Parses and validates an OpenSLO v1 file (multi-document, or a list).
pub fn parse_openslo(text: &str) -> Result<Vec<OpenSloObject>, SpecErrors> {
    parse_objects(&parse_yaml_objects(text)?)
}

/// Validates already-parsed YAML values; collects every error of every object.
pub fn parse_objects(values: &[Value]) -> Result<Vec<OpenSloObject>, SpecErrors> {
    let mut out = Vec::new();
    let mut errors: Vec<SpecError> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let mut sink = Sink::new(i);
        let obj = parse_object(Node::root(v), &mut sink);
        if sink.errors.is_empty() {
            if let Some(o) = obj {
                out.push(o);
            }
        } else {
            errors.extend(sink.errors);
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(SpecErrors(errors)) }
}

/// The RFC-1123 label rule OpenSLO uses for `metadata.name`.
pub fn is_rfc1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && b.len() <= 63 && ok(b[0]) && ok(b[b.len() - 1]) && b.iter().all(|&c| ok(c) || c == b'-')
}

/// OpenSLO duration shorthand `<n><m|h|d|w|M|Q|Y>`; returns the duration and
/// whether the unit is calendar-based.
pub fn parse_shorthand(s: &str) -> Result<(Duration, bool), String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().map_err(|_| format!("invalid duration shorthand {s:?}: expected <number><unit>"))?;
    if n <= 0 {
        return Err(format!("invalid duration shorthand {s:?}: must be positive"));
    }
    let (ms, calendar) = match unit {
        "m" => (60_000, false),
        "h" => (3_600_000, false),
        "d" => (DAY, false),
        "w" => (7 * DAY, false),
        "M" => (30 * DAY, true),
        "Q" => (90 * DAY, true),
        "Y" => (365 * DAY, true),
        _ => return Err(format!("invalid duration shorthand {s:?}: unit must be one of m, h, d, w, M, Q, Y")),
    };
    Ok((Duration::from_millis(n.saturating_mul(ms)), calendar))
}

const MAX_DESCRIPTION: usize = 1050;

fn description(n: &Node<'_>, sink: &mut Sink) -> String {
    let d = n.opt_str("description", sink).unwrap_or_default();
    if d.chars().count() > MAX_DESCRIPTION {
        sink.push(&join(n.path(), "description"), format!("longer than {MAX_DESCRIPTION} characters"));
    }
    d
}

fn parse_metadata(root: &Node<'_>, sink: &mut Sink) -> Metadata {
    let mpath = join(root.path(), "metadata");
    let Some(m) = root.opt_map("metadata", sink) else {
        sink.push(&join(&mpath, "name"), "property is required but was empty");
        return Metadata::default();
    };
    let m = Node::at(m, &mpath);
    m.deny_unknown(&["name", "displayName", "labels", "annotations"], sink);
    let name = m.req_str("name", sink).unwrap_or_default();
    if !name.is_empty() && !is_rfc1123_label(&name) {
        sink.push(
            &join(&mpath, "name"),
            format!("value {name:?} must be an RFC-1123 label: lower case alphanumeric characters or '-', starting and ending with an alphanumeric character"),
        );
    }
    let display_name = m.opt_str("displayName", sink);
    let mut labels = BTreeMap::new();
    if let Some(l) = m.opt_map("labels", sink).and_then(|v| v.as_object()) {
        for (k, v) in l {
            let vals = match v {
                Value::String(s) => vec![s.clone()],
                Value::Number(n) => vec![n.to_string()],
                Value::Bool(b) => vec![b.to_string()],
                Value::Array(items) => items
                    .iter()
                    .filter_map(|i| match i {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        other => {
                            sink.push(&join(&join(&mpath, "labels"), k), format!("label values must be strings, found {}", kind(other)));
                            None
                        }
                    })
                    .collect(),
                other => {
                    sink.push(&join(&join(&mpath, "labels"), k), format!("label values must be strings, found {}", kind(other)));
                    continue;
                }
            };
            labels.insert(k.clone(), vals);
        }
    }
    let annotations = m.opt_string_map("annotations", sink);
    Metadata { name, display_name, labels, annotations }
}

fn parse_object(root: Node<'_>, sink: &mut Sink) -> Option<OpenSloObject> {
    if !root.value.is_object() {
        sink.push("", format!("expected a mapping, found {}", kind(root.value)));
        return None;
    }
    root.deny_unknown(&["apiVersion", "kind", "metadata", "spec"], sink);
    match root.opt_str("apiVersion", sink).as_deref() {
        Some("openslo/v1") => {}
        Some(other) => {
            sink.push("apiVersion", format!("unsupported openslo version {other:?}, expected openslo/v1"));
            return None;
        }
        None => {
            sink.push("apiVersion", "property is required but was empty");
            return None;
        }
    }
    let kind_s = root.req_str("kind", sink)?;
    let meta = parse_metadata(&root, sink);
    let spec_v = root.opt_map("spec", sink);
    let empty = Value::Object(Default::default());
    if spec_v.is_none() {
        sink.push("spec", "property is required but was empty");
    }
    let spec = Node::at(spec_v.unwrap_or(&empty), "spec");
    parse_kind(&kind_s, meta, spec, sink)
}

fn parse_kind(kind_s: &str, meta: Metadata, spec: Node<'_>, sink: &mut Sink) -> Option<OpenSloObject> {
    Some(match kind_s {
        "Service" => {
            spec.deny_unknown(&["description"], sink);
            OpenSloObject::Service(ServiceObject { metadata: meta, description: description(&spec, sink) })
        }
        "DataSource" => {
            spec.deny_unknown(&["description", "type", "connectionDetails"], sink);
            let source_type = spec.req_str("type", sink).unwrap_or_default();
            OpenSloObject::DataSource(DataSourceObject {
                metadata: meta,
                description: description(&spec, sink),
                source_type,
                connection_details: spec.get("connectionDetails").cloned().unwrap_or(Value::Null),
            })
        }
        "SLI" => OpenSloObject::Sli(parse_sli_spec(meta, spec, sink)?),
        "SLO" => OpenSloObject::Slo(parse_slo_spec(meta, spec, sink)?),
        "AlertCondition" => OpenSloObject::AlertCondition(parse_condition_spec(meta, spec, sink)?),
        "AlertPolicy" => OpenSloObject::AlertPolicy(parse_policy_spec(meta, spec, sink)?),
        "AlertNotificationTarget" => {
            spec.deny_unknown(&["description", "target"], sink);
            let target = spec.req_str("target", sink).unwrap_or_default();
            OpenSloObject::AlertNotificationTarget(NotificationTargetObject { metadata: meta, description: description(&spec, sink), target })
        }
        other => {
            sink.push(
                "kind",
                format!("unknown kind {other:?}; expected one of DataSource, SLO, SLI, AlertPolicy, AlertCondition, AlertNotificationTarget, Service"),
            );
            return None;
        }
    })
}

fn metric_source(parent: &Node<'_>, key: &str, sink: &mut Sink) -> Option<MetricSource> {
    let path = join(parent.path(), key);
    let v = parent.opt_map(key, sink)?;
    let n = Node::at(v, &path);
    n.deny_unknown(&["metricSource"], sink);
    let ms_path = join(&path, "metricSource");
    let Some(ms) = n.opt_map("metricSource", sink) else {
        sink.push(&ms_path, "property is required but was empty");
        return None;
    };
    let ms = Node::at(ms, &ms_path);
    ms.deny_unknown(&["metricSourceRef", "type", "spec"], sink);
    let spec = ms.get("spec").cloned();
    if spec.is_none() {
        sink.push(&join(&ms_path, "spec"), "property is required but was empty");
    }
    Some(MetricSource { metric_source_ref: ms.opt_str("metricSourceRef", sink), source_type: ms.opt_str("type", sink), spec: spec.unwrap_or(Value::Null) })
}

fn parse_sli_spec(metadata: Metadata, spec: Node<'_>, sink: &mut Sink) -> Option<SliObject> {
    spec.deny_unknown(&["description", "thresholdMetric", "ratioMetric"], sink);
    let desc = description(&spec, sink);
    let metric = match (spec.has("thresholdMetric"), spec.has("ratioMetric")) {
        (true, false) => {
            let path = join(spec.path(), "thresholdMetric");
            let t = Node::at(spec.get("thresholdMetric")?, &path);
            t.deny_unknown(&["metricSource"], sink);
            let source = metric_source(&spec, "thresholdMetric", sink)?;
            SliMetric::Threshold { source }
        }
        (false, true) => {
            let path = join(spec.path(), "ratioMetric");
            let rv = spec.opt_map("ratioMetric", sink)?;
            let r = Node::at(rv, &path);
            r.deny_unknown(&["counter", "good", "bad", "total", "raw", "rawType"], sink);
            let counter = r.opt_bool("counter", sink).unwrap_or(false);
            if r.has("raw") {
                for k in ["good", "bad", "total"] {
                    if r.has(k) {
                        sink.push(&join(&path, k), "cannot be used together with raw");
                    }
                }
                let success = match r.opt_str("rawType", sink).as_deref() {
                    Some("success") => true,
                    Some("failure") => false,
                    Some(o) => {
                        sink.push(&join(&path, "rawType"), format!("must be success or failure, got {o:?}"));
                        false
                    }
                    None => {
                        sink.push(&join(&path, "rawType"), "property is required with raw");
                        false
                    }
                };
                SliMetric::Raw { counter, raw: metric_source(&r, "raw", sink)?, success }
            } else {
                let good = if r.has("good") { metric_source(&r, "good", sink) } else { None };
                let bad = if r.has("bad") { metric_source(&r, "bad", sink) } else { None };
                if r.has("good") && r.has("bad") {
                    sink.push(&join(&path, "bad"), "good and bad are mutually exclusive");
                } else if !r.has("good") && !r.has("bad") {
                    sink.push(&join(&path, "good"), "one of good or bad is required with total");
                }
                if !r.has("total") {
                    sink.push(&join(&path, "total"), "property is required but was empty");
                    return None;
                }
                let total = metric_source(&r, "total", sink)?;
                SliMetric::Ratio { counter, good, bad, total }
            }
        }
        (true, true) => {
            sink.push(&join(spec.path(), "ratioMetric"), "thresholdMetric and ratioMetric are mutually exclusive");
            return None;
        }
        (false, false) => {
            sink.push(&join(spec.path(), "ratioMetric"), "one of thresholdMetric or ratioMetric is required");
            return None;
        }
    };
    Some(SliObject { metadata, description: desc, metric })
}

/// An inline indicator: `{metadata, spec}` without apiVersion/kind.
fn inline_sli(parent: &Node<'_>, key: &str, sink: &mut Sink) -> Option<SliObject> {
    let path = join(parent.path(), key);
    let v = parent.opt_map(key, sink)?;
    let n = Node::at(v, &path);
    n.deny_unknown(&["metadata", "spec", "apiVersion", "kind"], sink);
    let meta = parse_metadata(&n, sink);
    let spath = join(&path, "spec");
    let Some(spec) = n.opt_map("spec", sink) else {
        sink.push(&spath, "property is required but was empty");
        return None;
    };
    parse_sli_spec(meta, Node::at(spec, &spath), sink)
}

fn parse_slo_spec(metadata: Metadata, spec: Node<'_>, sink: &mut Sink) -> Option<SloObject> {
    let p = spec.path();
    spec.deny_unknown(&["description", "service", "indicator", "indicatorRef", "timeWindow", "budgetingMethod", "objectives", "alertPolicies"], sink);
    let desc = description(&spec, sink);
    let service = spec.req_str("service", sink).unwrap_or_default();
    let indicator = match (spec.has("indicator"), spec.has("indicatorRef")) {
        (true, true) => {
            sink.push(&join(p, "indicatorRef"), "indicator and indicatorRef are mutually exclusive");
            None
        }
        (true, false) => inline_sli(&spec, "indicator", sink).map(IndicatorRef::Inline),
        (false, true) => spec.opt_str("indicatorRef", sink).map(IndicatorRef::Ref),
        (false, false) => None,
    };
    // Time window: exactly one.
    let tw_path = join(p, "timeWindow");
    let mut time_window = None;
    match spec.opt_seq("timeWindow", sink) {
        Some(list) if list.len() == 1 => {
            let wp = index(&tw_path, 0);
            let w = Node::at(&list[0], &wp);
            w.deny_unknown(&["duration", "isRolling", "calendar"], sink);
            let rolling_field = w.opt_bool("isRolling", sink);
            let calendar = w.opt_map("calendar", sink).map(|c| {
                let cp = join(&wp, "calendar");
                let c = Node::at(c, &cp);
                c.deny_unknown(&["startTime", "timeZone"], sink);
                let start = c.req_str("startTime", sink).unwrap_or_default();
                let tz = c.req_str("timeZone", sink).unwrap_or_default();
                if !tz.is_empty() && jiff::tz::TimeZone::get(&tz).is_err() {
                    sink.push(&join(&cp, "timeZone"), format!("value {tz:?} is not a valid IANA Time Zone Database code"));
                }
                if !start.is_empty() && start.parse::<jiff::civil::DateTime>().is_err() {
                    sink.push(&join(&cp, "startTime"), format!("value {start:?} is not a date and time like 2020-01-21 12:30:00"));
                }
                (start, tz)
            });
            let rolling = rolling_field.unwrap_or(calendar.is_none());
            if rolling && calendar.is_some() {
                sink.push(&join(&wp, "calendar"), "a rolling window cannot have a calendar");
            }
            if !rolling && calendar.is_none() {
                sink.push(&join(&wp, "calendar"), "required when isRolling is false");
            }
            if let Some(d) = w.req_str("duration", sink) {
                match parse_shorthand(&d) {
                    Ok((duration, _calendar_unit)) => {
                        time_window = Some(TimeWindow { duration_text: d, duration, rolling, calendar });
                    }
                    Err(e) => sink.push(&join(&wp, "duration"), e),
                }
            }
        }
        Some(list) => sink.push(&tw_path, format!("exactly one time window is required, found {}", list.len())),
        None => sink.push(&tw_path, "property is required but was empty"),
    }
    let budgeting_method = spec.req_str("budgetingMethod", sink).unwrap_or_default();
    if !budgeting_method.is_empty() && !["Occurrences", "Timeslices", "RatioTimeslices"].contains(&budgeting_method.as_str()) {
        sink.push(&join(p, "budgetingMethod"), format!("must be Occurrences, Timeslices or RatioTimeslices, got {budgeting_method:?}"));
    }
    let objs_path = join(p, "objectives");
    let mut objectives = Vec::new();
    match spec.opt_seq("objectives", sink) {
        Some(list) if !list.is_empty() => {
            for (i, o) in list.iter().enumerate() {
                let op_ = index(&objs_path, i);
                if let Some(obj) = parse_objective(Node::at(o, &op_), &budgeting_method, list.len() > 1, sink) {
                    objectives.push(obj);
                }
            }
        }
        _ => sink.push(&objs_path, "at least one objective is required"),
    }
    // indicator presence: on the SLO, or on every objective (composite).
    let composite = !objectives.is_empty() && objectives.iter().all(|o| o.indicator.is_some());
    if indicator.is_none() && !composite && !spec.has("indicator") && !spec.has("indicatorRef") {
        sink.push(&join(p, "indicatorRef"), "required if indicator is not given");
    }
    // op is for threshold SLIs only; forbidden on ratio SLIs.
    if let Some(IndicatorRef::Inline(sli)) = &indicator {
        for (i, o) in objectives.iter().enumerate() {
            let path = join(&index(&objs_path, i), "op");
            match (&sli.metric, &o.op) {
                (SliMetric::Ratio { .. } | SliMetric::Raw { .. }, Some(op)) => {
                    sink.push(&path, format!("property is forbidden on a ratioMetric SLI (value {op:?})"))
                }
                (SliMetric::Threshold { .. }, None) => sink.push(&path, "property is required for a thresholdMetric SLI"),
                _ => {}
            }
        }
    }
    let mut alert_policies = Vec::new();
    if let Some(list) = spec.opt_seq("alertPolicies", sink) {
        let ap = join(p, "alertPolicies");
        for (i, v) in list.iter().enumerate() {
            let path = index(&ap, i);
            let n = Node::at(v, &path);
            match v {
                Value::String(s) => alert_policies.push(PolicyRef::Ref(s.clone())),
                Value::Object(_) if n.has("alertPolicyRef") => {
                    n.deny_unknown(&["alertPolicyRef"], sink);
                    if let Some(r) = n.req_str("alertPolicyRef", sink) {
                        alert_policies.push(PolicyRef::Ref(r));
                    }
                }
                Value::Object(_) => {
                    n.deny_unknown(&["apiVersion", "kind", "metadata", "spec"], sink);
                    if n.opt_str("kind", sink).as_deref() != Some("AlertPolicy") {
                        sink.push(&join(&path, "kind"), "an inline alert policy must have kind AlertPolicy (or use alertPolicyRef)");
                        continue;
                    }
                    let meta = parse_metadata(&n, sink);
                    let sp = join(&path, "spec");
                    if let Some(s) = n.opt_map("spec", sink)
                        && let Some(pol) = parse_policy_spec(meta, Node::at(s, &sp), sink)
                    {
                        alert_policies.push(PolicyRef::Inline(pol));
                    }
                }
                other => sink.push(&path, format!("expected a policy or a reference, found {}", kind(other))),
            }
        }
    }
    Some(SloObject { metadata, description: desc, service, indicator, time_window: time_window?, budgeting_method, objectives, alert_policies })
}

fn parse_objective(o: Node<'_>, budgeting: &str, multiple: bool, sink: &mut Sink) -> Option<SloObjective> {
    let p = o.path();
    o.deny_unknown(
        &["displayName", "op", "value", "target", "targetPercent", "timeSliceTarget", "timeSliceWindow", "indicator", "indicatorRef", "compositeWeight"],
        sink,
    );
    let op = o.opt_str("op", sink);
    if let Some(op) = &op
        && !["lte", "gte", "lt", "gt"].contains(&op.as_str())
    {
        sink.push(&join(p, "op"), format!("must be one of lte, gte, lt, gt, got {op:?}"));
    }
    let objective = match (o.opt_f64("target", sink), o.opt_f64("targetPercent", sink)) {
        (Some(_), Some(_)) => {
            sink.push(&join(p, "targetPercent"), "target and targetPercent are mutually exclusive");
            None
        }
        (Some(t), None) if (0.0..1.0).contains(&t) => Some(Objective::Ratio(t)),
        (Some(t), None) => {
            sink.push(&join(p, "target"), format!("must be in [0.0, 1.0), got {t}"));
            None
        }
        (None, Some(t)) if (0.0..100.0).contains(&t) => Some(Objective::Percent(t)),
        (None, Some(t)) => {
            sink.push(&join(p, "targetPercent"), format!("must be in [0, 100), got {t}"));
            None
        }
        (None, None) => {
            sink.push(&join(p, "target"), "one of target or targetPercent is required");
            None
        }
    };
    let time_slice_target = o.opt_f64("timeSliceTarget", sink);
    if let Some(t) = time_slice_target
        && !(t > 0.0 && t <= 1.0)
    {
        sink.push(&join(p, "timeSliceTarget"), format!("must be in (0.0, 1.0], got {t}"));
    }
    if budgeting == "Timeslices" && time_slice_target.is_none() {
        sink.push(&join(p, "timeSliceTarget"), "required when budgetingMethod is Timeslices");
    }
    let time_slice_window = match o.opt_str("timeSliceWindow", sink) {
        Some(s) => match parse_shorthand(&s) {
            Ok((d, _)) => Some(d),
            Err(e) => {
                sink.push(&join(p, "timeSliceWindow"), e);
                None
            }
        },
        None => None,
    };
    if (budgeting == "Timeslices" || budgeting == "RatioTimeslices") && time_slice_window.is_none() && !o.has("timeSliceWindow") {
        sink.push(&join(p, "timeSliceWindow"), format!("required when budgetingMethod is {budgeting}"));
    }
    let composite_weight = o.opt_f64("compositeWeight", sink);
    if let Some(w) = composite_weight {
        if w <= 0.0 {
            sink.push(&join(p, "compositeWeight"), "must be greater than 0");
        }
        if !multiple {
            sink.push(&join(p, "compositeWeight"), "only supported when declaring multiple objectives");
        }
    }
    let indicator =
        if o.has("indicator") { inline_sli(&o, "indicator", sink).map(IndicatorRef::Inline) } else { o.opt_str("indicatorRef", sink).map(IndicatorRef::Ref) };
    Some(SloObjective {
        display_name: o.opt_str("displayName", sink),
        op,
        value: o.opt_f64("value", sink),
        objective: objective?,
        time_slice_target,
        time_slice_window,
        composite_weight,
        indicator,
    })
}

fn parse_condition_spec(metadata: Metadata, spec: Node<'_>, sink: &mut Sink) -> Option<AlertConditionObject> {
    let p = spec.path();
    spec.deny_unknown(&["description", "severity", "condition"], sink);
    let desc = description(&spec, sink);
    let severity = spec.req_str("severity", sink).unwrap_or_default();
    let cp = join(p, "condition");
    let Some(c) = spec.opt_map("condition", sink) else {
        sink.push(&cp, "property is required but was empty");
        return None;
    };
    let c = Node::at(c, &cp);
    c.deny_unknown(&["kind", "op", "threshold", "lookbackWindow", "alertAfter"], sink);
    let kind_s = c.req_str("kind", sink).unwrap_or_default();
    if !kind_s.is_empty() && kind_s != "burnrate" {
        sink.push(&join(&cp, "kind"), format!("only burnrate is defined, got {kind_s:?}"));
    }
    let op = c.opt_str("op", sink);
    if let Some(op) = &op
        && !["lte", "gte", "lt", "gt"].contains(&op.as_str())
    {
        sink.push(&join(&cp, "op"), format!("must be one of lte, gte, lt, gt, got {op:?}"));
    }
    let threshold = c.opt_f64("threshold", sink);
    if threshold.is_none() && !c.has("threshold") {
        sink.push(&join(&cp, "threshold"), "property is required but was empty");
    }
    let mut dur = |key: &str, required: bool| -> Option<Duration> {
        match c.opt_str(key, sink) {
            Some(s) => match parse_shorthand(&s) {
                Ok((d, false)) => Some(d),
                Ok((_, true)) => {
                    sink.push(&join(&cp, key), "calendar units are not allowed here");
                    None
                }
                Err(e) => {
                    sink.push(&join(&cp, key), e);
                    None
                }
            },
            None => {
                if required {
                    sink.push(&join(&cp, key), "property is required but was empty");
                }
                None
            }
        }
    };
    let lookback = dur("lookbackWindow", true);
    let alert_after = dur("alertAfter", false).unwrap_or(Duration::ZERO);
    Some(AlertConditionObject {
        metadata,
        description: desc,
        severity,
        condition: BurnRateCondition { kind: kind_s, op, threshold: threshold?, lookback_window: lookback?, alert_after },
    })
}

fn parse_policy_spec(metadata: Metadata, spec: Node<'_>, sink: &mut Sink) -> Option<AlertPolicyObject> {
    let p = spec.path();
    spec.deny_unknown(&["description", "alertWhenNoData", "alertWhenResolved", "alertWhenBreaching", "conditions", "notificationTargets"], sink);
    let desc = description(&spec, sink);
    let cp = join(p, "conditions");
    let mut condition = None;
    match spec.opt_seq("conditions", sink) {
        Some(list) if list.len() == 1 => {
            let ip = index(&cp, 0);
            let n = Node::at(&list[0], &ip);
            if n.has("conditionRef") {
                n.deny_unknown(&["conditionRef", "operator"], sink);
                condition = n.req_str("conditionRef", sink).map(ConditionRef::Ref);
            } else if n.has("kind") || n.has("spec") {
                n.deny_unknown(&["kind", "metadata", "spec"], sink);
                if n.opt_str("kind", sink).as_deref() != Some("AlertCondition") {
                    sink.push(&join(&ip, "kind"), "an inline condition must have kind AlertCondition");
                }
                let meta = parse_metadata(&n, sink);
                let sp = join(&ip, "spec");
                match n.opt_map("spec", sink) {
                    Some(s) => condition = parse_condition_spec(meta, Node::at(s, &sp), sink).map(ConditionRef::Inline),
                    None => sink.push(&sp, "property is required but was empty"),
                }
            } else {
                n.deny_unknown(&[], sink);
                sink.push(&join(&ip, "conditionRef"), "required when the alert condition is not inlined");
            }
        }
        Some(list) if list.len() > 1 => sink.push(&cp, format!("exactly one condition is allowed, found {}", list.len())),
        _ => sink.push(&cp, "property is required but was empty"),
    }
    let tp = join(p, "notificationTargets");
    let mut notification_targets = Vec::new();
    match spec.opt_seq("notificationTargets", sink) {
        Some(list) if !list.is_empty() => {
            for (i, v) in list.iter().enumerate() {
                let ip = index(&tp, i);
                let n = Node::at(v, &ip);
                if n.has("targetRef") {
                    n.deny_unknown(&["targetRef"], sink);
                    if let Some(r) = n.req_str("targetRef", sink) {
                        notification_targets.push(TargetRef::Ref(r));
                    }
                } else if n.has("kind") || n.has("spec") {
                    n.deny_unknown(&["kind", "metadata", "spec"], sink);
                    let meta = parse_metadata(&n, sink);
                    let sp = join(&ip, "spec");
                    if let Some(s) = n.opt_map("spec", sink) {
                        let s = Node::at(s, &sp);
                        s.deny_unknown(&["description", "target"], sink);
                        let target = s.req_str("target", sink).unwrap_or_default();
                        notification_targets.push(TargetRef::Inline(NotificationTargetObject { metadata: meta, description: description(&s, sink), target }));
                    }
                } else {
                    n.deny_unknown(&[], sink);
                    sink.push(&join(&ip, "targetRef"), "required when the notification target is not inlined");
                }
            }
        }
        _ => sink.push(&tp, "property is required but was empty"),
    }
    Some(AlertPolicyObject {
        metadata,
        description: desc,
        alert_when_no_data: spec.opt_bool("alertWhenNoData", sink).unwrap_or(false),
        alert_when_resolved: spec.opt_bool("alertWhenResolved", sink).unwrap_or(false),
        alert_when_breaching: spec.opt_bool("alertWhenBreaching", sink).unwrap_or(true),
        condition: condition?,
        notification_targets,
    })
}

fn severity_of(s: &str) -> AlertSeverity {
    match s.to_ascii_lowercase().as_str() {
        "page" | "critical" | "sev1" | "sev-1" | "p1" | "high" | "fast" => AlertSeverity::Page,
        _ => AlertSeverity::Ticket,
    }
}

/// Converts the SLOs among `objects` into engine specs, resolving SLI,
/// policy and condition references within the same file. An SLO without
/// alert policies gets the workbook's budget shares scaled to its window.
/// Each OpenSLO burn-rate condition becomes a single-window pair
/// (short = long = `lookbackWindow`, `for` = `alertAfter`).
pub fn to_slo_specs(objects: &[OpenSloObject], _default_period: Option<Duration>) -> Result<Vec<SloSpec>, SpecErrors> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let find_sli = |name: &str| {
        objects.iter().find_map(|o| match o {
            OpenSloObject::Sli(s) if s.metadata.name == name => Some(s.clone()),
            _ => None,
        })
    };
    let find_policy = |name: &str| {
        objects.iter().find_map(|o| match o {
            OpenSloObject::AlertPolicy(p) if p.metadata.name == name => Some(p.clone()),
            _ => None,
        })
    };
    let find_condition = |name: &str| {
        objects.iter().find_map(|o| match o {
            OpenSloObject::AlertCondition(c) if c.metadata.name == name => Some(c.clone()),
            _ => None,
        })
    };
    for (doc, o) in objects.iter().enumerate() {
        let OpenSloObject::Slo(slo) = o else { continue };
        let mut sink = Sink::new(doc);
        let slo_sli = match &slo.indicator {
            Some(IndicatorRef::Inline(s)) => Some(s.clone()),
            Some(IndicatorRef::Ref(r)) => {
                let s = find_sli(r);
                if s.is_none() {
                    sink.push("spec.indicatorRef", format!("no SLI named {r:?} in this file"));
                }
                s
            }
            None => None,
        };
        // Alerting pairs from policies.
        let mut pairs = Vec::new();
        for (i, pref) in slo.alert_policies.iter().enumerate() {
            let path = format!("spec.alertPolicies[{i}]");
            let policy = match pref {
                PolicyRef::Inline(p) => Some(p.clone()),
                PolicyRef::Ref(r) => find_policy(r),
            };
            let Some(policy) = policy else {
                sink.push(&path, "refers to an alert policy not in this file");
                continue;
            };
            let cond = match &policy.condition {
                ConditionRef::Inline(c) => Some(c.clone()),
                ConditionRef::Ref(r) => find_condition(r),
            };
            let Some(cond) = cond else {
                sink.push(&path, "the policy's condition is not in this file");
                continue;
            };
            if matches!(cond.condition.op.as_deref(), Some("lt" | "lte")) {
                sink.push(
                    &path,
                    format!(
                        "condition {:?} uses op {:?}: a burn-rate alert that fires below its threshold would page while the budget is healthy; use gt or gte",
                        cond.metadata.name,
                        cond.condition.op.as_deref().unwrap_or("")
                    ),
                );
                continue;
            }
            pairs.push(BurnPair {
                name: cond.metadata.name.clone(),
                severity: severity_of(&cond.severity),
                short: cond.condition.lookback_window,
                long: cond.condition.lookback_window,
                factor: cond.condition.threshold,
                budget_percent: None,
                for_: cond.condition.alert_after,
            });
        }
        let period = slo.time_window.duration;
        let windows = if slo.alert_policies.is_empty() { AlertWindows::google(period) } else { AlertWindows { period, pairs } };
        let target = if let Some(f) = slo.metadata.annotations.get("faultline/flow") {
            SloTarget::Flow { flow: f.clone() }
        } else if let Some((a, b)) = slo.metadata.annotations.get("faultline/interaction").and_then(|s| s.split_once("->")) {
            SloTarget::Interaction { caller: a.trim().to_owned(), callee: b.trim().to_owned() }
        } else {
            SloTarget::Service { service: slo.service.clone() }
        };
        for (i, obj) in slo.objectives.iter().enumerate() {
            let sli = match &obj.indicator {
                Some(IndicatorRef::Inline(s)) => Some(s.clone()),
                Some(IndicatorRef::Ref(r)) => find_sli(r),
                None => slo_sli.clone(),
            };
            let Some(sli) = sli else {
                if slo.indicator.is_none() {
                    sink.push(&format!("spec.objectives[{i}].indicatorRef"), "no SLI for this objective");
                }
                continue;
            };
            if let (SliMetric::Ratio { .. } | SliMetric::Raw { .. }, Some(op)) = (&sli.metric, &obj.op) {
                sink.push(&format!("spec.objectives[{i}].op"), format!("property is forbidden on a ratioMetric SLI (value {op:?})"));
                continue;
            }
            let sli = match sli.metric {
                SliMetric::Ratio { good: Some(g), total, .. } => Sli::GoodTotal { good_query: g.query(), total_query: total.query() },
                SliMetric::Ratio { bad: Some(b), total, .. } => Sli::Events { error_query: b.query(), total_query: total.query() },
                SliMetric::Ratio { total, .. } => Sli::Events { error_query: String::new(), total_query: total.query() },
                SliMetric::Raw { raw, success, .. } => Sli::Raw { ratio_query: raw.query(), is_success_ratio: success },
                SliMetric::Threshold { source } => Sli::Threshold { query: source.query(), op: obj.op.clone(), value: obj.value },
            };
            let name = if slo.objectives.len() > 1 {
                format!("{}/{}", slo.metadata.name, obj.display_name.clone().unwrap_or_else(|| i.to_string()))
            } else {
                slo.metadata.name.clone()
            };
            out.push(SloSpec {
                name,
                service: slo.service.clone(),
                description: slo.description.clone(),
                target: target.clone(),
                objective: obj.objective,
                sli,
                windows: windows.clone(),
                alert_name: None,
                labels: slo.metadata.labels.iter().map(|(k, v)| (k.clone(), v.join(","))).collect(),
                format: "openslo/v1".into(),
            });
        }
        errors.extend(sink.errors);
    }
    if !errors.is_empty() {
        return Err(SpecErrors(errors));
    }
    if out.is_empty() {
        return Err(SpecErrors::single(0, "kind", "the file has no SLO object"));
    }
    Ok(out)
}
