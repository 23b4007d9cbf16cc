//! The response driver (placeholder while it is being written).
