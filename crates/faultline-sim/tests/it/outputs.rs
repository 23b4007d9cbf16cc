//! Outputs and interfaces: signals for the real detectors, CSV/SVG shapes,
//! scenario errors that name the field and line, and the CLI entry point.

use faultline_core::{Signal, Timestamp};
use faultline_sim::cli::{RunArgs, SimArgs, SimCommand};
use faultline_sim::{Scenario, builtin, run_scenario, run_with_signals, svg};

#[test]
fn windows_are_emitted_as_edge_and_metric_signals_while_running() {
    let sc = builtin::load("retry-storm", false).unwrap().unwrap();
    let epoch = Timestamp::parse_rfc3339("2026-11-21T12:00:00Z").unwrap();
    let mut edges = Vec::new();
    let mut metrics = 0;
    let mut last_at = Timestamp::EPOCH;
    let out = run_with_signals(&sc, None, false, epoch, |s| {
        assert!(s.at() >= last_at, "signals arrive in time order");
        last_at = s.at();
        match s {
            Signal::Edge(e) => edges.push(e),
            Signal::Metric(_) => metrics += 1,
            _ => {}
        }
    });
    assert_eq!(out.series.windows, 120);
    assert!(metrics > 0);
    let storm: Vec<_> = edges
        .iter()
        .filter(|e| e.interaction.caller.as_str() == "api" && e.interaction.callee.as_str() == "db")
        .filter(|e| e.start >= epoch + faultline_core::Duration::from_secs(60))
        .collect();
    assert!(!storm.is_empty());
    // In the storm, about half of the attempts to db are retries and all fail.
    let (req, retries, errs): (u64, u64, u64) = storm.iter().fold((0, 0, 0), |a, e| (a.0 + e.requests, a.1 + e.retries, a.2 + e.errors));
    assert!(retries * 10 > req * 4 && errs * 10 > req * 9, "req {req} retries {retries} errors {errs}");
    // The same signals come out of the finished series.
    assert_eq!(out.series.signals(epoch).filter(|s| matches!(s, Signal::Edge(_))).count(), edges.len());
}

#[test]
fn csv_and_svg_have_the_expected_shape() {
    let sc = builtin::load("queue-overload", false).unwrap().unwrap();
    let out = run_scenario(&sc, None, Some(faultline_sim::scenario::Dur(40.0)), false);
    let csv = out.series.services_csv();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), "t_s,service,arrivals,served,dropped,rejected,errors,queue_depth,queue_max,busy,capacity,utilization");
    assert_eq!(lines.count(), 40 * 2, "one row per service per window");
    assert!(out.series.edges_csv().lines().any(|l| l.contains(",producers,orders-api,")));
    let chart = svg::run_chart(&out.series, &out.ground_truth, &[]);
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    assert!(chart.contains("order-consumer") && chart.contains("<polyline"));
    let def = run_scenario(&sc.defended_variant().unwrap(), None, Some(faultline_sim::scenario::Dur(40.0)), true);
    let cmp = svg::compare_chart(&out.series, &def.series, &out.ground_truth);
    assert!(cmp.contains("undefended") && cmp.contains("defended"));
}

#[test]
fn scenario_errors_name_the_field_and_the_line() {
    let bad_ref =
        "name: x\nduration: 10s\nground_truth: {class: crash, failure_model: crash, origin: a}\nservices:\n  - name: a\n    calls:\n      - to: nowhere\n";
    let e = Scenario::from_yaml(bad_ref).unwrap_err().to_string();
    assert!(e.contains("line 7") && e.contains("services[0].calls[0].to") && e.contains("nowhere"), "{e}");

    let unknown_field = "name: x\nduration: 10s\nground_truth: {class: crash, failure_model: crash, origin: a}\nservices:\n  - name: a\n    concurency: 3\n";
    let e = Scenario::from_yaml(unknown_field).unwrap_err().to_string();
    assert!(e.contains("line 6") && e.contains("concurency"), "{e}");

    let bad_duration = "name: x\nduration: soon\nground_truth: {class: crash, failure_model: crash, origin: a}\n";
    let e = Scenario::from_yaml(bad_duration).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("soon"), "{e}");

    let bad_fault = "name: x\nduration: 10s\nground_truth: {class: crash, failure_model: crash, origin: a}\nservices:\n  - name: a\nfaults:\n  - {at: 1s, fault: capacity_cut, service: b, factor: 0.5}\n";
    let e = Scenario::from_yaml(bad_fault).unwrap_err().to_string();
    assert!(e.contains("line 7") && e.contains("faults[0].service"), "{e}");

    let bad_class = "name: x\nduration: 10s\nground_truth: {class: gremlins, failure_model: crash, origin: a}\n";
    let e = Scenario::from_yaml(bad_class).unwrap_err().to_string();
    assert!(e.contains("ground_truth.class") && e.contains("gremlins"), "{e}");
}

