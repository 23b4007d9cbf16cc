//! TODO stub builtin
