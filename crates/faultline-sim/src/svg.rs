//! Hand-rolled SVG charts of a run: load, goodput and errors; p99 latency;
//! queue depth (or the scenario's own metrics), with the fault window shaded;
//! and a before/after chart of a scenario against its defended variant.
//!
//! What it is: string building with a tiny axis/tick helper, so no plotting
//! crate is needed. What it is not: an interactive or general plotting
//! library.

use std::fmt::Write as _;

use crate::run::GroundTruth;
use crate::series::Series;

const W: f64 = 1000.0;
const PANEL_H: f64 = 200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 75.0;
const GAP: f64 = 45.0;

struct Line {
    label: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

struct Panel {
    title: String,
    lines: Vec<Line>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A "nice" upper bound and tick step for `max`.
fn nice(max: f64) -> (f64, f64) {
    if max.is_nan() || max <= 0.0 || max.is_infinite() {
        return (1.0, 0.25);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

fn fmt_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1000.0 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn render(title: &str, subtitle: &str, panels: &[Panel], t_end: f64, shade: Option<(f64, f64)>) -> String {
    let plot_w = W - LEFT - RIGHT;
    let h = TOP + panels.len() as f64 * (PANEL_H + GAP) + 10.0;
    let mut s = String::new();
    let _ = write!(s, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="11">"#);
    let _ = write!(s, r#"<rect width="{W}" height="{h}" fill="white"/>"#);
    let _ = write!(s, r#"<text x="{LEFT}" y="20" font-size="15" font-weight="bold">{}</text>"#, esc(title));
    let _ = write!(s, r##"<text x="{LEFT}" y="37" fill="#555">{}</text>"##, esc(subtitle));
    let t_end = if t_end > 0.0 { t_end } else { 1.0 };
    let x = |t: f64| LEFT + (t / t_end).clamp(0.0, 1.0) * plot_w;
    for (i, p) in panels.iter().enumerate() {
        let y0 = TOP + i as f64 * (PANEL_H + GAP);
        // Scale to the bulk of the data: a short spike (a backlog draining)
        // above twice the 95th percentile is clipped rather than flattening
        // everything else.
        let mut vals: Vec<f64> = p.lines.iter().flat_map(|l| l.points.iter().map(|q| q.1)).filter(|v| v.is_finite()).collect();
        vals.sort_by(f64::total_cmp);
        let max = vals.last().copied().unwrap_or(0.0);
        let p95 = vals.get(vals.len().saturating_sub(1) * 95 / 100).copied().unwrap_or(0.0);
        let clipped = p95 > 0.0 && max > 2.0 * p95;
        let (ymax, step) = nice(if clipped { 1.6 * p95 } else { max });
        let y = |v: f64| y0 + PANEL_H - (v / ymax).clamp(0.0, 1.05) * PANEL_H;
        if let Some((a, b)) = shade {
            let _ = write!(s, r##"<rect x="{:.1}" y="{y0:.1}" width="{:.1}" height="{PANEL_H}" fill="#f6d5d5" opacity="0.6"/>"##, x(a), (x(b) - x(a)).max(1.0));
        }
        let ptitle = if clipped { format!("{} (peaks above {} clipped)", p.title, fmt_num(ymax)) } else { p.title.clone() };
        let _ = write!(s, r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text>"#, y0 - 6.0, esc(&ptitle));
        // Horizontal grid and y labels.
        let mut v = 0.0;
        while v <= ymax + step * 0.01 {
            let yy = y(v);
            let _ = write!(
                s,
                r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                yy + 4.0,
                fmt_num(v)
            );
            v += step;
        }
        // Time axis.
        let (_, tstep) = nice(t_end);
        let mut t = 0.0;
        while t <= t_end + 1e-9 {
            let xx = x(t);
            let _ = write!(
                s,
                r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#999"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}s</text>"##,
                y0 + PANEL_H,
                y0 + PANEL_H + 4.0,
                y0 + PANEL_H + 16.0,
                fmt_num(t)
            );
            t += tstep;
        }
        let _ = write!(s, r##"<rect x="{LEFT}" y="{y0:.1}" width="{plot_w:.1}" height="{PANEL_H}" fill="none" stroke="#888"/>"##);
        for (k, l) in p.lines.iter().enumerate() {
            if l.points.is_empty() {
                continue;
            }
            let dash = if l.dashed { r#" stroke-dasharray="5,3""# } else { "" };
            // NaN marks "no data in this window": break the line there.
            for seg in l.points.split(|q| !q.1.is_finite()).filter(|g| !g.is_empty()) {
                let pts: Vec<String> = seg.iter().map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v))).collect();
                let _ = write!(s, r#"<polyline fill="none" stroke="{}" stroke-width="1.8"{dash} points="{}"/>"#, l.color, pts.join(" "));
            }
            let ly = y0 + 12.0 + k as f64 * 16.0;
            let lx = LEFT + plot_w + 12.0;
            let _ = write!(
                s,
                r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2.5"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
                lx + 18.0,
                l.color,
                lx + 23.0,
                ly + 4.0,
                esc(&l.label)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

const COLORS: [&str; 6] = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#e377c2"];

fn per_window(series: &Series, f: impl Fn(u32) -> f64) -> Vec<(f64, f64)> {
    (0..series.windows).map(|w| (series.window_start_s(w) + series.window_s, f(w))).collect()
}

fn flow_sum(series: &Series, w: u32, v: impl Fn(&crate::series::FlowRow) -> u64) -> f64 {
    series.flow_rows.iter().filter(|r| r.window == w).map(|r| v(r) as f64).sum::<f64>() / series.window_s
}

/// The worst source's p99 in a window; NaN when no request finished in it.
fn flow_p99(series: &Series, w: u32) -> f64 {
    let rows = series.flow_rows.iter().filter(|r| r.window == w && r.goodput + r.failed + r.wrong > 0);
    rows.map(|r| r.p99_ms).fold(f64::NAN, f64::max)
}

fn shade(gt: &GroundTruth) -> Option<(f64, f64)> {
    gt.fault_start_s.map(|a| (a, gt.fault_end_s.unwrap_or(a).max(a)))
}

/// Services shown in the third panel: the scenario's chart list, or the
/// busiest queues.
fn chart_services(series: &Series, wanted: &[String]) -> Vec<String> {
    if !wanted.is_empty() {
        return wanted.iter().filter(|s| series.service_index(s).is_some()).cloned().collect();
    }
    let mut by_max: Vec<(u64, String)> =
        series.services.iter().map(|s| (series.service(s).iter().map(|r| r.queue_depth).max().unwrap_or(0), s.clone())).collect();
    by_max.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    by_max.into_iter().take(4).map(|x| x.1).collect()
}

/// The chart of one run.
pub fn run_chart(series: &Series, gt: &GroundTruth, chart_services_wanted: &[String]) -> String {
    let t_end = series.windows as f64 * series.window_s;
    let mut panels = Vec::new();
    let mut load = vec![
        Line { label: "requests/s".into(), color: "#888", dashed: true, points: per_window(series, |w| flow_sum(series, w, |r| r.requests)) },
        Line { label: "goodput/s".into(), color: "#2ca02c", dashed: false, points: per_window(series, |w| flow_sum(series, w, |r| r.goodput)) },
        Line { label: "failed/s".into(), color: "#d62728", dashed: false, points: per_window(series, |w| flow_sum(series, w, |r| r.failed)) },
    ];
    if series.flow_rows.iter().any(|r| r.wrong > 0) {
        load.push(Line { label: "wrong/s".into(), color: "#ff7f0e", dashed: false, points: per_window(series, |w| flow_sum(series, w, |r| r.wrong)) });
    }
    if let faultline_core::Subject::Interaction { interaction } = &gt.origin
        && let Some(e) = series.edge_index(interaction.caller.as_str(), interaction.callee.as_str())
    {
        load.push(Line {
            label: format!("attempts {}→{}", interaction.caller, interaction.callee),
            color: "#9467bd",
            dashed: true,
            points: per_window(series, |w| {
                series.edge_rows.iter().filter(|r| r.window == w && r.edge == e).map(|r| r.attempts as f64).sum::<f64>() / series.window_s
            }),
        });
    }
    if !series.flow_rows.is_empty() {
        panels.push(Panel { title: "Load, goodput and failures (per second)".into(), lines: load });
        panels.push(Panel {
            title: "User-facing p99 latency (ms)".into(),
            lines: vec![Line { label: "p99".into(), color: "#1f77b4", dashed: false, points: per_window(series, |w| flow_p99(series, w)) }],
        });
    }
    let svcs = chart_services(series, chart_services_wanted);
    if !svcs.is_empty() {
        let lines = svcs
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let rows = series.service(name);
                Line {
                    label: name.clone(),
                    color: COLORS[k % COLORS.len()],
                    dashed: false,
                    points: rows.iter().map(|r| (series.window_start_s(r.window) + series.window_s, r.queue_depth as f64)).collect(),
                }
            })
            .collect();
        panels.push(Panel { title: "Queue depth".into(), lines });
    }
    // Named metrics (cache hit ratio, pool use, cluster state), up to 4 series.
    let mut names: Vec<(String, String)> = Vec::new();
    for r in &series.metric_rows {
        let key = (r.name.clone(), r.subject.clone());
        if !names.contains(&key) && r.name != "pool_size" && r.name != "cache_recomputes" {
            names.push(key);
        }
    }
    if !names.is_empty() {
        let lines = names
            .iter()
            .take(4)
            .enumerate()
            .map(|(k, (n, subj))| Line {
                label: format!("{n} ({subj})"),
                color: COLORS[(k + 2) % COLORS.len()],
                dashed: false,
                points: series.metric(n, subj).iter().map(|r| (series.window_start_s(r.window) + series.window_s, r.value)).collect(),
            })
            .collect();
        panels.push(Panel { title: "Metrics".into(), lines });
    }
    let title = format!("{}{}", gt.scenario, if gt.defended { " (defended)" } else { "" });
    let subtitle = format!("class {} · failure model {} · origin {} · shaded: fault", gt.class, gt.failure_model, gt.origin);
    render(&title, &subtitle, &panels, t_end, shade(gt))
}

/// Before/after: the scenario against its defended variant.
pub fn compare_chart(before: &Series, after: &Series, gt: &GroundTruth) -> String {
    let t_end = (before.windows as f64 * before.window_s).max(after.windows as f64 * after.window_s);
    let mut panels = Vec::new();
    if !before.flow_rows.is_empty() {
        panels.push(Panel {
            title: "Goodput per second: without vs with defences".into(),
            lines: vec![
                Line { label: "requests/s".into(), color: "#888", dashed: true, points: per_window(before, |w| flow_sum(before, w, |r| r.requests)) },
                Line { label: "defended".into(), color: "#2ca02c", dashed: false, points: per_window(after, |w| flow_sum(after, w, |r| r.goodput)) },
                // Drawn last and dashed so it stays visible where the two coincide.
                Line { label: "undefended".into(), color: "#d62728", dashed: true, points: per_window(before, |w| flow_sum(before, w, |r| r.goodput)) },
            ],
        });
        panels.push(Panel {
            title: "User-facing p99 latency (ms)".into(),
            lines: vec![
                Line { label: "defended".into(), color: "#2ca02c", dashed: false, points: per_window(after, |w| flow_p99(after, w)) },
                Line { label: "undefended".into(), color: "#d62728", dashed: true, points: per_window(before, |w| flow_p99(before, w)) },
            ],
        });
    }
    // The first named metric, both ways (e.g. leaders, cache hit ratio).
    if let Some(r) = before.metric_rows.first() {
        let (n, subj) = (r.name.clone(), r.subject.clone());
        let pts = |s: &Series| -> Vec<(f64, f64)> { s.metric(&n, &subj).iter().map(|r| (s.window_start_s(r.window) + s.window_s, r.value)).collect() };
        panels.push(Panel {
            title: format!("{n} ({subj})"),
            lines: vec![
                Line { label: "undefended".into(), color: "#d62728", dashed: false, points: pts(before) },
                Line { label: "defended".into(), color: "#2ca02c", dashed: true, points: pts(after) },
            ],
        });
        if let Some(r2) = before.metric_rows.iter().find(|m| m.name == "writes_divergent") {
            let (n2, s2) = (r2.name.clone(), r2.subject.clone());
            let pts = |s: &Series| -> Vec<(f64, f64)> { s.metric(&n2, &s2).iter().map(|r| (s.window_start_s(r.window) + s.window_s, r.value)).collect() };
            panels.push(Panel {
                title: format!("{n2} ({s2})"),
                lines: vec![
                    Line { label: "undefended".into(), color: "#d62728", dashed: false, points: pts(before) },
                    Line { label: "defended".into(), color: "#2ca02c", dashed: true, points: pts(after) },
                ],
            });
        }
    }
    let title = format!("{}: before / after defences", gt.scenario);
    let subtitle = format!("class {} · origin {} · shaded: fault", gt.class, gt.origin);
    render(&title, &subtitle, &panels, t_end, shade(gt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_bounds_cover_the_max() {
        for m in [0.3, 1.0, 7.0, 99.0, 1234.0, 56789.0] {
            let (top, step) = nice(m);
            assert!(top >= m && step > 0.0 && top / step <= 5.0 + 1e-9, "{m} -> {top} {step}");
        }
        assert_eq!(nice(0.0), (1.0, 0.25));
        assert_eq!(esc("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }
}
