//! HPKE (RFC 9180) base-mode sealing to X25519 keys (FORMAT.md sections 9.2, 9.4).
