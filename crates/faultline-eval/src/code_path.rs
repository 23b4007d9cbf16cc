//! Code-path change per service from spans and logs joined by trace, judged
//! against a fault-free reference recording and attributed down the trace.
//!
//! For every (trace, service) the service's *code path* is the set of events
//! it produced in that trace: the operation names of its spans and the
//! templates of its log lines (level plus logger location, see
//! [`crate::load::log_template`]), keyed by its entry operation (its first
//! span). Under the reference, each event has a probability of being present
//! on that entry operation's path (add-½ smoothing); a path is *changed* when
//! the least likely presence or absence among its events and the reference's
//! events is at least [`CHANGED_PATH_NATS`] surprising — a log line never
//! seen on that path (`ERROR …#37`), or one that was always there and is now
//! missing (`RouteController#53` after the exception).
//!
//! A caller whose call failed changes its own path too (it logs the error it
//! received). So within each trace a changed path is *blamed* only on the
//! services that have no changed service below them in that trace's call tree
//! (the deepest changes), and the series reports, per service and bin, its
//! blamed traces out of its traces (a `SeriesKind::Proportion`, which the
//! diagnosis judges over the whole post-change window by a binomial tail).
//!
//! What it is not: a parser of log messages beyond their template, or a
//! model of timing (latency is in the span series); it never reads labels.

use std::collections::{BTreeMap, BTreeSet};

/// A path whose least likely event presence or absence is at least this
/// surprising (nats) under the reference is changed: e^-2.5 ≈ 8 %, i.e. an
/// event seen on none of 6 or more reference paths of that entry operation
/// (or missing from a path where it was always seen).
pub const CHANGED_PATH_NATS: f64 = 2.5;

/// One event of a service within a trace.
#[derive(Clone, Debug)]
pub struct PathEvent {
    pub trace: String,
    pub service: String,
    /// Unix ns.
    pub at: i64,
    /// `S:<operation>` for a span, `L:<template>` for a log line.
    pub event: String,
    /// Spans only: the span id and its parent's.
    pub span: Option<(String, String)>,
}

/// The paths of one recording, grouped.
#[derive(Default)]
pub struct Paths {
    /// (trace, service) → (first event time in ns, entry operation, events).
    paths: BTreeMap<(String, String), (i64, String, BTreeSet<String>)>,
    /// trace → caller → callees (services, from span parentage).
    calls: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl Paths {
    pub fn build(events: &[PathEvent]) -> Paths {
        let mut grouped: BTreeMap<(String, String), Vec<(i64, &str)>> = BTreeMap::new();
        let mut span_owner: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
        for e in events {
            grouped.entry((e.trace.clone(), e.service.clone())).or_default().push((e.at, &e.event));
            if let Some((id, _)) = &e.span {
                span_owner.insert(id, (&e.trace, &e.service));
            }
        }
        let mut calls: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for e in events {
            let Some((_, parent)) = &e.span else { continue };
            let Some((trace, caller)) = span_owner.get(parent.as_str()) else { continue };
            if *caller != e.service && *trace == e.trace {
                calls.entry(e.trace.clone()).or_default().entry((*caller).to_owned()).or_default().insert(e.service.clone());
            }
        }
        let paths = grouped
            .into_iter()
            .map(|(k, mut v)| {
                v.sort();
                let first = v.first().map_or(0, |e| e.0);
                let entry = v.iter().find(|e| e.1.starts_with("S:")).map_or("none", |e| e.1).to_owned();
                let set = v.iter().map(|e| e.1.to_owned()).collect();
                (k, (first, entry, set))
            })
            .collect();
        Paths { paths, calls }
    }
}

/// Presence counts of the reference: (service, entry) → (paths, event → paths holding it).
#[derive(Default)]
pub struct PathModel {
    by_entry: BTreeMap<(String, String), (f64, BTreeMap<String, f64>)>,
}

impl PathModel {
    pub fn fit(reference: &Paths) -> PathModel {
        let mut by_entry: BTreeMap<(String, String), (f64, BTreeMap<String, f64>)> = BTreeMap::new();
        for ((_, svc), (_, entry, events)) in &reference.paths {
            let e = by_entry.entry((svc.clone(), entry.clone())).or_default();
            e.0 += 1.0;
            for ev in events {
                *e.1.entry(ev.clone()).or_default() += 1.0;
            }
        }
        PathModel { by_entry }
    }

