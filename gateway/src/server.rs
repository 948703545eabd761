//! The TLS accept loop and graceful shutdown (filled in by the server work).
