//! Faultline's incident simulator: a deterministic discrete-event model of a
//! microservice system that reproduces the canonical distributed-systems
//! incidents (retry storms, cache stampedes, cascades, split brain, …), shows
//! their defences working, and emits the same `Signal`s a real system would.
//!
//! What it is: a hand-written event engine (`engine`), a named PRNG (`rng`),
//! scenario files (`scenario`), the world model (`world`), per-window series
//! and signals (`series`), SVG charts (`svg`), the built-in scenarios
//! (`builtin`), published-behaviour models (`anchors`) and the `faultline sim`
//! command (`cli`). What it is not: a store user or an async program: it has
//! no tokio, no database, and the engine never reads the wall clock.

pub mod anchors;
pub mod builtin;
pub mod cli;
pub mod engine;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod series;
pub mod svg;
pub mod world;

pub use run::{GroundTruth, RunOutput, run_scenario, run_with_signals};
pub use scenario::{Scenario, ScenarioError};
pub use series::Series;
pub use world::World;
