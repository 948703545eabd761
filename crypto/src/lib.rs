//! # coffre-crypto
//!
//! The cryptographic core of coffre: every construction and byte format of `docs/FORMAT.md`, and
//! nothing else. Pure code: no I/O beyond reading a caller's [`std::io::Read`] while chunking, no
//! async, no global state.
//!
//! The crate is organised by format section:
//!
//! - [`codec`]: the canonical binary encoding shared by every structure;
//! - [`keys`]: public and secret key types, ids, randomness;
//! - [`kdf`]: BLAKE3 hashing and key derivation with one context string per purpose;
//! - [`caead`]: the key-committing XChaCha20-Poly1305 and the sealed box;
//!
//! Security properties this crate is responsible for, and how they are kept:
//!
//! - **secrets never leak by accident**: secret types zeroize on drop, print as `<redacted>`, have
//!   no `Serialize`, and expose their bytes only through methods named `expose_secret`;
//! - **no decryption oracle**: every authentication failure is the one opaque
//!   [`Error::Authentication`];
//! - **untrusted bytes never panic**: every decoder goes through [`codec`]'s bounds-checked reader
//!   and returns [`Error::Malformed`] on bad input (fuzzed in `fuzz/`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod caead;
pub mod chunker;
pub mod codec;
pub mod commit;
pub mod device;
pub mod dirnode;
pub mod envelope;
mod error;
pub mod hpke;
pub mod identity;
pub mod invitation;
pub mod kdf;
pub mod keybundle;
pub mod keys;
pub mod manifest;
pub mod membership;
pub mod opaque;
pub mod padding;
pub mod passphrase;
pub mod recovery;

pub use error::{Error, Result};
