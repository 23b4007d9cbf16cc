//! The one integration-test binary of `faultline-server`: the HTTP API driven
//! in-process through `Router::oneshot` (no sockets), on a temporary SQLite
//! store with a fixed clock.

mod acknowledged;
mod alerts;
mod full_disk;
mod fuzz;
mod http_api;
mod response;
mod telemetry;
