//! The blob envelope `CFEN` (FORMAT.md section 4).
