//! TLS configuration and first-run certificate generation (filled in by the server work).
