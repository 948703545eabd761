//! Reading request bodies within limits.
//!
//! Threat: a client sending a huge or endless body to exhaust memory or disk. Every endpoint has a
//! limit: a declared `Content-Length` above it is refused with 413 before a byte is read; a body
//! without a length (chunked) is counted while read and refused with 413 as soon as it passes the
//! limit. The media type is checked (415) before reading too.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;

use super::Ctx;
use crate::error::{Error, Result};

/// The `Content-Length` the client declared, if any.
pub(crate) fn declared_length(parts: &http::request::Parts) -> Result<Option<u64>> {
    let Some(value) = parts.headers.get(CONTENT_LENGTH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| Error::BadRequest("invalid Content-Length".into()))?;
    if text.is_empty() || !text.bytes().all(|c| c.is_ascii_digit()) {
        return Err(Error::BadRequest("invalid Content-Length".into()));
    }
    text.parse()
        .map(Some)
        .map_err(|_| Error::BadRequest("invalid Content-Length".into()))
}

/// Refuses a declared length above `limit` (413) without reading the body.
pub(crate) fn check_declared(parts: &http::request::Parts, limit: u64) -> Result<Option<u64>> {
    let declared = declared_length(parts)?;
    match declared {
        Some(length) if length > limit => Err(Error::PayloadTooLarge { limit }),
        _ => Ok(declared),
    }
}

/// Refuses a body whose media type (parameters ignored, case-insensitive) is not `expected`.
pub(crate) fn require_media_type(parts: &http::request::Parts, expected: &str) -> Result<()> {
    let media_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    match media_type {
        Some(media_type) if media_type.eq_ignore_ascii_case(expected) => Ok(()),
        _ => Err(Error::UnsupportedMediaType),
    }
}

/// Reads the next data frame, counting bytes into `received` and refusing to pass `limit`.
/// Trailers are skipped. `None` at the end of the body.
pub(crate) async fn next_data(
    ctx: &mut Ctx,
    received: &mut u64,
    limit: u64,
) -> Result<Option<Bytes>> {
    loop {
        let Some(frame) = ctx.body.frame().await else {
            return Ok(None);
        };
        let frame =
            frame.map_err(|_| Error::BadRequest("the request body could not be read".into()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let length = data.len() as u64;
        ctx.app.metrics.add_bytes_received(length);
        *received = received.saturating_add(length);
        if *received > limit {
            return Err(Error::PayloadTooLarge { limit });
        }
        return Ok(Some(data));
    }
}

/// Reads the whole body, at most `limit` bytes.
pub(crate) async fn read_limited(ctx: &mut Ctx, limit: u64) -> Result<Vec<u8>> {
    let declared = check_declared(&ctx.parts, limit)?;
    // Pre-allocate at most a small amount: a declared length is a claim, not a fact.
    let capacity = declared.unwrap_or(0).min(64 * 1024) as usize;
    let mut bytes = Vec::with_capacity(capacity);
    let mut received = 0;
    while let Some(data) = next_data(ctx, &mut received, limit).await? {
        bytes.extend_from_slice(&data);
    }
    Ok(bytes)
}

/// Reads and parses a JSON body (`Content-Type: application/json`, at most `max_json_bytes`).
pub(crate) async fn read_json<T: DeserializeOwned>(ctx: &mut Ctx) -> Result<T> {
    require_media_type(&ctx.parts, "application/json")?;
    let limit = ctx.app.config.limits.max_json_bytes;
    let bytes = read_limited(ctx, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|error| Error::BadRequest(format!("invalid JSON body: {error}")))
}
