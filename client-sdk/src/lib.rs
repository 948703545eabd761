//! # coffre-sdk
//!
//! The async client library that applications embed. It will hold all key management (identity and
//! device keys, a passphrase-protected keystore), chunking and encryption of files and trees,
//! sharing (invitations, membership, revocation), and the local sync state that detects rollback and
//! forks of a gateway it does not trust.
//!
//! Not yet built: see the SDK issue. Today the crate only ties the workspace together.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The format version of everything this SDK writes.
pub const FORMAT_VERSION: u8 = coffre_crypto::codec::FORMAT_VERSION;
