//! Sloth spec loading: `version: prometheus/v1` files, the Kubernetes
//! `PrometheusServiceLevel` CRD, and OpenSLO `v1alpha` SLOs the way Sloth
//! reads them — into `SloSpec`s with Sloth's validation rules.
//!
//! Not here: Prometheus rule generation (Faultline evaluates SLOs natively)
//! and SLI plugins (kept by id only).

use serde_json::Value;

use super::node::{Node, Sink, SpecErrors, index, join, parse_yaml_objects};
use super::spec::{Objective, Sli, SloSpec, SloTarget};
use super::windows::{AlertSeverity, AlertWindows};
use crate::time::Duration;

const DAY: i64 = 86_400_000;

/// Sloth's built-in catalogues exist for 30 and 28 days only; any other
/// period needs an explicit catalogue (as `sloth generate` requires).
pub fn sloth_default_windows(period: Duration) -> Result<AlertWindows, String> {
    if period == Duration::from_millis(30 * DAY) || period == Duration::from_millis(28 * DAY) {
        Ok(AlertWindows::google(period))
    } else {
        Err(format!("no default alert windows for a {} period; supply a windows catalogue", super::duration::format_duration(period)))
    }
}

/// Parses a Sloth file (one or more documents) with the given windows.
pub fn parse_sloth_specs(text: &str, windows: &AlertWindows) -> Result<Vec<SloSpec>, SpecErrors> {
    let objects = parse_yaml_objects(text)?;
    if objects.is_empty() {
        return Err(SpecErrors::single(0, "", "no documents found"));
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        match parse_document_with(o, i, windows) {
            Ok(s) => out.extend(s),
            Err(e) => errors.extend(e.0),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(SpecErrors(errors)) }
}

/// One document with the default (workbook-share) windows for `period`.
pub fn parse_document(doc: &Value, document: usize, period: Duration) -> Result<Vec<SloSpec>, SpecErrors> {
    parse_document_with(doc, document, &AlertWindows::google(period))
}

/// Field names differ between the plain spec (snake_case) and the CRD (camelCase).
struct Keys {
    /// The other format's spelling of the same keys (Sloth accepts both).
    alias: Option<&'static Keys>,
    error_query: &'static str,
    total_query: &'static str,
    error_ratio_query: &'static str,
    page_alert: &'static str,
    ticket_alert: &'static str,
    slo_plugins: &'static str,
}

const PLAIN: Keys = Keys {
    alias: Some(&CRD_ONLY),
    error_query: "error_query",
    total_query: "total_query",
    error_ratio_query: "error_ratio_query",
    page_alert: "page_alert",
    ticket_alert: "ticket_alert",
    slo_plugins: "slo_plugins",
};
const PLAIN_ONLY: Keys = Keys {
    alias: None,
    error_query: "error_query",
    total_query: "total_query",
    error_ratio_query: "error_ratio_query",
    page_alert: "page_alert",
    ticket_alert: "ticket_alert",
    slo_plugins: "slo_plugins",
};
const CRD_ONLY: Keys = Keys {
    alias: None,
    error_query: "errorQuery",
    total_query: "totalQuery",
    error_ratio_query: "errorRatioQuery",
    page_alert: "pageAlert",
    ticket_alert: "ticketAlert",
    slo_plugins: "sloPlugins",
};
const CRD: Keys = Keys {
    alias: Some(&PLAIN_ONLY),
    error_query: "errorQuery",
    total_query: "totalQuery",
    error_ratio_query: "errorRatioQuery",
    page_alert: "pageAlert",
    ticket_alert: "ticketAlert",
    slo_plugins: "sloPlugins",
};

impl Keys {
    /// The spelling present in `n` (this format's first, then the alias).
    fn pick(&self, n: &Node<'_>, f: fn(&Keys) -> &'static str) -> &'static str {
        match self.alias {
            Some(a) if !n.has(f(self)) && n.has(f(a)) => f(a),
            _ => f(self),
        }
    }
    /// Both spellings, for the allowed-fields list.
    fn both(&self, f: fn(&Keys) -> &'static str) -> [&'static str; 2] {
        [f(self), self.alias.map_or(f(self), f)]
    }
}

