//! # coffre-sdk
//!
//! The async client library that applications embed, and that the `coffre` CLI is a thin layer
//! over. All keys live here, on the client: the gateway only ever sees encrypted blobs and signed,
//! opaque logs, and everything it returns is verified before use.
//!
//! - [`error`]: the one error enum an application matches on;
//! - [`remote`]: what the SDK needs from a gateway (HTTPS client, or in-memory for tests);
//!
//! Threat model and formats: `docs/THREAT_MODEL.md`, `docs/FORMAT.md`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error;
pub mod remote;

pub use error::{Error, Result};

/// The format version of everything this SDK writes.
pub const FORMAT_VERSION: u8 = coffre_crypto::codec::FORMAT_VERSION;
