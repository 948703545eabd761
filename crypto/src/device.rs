//! Device chains and device certificates `CFDV` (FORMAT.md section 8.2).
