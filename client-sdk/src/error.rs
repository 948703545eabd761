//! The SDK's one error type: what an application matches on.

use coffre_protocol::ErrorCode;

/// Everything that can go wrong in the SDK, grouped so an application can decide what to do:
/// retry ([`Error::Network`], [`Error::Unavailable`]), ask the user ([`Error::Auth`],
/// [`Error::Quota`], [`Error::NotFound`]), re-read and merge ([`Error::Conflict`]), or stop and
/// warn loudly ([`Error::Integrity`]: the gateway, or someone, tampered with data).
///
/// No variant ever carries a secret, a passphrase, a token or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The gateway could not be reached, the connection broke, or TLS failed.
    #[error("network error: {0}")]
    Network(String),
    /// The gateway's certificate does not match the pinned fingerprint or the trusted CAs.
    #[error("the gateway's certificate is not trusted: {0}")]
    UntrustedCertificate(String),
    /// Login failed, the session expired and could not be renewed, or the passphrase is wrong.
    #[error("authentication failed")]
    Auth,
    /// The caller may not do this (e.g. a reader writing).
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// No such space, path, commit, user or invitation.
    #[error("not found: {0}")]
    NotFound(String),
    /// Something already exists (a handle, a path where a new one was asked for).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A compare-and-swap lost and could not be merged automatically.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The account's storage quota is exhausted.
    #[error("storage quota exceeded")]
    Quota,
    /// The gateway asked us to slow down.
    #[error("rate limited; retry in {retry_after_s} s")]
    RateLimited {
        /// Seconds to wait, as the gateway said.
        retry_after_s: u64,
    },
    /// The gateway is shutting down or overloaded.
    #[error("the gateway is unavailable")]
    Unavailable,
    /// Data from the gateway failed verification: a bad signature, a broken chain, a rollback or
    /// fork, a blob that does not hash to its id, a key that does not match its pin. Nothing
    /// unverified was released.
    #[error("integrity violation: {0}")]
    Integrity(String),
    /// The identity key served for `handle` is not the one pinned on this device: the gateway,
    /// or someone, may be substituting keys. With `verified`, the pinned key had been verified
    /// (safety numbers compared): a hard error until the user verifies the new key. Otherwise
    /// the user may confirm the new key after checking with its owner.
    #[error(
        "the identity key of {handle} changed since it was {}: compare safety numbers with them before trusting it",
        if *verified { "verified" } else { "first seen" }
    )]
    KeyChanged {
        /// The handle whose key changed.
        handle: String,
        /// Whether the pinned key had been verified.
        verified: bool,
    },
    /// The gateway answered something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A local file or the local state could not be read or written.
    #[error("local I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The local configuration or keystore is missing or invalid.
    #[error("local configuration: {0}")]
    Config(String),
    /// The caller passed something invalid (a bad path, handle, name).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A cryptographic operation failed in a way that is not an integrity violation (e.g. no
    /// randomness).
    #[error("cryptography: {0}")]
    Crypto(String),
}

/// Shorthand for results in the SDK.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl From<coffre_crypto::Error> for Error {
    fn from(error: coffre_crypto::Error) -> Self {
        use coffre_crypto::Error as Crypto;
        match error {
            Crypto::Malformed { .. } | Crypto::Authentication | Crypto::Integrity { .. } => {
                Error::Integrity(error.to_string())
            }
            Crypto::InvalidInput(reason) => Error::InvalidInput(reason.to_owned()),
            Crypto::Io(io) => Error::Io(io),
            other => Error::Crypto(other.to_string()),
        }
    }
}

impl Error {
    /// The SDK error for an error response of the gateway.
    pub fn from_gateway(code: ErrorCode, message: &str, retry_after_s: Option<u64>) -> Self {
        let message = message.to_owned();
        match code {
            ErrorCode::Unauthenticated => Error::Auth,
            ErrorCode::Forbidden => Error::Forbidden(message),
            ErrorCode::NotFound => Error::NotFound(message),
            ErrorCode::HandleTaken => Error::AlreadyExists(message),
            ErrorCode::Conflict => Error::Conflict(message),
            ErrorCode::QuotaExceeded => Error::Quota,
            ErrorCode::InboxFull => Error::Conflict(message),
            ErrorCode::RateLimited => Error::RateLimited {
                retry_after_s: retry_after_s.unwrap_or(1),
            },
            ErrorCode::Unavailable => Error::Unavailable,
            ErrorCode::InvalidSignedData | ErrorCode::HashMismatch => Error::Protocol(format!(
                "the gateway refused data this client produced ({code}): {message}"
            )),
            _ => Error::Protocol(format!("{code}: {message}")),
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Network(_) | Error::Unavailable | Error::RateLimited { .. }
        )
    }
}
