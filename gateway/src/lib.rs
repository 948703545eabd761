//! # coffre-gateway
//!
//! The server operators run. It stores client-encrypted blobs, signed membership logs and signed
//! commits, and never decrypts anything: it uses `coffre-crypto` only to verify signatures and
//! hashes, so that it can enforce who may write (availability) — clients never rely on that.
//!
//! Layers, each in its own module, dependencies pointing down:
//!
//! - [`server`]: TLS 1.3 accept loop (hyper + rustls), connection/time/size limits, graceful shutdown;
//! - [`router`]: method and path to one [`router::Endpoint`], in one `match`;
//! - [`api`]: one handler per endpoint: parse the request, call the service, shape the response;
//! - [`service`]: authentication, authorisation, quotas, rate limits, verification of signed data;
//! - [`store`]: the store traits, with sled, memory and file backends.
//!
//! [`error::Error`] maps every failure to a stable code and status in one place.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod app;
pub mod check;
pub mod config;
pub mod error;
pub mod metrics;
pub mod router;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;

pub use config::Config;
pub use error::{Error, Result};

/// The API version this gateway serves.
pub const API_VERSION: &str = coffre_protocol::API_VERSION;
