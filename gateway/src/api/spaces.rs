//! Spaces and their membership logs.

use coffre_crypto::keys::SpaceId;
use http::Response;

use super::{Ctx, ResponseBody};
use crate::error::{Error, Result};

/// `GET /v1/spaces`.
pub(crate) async fn list(_ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `POST /v1/spaces`.
pub(crate) async fn create(_ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `GET /v1/spaces/{id}/members`.
pub(crate) async fn members(_ctx: &mut Ctx, _space: SpaceId) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `POST /v1/spaces/{id}/members`.
pub(crate) async fn append_member(
    _ctx: &mut Ctx,
    _space: SpaceId,
) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}
