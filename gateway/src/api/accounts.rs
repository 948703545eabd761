//! Accounts: registration, key bundles, device-chain appends.

use coffre_protocol::types::{Bytes64, KeyBundlesResponse};
use http::{Response, StatusCode};

use super::body::read_json;
use super::response::json;
use super::{Ctx, ResponseBody};
use crate::error::Result;
use crate::service::{accounts, auth};

/// `POST /v1/accounts`: 201 with the handle and quota; 409 `handle_taken`; 422 if the identity or
/// device entry does not verify.
pub(crate) async fn register(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    let request = read_json(ctx).await?;
    let answer = accounts::register(&ctx.app, request).await?;
    json(StatusCode::CREATED, &answer)
}

/// `GET /v1/account/key-bundles`: the caller's sealed key bundles.
pub(crate) async fn key_bundles(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    let key_bundles = caller
        .account
        .record
        .key_bundles
        .iter()
        .map(|bundle| Bytes64(bundle.clone()))
        .collect();
    json(StatusCode::OK, &KeyBundlesResponse { key_bundles })
}

/// `POST /v1/account/devices`: 201 with the entry's seq; 409 with the chain length if it moved.
/// Accepts an enrollment token from a passphrase login too: certifying a new device is what it
/// is for.
pub(crate) async fn append_device(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate_enrollment(&ctx.app, &ctx.parts.headers).await?;
    let request = read_json(ctx).await?;
    let answer = accounts::append_device(&ctx.app, &caller, request).await?;
    json(StatusCode::CREATED, &answer)
}
