//! `faultline drill <scenario|--all> [--seed N] [--json]`: runs simulator
//! scenarios through the production detectors and correlator
//! (`faultline_core::pipeline::Pipeline`) on virtual time, and scores each
//! run against the scenario's ground truth; then runs the same world with its
//! faults removed, where any incident is a false positive.
//!
//! Scoring, stated so it can be checked: `detected` — an incident opened at
//! or after the fault started; `time_to_detect_s` — from fault start to the
//! first incident; `incidents` — incidents opened and not merged away;
//! `origin_rank` — 1-based rank of the true origin's service among the main
//! incident's origin candidates (service level: a candidate naming the
//! resource, the service, or an interaction into it counts); `class_correct`
//! — the main incident's class equals the ground truth's; `pages` — incidents
//! that would page (one per incident). Not here: any detection or
//! correlation logic — this module only drives and scores.

use std::collections::BTreeMap;

use clap::Args;
use faultline_core::correlate::{CorrelatorConfig, GroupId, Topology};
use faultline_core::detect::DetectorSet;
use faultline_core::finding::{CausalChain, Subject};
use faultline_core::model::Interaction;
use faultline_core::pipeline::{IncidentAction, Pipeline};
use faultline_core::severity::SeverityDefinitions;
use faultline_core::{ServiceName, Timestamp};
use faultline_sim::scenario::Scenario;
use serde::Serialize;

#[derive(Args)]
pub struct DrillArgs {
    /// A built-in scenario name (see `faultline sim list`).
    scenario: Option<String>,
    /// Every built-in scenario.
    #[arg(long, conflicts_with = "scenario")]
    all: bool,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    json: bool,
    /// Also list every finding of the main incident (kind, subject, failure model, onset).
    #[arg(long)]
    findings: bool,
}

#[derive(Debug, Serialize)]
pub struct DrillScore {
    pub scenario: String,
    pub detected: bool,
    pub time_to_detect_s: Option<f64>,
    pub incidents: usize,
    pub origin_rank: Option<usize>,
    pub origin: Option<String>,
    pub class: Option<String>,
    pub expected_class: String,
    pub class_correct: bool,
    pub pages: usize,
    pub fault_free_incidents: usize,
    pub sentence: Option<String>,
    /// `kind on subject (model) at +Ns`, for the main incident.
    pub findings: Vec<String>,
}

/// Epoch virtual time 0 maps to; any fixed instant works.
const EPOCH_S: i64 = 1_800_000_000;

/// The scenario's interactions: (service → service calls, load source → entry service).
pub fn interactions(sc: &Scenario) -> (Vec<Interaction>, Vec<Interaction>) {
    let edge =
        |a: &str, b: &str| Some(Interaction { caller: ServiceName::new(a.trim()).ok()?, callee: ServiceName::new(b.trim()).ok()?, operation: String::new() });
    let calls = sc.services.iter().flat_map(|s| s.calls.iter().filter_map(move |c| edge(&s.name.value, &c.to.value))).collect();
    let entries = sc.load.iter().filter_map(|l| edge(&l.name, &l.call.to.value)).collect();
    (calls, entries)
}

/// The topology a scenario's telemetry would teach the graph.
pub fn topology(sc: &Scenario) -> Topology {
    let (calls, entries) = interactions(sc);
    Topology::new(calls.into_iter().chain(entries), vec![])
}

struct Outcome {
    opened: Vec<(GroupId, Timestamp)>,
    merged: usize,
    chains: BTreeMap<GroupId, CausalChain>,
    findings: BTreeMap<GroupId, Vec<String>>,
}

fn run_pipeline(sc: &Scenario, seed: Option<u64>) -> Outcome {
    let mut pipeline = Pipeline::new(DetectorSet::standard(), CorrelatorConfig::default(), topology(sc), SeverityDefinitions::standard(vec![]));
    let mut actions: Vec<IncidentAction> = Vec::new();
    let mut last_tick = Timestamp::from_secs(EPOCH_S);
    faultline_sim::run::run_with_signals(sc, seed, false, Timestamp::from_secs(EPOCH_S), |signal| {
        let at = signal.at();
        if at > last_tick {
            actions.extend(pipeline.tick(at));
            last_tick = at;
        }
        actions.extend(pipeline.observe_signal(&signal, at));
    });
    let mut out = Outcome { opened: Vec::new(), merged: 0, chains: BTreeMap::new(), findings: BTreeMap::new() };
    for a in actions {
        match a {
            IncidentAction::Open { group, at, .. } => out.opened.push((group, at)),
            IncidentAction::Merge { .. } => out.merged += 1,
            _ => {}
        }
    }
    for g in pipeline.correlator().groups() {
        out.chains.insert(g.id, g.chain.clone());
        let mut fs: Vec<&faultline_core::Finding> = g.findings().collect();
        fs.sort_by_key(|f| f.started_at);
        out.findings.insert(
            g.id,
            fs.iter()
                .map(|f| format!("{} on {} ({}) at +{:.0}s", f.kind, f.subject, f.failure_model, (f.started_at - Timestamp::from_secs(EPOCH_S)).as_secs_f64()))
                .collect(),
        );
    }
    out
}

