//! TODO stub cli
