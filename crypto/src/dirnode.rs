//! Directory nodes `CFDR` (FORMAT.md section 7).
