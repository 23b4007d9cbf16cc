//! The one integration-test binary of `faultline-eval`: runs the diagnosis
//! over the shared development splits in `../shared/data/rca` and checks that
//! accuracy does not regress below what was measured (minus a small margin),
//! plus the table and JSON renderers. When the shared folder is missing the
//! tests skip, except under `CI=true`, where they fail.

mod detect_scenarios;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use faultline_eval::{DatasetReport, Layout, rca_eval, render_json, render_table};

fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/rca"));
    if dir.is_dir() {
        return Some(dir.to_path_buf());
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "shared data missing under CI: {}", dir.display());
    println!("skipped: ../shared not found");
    None
}

/// All three datasets, evaluated once for the whole binary (debug builds
/// take tens of seconds).
fn all() -> Option<&'static Vec<DatasetReport>> {
    static REPORTS: OnceLock<Vec<DatasetReport>> = OnceLock::new();
    let dir = data_dir()?;
    Some(REPORTS.get_or_init(|| rca_eval(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))))
}

fn eval(name: &str) -> Option<DatasetReport> {
    let r = all()?.iter().find(|r| r.dataset == name).cloned();
    assert!(r.is_some(), "dataset {name} not evaluated");
    r
}

/// Measured on the dev splits with the default parameters (see
/// docs/benchmarks.md); thresholds sit one case below, so a regression fails.
#[test]
fn sock_shop_avg5_without_the_fault_start() {
    let Some(r) = eval("rcd-sockshop") else { return };
    assert_eq!(r.layout, Layout::RcdSockShop);
    assert_eq!(r.cases, 25);
    assert_eq!(r.errors, 0, "{:?}", r.per_case);
    assert!(r.avg5 >= 0.99, "Avg@5 {} (measured 1.00)\n{}", r.avg5, render_table(std::slice::from_ref(&r)));
    assert!(r.ac1 >= 0.95, "AC@1 {} (measured 1.00)", r.ac1);
    // The change point was found, not given: it lands near the true start.
    let near = r.per_case.iter().filter(|c| c.change_point_error_s.is_some_and(|e| e.abs() <= 120.0)).count();
    assert!(near >= 18, "only {near} of 25 change points within 120 s");
}

#[test]
fn online_boutique_metrics_only() {
    let Some(r) = eval("nezha-onlineboutique") else { return };
    assert_eq!(r.layout, Layout::Nezha);
    assert_eq!(r.cases, 28);
    assert_eq!(r.errors, 0, "{:?}", r.per_case);
    // Measured: AC@1 0.714, AC@3 0.786, Avg@5 0.779.
    assert!(r.ac1 >= 0.67, "AC@1 {}\n{}", r.ac1, render_table(std::slice::from_ref(&r)));
    assert!(r.ac3 >= 0.75, "AC@3 {}", r.ac3);
    assert!(r.avg5 >= 0.75, "Avg@5 {}", r.avg5);
    assert!(r.published.iter().any(|p| p.method == "MicroRCA"));
}

#[test]
fn train_ticket_metrics_traces_logs() {
    let Some(r) = eval("nezha-trainticket") else { return };
    assert_eq!(r.cases, 23);
    assert_eq!(r.errors, 0, "{:?}", r.per_case);
    // Measured: AC@1 0.913 (21/23), AC@3 0.957 (22/23), AC@5 0.957 (22/23),
    // Avg@5 0.948 (Nezha: 0.8667 AC@1); see docs/benchmarks.md. Thresholds one case below.
    assert!(r.ac1 >= 0.86, "AC@1 {}\n{}", r.ac1, render_table(std::slice::from_ref(&r)));
    assert!(r.ac3 >= 0.91, "AC@3 {}", r.ac3);
    assert!(r.ac[4] >= 0.91, "AC@5 {}", r.ac[4]);
    assert!(r.avg5 >= 0.90, "Avg@5 {}", r.avg5);
    // Network delays are found from span network time (7 of 7 at rank 1),
    // CPU contention from CPU or the starved service's slowed calls (4 of 4).
    let first = |ty: &str| r.per_case.iter().filter(|c| c.fault_type == ty && c.rank == Some(1)).count();
    assert!(first("network_delay") >= 6, "{} network delays at rank 1", first("network_delay"));
    assert!(first("cpu_contention") >= 3, "{} CPU contentions at rank 1", first("cpu_contention"));
    // Code faults (return, exception): the faulty service's blamed code path
    // is at rank 1 in 10 of 12, in the top 3 in 11.
    let code_top3 = r.per_case.iter().filter(|c| (c.fault_type == "return" || c.fault_type == "exception") && c.rank.is_some_and(|k| k <= 3)).count();
    assert!(code_top3 >= 10, "{code_top3} code faults in the top 3");
    // Nezha's published per-case ranks are scored on exactly these cases.
    let nezha = r.published.iter().find(|p| p.method.contains("per-case")).expect("reference ranks");
    assert!(nezha.ac1.is_some_and(|a| (a - 20.0 / 23.0).abs() < 1e-9), "{nezha:?}");
}

#[test]
fn whole_folder_evaluates_every_dataset_and_renders() {
    let Some(reports) = all() else { return };
    let names: Vec<&str> = reports.iter().map(|r| r.dataset.as_str()).collect();
    assert_eq!(names, ["nezha-onlineboutique", "nezha-trainticket", "rcd-sockshop"]);
    let table = render_table(reports);
    assert!(table.contains("AC@1") && table.contains("BARO [told fault start]"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&render_json(reports)).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(3));
    assert!(json[2]["avg5"].as_f64().is_some());
}

#[test]
fn a_folder_without_datasets_is_a_typed_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert!(matches!(rca_eval(&dir), Err(faultline_eval::EvalError::NoDataset(_))));
    assert!(rca_eval(Path::new("/nonexistent/faultline")).is_err());
}
