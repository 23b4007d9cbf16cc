//! Conversions from domain types (`faultline_core`) to wire types
//! (`faultline_api`). The only place that knows both, so the wire format
//! changes only when this file does.

use faultline_api as api;
use faultline_core::Duration;
use faultline_core::finding::CausalChain;
use faultline_core::incident::metrics::{Distribution, ResponseTimes};
use faultline_core::incident::{Incident, IncidentEvent, TimelineEvent};

pub fn incident(inc: &Incident, timeline: Option<&[TimelineEvent]>) -> api::Incident {
    api::Incident {
        id: inc.id.to_string(),
        // The store's, not the timeline's: filled in by `incidents::numbered`.
        number: None,
        title: inc.title.clone(),
        public_title: inc.public_title.clone(),
        summary: inc.summary.clone(),
        severity: inc.severity.to_string(),
        status: inc.status.to_string(),
        roles: inc.roles.iter().map(|(r, u)| (r.to_string(), u.to_string())).collect(),
        opened_at: inc.opened_at.to_string(),
        acknowledged_at: inc.acknowledged_at.map(|t| t.to_string()),
        mitigated_at: inc.mitigated_at.map(|t| t.to_string()),
        resolved_at: inc.resolved_at.map(|t| t.to_string()),
        updated_at: inc.updated_at.to_string(),
        version: inc.version,
        class: inc.class.map(|c| c.to_string()),
        failure_model: inc.failure_model.map(|m| m.to_string()),
        causal_chain: inc.causal_chain.as_ref().map(causal_chain),
        findings: timeline.map(findings),
        merged_into: inc.merged_into.map(|i| i.to_string()),
        related: inc.related.iter().map(ToString::to_string).collect(),
        timeline: timeline.map(|t| t.iter().map(timeline_entry).collect()),
        response: timeline.and_then(faultline_core::incident::metrics::response_times).as_ref().map(response_times),
    }
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub fn response_times(r: &ResponseTimes) -> api::ResponseTimes {
    api::ResponseTimes {
        acknowledged_at: r.acknowledged_at.map(|t| t.to_string()),
        acknowledged_by: r.acknowledged_by.as_ref().map(ToString::to_string),
        implicit_ack: r.implicit_ack,
        mitigated_at: r.mitigated_at.map(|t| t.to_string()),
        resolved_at: r.resolved_at.map(|t| t.to_string()),
        time_to_acknowledge_seconds: r.time_to_acknowledge.map(seconds),
        time_to_mitigate_seconds: r.time_to_mitigate.map(seconds),
        time_to_resolve_seconds: r.time_to_resolve.map(seconds),
        reopened: r.reopened,
        merged: r.merged,
    }
}

pub fn distribution(d: &Distribution) -> api::DurationDistribution {
    api::DurationDistribution { count: d.count as u64, p50_seconds: d.p50.map(seconds), p90_seconds: d.p90.map(seconds), max_seconds: d.max.map(seconds) }
}

pub fn causal_chain(c: &CausalChain) -> api::CausalChain {
    api::CausalChain {
        sentence: c.render_sentence(),
        origins: c
            .origins
            .iter()
            .map(|o| api::OriginCandidate { subject: o.subject.to_string(), confidence: o.confidence, reasons: o.reasons.clone() })
            .collect(),
        amplifiers: c.amplifiers.iter().map(|a| api::Amplifier { subject: a.subject.to_string(), mechanism: a.mechanism.clone(), factor: a.factor }).collect(),
        impacted_flows: c.impacted_flows.iter().map(|f| api::FlowImpact { flow: f.flow.to_string(), burn_rate: f.burn_rate }).collect(),
    }
}

/// Symptoms from the timeline: first attachment time, latest evidence, and
/// whether the last word on it was "cleared".
fn findings(timeline: &[TimelineEvent]) -> Vec<api::FindingView> {
    let mut out: Vec<api::FindingView> = Vec::new();
    for ev in timeline {
        match &ev.event {
            IncidentEvent::SymptomAttached { member, evidence, .. } => match out.iter_mut().find(|f| &f.member == member) {
                Some(f) => {
                    f.evidence = evidence.clone();
                    f.active = true;
                }
                None => out.push(api::FindingView { member: member.clone(), evidence: evidence.clone(), first_attached_at: ev.at.to_string(), active: true }),
            },
            IncidentEvent::SymptomCleared { member } => {
                if let Some(f) = out.iter_mut().find(|f| &f.member == member) {
                    f.active = false;
                }
            }
            _ => {}
        }
    }
    out
}

pub fn timeline_entry(ev: &TimelineEvent) -> api::TimelineEntry {
    // The event's own fields, without the `type` tag (that is `kind`).
    let mut details = serde_json::to_value(&ev.event).unwrap_or(serde_json::Value::Null);
    if let Some(obj) = details.as_object_mut() {
        obj.remove("type");
    }
    api::TimelineEntry { seq: ev.seq, at: ev.at.to_string(), actor: ev.actor.to_string(), kind: ev.event.kind().to_owned(), details }
}
