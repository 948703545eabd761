//! The 24-word recovery phrase (FORMAT.md section 8.5).
