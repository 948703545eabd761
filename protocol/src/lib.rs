//! # coffre-protocol
//!
//! The contract between the coffre gateway and its clients, specified in `docs/API.md`: the serde
//! wire types of every JSON endpoint ([`types`]), the stable error codes with their HTTP statuses
//! defined in one table ([`error`]), and the limits both sides enforce. The gateway and the SDK both
//! depend on this crate, so they cannot disagree on a field name, a code or a limit.
//!
//! The crate holds no cryptography: signed structures travel as opaque base64 bytes, and each side
//! decodes them with `coffre-crypto`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod batch;
pub mod error;
pub mod types;

pub use error::{ErrorBody, ErrorCode};

/// The version prefix of every endpoint path (`/v1/...`).
pub const API_VERSION: &str = "v1";

/// Largest blob body: the largest envelope of `docs/FORMAT.md` (16 MiB of content, Padmé-padded,
/// plus 53 bytes of header, commitment and tag).
pub const MAX_BLOB_BYTES: u64 = 17_301_557;

/// Largest JSON request body.
pub const MAX_JSON_BYTES: u64 = 1024 * 1024;

/// Most ids in one `blobs/missing` query or `prune` request.
pub const MAX_IDS_PER_REQUEST: usize = 10_000;

/// Most commits or membership entries returned by one read.
pub const MAX_ITEMS_PER_PAGE: usize = 1_000;

/// Signature domain of a device login (see [`login_message`]). **Format-fixed.**
pub const LOGIN_DOMAIN: &str = "coffre v1 device login";

/// The bytes a device signs to log in: `handle (u16 length-prefixed) ‖ challenge`, signed with
/// domain separation as `LOGIN_DOMAIN ‖ 0x00 ‖ message` (the crypto crate's signing convention).
/// Binding the handle stops a challenge issued for one account from being replayed on another.
pub fn login_message(handle: &str, challenge: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(2 + handle.len() + challenge.len());
    // Handles are at most 64 bytes (FORMAT.md section 8.1), so the length fits in a u16.
    let len = u16::try_from(handle.len()).unwrap_or(u16::MAX);
    message.extend_from_slice(&len.to_be_bytes());
    message.extend_from_slice(handle.as_bytes());
    message.extend_from_slice(challenge);
    message
}
