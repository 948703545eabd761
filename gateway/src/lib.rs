//! # coffre-gateway
//!
//! The server operators run. It will hold: the TLS 1.3 accept loop (hyper + rustls) with connection,
//! time and size limits and graceful shutdown; a router from requests to an `Endpoint` enum; one
//! handler per operation; a service layer for authorisation, quotas and id verification; and store
//! traits with sled and in-memory backends. The gateway never decrypts anything: it uses
//! `coffre-crypto` only to verify signatures and hashes.
//!
//! Not yet built: see the gateway issue. Today the crate only ties the workspace together.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The format version of the blobs and logs this gateway stores, re-exported so operators' tools
/// can report it.
pub const STORED_FORMAT_VERSION: u8 = coffre_crypto::codec::FORMAT_VERSION;

/// The API version this gateway serves.
pub const API_VERSION: &str = coffre_protocol::API_VERSION;
