//! `GET /api/v1/slos`: every configured SLO with its objective, current
//! burn, error budget remaining and the burn of each alerting window pair.
//!
//! `SharedSlo` lets the engine (which runs the monitor as a detector) and
//! this handler (which reads its status) share one `SloMonitor`. The JSON is
//! the core `SloStatus` serialisation, the same stated exception as the graph
//! views. Not here: SLO math (core `slo`).

use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::extract::State;
use faultline_core::detect::Detector;
use faultline_core::slo::{SloMonitor, SloStatus};
use faultline_core::{Finding, Signal, Subject, Timestamp};
use serde::Serialize;

use super::AppState;
use super::auth::ReadAccess;

#[derive(Clone)]
pub struct SharedSlo(Arc<Mutex<SloMonitor>>);

impl SharedSlo {
    pub fn new(m: SloMonitor) -> SharedSlo {
        SharedSlo(Arc::new(Mutex::new(m)))
    }
    pub fn status(&self) -> SloStatus {
        // A poisoned lock still guards a consistent monitor (updates are
        // single assignments); read through it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner).status()
    }
}

impl Detector for SharedSlo {
    fn name(&self) -> &'static str {
        "slo_burn"
    }
    fn observe(&mut self, signal: &Signal, now: Timestamp) -> Vec<Finding> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).observe(signal, now)
    }
    fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).tick(now)
    }
    fn take_cleared(&mut self) -> Vec<(String, Subject)> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take_cleared()
    }
}

#[derive(Serialize)]
pub struct SloList {
    slos: Vec<SloStatus>,
}

pub async fn list(State(state): State<AppState>, _: ReadAccess) -> Json<SloList> {
    Json(SloList { slos: state.slos.iter().map(SharedSlo::status).collect() })
}
