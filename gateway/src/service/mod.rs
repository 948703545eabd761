//! The service layer: authentication, authorisation, quotas, rate limits and verification of
//! signed data. Handlers in [`crate::api`] parse requests and shape answers; every decision about
//! who may do what is taken here.

pub mod ratelimit;