#[test]
fn cli_reports_unknown_scenarios_in_one_line_and_runs_files() {
    let args = |scenario: &str| SimArgs {
        command: SimCommand::Run(RunArgs {
            scenario: scenario.into(),
            seed: None,
            defended: false,
            duration: None,
            out: None,
            compare: false,
            no_faults: false,
            json: true,
            otlp: None,
            speed: None,
            otlp_max_spans: 5000,
            otlp_token: None,
        }),
    };
    let e = faultline_sim::cli::run(args("no-such-thing")).unwrap_err();
    assert!(e.contains("no-such-thing") && e.contains("retry-storm") && !e.contains('\n'), "{e}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/crash.yaml");
    let sc = faultline_sim::cli::load_scenario(path, true).unwrap();
    assert!(sc.name.contains("defended"));
    assert!(faultline_sim::cli::run(SimArgs { command: SimCommand::List }).is_ok());
}

/// A one-shot HTTP server that records request lines and bodies and answers 200.
fn capture_server() -> (String, std::sync::mpsc::Receiver<(String, String)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
            if tx.send((line.trim().to_owned(), String::from_utf8(body).unwrap())).is_err() {
                break;
            }
        }
    });
    (url, rx)
}

#[test]
fn otlp_export_sends_spans_per_attempt_and_window_gauges() {
    let (url, rx) = capture_server();
    let args = SimArgs {
        command: SimCommand::Run(RunArgs {
            scenario: "retry-storm".into(),
            seed: None,
            defended: false,
            duration: Some(faultline_sim::scenario::Dur(3.0)),
            out: None,
            compare: false,
            no_faults: false,
            json: true,
            otlp: Some(url),
            speed: None,
            otlp_max_spans: 100,
            otlp_token: None,
        }),
    };
    faultline_sim::cli::run(args).unwrap();
    let got: Vec<(String, String)> = rx.try_iter().collect();
    let traces: Vec<&String> = got.iter().filter(|(l, _)| l.starts_with("POST /v1/traces ")).map(|x| &x.1).collect();
    let metrics: Vec<&String> = got.iter().filter(|(l, _)| l.starts_with("POST /v1/metrics ")).map(|x| &x.1).collect();
    assert_eq!(traces.len(), 3, "one trace batch per 1 s window");
    assert_eq!(metrics.len(), 3);
    let v: serde_json::Value = serde_json::from_str(traces[1]).unwrap();
    let services: Vec<String> =
        v["resourceSpans"].as_array().unwrap().iter().map(|r| r["resource"]["attributes"][0]["value"]["stringValue"].as_str().unwrap().to_owned()).collect();
    assert!(services.contains(&"api".to_owned()) && services.contains(&"db".to_owned()), "{services:?}");
    let spans: Vec<&serde_json::Value> = v["resourceSpans"].as_array().unwrap().iter().flat_map(|r| r["scopeSpans"][0]["spans"].as_array().unwrap()).collect();
    assert!(spans.len() <= 2 * 100 && spans.len() >= 100, "sampled to 100 attempts: {}", spans.len());
    assert!(spans.iter().any(|s| s["kind"] == 3) && spans.iter().any(|s| s["kind"] == 2 && s["parentSpanId"].is_string()));
    let m: serde_json::Value = serde_json::from_str(metrics[0]).unwrap();
    let names: Vec<&str> = m["resourceMetrics"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["scopeMetrics"][0]["metrics"].as_array().unwrap())
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    // Every per-window metric the in-process signals carry goes out as a gauge.
    for want in ["queue_depth", "utilization", "busy"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
}

#[test]
fn byzantine_answers_are_reported_as_wrong_answer_metrics() {
    let sc = builtin::load("byzantine", false).unwrap().unwrap();
    let epoch = Timestamp::EPOCH;
    let mut wrong_before = 0.0;
    let mut wrong_after = 0.0;
    let mut answers_after = 0.0;
    run_with_signals(&sc, None, false, epoch, |s| {
        if let Signal::Metric(m) = s {
            let is_pricing = m.service.as_ref().is_some_and(|x| x.as_str() == "pricing") && m.labels.get("caller").map(String::as_str) == Some("api");
            // Windows ending by t = 30 s are before the fault; from 32 s on, after it.
            let before = m.at <= epoch + faultline_core::Duration::from_secs(30);
            let after = m.at >= epoch + faultline_core::Duration::from_secs(32);
            match (m.name.as_str(), is_pricing) {
                ("wrong_answers", true) if before => wrong_before += m.value,
                ("wrong_answers", true) if after => wrong_after += m.value,
                ("answers", true) if after => answers_after += m.value,
                _ => {}
            }
        }
    });
    assert_eq!(wrong_before, 0.0);
    let ratio = wrong_after / answers_after;
    assert!((0.28..0.39).contains(&ratio), "{ratio}");
}
