//! The one integration-test binary of `faultline-engine`: the loop body
//! (`Engine::process`) driven with chosen times against a real SQLite store.

mod correlation;
mod notify;
mod peers;
mod resolve;
mod response;
mod smtp_tls;
mod subscriber_proxy;
mod subscribers;
