//! The one integration-test binary of `faultline-store`: the conformance
//! suite, run against SQLite always and against PostgreSQL whenever
//! `FAULTLINE_TEST_POSTGRES_URL` is set (CI sets it; CI fails if it is set but
//! unreachable, and `.ci/run` fails if PostgreSQL is not running).

mod conformance;
mod fatal;
mod response;
