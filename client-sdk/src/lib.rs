//! # coffre-sdk
//!
//! The async client library that applications embed, and that the `coffre` CLI is a thin layer
//! over. All keys live here, on the client: the gateway only ever sees encrypted blobs and signed,
//! opaque logs, and everything it returns is verified before use.
//!
//! - [`error`]: the one error enum an application matches on;
//! - [`client`]: the entry point — create or open an account, list, create and open spaces;
//! - [`spaces`]: verified membership logs and epoch keys; [`state`]: per-space pins against
//!   rollback and forks;
//! - [`http`]: the HTTPS client, with [`trust`] (TLS 1.3, pinning, roots);
//! - [`keystore`], [`home`]: the local keystore, `config.toml` and durable file writes;
//! - [`remote`]: what the SDK needs from a gateway (HTTPS client, or in-memory for tests);
//! - [`tree`]: the snapshot model (lazy, verified directory tree; path operations; merge);
//! - [`history`]: verified commits, commit with merge, log, restore;
//! - [`files`]: the upload and download pipelines; [`progress`]: their progress hooks;
//! - [`space_ops`]: high-level operations on a space (put, get, ls, rm, mv, mkdir, log, restore);
//! - [`devices`]: this account's devices (list, revoke);
//! - [`members`]: add, re-role, remove (rotating the epoch key), leave;
//! - [`sharing`]: look users up, invite, list and accept invitations; [`contacts`]: pinned and
//!   verified keys of other users (TOFU, safety numbers);
//! - [`memory_remote`]: an in-memory gateway, a test double that can misbehave on purpose;
//!
//! Threat model and formats: `docs/THREAT_MODEL.md`, `docs/FORMAT.md`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod account;
pub mod client;
pub mod contacts;
pub mod devices;
pub mod error;
pub mod files;
pub mod history;
pub mod home;
pub mod http;
pub mod keystore;
pub mod members;
pub mod memory_remote;
pub mod progress;
pub mod remote;
pub mod sharing;
pub mod space_ops;
pub mod spaces;
pub mod state;
pub mod tree;
pub mod trust;

pub use error::{Error, Result};

/// The format version of everything this SDK writes.
pub const FORMAT_VERSION: u8 = coffre_crypto::codec::FORMAT_VERSION;
