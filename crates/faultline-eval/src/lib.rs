//! Offline evaluation of Faultline's diagnosis on public root-cause-analysis
//! datasets laid out like `shared/data/rca/<dataset>/` (a `labels.csv` and a
//! `cases/<case_id>/` folder per case; see each dataset's README).
//!
//! [`rca_eval`] loads every case (see [`load`]), runs
//! `faultline_core::diagnose::diagnose` with its default parameters — the same
//! for every dataset and case, never told the fault start — and scores the
//! ranking at service level: AC@k is the share of cases whose labelled
//! root-cause service is among the top k, Avg@5 the mean of AC@1..AC@5. The
//! published numbers of other methods are attached for comparison.
//!
//! What it is not: part of the server. It reads files, so it cannot live in
//! the sans-IO core; it has no CLI of its own (the `faultline` binary wires
//! `faultline rca eval <dir> [--json]` to [`rca_eval`], [`render_table`] and
//! [`render_json`]).

pub mod code_path;
pub mod load;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use faultline_core::diagnose::{DiagnosisConfig, diagnose};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{0}: no dataset found (expected labels.csv and cases/, or sub-folders holding them)")]
    NoDataset(PathBuf),
}

impl EvalError {
    fn io(path: &Path, source: std::io::Error) -> EvalError {
        EvalError::Io { path: path.to_owned(), source }
    }
    fn csv(path: &Path, source: csv::Error) -> EvalError {
        EvalError::Csv { path: path.to_owned(), source }
    }
}

/// The case layouts the loaders understand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// RCD Sock Shop: `normal.csv` + `anomalous.csv`.
    RcdSockShop,
    /// Nezha: `metrics/pods.csv.gz` (+ optional traces, logs, edges).
    Nezha,
}

/// A published result to compare with. Values are fractions in [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Published {
    pub method: String,
    pub data_used: String,
    pub ac1: Option<f64>,
    pub ac3: Option<f64>,
    pub ac5: Option<f64>,
    pub avg5: Option<f64>,
    /// Which cases and conditions, e.g. "full 45 cases".
    pub note: String,
}

/// One case's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseResult {
    pub case_id: String,
    pub truth: String,
    pub fault_type: String,
    /// 1-based rank of the true service; `None` when not ranked (or on error).
    pub rank: Option<usize>,
    /// The first five ranked services.
    pub top: Vec<String>,
    /// Detected change point minus the labelled inject time, in seconds
    /// (computed after diagnosis, for the report only).
    pub change_point_error_s: Option<f64>,
    /// The strongest evidence of the first three candidates.
    pub evidence: Vec<String>,
    pub error: Option<String>,
}

/// Accuracy on one dataset folder.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DatasetReport {
    pub dataset: String,
    pub layout: Layout,
    pub cases: usize,
    /// Cases that could not be loaded or diagnosed (scored as misses).
    pub errors: usize,
    /// AC@1..AC@5.
    pub ac: [f64; 5],
    pub ac1: f64,
    pub ac3: f64,
    pub avg5: f64,
    /// Median |change point error| in seconds over the cases that have one.
    pub median_abs_change_point_error_s: Option<f64>,
    pub published: Vec<Published>,
    pub per_case: Vec<CaseResult>,
}

fn is_dataset(dir: &Path) -> bool {
    dir.join("labels.csv").is_file() && dir.join("cases").is_dir()
}

/// Evaluates `dir`: a dataset folder, or a folder whose sub-folders are
/// datasets (evaluated in name order).
pub fn rca_eval(dir: &Path) -> Result<Vec<DatasetReport>, EvalError> {
    rca_eval_with(dir, &DiagnosisConfig::default())
}

