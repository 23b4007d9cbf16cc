//! Unit tests for detectors (filled below).
