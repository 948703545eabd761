//! The gateway's one error type, and its mapping to stable codes and statuses in one place.

use coffre_protocol::ErrorCode;

/// Everything that can go wrong in the gateway.
///
/// Variants above the line are the client's doing and are answered with their code and a message;
/// variants below are faults of the gateway or its disk: logged in full, answered with a generic
/// `internal` error that reveals nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is structurally wrong.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Any authentication failure. Deliberately carries no detail.
    #[error("authentication failed")]
    Unauthenticated,
    /// The caller's role does not allow the operation.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// No such resource, or one the caller may not know exists.
    #[error("not found")]
    NotFound,
    /// The handle is already registered.
    #[error("handle already taken")]
    HandleTaken,
    /// A record that must be unique already exists (store level).
    #[error("already exists")]
    AlreadyExists,
    /// A compare-and-swap lost; `current_seq` is the log length or head seq now.
    #[error("conflict: the log moved on (current {current_seq:?})")]
    Conflict {
        /// The current head seq or log length, when known.
        current_seq: Option<u64>,
    },
    /// A signed structure failed verification or broke a chain rule.
    #[error("invalid signed data: {0}")]
    InvalidSignedData(String),
    /// The uploaded body does not hash to the blob id.
    #[error("blob hash does not match its id")]
    HashMismatch,
    /// The body is over the endpoint's limit.
    #[error("payload too large (limit {limit} bytes)")]
    PayloadTooLarge {
        /// The endpoint's limit in bytes.
        limit: u64,
    },
    /// The endpoint needs a Content-Length.
    #[error("length required")]
    LengthRequired,
    /// The account's quota would be exceeded.
    #[error("quota exceeded")]
    QuotaExceeded,
    /// The caller's inbox or the recipient's inbox is full.
    #[error("inbox full")]
    InboxFull,
    /// Too many requests.
    #[error("rate limited, retry after {retry_after_s} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after_s: u64,
    },
    /// The path exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Wrong media type for the body.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Shutting down or overloaded.
    #[error("service unavailable")]
    Unavailable,

    // ---- faults of the gateway itself: never shown to clients ----
    /// The data directory holds something that does not decode or verify.
    #[error("store corrupt: {0}")]
    Corrupt(String),
    /// A filesystem operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The sled database failed.
    #[error("database error: {0}")]
    Database(String),
    /// TLS setup failed (certificate or key unreadable or invalid).
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// Any other internal fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for results in the gateway.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// The stable code this error is answered with. The one place that decides it.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) => ErrorCode::BadRequest,
            Error::Unauthenticated => ErrorCode::Unauthenticated,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::NotFound => ErrorCode::NotFound,
            Error::HandleTaken | Error::AlreadyExists => ErrorCode::HandleTaken,
            Error::Conflict { .. } => ErrorCode::Conflict,
            Error::InvalidSignedData(_) => ErrorCode::InvalidSignedData,
            Error::HashMismatch => ErrorCode::HashMismatch,
            Error::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Error::LengthRequired => ErrorCode::LengthRequired,
            Error::QuotaExceeded => ErrorCode::QuotaExceeded,
            Error::InboxFull => ErrorCode::InboxFull,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Error::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Error::Unavailable => ErrorCode::Unavailable,
            Error::Corrupt(_)
            | Error::Io(_)
            | Error::Database(_)
            | Error::Tls(_)
            | Error::Config(_)
            | Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Whether this is a fault of the gateway (logged in full, answered generically).
    pub fn is_internal(&self) -> bool {
        self.code() == ErrorCode::Internal
    }

    /// The message sent to the client: the error's text for client errors, a generic sentence for
    /// internal faults so that nothing about the gateway's internals leaks.
    pub fn public_message(&self) -> String {
        if self.is_internal() {
            "internal error; the gateway's log has the details".to_owned()
        } else {
            self.to_string()
        }
    }
}

impl From<sled::Error> for Error {
    fn from(error: sled::Error) -> Self {
        Error::Database(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_are_answered_generically() {
        let error = Error::Database("tree /secret/path broken".into());
        assert_eq!(error.code(), ErrorCode::Internal);
        assert!(!error.public_message().contains("secret"));
        let error = Error::Conflict {
            current_seq: Some(3),
        };
        assert_eq!(error.code().status(), 409);
        assert!(
            Error::Unauthenticated
                .public_message()
                .contains("authentication failed")
        );
    }
}