/// [`rca_eval`] with other diagnosis parameters (for studying the method's
/// sensitivity; the published figures use the defaults).
pub fn rca_eval_with(dir: &Path, cfg: &DiagnosisConfig) -> Result<Vec<DatasetReport>, EvalError> {
    if is_dataset(dir) {
        return Ok(vec![eval_dataset(dir, cfg)?]);
    }
    let rd = std::fs::read_dir(dir).map_err(|e| EvalError::io(dir, e))?;
    let mut subs: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_dataset(p)).collect();
    subs.sort();
    if subs.is_empty() {
        return Err(EvalError::NoDataset(dir.to_owned()));
    }
    subs.iter().map(|d| eval_dataset(d, cfg)).collect()
}

struct Label {
    case_id: String,
    service: String,
    fault_type: String,
}

fn read_labels(dir: &Path) -> Result<Vec<Label>, EvalError> {
    let path = dir.join("labels.csv");
    let mut r = csv::Reader::from_path(&path).map_err(|e| EvalError::csv(&path, e))?;
    let cols: Vec<String> = r.headers().map_err(|e| EvalError::csv(&path, e))?.iter().map(str::to_owned).collect();
    let col = |n: &str| cols.iter().position(|c| c == n);
    let (Some(id), Some(svc)) = (col("case_id"), col("root_cause_service")) else {
        return Err(EvalError::Format { path, reason: "labels.csv needs case_id and root_cause_service".into() });
    };
    let ft = col("fault_type");
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| EvalError::csv(&path, e))?;
        out.push(Label {
            case_id: rec.get(id).unwrap_or("").to_owned(),
            service: rec.get(svc).unwrap_or("").to_owned(),
            fault_type: ft.and_then(|i| rec.get(i)).unwrap_or("").to_owned(),
        });
    }
    out.sort_by(|a, b| a.case_id.cmp(&b.case_id));
    Ok(out)
}

fn layout_of(case: &Path) -> Option<Layout> {
    if case.join("normal.csv").is_file() && case.join("anomalous.csv").is_file() {
        Some(Layout::RcdSockShop)
    } else if case.join("metrics").join("pods.csv.gz").is_file() {
        Some(Layout::Nezha)
    } else {
        None
    }
}

/// The service a ranked service counts as under the dataset's published
/// protocol: RCAEval maps Sock Shop's `<svc>-db` containers to `<svc>`.
fn scored_service(layout: Layout, s: &str) -> String {
    match layout {
        Layout::RcdSockShop => s.strip_suffix("-db").unwrap_or(s).to_owned(),
        Layout::Nezha => s.to_owned(),
    }
}

type Ranked = (Vec<String>, Option<i64>, Vec<String>);

fn diagnose_case(dataset: &Path, case: &Path, layout: Layout, cfg: &DiagnosisConfig) -> Result<Ranked, String> {
    let input = match layout {
        Layout::RcdSockShop => load::rcd_case(case),
        Layout::Nezha => load::nezha_case(dataset, case),
    }
    .map_err(|e| e.to_string())?;
    let d = diagnose(&input, cfg).map_err(|e| e.to_string())?;
    let mut ranked: Vec<String> = Vec::new();
    for s in &d.scores {
        let name = scored_service(layout, s.service.as_str());
        if !ranked.contains(&name) {
            ranked.push(name);
        }
    }
    let evidence = d.origins.iter().take(3).filter_map(|o| o.reasons.first().map(|r| format!("{}: {r}", o.subject))).collect();
    Ok((ranked, d.change_point.map(|t| t.as_millis()), evidence))
}

