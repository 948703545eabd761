//! Argon2id passphrase stretching (FORMAT.md section 8.4).
