//! TODO stub svg
