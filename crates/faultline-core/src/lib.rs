//! Faultline's domain core: the vocabulary of DESIGN.md as types, and the pure
//! logic that works on them.
//!
//! What it is: typed ids, the catalogue model (services, interactions, flows,
//! teams, users), signals and findings, causal chains, and the incident state
//! machine whose state is a fold of its timeline.
//!
//! What it is not: it does no IO, spawns nothing and never reads the clock.
//! Time enters every function as a `now: Timestamp` argument, so the engine
//! (real clock) and the simulator (virtual clock) drive exactly the same code.
//! The tidy test (`tests/tidy.rs`) keeps it that way.

pub mod bounded;
pub mod catalogue;
pub mod correlate;
pub mod detect;
pub mod diagnose;
pub mod escalation;
pub mod finding;
pub mod graph;
pub mod ids;
pub mod incident;
pub mod model;
pub mod oncall;
pub mod pipeline;
pub mod probe;
pub mod routing;
pub mod severity;
pub mod signal;
pub mod slo;
pub mod status_page;
pub mod time;

pub use finding::{CausalChain, Evidence, FailureModel, Finding, IncidentClass, Subject};
pub use ids::{FlowName, IncidentId, ServiceName, TeamId, UserId};
pub use incident::{Actor, Command, Incident, IncidentEvent, IncidentStatus, Role, Severity, TimelineEvent, TransitionError};
pub use model::{Flow, Interaction, Service, Team, User};
pub use signal::Signal;
pub use time::{Duration, Timestamp};
