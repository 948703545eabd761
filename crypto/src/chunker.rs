//! Content-defined chunking and convergent chunk keys (FORMAT.md section 5).
