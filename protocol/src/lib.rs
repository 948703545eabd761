//! # coffre-protocol
//!
//! The contract between the coffre gateway and its clients. This crate will hold the serde wire
//! types of every endpoint in `docs/API.md` (JSON for control messages, raw octets for blobs), the
//! API version, and the stable error codes with their HTTP statuses, defined in one place so the
//! gateway and the SDK can never disagree.
//!
//! Today it holds the API version only; the gateway issue fills it in.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The version prefix of every endpoint path (`/v1/...`).
pub const API_VERSION: &str = "v1";
