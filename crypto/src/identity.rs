//! Identities `CFID`, fingerprints and safety numbers (FORMAT.md sections 8.1, 8.3).
