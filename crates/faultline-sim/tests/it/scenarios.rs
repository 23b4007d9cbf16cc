//! Built-in scenario tests (filled in below).