fn eval_dataset(dir: &Path, cfg: &DiagnosisConfig) -> Result<DatasetReport, EvalError> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("dataset").to_owned();
    let labels = read_labels(dir)?;
    let mut per_case = Vec::new();
    let mut layout = None;
    for l in &labels {
        let case = dir.join("cases").join(&l.case_id);
        let Some(lay) = layout_of(&case) else {
            per_case.push(CaseResult {
                case_id: l.case_id.clone(),
                truth: l.service.clone(),
                fault_type: l.fault_type.clone(),
                rank: None,
                top: vec![],
                change_point_error_s: None,
                evidence: vec![],
                error: Some(format!("{}: unknown case layout", case.display())),
            });
            continue;
        };
        layout.get_or_insert(lay);
        let result = diagnose_case(dir, &case, lay, cfg);
        let inject = std::fs::read_to_string(case.join("inject_time.txt")).ok().and_then(|s| s.trim().parse::<f64>().ok());
        per_case.push(match result {
            Ok((ranked, cp, evidence)) => CaseResult {
                case_id: l.case_id.clone(),
                truth: l.service.clone(),
                fault_type: l.fault_type.clone(),
                rank: ranked.iter().position(|s| *s == l.service).map(|i| i + 1),
                top: ranked.into_iter().take(5).collect(),
                change_point_error_s: cp.zip(inject).map(|(c, i)| c as f64 / 1000.0 - i),
                evidence,
                error: None,
            },
            Err(e) => CaseResult {
                case_id: l.case_id.clone(),
                truth: l.service.clone(),
                fault_type: l.fault_type.clone(),
                rank: None,
                top: vec![],
                change_point_error_s: None,
                evidence: vec![],
                error: Some(e),
            },
        });
    }
    let n = per_case.len();
    let mut ac = [0.0; 5];
    for (k, a) in ac.iter_mut().enumerate() {
        let hits = per_case.iter().filter(|c| c.rank.is_some_and(|r| r <= k + 1)).count();
        *a = if n == 0 { 0.0 } else { hits as f64 / n as f64 };
    }
    let mut errs: Vec<f64> = per_case.iter().filter_map(|c| c.change_point_error_s.map(f64::abs)).collect();
    errs.sort_by(f64::total_cmp);
    let layout = layout.unwrap_or(Layout::Nezha);
    let mut published = published_for(&name, layout);
    if let Some(p) = nezha_reference(dir, &per_case)? {
        published.push(p);
    }
    Ok(DatasetReport {
        dataset: name,
        layout,
        cases: n,
        errors: per_case.iter().filter(|c| c.error.is_some()).count(),
        ac,
        ac1: ac[0],
        ac3: ac[2],
        avg5: ac.iter().sum::<f64>() / 5.0,
        median_abs_change_point_error_s: if errs.is_empty() { None } else { Some(errs[errs.len() / 2]) },
        published,
        per_case,
    })
}

fn p(method: &str, data: &str, ac1: Option<f64>, ac3: Option<f64>, ac5: Option<f64>, avg5: Option<f64>, note: &str) -> Published {
    Published { method: method.into(), data_used: data.into(), ac1, ac3, ac5, avg5, note: note.into() }
}

/// Published results on the same data (full upstream sets), from the papers
/// cited in the dataset READMEs.
fn published_for(name: &str, layout: Layout) -> Vec<Published> {
    let n = name.to_ascii_lowercase();
    if layout == Layout::RcdSockShop || n.contains("sockshop") {
        let note = "RCAEval ASE'24 Table 5, all 50 cases, mean of CPU and MEM columns";
        return vec![
            p("BARO [told fault start]", "metrics", None, None, None, Some(0.99), note),
            p("NSigma [told fault start]", "metrics", None, None, None, Some(0.985), note),
            p("BARO [start + 60 s]", "metrics", None, None, None, Some(0.98), note),
            p("CausalRCA", "metrics", None, None, None, Some(0.84), note),
        ];
    }
    if n.contains("trainticket") {
        let note = "Nezha FSE'23 Table 3, all 45 cases";
        return vec![
            p("Nezha", "metrics+traces+logs", Some(0.8667), Some(0.9778), Some(0.9778), None, note),
            p("MicroRCA", "metrics", Some(0.20), Some(0.3111), Some(0.4444), None, note),
            p("MicroScope", "metrics", Some(0.1778), Some(0.2667), Some(0.3556), None, note),
        ];
    }
    if n.contains("onlineboutique") {
        let note = "Nezha FSE'23 Table 3, all 56 cases";
        return vec![
            p("Nezha", "metrics+traces+logs", Some(0.9286), Some(0.9643), Some(0.9643), None, note),
            p("MicroRCA", "metrics", Some(0.1607), Some(0.625), Some(0.9275), None, note),
            p("MicroScope", "metrics", Some(0.125), Some(0.4107), Some(0.5535), None, note),
        ];
    }
    Vec::new()
}

