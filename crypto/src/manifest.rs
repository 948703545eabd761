//! File manifests `CFMF` (FORMAT.md section 6).
