//! Prometheus metrics (filled in by the API work).
