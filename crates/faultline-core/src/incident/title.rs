//! Incident titles from what the source says: an alert is named by its
//! `alertname`, the service it names and its summary (or, for PagerDuty, its
//! `summary`); a telemetry incident by the interaction (or service, resource,
//! flow) its first symptom is on, the measured condition, and the origin the
//! diagnosis names ("checkout → payments: errors 31 %; origin payments-db").
//!
//! What it is: pure functions from a symptom to a title of at most
//! `MAX_TITLE_CHARS` characters. What it is not: who may rename an incident
//! (`Incident::decide`: a person's title is never replaced automatically) or
//! the public title (always a person's words; see `status_page`).

use crate::finding::{Finding, Subject};
use crate::incident::MAX_TITLE_CHARS;
use crate::signal::ExternalAlert;

/// The title of an incident an alert opened: `alertname on service:
/// summary`, leaving out what the alert does not carry (and the summary when
/// it only repeats the alert name). Without an `alertname` the summary alone
/// (PagerDuty's `payload.summary` is written as a title); without either the
/// source and fingerprint, the only name left.
pub fn alert_title(alert: &ExternalAlert) -> String {
    let name = alert.labels.get("alertname").map(|s| s.trim()).filter(|s| !s.is_empty());
    let summary = Some(alert.summary.trim()).filter(|s| !s.is_empty() && Some(*s) != name);
    let service = alert.service_label().filter(|s| Some(*s) != name);
    let title = match (name, service, summary) {
        (Some(n), Some(s), Some(m)) => format!("{n} on {s}: {m}"),
        (Some(n), Some(s), None) => format!("{n} on {s}"),
        (Some(n), None, Some(m)) => format!("{n}: {m}"),
        (Some(n), None, None) => n.to_owned(),
        (None, _, Some(m)) => m.to_owned(),
        (None, Some(s), None) => format!("{} alert on {s}", alert.source),
        (None, None, None) => format!("{} alert {}", alert.source, alert.fingerprint),
    };
    bounded(&title)
}

/// The title of an incident a finding opened: its subject first, then what
/// was measured, then the origin when the diagnosis names one elsewhere.
pub fn finding_title(finding: &Finding, origin: Option<&Subject>) -> String {
    let mut title = format!("{}: {}", finding.subject, condition(finding));
    if let Some(o) = origin.filter(|o| **o != finding.subject) {
        title.push_str(&format!("; origin {o}"));
    }
    bounded(&title)
}

/// The measured condition in a few words a responder reads at a glance.
fn condition(f: &Finding) -> String {
    let pct = |v: f64| format!("{:.0} %", v * 100.0);
    let observed = f.evidence.observed;
    match f.kind.as_str() {
        "error_rate_change" => format!("errors {}", pct(observed)),
        "latency_change" => format!("p99 {observed:.0} ms"),
        "retry_amplification" => format!("retries {}", pct(observed)),
        "timeout_saturation" => format!("timeouts {}", pct(observed)),
        "slo_burn" => format!("SLO burning {observed:.1}× budget"),
        "missed_check_in" => "check-in missed".to_owned(),
        "check_in_failed" => "check-in reported failure".to_owned(),
        "wrong_answers" => format!("wrong answers {}", pct(observed)),
        other => other.replace('_', " "),
    }
}

/// At most `MAX_TITLE_CHARS` characters, cut with an ellipsis.
fn bounded(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= MAX_TITLE_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_TITLE_CHARS - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::finding::{Evidence, FailureModel};
    use crate::ids::ServiceName;
    use crate::model::Interaction;
    use crate::signal::AlertState;
    use crate::time::{Duration, Timestamp};

    fn alert(source: &str, labels: &[(&str, &str)], summary: &str) -> ExternalAlert {
        ExternalAlert {
            source: source.into(),
            fingerprint: "9e8060cd64bb5676".into(),
            state: AlertState::Firing,
            summary: summary.into(),
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
            starts_at: Timestamp::EPOCH,
            ends_at: None,
        }
    }

    #[test]
    fn alerts_are_named_by_what_they_say_not_by_fingerprint() {
        let am = alert("alertmanager", &[("alertname", "CheckoutErrors"), ("service", "payments"), ("severity", "critical")], "checkout 5xx above 5%");
        assert_eq!(alert_title(&am), "CheckoutErrors on payments: checkout 5xx above 5%");
        // The decoder falls back to the alert name as summary: not repeated.
        assert_eq!(alert_title(&alert("alertmanager", &[("alertname", "DiskFull"), ("job", "ledger")], "DiskFull")), "DiskFull on ledger");
        assert_eq!(alert_title(&alert("alertmanager", &[("alertname", "Watchdog")], "Watchdog")), "Watchdog");
        assert_eq!(alert_title(&alert("pagerduty", &[("source", "db1"), ("component", "fraud-db")], "fraud-db down")), "fraud-db down");
        assert_eq!(alert_title(&alert("alertmanager", &[("instance", "x")], "")), "alertmanager alert 9e8060cd64bb5676", "nothing else to go by");
        let long = "x".repeat(500);
        assert_eq!(alert_title(&alert("generic", &[("alertname", "A")], &long)).chars().count(), MAX_TITLE_CHARS);
    }

    #[test]
    fn telemetry_titles_name_the_interaction_first_then_the_origin() {
        let svc = |s: &str| ServiceName::new(s).unwrap();
        let edge = Subject::Interaction { interaction: Interaction { caller: svc("checkout"), callee: svc("payments"), operation: String::new() } };
        let f = Finding {
            kind: "error_rate_change".into(),
            subject: edge.clone(),
            failure_model: FailureModel::Unknown,
            started_at: Timestamp::EPOCH,
            strength: 3.0,
            evidence: Evidence {
                measure: "error_ratio".into(),
                observed: 0.31,
                baseline: Some(0.01),
                threshold: None,
                window: Duration::from_secs(10),
                exemplar_trace_ids: vec![],
            },
        };
        let db = Subject::Service { service: svc("payments-db") };
        assert_eq!(finding_title(&f, Some(&db)), "checkout → payments: errors 31 %; origin payments-db");
        assert_eq!(finding_title(&f, Some(&edge)), "checkout → payments: errors 31 %", "the origin is the subject itself");
        let pool = Finding { kind: "resource_exhaustion".into(), subject: Subject::Resource { service: svc("fraud-db"), resource: "pool".into() }, ..f };
        assert_eq!(finding_title(&pool, None), "fraud-db/pool: resource exhaustion");
        let burn = Finding { kind: "slo_burn".into(), subject: Subject::Flow { flow: crate::ids::FlowName::new("checkout").unwrap() }, ..pool };
        assert_eq!(
            finding_title(&Finding { evidence: Evidence { observed: 14.4, ..burn.evidence.clone() }, ..burn }, None),
            "flow checkout: SLO burning 14.4× budget"
        );
    }
}