pub fn parse_document_with(doc: &Value, document: usize, windows: &AlertWindows) -> Result<Vec<SloSpec>, SpecErrors> {
    let mut sink = Sink::new(document);
    let root = Node::root(doc);
    if !doc.is_object() {
        return Err(SpecErrors::single(document, "", "expected a mapping"));
    }
    let specs = if root.has("version") {
        root.deny_unknown(&["version", "service", "labels", "slos", "slo_plugins"], &mut sink);
        match root.opt_str("version", &mut sink).as_deref() {
            Some("prometheus/v1") => {}
            other => sink.push("version", format!("unsupported version {:?}, expected prometheus/v1", other.unwrap_or(""))),
        }
        parse_service(root, "sloth/prometheus-v1", &PLAIN, windows, &mut sink)
    } else {
        let api = root.opt_str("apiVersion", &mut sink).unwrap_or_default();
        let kind = root.opt_str("kind", &mut sink).unwrap_or_default();
        match (api.as_str(), kind.as_str()) {
            ("sloth.slok.dev/v1", "PrometheusServiceLevel") => {
                root.deny_unknown(&["apiVersion", "kind", "metadata", "spec"], &mut sink);
                match root.opt_map("spec", &mut sink) {
                    Some(spec) => parse_service(Node::at(spec, "spec"), "sloth/k8s", &CRD, windows, &mut sink),
                    None => {
                        sink.push("spec", "property is required but was empty");
                        Vec::new()
                    }
                }
            }
            ("openslo/v1alpha", "SLO") => parse_openslo_v1alpha(root, windows, &mut sink),
            ("", _) => {
                sink.push("version", "missing: expected `version: prometheus/v1` or an apiVersion");
                Vec::new()
            }
            _ => {
                sink.push("apiVersion", format!("unsupported apiVersion/kind {api:?}/{kind:?} for a Sloth spec"));
                Vec::new()
            }
        }
    };
    if sink.errors.is_empty() { Ok(specs) } else { Err(SpecErrors(sink.errors)) }
}

fn parse_service(n: Node<'_>, format: &str, k: &Keys, windows: &AlertWindows, sink: &mut Sink) -> Vec<SloSpec> {
    let base = n.path();
    if format == "sloth/k8s" {
        let [p1, p2] = k.both(|k| k.slo_plugins);
        n.deny_unknown(&["service", "labels", "slos", p1, p2], sink);
    }
    let service = n.req_str("service", sink).unwrap_or_default();
    let labels = n.opt_string_map("labels", sink);
    let mut out = Vec::new();
    let slos_path = join(base, "slos");
    let Some(slos) = n.opt_seq("slos", sink) else {
        sink.push(&slos_path, "property is required but was empty");
        return out;
    };
    if slos.is_empty() {
        sink.push(&slos_path, "at least one SLO is required");
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, slo) in slos.iter().enumerate() {
        let path = index(&slos_path, i);
        let s = Node::at(slo, &path);
        s.deny_unknown(&["name", "objective", "description", "labels", "sli", "alerting", "plugins"], sink);
        let name = s.req_str("name", sink).unwrap_or_default();
        if !name.is_empty() && !seen.insert(name.clone()) {
            sink.push(&join(&path, "name"), format!("duplicate SLO name {name:?}"));
        }
        let objective = s.opt_f64("objective", sink);
        match objective {
            Some(o) if o > 0.0 && o <= 100.0 => {}
            Some(o) => sink.push(&join(&path, "objective"), format!("must be in (0, 100], got {o}")),
            None if !s.has("objective") => sink.push(&join(&path, "objective"), "property is required but was empty"),
            None => {}
        }
        let description = s.opt_str("description", sink).unwrap_or_default();
        let mut slo_labels = labels.clone();
        slo_labels.extend(s.opt_string_map("labels", sink));
        let sli = parse_sloth_sli(&s, &path, k, sink);
        let (alert_name, page, ticket) = parse_alerting(&s, &path, k, sink);
        let pairs = windows
            .pairs
            .iter()
            .filter(|p| match p.severity {
                AlertSeverity::Page => page,
                AlertSeverity::Ticket => ticket,
            })
            .cloned()
            .collect();
        if let (Some(objective), Some(sli)) = (objective, sli) {
            out.push(SloSpec {
                name,
                service: service.clone(),
                description,
                target: SloTarget::Service { service: service.clone() },
                objective: Objective::Percent(objective),
                sli,
                windows: AlertWindows { period: windows.period, pairs },
                alert_name,
                labels: slo_labels,
                format: format.to_owned(),
            });
        }
    }
    out
}

