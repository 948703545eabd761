//! Public user records: identity and device chain, for authenticated callers.

use coffre_crypto::identity::Handle;
use coffre_protocol::types::{Bytes64, UserResponse};
use http::{Response, StatusCode};

use super::response::json;
use super::{Ctx, ResponseBody};
use crate::error::{Error, Result};
use crate::service::{accounts, auth};

/// `GET /v1/users/{handle}`: 404 if there is no such user.
pub(crate) async fn get(ctx: &mut Ctx, handle: &str) -> Result<Response<ResponseBody>> {
    auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    let handle = Handle::parse(handle).map_err(|_| Error::NotFound)?;
    let account = accounts::load(&ctx.app, handle.as_str())
        .await?
        .ok_or(Error::NotFound)?;
    let record = &account.record;
    json(
        StatusCode::OK,
        &UserResponse {
            handle: record.handle.clone(),
            identity: Bytes64(record.identity.clone()),
            device_chain: record.device_chain.iter().cloned().map(Bytes64).collect(),
        },
    )
}