    /// The largest surprisal (nats) of an event's presence or absence on
    /// this path; `None` when the reference never saw the entry operation.
    pub fn surprisal(&self, service: &str, entry: &str, events: &BTreeSet<String>) -> Option<f64> {
        let (n, seen) = self.by_entry.get(&(service.to_owned(), entry.to_owned()))?;
        let mut worst: f64 = 0.0;
        for ev in events.iter().chain(seen.keys()) {
            let c = seen.get(ev).copied().unwrap_or(0.0);
            let p = if events.contains(ev) { (c + 0.5) / (n + 1.0) } else { (n - c + 0.5) / (n + 1.0) };
            worst = worst.max(-p.ln());
        }
        Some(worst)
    }
}

/// Per service: (first event time in ns, blamed?) of each of its paths in
/// `paths`, judged under `model`.
pub fn blamed_paths(paths: &Paths, model: &PathModel) -> BTreeMap<String, Vec<(i64, bool)>> {
    let mut changed: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for ((trace, svc), (_, entry, events)) in &paths.paths {
        if model.surprisal(svc, entry, events).is_some_and(|x| x >= CHANGED_PATH_NATS) {
            changed.entry(trace).or_default().insert(svc);
        }
    }
    let mut out: BTreeMap<String, Vec<(i64, bool)>> = BTreeMap::new();
    for ((trace, svc), (first, _, _)) in &paths.paths {
        let blamed = changed.get(trace.as_str()).is_some_and(|ch| ch.contains(svc.as_str()) && !has_changed_below(paths, trace, svc, ch));
        out.entry(svc.clone()).or_default().push((*first, blamed));
    }
    out
}

/// Whether any service called (transitively) by `svc` in `trace` changed its path.
fn has_changed_below(paths: &Paths, trace: &str, svc: &str, changed: &BTreeSet<&str>) -> bool {
    let Some(calls) = paths.calls.get(trace) else { return false };
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = calls.get(svc).map(|c| c.iter().map(String::as_str).collect()).unwrap_or_default();
    while let Some(d) = stack.pop() {
        if d == svc || !seen.insert(d) {
            continue;
        }
        if changed.contains(d) {
            return true;
        }
        if let Some(next) = calls.get(d) {
            stack.extend(next.iter().map(String::as_str));
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: &str, svc: &str, at: i64, op: &str, id: &str, parent: &str) -> PathEvent {
        PathEvent { trace: trace.into(), service: svc.into(), at, event: format!("S:{op}"), span: Some((id.into(), parent.into())) }
    }
    fn log(trace: &str, svc: &str, at: i64, t: &str) -> PathEvent {
        PathEvent { trace: trace.into(), service: svc.into(), at, event: format!("L:{t}"), span: None }
    }
    /// gateway → orders → db-svc, each logging one line.
    fn trace(id: &str, orders_log: &str, gateway_log: &str) -> Vec<PathEvent> {
        vec![
            span(id, "gateway", 0, "GET /", &format!("{id}a"), "root"),
            log(id, "gateway", 1, gateway_log),
            span(id, "orders", 2, "list", &format!("{id}b"), &format!("{id}a")),
            log(id, "orders", 3, orders_log),
            span(id, "stock", 4, "get", &format!("{id}c"), &format!("{id}b")),
            log(id, "stock", 5, "INFO s#1"),
        ]
    }

    #[test]
    fn a_changed_path_is_blamed_on_the_deepest_changed_service_only() {
        let reference: Vec<PathEvent> = (0..20).flat_map(|i| trace(&format!("r{i}"), "INFO o#10", "INFO g#5")).collect();
        let model = PathModel::fit(&Paths::build(&reference));
        // Orders now logs an error instead of its usual line; the gateway logs
        // the failure it received. Stock is unchanged.
        let fault: Vec<PathEvent> = (0..10).flat_map(|i| trace(&format!("f{i}"), "ERROR o#37", "ERROR g#9")).collect();
        let blamed = blamed_paths(&Paths::build(&fault), &model);
        let share = |s: &str| blamed[s].iter().filter(|p| p.1).count();
        assert_eq!(share("orders"), 10);
        assert_eq!(share("gateway"), 0, "explained by orders below it");
        assert_eq!(share("stock"), 0);
        // The reference itself is unchanged.
        let same = blamed_paths(&Paths::build(&reference), &model);
        assert!(same.values().flatten().all(|p| !p.1));
    }

    #[test]
    fn a_missing_line_that_was_always_there_changes_the_path() {
        let reference: Vec<PathEvent> = (0..20).flat_map(|i| trace(&format!("r{i}"), "INFO o#10", "INFO g#5")).collect();
        let model = PathModel::fit(&Paths::build(&reference));
        let mut fault = trace("f", "INFO o#10", "INFO g#5");
        fault.retain(|e| e.event != "L:INFO s#1");
        let blamed = blamed_paths(&Paths::build(&fault), &model);
        assert!(blamed["stock"][0].1);
        assert!(!blamed["orders"][0].1);
    }
}
