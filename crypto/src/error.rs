//! The crate's one error type.

/// Everything that can go wrong in `coffre-crypto`.
///
/// Authentication failures (AEAD tag, key commitment, signature, padding after decryption) are
/// deliberately one variant without detail, so that no caller can turn an error message into a
/// decryption oracle. Structural problems with untrusted bytes are [`Error::Malformed`]; broken rules
/// of a hash chain or log are [`Error::Integrity`]. Neither ever carries secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that do not decode as the structure they claim to be (see `docs/FORMAT.md`).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The structure being decoded, e.g. `"manifest"`.
        what: &'static str,
        /// What was wrong, e.g. `"trailing bytes"`.
        reason: &'static str,
    },
    /// A ciphertext, commitment or signature did not verify. Intentionally opaque.
    #[error("authentication failed")]
    Authentication,
    /// A structure that authenticates on its own breaks a rule of the chain or log it belongs to
    /// (a forged admin action, a gap in a hash chain, a commit by a reader, ...).
    #[error("integrity violation in {what}: {reason}")]
    Integrity {
        /// The chain or log, e.g. `"membership log"`.
        what: &'static str,
        /// The rule that was broken.
        reason: &'static str,
    },
    /// The caller passed a value that cannot be encoded (a handle with a `/`, an oversized name...).
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// The operating system's random number generator failed.
    #[error("operating system randomness is unavailable")]
    Randomness,
    /// Reading the data to be chunked failed.
    #[error("reading input failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    pub(crate) const fn malformed(what: &'static str, reason: &'static str) -> Self {
        Error::Malformed { what, reason }
    }

    pub(crate) const fn integrity(what: &'static str, reason: &'static str) -> Self {
        Error::Integrity { what, reason }
    }
}
