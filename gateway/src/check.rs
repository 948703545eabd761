//! `coffre-gateway check`: verification of a data directory (filled in by the store work).
