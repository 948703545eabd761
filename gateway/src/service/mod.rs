//! The service layer: authentication, authorisation, quotas, rate limits and verification of
//! signed data. Handlers in [`crate::api`] parse requests and shape answers; every decision about
//! who may do what is taken here.

pub mod accounts;
pub mod auth;
pub mod blobs;
pub mod opaque;
pub mod ratelimit;
pub mod roles;
pub mod spaces;

use std::sync::Arc;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account's handle.
    pub handle: String,
    /// The device key the session was opened with (active at authentication time).
    pub device_key: [u8; 32],
    /// The verified account.
    pub account: Arc<accounts::VerifiedAccount>,
}