/// Nezha's published per-case ranks (`reference_nezha_fse23_per_case.csv`),
/// scored on exactly the cases evaluated here.
fn nezha_reference(dir: &Path, cases: &[CaseResult]) -> Result<Option<Published>, EvalError> {
    let path = dir.join("reference_nezha_fse23_per_case.csv");
    if !path.is_file() {
        return Ok(None);
    }
    let mut r = csv::Reader::from_path(&path).map_err(|e| EvalError::csv(&path, e))?;
    let mut ranks: BTreeMap<String, Option<f64>> = BTreeMap::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| EvalError::csv(&path, e))?;
        if let Some(id) = rec.get(0) {
            ranks.insert(id.to_owned(), rec.get(2).and_then(|s| s.trim().parse::<f64>().ok()));
        }
    }
    let known: Vec<Option<f64>> = cases.iter().filter_map(|c| ranks.get(&c.case_id).copied()).collect();
    if known.is_empty() {
        return Ok(None);
    }
    let n = known.len() as f64;
    let at = |k: f64| known.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / n;
    let avg5 = (1..=5).map(|k| at(k as f64)).sum::<f64>() / 5.0;
    Ok(Some(p(
        "Nezha (published per-case ranks)",
        "metrics+traces+logs",
        Some(at(1.0)),
        Some(at(3.0)),
        Some(at(5.0)),
        Some(avg5),
        &format!("the {} evaluated cases that the authors' run log covers", known.len()),
    )))
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".to_owned(), |v| format!("{:.2}%", v * 100.0))
}

/// A plain-text table: our figures per dataset, then the published ones.
pub fn render_table(reports: &[DatasetReport]) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!("{} ({} cases{})\n", r.dataset, r.cases, if r.errors > 0 { format!(", {} errors", r.errors) } else { String::new() }));
        out.push_str(&format!("  {:<38} {:<20} {:>8} {:>8} {:>8} {:>7}\n", "method", "data", "AC@1", "AC@3", "AC@5", "Avg@5"));
        out.push_str(&format!(
            "  {:<38} {:<20} {:>8} {:>8} {:>8} {:>7.3}\n",
            "Faultline diagnose (these cases)",
            "same as loaded",
            pct(Some(r.ac1)),
            pct(Some(r.ac3)),
            pct(Some(r.ac[4])),
            r.avg5
        ));
        for p in &r.published {
            out.push_str(&format!(
                "  {:<38} {:<20} {:>8} {:>8} {:>8} {:>7}\n",
                p.method,
                p.data_used,
                pct(p.ac1),
                pct(p.ac3),
                pct(p.ac5),
                p.avg5.map_or("-".to_owned(), |v| format!("{v:.3}"))
            ));
        }
        if let Some(e) = r.median_abs_change_point_error_s {
            out.push_str(&format!("  change point found without the fault start: median |error| {e:.0} s\n"));
        }
        let misses: Vec<String> = r
            .per_case
            .iter()
            .filter(|c| c.rank != Some(1))
            .map(|c| format!("{} ({}, {}): rank {}", c.case_id, c.truth, c.fault_type, c.rank.map_or("-".to_owned(), |r| r.to_string())))
            .collect();
        if !misses.is_empty() {
            out.push_str(&format!("  not at rank 1: {}\n", misses.join("; ")));
        }
        out.push('\n');
    }
    out
}

/// The reports as pretty JSON.
pub fn render_json(reports: &[DatasetReport]) -> String {
    // Invariant: the reports hold only strings, numbers and options, which
    // always serialize.
    serde_json::to_string_pretty(reports).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
