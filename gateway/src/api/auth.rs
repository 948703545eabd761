//! Device-key login (challenge and verify) and passphrase login (OPAQUE start and finish). Every
//! failure is the one `unauthenticated`.

use http::{Response, StatusCode};

use super::body::read_json;
use super::response::json;
use super::{Ctx, ResponseBody};
use crate::error::{Error, Result};
use crate::service::{auth, opaque};

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

/// `POST /v1/accounts/opaque`: the first round of OPAQUE registration (before `POST /v1/accounts`).
pub(crate) async fn opaque_register(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    let request = read_json(ctx).await?;
    let answer = opaque::register_start(&ctx.app, request).await?;
    json(StatusCode::OK, &answer)
}

/// `POST /v1/auth/opaque/start`: answered for any handle.
pub(crate) async fn opaque_start(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    let request = match read_json(ctx).await {
        Ok(request) => request,
        Err(Error::BadRequest(_)) => return Err(Error::Unauthenticated),
        Err(other) => return Err(other),
    };
    let answer = opaque::login_start(&ctx.app, request).await?;
    json(StatusCode::OK, &answer)
}

/// `POST /v1/auth/opaque/finish`: an enrollment token and the key bundles, or `unauthenticated`.
pub(crate) async fn opaque_finish(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    let request = match read_json(ctx).await {
        Ok(request) => request,
        Err(Error::BadRequest(_)) => return Err(Error::Unauthenticated),
        Err(other) => return Err(other),
    };
    let answer = opaque::login_finish(&ctx.app, request).await?;
    json(StatusCode::OK, &answer)
}
