//! Request handlers: one per [`crate::router::Endpoint`] (filled in by the API work).
