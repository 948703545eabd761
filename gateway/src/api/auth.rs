//! Device-key login: challenge and verify. Every failure is the one `unauthenticated`.

use http::{Response, StatusCode};

use super::body::read_json;
use super::response::json;
use super::{Ctx, ResponseBody};
use crate::error::{Error, Result};
use crate::service::auth;

/// `POST /v1/auth/device/challenge`: a single-use challenge (issued for any handle).
pub(crate) async fn challenge(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    let request = read_json(ctx).await?;
    let answer = auth::challenge(&ctx.app, request).await?;
    json(StatusCode::OK, &answer)
}

/// `POST /v1/auth/device/verify`: a bearer token, or `unauthenticated`.
pub(crate) async fn verify(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    // A body that does not parse is also an authentication failure at this endpoint, so the
    // answers cannot be told apart by how malformed the attempt was.
    let request = match read_json(ctx).await {
        Ok(request) => request,
        Err(Error::BadRequest(_)) => return Err(Error::Unauthenticated),
        Err(other) => return Err(other),
    };
    let answer = auth::verify(&ctx.app, request).await?;
    json(StatusCode::OK, &answer)
}
