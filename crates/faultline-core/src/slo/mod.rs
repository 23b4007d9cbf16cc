//! Service level objectives: spec parsing (OpenSLO v1, Sloth `prometheus/v1`),
//! multiwindow multi-burn-rate alert windows, and the offline series evaluator.
//!
//! What it is: pure functions from spec text and `(timestamp, bad, total)`
//! rows to typed specs, burn rates, firing intervals and error-budget numbers.
//! The server's live SLO engine and `faultline slo eval` use the same code.
//!
//! What it is not: no file or network access (callers pass `&str`), no
//! PromQL. Queries in specs are carried as opaque strings; the numbers come
//! from interaction windows or CSV series the caller supplies.

pub mod duration;
pub mod eval;
pub mod live;
pub mod node;
pub mod openslo;
pub mod sloth;
pub mod spec;
pub mod windows;

#[cfg(test)]
mod tests;

pub use duration::{format_duration, parse_duration};
pub use eval::{AlertInterval, EvalReport, SeriesError, SeriesRow, SloEvalError, eval_series, parse_series_csv, render_json, render_table, run_eval};
pub use live::{SloMonitor, SloStatus};
pub use node::{SpecError, SpecErrors};
pub use spec::{Objective, SloSpec, SloTarget, load_slo_specs};
pub use windows::{AlertSeverity, AlertWindows, BurnPair};
