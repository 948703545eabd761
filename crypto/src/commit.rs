//! Signed commits `CFCM` and commit-chain verification (FORMAT.md section 10).
