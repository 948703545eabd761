//! Stable error codes: one table, the single source of truth for code strings and HTTP statuses.

use serde::{Deserialize, Serialize};

/// Every error the gateway answers with. The snake_case string and the status are part of the API
/// and never change meaning within `v1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is structurally wrong (bad path parameter, bad query, bad JSON).
    BadRequest,
    /// Any authentication failure: missing, expired or unknown token, bad login signature, unknown
    /// handle or device at login. Deliberately one code, so it reveals nothing about which part failed.
    Unauthenticated,
    /// Authenticated, but the caller's role does not allow this operation.
    Forbidden,
    /// No such resource, or one the caller may not know exists (spaces they are not a member of).
    NotFound,
    /// The handle is already registered.
    HandleTaken,
    /// A compare-and-swap lost: the head, the membership log or the device chain moved on.
    Conflict,
    /// The signed structure (identity, device entry, membership entry, commit) does not verify or
    /// breaks a rule of its chain.
    InvalidSignedData,
    /// The uploaded blob's BLAKE3 hash is not the id in the path.
    HashMismatch,
    /// The body is larger than this endpoint allows.
    PayloadTooLarge,
    /// A body needs a `Content-Length` or a length within limits.
    LengthRequired,
    /// The account's storage quota would be exceeded.
    QuotaExceeded,
    /// The recipient's inbox holds as many pending invitations as the gateway allows.
    InboxFull,
    /// Too many requests from this account or address; retry after the `Retry-After` seconds.
    RateLimited,
    /// The path exists but not with this method.
    MethodNotAllowed,
    /// The body's media type is not what the endpoint takes.
    UnsupportedMediaType,
    /// The gateway is shutting down or overloaded; retry later.
    Unavailable,
    /// A fault inside the gateway. Details are in its log, never in the response.
    Internal,
}

impl ErrorCode {
    /// All codes, for documentation and exhaustive tests.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::HandleTaken,
        ErrorCode::Conflict,
        ErrorCode::InvalidSignedData,
        ErrorCode::HashMismatch,
        ErrorCode::PayloadTooLarge,
        ErrorCode::LengthRequired,
        ErrorCode::QuotaExceeded,
        ErrorCode::InboxFull,
        ErrorCode::RateLimited,
        ErrorCode::MethodNotAllowed,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The stable snake_case string.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::HandleTaken => "handle_taken",
            ErrorCode::Conflict => "conflict",
            ErrorCode::InvalidSignedData => "invalid_signed_data",
            ErrorCode::HashMismatch => "hash_mismatch",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::LengthRequired => "length_required",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::InboxFull => "inbox_full",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status that goes with the code.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::HandleTaken => 409,
            ErrorCode::Conflict => 409,
            ErrorCode::InvalidSignedData => 422,
            ErrorCode::HashMismatch => 422,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::LengthRequired => 411,
            ErrorCode::QuotaExceeded => 507,
            ErrorCode::InboxFull => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one JSON shape of every error response: `{ "code": "...", "message": "..." }`.
///
/// `message` is for people; programs match on `code`. A `Conflict` on heads also carries the
/// gateway's current sequence number so the client can re-read and merge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable explanation; never contains secrets or internal details.
    pub message: String,
    /// For `conflict` on a log or head: the current length / sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_seq: Option<u64>,
}

impl ErrorBody {
    /// An error body without a sequence number.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            current_seq: None,
        }
    }
}
