//! TODO stub anchors
