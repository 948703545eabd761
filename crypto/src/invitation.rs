//! Invitations `CFIV`/`CFIP` (FORMAT.md section 9.4).
