//! The reference server (stub: being written).
