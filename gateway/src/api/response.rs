//! Building responses: JSON answers, empty answers, and the one error shape.

use bytes::Bytes;
use coffre_protocol::ErrorBody;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};
use serde::Serialize;

use super::ResponseBody;
use crate::error::{Error, Result};

/// A body holding `bytes`.
pub(crate) fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// Largest piece [`full_holding`] hands to hyper at a time.
const HELD_PIECE: usize = 256 * 1024;

/// A body holding `bytes`, handed out in pieces of at most [`HELD_PIECE`] (hyper asks for the
/// next one only when the connection can take it), that keeps `guard` alive until the body is
/// dropped: after its last piece was taken, or when the client goes away. Handed out whole, an
/// answer would sit in HTTP/2's send buffer after the guard was gone.
pub(crate) fn full_holding<G: Send + Sync + Unpin + 'static>(
    bytes: impl Into<Bytes>,
    guard: G,
) -> ResponseBody {
    HeldBody {
        bytes: bytes.into(),
        _guard: guard,
    }
    .boxed()
}

struct HeldBody<G> {
    bytes: Bytes,
    _guard: G,
}

impl<G: Unpin> http_body::Body for HeldBody<G> {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.bytes.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let piece = this.bytes.split_to(HELD_PIECE.min(this.bytes.len()));
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.bytes.len() as u64)
    }
}

/// An empty body.
pub(crate) fn empty_body() -> ResponseBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A JSON answer.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response<ResponseBody>> {
    let bytes = serde_json::to_vec(value)
        .map_err(|error| Error::Internal(format!("serialising a response: {error}")))?;
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// An answer without a body.
pub(crate) fn empty(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(empty_body());
    *response.status_mut() = status;
    response
}

/// The one error shape: `{code, message[, current_seq]}` with the code's status, plus
/// `Retry-After` for rate limits and `WWW-Authenticate` for authentication failures.
pub fn error_response(error: &Error) -> Response<ResponseBody> {
    let code = error.code();
    let mut body = ErrorBody::new(code, error.public_message());
    if let Error::Conflict { current_seq } = error {
        body.current_seq = *current_seq;
    }
    // Serialising this plain struct cannot fail; fall back to a fixed body all the same.
    let bytes = serde_json::to_vec(&body)
        .unwrap_or_else(|_| br#"{"code":"internal","message":"internal error"}"#.to_vec());
    let mut response = Response::new(full(bytes));
    *response.status_mut() =
        StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match error {
        Error::RateLimited { retry_after_s } => {
            headers.insert(RETRY_AFTER, HeaderValue::from(*retry_after_s));
        }
        Error::Unauthenticated => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_carries_current_seq_and_rate_limit_retry_after() {
        let response = error_response(&Error::Conflict {
            current_seq: Some(7),
        });
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let response = error_response(&Error::RateLimited { retry_after_s: 3 });
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers().get(RETRY_AFTER),
            Some(&HeaderValue::from(3u64))
        );
    }
}