fn parse_sloth_sli(s: &Node<'_>, path: &str, k: &Keys, sink: &mut Sink) -> Option<Sli> {
    let sli_path = join(path, "sli");
    let Some(sli) = s.opt_map("sli", sink) else {
        sink.push(&sli_path, "property is required but was empty");
        return None;
    };
    let sli = Node::at(sli, &sli_path);
    sli.deny_unknown(&["events", "raw", "plugin"], sink);
    let present: Vec<&str> = ["events", "raw", "plugin"].into_iter().filter(|key| sli.has(key)).collect();
    if present.len() != 1 {
        sink.push(&sli_path, "exactly one of events, raw or plugin is required");
        return None;
    }
    match present[0] {
        "events" => {
            let p = join(&sli_path, "events");
            let e = Node::at(sli.get("events")?, &p);
            let ([e1, e2], [t1, t2]) = (k.both(|k| k.error_query), k.both(|k| k.total_query));
            e.deny_unknown(&[e1, e2, t1, t2], sink);
            let error_query = e.req_str(k.pick(&e, |k| k.error_query), sink)?;
            let total_query = e.req_str(k.pick(&e, |k| k.total_query), sink)?;
            Some(Sli::Events { error_query, total_query })
        }
        "raw" => {
            let p = join(&sli_path, "raw");
            let r = Node::at(sli.get("raw")?, &p);
            r.deny_unknown(&k.both(|k| k.error_ratio_query), sink);
            Some(Sli::Raw { ratio_query: r.req_str(k.pick(&r, |k| k.error_ratio_query), sink)?, is_success_ratio: false })
        }
        _ => {
            let p = join(&sli_path, "plugin");
            let r = Node::at(sli.get("plugin")?, &p);
            r.deny_unknown(&["id", "options"], sink);
            Some(Sli::Plugin { id: r.req_str("id", sink)? })
        }
    }
}

/// Returns (alert name, page enabled, ticket enabled).
fn parse_alerting(s: &Node<'_>, path: &str, k: &Keys, sink: &mut Sink) -> (Option<String>, bool, bool) {
    let apath = join(path, "alerting");
    let Some(a) = s.opt_map("alerting", sink) else { return (None, true, true) };
    let a = Node::at(a, &apath);
    let ([p1, p2], [t1, t2]) = (k.both(|k| k.page_alert), k.both(|k| k.ticket_alert));
    a.deny_unknown(&["name", "labels", "annotations", p1, p2, t1, t2], sink);
    let name = a.opt_str("name", sink);
    let _ = a.opt_string_map("labels", sink);
    let _ = a.opt_string_map("annotations", sink);
    let mut enabled = |key: &str| -> bool {
        let p = join(&apath, key);
        match a.opt_map(key, sink) {
            Some(v) => {
                let n = Node::at(v, &p);
                n.deny_unknown(&["disable", "labels", "annotations"], sink);
                let _ = n.opt_string_map("labels", sink);
                let _ = n.opt_string_map("annotations", sink);
                !n.opt_bool("disable", sink).unwrap_or(false)
            }
            None => true,
        }
    };
    let page = enabled(k.pick(&a, |k| k.page_alert));
    let ticket = enabled(k.pick(&a, |k| k.ticket_alert));
    if (page || ticket) && name.as_deref().is_none_or(str::is_empty) {
        sink.push(&join(&apath, "name"), "required when page or ticket alerts are enabled");
    }
    (name, page, ticket)
}

