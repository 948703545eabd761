//! Content-addressed blobs.

use coffre_crypto::keys::{BlobId, SpaceId};
use http::Response;

use super::{Ctx, ResponseBody};
use crate::error::{Error, Result};

/// `GET /v1/spaces/{id}/blobs`.
pub(crate) async fn list(_ctx: &mut Ctx, _space: SpaceId) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `POST /v1/spaces/{id}/blobs/missing`.
pub(crate) async fn missing(_ctx: &mut Ctx, _space: SpaceId) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `PUT /v1/spaces/{id}/blobs/{blob}`.
pub(crate) async fn put(
    _ctx: &mut Ctx,
    _space: SpaceId,
    _blob: BlobId,
) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `GET|HEAD /v1/spaces/{id}/blobs/{blob}`.
pub(crate) async fn get(
    _ctx: &mut Ctx,
    _space: SpaceId,
    _blob: BlobId,
    _head_only: bool,
) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `POST /v1/spaces/{id}/prune`.
pub(crate) async fn prune(_ctx: &mut Ctx, _space: SpaceId) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}