fn service_of(s: &Subject) -> Option<&ServiceName> {
    match s {
        Subject::Service { service } | Subject::Resource { service, .. } => Some(service),
        Subject::Interaction { interaction } => Some(&interaction.callee),
        Subject::Flow { .. } => None,
    }
}

pub fn drill(name: &str, seed: Option<u64>) -> anyhow::Result<DrillScore> {
    let sc = faultline_sim::builtin::load(name, false)
        .ok_or_else(|| anyhow::anyhow!("no built-in scenario named {name:?} (see `faultline sim list`)"))?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let truth = faultline_sim::run::GroundTruth::of(&sc, false);
    let fault_start = truth.fault_start_s.unwrap_or(0.0);
    let run = run_pipeline(&sc, seed);
    let mut quiet = sc.clone();
    quiet.faults.clear();
    let fault_free = run_pipeline(&quiet, seed);

    let fault_at = Timestamp::from_millis(EPOCH_S * 1000 + (fault_start * 1000.0) as i64);
    let after_fault: Vec<&(GroupId, Timestamp)> = run.opened.iter().filter(|(_, at)| *at >= fault_at).collect();
    let main = after_fault.first().map(|(g, _)| *g);
    let chain = main.and_then(|g| run.chains.get(&g));
    let truth_service = service_of(&truth.origin);
    let origin_rank = chain.and_then(|c| c.origins.iter().position(|o| service_of(&o.subject) == truth_service).map(|i| i + 1));
    let class = chain.and_then(|c| c.class).map(|c| c.to_string());
    let incidents = run.opened.len().saturating_sub(run.merged);
    Ok(DrillScore {
        scenario: name.to_owned(),
        detected: main.is_some(),
        time_to_detect_s: after_fault.first().map(|(_, at)| (*at - fault_at).as_secs_f64()),
        incidents,
        origin_rank,
        origin: chain.and_then(|c| c.origins.first()).map(|o| o.subject.to_string()),
        class_correct: class.as_deref() == Some(truth.class.as_str()),
        class,
        expected_class: truth.class.clone(),
        pages: incidents,
        fault_free_incidents: fault_free.opened.len().saturating_sub(fault_free.merged),
        sentence: chain.map(CausalChain::render_sentence),
        findings: main.and_then(|g| run.findings.get(&g).cloned()).unwrap_or_default(),
    })
}

pub fn run(args: DrillArgs) -> anyhow::Result<()> {
    let names: Vec<String> = match (&args.scenario, args.all) {
        (Some(n), _) => vec![n.clone()],
        (None, true) => faultline_sim::builtin::names().filter(|n| *n != "simpy-reference").map(str::to_owned).collect(),
        (None, false) => anyhow::bail!("name a scenario or pass --all"),
    };
    let scores = names.iter().map(|n| drill(n, args.seed)).collect::<anyhow::Result<Vec<_>>>()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&scores)?);
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING).set_header([
        "SCENARIO",
        "DETECTED",
        "TTD s",
        "INCIDENTS",
        "ORIGIN RANK",
        "CLASS",
        "EXPECTED",
        "OK",
        "FAULT-FREE INCIDENTS",
    ]);
    for s in &scores {
        table.add_row([
            s.scenario.clone(),
            s.detected.to_string(),
            s.time_to_detect_s.map_or("-".into(), |t| format!("{t:.0}")),
            s.incidents.to_string(),
            s.origin_rank.map_or("-".into(), |r| r.to_string()),
            s.class.clone().unwrap_or_else(|| "-".into()),
            s.expected_class.clone(),
            if s.class_correct { "yes".into() } else { "no".into() },
            s.fault_free_incidents.to_string(),
        ]);
    }
    println!("{table}");
    if args.findings {
        for s in &scores {
            println!("\n{}: {}", s.scenario, s.sentence.as_deref().unwrap_or("no incident"));
            for f in &s.findings {
                println!("  {f}");
            }
        }
    }
    Ok(())
}