/// OpenSLO v1alpha SLOs as Sloth reads them: one `ratioMetrics` objective,
/// one day-based time window equal to the SLO period, and no alerts (Sloth
/// generates none for this input).
fn parse_openslo_v1alpha(root: Node<'_>, windows: &AlertWindows, sink: &mut Sink) -> Vec<SloSpec> {
    root.deny_unknown(&["apiVersion", "kind", "metadata", "spec"], sink);
    let name = root.opt_map("metadata", sink).map(|m| Node::at(m, "metadata")).and_then(|m| m.req_str("name", sink)).unwrap_or_default();
    let Some(spec) = root.opt_map("spec", sink) else {
        sink.push("spec", "property is required but was empty");
        return Vec::new();
    };
    let spec = Node::at(spec, "spec");
    let service = spec.req_str("service", sink).unwrap_or_default();
    let description = spec.opt_str("description", sink).unwrap_or_default();
    match spec.opt_seq("timeWindows", sink) {
        Some(tw) if tw.len() == 1 => {
            let t = Node::at(&tw[0], "spec.timeWindows[0]");
            if t.opt_str("unit", sink).as_deref() != Some("Day") {
                sink.push("spec.timeWindows[0].unit", "only Day is supported");
            }
            match t.opt_f64("count", sink) {
                Some(c) if Duration::from_millis((c * DAY as f64) as i64) == windows.period => {}
                Some(c) => sink
                    .push("spec.timeWindows[0].count", format!("{c} days does not match the SLO period {}", super::duration::format_duration(windows.period))),
                None => sink.push("spec.timeWindows[0].count", "property is required but was empty"),
            }
        }
        _ => sink.push("spec.timeWindows", "exactly one time window is required"),
    }
    let mut out = Vec::new();
    let Some(objs) = spec.opt_seq("objectives", sink) else {
        sink.push("spec.objectives", "property is required but was empty");
        return out;
    };
    for (i, o) in objs.iter().enumerate() {
        let path = format!("spec.objectives[{i}]");
        let o = Node::at(o, &path);
        let target = o.opt_f64("target", sink);
        let rm_path = join(&path, "ratioMetrics");
        let query = |key: &str, sink: &mut Sink| -> Option<String> {
            let rm = o.get("ratioMetrics")?;
            let p = join(&rm_path, key);
            let q = Node::at(rm.get(key)?, &p);
            q.req_str("query", sink)
        };
        let good = query("good", sink);
        let total = query("total", sink);
        match (target, good, total) {
            (Some(t), Some(good_query), Some(total_query)) if t > 0.0 && t < 1.0 => out.push(SloSpec {
                name: name.clone(),
                service: service.clone(),
                description: description.clone(),
                target: SloTarget::Service { service: service.clone() },
                objective: Objective::Percent(t * 100.0),
                sli: Sli::GoodTotal { good_query, total_query },
                windows: AlertWindows { period: windows.period, pairs: Vec::new() },
                alert_name: None,
                labels: Default::default(),
                format: "openslo/v1alpha".into(),
            }),
            (Some(_), Some(_), Some(_)) => sink.push(&join(&path, "target"), "must be in (0, 1)"),
            _ => sink.push(&rm_path, "ratioMetrics with good.query, total.query and a target are required"),
        }
    }
    out
}
