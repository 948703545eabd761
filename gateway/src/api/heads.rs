//! Signed commits (heads).

use coffre_crypto::keys::SpaceId;
use http::Response;

use super::{Ctx, ResponseBody};
use crate::error::{Error, Result};

/// `GET /v1/spaces/{id}/heads`.
pub(crate) async fn get(_ctx: &mut Ctx, _space: SpaceId) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `PUT /v1/spaces/{id}/heads/{seq}`.
pub(crate) async fn put(
    _ctx: &mut Ctx,
    _space: SpaceId,
    _seq: u64,
) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}
