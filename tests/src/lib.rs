//! # coffre-tests
//!
//! End-to-end tests as their own package: they will start the real gateway binary over TLS on
//! loopback and drive it with the real SDK and CLI (sharing, revocation, history, the
//! operator-blindness scan, the malicious-gateway suite and crash tests).
//!
//! Today the package holds the cross-crate checks that need no gateway.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
