//! The one integration-test binary of `faultline-cli`: the real `faultline`
//! executable, run as a user would — token creation, a server process on a
//! free port, the incidents commands, SIGTERM and restart.

mod comms;
mod config;
mod e2e;
mod people;
mod response;
mod storm;
mod support;
